//! Rules that look at a series rather than a row, run on a file's cleaned, de-duplicated rows
//! of one stream: sleep that two sources record twice, spikes, and the time each subject's
//! rows cover.

use std::collections::HashMap;

use arrow::{
    array::{Array, AsArray, BooleanArray, RecordBatch},
    compute::filter_record_batch,
    datatypes::{Float64Type, Int64Type, TimestampNanosecondType},
    error::ArrowError,
};
use engine::StreamSchema;
use rayon::prelude::*;

use crate::clean::{ROW, Stats, series_order};

/// The rule that drops a generic `asleep` interval that stage intervals already cover.
pub const OVERLAP: &str = "overlap";
/// The rule that flags a reading far from both its neighbours.
pub const SPIKE: &str = "spike";

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// A jump that no body makes between two readings this close: a reading that far from both
/// its neighbours, in the same direction, is a sensor artefact (a strap losing contact, a
/// finger-prick on a wet finger, a bag on the scale). Flagged rows are kept and counted;
/// nothing in the data is changed, since a real event can look the same.
struct SpikeRule {
    stream: &'static str,
    column: &'static str,
    jump: f64,
    /// The longest gap to each neighbour for the rule to apply.
    window: i64,
}

const SPIKES: &[SpikeRule] = &[
    SpikeRule {
        stream: "heart_rate",
        column: "bpm",
        jump: 50.0,
        window: 2 * NANOS_PER_MINUTE,
    },
    SpikeRule {
        stream: "spo2",
        column: "pct",
        jump: 10.0,
        window: 10 * NANOS_PER_MINUTE,
    },
    SpikeRule {
        stream: "glucose",
        column: "mmol_l",
        jump: 6.0,
        window: 30 * NANOS_PER_MINUTE,
    },
    SpikeRule {
        stream: "body",
        column: "weight_kg",
        jump: 5.0,
        window: 3 * 24 * 60 * NANOS_PER_MINUTE,
    },
];

/// Sleep stages that say how one slept, as opposed to the generic `asleep` and `in_bed`.
const STAGES: &[&str] = &["awake", "light", "deep", "rem"];

/// Drops `asleep` intervals that stage intervals of the same subject (from any source) cover
/// for at least half their length: a phone that says "asleep 23:10–06:50" over a ring's
/// stages would otherwise count that night twice. `in_bed` is a different measure and stays.
pub(crate) fn overlapping_sleep(
    schema: &StreamSchema,
    batch: RecordBatch,
    stats: &mut Stats,
) -> Result<RecordBatch, ArrowError> {
    let arrow = schema.arrow_schema();
    let (Ok(stage), Ok(end)) = (arrow.index_of("stage"), arrow.index_of("end_time")) else {
        return Ok(batch);
    };
    if schema.name() != "sleep" {
        return Ok(batch);
    }
    let subjects = batch
        .column(arrow.index_of("subject_id")?)
        .as_primitive::<Int64Type>();
    let starts = batch
        .column(arrow.index_of("time")?)
        .as_primitive::<TimestampNanosecondType>();
    let ends = batch.column(end).as_primitive::<TimestampNanosecondType>();
    let stages = batch.column(stage).as_string::<i32>();
    let mut staged: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut generic = Vec::new();
    for row in 0..batch.num_rows() {
        let span = (starts.value(row), ends.value(row));
        match stages.value(row) {
            "asleep" => generic.push(row),
            s if STAGES.contains(&s) => staged.entry(subjects.value(row)).or_default().push(span),
            _ => {}
        }
    }
    let count = stats.rule(ROW, OVERLAP);
    count.checked += generic.len() as u64;
    if generic.is_empty() || staged.is_empty() {
        return Ok(batch);
    }
    let unions: HashMap<i64, Vec<(i64, i64)>> = staged
        .into_iter()
        .map(|(subject, spans)| (subject, union(spans)))
        .collect();
    let mut keep = vec![true; batch.num_rows()];
    let mut dropped = 0u64;
    for row in generic {
        let Some(covered) = unions.get(&subjects.value(row)) else {
            continue;
        };
        let (start, end) = (starts.value(row), ends.value(row));
        if 2 * overlap(covered, start, end) >= end - start {
            keep[row] = false;
            dropped += 1;
        }
    }
    count.corrected += dropped;
    if dropped == 0 {
        return Ok(batch);
    }
    stats.rows_accepted -= dropped;
    filter_record_batch(&batch, &BooleanArray::from(keep))
}

/// Sorted, disjoint intervals covering the same time as `spans`.
fn union(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// How much of `[start, end)` the sorted, disjoint `covered` intervals cover.
fn overlap(covered: &[(i64, i64)], start: i64, end: i64) -> i64 {
    let first = covered.partition_point(|&(_, e)| e <= start);
    covered[first..]
        .iter()
        .take_while(|&&(s, _)| s < end)
        .map(|&(s, e)| e.min(end) - s.max(start))
        .filter(|d| *d > 0)
        .sum()
}

/// Counts, under rule `spike`, readings that jump away from both neighbours of their series
/// (subject and source) by more than the stream's rule allows.
pub(crate) fn flag_spikes(
    schema: &StreamSchema,
    batch: &RecordBatch,
    stats: &mut Stats,
) -> Result<(), ArrowError> {
    let Some(rule) = SPIKES.iter().find(|r| r.stream == schema.name()) else {
        return Ok(());
    };
    let arrow = schema.arrow_schema();
    let Ok(column) = arrow.index_of(rule.column) else {
        return Ok(());
    };
    let Some(values) = batch.column(column).as_primitive_opt::<Float64Type>() else {
        return Ok(());
    };
    let subjects = batch
        .column(arrow.index_of("subject_id")?)
        .as_primitive::<Int64Type>();
    let times = batch
        .column(arrow.index_of("time")?)
        .as_primitive::<TimestampNanosecondType>();
    let sources = source_ids(batch.column(arrow.index_of("source")?).as_string::<i32>());
    let key = |row: u32| {
        let row = row as usize;
        (subjects.value(row), sources[row], times.value(row))
    };
    let valid = (0..batch.num_rows() as u32).filter(|&row| values.is_valid(row as usize));
    let order = series_order(valid, key);
    let spike = |w: &[u32]| {
        let [(s0, src0, t0), (s1, src1, t1), (s2, src2, t2)] = [key(w[0]), key(w[1]), key(w[2])];
        if (s0, src0) != (s1, src1) || (s1, src1) != (s2, src2) {
            return false;
        }
        if t1 - t0 > rule.window || t2 - t1 > rule.window {
            return false;
        }
        let [before, value, after] = [w[0], w[1], w[2]].map(|row| values.value(row as usize));
        let (up, down) = (value - before, value - after);
        up.signum() == down.signum() && up.abs().min(down.abs()) > rule.jump
    };
    let flagged = order.par_windows(3).filter(|w| spike(w)).count();
    let count = stats.rule(rule.column, SPIKE);
    count.checked += order.len() as u64;
    count.flagged += flagged as u64;
    Ok(())
}

/// A small number per distinct source, so that series sort as integers.
fn source_ids(sources: &arrow::array::StringArray) -> Vec<u32> {
    let rows = sources.len();
    if rows == 0 {
        return Vec::new();
    }
    let first = sources.value(0);
    if (1..rows).all(|row| sources.value(row) == first) {
        return vec![0; rows];
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    (0..rows)
        .map(|row| {
            let next = ids.len() as u32;
            *ids.entry(sources.value(row)).or_insert(next)
        })
        .collect()
}

/// Adds the rows of `batch` to the time each subject's rows cover.
pub(crate) fn cover(
    schema: &StreamSchema,
    batch: &RecordBatch,
    stats: &mut Stats,
) -> Result<(), ArrowError> {
    let arrow = schema.arrow_schema();
    let subjects = batch
        .column(arrow.index_of("subject_id")?)
        .as_primitive::<Int64Type>();
    let times = batch
        .column(arrow.index_of("time")?)
        .as_primitive::<TimestampNanosecondType>();
    // Files list a subject's rows together: add up runs of one subject, look up once a run.
    let mut run: Option<(i64, Coverage)> = None;
    for (&subject, &time) in subjects.values().iter().zip(times.values().iter()) {
        match &mut run {
            Some((current, coverage)) if *current == subject => coverage.add(time),
            _ => {
                if let Some((current, coverage)) = run.take() {
                    merge_coverage(stats, current, &coverage);
                }
                run = Some((
                    subject,
                    Coverage {
                        first: time,
                        last: time,
                        rows: 1,
                    },
                ));
            }
        }
    }
    if let Some((current, coverage)) = run {
        merge_coverage(stats, current, &coverage);
    }
    Ok(())
}

fn merge_coverage(stats: &mut Stats, subject: i64, coverage: &Coverage) {
    stats
        .coverage
        .entry(subject)
        .and_modify(|c| c.merge(coverage))
        .or_insert(*coverage);
}

/// The rows of one subject: how many, and their first and last instant (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub first: i64,
    pub last: i64,
    pub rows: u64,
}

impl Coverage {
    fn add(&mut self, time: i64) {
        self.first = self.first.min(time);
        self.last = self.last.max(time);
        self.rows += 1;
    }

    pub(crate) fn merge(&mut self, other: &Coverage) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.rows += other.rows;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use catalog::{ColumnType, NewStream, OrgId, Stream, StreamColumn, StreamId, StreamKind};

    use super::*;

    const MINUTE: i64 = NANOS_PER_MINUTE;

    fn sleep_batch(schema: &StreamSchema, rows: &[(i64, &str, i64, i64, &str)]) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.2 * MINUTE),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.3 * MINUTE),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.4))),
        ];
        RecordBatch::try_new(schema.arrow_schema().clone(), columns).unwrap()
    }

    fn heart_rate_batch(schema: &StreamSchema, rows: &[(i64, &str, i64, f64)]) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.2 * MINUTE),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ];
        RecordBatch::try_new(schema.arrow_schema().clone(), columns).unwrap()
    }

    fn schema(name: &str, kind: StreamKind, value: StreamColumn) -> StreamSchema {
        let new = NewStream::new(name, kind, vec![value]);
        let stream = Stream {
            id: StreamId(1),
            org: OrgId(1),
            name: new.name,
            kind: new.kind,
            standard: true,
            description: new.description,
            schema_version: 1,
            retention_days: None,
            max_duration_seconds: Some(86_400),
            columns: new.columns,
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        StreamSchema::new("default", stream).unwrap()
    }

    fn sleep_schema() -> StreamSchema {
        schema(
            "sleep",
            StreamKind::Interval,
            StreamColumn::value("stage", ColumnType::Utf8),
        )
    }

    fn heart_rate_schema() -> StreamSchema {
        schema(
            "heart_rate",
            StreamKind::Point,
            StreamColumn::value("bpm", ColumnType::Float64),
        )
    }

    #[test]
    fn a_generic_asleep_interval_over_stages_is_dropped_once_counted() {
        let schema = sleep_schema();
        let batch = sleep_batch(
            &schema,
            &[
                (1, "ring", 0, 60, "light"),
                (1, "ring", 60, 90, "deep"),
                (1, "ring", 90, 100, "awake"),
                (1, "ring", 100, 400, "rem"),
                // Covered for 380 of 390 minutes: the same night again.
                (1, "phone", 10, 400, "asleep"),
                // Another subject's stages do not cover it.
                (2, "phone", 10, 400, "asleep"),
                // Covered for 50 of 200 minutes: a nap the ring did not see mostly.
                (1, "phone", 350, 550, "asleep"),
                (1, "ring", 0, 420, "in_bed"),
            ],
        );
        let mut stats = Stats {
            rows_in: 8,
            rows_accepted: 8,
            ..Stats::default()
        };
        let kept = overlapping_sleep(&schema, batch, &mut stats).unwrap();
        assert_eq!(kept.num_rows(), 7);
        let stages = kept.column(4).as_string::<i32>();
        let subjects = kept.column(0).as_primitive::<Int64Type>();
        let generic: Vec<(i64, i64)> = (0..kept.num_rows())
            .filter(|&r| stages.value(r) == "asleep")
            .map(|r| {
                (
                    subjects.value(r),
                    kept.column(2)
                        .as_primitive::<TimestampNanosecondType>()
                        .value(r)
                        / MINUTE,
                )
            })
            .collect();
        assert_eq!(generic, vec![(2, 10), (1, 350)]);
        let count = stats.rules[&(ROW.to_owned(), OVERLAP)];
        assert_eq!((count.checked, count.corrected), (3, 1));
        assert_eq!(stats.rows_accepted, 7);
        assert_eq!(stats.duplicates(), 1, "an overlap is merged, not rejected");
        assert_eq!(stats.rejected(), 0);
    }

    #[test]
    fn spikes_are_flagged_per_series_and_kept() {
        let schema = heart_rate_schema();
        let batch = heart_rate_batch(
            &schema,
            &[
                (1, "watch", 0, 70.0),
                (1, "watch", 2, 71.0),
                // Out of order on purpose: series are sorted by time first.
                (1, "watch", 1, 190.0),
                (1, "watch", 3, 72.0),
                // A climb that stays up is exercise, not a spike.
                (1, "watch", 4, 140.0),
                (1, "watch", 5, 150.0),
                // Another source's readings in between do not make neighbours.
                (1, "chest", 1, 72.0),
                (1, "chest", 2, 73.0),
                // Too far apart in time for the rule to judge.
                (2, "watch", 0, 60.0),
                (2, "watch", 30, 160.0),
                (2, "watch", 60, 61.0),
            ],
        );
        let mut stats = Stats::default();
        flag_spikes(&schema, &batch, &mut stats).unwrap();
        let count = stats.rules[&("bpm".to_owned(), SPIKE)];
        assert_eq!((count.checked, count.flagged), (11, 1));
        let in_series_order = heart_rate_batch(
            &schema,
            &[
                (1, "watch", 0, 70.0),
                (1, "watch", 1, 190.0),
                (1, "watch", 2, 71.0),
                (1, "watch", 3, 72.0),
                (1, "chest", 1, 72.0),
                (1, "chest", 2, 190.0),
                (2, "watch", 0, 60.0),
            ],
        );
        let mut stats = Stats::default();
        flag_spikes(&schema, &in_series_order, &mut stats).unwrap();
        let count = stats.rules[&("bpm".to_owned(), SPIKE)];
        assert_eq!((count.checked, count.flagged), (7, 1));
    }

    #[test]
    fn series_order_keeps_sorted_rows_and_sorts_others_in_arrival_order_within_a_key() {
        let sorted = [1, 1, 2, 3];
        assert_eq!(series_order(0..4, |row| sorted[row as usize]), [0, 1, 2, 3]);
        let unsorted = [3, 1, 2, 1];
        assert_eq!(
            series_order(0..4, |row| unsorted[row as usize]),
            [1, 3, 2, 0]
        );
        let odd_rows = (0..4).filter(|row| row % 2 == 1);
        assert_eq!(series_order(odd_rows, |row| unsorted[row as usize]), [1, 3]);
    }

    #[test]
    fn coverage_spans_each_subjects_rows() {
        let schema = heart_rate_schema();
        let batch = heart_rate_batch(
            &schema,
            &[(1, "w", 5, 60.0), (2, "w", 3, 60.0), (1, "w", 2, 60.0)],
        );
        let mut stats = Stats::default();
        cover(&schema, &batch, &mut stats).unwrap();
        assert_eq!(
            stats.coverage[&1],
            Coverage {
                first: 2 * MINUTE,
                last: 5 * MINUTE,
                rows: 2
            }
        );
        assert_eq!(stats.coverage[&2].rows, 1);
    }

    #[test]
    fn overlap_counts_only_covered_time() {
        let covered = union(vec![(10, 20), (15, 30), (40, 50)]);
        assert_eq!(covered, vec![(10, 30), (40, 50)]);
        assert_eq!(overlap(&covered, 0, 100), 30);
        assert_eq!(overlap(&covered, 25, 45), 10);
        assert_eq!(overlap(&covered, 30, 40), 0);
    }
}
