//! Ingest: reads health data from files, HTTP bodies and connectors, cleans it, and hands
//! it to the engine as Arrow batches of the streams.
//!
//! [`ingest`] runs a batch: formats ([`formats`]) become [`Extract`]s, cleaning ([`clean`])
//! makes them canonical in parallel, the engine stores them, the catalog keeps the batch, its
//! quality reports and its quarantine. [`load_file`] is the strict path for files already in
//! a stream's own layout; [`write_batch`] the one for Arrow batches from the network.
//! [`connectors`] pull public HTTP APIs on a schedule through the same batches.
//! Food-composition tables (Open Food Facts, USDA FoodData Central, CIQUAL, the project's
//! own) fill the `foods` reference table that meals are enriched from.

mod canonical;
pub mod clean;
pub mod connectors;
mod extract;
mod foods;
pub mod formats;
mod pipeline;
mod profiles;
pub mod series;
pub mod simulate;
mod subjects;
mod times;
mod units;

pub use canonical::{LoadReport, load_file};
pub use extract::Extract;
pub use foods::FoodCounts;
pub use pipeline::{
    IngestOptions, IngestReport, Progress, QUARANTINE_LIMIT, Silent, ingest, ingest_inputs,
};

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

    /// A connector that cannot be created or run: a bad configuration key, an API that
    /// refused or failed, the catalog.
    #[error("connector {connector}: {problem}")]
    Connector { connector: String, problem: String },
}

impl Error {
    pub(crate) fn file(file: &str, problem: impl Into<String>) -> Self {
        Error::File {
            file: file.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn connector(connector: &str, problem: impl Into<String>) -> Self {
        Error::Connector {
            connector: connector.to_owned(),
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
