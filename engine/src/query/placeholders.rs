//! JDBC and ODBC clients write positional placeholders as `?`; DataFusion gives every `?` the
//! same name, so two of them would have to share one value and one type. Numbering them `$1`,
//! `$2`, … in order of appearance gives each its own.

use std::borrow::Cow;

use datafusion::sql::sqlparser::{
    dialect::GenericDialect,
    tokenizer::{Location, Token, Tokenizer},
};

/// `sql` with each `?` placeholder replaced by `$n`, n counting from 1 in text order. Question
/// marks inside literals, quoted identifiers and comments are left alone, being no tokens of
/// their own. SQL the tokenizer rejects is returned unchanged for the planner to report.
pub(crate) fn number_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Cow::Borrowed(sql);
    };
    let offsets: Vec<usize> = tokens
        .iter()
        .filter(|t| matches!(&t.token, Token::Placeholder(p) if p == "?"))
        .filter_map(|t| byte_offset(sql, t.span.start))
        .collect();
    if offsets.is_empty() {
        return Cow::Borrowed(sql);
    }
    let mut numbered = String::with_capacity(sql.len() + 2 * offsets.len());
    let mut copied = 0;
    for (n, offset) in offsets.into_iter().enumerate() {
        numbered.push_str(&sql[copied..offset]);
        numbered.push_str(&format!("${}", n + 1));
        copied = offset + 1;
    }
    numbered.push_str(&sql[copied..]);
    Cow::Owned(numbered)
}

/// The byte offset of a tokenizer location (1-based line, 1-based column in characters).
fn byte_offset(sql: &str, location: Location) -> Option<usize> {
    let line_start = if location.line <= 1 {
        0
    } else {
        sql.match_indices('\n')
            .nth(usize::try_from(location.line).ok()? - 2)?
            .0
            + 1
    };
    let column = usize::try_from(location.column).ok()?.checked_sub(1)?;
    sql[line_start..]
        .char_indices()
        .nth(column)
        .map(|(offset, _)| line_start + offset)
}

#[cfg(test)]
mod tests {
    use super::number_placeholders;

    #[test]
    fn question_marks_become_numbered_placeholders() {
        assert_eq!(
            number_placeholders("SELECT * FROM t WHERE a >= ? AND b = ?"),
            "SELECT * FROM t WHERE a >= $1 AND b = $2"
        );
    }

    #[test]
    fn question_marks_in_literals_identifiers_and_comments_stay() {
        let sql = "SELECT 'why?', \"odd?\" -- really?\nFROM t /* ok? */ WHERE a = ?";
        assert_eq!(
            number_placeholders(sql),
            "SELECT 'why?', \"odd?\" -- really?\nFROM t /* ok? */ WHERE a = $1"
        );
    }

    #[test]
    fn positions_count_characters_on_later_lines() {
        assert_eq!(
            number_placeholders("SELECT 'é'\nWHERE x = 'ü' AND y = ?\n  AND z = ?"),
            "SELECT 'é'\nWHERE x = 'ü' AND y = $1\n  AND z = $2"
        );
    }

    #[test]
    fn numbered_placeholders_and_plain_sql_are_unchanged() {
        for sql in ["SELECT $1, $2", "SELECT 1", "SELECT 'unterminated ?"] {
            assert_eq!(number_placeholders(sql), sql);
        }
    }
}
