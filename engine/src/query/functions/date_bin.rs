//! DataFusion's `date_bin`, hashed by its name.
//!
//! Planning hashes every expression many times (common subexpressions, grouping sets,
//! equivalence classes), and hashing a function call hashes its signature: `date_bin`'s lists
//! 32 argument type combinations, so hashing it was a sixth of planning a one-hour query
//! (`perf`, q1 of the workload). Every instance of this function is the same function, so its
//! name identifies it.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::{
    common::{Result, ScalarValue},
    functions::datetime::date_bin::DateBinFunc,
    logical_expr::{
        ColumnarValue, Documentation, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
        Signature,
        expr::ScalarFunction,
        sort_properties::{ExprProperties, SortProperties},
    },
};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The `date_bin` every session has, and the engine's rewrites call.
pub(crate) fn date_bin() -> Arc<ScalarUDF> {
    static DATE_BIN: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(DateBin::new())));
    DATE_BIN.clone()
}

/// Delegates every method `DateBinFunc` implements; the others keep their defaults in both.
#[derive(Debug)]
pub(crate) struct DateBin(DateBinFunc);

impl DateBin {
    pub(crate) fn new() -> Self {
        Self(DateBinFunc::new())
    }
}

same_by_name!(DateBin);

impl ScalarUDFImpl for DateBin {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn signature(&self) -> &Signature {
        self.0.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.0.invoke_with_args(args)
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.0.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.0.documentation()
    }
}

/// `date_bin` with a stride of a fixed number of nanoseconds, as DataFusion computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub(crate) struct Bucketing {
    /// Bucket width in nanoseconds, positive.
    pub stride: i64,
    /// An instant where a bucket starts, in nanoseconds since the epoch.
    pub origin: i64,
}

impl Bucketing {
    /// The bucketing of `date_bin(<stride>, expr[, <origin>])` with a constant stride of a
    /// fixed length (days, hours, minutes, seconds: no months) and a constant origin, and the
    /// expression it bins; `None` for any other call.
    pub(crate) fn of(call: &ScalarFunction) -> Option<(Self, &Expr)> {
        let literal = |e: &Expr| match e {
            Expr::Literal(v, _) => Some(v.clone()),
            _ => None,
        };
        let (stride, binned, origin) = match (call.func.name(), call.args.as_slice()) {
            ("date_bin", [stride, binned]) => (stride, binned, None),
            ("date_bin", [stride, binned, origin]) => (stride, binned, Some(origin)),
            _ => return None,
        };
        let stride = stride_nanos(&literal(stride)?)?;
        let origin = match origin {
            None => 0,
            Some(origin) => timestamp_nanos(&literal(origin)?)?,
        };
        (stride > 0).then_some((Self { stride, origin }, binned))
    }

    /// The start of the bucket that holds `time`, or `None` where DataFusion's `date_bin`
    /// overflows (and returns NULL).
    pub(crate) fn bucket(&self, time: i64) -> Option<i64> {
        let diff = time.checked_sub(self.origin)?;
        let mut delta = diff - diff % self.stride;
        if diff < 0 && self.stride > 1 && delta != diff {
            delta = delta.checked_sub(self.stride)?;
        }
        self.origin.checked_add(delta)
    }
}

/// An interval constant of a fixed length (days, hours, minutes, seconds: no months) in
/// nanoseconds.
pub(crate) fn stride_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano {
            months: 0,
            days,
            nanoseconds,
        })) => i64::from(*days)
            .checked_mul(NANOS_PER_DAY)?
            .checked_add(*nanoseconds),
        ScalarValue::IntervalDayTime(Some(v)) => i64::from(v.days)
            .checked_mul(NANOS_PER_DAY)?
            .checked_add(i64::from(v.milliseconds) * 1_000_000),
        _ => None,
    }
}

/// A timestamp constant as nanoseconds since the epoch, when it is an instant in UTC.
pub(crate) fn timestamp_nanos(value: &ScalarValue) -> Option<i64> {
    let utc = |tz: &Option<Arc<str>>| {
        tz.as_deref()
            .is_none_or(|tz| matches!(tz, "UTC" | "+00:00" | "Z"))
    };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), tz) if utc(tz) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), tz) if utc(tz) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), tz) if utc(tz) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), tz) if utc(tz) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use datafusion::{
        arrow::array::{Array, TimestampNanosecondArray},
        prelude::SessionContext,
    };

    use super::*;

    #[tokio::test]
    async fn bins_as_datafusions_date_bin() {
        let ctx = SessionContext::new();
        let sql = "SELECT date_bin(INTERVAL '15 minutes', t, TIMESTAMP '2026-01-01 00:05:00') AS b \
                   FROM (VALUES (TIMESTAMP '2026-03-01 10:04:59'), (TIMESTAMP '2026-03-01 10:05:00'), \
                   (TIMESTAMP '2026-03-01 10:19:59'), (NULL)) AS v(t) ORDER BY t";
        let builtin = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        ctx.register_udf(ScalarUDF::from(DateBin::new()));
        let ours = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(ours, builtin);
        let bins = ours[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        assert_eq!(bins.len(), 4);
        assert!(bins.is_null(3));
        assert_eq!(bins.value(1) - bins.value(0), 15 * 60 * 1_000_000_000);
        assert_eq!(bins.value(2), bins.value(1));
    }

    #[test]
    fn keeps_the_order_of_the_times_it_bins() {
        let constant = ExprProperties::new_unknown().with_order(SortProperties::Singleton);
        let ascending = ExprProperties::new_unknown().with_order(SortProperties::Ordered(
            arrow::compute::SortOptions::default(),
        ));
        let order = DateBin::new()
            .output_ordering(&[constant, ascending.clone()])
            .unwrap();
        assert_eq!(order, ascending.sort_properties);
        let unordered = DateBin::new()
            .output_ordering(&[ascending.clone(), ascending])
            .unwrap();
        assert_eq!(unordered, SortProperties::Unordered);
    }

    #[test]
    fn bucketing_of_a_call_with_constant_stride_and_origin() {
        use datafusion::prelude::{col, lit};
        const MINUTE: i64 = 60_000_000_000;
        let call = |stride: IntervalMonthDayNano, origin: Option<i64>| {
            let mut args = vec![
                lit(ScalarValue::IntervalMonthDayNano(Some(stride))),
                col("time"),
            ];
            args.extend(origin.map(|o| lit(ScalarValue::TimestampNanosecond(Some(o), None))));
            match date_bin().call(args) {
                Expr::ScalarFunction(call) => call,
                other => panic!("not a call: {other}"),
            }
        };
        let quarter = IntervalMonthDayNano::new(0, 0, 15 * MINUTE);
        let call_from_five = call(quarter, Some(5 * MINUTE));
        let (bucketing, binned) = Bucketing::of(&call_from_five).unwrap();
        assert_eq!(binned, &col("time"));
        assert_eq!(
            (bucketing.stride, bucketing.origin),
            (15 * MINUTE, 5 * MINUTE)
        );
        assert_eq!(bucketing.bucket(5 * MINUTE), Some(5 * MINUTE));
        assert_eq!(bucketing.bucket(20 * MINUTE - 1), Some(5 * MINUTE));
        assert_eq!(bucketing.bucket(4 * MINUTE), Some(-10 * MINUTE));
        assert_eq!(bucketing.bucket(i64::MIN), None);
        let (day, _) = Bucketing::of(&call(IntervalMonthDayNano::new(0, 1, 0), None)).unwrap();
        assert_eq!((day.stride, day.origin), (1_440 * MINUTE, 0));
        assert!(Bucketing::of(&call(IntervalMonthDayNano::new(1, 0, 0), None)).is_none());
        assert!(Bucketing::of(&call(IntervalMonthDayNano::new(0, 0, 0), None)).is_none());
    }

    #[test]
    fn hashes_and_compares_by_name() {
        let hasher = std::collections::hash_map::RandomState::new();
        let (a, b) = (
            ScalarUDF::from(DateBin::new()),
            ScalarUDF::from(DateBin::new()),
        );
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        assert_ne!(a, ScalarUDF::from(DateBinFunc::new()));
    }
}
