//! Heart-rate zones: `hr_zone(bpm, max_hr)`, `max_hr(age)` and the pieces of the
//! `time_in_zone(bpm, time, max_hr, zone)` aggregate.
//!
//! A zone is the share of the maximum heart rate: 0 below 50 %, 1 from 50 %, 2 from 60 %,
//! 3 from 70 %, 4 from 80 %, 5 from 90 % (no upper bound: a reading above the maximum is
//! zone 5).

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, Int32Array},
    datatypes::{DataType, Float64Type, TimestampNanosecondType},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err},
    logical_expr::{
        ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
        function::AccumulatorArgs,
    },
    physical_expr::expressions::Literal,
};

use super::{
    NANOS_PER_MINUTE, check_arity, instant, number,
    series::{Sample, Step},
};

/// The lowest share of the maximum heart rate of zones 1 to 5.
const ZONE_FLOORS: [f64; 5] = [0.5, 0.6, 0.7, 0.8, 0.9];

/// The zone of a heart rate given as a share of the maximum.
pub(super) fn zone_of(share_of_max: f64) -> i32 {
    ZONE_FLOORS.iter().filter(|&&f| share_of_max >= f).count() as i32
}

/// `bpm / max_hr`, refusing values no heart has.
pub(super) fn share_of_max(function: &str, bpm: f64, max_hr: f64) -> Result<f64> {
    if !(max_hr.is_finite() && max_hr > 0.0) {
        return exec_err!("{function}: max_hr must be a positive number, got {max_hr}");
    }
    if !(bpm.is_finite() && bpm >= 0.0) {
        return exec_err!("{function}: bpm must be a non-negative number, got {bpm}");
    }
    Ok(bpm / max_hr)
}

/// `hr_zone(bpm, max_hr)`: the zone (0-5) of a reading, NULL when either is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct HrZone {
    signature: Signature,
}

impl HrZone {
    pub(super) fn new() -> Self {
        HrZone {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HrZone {
    fn name(&self) -> &str {
        "hr_zone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("hr_zone(bpm, max_hr)", args, &[2])?;
        Ok(vec![
            number("hr_zone", "bpm", &args[0])?,
            number("hr_zone", "max_hr", &args[1])?,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let bpm = arrays[0].as_primitive::<Float64Type>();
        let max_hr = arrays[1].as_primitive::<Float64Type>();
        let zones = bpm
            .iter()
            .zip(max_hr)
            .map(|pair| match pair {
                (Some(bpm), Some(max_hr)) => {
                    share_of_max("hr_zone", bpm, max_hr).map(|s| Some(zone_of(s)))
                }
                _ => Ok(None),
            })
            .collect::<Result<Int32Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(zones)))
    }
}

/// `max_hr(age)`: the maximum heart rate predicted by Tanaka, Monahan and Seals (2001),
/// 208 − 0.7 × age, for subjects without a measured one.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct MaxHr {
    signature: Signature,
}

impl MaxHr {
    pub(super) fn new() -> Self {
        MaxHr {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaxHr {
    fn name(&self) -> &str {
        "max_hr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("max_hr(age)", args, &[1])?;
        Ok(vec![number("max_hr", "age", &args[0])?])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let predicted = arrays[0]
            .as_primitive::<Float64Type>()
            .iter()
            .map(|age| match age {
                Some(age) if (0.0..=150.0).contains(&age) => Ok(Some(208.0 - 0.7 * age)),
                Some(age) => exec_err!("max_hr: age must be from 0 to 150 years, got {age}"),
                None => Ok(None),
            })
            .collect::<Result<Float64Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(predicted)))
    }
}

pub(super) const TIME_IN_ZONE_USAGE: &str = "time_in_zone(bpm, time, max_hr, zone)";

pub(super) fn coerce_time_in_zone(args: &[DataType]) -> Result<Vec<DataType>> {
    check_arity(TIME_IN_ZONE_USAGE, args, &[4])?;
    let zone = match &args[3] {
        t if t.is_integer() || t.is_null() => DataType::Int64,
        t => return plan_err!("time_in_zone: zone must be an integer from 0 to 5, got {t}"),
    };
    Ok(vec![
        number("time_in_zone", "bpm", &args[0])?,
        instant("time_in_zone", "time", &args[1])?,
        number("time_in_zone", "max_hr", &args[2])?,
        zone,
    ])
}

/// The zone asked for: a constant, so that every row of a group counts toward the same one.
pub(super) fn constant_zone(args: &AccumulatorArgs) -> Result<i32> {
    let zone = args
        .exprs
        .get(3)
        .and_then(|e| e.downcast_ref::<Literal>())
        .map(|literal| literal.value());
    match zone {
        Some(ScalarValue::Int64(Some(zone))) if (0..=5).contains(zone) => Ok(*zone as i32),
        Some(other) => exec_err!("time_in_zone: zone must be from 0 to 5, got {other}"),
        None => exec_err!("time_in_zone: zone must be a constant from 0 to 5, not a column"),
    }
}

/// One sample per usable row: its time and its share of the maximum heart rate.
pub(super) fn shares_of_max(values: &[ArrayRef], samples: &mut Vec<Sample>) -> Result<()> {
    let bpm = values[0].as_primitive::<Float64Type>();
    let time = values[1].as_primitive::<TimestampNanosecondType>();
    let max_hr = values[2].as_primitive::<Float64Type>();
    for row in 0..bpm.len() {
        if bpm.is_valid(row) && time.is_valid(row) && max_hr.is_valid(row) {
            let share = share_of_max("time_in_zone", bpm.value(row), max_hr.value(row))?;
            samples.push((time.value(row), share));
        }
    }
    Ok(())
}

/// Minutes of the steps whose share of the maximum falls in `zone`.
pub(super) fn minutes_in(zone: i32, steps: &[Step]) -> f64 {
    steps
        .iter()
        .filter(|step| zone_of(step.value) == zone)
        .map(|step| step.span as f64)
        // From +0.0: a `Sum` of no floats is −0.0.
        .fold(0.0, |total, span| total + span)
        / NANOS_PER_MINUTE
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, heart_rate_minutes, same_when_split, table};

    #[tokio::test]
    async fn hr_zone_follows_the_ten_percent_bands() {
        let batch = heart_rate_minutes(&[
            (1, 0, Some(0.0)),
            (1, 1, Some(99.9)),
            (1, 2, Some(100.0)),
            (1, 3, Some(119.0)),
            (1, 4, Some(120.0)),
            (1, 5, Some(140.0)),
            (1, 6, Some(160.0)),
            (1, 7, Some(180.0)),
            (1, 8, Some(250.0)),
            (1, 9, None),
        ]);
        assert_eq!(
            table(
                "SELECT bpm, hr_zone(bpm, 200) AS zone, hr_zone(bpm, NULL) AS no_max \
                 FROM t ORDER BY time",
                batch,
            )
            .await,
            "\
+-------+------+--------+
| bpm   | zone | no_max |
+-------+------+--------+
| 0.0   | 0    |        |
| 99.9  | 0    |        |
| 100.0 | 1    |        |
| 119.0 | 1    |        |
| 120.0 | 2    |        |
| 140.0 | 3    |        |
| 160.0 | 4    |        |
| 180.0 | 5    |        |
| 250.0 | 5    |        |
|       |      |        |
+-------+------+--------+"
        );
    }

    #[tokio::test]
    async fn hr_zone_boundaries_are_exact_for_any_maximum() {
        // 114 / 190 is exactly 60 %, 133 / 190 exactly 70 %.
        let batch = heart_rate_minutes(&[(1, 0, Some(114.0)), (1, 1, Some(133.0))]);
        assert_eq!(
            table("SELECT hr_zone(bpm, 190) AS z FROM t ORDER BY time", batch).await,
            "+---+\n| z |\n+---+\n| 2 |\n| 3 |\n+---+"
        );
    }

    #[tokio::test]
    async fn hr_zone_refuses_bad_arguments() {
        let batch = heart_rate_minutes(&[(1, 0, Some(100.0))]);
        let zero = error("SELECT hr_zone(bpm, 0) FROM t", batch.clone()).await;
        assert!(
            zero.contains("max_hr must be a positive number, got 0"),
            "{zero}"
        );
        let text = error("SELECT hr_zone(bpm, 'x') FROM t", batch.clone()).await;
        assert!(text.contains("hr_zone: max_hr must be a number"), "{text}");
        let arity = error("SELECT hr_zone(bpm) FROM t", batch.clone()).await;
        assert!(arity.contains("hr_zone(bpm, max_hr)"), "{arity}");
        let negative = error("SELECT hr_zone(-bpm, 200) FROM t", batch).await;
        assert!(
            negative.contains("bpm must be a non-negative number"),
            "{negative}"
        );
    }

    #[tokio::test]
    async fn max_hr_is_tanaka() {
        let batch = heart_rate_minutes(&[(1, 0, Some(40.0)), (1, 1, None)]);
        assert_eq!(
            table(
                "SELECT max_hr(bpm) AS m, hr_zone(150, max_hr(bpm)) AS z FROM t ORDER BY time",
                batch.clone(),
            )
            .await,
            "+-------+---+\n| m     | z |\n+-------+---+\n| 180.0 | 4 |\n|       |   |\n+-------+---+"
        );
        let old = error("SELECT max_hr(bpm + 200) FROM t", batch).await;
        assert!(
            old.contains("age must be from 0 to 150 years, got 240"),
            "{old}"
        );
    }

    #[tokio::test]
    async fn time_in_zone_counts_each_reading_until_the_next_capped() {
        // Max 200: 130 is zone 2, 150 zone 3, 170 zone 4, 190 zone 5.
        let batch = heart_rate_minutes(&[
            // Given out of order on purpose.
            (1, 2, Some(150.0)),
            (1, 0, Some(130.0)),
            (1, 3, Some(170.0)),
            // 20 minutes without readings: 170 counts 5 minutes, not 20.
            (1, 23, Some(190.0)),
            (1, 24, Some(130.0)),
            // The last reading of a group counts nothing: nothing says how long it lasted.
            (1, 25, Some(150.0)),
            (1, 26, None),
            (2, 0, Some(150.0)),
            // One reading: in the zone, for no time.
            (3, 0, Some(150.0)),
        ]);
        let sql = "SELECT subject_id, time_in_zone(bpm, time, 200, 2) AS z2, \
                   time_in_zone(bpm, time, 200, 3) AS z3, time_in_zone(bpm, time, 200, 4) AS z4, \
                   time_in_zone(bpm, time, 200, 5) AS z5, time_in_zone(bpm, time, 200, 0) AS z0 \
                   FROM t GROUP BY subject_id ORDER BY subject_id";
        assert_eq!(
            same_when_split(sql, batch, 3).await,
            "\
+------------+-----+-----+-----+-----+-----+
| subject_id | z2  | z3  | z4  | z5  | z0  |
+------------+-----+-----+-----+-----+-----+
| 1          | 3.0 | 1.0 | 5.0 | 1.0 | 0.0 |
| 2          | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| 3          | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
+------------+-----+-----+-----+-----+-----+"
        );
    }

    #[tokio::test]
    async fn time_in_zone_of_no_reading_is_null() {
        let batch = heart_rate_minutes(&[(1, 0, None), (1, 1, None)]);
        assert_eq!(
            table("SELECT time_in_zone(bpm, time, 200, 1) AS z FROM t", batch).await,
            "+---+\n| z |\n+---+\n|   |\n+---+"
        );
    }

    #[tokio::test]
    async fn time_in_zone_averages_readings_at_the_same_instant() {
        // 110 and 130 at minute 0 are 60 % together: zone 2 for one minute.
        let batch =
            heart_rate_minutes(&[(1, 0, Some(110.0)), (1, 0, Some(130.0)), (1, 1, Some(0.0))]);
        assert_eq!(
            table("SELECT time_in_zone(bpm, time, 200, 2) AS z FROM t", batch).await,
            "+-----+\n| z   |\n+-----+\n| 1.0 |\n+-----+"
        );
    }

    #[tokio::test]
    async fn time_in_zone_wants_a_constant_zone() {
        let batch = heart_rate_minutes(&[(1, 0, Some(100.0))]);
        let column = error(
            "SELECT time_in_zone(bpm, time, 200, subject_id) FROM t",
            batch.clone(),
        )
        .await;
        assert!(column.contains("zone must be a constant"), "{column}");
        let six = error(
            "SELECT time_in_zone(bpm, time, 200, 6) FROM t",
            batch.clone(),
        )
        .await;
        assert!(six.contains("zone must be from 0 to 5, got 6"), "{six}");
        let fraction = error(
            "SELECT time_in_zone(bpm, time, 200, 2.5) FROM t",
            batch.clone(),
        )
        .await;
        assert!(fraction.contains("zone must be an integer"), "{fraction}");
        let arity = error("SELECT time_in_zone(bpm, time, 200) FROM t", batch).await;
        assert!(
            arity.contains("time_in_zone(bpm, time, max_hr, zone)"),
            "{arity}"
        );
    }
}
