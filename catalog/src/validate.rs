//! Checks on what callers hand the catalog, with messages that say what is wrong. The
//! database enforces the same rules as constraints; these run first to explain them.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    Error, Result,
    model::{
        BatchCounts, ColumnRole, ColumnType, Food, NewParquetFile, NewStream, Nutrients,
        QualityReport, QuarantinedRow, StreamKind, SubjectProfile,
    },
};

/// Organization and connector names: they appear in object-store paths and URLs.
pub(crate) fn slug(what: &str, name: &str) -> Result<()> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!(
                "'{name}' must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
            ),
        ))
    }
}

/// Stream, column and metric names: they are SQL identifiers.
pub(crate) fn identifier(what: &str, name: &str) -> Result<()> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("'{name}' must be 1-63 characters of a-z, 0-9 or '_', starting with a letter"),
        ))
    }
}

/// Lower-cases and checks an email address.
pub(crate) fn email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Error::invalid(
            "email",
            format!("'{email}' is not an email address"),
        ))
    }
}

pub(crate) fn non_empty(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(Error::invalid(what, "must not be empty"))
    } else {
        Ok(())
    }
}

pub(crate) fn pseudonym(pseudonym: &str) -> Result<()> {
    if pseudonym.is_empty() || pseudonym.len() > 128 || pseudonym.chars().any(char::is_control) {
        Err(Error::invalid(
            "subject pseudonym",
            format!("'{pseudonym}' must be 1-128 characters without control characters"),
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn profile(profile: &SubjectProfile) -> Result<()> {
    if profile.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(Error::invalid(
            "timezone",
            format!(
                "'{}' is not an IANA time zone such as Europe/Paris",
                profile.timezone
            ),
        ));
    }
    in_range(
        "birth year",
        profile.birth_year.map(|v| v as f64),
        1900.0,
        2100.0,
    )?;
    in_range("height (cm)", profile.height_cm, 40.0, 260.0)?;
    in_range(
        "max heart rate",
        profile.max_hr.map(|v| v as f64),
        100.0,
        250.0,
    )?;
    if let Some(address) = &profile.email {
        email(address)?;
    }
    Ok(())
}

fn in_range(what: &str, value: Option<f64>, min: f64, max: f64) -> Result<()> {
    match value {
        Some(v) if !(min..=max).contains(&v) => {
            Err(Error::invalid(what, format!("{v} is outside {min}-{max}")))
        }
        _ => Ok(()),
    }
}

pub(crate) fn positive(what: &str, value: Option<i64>) -> Result<()> {
    match value {
        Some(v) if v <= 0 => Err(Error::invalid(what, format!("{v} must be positive"))),
        _ => Ok(()),
    }
}

pub(crate) fn date_range(starts_on: NaiveDate, ends_on: Option<NaiveDate>) -> Result<()> {
    match ends_on {
        Some(end) if end < starts_on => Err(Error::invalid(
            "goal period",
            format!("ends on {end}, before it starts on {starts_on}"),
        )),
        _ => Ok(()),
    }
}

/// The schema rules every stream follows, so that the engine can rely on them: the series
/// key starts with `subject_id` and `source`, one `time` column, `end_time` exactly for
/// interval streams, and at least one value.
pub(crate) fn stream(stream: &NewStream) -> Result<()> {
    identifier("stream name", &stream.name)?;
    positive("retention days", stream.retention_days)?;
    positive("max duration (s)", stream.max_duration_seconds)?;
    let invalid = |reason: String| Error::invalid(format!("stream {}", stream.name), reason);
    if stream.kind == StreamKind::Point && stream.max_duration_seconds.is_some() {
        return Err(invalid("a point stream has no maximum duration".into()));
    }
    let mut seen = HashSet::new();
    for column in &stream.columns {
        identifier("column name", &column.name)?;
        if !seen.insert(column.name.as_str()) {
            return Err(invalid(format!("column {} appears twice", column.name)));
        }
        let numeric = matches!(column.arrow_type, ColumnType::Int64 | ColumnType::Float64);
        if !numeric && (column.plausible_min.is_some() || column.plausible_max.is_some()) {
            return Err(invalid(format!(
                "column {} has a plausible range but is not numeric",
                column.name
            )));
        }
        if let (Some(min), Some(max)) = (column.plausible_min, column.plausible_max)
            && min > max
        {
            return Err(invalid(format!(
                "column {}: plausible minimum {min} exceeds maximum {max}",
                column.name
            )));
        }
        match &column.allowed_values {
            Some(values) if column.arrow_type != ColumnType::Utf8 || values.is_empty() => {
                return Err(invalid(format!(
                    "column {}: allowed values need a Utf8 column and at least one value",
                    column.name
                )));
            }
            _ => {}
        }
        match column.role {
            ColumnRole::Key | ColumnRole::Time | ColumnRole::EndTime if column.nullable => {
                return Err(invalid(format!(
                    "{} column {} cannot be nullable",
                    column.role, column.name
                )));
            }
            ColumnRole::Key
                if !matches!(column.arrow_type, ColumnType::Int64 | ColumnType::Utf8) =>
            {
                return Err(invalid(format!(
                    "key column {} must be Int64 or Utf8",
                    column.name
                )));
            }
            _ => {}
        }
    }
    let expected_head = [
        ("subject_id", ColumnType::Int64, ColumnRole::Key),
        ("source", ColumnType::Utf8, ColumnRole::Key),
        ("time", ColumnType::TimestampNs, ColumnRole::Time),
    ];
    let head_matches = stream.columns.len() >= 3
        && expected_head
            .iter()
            .zip(&stream.columns)
            .all(|((name, ty, role), c)| c.name == *name && c.arrow_type == *ty && c.role == *role);
    if !head_matches {
        return Err(invalid(
            "the first columns must be subject_id (Int64 key), source (Utf8 key) and time \
             (Timestamp(ns)); NewStream::new adds them"
                .into(),
        ));
    }
    let count = |role| stream.columns.iter().filter(|c| c.role == role).count();
    if count(ColumnRole::Time) != 1 {
        return Err(invalid("a stream has exactly one time column".into()));
    }
    let end_times = count(ColumnRole::EndTime);
    match stream.kind {
        StreamKind::Interval
            if end_times != 1
                || stream.columns.get(3).is_none_or(|c| {
                    c.name != "end_time" || c.arrow_type != ColumnType::TimestampNs
                }) =>
        {
            return Err(invalid(
                "an interval stream has an end_time column (Timestamp(ns)) after time".into(),
            ));
        }
        StreamKind::Point if end_times != 0 => {
            return Err(invalid("a point stream has no end_time column".into()));
        }
        _ => {}
    }
    if count(ColumnRole::Value) == 0 {
        return Err(invalid("a stream needs at least one value column".into()));
    }
    Ok(())
}

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// The UTC day of an instant in nanoseconds since the Unix epoch.
pub(crate) fn day_of(nanos: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp(nanos.div_euclid(NANOS_PER_DAY) * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

pub(crate) fn parquet_file(file: &NewParquetFile) -> Result<()> {
    let invalid = |reason: String| Error::invalid(format!("parquet file {}", file.path), reason);
    non_empty("parquet file path", &file.path)?;
    if file.min_time > file.max_time || file.min_subject > file.max_subject {
        return Err(invalid("minimum above maximum".into()));
    }
    if file.row_count <= 0 || file.size_bytes <= 0 || file.compaction_level < 0 {
        return Err(invalid(format!(
            "{} rows, {} bytes and level {} must be positive",
            file.row_count, file.size_bytes, file.compaction_level
        )));
    }
    let (first, last) = (day_of(file.min_time), day_of(file.max_time));
    if first != file.day || last != file.day {
        return Err(invalid(format!(
            "rows from {first} to {last} do not all lie in its partition day {}",
            file.day
        )));
    }
    Ok(())
}

pub(crate) fn batch_counts(counts: &BatchCounts) -> Result<()> {
    let BatchCounts {
        rows_in,
        rows_accepted,
        rows_rejected,
        rows_corrected,
    } = *counts;
    if rows_in < 0 || rows_accepted < 0 || rows_rejected < 0 || rows_corrected < 0 {
        return Err(Error::invalid("batch counts", "counts cannot be negative"));
    }
    if rows_accepted + rows_rejected > rows_in {
        return Err(Error::invalid(
            "batch counts",
            format!("{rows_accepted} accepted + {rows_rejected} rejected exceed {rows_in} rows in"),
        ));
    }
    Ok(())
}

pub(crate) fn quality_report(report: &QualityReport) -> Result<()> {
    non_empty("quality report column", &report.column)?;
    non_empty("quality report rule", &report.rule)?;
    let counts = [
        report.rows_checked,
        report.rows_corrected,
        report.rows_rejected,
        report.rows_flagged,
    ];
    if counts.iter().any(|c| *c < 0) {
        return Err(Error::invalid(
            format!("quality report {}/{}", report.column, report.rule),
            "counts cannot be negative",
        ));
    }
    in_range("completeness", report.completeness, 0.0, 1.0)
}

/// Checks a food and returns it as stored: NUL characters in its texts (food databases are
/// scraped from the web) replaced by U+FFFD.
pub(crate) fn food(food: Food) -> Result<Food> {
    let what = || format!("food {}", food.id);
    if food.id.trim().is_empty() || food.id.chars().count() > 200 {
        return Err(Error::invalid(
            "food id",
            format!("'{}' must have 1 to 200 characters", food.id),
        ));
    }
    if food.name.trim().is_empty() {
        return Err(Error::invalid(what(), "it has no name"));
    }
    non_empty("food source", &food.source)?;
    for (column, value) in Nutrients::COLUMNS.iter().zip(food.per_100g.values()) {
        if let Some(value) = value
            && !(value.is_finite() && value >= 0.0)
        {
            return Err(Error::invalid(
                what(),
                format!("{column} per 100 g must be a finite number ≥ 0, not {value}"),
            ));
        }
    }
    let clean = |text: String| {
        if text.contains('\0') {
            text.replace('\0', "\u{FFFD}")
        } else {
            text
        }
    };
    Ok(Food {
        id: clean(food.id),
        source: clean(food.source),
        name: clean(food.name),
        brand: food.brand.map(clean),
        per_100g: food.per_100g,
    })
}

/// The longest `value` a quarantined row keeps, in characters.
pub(crate) const QUARANTINE_VALUE_CHARS: usize = 200;
/// The longest `reason` a quarantined row keeps, in characters.
pub(crate) const QUARANTINE_REASON_CHARS: usize = 1000;

/// Checks a quarantined row and returns it as stored: the value and reason cut to their
/// lengths, and NUL characters (which PostgreSQL refuses in text and SQLite's `length` stops
/// at) replaced by U+FFFD. The offending value came from a file that failed to load, so
/// anything may be in it.
pub(crate) fn quarantined_row(row: QuarantinedRow) -> Result<QuarantinedRow> {
    let what = || match row.record {
        Some(record) => format!("quarantined row {}:{record}", row.file),
        None => format!("quarantined row of {}", row.file),
    };
    if row.rule.trim().is_empty() {
        return Err(Error::invalid(what(), "the rule must not be empty"));
    }
    if row.reason.trim().is_empty() {
        return Err(Error::invalid(what(), "the reason must not be empty"));
    }
    if let Some(record) = row.record.filter(|r| *r < 0) {
        return Err(Error::invalid(
            what(),
            format!("record number {record} cannot be negative"),
        ));
    }
    Ok(QuarantinedRow {
        batch: row.batch,
        stream: row.stream,
        file: without_nul(row.file),
        record: row.record,
        column: row.column.map(without_nul),
        rule: without_nul(row.rule),
        reason: clip(without_nul(row.reason), QUARANTINE_REASON_CHARS),
        value: row
            .value
            .map(|v| clip(without_nul(v), QUARANTINE_VALUE_CHARS)),
    })
}

/// The first `chars` characters of `text`.
fn clip(mut text: String, chars: usize) -> String {
    if let Some((end, _)) = text.char_indices().nth(chars) {
        text.truncate(end);
    }
    text
}

fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// How many rows a listing may return.
pub(crate) fn limit(limit: i64) -> Result<()> {
    if limit < 0 {
        Err(Error::invalid(
            "limit",
            format!("{limit} cannot be negative"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StreamColumn;

    #[test]
    fn days_follow_utc_midnight() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(day_of(0), day("1970-01-01"));
        assert_eq!(day_of(NANOS_PER_DAY - 1), day("1970-01-01"));
        assert_eq!(day_of(NANOS_PER_DAY), day("1970-01-02"));
        assert_eq!(day_of(-1), day("1969-12-31"));
        assert_eq!(day_of(1_700_000_000_000_000_000), day("2023-11-14"));
    }

    #[test]
    fn custom_streams_keep_the_common_head() {
        let value = StreamColumn::value("celsius", ColumnType::Float64);
        assert!(
            stream(&NewStream::new(
                "skin_temperature",
                StreamKind::Point,
                vec![value.clone()]
            ))
            .is_ok()
        );
        assert!(
            stream(&NewStream::new(
                "fasting",
                StreamKind::Interval,
                vec![value.clone()]
            ))
            .is_ok()
        );

        let mut headless =
            NewStream::new("skin_temperature", StreamKind::Point, vec![value.clone()]);
        headless.columns.remove(1);
        assert!(
            stream(&headless)
                .unwrap_err()
                .to_string()
                .contains("first columns")
        );

        let no_values = NewStream::new("empty", StreamKind::Point, vec![]);
        assert!(
            stream(&no_values)
                .unwrap_err()
                .to_string()
                .contains("value column")
        );

        let twice = NewStream::new(
            "twice",
            StreamKind::Point,
            vec![value.clone(), value.clone()],
        );
        assert!(
            stream(&twice)
                .unwrap_err()
                .to_string()
                .contains("appears twice")
        );

        let mut point_with_end = NewStream::new("odd", StreamKind::Interval, vec![value.clone()]);
        point_with_end.kind = StreamKind::Point;
        assert!(
            stream(&point_with_end)
                .unwrap_err()
                .to_string()
                .contains("no end_time")
        );

        let bad_range = StreamColumn {
            plausible_min: Some(10.0),
            plausible_max: Some(1.0),
            ..value
        };
        let err = stream(&NewStream::new(
            "ranges",
            StreamKind::Point,
            vec![bad_range],
        ))
        .unwrap_err();
        assert!(err.to_string().contains("exceeds maximum"), "{err}");
    }

    #[test]
    fn names_that_would_break_paths_are_refused() {
        assert!(slug("organization", "acme-health_2").is_ok());
        for bad in ["", "Acme", "a/b", "-x", "a b", &"x".repeat(64)] {
            assert!(slug("organization", bad).is_err(), "{bad}");
        }
        assert!(identifier("stream", "heart_rate").is_ok());
        for bad in ["1x", "heart-rate", "Heart", "x;drop"] {
            assert!(identifier("stream", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quarantined_values_are_cut_on_character_boundaries() {
        assert_eq!(clip("abc".into(), 5), "abc");
        assert_eq!(clip("abcdef".into(), 3), "abc");
        assert_eq!(clip("ééé".into(), 2), "éé");
        assert_eq!(clip("🫀🫀".into(), 0), "");

        let row = QuarantinedRow {
            batch: crate::model::BatchId(1),
            stream: None,
            file: "a\0.csv".into(),
            record: Some(3),
            column: Some("bpm".into()),
            rule: "range".into(),
            reason: "r".repeat(1500),
            value: Some(format!("{}\0", "ü".repeat(300))),
        };
        let stored = quarantined_row(row.clone()).unwrap();
        assert_eq!(stored.file, "a\u{FFFD}.csv");
        assert_eq!(stored.reason.chars().count(), 1000);
        assert_eq!(stored.value, Some("ü".repeat(200)));
        for bad in [
            QuarantinedRow {
                rule: " ".into(),
                ..row.clone()
            },
            QuarantinedRow {
                reason: String::new(),
                ..row.clone()
            },
            QuarantinedRow {
                record: Some(-1),
                ..row.clone()
            },
        ] {
            let err = quarantined_row(bad).unwrap_err().to_string();
            assert!(err.contains("quarantined row a\0.csv:"), "{err}");
        }
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(email("  Ana@Example.COM ").unwrap(), "ana@example.com");
        for bad in ["ana", "@example.com", "ana@", "a na@example.com"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
