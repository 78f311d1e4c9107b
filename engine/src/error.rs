use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the engine refuses or fails at. Messages name the stream, column, row, file or object
/// involved, so that the person reading them can act.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] catalog::Error),

    /// A batch does not fit its stream: a missing or unknown column, a wrong type, a null
    /// where a value is required, a value outside the stream's vocabulary.
    #[error("stream {stream}: {problem}")]
    Schema { stream: String, problem: String },

    #[error("the writer is overloaded ({0}); retry later")]
    Overloaded(String),

    /// The principal may not do this.
    #[error("permission denied: {0}")]
    Denied(String),

    /// A query went past its memory or time limit and was stopped.
    #[error("query stopped: {0}")]
    Limit(String),

    #[error("invalid object store location '{location}': {reason}")]
    InvalidStore { location: String, reason: String },

    #[error("object store {operation} of {path} failed: {source}")]
    ObjectStore {
        operation: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("parquet file {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),

    /// The flush that held this write failed; every write in it failed with it and nothing
    /// of it is visible.
    #[error("writing to stream {stream} failed, nothing of this write was stored: {source}")]
    Flush {
        stream: String,
        #[source]
        source: Arc<Error>,
    },

    #[error("the engine is shutting down")]
    Closed,

    /// A bug: a background task panicked. The operation it served failed; nothing of it is
    /// visible.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn schema(stream: &str, problem: impl Into<String>) -> Self {
        Error::Schema {
            stream: stream.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn store(
        operation: &'static str,
        path: impl ToString,
        source: object_store::Error,
    ) -> Self {
        crate::metrics::OBJECT_STORE_ERRORS.with(&[operation]).inc();
        Error::ObjectStore {
            operation,
            path: path.to_string(),
            source,
        }
    }
}
