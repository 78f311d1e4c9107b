use datafusion::error::DataFusionError;
use tonic::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a network call can fail with. [`Error::kind`] classifies it once; the gRPC status and
/// the HTTP status with its JSON error code both follow from that, and the message says what
/// to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthenticated(String),

    #[error("permission denied: {0}")]
    Denied(String),

    #[error("{0}")]
    Invalid(String),

    /// Something the request names (a subject, a route) does not exist.
    #[error("{0}")]
    NotFound(String),

    /// A request body over the server's limit.
    #[error("{0}")]
    TooLarge(String),

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

/// The classes of failure a caller can act on, each with one gRPC code and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unauthenticated,
    Denied,
    /// The request itself is wrong (bad SQL, a missing field).
    Invalid,
    /// The request is well formed but its content cannot be used (an unreadable body, rows
    /// that do not fit the stream).
    Unprocessable,
    NotFound,
    AlreadyExists,
    /// Another change got there first; retrying may succeed.
    Conflict,
    TooLarge,
    /// A query went over its memory or time limit.
    Exhausted,
    /// Overloaded, shutting down, or a dependency (catalog, store) unreachable.
    Unavailable,
    Unimplemented,
    Internal,
}

impl Kind {
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Kind::Unauthenticated => Code::Unauthenticated,
            Kind::Denied => Code::PermissionDenied,
            Kind::Invalid | Kind::Unprocessable => Code::InvalidArgument,
            Kind::NotFound => Code::NotFound,
            Kind::AlreadyExists => Code::AlreadyExists,
            Kind::Conflict => Code::Aborted,
            Kind::TooLarge | Kind::Exhausted => Code::ResourceExhausted,
            Kind::Unavailable => Code::Unavailable,
            Kind::Unimplemented => Code::Unimplemented,
            Kind::Internal => Code::Internal,
        }
    }

    /// The HTTP status and the `code` of the JSON error body.
    pub fn http(self) -> (u16, &'static str) {
        match self {
            Kind::Unauthenticated => (401, "unauthenticated"),
            Kind::Denied => (403, "permission_denied"),
            Kind::Invalid => (400, "invalid_argument"),
            Kind::Unprocessable => (422, "unprocessable"),
            Kind::NotFound => (404, "not_found"),
            Kind::AlreadyExists => (409, "already_exists"),
            Kind::Conflict => (409, "conflict"),
            Kind::TooLarge => (413, "payload_too_large"),
            Kind::Exhausted => (429, "resource_exhausted"),
            Kind::Unavailable => (503, "unavailable"),
            Kind::Unimplemented => (501, "unimplemented"),
            Kind::Internal => (500, "internal"),
        }
    }
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Unauthenticated(_) => Kind::Unauthenticated,
            Error::Denied(_) => Kind::Denied,
            Error::Invalid(_) | Error::Arrow(_) => Kind::Invalid,
            Error::NotFound(_) => Kind::NotFound,
            Error::TooLarge(_) => Kind::TooLarge,
            Error::Unsupported(_) => Kind::Unimplemented,
            Error::Config(_) | Error::Internal(_) => Kind::Internal,
            Error::Catalog(e) => catalog_kind(e),
            // The engine's refusal decides; the message keeps the ingest context.
            Error::Ingest(ingest::Error::Engine { source, .. }) => engine_kind(source),
            Error::Ingest(ingest::Error::File { .. }) => Kind::Unprocessable,
            Error::Ingest(ingest::Error::Connector { .. }) => Kind::Invalid,
            Error::Engine(e) => engine_kind(e),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        Status::new(error.kind().grpc_code(), error.to_string())
    }
}

fn engine_kind(error: &engine::Error) -> Kind {
    match error {
        engine::Error::Denied(_) => Kind::Denied,
        engine::Error::Schema { .. } => Kind::Unprocessable,
        engine::Error::Limit(_) => Kind::Exhausted,
        engine::Error::Overloaded(_) | engine::Error::Closed => Kind::Unavailable,
        engine::Error::Catalog(e) => catalog_kind(e),
        engine::Error::Query(e) => query_kind(e),
        _ => Kind::Internal,
    }
}

fn catalog_kind(error: &catalog::Error) -> Kind {
    match error {
        catalog::Error::NotFound { .. } => Kind::NotFound,
        catalog::Error::AlreadyExists { .. } => Kind::AlreadyExists,
        catalog::Error::Invalid { .. } => Kind::Invalid,
        catalog::Error::Conflict(_) => Kind::Conflict,
        catalog::Error::RefreshToken(_) => Kind::Unauthenticated,
        _ => Kind::Unavailable,
    }
}

/// Errors in the SQL itself are the caller's to fix; the rest are the server's.
fn query_kind(error: &DataFusionError) -> Kind {
    match error.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => Kind::Invalid,
        DataFusionError::ResourcesExhausted(_) => Kind::Exhausted,
        DataFusionError::External(inner) if inner.to_string().contains("not found") => {
            Kind::NotFound
        }
        _ => Kind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_classification_gives_both_statuses() {
        let cases = [
            (
                Error::Unauthenticated("x".into()),
                tonic::Code::Unauthenticated,
                401,
            ),
            (
                Error::Engine(engine::Error::Denied("x".into())),
                tonic::Code::PermissionDenied,
                403,
            ),
            (
                Error::Engine(engine::Error::Limit("x".into())),
                tonic::Code::ResourceExhausted,
                429,
            ),
            (
                Error::Engine(engine::Error::Overloaded("x".into())),
                tonic::Code::Unavailable,
                503,
            ),
            (
                Error::Ingest(ingest::Error::File {
                    file: "f".into(),
                    problem: "p".into(),
                }),
                tonic::Code::InvalidArgument,
                422,
            ),
            (
                Error::Engine(engine::Error::Query(DataFusionError::Plan("x".into()))),
                tonic::Code::InvalidArgument,
                400,
            ),
            (
                Error::TooLarge("x".into()),
                tonic::Code::ResourceExhausted,
                413,
            ),
            (Error::NotFound("x".into()), tonic::Code::NotFound, 404),
        ];
        for (error, code, http) in cases {
            let kind = error.kind();
            assert_eq!(Status::from(error).code(), code, "{kind:?}");
            assert_eq!(kind.http().0, http, "{kind:?}");
        }
    }
}
