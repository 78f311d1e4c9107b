//! Generic files for one stream: CSV (with a header), NDJSON, Parquet, Arrow IPC. Columns are
//! named like the stream's (or mapped to them); a header `weight_kg[lb]` gives a column's
//! unit, a column `weight_kg_unit` a row's; subjects by `subject` or `subject_id`.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Seek},
    sync::Arc,
};

use arrow::{
    array::RecordBatch,
    compute::cast,
    datatypes::{DataType, Field, Schema, SchemaRef},
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{
    Input, Sink,
    blocks::{BLOCK_BYTES, BlockError, BlockParser, Blocks, parse_in_parallel},
};
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

/// Where a generic file's batches go: extracts of the file for one stream.
struct Target<'a> {
    stream: &'a str,
    input: &'a Input,
    map: &'a ColumnMap,
    default_source: &'a str,
}

impl Target<'_> {
    /// Hands a batch whose first row is record `first_record` to the sink, its columns
    /// renamed to the stream's.
    fn emit(&self, batch: RecordBatch, first_record: u64, sink: &mut Sink) -> Result<()> {
        let mut units = HashMap::new();
        let renamed =
            rename(&batch, self.map, &mut units).map_err(|e| Error::file(&self.input.name, e))?;
        let rows = renamed.num_rows() as u64;
        sink(Extract {
            stream: self.stream.to_owned(),
            batch: renamed,
            units,
            records: (first_record..first_record + rows).collect(),
            file: self.input.name.clone(),
            default_source: self.default_source.to_owned(),
        })
    }

    /// Hands on the batches of a file parsed block by block, naming the record where parsing
    /// failed.
    fn emit_blocks<R: Read>(
        &self,
        blocks: Blocks<R>,
        first_record: u64,
        parse: BlockParser,
        format_name: &str,
        sink: &mut Sink,
    ) -> Result<()> {
        let mut emit = |batch, first_record| self.emit(batch, first_record, sink);
        parse_in_parallel(blocks, first_record, parse, &mut emit).map_err(|e| match e {
            BlockError::Read(e) => Error::file(&self.input.name, format!("cannot read: {e}")),
            BlockError::Parse {
                after_record,
                problem,
            } => Error::file(
                &self.input.name,
                format!("after record {after_record}: not readable as {format_name}: {problem}"),
            ),
            BlockError::Emit(e) => e,
        })
    }
}

/// A CSV file with a header; every column is read as text, cleaning types it.
pub(crate) fn csv(input: Input, stream: &str, map: &ColumnMap, sink: &mut Sink) -> Result<()> {
    csv_in_blocks(input, stream, map, sink, BLOCK_BYTES)
}

fn csv_in_blocks(
    input: Input,
    stream: &str,
    map: &ColumnMap,
    sink: &mut Sink,
    block_bytes: usize,
) -> Result<()> {
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
    let parse = Arc::new(move |block: &[u8], first: bool| {
        arrow::csv::ReaderBuilder::new(text_schema.clone())
            .with_format(format.clone().with_header(first))
            .with_batch_size(rows_at_most(block))
            .build_buffered(block)?
            .collect()
    });
    let target = Target {
        stream,
        input: &input,
        map,
        default_source: "csv",
    };
    // Record 1 is the header line.
    let blocks = Blocks::new(reader, Some(b'"'), block_bytes);
    target.emit_blocks(blocks, 2, parse, "CSV", sink)
}

/// A bound on the records of a block, so that it parses into one batch.
fn rows_at_most(block: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', block).count() + 1
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
    target: &Target,
    sink: &mut Sink,
) -> Result<()> {
    let mut next_record = first_record;
    for batch in batches {
        let batch = batch.map_err(|e| {
            Error::file(
                &target.input.name,
                format!("after record {}: {e}", next_record - 1),
            )
        })?;
        let rows = batch.num_rows() as u64;
        target.emit(batch, next_record, sink)?;
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
    let parse = Arc::new(move |block: &[u8], _first: bool| {
        arrow::json::ReaderBuilder::new(text_schema.clone())
            .with_coerce_primitive(true)
            .with_batch_size(rows_at_most(block))
            .build(block)?
            .collect()
    });
    let target = Target {
        stream,
        input: &input,
        map,
        default_source: "ndjson",
    };
    // An object per line: every newline ends a record.
    let blocks = Blocks::new(reader, None, BLOCK_BYTES);
    target.emit_blocks(blocks, 1, parse, "NDJSON", sink)
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
    let target = Target {
        stream,
        input: &input,
        map,
        default_source: if parquet { "parquet" } else { "arrow" },
    };
    let batches = batches.map(|b| b.map_err(|e| e.to_string()).and_then(dictionaries_as_text));
    emit(batches, 1, &target, sink)
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
    use arrow::array::AsArray;

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

    fn read_csv(text: &str, block_bytes: usize) -> Result<Vec<Extract>> {
        let input = Input::bytes("hr.csv", text.as_bytes().to_vec());
        let mut extracts = Vec::new();
        csv_in_blocks(
            input,
            "heart_rate",
            &ColumnMap::default(),
            &mut |extract| {
                extracts.push(extract);
                Ok(())
            },
            block_bytes,
        )?;
        Ok(extracts)
    }

    #[test]
    fn a_csv_read_in_blocks_keeps_every_record_and_its_number() {
        let mut text = "subject,time,note\n".to_owned();
        for i in 0..3000 {
            let note = if i % 7 == 0 {
                "\"two\nlines\""
            } else {
                "plain"
            };
            text.push_str(&format!("S{i},2026-01-01T00:00:00Z,{note}\n"));
        }
        let extracts = read_csv(&text, 4096).unwrap();
        assert!(extracts.len() > 5, "{} extracts", extracts.len());
        let mut expected_record = 2;
        for extract in &extracts {
            let subjects = extract.batch.column(0).as_string::<i32>();
            for (row, record) in extract.records.iter().enumerate() {
                assert_eq!(*record, expected_record);
                assert_eq!(subjects.value(row), format!("S{}", record - 2));
                expected_record += 1;
            }
        }
        assert_eq!(expected_record, 3002);
        let notes = extracts[0].batch.column(2).as_string::<i32>();
        assert_eq!(notes.value(0), "two\nlines");
    }

    #[test]
    fn a_broken_csv_record_in_a_later_block_is_named_by_its_number() {
        let mut text = "subject,time,bpm\n".to_owned();
        for i in 0..2000 {
            match i {
                1500 => text.push_str("S1,2026-01-01T00:00:00Z\n"),
                _ => text.push_str(&format!("S1,2026-01-01T00:00:{:02}Z,60\n", i % 60)),
            }
        }
        let error = read_csv(&text, 4096).unwrap_err().to_string();
        assert!(
            error.contains("hr.csv")
                && error.contains("not readable as CSV")
                && error.contains("for record 1502, expected 3 got 2"),
            "{error}"
        );
    }

    fn read_ndjson(text: &str) -> Vec<Extract> {
        let input = Input::bytes("hr.ndjson", text.as_bytes().to_vec());
        let mut extracts = Vec::new();
        let mut sink = |extract| {
            extracts.push(extract);
            Ok(())
        };
        ndjson(input, "heart_rate", &ColumnMap::default(), &mut sink).unwrap();
        extracts
    }

    #[test]
    fn ndjson_values_of_any_type_are_read_as_text() {
        let text = "{\"subject\":\"S1\",\"bpm\":60}\n\n{\"subject\":\"S2\",\"bpm\":61.5}\n";
        let extracts = read_ndjson(text);
        let bpm = extracts[0].batch.column_by_name("bpm").unwrap();
        let bpm = bpm.as_string::<i32>();
        assert_eq!((bpm.value(0), bpm.value(1)), ("60", "61.5"));
        assert_eq!(extracts[0].records, vec![1, 2]);
    }
}
