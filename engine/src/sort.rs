//! Ordering a flush: rows sorted by day and the stream's sort key, one row per series key and
//! time (the last to arrive wins), cut into one batch per UTC day.

use std::cmp::Ordering;

use arrow::{
    array::{AsArray, RecordBatch, StringArray, UInt32Array},
    compute::take_record_batch,
    datatypes::{DataType, Int64Type, TimestampNanosecondType},
};
use chrono::NaiveDate;

use crate::{
    Result,
    schema::{SUBJECT_ID, StreamSchema, TIME},
};

pub(crate) const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

pub(crate) fn day_number(nanos: i64) -> i64 {
    nanos.div_euclid(NANOS_PER_DAY)
}

pub(crate) fn day_date(day_number: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(day_number + 719_163).expect("nanosecond timestamps stay within i32 days"),
    )
    .expect("nanosecond timestamps are valid dates")
}

/// A batch's sort key, read straight from its columns: `(day, subject_id, time)` as
/// integers, which decide almost every comparison, then the other key columns (`source`, …).
struct SortKey<'a> {
    days: Vec<i64>,
    subjects: &'a [i64],
    times: &'a [i64],
    rest: Vec<KeyColumn<'a>>,
}

enum KeyColumn<'a> {
    Int(&'a [i64]),
    Text(&'a StringArray),
}

impl<'a> SortKey<'a> {
    fn new(schema: &StreamSchema, batch: &'a RecordBatch) -> Self {
        let column = |i: usize| batch.column(i);
        let times = column(schema.index_of(TIME))
            .as_primitive::<TimestampNanosecondType>()
            .values();
        let subjects = column(schema.index_of(SUBJECT_ID))
            .as_primitive::<Int64Type>()
            .values();
        // The sort key is subject_id, time, then the rest.
        let rest = schema.sort_key()[2..]
            .iter()
            .map(|&i| match column(i).data_type() {
                DataType::Int64 => KeyColumn::Int(column(i).as_primitive::<Int64Type>().values()),
                _ => KeyColumn::Text(column(i).as_string::<i32>()),
            })
            .collect();
        SortKey {
            days: times.iter().map(|t| day_number(*t)).collect(),
            subjects,
            times,
            rest,
        }
    }

    fn compare(&self, a: usize, b: usize) -> Ordering {
        (self.days[a], self.subjects[a], self.times[a])
            .cmp(&(self.days[b], self.subjects[b], self.times[b]))
            .then_with(|| {
                self.rest
                    .iter()
                    .map(|column| match column {
                        KeyColumn::Int(values) => values[a].cmp(&values[b]),
                        KeyColumn::Text(values) => values.value(a).cmp(values.value(b)),
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
    }
}

/// Sorts the batch (rows in arrival order) and keeps, of rows with the same series key and
/// time, the last one: a later write of the same reading replaces an earlier one.
pub(crate) fn sort_and_split(
    schema: &StreamSchema,
    batch: &RecordBatch,
) -> Result<Vec<RecordBatch>> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let key = SortKey::new(schema, batch);
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    // Stable, so equal rows stay in arrival order; and adaptive, so the usual input (runs of
    // one device's rows in time order) sorts in close to linear time.
    order.sort_by(|a, b| key.compare(*a as usize, *b as usize));
    let mut kept = Vec::with_capacity(order.len());
    for (position, &row) in order.iter().enumerate() {
        let superseded = order
            .get(position + 1)
            .is_some_and(|&next| key.compare(next as usize, row as usize).is_eq());
        if !superseded {
            kept.push(row);
        }
    }
    let sorted = take_record_batch(batch, &UInt32Array::from(kept))?;
    split_by_day(schema, &sorted)
}

/// Cuts a batch sorted by day into one batch per day.
fn split_by_day(schema: &StreamSchema, sorted: &RecordBatch) -> Result<Vec<RecordBatch>> {
    let time = sorted
        .column(schema.index_of(TIME))
        .as_primitive::<TimestampNanosecondType>()
        .clone();
    let mut days = Vec::new();
    let mut start = 0;
    while start < sorted.num_rows() {
        let day = day_number(time.value(start));
        let len = time.values()[start..]
            .iter()
            .position(|t| day_number(*t) != day)
            .unwrap_or(sorted.num_rows() - start);
        days.push(sorted.slice(start, len));
        start += len;
    }
    Ok(days)
}

/// Whether consecutive rows of `batch` are in sort order and distinct.
#[cfg(test)]
pub(crate) fn is_sorted_and_unique(schema: &StreamSchema, batch: &RecordBatch) -> bool {
    let key = SortKey::new(schema, batch);
    (1..batch.num_rows()).all(|i| key.compare(i - 1, i).is_lt())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, TimestampNanosecondArray};

    use super::*;

    fn heart_rate() -> StreamSchema {
        crate::schema::testing::heart_rate()
    }

    fn readings(rows: &[(i64, &str, i64, f64)]) -> RecordBatch {
        RecordBatch::try_new(
            heart_rate().arrow_schema().clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.2),
                )),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
            ],
        )
        .unwrap()
    }

    fn contents(batch: &RecordBatch) -> Vec<(i64, String, i64, f64)> {
        let subject = batch.column(0).as_primitive::<Int64Type>();
        let source = batch.column(1).as_string::<i32>();
        let time = batch.column(2).as_primitive::<TimestampNanosecondType>();
        let bpm = batch
            .column(3)
            .as_primitive::<arrow::datatypes::Float64Type>();
        (0..batch.num_rows())
            .map(|i| {
                (
                    subject.value(i),
                    source.value(i).to_owned(),
                    time.value(i),
                    bpm.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn the_last_write_of_a_reading_wins_and_days_are_split() {
        let day = NANOS_PER_DAY;
        let schema = heart_rate();
        let batch = readings(&[
            (2, "watch", day + 5, 70.0),
            (1, "watch", 10, 60.0),
            (1, "watch", 10, 61.0),
            (1, "ring", 10, 59.0),
            (2, "watch", 3, 80.0),
            (1, "watch", 5, 58.0),
            (2, "watch", day + 5, 71.0),
        ]);
        let days = sort_and_split(&schema, &batch).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(
            contents(&days[0]),
            [
                (1, "watch".into(), 5, 58.0),
                (1, "ring".into(), 10, 59.0),
                (1, "watch".into(), 10, 61.0),
                (2, "watch".into(), 3, 80.0),
            ]
        );
        assert_eq!(contents(&days[1]), [(2, "watch".into(), day + 5, 71.0)]);
        for d in &days {
            assert!(is_sorted_and_unique(&schema, d));
        }
    }

    #[test]
    fn days_before_the_epoch_are_dates_too() {
        assert_eq!(
            day_date(day_number(-1)),
            NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()
        );
        assert_eq!(
            day_date(day_number(1_772_352_000_000_000_000)),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }
}
