//! Ordering a flush: rows sorted by day and the stream's sort key, one row per series key and
//! time (the last to arrive wins), cut into one batch per UTC day.

use std::{collections::HashMap, hash::Hash, ops::Range};

use arrow::{
    array::{Array, ArrayRef, AsArray, RecordBatch},
    compute::interleave_record_batch,
    datatypes::{DataType, Int64Type, TimestampNanosecondType},
};
use chrono::NaiveDate;
use rayon::{
    iter::{IntoParallelIterator, ParallelIterator},
    slice::ParallelSliceMut,
};

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

/// Where a row of a flush sorts: `(day, subject_id, time)` as integers, then the rank of its
/// other key columns (`source`, …), then its arrival (batch, row), so one unstable sort on
/// packed integers orders rows without touching the columns again.
type RowKey = (i64, i64, i64, u32, u32, u32);

/// The rank, in sort order, of each row's key columns after `subject_id` and `time`: rows
/// with equal ranks have equal keys, and ranks compare as the columns do.
fn rest_ranks(schema: &StreamSchema, batches: &[RecordBatch]) -> Vec<Vec<u32>> {
    let columns: Vec<Vec<Vec<u32>>> = schema.sort_key()[2..]
        .iter()
        .map(|&i| {
            let arrays: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
            match schema.arrow_schema().field(i).data_type() {
                DataType::Int64 => ranks(
                    arrays
                        .iter()
                        .map(|a| a.as_primitive::<Int64Type>().values().iter().copied()),
                ),
                _ => ranks(arrays.iter().map(|a| {
                    let text = a.as_string::<i32>();
                    (0..text.len()).map(|row| text.value(row))
                })),
            }
        })
        .collect();
    let mut columns = columns.into_iter();
    let Some(first) = columns.next() else {
        return batches.iter().map(|b| vec![0; b.num_rows()]).collect();
    };
    let rest: Vec<Vec<Vec<u32>>> = columns.collect();
    if rest.is_empty() {
        return first;
    }
    // Several key columns: rank the tuples of their ranks.
    let width = 1 + rest.len();
    let tuples: Vec<Vec<u32>> = first
        .iter()
        .enumerate()
        .map(|(b, ranks)| {
            ranks
                .iter()
                .enumerate()
                .flat_map(|(row, &rank)| {
                    std::iter::once(rank).chain(rest.iter().map(move |column| column[b][row]))
                })
                .collect()
        })
        .collect();
    ranks(tuples.iter().map(|batch| batch.chunks_exact(width)))
}

/// Per batch, the rank of each value among the distinct values of all batches. Key columns
/// come in runs of one value (a device's rows together), so a run is looked up once.
fn ranks<T, Values>(batches: impl Iterator<Item = Values>) -> Vec<Vec<u32>>
where
    T: Copy + Eq + Hash + Ord,
    Values: Iterator<Item = T>,
{
    let mut ids: HashMap<T, u32> = HashMap::new();
    let mut first_seen = Vec::new();
    let mut previous: Option<(T, u32)> = None;
    let mut batch_ids: Vec<Vec<u32>> = batches
        .map(|values| {
            values
                .map(|value| match previous {
                    Some((seen, id)) if seen == value => id,
                    _ => {
                        let id = *ids.entry(value).or_insert_with(|| {
                            first_seen.push(value);
                            first_seen.len() as u32 - 1
                        });
                        previous = Some((value, id));
                        id
                    }
                })
                .collect()
        })
        .collect();
    let mut by_value: Vec<u32> = (0..first_seen.len() as u32).collect();
    by_value.sort_unstable_by_key(|&id| first_seen[id as usize]);
    let mut rank_of = vec![0u32; first_seen.len()];
    for (rank, id) in by_value.into_iter().enumerate() {
        rank_of[id as usize] = rank as u32;
    }
    for id in batch_ids.iter_mut().flatten() {
        *id = rank_of[*id as usize];
    }
    batch_ids
}

/// A row key without its arrival: equal for two versions of one reading.
fn reading(key: &RowKey) -> (i64, i64, i64, u32) {
    (key.0, key.1, key.2, key.3)
}

fn row_keys(schema: &StreamSchema, batches: &[RecordBatch]) -> Vec<RowKey> {
    let rest = rest_ranks(schema, batches);
    let mut keys = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for (b, (batch, rest)) in batches.iter().zip(&rest).enumerate() {
        let times = batch
            .column(schema.index_of(TIME))
            .as_primitive::<TimestampNanosecondType>()
            .values();
        let subjects = batch
            .column(schema.index_of(SUBJECT_ID))
            .as_primitive::<Int64Type>()
            .values();
        keys.extend(times.iter().zip(subjects.iter()).zip(rest).enumerate().map(
            |(row, ((&time, &subject), &rest))| {
                (day_number(time), subject, time, rest, b as u32, row as u32)
            },
        ));
    }
    keys
}

/// Sorts the rows of a flush (batches in arrival order) and keeps, of rows with the same
/// series key and time, the last one: a later write of the same reading replaces an earlier
/// one. Returns one batch per UTC day.
pub(crate) fn sort_and_split(
    schema: &StreamSchema,
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>> {
    let mut keys = row_keys(schema, batches);
    let days = if in_series_order(&keys) {
        days_in_arrival_order(&keys)
    } else {
        keys.par_sort_unstable();
        days_of_sorted(&keys)
    };
    let batch_refs: Vec<&RecordBatch> = batches.iter().collect();
    let days = days
        .into_par_iter()
        .map(|rows| interleave_record_batch(&batch_refs, &rows))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(days)
}

/// Whether every row follows the one before in series order, without repeating a reading:
/// the usual upload (one device's readings in time order, or an import already
/// de-duplicated), which needs no sort, only cutting by day.
fn in_series_order(keys: &[RowKey]) -> bool {
    let series = |key: &RowKey| (key.1, key.2, key.3);
    keys.windows(2)
        .all(|pair| series(&pair[0]) < series(&pair[1]))
}

/// The rows of each day, (batch, row), for keys in series order: runs of one day, taken
/// day by day in arrival order, keep that order.
fn days_in_arrival_order(keys: &[RowKey]) -> Vec<Vec<(usize, usize)>> {
    let mut runs = day_runs(keys);
    runs.sort_by_key(|(day, _)| *day);
    runs.chunk_by(|a, b| a.0 == b.0)
        .map(|day| {
            day.iter()
                .flat_map(|(_, rows)| rows.clone())
                .map(|i| arrival(&keys[i]))
                .collect()
        })
        .collect()
}

/// The rows of each day, (batch, row), of sorted keys: of the versions of a reading, the
/// last to arrive.
fn days_of_sorted(keys: &[RowKey]) -> Vec<Vec<(usize, usize)>> {
    day_runs(keys)
        .into_par_iter()
        .map(|(_, rows)| {
            rows.filter(|&i| {
                keys.get(i + 1)
                    .is_none_or(|next| reading(&keys[i]) != reading(next))
            })
            .map(|i| arrival(&keys[i]))
            .collect()
        })
        .collect()
}

/// Each stretch of consecutive keys of one day, with that day.
fn day_runs(keys: &[RowKey]) -> Vec<(i64, Range<usize>)> {
    let mut start = 0;
    keys.chunk_by(|a, b| a.0 == b.0)
        .map(|run| {
            let rows = start..start + run.len();
            start = rows.end;
            (run[0].0, rows)
        })
        .collect()
}

/// Where a row came from: (batch, row).
fn arrival(key: &RowKey) -> (usize, usize) {
    (key.4 as usize, key.5 as usize)
}

/// Whether consecutive rows of `batch` are in sort order and distinct.
#[cfg(test)]
pub(crate) fn is_sorted_and_unique(schema: &StreamSchema, batch: &RecordBatch) -> bool {
    row_keys(schema, std::slice::from_ref(batch))
        .windows(2)
        .all(|pair| reading(&pair[0]) < reading(&pair[1]))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray},
        datatypes::Float64Type,
    };
    use catalog::{ColumnRole, ColumnType, NewStream, StreamColumn, StreamKind};

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
        let days = sort_and_split(&schema, &[batch]).unwrap();
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
    fn later_batches_win_and_every_key_column_orders_rows() {
        let mut new = NewStream::new(
            "meals",
            StreamKind::Point,
            vec![StreamColumn::value("grams", ColumnType::Float64)],
        );
        new.columns.push(StreamColumn {
            role: ColumnRole::Key,
            nullable: false,
            ..StreamColumn::value("meal", ColumnType::Utf8)
        });
        let schema = StreamSchema::new("default", crate::schema::testing::registered(new)).unwrap();
        let meals = |rows: &[(&str, &str, f64)]| {
            RecordBatch::try_new(
                schema.arrow_schema().clone(),
                vec![
                    Arc::new(Int64Array::from(vec![7; rows.len()])),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                    Arc::new(TimestampNanosecondArray::from(vec![60; rows.len()])),
                    Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
                    Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                ],
            )
            .unwrap()
        };
        let first = meals(&[("phone", "lunch", 100.0), ("app", "lunch", 1.0)]);
        let second = meals(&[("phone", "dinner", 200.0), ("phone", "lunch", 150.0)]);
        let days = sort_and_split(&schema, &[first, second]).unwrap();
        assert_eq!(days.len(), 1);
        let grams = days[0].column(3).as_primitive::<Float64Type>().values();
        assert_eq!(grams.to_vec(), [1.0, 200.0, 150.0]);
        assert!(is_sorted_and_unique(&schema, &days[0]));
    }

    #[test]
    fn rows_already_in_series_order_are_only_cut_by_day() {
        let day = NANOS_PER_DAY;
        let schema = heart_rate();
        let first = readings(&[
            (1, "watch", 5, 60.0),
            (1, "watch", day + 5, 61.0),
            (2, "watch", 7, 62.0),
        ]);
        let second = readings(&[(2, "watch", day + 1, 63.0), (2, "watch", day + 9, 64.0)]);
        let batches = [first, second];
        let keys = row_keys(&schema, &batches);
        assert!(in_series_order(&keys));
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(days_in_arrival_order(&keys), days_of_sorted(&sorted));
        let days = sort_and_split(&schema, &batches).unwrap();
        assert_eq!(
            days.iter().map(contents).collect::<Vec<_>>(),
            [
                vec![(1, "watch".into(), 5, 60.0), (2, "watch".into(), 7, 62.0)],
                vec![
                    (1, "watch".into(), day + 5, 61.0),
                    (2, "watch".into(), day + 1, 63.0),
                    (2, "watch".into(), day + 9, 64.0),
                ],
            ]
        );
        let repeated = readings(&[(1, "watch", 5, 60.0), (1, "watch", 5, 66.0)]);
        assert!(!in_series_order(&row_keys(&schema, &[repeated])));
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
