//! Ordering a flush: rows sorted by day and the stream's sort key, one row per series key and
//! time (the last to arrive wins), cut into one batch per UTC day.

use std::{collections::HashMap, hash::Hash, ops::Range};

use arrow::{
    array::{Array, ArrayRef, AsArray, RecordBatch},
    compute::{concat_batches, interleave_record_batch},
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

fn row_keys(schema: &StreamSchema, batches: &[RecordBatch], rest: &[Vec<u32>]) -> Vec<RowKey> {
    let mut keys = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for (b, (batch, rest)) in batches.iter().zip(rest).enumerate() {
        let (subjects, times) = series_columns(schema, batch);
        keys.extend(times.iter().zip(subjects.iter()).zip(rest).enumerate().map(
            |(row, ((&time, &subject), &rest))| {
                (day_number(time), subject, time, rest, b as u32, row as u32)
            },
        ));
    }
    keys
}

fn series_columns<'a>(schema: &StreamSchema, batch: &'a RecordBatch) -> (&'a [i64], &'a [i64]) {
    let subjects = batch
        .column(schema.index_of(SUBJECT_ID))
        .as_primitive::<Int64Type>()
        .values();
    let times = batch
        .column(schema.index_of(TIME))
        .as_primitive::<TimestampNanosecondType>()
        .values();
    (subjects, times)
}

/// Sorts the rows of a flush (batches in arrival order) and keeps, of rows with the same
/// series key and time, the last one: a later write of the same reading replaces an earlier
/// one. Returns the rows of each UTC day, in order, as one or more batches.
pub(crate) fn sort_and_split(
    schema: &StreamSchema,
    batches: &[RecordBatch],
) -> Result<Vec<Vec<RecordBatch>>> {
    let rest = rest_ranks(schema, batches);
    if let Some(days) = day_runs_in_series_order(schema, batches, &rest) {
        return days
            .into_par_iter()
            .map(|runs| day_of_runs(schema, batches, runs))
            .collect();
    }
    let mut keys = row_keys(schema, batches, &rest);
    keys.par_sort_unstable();
    let batch_refs: Vec<&RecordBatch> = batches.iter().collect();
    let days = days_of_sorted(&keys)
        .into_par_iter()
        .map(|rows| interleave_record_batch(&batch_refs, &rows).map(|day| vec![day]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(days)
}

/// A stretch of one batch's rows within one day.
type Run = (usize, Range<usize>);

/// When every row follows the one before in series order, without repeating a reading (the
/// usual upload: one device's readings in time order, or an import already de-duplicated),
/// the runs of each day in arrival order: the rows need no sort, only cutting by day. The
/// check reads the key columns in place rather than building a key per row, which for a
/// large import costs more in fresh memory than the check itself.
fn day_runs_in_series_order(
    schema: &StreamSchema,
    batches: &[RecordBatch],
    rest: &[Vec<u32>],
) -> Option<Vec<Vec<Run>>> {
    let mut runs: Vec<(i64, Run)> = Vec::new();
    let mut previous: Option<((&i64, &i64), &u32)> = None;
    for (b, (batch, rest)) in batches.iter().zip(rest).enumerate() {
        let (subjects, times) = series_columns(schema, batch);
        for series in subjects.iter().zip(times).zip(rest) {
            if previous.is_some_and(|p| p >= series) {
                return None;
            }
            previous = Some(series);
        }
        let mut start = 0;
        for run in times.chunk_by(|a, b| day_number(*a) == day_number(*b)) {
            runs.push((day_number(run[0]), (b, start..start + run.len())));
            start += run.len();
        }
    }
    runs.sort_by_key(|(day, _)| *day);
    Some(
        runs.chunk_by(|a, b| a.0 == b.0)
            .map(|day| day.iter().map(|(_, run)| run.clone()).collect())
            .collect(),
    )
}

/// Runs shorter than this on average are copied into one batch: encoding many tiny slices
/// one after another costs more than the copy.
const SLICED_RUN_ROWS: usize = 1024;

/// A day's rows from its runs: slices of the batches when the runs are long (a subject's
/// readings of a day), else one batch.
fn day_of_runs(
    schema: &StreamSchema,
    batches: &[RecordBatch],
    runs: Vec<Run>,
) -> Result<Vec<RecordBatch>> {
    let rows: usize = runs.iter().map(|(_, r)| r.len()).sum();
    let slices: Vec<RecordBatch> = runs
        .into_iter()
        .map(|(b, r)| batches[b].slice(r.start, r.len()))
        .collect();
    if rows >= SLICED_RUN_ROWS * slices.len() {
        return Ok(slices);
    }
    Ok(vec![concat_batches(schema.arrow_schema(), &slices)?])
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
    let batches = std::slice::from_ref(batch);
    row_keys(schema, batches, &rest_ranks(schema, batches))
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

    /// The rows of a day, whatever batches carry them.
    fn contents(day: &[RecordBatch]) -> Vec<(i64, String, i64, f64)> {
        day.iter()
            .flat_map(|batch| {
                let subject = batch.column(0).as_primitive::<Int64Type>();
                let source = batch.column(1).as_string::<i32>();
                let time = batch.column(2).as_primitive::<TimestampNanosecondType>();
                let bpm = batch
                    .column(3)
                    .as_primitive::<arrow::datatypes::Float64Type>();
                (0..batch.num_rows()).map(move |i| {
                    (
                        subject.value(i),
                        source.value(i).to_owned(),
                        time.value(i),
                        bpm.value(i),
                    )
                })
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
            assert!(is_sorted_and_unique(&schema, &d[0]));
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
        let grams = days[0][0].column(3).as_primitive::<Float64Type>().values();
        assert_eq!(grams.to_vec(), [1.0, 200.0, 150.0]);
        assert!(is_sorted_and_unique(&schema, &days[0][0]));
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
        let runs = |batches: &[RecordBatch]| {
            day_runs_in_series_order(&schema, batches, &rest_ranks(&schema, batches))
        };
        assert_eq!(
            runs(&batches),
            Some(vec![vec![(0, 0..1), (0, 2..3)], vec![(0, 1..2), (1, 0..2)]])
        );
        let days = sort_and_split(&schema, &batches).unwrap();
        assert_eq!(
            days.iter().map(|day| contents(day)).collect::<Vec<_>>(),
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
        assert_eq!(runs(&[repeated]), None);
        let backwards = readings(&[(2, "watch", 5, 60.0), (1, "watch", 9, 66.0)]);
        assert_eq!(runs(&[backwards]), None);
    }

    #[test]
    fn long_runs_stay_slices_and_read_as_the_sorted_rows() {
        let minute = 60_000_000_000;
        let in_series_order: Vec<(i64, &str, i64, f64)> = (1..=2)
            .flat_map(|subject| {
                (0..2 * 1440).map(move |m| (subject, "watch", m * minute, m as f64))
            })
            .collect();
        let mut shuffled = in_series_order.clone();
        shuffled.swap(0, 1);
        let schema = heart_rate();
        let sliced = sort_and_split(&schema, &[readings(&in_series_order)]).unwrap();
        let sorted = sort_and_split(&schema, &[readings(&shuffled)]).unwrap();
        assert_eq!(sliced.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(sorted.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1]);
        for (sliced, sorted) in sliced.iter().zip(&sorted) {
            assert_eq!(contents(sliced), contents(sorted));
            assert_eq!(contents(sliced).len(), 2 * 1440);
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
