//! Ingest: reads health data from files, HTTP bodies and connectors, and hands it to the
//! engine as Arrow batches of the standard streams.
//!
//! So far: [`load_file`], for files already in a stream's own layout. Format detection,
//! mappings, cleaning and quality reports are built by the ingest issue.

mod canonical;
mod subjects;

pub use canonical::{LoadReport, load_file};

use arrow::array::RecordBatch;
use engine::{Engine, Principal};

/// Writes a batch that arrived over the network (Flight DoPut, bulk ingest) to a stream as
/// the principal: subjects may be named by pseudonym in a `subject` column. `source` names
/// where it came from, for messages.
pub async fn write_batch(
    engine: &Engine,
    principal: &Principal,
    stream: &str,
    batch: RecordBatch,
    source: &str,
) -> Result<usize> {
    let batch = subjects::Subjects::new(engine, principal.org.id, source)
        .resolve(batch, 1)
        .await?;
    let rows = batch.num_rows();
    engine
        .write_as(principal, stream, batch, None)
        .await
        .map_err(|e| Error::engine(source, e))?;
    Ok(rows)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A file that cannot be ingested, or a write the engine refused, naming the file and, where
/// known, the record and column.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {problem}")]
    File { file: String, problem: String },

    #[error("{file}: {source}")]
    Engine {
        file: String,
        #[source]
        source: Box<engine::Error>,
    },
}

impl Error {
    pub(crate) fn file(file: &str, problem: impl Into<String>) -> Self {
        Error::File {
            file: file.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn engine(file: &str, source: engine::Error) -> Self {
        Error::Engine {
            file: file.to_owned(),
            source: Box::new(source),
        }
    }
}
