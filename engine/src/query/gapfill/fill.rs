//! The gap-filling algorithm, over batches sorted by series then bucket.
//!
//! Input rows are taken in [`Chunk`]s: the rows that arrived and are *ready*, which all are
//! unless the query interpolates: then a row waits until, for every interpolated column, a
//! non-NULL value follows it in its series (or the series or the input ends), since the gaps
//! and NULLs before that value are computed from it. A chunk is emitted step by step, one
//! output row per step (a gap or an input row), so that output batches keep the session's
//! batch size however many buckets a gap spans. What the next chunk needs of the series
//! being filled (its key, the next bucket, the last values) is carried over as one-row
//! arrays, so a chunk's batch is released once emitted.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, UInt32Array},
    compute::{cast, interleave, take},
    datatypes::{DataType, Float64Type, Int64Type, SchemaRef},
    row::{OwnedRow, RowConverter, Rows, SortField},
};
use datafusion::common::{Result, ScalarValue};

use super::functions::Fill;

/// A gap filling resolved to numbers, in the unit of the time column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    /// The input columns of the series' keys.
    pub series: Vec<usize>,
    /// The input column of the buckets.
    pub time: usize,
    pub stride: i64,
    /// The first and last bucket of the range; none when `first > last`.
    pub first: i64,
    pub last: i64,
    /// What each input column holds in a gap.
    pub gap_values: Vec<ScalarValue>,
    /// The added columns: an input column and how its gaps are filled.
    pub fills: Vec<(usize, Fill)>,
}

/// The state of a gap filling between chunks.
pub(crate) struct Filler {
    params: Arc<Params>,
    schema: SchemaRef,
    /// Compares the series' keys; none without series keys.
    converter: Option<RowConverter>,
    /// One-row arrays of `Params::gap_values`.
    gap_arrays: Vec<ArrayRef>,
    /// The series being filled.
    current: Option<Series>,
    /// What the next chunk needs of the current series.
    carried: Carried,
    /// Whether any series was started: without series keys, an input without rows still has
    /// the one series.
    started: bool,
}

struct Series {
    /// The next bucket a gap may be emitted for, beyond `i64` when the last was.
    next_bucket: i128,
    fills: Vec<FillState>,
}

enum FillState {
    /// The last non-NULL value for `locf`.
    Locf(Last),
    /// The last non-NULL value and its bucket, for `interpolate`.
    Interpolate(Option<(i64, f64)>),
}

#[derive(Clone, Copy)]
enum Last {
    Nothing,
    Row(usize),
    /// In the chunk's carried-over `locf` array.
    Carried,
}

/// One-row arrays of the current series, from the chunk before.
#[derive(Default)]
struct Carried {
    key: Option<OwnedRow>,
    key_columns: Vec<ArrayRef>,
    /// Per fill, the last non-NULL value for `locf`.
    locf: Vec<Option<ArrayRef>>,
}

/// Input rows being emitted.
pub(crate) struct Chunk {
    batch: RecordBatch,
    /// Rows `[0, ready)` are emitted; the others wait for the next chunk.
    ready: usize,
    /// Whether the input ends with this chunk.
    last: bool,
    /// Whether each row starts a series (the first row: another than the carried one).
    starts_series: Vec<bool>,
    buckets: Int64Array,
    rows: Option<Rows>,
    /// Per fill, for `interpolate`: the values as floats, and for each row the next row of
    /// its series, itself included, with a non-NULL value.
    numbers: Vec<Option<(Float64Array, Vec<Option<usize>>)>>,
    carried: Carried,
    /// The next row to emit.
    position: usize,
    /// The row where the current series began in this chunk.
    series_start: Option<usize>,
    /// The last row emitted.
    last_row: Option<usize>,
    finished: bool,
}

impl Chunk {
    pub(crate) fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The rows that were not ready, for the next chunk.
    pub(crate) fn rest(&self) -> Option<RecordBatch> {
        (self.ready < self.batch.num_rows()).then(|| {
            self.batch
                .slice(self.ready, self.batch.num_rows() - self.ready)
        })
    }
}

/// The rows of one output batch, as indices for `interleave`: of the chunk's arrays
/// (source 0) or of small arrays of gap values, computed values or NULL.
#[derive(Default)]
struct Output {
    /// Sources: the chunk, the carried key.
    keys: Vec<(usize, usize)>,
    /// Sources: the chunk, the gap buckets.
    times: Vec<(usize, usize)>,
    /// Sources: the chunk, the gap value.
    values: Vec<(usize, usize)>,
    gap_buckets: Vec<i64>,
    /// Per fill. Sources: the chunk, the carried value (`locf`) or the interpolated values,
    /// NULL.
    fills: Vec<Vec<(usize, usize)>>,
    interpolated: Vec<Vec<f64>>,
}

const CHUNK: usize = 0;
const NULL: (usize, usize) = (2, 0);

impl Filler {
    pub(crate) fn new(params: Arc<Params>, schema: SchemaRef, input: &SchemaRef) -> Result<Self> {
        let converter = if params.series.is_empty() {
            None
        } else {
            let fields = params
                .series
                .iter()
                .map(|&i| SortField::new(input.field(i).data_type().clone()))
                .collect();
            Some(RowConverter::new(fields)?)
        };
        let gap_arrays = params
            .gap_values
            .iter()
            .map(|value| value.to_array_of_size(1))
            .collect::<Result<_>>()?;
        Ok(Filler {
            params,
            schema,
            converter,
            gap_arrays,
            current: None,
            carried: Carried::default(),
            started: false,
        })
    }

    fn interpolates(&self) -> bool {
        self.params
            .fills
            .iter()
            .any(|&(_, fill)| fill == Fill::Interpolate)
    }

    /// Whether a batch arriving after `waiting` rows (which wait for a value to
    /// interpolate to) can let some of them go: it starts another series or has a value in
    /// every interpolated column.
    pub(crate) fn unblocks(&self, waiting: &RecordBatch, batch: &RecordBatch) -> Result<bool> {
        if batch.num_rows() == 0 {
            return Ok(false);
        }
        if let Some(converter) = &self.converter {
            let key = |batch: &RecordBatch, row: usize| -> Result<OwnedRow> {
                let columns: Vec<ArrayRef> = self
                    .params
                    .series
                    .iter()
                    .map(|&i| batch.column(i).slice(row, 1))
                    .collect();
                Ok(converter.convert_columns(&columns)?.row(0).owned())
            };
            if key(waiting, 0)? != key(batch, batch.num_rows() - 1)? {
                return Ok(true);
            }
        }
        Ok(self
            .params
            .fills
            .iter()
            .filter(|(_, fill)| *fill == Fill::Interpolate)
            .all(|&(column, _)| batch.column(column).null_count() < batch.num_rows()))
    }

    /// The rows of `batch` as a chunk; `last` when no input follows.
    pub(crate) fn chunk(&mut self, batch: RecordBatch, last: bool) -> Result<Chunk> {
        let n = batch.num_rows();
        let rows = match &self.converter {
            Some(converter) => {
                let columns: Vec<ArrayRef> = self
                    .params
                    .series
                    .iter()
                    .map(|&i| batch.column(i).clone())
                    .collect();
                Some(converter.convert_columns(&columns)?)
            }
            None => None,
        };
        let starts_series: Vec<bool> = (0..n)
            .map(|r| match (&rows, r) {
                (_, 0) if self.current.is_none() => true,
                (Some(rows), 0) => self
                    .carried
                    .key
                    .as_ref()
                    .is_none_or(|key| rows.row(0) != key.row()),
                (Some(rows), r) => rows.row(r) != rows.row(r - 1),
                (None, _) => false,
            })
            .collect();
        let buckets = cast(batch.column(self.params.time), &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone();
        let numbers = self
            .params
            .fills
            .iter()
            .map(|&(column, fill)| {
                if fill != Fill::Interpolate {
                    return Ok(None);
                }
                let values = cast(batch.column(column), &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone();
                let mut next_valid = vec![None; n];
                let mut next = None;
                for r in (0..n).rev() {
                    if values.is_valid(r) {
                        next = Some(r);
                    }
                    next_valid[r] = next;
                    if starts_series[r] {
                        next = None;
                    }
                }
                Ok(Some((values, next_valid)))
            })
            .collect::<Result<Vec<_>>>()?;
        let ready = if last || !self.interpolates() {
            n
        } else {
            // Rows of the last series up to its last row with a value in every interpolated
            // column; the earlier series are complete.
            let start = starts_series.iter().rposition(|&s| s).unwrap_or(0);
            numbers
                .iter()
                .flatten()
                .map(|(values, _)| {
                    (start..n)
                        .rev()
                        .find(|&r| values.is_valid(r))
                        .map_or(start, |r| r + 1)
                })
                .min()
                .unwrap_or(n)
        };
        Ok(Chunk {
            batch,
            ready,
            last,
            starts_series,
            buckets,
            rows,
            numbers,
            carried: std::mem::take(&mut self.carried),
            position: 0,
            series_start: None,
            last_row: None,
            finished: false,
        })
    }

    /// The next output batch of a chunk, of at most `limit` rows; none when it is all out.
    pub(crate) fn next_batch(
        &mut self,
        chunk: &mut Chunk,
        limit: usize,
    ) -> Result<Option<RecordBatch>> {
        if chunk.finished {
            return Ok(None);
        }
        let mut out = Output {
            fills: vec![Vec::new(); self.params.fills.len()],
            interpolated: vec![Vec::new(); self.params.fills.len()],
            ..Output::default()
        };
        while out.keys.len() < limit.max(1) {
            if !self.step(chunk, &mut out) {
                self.carry(chunk)?;
                chunk.finished = true;
                break;
            }
        }
        if out.keys.is_empty() {
            return Ok(None);
        }
        self.materialize(chunk, out).map(Some)
    }

    /// Emits one output row; false when the chunk has none left.
    fn step(&mut self, chunk: &mut Chunk, out: &mut Output) -> bool {
        if chunk.position < chunk.ready {
            let r = chunk.position;
            if chunk.starts_series[r] && chunk.series_start != Some(r) {
                if let Some(gap) = self.take_gap(None) {
                    self.emit_gap(chunk, out, gap, None);
                    return true;
                }
                self.current = None;
            }
            if self.current.is_none() {
                self.start_series();
                chunk.series_start = Some(r);
            }
            let bucket = chunk.buckets.is_valid(r).then(|| chunk.buckets.value(r));
            if let Some(bucket) = bucket
                && let Some(gap) = self.take_gap(Some(bucket))
            {
                self.emit_gap(chunk, out, gap, Some(r));
                return true;
            }
            self.emit_row(chunk, out, r, bucket);
            chunk.position += 1;
            chunk.last_row = Some(r);
            return true;
        }
        if !chunk.last {
            return false;
        }
        if self.current.is_none() && self.params.series.is_empty() && !self.started {
            self.start_series();
        }
        match self.take_gap(None) {
            Some(gap) => {
                self.emit_gap(chunk, out, gap, None);
                true
            }
            None => false,
        }
    }

    /// The current series' next empty bucket, if it is in the range and before `before`.
    fn take_gap(&mut self, before: Option<i64>) -> Option<i64> {
        let series = self.current.as_mut()?;
        let next = series.next_bucket;
        let wanted = next <= i128::from(self.params.last)
            && before.is_none_or(|before| next < i128::from(before));
        wanted.then(|| {
            series.next_bucket += i128::from(self.params.stride);
            // Not beyond `last`, an i64.
            next as i64
        })
    }

    fn start_series(&mut self) {
        self.started = true;
        self.current = Some(Series {
            next_bucket: i128::from(self.params.first),
            fills: self
                .params
                .fills
                .iter()
                .map(|&(_, fill)| match fill {
                    Fill::Locf => FillState::Locf(Last::Nothing),
                    Fill::Interpolate => FillState::Interpolate(None),
                })
                .collect(),
        });
    }

    /// A row for the empty bucket `bucket` of the current series, before row `next` of the
    /// chunk or after its last row.
    fn emit_gap(&mut self, chunk: &Chunk, out: &mut Output, bucket: i64, next: Option<usize>) {
        let key = match (next, chunk.last_row) {
            (Some(r), _) | (None, Some(r)) => (CHUNK, r),
            (None, None) => (1, 0),
        };
        out.keys.push(key);
        out.times.push((1, out.gap_buckets.len()));
        out.gap_buckets.push(bucket);
        out.values.push((1, 0));
        let Some(series) = &self.current else { return };
        for (f, state) in series.fills.iter().enumerate() {
            let source = match state {
                FillState::Locf(last) => locf_source(*last),
                FillState::Interpolate(before) => {
                    let after = next.and_then(|r| value_at(chunk, f, r));
                    interpolated(out, f, bucket, *before, after)
                }
            };
            out.fills[f].push(source);
        }
    }

    fn emit_row(&mut self, chunk: &Chunk, out: &mut Output, r: usize, bucket: Option<i64>) {
        out.keys.push((CHUNK, r));
        out.times.push((CHUNK, r));
        out.values.push((CHUNK, r));
        let params = &self.params;
        let Some(series) = &mut self.current else {
            return;
        };
        if let Some(bucket) = bucket {
            series.next_bucket = series
                .next_bucket
                .max(i128::from(bucket) + i128::from(params.stride));
        }
        for (f, state) in series.fills.iter_mut().enumerate() {
            let column = params.fills[f].0;
            let valid = chunk.batch.column(column).is_valid(r);
            let source = match state {
                FillState::Locf(last) => {
                    if valid {
                        *last = Last::Row(r);
                    }
                    locf_source(*last)
                }
                FillState::Interpolate(before) if valid => {
                    if let Some(value) = value_at(chunk, f, r) {
                        *before = Some(value);
                    }
                    (CHUNK, r)
                }
                FillState::Interpolate(before) => match bucket {
                    Some(bucket) => {
                        let after = value_at(chunk, f, r);
                        interpolated(out, f, bucket, *before, after)
                    }
                    None => NULL,
                },
            };
            out.fills[f].push(source);
        }
    }

    /// Keeps what the next chunk needs of the current series.
    fn carry(&mut self, chunk: &Chunk) -> Result<()> {
        let Some(series) = &mut self.current else {
            return Ok(());
        };
        let mut carried = Carried::default();
        match (chunk.last_row, &chunk.rows) {
            (Some(r), rows) => {
                carried.key = rows.as_ref().map(|rows| rows.row(r).owned());
                carried.key_columns = self
                    .params
                    .series
                    .iter()
                    .map(|&i| one_row(chunk.batch.column(i), r))
                    .collect::<Result<_>>()?;
            }
            (None, _) => {
                carried.key = chunk.carried.key.clone();
                carried.key_columns = chunk.carried.key_columns.clone();
            }
        }
        for (f, state) in series.fills.iter_mut().enumerate() {
            let value = match state {
                FillState::Locf(Last::Row(r)) => {
                    Some(one_row(chunk.batch.column(self.params.fills[f].0), *r)?)
                }
                FillState::Locf(Last::Carried) => chunk.carried.locf.get(f).cloned().flatten(),
                _ => None,
            };
            if let FillState::Locf(last) = state {
                *last = if value.is_some() {
                    Last::Carried
                } else {
                    Last::Nothing
                };
            }
            carried.locf.push(value);
        }
        self.carried = carried;
        Ok(())
    }

    fn materialize(&self, chunk: &Chunk, out: Output) -> Result<RecordBatch> {
        let params = &self.params;
        let batch = &chunk.batch;
        let input = batch.schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (i, field) in input.fields().iter().enumerate() {
            let column = batch.column(i).as_ref();
            let array = if let Some(j) = params.series.iter().position(|&s| s == i) {
                let carried = match chunk.carried.key_columns.get(j) {
                    Some(carried) => carried.clone(),
                    None => arrow::array::new_null_array(field.data_type(), 1),
                };
                interleave(&[column, carried.as_ref()], &out.keys)?
            } else if i == params.time {
                let gaps = cast(
                    &Int64Array::from(out.gap_buckets.clone()),
                    field.data_type(),
                )?;
                interleave(&[column, gaps.as_ref()], &out.times)?
            } else {
                interleave(&[column, self.gap_arrays[i].as_ref()], &out.values)?
            };
            columns.push(array);
        }
        for (f, &(i, fill)) in params.fills.iter().enumerate() {
            let column = batch.column(i);
            let data_type = column.data_type();
            let null = arrow::array::new_null_array(data_type, 1);
            let second = match fill {
                Fill::Locf => chunk
                    .carried
                    .locf
                    .get(f)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| null.clone()),
                Fill::Interpolate => {
                    let integer = data_type.is_integer();
                    let values: Float64Array = out.interpolated[f]
                        .iter()
                        .map(|&v| Some(if integer { v.round() } else { v }))
                        .collect();
                    cast(&values, data_type)?
                }
            };
            columns.push(interleave(
                &[column.as_ref(), second.as_ref(), null.as_ref()],
                &out.fills[f],
            )?);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

fn locf_source(last: Last) -> (usize, usize) {
    match last {
        Last::Nothing => NULL,
        Last::Row(r) => (CHUNK, r),
        Last::Carried => (1, 0),
    }
}

/// The bucket and value of the first row from `r` on, in `r`'s series, with a value in
/// the column of interpolating fill `f`.
fn value_at(chunk: &Chunk, f: usize, r: usize) -> Option<(i64, f64)> {
    let (values, next_valid) = chunk.numbers.get(f)?.as_ref()?;
    let n = (*next_valid.get(r)?)?;
    chunk
        .buckets
        .is_valid(n)
        .then(|| (chunk.buckets.value(n), values.value(n)))
}

/// The source of a value interpolated at `bucket` between `before` and `after`.
fn interpolated(
    out: &mut Output,
    f: usize,
    bucket: i64,
    before: Option<(i64, f64)>,
    after: Option<(i64, f64)>,
) -> (usize, usize) {
    let (Some((t0, v0)), Some((t1, v1))) = (before, after) else {
        return NULL;
    };
    if t1 <= t0 {
        return NULL;
    }
    let fraction =
        (i128::from(bucket) - i128::from(t0)) as f64 / (i128::from(t1) - i128::from(t0)) as f64;
    let computed = &mut out.interpolated[f];
    computed.push(v0 + (v1 - v0) * fraction);
    (1, computed.len() - 1)
}

/// Row `r` of `array`, copied.
fn one_row(array: &ArrayRef, r: usize) -> Result<ArrayRef> {
    Ok(take(
        array.as_ref(),
        &UInt32Array::from(vec![r as u32]),
        None,
    )?)
}
