//! `asleep_minutes(time, end_time)`: the minutes covered by the union of a group's intervals.
//!
//! Overlapping, nested, duplicated and touching intervals are merged first, so time two
//! devices (or a stage row and a session row) both recorded counts once. Which intervals are
//! sleep is the query's choice: filter `stage` before aggregating. An interval that ends
//! before it starts is an error; an empty one covers nothing.

use std::{mem::size_of, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, AsArray, TimestampNanosecondArray},
    datatypes::{DataType, FieldRef, TimeUnit, TimestampNanosecondType},
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
    NANOS_PER_MINUTE, check_arity, instant,
    series::{list_field, list_rows, one_list},
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct AsleepMinutes {
    signature: Signature,
}

impl AsleepMinutes {
    pub(super) fn new() -> Self {
        AsleepMinutes {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for AsleepMinutes {
    fn name(&self) -> &str {
        "asleep_minutes"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("asleep_minutes(time, end_time)", args, &[2])?;
        Ok(vec![
            instant("asleep_minutes", "time", &args[0])?,
            instant("asleep_minutes", "end_time", &args[1])?,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Intervals>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let times = DataType::Timestamp(TimeUnit::Nanosecond, None);
        Ok(vec![
            list_field(format_state_name(args.name, "starts"), times.clone()),
            list_field(format_state_name(args.name, "ends"), times),
        ])
    }
}

/// `(start, end)` intervals in nanoseconds.
#[derive(Debug, Default)]
struct Intervals {
    intervals: Vec<(i64, i64)>,
}

impl Intervals {
    /// Sorts and merges the intervals in place: afterwards they are disjoint and apart.
    fn merge(&mut self) {
        self.intervals.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.intervals.len());
        for &(start, end) in &self.intervals {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.intervals = merged;
    }
}

impl Accumulator for Intervals {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let starts = values[0].as_primitive::<TimestampNanosecondType>();
        let ends = values[1].as_primitive::<TimestampNanosecondType>();
        for row in 0..starts.len() {
            if starts.is_valid(row) && ends.is_valid(row) {
                let (start, end) = (starts.value(row), ends.value(row));
                if end < start {
                    let show = |t| chrono::DateTime::from_timestamp_nanos(t).naive_utc();
                    return exec_err!(
                        "asleep_minutes: an interval ends before it starts (time {}, end_time {})",
                        show(start),
                        show(end)
                    );
                }
                self.intervals.push((start, end));
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (starts, ends) in list_rows(&states[0]).zip(list_rows(&states[1])) {
            let starts = starts.as_primitive::<TimestampNanosecondType>().values();
            let ends = ends.as_primitive::<TimestampNanosecondType>().values();
            self.intervals
                .extend(starts.iter().copied().zip(ends.iter().copied()));
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.merge();
        let starts = TimestampNanosecondArray::from_iter_values(self.intervals.iter().map(|i| i.0));
        let ends = TimestampNanosecondArray::from_iter_values(self.intervals.iter().map(|i| i.1));
        Ok(vec![one_list(Arc::new(starts)), one_list(Arc::new(ends))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.intervals.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        self.merge();
        let nanos: i128 = self
            .intervals
            .iter()
            .map(|&(start, end)| i128::from(end) - i128::from(start))
            .sum();
        Ok(ScalarValue::Float64(Some(nanos as f64 / NANOS_PER_MINUTE)))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.intervals.capacity() * size_of::<(i64, i64)>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};

    use super::super::testing::{error, same_when_split, table};

    const MINUTE: i64 = 60_000_000_000;

    /// (night, start minute, end minute, stage)
    fn intervals(rows: &[(i64, Option<i64>, i64, &str)]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "night",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from_iter(
                    rows.iter().map(|r| r.1.map(|m| m * MINUTE)),
                )) as _,
            ),
            (
                "end_time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.2 * MINUTE),
                )) as _,
            ),
            (
                "stage",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))) as _,
            ),
        ])
        .unwrap()
    }

    #[tokio::test]
    async fn overlaps_count_once() {
        let batch = intervals(&[
            // Nested: 0-100 holds 10-20.
            (1, Some(10), 20, "deep"),
            (1, Some(0), 100, "asleep"),
            // Overlapping 90-130, and a duplicate of it.
            (1, Some(90), 130, "light"),
            (1, Some(90), 130, "light"),
            // Touching 130-140: 140 minutes in all.
            (1, Some(130), 140, "rem"),
            // Apart, 200-210; the awake interval is filtered out.
            (1, Some(200), 210, "light"),
            (1, Some(140), 200, "awake"),
            (1, None, 500, "light"),
            // Empty interval: 0 minutes, not NULL.
            (2, Some(50), 50, "light"),
            // Only awake: no row reaches the aggregate.
            (3, Some(0), 60, "awake"),
        ]);
        let sql = "SELECT night, asleep_minutes(time, end_time) AS asleep FROM t \
                   WHERE stage <> 'awake' GROUP BY night ORDER BY night";
        assert_eq!(
            same_when_split(sql, batch, 4).await,
            "\
+-------+--------+
| night | asleep |
+-------+--------+
| 1     | 150.0  |
| 2     | 0.0    |
+-------+--------+"
        );
    }

    #[tokio::test]
    async fn no_interval_is_null() {
        let batch = intervals(&[(1, None, 10, "light")]);
        assert_eq!(
            table("SELECT asleep_minutes(time, end_time) AS m FROM t", batch).await,
            "+---+\n| m |\n+---+\n|   |\n+---+"
        );
    }

    #[tokio::test]
    async fn refuses_reversed_intervals_and_non_timestamps() {
        let batch = intervals(&[(1, Some(10), 5, "light")]);
        let reversed = error(
            "SELECT asleep_minutes(time, end_time) FROM t",
            batch.clone(),
        )
        .await;
        assert!(
            reversed.contains(
                "asleep_minutes: an interval ends before it starts \
                 (time 1970-01-01 00:10:00, end_time 1970-01-01 00:05:00)"
            ),
            "{reversed}"
        );
        let text = error("SELECT asleep_minutes(time, stage) FROM t", batch).await;
        assert!(
            text.contains("asleep_minutes: end_time must be a timestamp, got Utf8"),
            "{text}"
        );
    }
}
