//! A stream's schema as the engine uses it: the Arrow schema of its Parquet files and tables,
//! the sort and series key, and the checks that make an incoming batch fit.

use std::{collections::HashSet, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array},
    compute::{CastOptions, cast_with_options},
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType},
    util::display::FormatOptions,
};
use catalog::{ColumnRole, ColumnType, OrgId, Stream, StreamId};

use crate::{Error, Result};

pub(crate) const SUBJECT_ID: &str = "subject_id";
pub(crate) const SOURCE: &str = "source";
pub(crate) const TIME: &str = "time";
pub(crate) const END_TIME: &str = "end_time";

/// The Arrow type the engine stores for a catalog column type.
pub fn arrow_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Utf8 => DataType::Utf8,
        ColumnType::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
    }
}

/// A stream of an organization, with its Arrow schema and keys resolved once.
#[derive(Debug)]
pub struct StreamSchema {
    pub(crate) stream: Stream,
    pub(crate) org_name: String,
    arrow: SchemaRef,
    /// Column indices in sort order: subject_id, time, source, then the other key columns.
    /// Rows equal on all of them are one row (the series key and time).
    sort_key: Vec<usize>,
    allowed_values: Vec<Option<HashSet<String>>>,
}

impl StreamSchema {
    /// The schema of a stream as the catalog defines it. Refuses a stream without the columns
    /// every stream has (the catalog checks them on registration; this guards against a
    /// catalog changed behind its back).
    pub fn new(org_name: &str, stream: Stream) -> Result<Self> {
        let fields: Vec<Field> = stream
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.arrow_type), c.nullable))
            .collect();
        let index = |name: &str, expected: ColumnType| {
            stream
                .columns
                .iter()
                .position(|c| c.name == name && c.arrow_type == expected)
                .ok_or_else(|| {
                    Error::schema(
                        &stream.name,
                        format!("the catalog gives it no {name} column of type {expected}"),
                    )
                })
        };
        let mut sort_key = vec![
            index(SUBJECT_ID, ColumnType::Int64)?,
            index(TIME, ColumnType::TimestampNs)?,
            index(SOURCE, ColumnType::Utf8)?,
        ];
        sort_key.extend(
            stream
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.role == ColumnRole::Key && c.name != SUBJECT_ID && c.name != SOURCE
                })
                .map(|(i, _)| i),
        );
        let allowed_values = stream
            .columns
            .iter()
            .map(|c| {
                c.allowed_values
                    .as_ref()
                    .map(|v| v.iter().cloned().collect())
            })
            .collect();
        Ok(StreamSchema {
            arrow: Arc::new(Schema::new(fields)),
            org_name: org_name.to_owned(),
            stream,
            sort_key,
            allowed_values,
        })
    }

    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    pub fn name(&self) -> &str {
        &self.stream.name
    }

    /// The catalog's description of the stream: columns, units, ranges, vocabularies.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    pub fn id(&self) -> StreamId {
        self.stream.id
    }

    pub fn org(&self) -> OrgId {
        self.stream.org
    }

    pub(crate) fn sort_key(&self) -> &[usize] {
        &self.sort_key
    }

    pub(crate) fn sort_key_names(&self) -> Vec<&str> {
        self.sort_key
            .iter()
            .map(|i| self.arrow.field(*i).name().as_str())
            .collect()
    }

    pub(crate) fn index_of(&self, name: &str) -> usize {
        self.arrow.index_of(name).expect("column of the stream")
    }

    fn problem(&self, problem: String) -> Error {
        Error::schema(&self.stream.name, problem)
    }

    /// Makes a batch fit the stream: columns by name and in order, lossless casts to the stored
    /// types (integers to Int64 or Float64, other string and timestamp encodings), nulls for
    /// missing nullable columns. Refuses, naming the column and row, what cannot fit.
    pub fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let incoming = batch.schema();
        if let Some(stray) = incoming
            .fields()
            .iter()
            .find(|f| self.arrow.column_with_name(f.name()).is_none())
        {
            let known: Vec<_> = self
                .arrow
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return Err(self.problem(format!(
                "column '{}' is not a column of the stream (its columns: {})",
                stray.name(),
                known.join(", ")
            )));
        }
        let columns = self
            .arrow
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| self.conform_column(i, field, batch))
            .collect::<Result<Vec<_>>>()?;
        let conformed = RecordBatch::try_new(self.arrow.clone(), columns)?;
        self.check_intervals(&conformed)?;
        Ok(conformed)
    }

    fn conform_column(&self, index: usize, field: &Field, batch: &RecordBatch) -> Result<ArrayRef> {
        let name = field.name();
        let Some(column) = batch.column_by_name(name) else {
            return if field.is_nullable() {
                Ok(new_null_array(field.data_type(), batch.num_rows()))
            } else {
                Err(self.problem(format!("column '{name}' is missing; it is required")))
            };
        };
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else if castable(column.data_type(), field.data_type()) {
            let options = CastOptions {
                safe: false,
                format_options: FormatOptions::default(),
            };
            cast_with_options(column, field.data_type(), &options).map_err(|e| {
                self.problem(format!(
                    "column '{name}' cannot be stored as {}: {e}",
                    field.data_type()
                ))
            })?
        } else {
            return Err(self.problem(format!(
                "column '{name}' has type {}; the stream stores {}",
                column.data_type(),
                field.data_type()
            )));
        };
        if !field.is_nullable() && column.null_count() > 0 {
            let row = (0..column.len()).find(|i| column.is_null(*i)).unwrap_or(0);
            return Err(self.problem(format!(
                "column '{name}' is empty at row {row}; it is required"
            )));
        }
        if let Some(allowed) = &self.allowed_values[index] {
            let strings = column.as_string::<i32>();
            if let Some((row, value)) = strings
                .iter()
                .enumerate()
                .find_map(|(row, v)| v.filter(|v| !allowed.contains(*v)).map(|v| (row, v)))
            {
                let mut allowed: Vec<_> = allowed.iter().map(String::as_str).collect();
                allowed.sort();
                return Err(self.problem(format!(
                    "column '{name}' has '{value}' at row {row}; allowed: {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(column)
    }

    fn check_intervals(&self, batch: &RecordBatch) -> Result<()> {
        let Ok(end_index) = self.arrow.index_of(END_TIME) else {
            return Ok(());
        };
        let start = batch
            .column(self.index_of(TIME))
            .as_primitive::<TimestampNanosecondType>();
        let end = batch
            .column(end_index)
            .as_primitive::<TimestampNanosecondType>();
        let max = self
            .stream
            .max_duration_seconds
            .map(|s| s.saturating_mul(1_000_000_000));
        for row in 0..batch.num_rows() {
            let duration = end.value(row) - start.value(row);
            if duration < 0 {
                return Err(
                    self.problem(format!("row {row} ends (end_time) before it starts (time)"))
                );
            }
            if let Some(max) = max.filter(|max| duration > *max) {
                return Err(self.problem(format!(
                    "row {row} lasts {} s, longer than the {} s an interval of this stream may last",
                    duration / 1_000_000_000,
                    max / 1_000_000_000
                )));
            }
        }
        Ok(())
    }
}

/// Casts that lose nothing a writer meant: wider integers, integers to floats, other string
/// encodings, other timestamp units and zones (the instant is kept, in UTC).
fn castable(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match to {
        Int64 => matches!(from, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32),
        Float64 => matches!(
            from,
            Float16 | Float32 | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        ),
        Utf8 => match from {
            LargeUtf8 | Utf8View => true,
            Dictionary(_, value) => matches!(value.as_ref(), Utf8 | LargeUtf8 | Utf8View),
            _ => false,
        },
        Timestamp(TimeUnit::Nanosecond, None) => matches!(from, Timestamp(_, _)),
        _ => false,
    }
}

/// Streams for the unit tests of the engine's modules.
#[cfg(test)]
pub(crate) mod testing {
    use catalog::{ColumnType, NewStream, OrgId, Stream, StreamColumn, StreamId, StreamKind};

    use super::StreamSchema;

    /// A stream definition as the catalog would return it once registered.
    pub(crate) fn registered(new: NewStream) -> Stream {
        Stream {
            id: StreamId(1),
            org: OrgId(1),
            name: new.name,
            kind: new.kind,
            standard: false,
            description: new.description,
            schema_version: 1,
            retention_days: None,
            max_duration_seconds: new.max_duration_seconds,
            columns: new.columns,
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    /// `heart_rate` with a nullable `bpm`.
    pub(crate) fn heart_rate() -> StreamSchema {
        let new = NewStream::new(
            "heart_rate",
            StreamKind::Point,
            vec![StreamColumn::value("bpm", ColumnType::Float64)],
        );
        StreamSchema::new("default", registered(new)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use catalog::{NewStream, StreamColumn, StreamKind};

    use super::{testing::registered, *};

    fn sleep_schema() -> StreamSchema {
        let mut stream = NewStream::new(
            "sleep",
            StreamKind::Interval,
            vec![StreamColumn {
                allowed_values: Some(vec!["light".into(), "deep".into(), "rem".into()]),
                nullable: false,
                ..StreamColumn::value("stage", ColumnType::Utf8)
            }],
        );
        stream.max_duration_seconds = Some(86_400);
        StreamSchema::new("default", registered(stream)).unwrap()
    }

    fn heart_rate_schema() -> StreamSchema {
        let stream = NewStream::new(
            "heart_rate",
            StreamKind::Point,
            vec![StreamColumn {
                nullable: false,
                ..StreamColumn::value("bpm", ColumnType::Float64)
            }],
        );
        StreamSchema::new("default", registered(stream)).unwrap()
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn the_sort_key_starts_with_subject_and_time() {
        let schema = heart_rate_schema();
        assert_eq!(schema.sort_key_names(), ["subject_id", "time", "source"]);
    }

    #[test]
    fn a_stream_without_its_key_columns_is_an_error_not_a_panic() {
        let mut stream = registered(NewStream::new(
            "broken",
            StreamKind::Point,
            vec![StreamColumn::value("x", ColumnType::Float64)],
        ));
        stream.columns.retain(|c| c.name != "time");
        let err = StreamSchema::new("default", stream)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "stream broken: the catalog gives it no time column of type Timestamp(ns)"
        );
    }

    #[test]
    fn batches_are_cast_and_reordered_to_the_stream() {
        let schema = heart_rate_schema();
        let input = batch(vec![
            ("bpm", Arc::new(Int32Array::from(vec![61, 62])) as ArrayRef),
            (
                "time",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_000, 2_000]).with_timezone("+02:00"),
                ),
            ),
            (
                "source",
                Arc::new(StringArray::from(vec!["watch", "watch"])),
            ),
            ("subject_id", Arc::new(Int64Array::from(vec![7, 7]))),
        ]);
        let conformed = schema.conform(&input).unwrap();
        assert_eq!(conformed.schema(), *schema.arrow_schema());
        let time = conformed
            .column(2)
            .as_primitive::<TimestampNanosecondType>();
        assert_eq!(time.values(), &[1_000_000_000, 2_000_000_000]);
        let bpm = conformed
            .column(3)
            .as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(bpm.values(), &[61.0, 62.0]);
    }

    #[test]
    fn refusals_name_the_column_and_row() {
        let schema = heart_rate_schema();
        let base = || -> Vec<(&str, ArrayRef)> {
            vec![
                ("subject_id", Arc::new(Int64Array::from(vec![7, 7]))),
                (
                    "source",
                    Arc::new(StringArray::from(vec!["watch", "watch"])),
                ),
                ("time", Arc::new(TimestampNanosecondArray::from(vec![1, 2]))),
            ]
        };
        let cases: Vec<(Vec<(&str, ArrayRef)>, &str)> = vec![
            (base(), "column 'bpm' is missing"),
            (
                [
                    base(),
                    vec![(
                        "bpm",
                        Arc::new(StringArray::from(vec!["61", "62"])) as ArrayRef,
                    )],
                ]
                .concat(),
                "column 'bpm' has type Utf8; the stream stores Float64",
            ),
            (
                [
                    base(),
                    vec![(
                        "bpm",
                        Arc::new(Float64Array::from(vec![Some(61.0), None])) as ArrayRef,
                    )],
                ]
                .concat(),
                "column 'bpm' is empty at row 1",
            ),
            (
                [
                    base(),
                    vec![
                        (
                            "bpm",
                            Arc::new(Float64Array::from(vec![61.0, 62.0])) as ArrayRef,
                        ),
                        ("steps", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
                    ],
                ]
                .concat(),
                "column 'steps' is not a column of the stream",
            ),
        ];
        for (columns, expected) in cases {
            let err = schema.conform(&batch(columns)).unwrap_err().to_string();
            assert!(err.starts_with("stream heart_rate: "), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn intervals_and_vocabularies_are_checked() {
        let schema = sleep_schema();
        let hour = 3_600_000_000_000i64;
        let sleep = |stage: &str, start: i64, end: i64| {
            batch(vec![
                (
                    "subject_id",
                    Arc::new(Int64Array::from(vec![7])) as ArrayRef,
                ),
                ("source", Arc::new(StringArray::from(vec!["ring"]))),
                (
                    "time",
                    Arc::new(TimestampNanosecondArray::from(vec![start])),
                ),
                (
                    "end_time",
                    Arc::new(TimestampNanosecondArray::from(vec![end])),
                ),
                ("stage", Arc::new(StringArray::from(vec![stage]))),
            ])
        };
        assert!(schema.conform(&sleep("deep", 0, hour)).is_ok());
        let err = schema
            .conform(&sleep("napping", 0, hour))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'napping' at row 0; allowed: deep, light, rem"),
            "{err}"
        );
        let err = schema
            .conform(&sleep("deep", hour, 0))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("row 0 ends (end_time) before it starts"),
            "{err}"
        );
        let err = schema
            .conform(&sleep("deep", 0, 30 * hour))
            .unwrap_err()
            .to_string();
        assert!(err.contains("longer than the 86400 s"), "{err}");
    }
}
