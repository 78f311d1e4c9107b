//! From a scan's filters to the bounds the catalog prunes files by: a time range on `time`
//! and a subject range on `subject_id`. Only conjuncts that bound those columns by a constant
//! are read; anything else leaves the range open, which is always correct.

use catalog::{FileFilter, SubjectId};
use datafusion::{
    common::ScalarValue,
    logical_expr::{BinaryExpr, Expr, Operator, expr::InList},
};

use crate::schema::{SUBJECT_ID, TIME};

/// `[start, end)` in nanoseconds and `[low, high]` subject ids, narrowed conjunct by conjunct.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    start: i64,
    end: i64,
    low: i64,
    high: i64,
}

pub(crate) fn file_filter(filters: &[Expr]) -> FileFilter {
    let mut bounds = Bounds {
        start: i64::MIN,
        end: i64::MAX,
        low: i64::MIN,
        high: i64::MAX,
    };
    for filter in filters {
        narrow(&mut bounds, filter);
    }
    FileFilter {
        time: (bounds.start != i64::MIN || bounds.end != i64::MAX)
            .then_some((bounds.start, bounds.end)),
        subjects: (bounds.low != i64::MIN || bounds.high != i64::MAX)
            .then_some((SubjectId(bounds.low), SubjectId(bounds.high))),
    }
}

fn narrow(bounds: &mut Bounds, expr: &Expr) {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            narrow(bounds, left);
            narrow(bounds, right);
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, op, value) = match (
                column_name(left),
                constant(right),
                column_name(right),
                constant(left),
            ) {
                (Some(c), Some(v), _, _) => (c, *op, v),
                (_, _, Some(c), Some(v)) => match op.swap() {
                    Some(swapped) => (c, swapped, v),
                    None => return,
                },
                _ => return,
            };
            if column == TIME {
                if let Some(t) = nanos(&value) {
                    match op {
                        Operator::Eq => {
                            bounds.start = bounds.start.max(t);
                            bounds.end = bounds.end.min(t.saturating_add(1));
                        }
                        Operator::Gt => bounds.start = bounds.start.max(t.saturating_add(1)),
                        Operator::GtEq => bounds.start = bounds.start.max(t),
                        Operator::Lt => bounds.end = bounds.end.min(t),
                        Operator::LtEq => bounds.end = bounds.end.min(t.saturating_add(1)),
                        _ => {}
                    }
                }
            } else if column == SUBJECT_ID
                && let Some(s) = integer(&value)
            {
                match op {
                    Operator::Eq => {
                        bounds.low = bounds.low.max(s);
                        bounds.high = bounds.high.min(s);
                    }
                    Operator::Gt => bounds.low = bounds.low.max(s.saturating_add(1)),
                    Operator::GtEq => bounds.low = bounds.low.max(s),
                    Operator::Lt => bounds.high = bounds.high.min(s.saturating_sub(1)),
                    Operator::LtEq => bounds.high = bounds.high.min(s),
                    _ => {}
                }
            }
        }
        Expr::Between(between) if !between.negated => {
            let (Some(column), Some(low), Some(high)) = (
                column_name(&between.expr),
                constant(&between.low),
                constant(&between.high),
            ) else {
                return;
            };
            if column == TIME
                && let (Some(low), Some(high)) = (nanos(&low), nanos(&high))
            {
                bounds.start = bounds.start.max(low);
                bounds.end = bounds.end.min(high.saturating_add(1));
            } else if column == SUBJECT_ID
                && let (Some(low), Some(high)) = (integer(&low), integer(&high))
            {
                bounds.low = bounds.low.max(low);
                bounds.high = bounds.high.min(high);
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if column_name(expr) == Some(SUBJECT_ID) => {
            let ids: Option<Vec<i64>> = list
                .iter()
                .map(|e| constant(e).and_then(|v| integer(&v)))
                .collect();
            if let Some(ids) = ids.filter(|ids| !ids.is_empty()) {
                bounds.low = bounds
                    .low
                    .max(ids.iter().copied().min().unwrap_or(i64::MIN));
                bounds.high = bounds
                    .high
                    .min(ids.iter().copied().max().unwrap_or(i64::MAX));
            }
        }
        _ => {}
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn constant(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) if !value.is_null() => Some(value.clone()),
        _ => None,
    }
}

fn nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::Int32(Some(v)) => Some((*v).into()),
        ScalarValue::UInt32(Some(v)) => Some((*v).into()),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn ts(nanos: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(nanos), None))
    }

    #[test]
    fn time_and_subject_bounds_are_read_from_conjuncts() {
        let filter = file_filter(&[
            col("time").gt_eq(ts(100)),
            col("time").lt(ts(200)).and(col("subject_id").eq(lit(7i64))),
        ]);
        assert_eq!(filter.time, Some((100, 200)));
        assert_eq!(filter.subjects, Some((SubjectId(7), SubjectId(7))));

        let reversed = file_filter(&[ts(100).lt_eq(col("time")), lit(9i64).gt(col("subject_id"))]);
        assert_eq!(reversed.time, Some((100, i64::MAX)));
        assert_eq!(reversed.subjects, Some((SubjectId(i64::MIN), SubjectId(8))));

        let listed = file_filter(&[col("subject_id").in_list(vec![lit(3i64), lit(11i64)], false)]);
        assert_eq!(listed.subjects, Some((SubjectId(3), SubjectId(11))));

        let between = file_filter(&[col("time").between(ts(10), ts(20))]);
        assert_eq!(between.time, Some((10, 21)));

        let millis =
            file_filter(&[col("time").eq(lit(ScalarValue::TimestampMillisecond(Some(5), None)))]);
        assert_eq!(millis.time, Some((5_000_000, 5_000_001)));
    }

    #[test]
    fn what_cannot_be_bounded_stays_open() {
        for filter in [
            col("time").gt(ts(1)).or(col("subject_id").eq(lit(1i64))),
            col("bpm").gt(lit(100.0)),
            col("subject_id").in_list(vec![lit(1i64)], true),
            col("time").not_eq(ts(5)),
        ] {
            assert_eq!(
                file_filter(std::slice::from_ref(&filter)),
                FileFilter::default(),
                "{filter}"
            );
        }
    }
}
