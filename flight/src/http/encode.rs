//! Query results as HTTP bodies: JSON (an array of objects), JSON lines, CSV with a header,
//! an Arrow IPC stream, or Parquet, encoded batch by batch so that a result streams out as
//! it is computed.

use arrow::{
    array::RecordBatch,
    datatypes::SchemaRef,
    ipc::writer::StreamWriter,
    json::{WriterBuilder, writer::LineDelimited},
};
use parquet::arrow::ArrowWriter;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultFormat {
    Json,
    Ndjson,
    Csv,
    Arrow,
    Parquet,
}

impl ResultFormat {
    const ALL: [ResultFormat; 5] = [
        ResultFormat::Json,
        ResultFormat::Ndjson,
        ResultFormat::Csv,
        ResultFormat::Arrow,
        ResultFormat::Parquet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResultFormat::Json => "json",
            ResultFormat::Ndjson => "ndjson",
            ResultFormat::Csv => "csv",
            ResultFormat::Arrow => "arrow",
            ResultFormat::Parquet => "parquet",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ResultFormat::Json => "application/json",
            ResultFormat::Ndjson => "application/x-ndjson",
            ResultFormat::Csv => "text/csv; charset=utf-8; header=present",
            ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
            ResultFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn from_name(name: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "jsonl" | "json-lines" => "ndjson",
            "ipc" | "arrow-stream" => "arrow",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown result format '{name}': json, ndjson, csv, arrow or parquet"
                ))
            })
    }

    /// The first supported type of an Accept header, in the client's order; `None` for
    /// `*/*` or nothing known (the caller's default applies).
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|item| {
            let media = item.split(';').next().unwrap_or_default().trim();
            let media = media.to_ascii_lowercase();
            match media.as_str() {
                "application/json" => Some(ResultFormat::Json),
                "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
                    Some(ResultFormat::Ndjson)
                }
                "text/csv" => Some(ResultFormat::Csv),
                "application/vnd.apache.arrow.stream" | "application/vnd.apache.arrow.file" => {
                    Some(ResultFormat::Arrow)
                }
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    Some(ResultFormat::Parquet)
                }
                _ => None,
            }
        })
    }

    pub fn encoder(self, schema: SchemaRef) -> Result<Box<dyn Encoder>> {
        Ok(match self {
            ResultFormat::Json => Box::new(JsonArray { started: false }),
            ResultFormat::Ndjson => Box::new(JsonLines),
            ResultFormat::Csv => Box::new(Csv {
                schema,
                header_written: false,
            }),
            ResultFormat::Arrow => Box::new(ArrowStream {
                writer: StreamWriter::try_new(Vec::new(), &schema)?,
            }),
            ResultFormat::Parquet => Box::new(Parquet {
                writer: ArrowWriter::try_new(Vec::new(), schema, None)
                    .map_err(|e| Error::Internal(format!("Parquet encoder: {e}")))?,
            }),
        })
    }
}

/// Encodes the batches of one result, in order; each call returns the bytes ready to send.
pub(crate) trait Encoder: Send {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>>;
    fn finish(self: Box<Self>) -> Result<Vec<u8>>;
}

/// One JSON object per row and line, nulls written out so every object has every column.
fn json_lines(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer: arrow::json::Writer<_, LineDelimited> = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build(&mut out);
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

struct JsonLines;

impl Encoder for JsonLines {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        json_lines(batch)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
}

struct JsonArray {
    started: bool,
}

impl Encoder for JsonArray {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let lines = json_lines(batch)?;
        let mut out = Vec::with_capacity(lines.len() + 1);
        // Objects hold no raw newline (JSON escapes them), so lines are objects.
        for object in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.push(if self.started { b',' } else { b'[' });
            self.started = true;
            out.extend_from_slice(object);
        }
        Ok(out)
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        Ok(if self.started {
            b"]\n".to_vec()
        } else {
            b"[]\n".to_vec()
        })
    }
}

struct Csv {
    schema: SchemaRef,
    header_written: bool,
}

impl Csv {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(!self.header_written)
            .build(&mut out);
        writer.write(batch)?;
        drop(writer);
        self.header_written = true;
        Ok(out)
    }
}

impl Encoder for Csv {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        self.encode(batch)
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        if self.header_written {
            return Ok(Vec::new());
        }
        let empty = RecordBatch::new_empty(self.schema.clone());
        self.encode(&empty)
    }
}

struct ArrowStream {
    writer: StreamWriter<Vec<u8>>,
}

impl Encoder for ArrowStream {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        self.writer.write(batch)?;
        // The stream format only appends, so what was written can leave now.
        Ok(std::mem::take(self.writer.get_mut()))
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>> {
        self.writer.finish()?;
        Ok(std::mem::take(self.writer.get_mut()))
    }
}

struct Parquet {
    writer: ArrowWriter<Vec<u8>>,
}

impl Encoder for Parquet {
    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        self.writer
            .write(batch)
            .map_err(|e| Error::Internal(format!("Parquet encoder: {e}")))?;
        // The writer counts the bytes it wrote and never reads them back, so finished row
        // groups can leave while the next one is encoded.
        Ok(std::mem::take(self.writer.inner_mut()))
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        self.writer
            .into_inner()
            .map_err(|e| Error::Internal(format!("Parquet encoder: {e}")))
    }
}

/// Encodes a whole result at once (for answers built from a few small queries).
pub(crate) fn encode_all(
    format: ResultFormat,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>> {
    let mut encoder = format.encoder(schema)?;
    let mut out = Vec::new();
    for batch in batches {
        out.extend(encoder.batch(batch)?);
    }
    out.extend(encoder.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Float64Array, StringArray},
        datatypes::{DataType, Field, Schema},
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn batches() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("subject", DataType::Utf8, false),
            Field::new("bpm", DataType::Float64, true),
        ]));
        let batch = |names: Vec<&str>, values: Vec<Option<f64>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(Float64Array::from(values)),
                ],
            )
            .unwrap()
        };
        let empty = RecordBatch::new_empty(schema.clone());
        (
            schema.clone(),
            vec![
                batch(vec!["S1", "S2"], vec![Some(60.5), None]),
                empty,
                batch(vec!["S3"], vec![Some(70.0)]),
            ],
        )
    }

    fn text(format: ResultFormat, batches: &[RecordBatch], schema: SchemaRef) -> String {
        String::from_utf8(encode_all(format, schema, batches).unwrap()).unwrap()
    }

    #[test]
    fn text_formats_span_batches() {
        let (schema, batches) = batches();
        let json = text(ResultFormat::Json, &batches, schema.clone());
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"subject": "S1", "bpm": 60.5},
                {"subject": "S2", "bpm": null},
                {"subject": "S3", "bpm": 70.0},
            ])
        );
        assert_eq!(text(ResultFormat::Json, &[], schema.clone()), "[]\n");
        let lines = text(ResultFormat::Ndjson, &batches, schema.clone());
        assert_eq!(lines.lines().count(), 3);
        assert_eq!(
            text(ResultFormat::Csv, &batches, schema.clone()),
            "subject,bpm\nS1,60.5\nS2,\nS3,70.0\n"
        );
        assert_eq!(text(ResultFormat::Csv, &[], schema), "subject,bpm\n");
    }

    #[test]
    fn binary_formats_decode_to_the_same_rows() {
        let (schema, batches) = batches();
        let arrow = encode_all(ResultFormat::Arrow, schema.clone(), &batches).unwrap();
        let read: Vec<RecordBatch> =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow), None)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3);
        let parquet = encode_all(ResultFormat::Parquet, schema, &batches).unwrap();
        let read: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet))
                .unwrap()
                .build()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let all = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        assert_eq!(all.num_rows(), 3);
        assert_eq!(
            all.column(0).as_ref(),
            &StringArray::from(vec!["S1", "S2", "S3"])
        );
    }

    #[test]
    fn formats_are_chosen_by_name_or_accept() {
        assert_eq!(ResultFormat::from_name("CSV").unwrap(), ResultFormat::Csv);
        assert_eq!(
            ResultFormat::from_name("jsonl").unwrap(),
            ResultFormat::Ndjson
        );
        assert!(ResultFormat::from_name("xml").is_err());
        assert_eq!(
            ResultFormat::from_accept("text/html, text/csv;q=0.9, */*"),
            Some(ResultFormat::Csv)
        );
        assert_eq!(
            ResultFormat::from_accept("application/vnd.apache.arrow.stream"),
            Some(ResultFormat::Arrow)
        );
        assert_eq!(ResultFormat::from_accept("*/*"), None);
    }
}
