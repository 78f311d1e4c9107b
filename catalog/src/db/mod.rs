//! The seam between the repositories and the two databases.
//!
//! Repositories are written once, as SQL that both PostgreSQL and SQLite accept (numbered
//! `$n` placeholders, `RETURNING`, `ON CONFLICT`), against [`Tx`]. A backend supplies
//! connections and transactions, converts [`Value`]s to and from its native types, and maps
//! its errors onto [`DbError`]. Where the dialects truly differ, the repository asks
//! [`Tx::backend`].

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{Backend, Error, error::BoxError};

/// A parameter or a column value, in the types the catalog schema uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    I64(i64),
    F64(f64),
    Text(String),
    Bytes(Vec<u8>),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    Uuid(Uuid),
    Json(serde_json::Value),
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v.into())
            }
        }
    )*};
}

value_from! {
    bool => Bool,
    i64 => I64,
    f64 => F64,
    String => Text,
    &str => Text,
    Vec<u8> => Bytes,
    &[u8] => Bytes,
    DateTime<Utc> => Timestamp,
    NaiveDate => Date,
    Uuid => Uuid,
    serde_json::Value => Json,
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row, read by column name.
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }

    fn get(&self, column: &str) -> Result<&Value, Error> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| decode_error(column, "is not in the result"))
    }

    fn opt<T>(
        &self,
        column: &str,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        match self.get(column)? {
            Value::Null => Ok(None),
            value => convert(value)
                .map(Some)
                .ok_or_else(|| decode_error(column, &format!("holds unexpected {value:?}"))),
        }
    }

    fn req<T>(&self, column: &str, convert: impl FnOnce(&Value) -> Option<T>) -> Result<T, Error> {
        self.opt(column, convert)?
            .ok_or_else(|| decode_error(column, "is NULL"))
    }

    pub(crate) fn i64(&self, column: &str) -> Result<i64, Error> {
        self.req(column, as_i64)
    }

    pub(crate) fn opt_i64(&self, column: &str) -> Result<Option<i64>, Error> {
        self.opt(column, as_i64)
    }

    pub(crate) fn f64(&self, column: &str) -> Result<f64, Error> {
        self.req(column, as_f64)
    }

    pub(crate) fn opt_f64(&self, column: &str) -> Result<Option<f64>, Error> {
        self.opt(column, as_f64)
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool, Error> {
        self.req(column, |v| match v {
            Value::Bool(b) => Some(*b),
            Value::I64(i) => Some(*i != 0),
            _ => None,
        })
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, Error> {
        self.req(column, as_text)
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, Error> {
        self.opt(column, as_text)
    }

    /// Parses a text column into one of the catalog's vocabularies (roles, statuses, …).
    pub(crate) fn parsed<T: std::str::FromStr>(&self, column: &str) -> Result<T, Error> {
        let text = self.text(column)?;
        text.parse()
            .map_err(|_| decode_error(column, &format!("holds unknown value '{text}'")))
    }

    pub(crate) fn opt_parsed<T: std::str::FromStr>(
        &self,
        column: &str,
    ) -> Result<Option<T>, Error> {
        self.opt_text(column)?
            .map(|text| {
                text.parse()
                    .map_err(|_| decode_error(column, &format!("holds unknown value '{text}'")))
            })
            .transpose()
    }

    pub(crate) fn timestamp(&self, column: &str) -> Result<DateTime<Utc>, Error> {
        self.req(column, as_timestamp)
    }

    pub(crate) fn opt_timestamp(&self, column: &str) -> Result<Option<DateTime<Utc>>, Error> {
        self.opt(column, as_timestamp)
    }

    pub(crate) fn date(&self, column: &str) -> Result<NaiveDate, Error> {
        self.req(column, as_date)
    }

    pub(crate) fn opt_date(&self, column: &str) -> Result<Option<NaiveDate>, Error> {
        self.opt(column, as_date)
    }

    pub(crate) fn uuid(&self, column: &str) -> Result<Uuid, Error> {
        self.req(column, |v| match v {
            Value::Uuid(u) => Some(*u),
            Value::Text(t) => Uuid::parse_str(t).ok(),
            _ => None,
        })
    }

    pub(crate) fn json(&self, column: &str) -> Result<serde_json::Value, Error> {
        self.req(column, |v| match v {
            Value::Json(j) => Some(j.clone()),
            Value::Text(t) => serde_json::from_str(t).ok(),
            _ => None,
        })
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::I64(i) => Some(*i),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::F64(f) => Some(*f),
        // SQLite hands back whole REAL values it stored as integers.
        Value::I64(i) => Some(*i as f64),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

/// SQLite keeps instants as microseconds since the Unix epoch.
fn as_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Timestamp(t) => Some(*t),
        Value::I64(micros) => DateTime::from_timestamp_micros(*micros),
        _ => None,
    }
}

/// SQLite keeps dates as `YYYY-MM-DD` text.
fn as_date(v: &Value) -> Option<NaiveDate> {
    match v {
        Value::Date(d) => Some(*d),
        Value::Text(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok(),
        _ => None,
    }
}

fn decode_error(column: &str, problem: &str) -> Error {
    Error::Backend {
        operation: "read",
        source: format!("column {column} {problem}").into(),
    }
}

/// What went wrong in the database, in the terms the repositories act on.
#[derive(Debug)]
pub(crate) enum DbError {
    Unique(String),
    ForeignKey(String),
    /// CHECK and NOT NULL violations, and values the column type rejects.
    Check(String),
    /// A trigger refused the change (the audit log is append-only).
    Refused(String),
    /// Serialization failure, deadlock or a busy database: running the transaction again
    /// can succeed.
    Retryable(String),
    Unavailable(BoxError),
    Other(BoxError),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unique(c) => write!(f, "uniqueness violated ({c})"),
            DbError::ForeignKey(c) => write!(f, "reference to a missing row ({c})"),
            DbError::Check(c) => write!(f, "constraint violated ({c})"),
            DbError::Refused(m) => write!(f, "refused: {m}"),
            DbError::Retryable(m) => write!(f, "concurrent transaction: {m}"),
            DbError::Unavailable(e) => write!(f, "database unavailable: {e}"),
            DbError::Other(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DbError {}

impl DbError {
    /// Names the entity being written when a constraint refuses it.
    pub(crate) fn on(self, entity: &'static str, key: impl fmt::Display) -> Error {
        match self {
            DbError::Unique(_) => Error::AlreadyExists {
                entity,
                key: key.to_string(),
            },
            DbError::ForeignKey(_) => Error::invalid(
                entity,
                format!("{key} refers to something that does not exist in this organization"),
            ),
            DbError::Check(constraint) => {
                Error::invalid(entity, format!("{key} is out of range ({constraint})"))
            }
            other => other.into(),
        }
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique(c) => Error::AlreadyExists {
                entity: "row",
                key: c,
            },
            DbError::ForeignKey(c) | DbError::Check(c) => Error::invalid("row", c),
            DbError::Refused(m) => Error::invalid("change", m),
            DbError::Retryable(m) => Error::Conflict(m),
            e @ (DbError::Unavailable(_) | DbError::Other(_)) => Error::Backend {
                operation: "query",
                source: Box::new(e),
            },
        }
    }
}

/// A connection, inside a transaction when it came from [`Database::begin`]. Dropping a
/// transaction without [`Tx::commit`] rolls it back.
#[async_trait]
pub(crate) trait Tx: Send {
    fn backend(&self) -> Backend;
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    async fn commit(self: Box<Self>) -> Result<(), DbError>;

    async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, params).await?.ok_or_else(|| {
            DbError::Other(format!("expected one row from: {}", first_line(sql)).into())
        })
    }

    async fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or_default()
}

#[async_trait]
pub(crate) trait Database: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;
    /// A read-write transaction.
    async fn begin(&self) -> Result<Box<dyn Tx>, DbError>;
    /// A connection outside any transaction, for single statements.
    async fn connection(&self) -> Result<Box<dyn Tx>, DbError>;
    fn pool_status(&self) -> crate::PoolStatus;
}
