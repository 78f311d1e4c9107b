//! `resting_heart_rate(bpm, time)`: the lowest sustained heart rate of a group.
//!
//! The readings are cut into half-hour windows aligned on the half-hours of UTC (which are
//! local half-hours in every zone whose offset is a whole or half hour); the answer is the
//! lowest mean of a window holding at least [`MIN_READINGS`] readings, NULL when no window
//! does. Grouped by subject and `local_day(time, tz)`, that is the daily resting heart rate:
//! the quietest half hour of the day, usually during sleep, with single low outliers (a
//! loose strap) outvoted by the readings around them.
//!
//! The state is a sum and a count per window: a day is at most 50 windows.

use std::{collections::BTreeMap, mem::size_of, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, Int64Array},
    datatypes::{DataType, FieldRef, Float64Type, Int64Type, TimestampNanosecondType},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err},
    logical_expr::{
        Accumulator, AggregateUDFImpl, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

use super::{
    check_arity, instant, number,
    series::{list_field, list_rows, one_list},
};

const WINDOW: i64 = 30 * 60_000_000_000;
const MIN_READINGS: i64 = 3;

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RestingHeartRate {
    signature: Signature,
}

impl RestingHeartRate {
    pub(super) fn new() -> Self {
        RestingHeartRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for RestingHeartRate {
    fn name(&self) -> &str {
        "resting_heart_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("resting_heart_rate(bpm, time)", args, &[2])?;
        Ok(vec![
            number("resting_heart_rate", "bpm", &args[0])?,
            instant("resting_heart_rate", "time", &args[1])?,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Windows>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_field(format_state_name(args.name, "windows"), DataType::Int64),
            list_field(format_state_name(args.name, "sums"), DataType::Float64),
            list_field(format_state_name(args.name, "counts"), DataType::Int64),
        ])
    }
}

/// Sum and count of the readings of each half-hour window (by index since 1970).
#[derive(Debug, Default)]
struct Windows(BTreeMap<i64, (f64, i64)>);

impl Windows {
    fn add(&mut self, window: i64, sum: f64, count: i64) {
        let entry = self.0.entry(window).or_insert((0.0, 0));
        entry.0 += sum;
        entry.1 += count;
    }
}

impl Accumulator for Windows {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let bpm = values[0].as_primitive::<Float64Type>();
        let time = values[1].as_primitive::<TimestampNanosecondType>();
        for row in 0..bpm.len() {
            if bpm.is_valid(row) && time.is_valid(row) {
                let value = bpm.value(row);
                if !value.is_finite() {
                    return exec_err!(
                        "resting_heart_rate: bpm must be a finite number, got {value}"
                    );
                }
                self.add(time.value(row).div_euclid(WINDOW), value, 1);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = list_rows(&states[0])
            .zip(list_rows(&states[1]))
            .zip(list_rows(&states[2]));
        for ((windows, sums), counts) in rows {
            let windows = windows.as_primitive::<Int64Type>().values();
            let sums = sums.as_primitive::<Float64Type>().values();
            let counts = counts.as_primitive::<Int64Type>().values();
            for ((&window, &sum), &count) in windows.iter().zip(sums).zip(counts) {
                self.add(window, sum, count);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let windows = Int64Array::from_iter_values(self.0.keys().copied());
        let sums = Float64Array::from_iter_values(self.0.values().map(|w| w.0));
        let counts = Int64Array::from_iter_values(self.0.values().map(|w| w.1));
        Ok(vec![
            one_list(Arc::new(windows)),
            one_list(Arc::new(sums)),
            one_list(Arc::new(counts)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let lowest = self
            .0
            .values()
            .filter(|(_, count)| *count >= MIN_READINGS)
            .map(|(sum, count)| sum / *count as f64)
            .min_by(f64::total_cmp);
        Ok(ScalarValue::Float64(lowest))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.0.len() * (size_of::<i64>() + size_of::<(f64, i64)>() + 16)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, heart_rate_minutes, same_when_split, table};

    /// (subject, minute, bpm)

    #[tokio::test]
    async fn the_lowest_half_hour_with_three_readings() {
        let batch = heart_rate_minutes(&[
            // 00:00-00:30: mean 60.
            (1, 25, Some(62.0)),
            (1, 0, Some(58.0)),
            (1, 10, Some(60.0)),
            // 00:30-01:00: two readings only, however low.
            (1, 31, Some(40.0)),
            (1, 59, Some(41.0)),
            (1, 45, None),
            // 01:00-01:30: mean 55, the answer.
            (1, 60, Some(50.0)),
            (1, 70, Some(55.0)),
            (1, 89, Some(60.0)),
            // 01:30-02:00: mean 70.
            (1, 90, Some(70.0)),
            (1, 91, Some(70.0)),
            (1, 92, Some(70.0)),
            (1, 93, Some(70.0)),
            // No window with three readings.
            (2, 0, Some(50.0)),
            (2, 30, Some(50.0)),
            (2, 60, Some(50.0)),
            // A window straddling a half-hour is two windows: 29 and 30 are apart.
            (3, 28, Some(50.0)),
            (3, 29, Some(50.0)),
            (3, 30, Some(80.0)),
            (3, 31, Some(80.0)),
            (3, 32, Some(80.0)),
        ]);
        let sql = "SELECT subject_id AS s, resting_heart_rate(bpm, time) AS rest FROM t \
                   GROUP BY subject_id ORDER BY subject_id";
        assert_eq!(
            same_when_split(sql, batch, 3).await,
            "\
+---+------+
| s | rest |
+---+------+
| 1 | 55.0 |
| 2 |      |
| 3 | 80.0 |
+---+------+"
        );
    }

    #[tokio::test]
    async fn windows_are_aligned_before_1970_too() {
        let batch =
            heart_rate_minutes(&[(1, -1, Some(50.0)), (1, -2, Some(50.0)), (1, 0, Some(60.0))]);
        assert_eq!(
            table("SELECT resting_heart_rate(bpm, time) AS r FROM t", batch).await,
            "+---+\n| r |\n+---+\n|   |\n+---+"
        );
    }

    #[tokio::test]
    async fn refuses_bad_arguments() {
        let batch = heart_rate_minutes(&[(1, 0, Some(50.0))]);
        let swapped = error("SELECT resting_heart_rate(time, bpm) FROM t", batch.clone()).await;
        assert!(
            swapped.contains("resting_heart_rate: bpm must be a number"),
            "{swapped}"
        );
        let nan = error(
            "SELECT resting_heart_rate(CAST('NaN' AS DOUBLE), time) FROM t",
            batch,
        )
        .await;
        assert!(
            nan.contains("bpm must be a finite number, got NaN"),
            "{nan}"
        );
    }
}
