//! The production backend: a deadpool pool of tokio-postgres connections.

use std::{error::Error as StdError, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::{
    NoTls,
    error::SqlState,
    types::{IsNull, ToSql, Type, WrongType, to_sql_checked},
};
use uuid::Uuid;

use super::{Database, DbError, Row, Tx, Value};
use crate::Backend;

/// Connections the pool keeps per process. Catalog transactions are short; the query path
/// issues one lookup per query.
const POOL_SIZE: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct PostgresDb {
    pool: Pool,
}

impl PostgresDb {
    /// Builds the pool and opens one connection, so that a wrong host, password or database
    /// is reported now rather than at the first request.
    pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<Self, DbError> {
        let mut config = config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("healthai");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        drop(pool.get().await.map_err(pool_error)?);
        Ok(PostgresDb { pool })
    }

    pub(crate) async fn client(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn acquire(&self, begin: bool) -> Result<Box<dyn Tx>, DbError> {
        let client = self.client().await?;
        if begin {
            client.batch_execute("BEGIN").await.map_err(map_error)?;
        }
        Ok(Box::new(PgTx {
            client: Some(client),
            in_transaction: begin,
        }))
    }
}

fn pool_error(e: PoolError) -> DbError {
    match e {
        PoolError::Backend(e) => match map_error(e) {
            DbError::Other(e) => DbError::Unavailable(e),
            other => other,
        },
        other => DbError::Unavailable(Box::new(other)),
    }
}

#[async_trait]
impl Database for PostgresDb {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, DbError> {
        self.acquire(true).await
    }

    async fn connection(&self) -> Result<Box<dyn Tx>, DbError> {
        self.acquire(false).await
    }

    fn pool_status(&self) -> crate::PoolStatus {
        let status = self.pool.status();
        crate::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: Some(status.waiting),
        }
    }
}

struct PgTx {
    /// Present until the transaction ends; taken by `drop` to discard a connection whose
    /// transaction is still open.
    client: Option<Object>,
    in_transaction: bool,
}

impl PgTx {
    fn client(&self) -> Result<&Object, DbError> {
        self.client
            .as_ref()
            .ok_or_else(|| DbError::Other("transaction already ended".into()))
    }
}

#[async_trait]
impl Tx for PgTx {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(map_error)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = client.query(&statement, &params).await.map_err(map_error)?;
        let columns: Arc<[String]> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        rows.iter()
            .map(|row| {
                let values = statement
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, column)| from_postgres(row, i, column.type_()))
                    .collect::<Result<_, _>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await.map_err(map_error)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        client.execute(&statement, &params).await.map_err(map_error)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        if self.in_transaction {
            self.client()?
                .batch_execute("COMMIT")
                .await
                .map_err(map_error)?;
            self.in_transaction = false;
        }
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.in_transaction
            && let Some(client) = self.client.take()
        {
            // Closing the connection makes the server roll the transaction back; handing it
            // back to the pool would leak the open transaction to the next user.
            drop(Object::take(client));
        }
    }
}

fn with_causes(e: &dyn StdError) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

fn from_postgres(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<Value, DbError> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
        wrap: impl FnOnce(T) -> Value,
    ) -> Result<Value, DbError> {
        row.try_get::<_, Option<T>>(i)
            .map(|v| v.map_or(Value::Null, wrap))
            .map_err(|e| DbError::Other(Box::new(e)))
    }
    match *ty {
        Type::BOOL => get(row, i, Value::Bool),
        Type::INT8 => get(row, i, Value::I64),
        Type::INT4 => get(row, i, |v: i32| Value::I64(v.into())),
        Type::INT2 => get(row, i, |v: i16| Value::I64(v.into())),
        Type::FLOAT8 => get(row, i, Value::F64),
        Type::FLOAT4 => get(row, i, |v: f32| Value::F64(v.into())),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => get(row, i, Value::Text),
        Type::BYTEA => get(row, i, Value::Bytes),
        Type::TIMESTAMPTZ => get(row, i, |v: DateTime<Utc>| Value::Timestamp(v)),
        Type::TIMESTAMP => get(row, i, |v: NaiveDateTime| Value::Timestamp(v.and_utc())),
        Type::DATE => get(row, i, |v: NaiveDate| Value::Date(v)),
        Type::UUID => get(row, i, |v: Uuid| Value::Uuid(v)),
        Type::JSON | Type::JSONB => get(row, i, |v: serde_json::Value| Value::Json(v)),
        ref other => Err(DbError::Other(
            format!("column {i} has type {other}, which the catalog does not use").into(),
        )),
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        fn typed<T: ToSql>(
            v: &T,
            ty: &Type,
            out: &mut BytesMut,
        ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
            if T::accepts(ty) {
                v.to_sql(ty, out)
            } else {
                Err(Box::new(WrongType::new::<T>(ty.clone())))
            }
        }
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(v) => typed(v, ty, out),
            Value::I64(v) => typed(v, ty, out),
            Value::F64(v) => typed(v, ty, out),
            Value::Text(v) => typed(v, ty, out),
            Value::Bytes(v) => typed(v, ty, out),
            Value::Timestamp(v) => typed(v, ty, out),
            Value::Date(v) => typed(v, ty, out),
            Value::Uuid(v) => typed(v, ty, out),
            Value::Json(v) => typed(v, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per variant in `to_sql`, which knows which type the value holds.
        true
    }

    to_sql_checked!();
}

pub(crate) fn map_error(e: tokio_postgres::Error) -> DbError {
    let Some(db) = e.as_db_error() else {
        // "error connecting to server" alone says little: keep the causes, which do.
        return DbError::Unavailable(with_causes(&e).into());
    };
    let constraint = || {
        db.constraint()
            .map_or_else(|| db.message().to_owned(), str::to_owned)
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        DbError::Unique(constraint())
    } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
        DbError::ForeignKey(constraint())
    } else if [
        SqlState::CHECK_VIOLATION,
        SqlState::NOT_NULL_VIOLATION,
        SqlState::INVALID_TEXT_REPRESENTATION,
    ]
    .contains(code)
    {
        DbError::Check(constraint())
    } else if *code == SqlState::RAISE_EXCEPTION {
        DbError::Refused(db.message().to_owned())
    } else if [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ]
    .contains(code)
    {
        DbError::Retryable(db.message().to_owned())
    } else if code.code().starts_with("08")
        || code.code().starts_with("28")
        || code.code().starts_with("57")
        || *code == SqlState::INVALID_CATALOG_NAME
    {
        // Connection exceptions, authentication failures, shutdowns, a missing database.
        DbError::Unavailable(db.to_string().into())
    } else {
        DbError::Other(db.to_string().into())
    }
}
