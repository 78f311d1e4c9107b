//! DataFusion's `date_part` (and `EXTRACT`, which the SQL planner turns into it), with the
//! year of a timestamp column computed without a calendar per row.
//!
//! `extract(year FROM time)` is how a query finds a subject's age at a reading (a maximum
//! heart rate of 220 − age), and DataFusion's conversion of every value to a date through
//! chrono was more than a third of q9's time in the workload (`perf`). A batch of readings
//! almost always lies within one year, and its values' range says so: then the year is one
//! number for the whole batch; otherwise each value's year comes from its day number.
//! Nanosecond timestamps without a time zone take this path; everything else is DataFusion's.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, AsArray, Int32Array, TimestampNanosecondArray},
    datatypes::{DataType, FieldRef, TimestampNanosecondType},
};
use datafusion::{
    common::Result,
    functions::datetime::date_part::DatePartFunc,
    logical_expr::{
        ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
        ScalarUDFImpl, Signature,
        expr::ScalarFunction,
        planner::{ExprPlanner, PlannerResult},
        preimage::PreimageResult,
        simplify::SimplifyContext,
    },
};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The `date_part` every session has and `EXTRACT` plans to.
pub(crate) fn date_part() -> Arc<ScalarUDF> {
    static DATE_PART: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(DatePart(DatePartFunc::new()))));
    DATE_PART.clone()
}

/// Plans `EXTRACT(part FROM value)` as this module's `date_part`; put before DataFusion's
/// planners, which plan it as their own.
#[derive(Debug)]
pub(crate) struct ExtractPlanner;

impl ExprPlanner for ExtractPlanner {
    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(date_part(), args),
        )))
    }
}

/// Delegates every method `DatePartFunc` implements; the others keep their defaults in both.
/// Hashed and compared by its name (`same_by_name!`), as `date_bin` is.
#[derive(Debug)]
struct DatePart(DatePartFunc);

same_by_name!(DatePart);

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn signature(&self) -> &Signature {
        self.0.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.0.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Scalar(part), ColumnarValue::Array(values)] = args.args.as_slice()
            && part
                .try_as_str()
                .flatten()
                .is_some_and(|part| part.eq_ignore_ascii_case("year"))
            && let Some(times) = values.as_primitive_opt::<TimestampNanosecondType>()
            && times.timezone().is_none()
        {
            return Ok(ColumnarValue::Array(Arc::new(years(times))));
        }
        self.0.invoke_with_args(args)
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.0.preimage(args, lit_expr, info)
    }

    fn aliases(&self) -> &[String] {
        self.0.aliases()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.0.documentation()
    }
}

/// The UTC year of each timestamp, NULL where it is NULL.
fn years(times: &TimestampNanosecondArray) -> Int32Array {
    let values = times.values();
    let nulls = times.nulls().cloned();
    // The slots under NULLs hold anything; at worst they widen the range.
    let (min, max) = values.iter().fold((i64::MAX, i64::MIN), |(min, max), &t| {
        (min.min(t), max.max(t))
    });
    if values.is_empty() || year_of(min) != year_of(max) {
        return Int32Array::new(values.iter().map(|&t| year_of(t)).collect(), nulls);
    }
    Int32Array::new(vec![year_of(min); values.len()].into(), nulls)
}

/// The proleptic Gregorian year of a UTC instant, from its day number (Howard Hinnant's
/// `civil_from_days`, in integers: no table, no failure for any `i64`).
fn year_of(nanos: i64) -> i32 {
    let z = nanos.div_euclid(NANOS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    // The era's years start in March: January and February belong to the next year.
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    year as i32
}

#[cfg(test)]
mod tests {
    use arrow::array::ArrayRef;
    use datafusion::{
        arrow::datatypes::Field, common::ScalarValue, config::ConfigOptions,
        logical_expr::ScalarUDFImpl,
    };

    use super::*;

    fn call(function: &dyn ScalarUDFImpl, part: &str, times: ArrayRef) -> ArrayRef {
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(part.to_owned()))),
                ColumnarValue::Array(times.clone()),
            ],
            arg_fields: vec![
                Arc::new(Field::new("part", DataType::Utf8, false)),
                Arc::new(Field::new("t", times.data_type().clone(), true)),
            ],
            number_rows: times.len(),
            return_field: Arc::new(Field::new("date_part", DataType::Int32, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match function.invoke_with_args(args) {
            Ok(ColumnarValue::Array(array)) => array,
            other => panic!("date_part answered {other:?}"),
        }
    }

    /// Every shortcut gives the years DataFusion's `date_part` gives: batches within one
    /// year, across New Year, before 1970 and at the ends of the range, with NULLs.
    #[test]
    fn years_are_datafusions() {
        let ours = DatePart(DatePartFunc::new());
        let theirs = DatePartFunc::new();
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_nanos_opt().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{text}: {e}"))
        };
        let batches: Vec<Vec<Option<i64>>> = vec![
            vec![
                Some(at("2026-03-01T00:00:00Z")),
                Some(at("2026-12-31T23:59:59Z")),
                None,
            ],
            vec![
                Some(at("2025-12-31T23:59:59.999999999Z")),
                Some(at("2026-01-01T00:00:00Z")),
            ],
            vec![
                Some(at("1969-12-31T23:59:59Z")),
                Some(at("1970-01-01T00:00:00Z")),
            ],
            vec![
                Some(at("2000-02-29T12:00:00Z")),
                Some(at("1900-03-01T00:00:00Z")),
            ],
            vec![
                Some(at("2100-02-28T23:00:00Z")),
                Some(at("2100-03-01T01:00:00Z")),
            ],
            vec![Some(i64::MIN), Some(i64::MAX), Some(0), Some(-1), None],
            (0..2_000)
                .map(|day| Some(at("1960-01-01T06:00:00Z") + day * 37 * NANOS_PER_DAY))
                .collect(),
            vec![],
        ];
        for batch in batches {
            let times: ArrayRef = Arc::new(TimestampNanosecondArray::from(batch.clone()));
            for part in ["year", "YEAR", "month"] {
                assert_eq!(
                    call(&ours, part, times.clone()).as_ref(),
                    call(&theirs, part, times.clone()).as_ref(),
                    "{part} of {batch:?}"
                );
            }
        }
    }

    /// `EXTRACT` and `date_part` in the engine's sessions call this function, not
    /// DataFusion's.
    #[tokio::test]
    async fn sessions_extract_with_this_function() {
        let state = crate::query::session_template(
            1,
            true,
            None,
            Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        );
        let ctx = datafusion::prelude::SessionContext::new_with_state(state);
        for sql in [
            "SELECT extract(year FROM t) FROM (VALUES (TIMESTAMP '2026-05-01')) v(t)",
            "SELECT date_part('year', t) FROM (VALUES (TIMESTAMP '2026-05-01')) v(t)",
        ] {
            let frame = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let plan = frame.logical_plan();
            let calls: Vec<_> = plan
                .expressions()
                .into_iter()
                .filter_map(|expr| match expr {
                    Expr::Alias(alias) => match *alias.expr {
                        Expr::ScalarFunction(call) => Some(call.func),
                        _ => None,
                    },
                    Expr::ScalarFunction(call) => Some(call.func),
                    _ => None,
                })
                .collect();
            assert_eq!(calls.len(), 1, "{sql}: {plan}");
            assert!(
                calls[0].as_ref() == date_part().as_ref(),
                "{sql}: DataFusion's"
            );
            let batches = frame
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(
                batches[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .value(0),
                2026
            );
        }
    }

    /// A batch within one year is one number; the NULLs stay.
    #[test]
    fn a_batch_within_a_year_keeps_its_nulls() {
        let times = TimestampNanosecondArray::from(vec![Some(1_780_000_000_000_000_000), None]);
        let years = years(&times);
        assert_eq!(years.value(0), 2026);
        assert!(years.is_null(1));
    }
}
