//! Rollups: per subject and minute, hour and day, what the decomposable aggregates of a
//! stream's numeric values need — row count, first and last time, and per value column its
//! count, sum, sum of squares, minimum, maximum, first and last value and a quantile
//! [`Sketch`].
//!
//! Compaction writes them: every compacted (level ≥ 1) data file gets one small Parquet
//! file per width beside it (`…/{day}/rollups/{uuid}.{1m|1h|1d}.parquet`, see
//! [`crate::store::rollup_path`]), written before the file is registered, so a registered
//! compacted file always has its rollups and they describe exactly its rows. A compacted
//! file that overlaps no other file holds the newest version of each of its readings, so
//! its rollups can stand in for it; files still overlapping others are aggregated raw at
//! query time (`query::rollup`).
//!
//! A rollup row's `time` is the start of its bucket (buckets are aligned on the Unix epoch),
//! so filters and `date_bin`/`date_trunc` expressions on `time` mean the same on rollup
//! rows as on raw rows when their bounds and widths are multiples of the rollup's width.

mod density;
pub(crate) mod sketch;

use std::sync::Arc;

use arrow::{
    array::{
        Array, ArrayBuilder, ArrayRef, ArrowPrimitiveType, AsArray, BinaryBuilder, PrimitiveArray,
        PrimitiveBuilder, RecordBatch,
    },
    datatypes::{
        ArrowNativeTypeOp, DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit,
        TimestampNanosecondType,
    },
};
use catalog::{ColumnRole, ColumnType};
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, ZstdLevel},
    file::{metadata::SortingColumn, properties::WriterProperties},
};

pub(crate) use self::{density::Densities, sketch::Sketch};
use crate::{
    Error, Result,
    schema::{SUBJECT_ID, StreamSchema, TIME},
};

/// The widths rollups are kept at, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Width {
    Minute,
    Hour,
    Day,
}

impl Width {
    pub(crate) const ALL: [Width; 3] = [Width::Minute, Width::Hour, Width::Day];

    pub(crate) fn nanos(self) -> i64 {
        const MINUTE: i64 = 60_000_000_000;
        match self {
            Width::Minute => MINUTE,
            Width::Hour => 60 * MINUTE,
            Width::Day => 24 * 60 * MINUTE,
        }
    }

    /// How the width is written in file names and plans.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Width::Minute => "1m",
            Width::Hour => "1h",
            Width::Day => "1d",
        }
    }

    /// The start of the bucket holding `time`.
    pub(crate) fn bucket(self, time: i64) -> i64 {
        time - time.rem_euclid(self.nanos())
    }
}

pub(crate) const ROWS: &str = "rows";
pub(crate) const FIRST_TIME: &str = "first_time";
pub(crate) const LAST_TIME: &str = "last_time";

/// What a rollup keeps of one value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Count,
    Sum,
    SumOfSquares,
    Min,
    Max,
    First,
    Last,
    Sketch,
}

impl Part {
    const ALL: [Part; 8] = [
        Part::Count,
        Part::Sum,
        Part::SumOfSquares,
        Part::Min,
        Part::Max,
        Part::First,
        Part::Last,
        Part::Sketch,
    ];

    /// The rollup column of this part of value column `value`.
    pub(crate) fn column(self, value: &str) -> String {
        let part = match self {
            Part::Count => "count",
            Part::Sum => "sum",
            Part::SumOfSquares => "sumsq",
            Part::Min => "min",
            Part::Max => "max",
            Part::First => "first",
            Part::Last => "last",
            Part::Sketch => "sketch",
        };
        format!("{value}__{part}")
    }

    fn data_type(self, value: &DataType) -> DataType {
        match self {
            Part::Count => DataType::Int64,
            Part::SumOfSquares => DataType::Float64,
            Part::Sketch => DataType::Binary,
            // What DataFusion's sum returns for the value's type.
            Part::Sum | Part::Min | Part::Max | Part::First | Part::Last => value.clone(),
        }
    }
}

/// A numeric value column of a stream, the kind rollups summarize.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValueColumn {
    pub name: String,
    /// Its index in the stream's schema.
    pub index: usize,
    pub data_type: DataType,
}

/// The rollup table of a stream: `subject_id`, `time` (bucket start), `rows`, `first_time`,
/// `last_time`, then the parts of each numeric value column.
#[derive(Debug, Clone)]
pub(crate) struct RollupSchema {
    pub arrow: SchemaRef,
    pub values: Vec<ValueColumn>,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

impl RollupSchema {
    pub(crate) fn of(stream: &StreamSchema) -> RollupSchema {
        let values: Vec<ValueColumn> = stream
            .stream
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.role == ColumnRole::Value
                    && matches!(c.arrow_type, ColumnType::Int64 | ColumnType::Float64)
            })
            .map(|(index, c)| ValueColumn {
                name: c.name.clone(),
                index,
                data_type: crate::schema::arrow_type(c.arrow_type),
            })
            .collect();
        let mut fields = vec![
            Field::new(SUBJECT_ID, DataType::Int64, false),
            Field::new(TIME, timestamp(), false),
            Field::new(ROWS, DataType::Int64, false),
            Field::new(FIRST_TIME, timestamp(), false),
            Field::new(LAST_TIME, timestamp(), false),
        ];
        for value in &values {
            for part in Part::ALL {
                let nullable = part != Part::Count;
                fields.push(Field::new(
                    part.column(&value.name),
                    part.data_type(&value.data_type),
                    nullable,
                ));
            }
        }
        RollupSchema {
            arrow: Arc::new(Schema::new(fields)),
            values,
        }
    }

    pub(crate) fn value(&self, name: &str) -> Option<&ValueColumn> {
        self.values.iter().find(|v| v.name == name)
    }
}

/// The numeric types of value columns.
trait Numeric: ArrowPrimitiveType {
    fn as_f64(value: Self::Native) -> f64;
}

impl Numeric for Int64Type {
    fn as_f64(value: i64) -> f64 {
        value as f64
    }
}

impl Numeric for Float64Type {
    fn as_f64(value: f64) -> f64 {
        value
    }
}

/// One value column's summary of the open group, and the builders of its finished groups.
struct Summary<T: Numeric> {
    count: i64,
    sum: T::Native,
    sum_of_squares: f64,
    min: Option<T::Native>,
    max: Option<T::Native>,
    first: Option<T::Native>,
    last: Option<T::Native>,
    sketch: Sketch,
    /// Whether the sketch is wanted: it is the costly part, and most queries do not read it.
    sketching: bool,
    out: SummaryBuilders<T>,
}

struct SummaryBuilders<T: Numeric> {
    count: PrimitiveBuilder<Int64Type>,
    sum: PrimitiveBuilder<T>,
    sum_of_squares: PrimitiveBuilder<Float64Type>,
    min: PrimitiveBuilder<T>,
    max: PrimitiveBuilder<T>,
    first: PrimitiveBuilder<T>,
    last: PrimitiveBuilder<T>,
    sketch: BinaryBuilder,
}

impl<T: Numeric> Summary<T> {
    fn new(sketching: bool) -> Self {
        Summary {
            count: 0,
            sum: T::Native::ZERO,
            sum_of_squares: 0.0,
            min: None,
            max: None,
            first: None,
            last: None,
            sketch: Sketch::default(),
            sketching,
            out: SummaryBuilders {
                count: PrimitiveBuilder::new(),
                sum: PrimitiveBuilder::new(),
                sum_of_squares: PrimitiveBuilder::new(),
                min: PrimitiveBuilder::new(),
                max: PrimitiveBuilder::new(),
                first: PrimitiveBuilder::new(),
                last: PrimitiveBuilder::new(),
                sketch: BinaryBuilder::new(),
            },
        }
    }

    /// Folds rows `rows` of `values` in; `first`/`last` say whether the run holds the
    /// group's first or last row by time.
    fn fold(
        &mut self,
        values: &PrimitiveArray<T>,
        rows: std::ops::Range<usize>,
        first: Option<usize>,
        last: Option<usize>,
    ) {
        if let Some(i) = first {
            self.first = values.is_valid(i).then(|| values.value(i));
        }
        if let Some(i) = last {
            self.last = values.is_valid(i).then(|| values.value(i));
        }
        for i in rows {
            if values.is_null(i) {
                continue;
            }
            let v = values.value(i);
            self.count += 1;
            self.sum = self.sum.add_wrapping(v);
            let f = T::as_f64(v);
            self.sum_of_squares += f * f;
            if self.min.is_none_or(|m| v.compare(m).is_lt()) {
                self.min = Some(v);
            }
            if self.max.is_none_or(|m| v.compare(m).is_gt()) {
                self.max = Some(v);
            }
            if self.sketching {
                self.sketch.insert(f);
            }
        }
    }

    /// Appends the open group to the builders and starts the next one.
    fn close(&mut self) {
        let out = &mut self.out;
        out.count.append_value(self.count);
        let any = self.count > 0;
        out.sum.append_option(any.then_some(self.sum));
        out.sum_of_squares
            .append_option(any.then_some(self.sum_of_squares));
        out.min.append_option(self.min);
        out.max.append_option(self.max);
        out.first.append_option(self.first);
        out.last.append_option(self.last);
        if any && self.sketching {
            let mut bytes = Vec::new();
            self.sketch.encode(&mut bytes);
            out.sketch.append_value(bytes);
        } else {
            out.sketch.append_null();
        }
        self.count = 0;
        self.sum = T::Native::ZERO;
        self.sum_of_squares = 0.0;
        self.min = None;
        self.max = None;
        self.first = None;
        self.last = None;
        self.sketch = Sketch::default();
    }

    fn finish(&mut self, columns: &mut Vec<ArrayRef>) {
        let out = &mut self.out;
        columns.push(Arc::new(out.count.finish()));
        columns.push(Arc::new(out.sum.finish()));
        columns.push(Arc::new(out.sum_of_squares.finish()));
        columns.push(Arc::new(out.min.finish()));
        columns.push(Arc::new(out.max.finish()));
        columns.push(Arc::new(out.first.finish()));
        columns.push(Arc::new(out.last.finish()));
        columns.push(Arc::new(out.sketch.finish()));
    }
}

enum ValueSummary {
    Int(Summary<Int64Type>),
    Float(Summary<Float64Type>),
}

/// Where a builder finds the value columns in its input, and which sketches it builds.
#[derive(Debug, Clone)]
pub(crate) struct ValueInputs {
    pub positions: Vec<usize>,
    pub sketches: Vec<bool>,
}

/// The open group: one subject's rows in one bucket.
struct Group {
    subject: i64,
    bucket: i64,
    rows: i64,
    first_time: i64,
    last_time: i64,
}

/// Rolls rows up into buckets of one width, streaming: rows of a group are best given
/// together (input sorted by subject and time), but any order gives correct partial rows,
/// which the query merges.
pub(crate) struct RollupBuilder {
    width: Width,
    schema: RollupSchema,
    subject: usize,
    time: usize,
    group: Option<Group>,
    values: Vec<ValueSummary>,
    subjects: PrimitiveBuilder<Int64Type>,
    buckets: PrimitiveBuilder<TimestampNanosecondType>,
    rows: PrimitiveBuilder<Int64Type>,
    first_times: PrimitiveBuilder<TimestampNanosecondType>,
    last_times: PrimitiveBuilder<TimestampNanosecondType>,
}

impl RollupBuilder {
    /// A builder for rows of `stream` (all its columns) at `width`.
    pub(crate) fn new(stream: &StreamSchema, width: Width) -> Self {
        let schema = RollupSchema::of(stream);
        Self::with_columns(
            schema,
            width,
            stream.index_of(SUBJECT_ID),
            stream.index_of(TIME),
            None,
        )
    }

    /// A builder for batches whose columns are at other positions than in the stream:
    /// `subject` and `time` index the input, and `inputs.positions[i]` the input column of
    /// the schema's value `i`, whose sketch is built only if `inputs.sketches[i]` (else the
    /// sketch column is null).
    pub(crate) fn with_columns(
        schema: RollupSchema,
        width: Width,
        subject: usize,
        time: usize,
        inputs: Option<ValueInputs>,
    ) -> Self {
        let mut schema = schema;
        let sketches = match inputs {
            Some(inputs) => {
                for (value, position) in schema.values.iter_mut().zip(inputs.positions) {
                    value.index = position;
                }
                inputs.sketches
            }
            None => vec![true; schema.values.len()],
        };
        let values = schema
            .values
            .iter()
            .zip(sketches)
            .map(|(v, sketching)| match v.data_type {
                DataType::Int64 => ValueSummary::Int(Summary::new(sketching)),
                _ => ValueSummary::Float(Summary::new(sketching)),
            })
            .collect();
        RollupBuilder {
            width,
            schema,
            subject,
            time,
            group: None,
            values,
            subjects: PrimitiveBuilder::new(),
            buckets: PrimitiveBuilder::new(),
            rows: PrimitiveBuilder::new(),
            first_times: PrimitiveBuilder::new(),
            last_times: PrimitiveBuilder::new(),
        }
    }

    /// Folds a batch in. Groups it finishes wait in the builders until [`Self::take`].
    pub(crate) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let subjects = batch.column(self.subject).as_primitive::<Int64Type>();
        let times = batch
            .column(self.time)
            .as_primitive::<TimestampNanosecondType>();
        let mut start = 0;
        while start < batch.num_rows() {
            let subject = subjects.value(start);
            let bucket = self.width.bucket(times.value(start));
            let mut end = start + 1;
            while end < batch.num_rows()
                && subjects.value(end) == subject
                && self.width.bucket(times.value(end)) == bucket
            {
                end += 1;
            }
            self.fold_run(batch, subject, bucket, start..end)?;
            start = end;
        }
        Ok(())
    }

    fn fold_run(
        &mut self,
        batch: &RecordBatch,
        subject: i64,
        bucket: i64,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.subject != subject || g.bucket != bucket)
        {
            self.close();
        }
        let times = batch
            .column(self.time)
            .as_primitive::<TimestampNanosecondType>();
        let (mut earliest, mut latest) = (rows.start, rows.start);
        for i in rows.clone() {
            if times.value(i) < times.value(earliest) {
                earliest = i;
            }
            if times.value(i) >= times.value(latest) {
                latest = i;
            }
        }
        let group = self.group.get_or_insert(Group {
            subject,
            bucket,
            rows: 0,
            first_time: i64::MAX,
            last_time: i64::MIN,
        });
        let first = (times.value(earliest) < group.first_time).then_some(earliest);
        let last = (times.value(latest) >= group.last_time).then_some(latest);
        group.rows += rows.len() as i64;
        group.first_time = group.first_time.min(times.value(earliest));
        group.last_time = group.last_time.max(times.value(latest));
        for (summary, column) in self.values.iter_mut().zip(&self.schema.values) {
            let array = batch.column(column.index);
            match summary {
                ValueSummary::Int(s) => s.fold(
                    array.as_primitive_opt().ok_or_else(|| mismatch(column))?,
                    rows.clone(),
                    first,
                    last,
                ),
                ValueSummary::Float(s) => s.fold(
                    array.as_primitive_opt().ok_or_else(|| mismatch(column))?,
                    rows.clone(),
                    first,
                    last,
                ),
            }
        }
        Ok(())
    }

    fn close(&mut self) {
        let Some(group) = self.group.take() else {
            return;
        };
        self.subjects.append_value(group.subject);
        self.buckets.append_value(group.bucket);
        self.rows.append_value(group.rows);
        self.first_times.append_value(group.first_time);
        self.last_times.append_value(group.last_time);
        for summary in &mut self.values {
            match summary {
                ValueSummary::Int(s) => s.close(),
                ValueSummary::Float(s) => s.close(),
            }
        }
    }

    /// The groups finished so far; with `all`, the open one too.
    pub(crate) fn take(&mut self, all: bool) -> Result<RecordBatch> {
        if all {
            self.close();
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.subjects.finish()),
            Arc::new(self.buckets.finish()),
            Arc::new(self.rows.finish()),
            Arc::new(self.first_times.finish()),
            Arc::new(self.last_times.finish()),
        ];
        for summary in &mut self.values {
            match summary {
                ValueSummary::Int(s) => s.finish(&mut columns),
                ValueSummary::Float(s) => s.finish(&mut columns),
            }
        }
        Ok(RecordBatch::try_new(self.schema.arrow.clone(), columns)?)
    }

    pub(crate) fn pending_rows(&self) -> usize {
        self.subjects.len()
    }
}

fn mismatch(column: &ValueColumn) -> Error {
    Error::Internal(format!(
        "rollup of column {} expected {} values",
        column.name, column.data_type
    ))
}

/// The three rollups of one file being written.
pub(crate) struct FileRollups {
    builders: Vec<RollupBuilder>,
}

impl FileRollups {
    pub(crate) fn new(stream: &StreamSchema) -> Self {
        FileRollups {
            builders: Width::ALL
                .iter()
                .map(|&w| RollupBuilder::new(stream, w))
                .collect(),
        }
    }

    pub(crate) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.builders.iter_mut().try_for_each(|b| b.push(batch))
    }

    /// Each width's rollup, encoded as a Parquet file.
    pub(crate) fn finish(self) -> Result<Vec<EncodedRollup>> {
        self.builders
            .into_iter()
            .map(|mut builder| {
                let batch = builder.take(true)?;
                Ok(EncodedRollup {
                    width: builder.width,
                    rows: batch.num_rows() as u64,
                    bytes: encode(&batch)?,
                })
            })
            .collect()
    }
}

/// One width's rollup of a file, encoded.
pub(crate) struct EncodedRollup {
    pub width: Width,
    pub rows: u64,
    pub bytes: Vec<u8>,
}

fn encode(batch: &RecordBatch) -> Result<Vec<u8>> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
        ]))
        .build();
    let failed = |source| Error::Parquet {
        path: "(new rollup file)".to_owned(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties)).map_err(failed)?;
    writer.write(batch).map_err(failed)?;
    writer.into_inner().map_err(failed)
}

#[cfg(test)]
mod tests;
