//! Files already in a stream's own layout: columns named like the stream's, in CSV (with a
//! header), Parquet or Arrow IPC. Subjects are given either by catalog id (`subject_id`) or
//! by pseudonym (`subject`), in which case unknown pseudonyms become new subjects. Rows go to
//! the engine as they are read, in batches written concurrently so they share group commits.

use std::{
    fs::File,
    io::{BufReader, Seek},
    path::Path,
    sync::Arc,
};

use arrow::{
    array::RecordBatch,
    csv::{ReaderBuilder, reader::Format},
    datatypes::{DataType, Field, Schema},
    ipc::reader::FileReader,
};
use engine::{Engine, StreamSchema};
use futures::{StreamExt, stream::FuturesUnordered};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc;

use crate::{Error, Result, extract::SUBJECT, subjects::Subjects};

/// Rows per batch read from a file.
const BATCH_ROWS: usize = 64 * 1024;
/// Batches in flight to the engine at once.
const IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub rows: usize,
}

/// Loads a file into a stream of an organization.
pub async fn load_file(
    engine: &Engine,
    org: &str,
    stream: &str,
    path: &Path,
) -> Result<LoadReport> {
    let file_name = path.display().to_string();
    let schema = engine
        .stream(org, stream)
        .await
        .map_err(|e| Error::engine(&file_name, e))?;
    let org_id = engine
        .organization(org)
        .await
        .map_err(|e| Error::engine(&file_name, e))?
        .id;
    let (sender, mut receiver) = mpsc::channel::<Result<RecordBatch>>(IN_FLIGHT);
    let reading_path = path.to_owned();
    let reading_schema = schema.clone();
    let reader = tokio::task::spawn_blocking(move || read(&reading_path, &reading_schema, &sender));
    let mut subjects = Subjects::new(engine, org_id, &file_name);
    let mut in_flight = FuturesUnordered::new();
    let mut rows = 0;
    let mut first_row = 1;
    while let Some(batch) = receiver.recv().await {
        let batch = batch?;
        let batch = subjects.resolve(batch, first_row).await?;
        first_row += batch.num_rows();
        if in_flight.len() >= IN_FLIGHT
            && let Some(written) = in_flight.next().await
        {
            rows += written?;
        }
        in_flight.push(write(engine, org, stream, batch, &file_name));
    }
    while let Some(written) = in_flight.next().await {
        rows += written?;
    }
    reader
        .await
        .map_err(|e| Error::file(&file_name, format!("reading stopped: {e}")))?;
    Ok(LoadReport { rows })
}

async fn write(
    engine: &Engine,
    org: &str,
    stream: &str,
    batch: RecordBatch,
    file_name: &str,
) -> Result<usize> {
    let rows = batch.num_rows();
    engine
        .write(org, stream, batch, None)
        .await
        .map(|_| rows)
        .map_err(|e| Error::engine(file_name, e))
}

/// Reads the file batch by batch, handing each to `sender`; stops at the first error, which
/// it hands over too.
fn read(path: &Path, schema: &StreamSchema, sender: &mpsc::Sender<Result<RecordBatch>>) {
    let file_name = path.display().to_string();
    let outcome = (|| -> Result<()> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let file =
            File::open(path).map_err(|e| Error::file(&file_name, format!("cannot open: {e}")))?;
        let batches: Box<
            dyn Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>,
        > = match extension.as_str() {
            "csv" => Box::new(csv_reader(file, schema, &file_name)?),
            "parquet" => Box::new(
                ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                    .map_err(|e| {
                        Error::file(&file_name, format!("not a readable Parquet file: {e}"))
                    })?,
            ),
            "arrow" | "arrows" | "ipc" | "feather" => Box::new(
                FileReader::try_new(BufReader::new(file), None).map_err(|e| {
                    Error::file(&file_name, format!("not a readable Arrow IPC file: {e}"))
                })?,
            ),
            other => {
                return Err(Error::file(
                    &file_name,
                    format!("unknown format '.{other}': use .csv, .parquet or .arrow"),
                ));
            }
        };
        for batch in batches {
            let batch = batch.map_err(|e| Error::file(&file_name, e.to_string()))?;
            if sender.blocking_send(Ok(batch)).is_err() {
                // The writer side stopped on an error of its own.
                return Ok(());
            }
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        let _ = sender.blocking_send(Err(e));
    }
}

/// A CSV reader typed by the stream: the header names the columns, the stream gives their
/// types (`subject` is a pseudonym, text).
fn csv_reader(
    mut file: File,
    schema: &StreamSchema,
    file_name: &str,
) -> Result<arrow::csv::Reader<BufReader<File>>> {
    let (header, _) = Format::default()
        .with_header(true)
        .infer_schema(&mut file, Some(0))
        .map_err(|e| Error::file(file_name, format!("cannot read the header: {e}")))?;
    file.rewind()
        .map_err(|e| Error::file(file_name, format!("cannot read: {e}")))?;
    let stream = schema.arrow_schema();
    let fields = header
        .fields()
        .iter()
        .map(|f| {
            if f.name() == SUBJECT {
                return Ok(Field::new(SUBJECT, DataType::Utf8, false));
            }
            stream
                .field_with_name(f.name())
                .map(|known| Field::new(f.name(), known.data_type().clone(), true))
                .map_err(|_| {
                    Error::file(
                        file_name,
                        format!(
                            "column '{}' is not a column of stream {}",
                            f.name(),
                            schema.name()
                        ),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_header(true)
        .with_batch_size(BATCH_ROWS)
        .build(BufReader::new(file))
        .map_err(|e| Error::file(file_name, e.to_string()))
}
