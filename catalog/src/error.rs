use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the catalog can refuse or fail at, with what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid catalog URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot open the catalog at {location}: {source}")]
    Connect {
        location: String,
        #[source]
        source: BoxError,
    },

    #[error(
        "the catalog at {location} is at schema version {found}, newer than the {supported} this \
         binary knows; use a newer healthai"
    )]
    SchemaTooNew {
        location: String,
        found: i64,
        supported: i64,
    },

    #[error(
        "the catalog at {location} is at schema version {found} but this binary needs {required}; \
         run `healthai migrate --catalog {location}`"
    )]
    SchemaOutdated {
        location: String,
        found: i64,
        required: i64,
    },

    #[error("cannot migrate the catalog at {location}: {detail}")]
    Migration { location: String, detail: String },

    #[error("{entity} {key} not found")]
    NotFound { entity: &'static str, key: String },

    #[error("{entity} {key} already exists")]
    AlreadyExists { entity: &'static str, key: String },

    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },

    /// A concurrent change won: the caller's view is stale (a compaction input was already
    /// replaced, a batch was already finished). Re-read and decide again.
    #[error("conflict: {0}")]
    Conflict(String),

    #[error("refresh token rejected: {0}")]
    RefreshToken(TokenRejection),

    #[error("catalog {operation} failed: {source}")]
    Backend {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
}

impl Error {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            key: key.to_string(),
        }
    }
}

/// Why a presented refresh token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    Revoked,
    /// A token that had already been rotated was presented again: someone holds a copy, so
    /// every token of its family is revoked.
    Reused,
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenRejection::Unknown => "unknown token",
            TokenRejection::Expired => "token expired",
            TokenRejection::Revoked => "token revoked",
            TokenRejection::Reused => {
                "token was already used; every token of this login is revoked"
            }
        })
    }
}
