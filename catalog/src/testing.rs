//! Throwaway catalogs for tests: a SQLite file in a temporary directory, or a fresh database
//! on the PostgreSQL server named by `HEALTHAI_TEST_POSTGRES_URL` (`scripts/with-postgres`
//! starts one). Each is removed when dropped.

use std::sync::Arc;

use tokio_postgres::NoTls;

use crate::{Catalog, CatalogUrl};

/// The variable that names a PostgreSQL server for tests; the role needs CREATEDB.
pub const POSTGRES_URL_VAR: &str = "HEALTHAI_TEST_POSTGRES_URL";

pub struct TestDatabase {
    url: CatalogUrl,
    raw: Raw,
    _cleanup: Cleanup,
}

enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

enum Cleanup {
    Directory { _dir: tempfile::TempDir },
    Database { server: String, name: String },
}

impl TestDatabase {
    /// An empty SQLite catalog file.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("catalog.db");
        TestDatabase {
            url: CatalogUrl::sqlite(&path),
            raw: Raw::Sqlite(path),
            _cleanup: Cleanup::Directory { _dir: dir },
        }
    }

    /// An empty PostgreSQL database. Panics, saying how to provide a server, when
    /// `HEALTHAI_TEST_POSTGRES_URL` is not set.
    pub async fn postgres() -> Self {
        let server = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set. Run the tests with scripts/test, which starts a \
                 throwaway PostgreSQL, or set {POSTGRES_URL_VAR}=postgres://USER:PASSWORD@HOST:PORT/postgres \
                 for a role that may CREATE DATABASE"
            )
        });
        let name = format!("healthai_test_{}", uuid::Uuid::new_v4().simple());
        execute_postgres(&server, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database on {POSTGRES_URL_VAR}: {e}"));
        let url = with_database(&server, &name);
        TestDatabase {
            url: url.parse().expect("test database URL"),
            raw: Raw::Postgres(url),
            _cleanup: Cleanup::Database { server, name },
        }
    }

    pub fn url(&self) -> &CatalogUrl {
        &self.url
    }

    /// The URL with its password, for handing to a `healthai` process.
    pub fn connection_string(&self) -> String {
        match &self.raw {
            Raw::Sqlite(path) => format!("sqlite://{}", path.display()),
            Raw::Postgres(url) => url.clone(),
        }
    }

    /// Migrates the database and opens it.
    pub async fn catalog(&self) -> Arc<dyn Catalog> {
        crate::migrate(&self.url)
            .await
            .expect("migrate test catalog");
        crate::open(&self.url).await.expect("open test catalog")
    }

    /// Runs SQL behind the catalog's back, as an operator or an attacker with database
    /// access would; the error is the database's own message.
    pub async fn execute_raw(&self, sql: &str) -> Result<(), String> {
        match &self.raw {
            Raw::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|conn| conn.execute_batch(sql))
                .map_err(|e| e.to_string()),
            Raw::Postgres(url) => execute_postgres(url, sql).await,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Database { server, name } = &self._cleanup {
            let (server, sql) = (
                server.clone(),
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
            // Drop runs outside any runtime the test may have left; use a private one.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(execute_postgres(&server, &sql)))
            })
            .join();
        }
    }
}

async fn execute_postgres(url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let outcome = client.batch_execute(sql).await.map_err(|e| {
        e.as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned())
    });
    drop(client);
    let _ = driver.await;
    outcome
}

/// The same server URL with another database name.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}
