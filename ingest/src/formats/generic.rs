//! Generic files for one stream: CSV (with a header), NDJSON, Parquet, Arrow IPC. Columns are
//! named like the stream's (or mapped to them); a header `weight_kg[lb]` gives a column's
//! unit, a column `weight_kg_unit` a row's; subjects by `subject` or `subject_id`.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Seek},
    sync::Arc,
};

use arrow::{
    array::RecordBatch,
    compute::cast,
    datatypes::{DataType, Field, Schema, SchemaRef},
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Input, Sink};
use crate::{Error, Result, extract::Extract};

/// Rows per batch read.
const BATCH_ROWS: usize = 64 * 1024;

/// How columns of a generic file are renamed to the stream's.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    /// Source column → stream column, from `--map`.
    pub renames: HashMap<String, String>,
}

/// Common spellings of the columns every stream has.
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "timestamp" | "datetime" | "date_time" | "start" | "start_time" | "startdate"
        | "start_date" => "time",
        "end" | "end_date" | "enddate" => "end_time",
        "user" | "user_id" | "participant" | "participant_id" | "person" | "pseudonym" => "subject",
        "device" | "source_name" => "source",
        _ => return None,
    })
}

/// The stream column a source column feeds, and the unit its header gives.
fn target(header: &str, map: &ColumnMap) -> (String, Option<String>) {
    let (name, unit) = match header.trim().split_once('[') {
        Some((name, rest)) if rest.ends_with(']') => (
            name.trim(),
            Some(rest.trim_end_matches(']').trim().to_owned()),
        ),
        _ => (header.trim(), None),
    };
    if let Some(renamed) = map.renames.get(name) {
        return (renamed.clone(), unit);
    }
    let lower = name.to_ascii_lowercase();
    let name = alias(&lower).map(str::to_owned).unwrap_or(lower);
    (name, unit)
}

/// Renames the columns of `batch` to the stream's; units from headers go to `units`.
fn rename(
    batch: &RecordBatch,
    map: &ColumnMap,
    units: &mut HashMap<String, String>,
) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let (name, unit) = target(field.name(), map);
        if let Some(unit) = unit {
            units.insert(name.clone(), unit);
        }
        if fields.iter().any(|f: &Field| f.name() == &name) {
            return Err(format!("two columns map to '{name}'"));
        }
        fields.push(Field::new(name, field.data_type().clone(), true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec())
        .map_err(|e| e.to_string())
}

fn extract(
    stream: &str,
    input: &Input,
    batch: RecordBatch,
    first_record: u64,
    units: HashMap<String, String>,
    default_source: &str,
) -> Extract {
    let rows = batch.num_rows() as u64;
    Extract {
        stream: stream.to_owned(),
        batch,
        units,
        records: (first_record..first_record + rows).collect(),
        file: input.name.clone(),
        default_source: default_source.to_owned(),
    }
}

/// A CSV file with a header; every column is read as text, cleaning types it.
pub(crate) fn csv(input: Input, stream: &str, map: &ColumnMap, sink: &mut Sink) -> Result<()> {
    let name = input.name.clone();
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let delimiter = sniff_delimiter(&mut reader)
        .map_err(|e| Error::file(&name, format!("cannot read: {e}")))?;
    let format = arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (header, _) = format
        .clone()
        .infer_schema(&mut reader, Some(0))
        .map_err(|e| Error::file(&name, format!("cannot read the header: {e}")))?;
    let text_schema = as_text(&header);
    reader
        .rewind()
        .map_err(|e| Error::file(&name, format!("cannot read: {e}")))?;
    let csv = arrow::csv::ReaderBuilder::new(text_schema)
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build(&mut reader)
        .map_err(|e| Error::file(&name, e.to_string()))?;
    // Record 1 is the header line.
    let batches = csv.map(|b| b.map_err(|e| format!("not readable as CSV: {e}")));
    emit(batches, 2, stream, &input, map, "csv", sink)
}

/// Every column as text: cleaning types them, rejecting the values that do not fit.
fn as_text(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// Hands each batch to the sink as an extract, numbering records from `first_record`.
fn emit(
    batches: impl Iterator<Item = std::result::Result<RecordBatch, String>>,
    first_record: u64,
    stream: &str,
    input: &Input,
    map: &ColumnMap,
    default_source: &str,
    sink: &mut Sink,
) -> Result<()> {
    let mut next_record = first_record;
    for batch in batches {
        let batch = batch.map_err(|e| {
            Error::file(
                &input.name,
                format!("after record {}: {e}", next_record - 1),
            )
        })?;
        let mut units = HashMap::new();
        let renamed = rename(&batch, map, &mut units).map_err(|e| Error::file(&input.name, e))?;
        let rows = renamed.num_rows() as u64;
        sink(extract(
            stream,
            input,
            renamed,
            next_record,
            units,
            default_source,
        ))?;
        next_record += rows;
    }
    Ok(())
}

/// `,` unless the header line has more tabs or semicolons.
fn sniff_delimiter<R: BufRead>(reader: &mut R) -> std::io::Result<u8> {
    let buffer = reader.fill_buf()?;
    let line = buffer.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| line.iter().filter(|b| **b == c).count();
    let (commas, tabs, semicolons) = (count(b','), count(b'\t'), count(b';'));
    Ok(if tabs > commas && tabs >= semicolons {
        b'\t'
    } else if semicolons > commas {
        b';'
    } else {
        b','
    })
}

/// Newline-delimited JSON objects; values of any JSON type are read as text.
pub(crate) fn ndjson(input: Input, stream: &str, map: &ColumnMap, sink: &mut Sink) -> Result<()> {
    let name = input.name.clone();
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let (inferred, _) = arrow::json::reader::infer_json_schema(&mut reader, Some(1000))
        .map_err(|e| Error::file(&name, format!("not readable as NDJSON: {e}")))?;
    let text_schema = as_text(&inferred);
    reader
        .rewind()
        .map_err(|e| Error::file(&name, format!("cannot read: {e}")))?;
    let json = arrow::json::ReaderBuilder::new(text_schema)
        .with_coerce_primitive(true)
        .with_batch_size(BATCH_ROWS)
        .build(reader)
        .map_err(|e| Error::file(&name, e.to_string()))?;
    let batches = json.map(|b| b.map_err(|e| format!("not readable as NDJSON: {e}")));
    emit(batches, 1, stream, &input, map, "ndjson", sink)
}

/// Parquet or Arrow IPC: typed columns, kept as they are for cleaning to check.
pub(crate) fn columnar(
    input: Input,
    stream: &str,
    map: &ColumnMap,
    sink: &mut Sink,
    parquet: bool,
) -> Result<()> {
    let name = input.name.clone();
    let bytes = input.read_all()?;
    let batches: Box<
        dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>,
    > = if parquet {
        Box::new(
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                .map_err(|e| Error::file(&name, format!("not a readable Parquet file: {e}")))?,
        )
    } else {
        Box::new(
            arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
                .map_err(|e| Error::file(&name, format!("not a readable Arrow IPC file: {e}")))?,
        )
    };
    let default_source = if parquet { "parquet" } else { "arrow" };
    let batches = batches.map(|b| b.map_err(|e| e.to_string()).and_then(dictionaries_as_text));
    emit(batches, 1, stream, &input, map, default_source, sink)
}

/// Dictionary-encoded text (common in Parquet) as plain text.
fn dictionaries_as_text(batch: RecordBatch) -> Result<RecordBatch, String> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Dictionary(..)))
    {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Dictionary(..)) {
            columns.push(cast(column, &DataType::Utf8).map_err(|e| e.to_string())?);
            fields.push(Field::new(field.name(), DataType::Utf8, true));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_map_to_stream_columns_with_units() {
        let map = ColumnMap {
            renames: HashMap::from([("kilos".to_owned(), "weight_kg".to_owned())]),
        };
        assert_eq!(target("Timestamp", &map), ("time".to_owned(), None));
        assert_eq!(
            target("weight_kg[lb]", &map),
            ("weight_kg".to_owned(), Some("lb".to_owned()))
        );
        assert_eq!(target("kilos", &map), ("weight_kg".to_owned(), None));
        assert_eq!(target("participant_id", &map), ("subject".to_owned(), None));
        assert_eq!(target("bpm", &map), ("bpm".to_owned(), None));
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        let mut tabs = std::io::Cursor::new(b"subject\ttime\tbpm\nS1\t2026\t60\n".to_vec());
        assert_eq!(sniff_delimiter(&mut tabs).unwrap(), b'\t');
        let mut semicolons = std::io::Cursor::new(b"subject;time;bpm\n".to_vec());
        assert_eq!(sniff_delimiter(&mut semicolons).unwrap(), b';');
        let mut commas = std::io::Cursor::new(b"subject,time,bpm\n".to_vec());
        assert_eq!(sniff_delimiter(&mut commas).unwrap(), b',');
    }
}
