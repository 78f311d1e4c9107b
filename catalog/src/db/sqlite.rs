//! The embedded backend: one SQLite connection owned by a dedicated thread.
//!
//! rusqlite is synchronous; running its calls on the async runtime would stall every task
//! that shares the worker thread while SQLite waits on `fsync`. Instead a thread owns the
//! connection and runs jobs sent to it, and an async mutex hands the connection to one
//! transaction at a time. WAL mode lets other processes (`healthai query` beside a running
//! `healthai serve`) read meanwhile; writers across processes queue on the busy timeout.

use std::{
    borrow::Cow,
    path::Path,
    sync::{Arc, mpsc},
    time::Duration,
};

use async_trait::async_trait;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, ffi,
    types::{Value as SqlValue, ValueRef},
};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::{Database, DbError, Row, Tx, Value};
use crate::Backend;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct SqliteDb {
    jobs: mpsc::Sender<Job>,
    turn: Arc<Mutex<()>>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database file and its parent directory.
    pub(crate) async fn open(path: &Path) -> Result<Self, DbError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbError::Unavailable(format!("cannot create {}: {e}", parent.display()).into())
            })?;
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (opened, ready) = oneshot::channel();
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("healthai-sqlite".into())
            .spawn(move || match open_connection(&thread_path) {
                Ok(mut conn) => {
                    let _ = opened.send(Ok(()));
                    for job in inbox {
                        job(&mut conn);
                    }
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            })
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        ready.await.map_err(|_| worker_gone())??;
        Ok(SqliteDb {
            jobs,
            turn: Arc::new(Mutex::new(())),
        })
    }

    /// Runs `f` on the connection when no transaction holds it.
    pub(crate) async fn with_connection<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> R + Send + 'static,
    ) -> Result<R, DbError> {
        let _turn = self.turn.lock().await;
        run_on(&self.jobs, f).await
    }

    async fn acquire(&self, begin: bool) -> Result<Box<dyn Tx>, DbError> {
        let turn = self.turn.clone().lock_owned().await;
        let mut tx = SqliteTx {
            jobs: self.jobs.clone(),
            in_transaction: false,
            _turn: turn,
        };
        if begin {
            // IMMEDIATE takes the write lock up front, so a transaction never fails halfway
            // on a lock upgrade that another process holds.
            run_on(&tx.jobs, |c| c.execute_batch("BEGIN IMMEDIATE"))
                .await?
                .map_err(map_error)?;
            tx.in_transaction = true;
        }
        Ok(Box::new(tx))
    }
}

fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let unavailable =
        |e: rusqlite::Error| DbError::Unavailable(format!("{}: {e}", path.display()).into());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // The first read of the file: a file that is not a SQLite database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Unavailable(
            format!("{}: cannot switch to WAL mode (got {mode})", path.display()).into(),
        ));
    }
    // FULL: an acknowledged write survives a power loss, not only a process crash.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(unavailable)?;
    Ok(conn)
}

async fn run_on<R: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl FnOnce(&mut Connection) -> R + Send + 'static,
) -> Result<R, DbError> {
    let (reply, answer) = oneshot::channel();
    jobs.send(Box::new(move |conn| {
        let _ = reply.send(f(conn));
    }))
    .map_err(|_| worker_gone())?;
    answer.await.map_err(|_| worker_gone())
}

fn worker_gone() -> DbError {
    DbError::Unavailable("the SQLite worker thread stopped".into())
}

#[async_trait]
impl Database for SqliteDb {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn begin(&self) -> Result<Box<dyn Tx>, DbError> {
        self.acquire(true).await
    }

    async fn connection(&self) -> Result<Box<dyn Tx>, DbError> {
        self.acquire(false).await
    }

    /// The one connection, available unless a transaction holds it; waiters are not counted.
    fn pool_status(&self) -> crate::PoolStatus {
        crate::PoolStatus {
            max_size: 1,
            size: 1,
            available: usize::from(self.turn.try_lock().is_ok()),
            waiting: None,
        }
    }
}

struct SqliteTx {
    jobs: mpsc::Sender<Job>,
    in_transaction: bool,
    // Released last, after `drop` has queued the rollback, so the next holder's first job
    // runs after it.
    _turn: OwnedMutexGuard<()>,
}

impl SqliteTx {
    async fn run<R: Send + 'static>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(&mut rusqlite::CachedStatement<'_>, Vec<SqlValue>) -> rusqlite::Result<R>
        + Send
        + 'static,
    ) -> Result<R, DbError> {
        let sql = numbered_placeholders(sql).into_owned();
        let params: Vec<SqlValue> = params.iter().map(to_sqlite).collect();
        run_on(&self.jobs, move |conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            f(&mut statement, params)
        })
        .await?
        .map_err(map_error)
    }
}

#[async_trait]
impl Tx for SqliteTx {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.run(sql, params, |statement, params| {
            let columns: Arc<[String]> = statement.column_names().map(String::from).collect();
            let mut rows = statement.query(rusqlite::params_from_iter(params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let values = (0..columns.len())
                    .map(|i| row.get_ref(i).map(from_sqlite))
                    .collect::<rusqlite::Result<_>>()?;
                out.push(Row::new(columns.clone(), values));
            }
            Ok(out)
        })
        .await
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.run(sql, params, |statement, params| {
            statement
                .execute(rusqlite::params_from_iter(params))
                .map(|n| n as u64)
        })
        .await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        if self.in_transaction {
            self.in_transaction = false;
            let committed = run_on(&self.jobs, |c| c.execute_batch("COMMIT")).await?;
            if let Err(e) = committed {
                let _ = run_on(&self.jobs, |c| c.execute_batch("ROLLBACK")).await;
                return Err(map_error(e));
            }
        }
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.in_transaction {
            let _ = self.jobs.send(Box::new(|c| {
                let _ = c.execute_batch("ROLLBACK");
            }));
        }
    }
}

/// `$1` → `?1`: SQLite numbers `$`-parameters by first appearance, `?N` by N.
fn numbered_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut in_literal = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => in_literal = !in_literal,
            '$' if !in_literal && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Cow::Owned(out)
}

fn to_sqlite(value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::I64(i) => SqlValue::Integer(*i),
        Value::F64(f) => SqlValue::Real(*f),
        Value::Text(t) => SqlValue::Text(t.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
        Value::Timestamp(t) => SqlValue::Integer(t.timestamp_micros()),
        Value::Date(d) => SqlValue::Text(d.format("%Y-%m-%d").to_string()),
        Value::Uuid(u) => SqlValue::Text(u.hyphenated().to_string()),
        Value::Json(j) => SqlValue::Text(j.to_string()),
    }
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::I64(i),
        ValueRef::Real(f) => Value::F64(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

pub(crate) fn map_error(e: rusqlite::Error) -> DbError {
    let rusqlite::Error::SqliteFailure(failure, message) = &e else {
        return DbError::Other(Box::new(e));
    };
    let message = message.clone().unwrap_or_else(|| failure.to_string());
    match failure.extended_code {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            DbError::Unique(message)
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKey(message),
        ffi::SQLITE_CONSTRAINT_CHECK
        | ffi::SQLITE_CONSTRAINT_NOTNULL
        | ffi::SQLITE_CONSTRAINT_DATATYPE => DbError::Check(message),
        ffi::SQLITE_CONSTRAINT_TRIGGER => DbError::Refused(message),
        _ => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => DbError::Retryable(message),
            ErrorCode::NotADatabase
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure => DbError::Unavailable(Box::new(e)),
            _ => DbError::Other(Box::new(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            numbered_placeholders("SELECT $2, '$1', $10 WHERE a = $1"),
            "SELECT ?2, '$1', ?10 WHERE a = ?1"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }

    #[tokio::test]
    async fn a_dropped_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("c.db")).await.unwrap();
        let mut conn = db.connection().await.unwrap();
        conn.execute("CREATE TABLE t (x INTEGER)", &[])
            .await
            .unwrap();
        drop(conn);

        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES ($1)", &[Value::I64(1)])
            .await
            .unwrap();
        drop(tx);

        let mut tx = db.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES ($1)", &[Value::I64(2)])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut conn = db.connection().await.unwrap();
        let rows = conn.query("SELECT x FROM t", &[]).await.unwrap();
        let values: Vec<i64> = rows.iter().map(|r| r.i64("x").unwrap()).collect();
        assert_eq!(values, vec![2]);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "these are not the tables you are looking for, ".repeat(100),
        )
        .unwrap();
        let err = SqliteDb::open(&path).await.unwrap_err();
        assert!(matches!(err, DbError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("notes.txt"), "{err}");
    }
}
