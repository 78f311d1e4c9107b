use datafusion::error::DataFusionError;
use tonic::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a network call can fail with, mapped once onto a gRPC status whose message says what
/// to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),

    #[error("permission denied: {0}")]
    Denied(String),

    #[error("{0}")]
    Invalid(String),

    #[error("{0}")]
    Unsupported(String),

    #[error("server configuration: {0}")]
    Config(String),

    #[error(transparent)]
    Engine(#[from] engine::Error),

    #[error(transparent)]
    Catalog(#[from] catalog::Error),

    #[error(transparent)]
    Ingest(#[from] ingest::Error),

    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::Denied(_) => Status::permission_denied(message),
            Error::Invalid(_) | Error::Arrow(_) => Status::invalid_argument(message),
            Error::Unsupported(_) => Status::unimplemented(message),
            Error::Config(_) | Error::Internal(_) => Status::internal(message),
            Error::Catalog(e) => catalog_status(&e, message),
            // The engine's refusal decides the code; the message keeps the ingest context.
            Error::Ingest(ingest::Error::Engine { source, .. }) => {
                Status::new(Status::from(Error::Engine(*source)).code(), message)
            }
            Error::Ingest(ingest::Error::File { .. } | ingest::Error::Connector { .. }) => {
                Status::invalid_argument(message)
            }
            Error::Engine(e) => match e {
                engine::Error::Denied(_) => Status::permission_denied(message),
                engine::Error::Schema { .. } => Status::invalid_argument(message),
                engine::Error::Limit(_) => Status::resource_exhausted(message),
                engine::Error::Overloaded(_) | engine::Error::Closed => {
                    Status::unavailable(message)
                }
                engine::Error::Catalog(e) => catalog_status(&e, message),
                engine::Error::Query(e) => query_status(&e, message),
                _ => Status::internal(message),
            },
        }
    }
}

fn catalog_status(error: &catalog::Error, message: String) -> Status {
    match error {
        catalog::Error::NotFound { .. } => Status::not_found(message),
        catalog::Error::AlreadyExists { .. } => Status::already_exists(message),
        catalog::Error::Invalid { .. } => Status::invalid_argument(message),
        catalog::Error::Conflict(_) => Status::aborted(message),
        catalog::Error::RefreshToken(_) => Status::unauthenticated(message),
        _ => Status::unavailable(message),
    }
}

/// Errors in the SQL itself are the caller's to fix; the rest are the server's.
fn query_status(error: &DataFusionError, message: String) -> Status {
    match error.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Status::invalid_argument(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        DataFusionError::External(inner) if inner.to_string().contains("not found") => {
            Status::not_found(message)
        }
        _ => Status::internal(message),
    }
}
