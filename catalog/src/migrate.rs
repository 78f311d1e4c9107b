//! Schema versions: what the binary carries (`migrations/` embedded by refinery), what a
//! catalog records (`refinery_schema_history`), and the checks between the two that turn a
//! mismatch into one clear error before anything is changed.

use std::sync::Arc;

use serde::Serialize;

use crate::{
    Catalog, CatalogUrl, Error, Result,
    db::{DbError, postgres::PostgresDb, sqlite::SqliteDb},
    repos::SqlCatalog,
    url::Target,
};

mod embedded {
    pub(super) mod postgres {
        refinery::embed_migrations!("../migrations/postgres");
    }
    pub(super) mod sqlite {
        refinery::embed_migrations!("../migrations/sqlite");
    }
}

/// Serializes `healthai migrate` runs across the nodes that share one PostgreSQL catalog.
const MIGRATION_LOCK: i64 = 0x4845_414c_5448_4149; // "HEALTHAI"

const HISTORY: &str =
    "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Where the catalog lives, without its password.
    pub location: String,
    /// What this run applied, oldest first; empty when the schema was already current.
    pub applied: Vec<AppliedMigration>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
}

/// A migration as the catalog's history records it.
struct Recorded {
    version: i64,
    name: String,
    applied_on: String,
    checksum: String,
}

/// Applies the migrations the catalog lacks, all in one transaction, and reports them.
/// Running it again is a no-op.
pub async fn migrate(url: &CatalogUrl) -> Result<MigrationReport> {
    let location = url.to_string();
    match url.target() {
        Target::Postgres(config) => {
            let db = PostgresDb::connect(config)
                .await
                .map_err(|e| connect_error(&location, e))?;
            let mut client = db.client().await.map_err(|e| connect_error(&location, e))?;
            let pg = |e| Error::from(crate::db::postgres::map_error(e));
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg)?;
            let outcome = async {
                let recorded = postgres_history(&client).await?;
                let runner = embedded::postgres::migrations::runner();
                let pending = pending(&location, runner.get_migrations(), &recorded)?;
                if pending.is_empty() {
                    return Ok(pending);
                }
                runner
                    .set_grouped(true)
                    .run_async(&mut **client)
                    .await
                    .map_err(|e| apply_error(&location, &e))?;
                Ok::<_, Error>(pending)
            }
            .await;
            // Dropping the pooled connection would keep the session lock; release it first.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await;
            report(
                location,
                outcome?,
                embedded::postgres::migrations::runner().get_migrations(),
            )
        }
        Target::Sqlite(path) => {
            let db = SqliteDb::open(path)
                .await
                .map_err(|e| connect_error(&location, e))?;
            let thread_location = location.clone();
            let applied = db
                .with_connection(move |conn| {
                    let recorded = sqlite_history(conn)?;
                    let runner = embedded::sqlite::migrations::runner();
                    let pending = pending(&thread_location, runner.get_migrations(), &recorded)?;
                    if !pending.is_empty() {
                        runner
                            .set_grouped(true)
                            .run(conn)
                            .map_err(|e| apply_error(&thread_location, &e))?;
                    }
                    Ok::<_, Error>(pending)
                })
                .await
                .map_err(|e| connect_error(&location, e))??;
            report(
                location,
                applied,
                embedded::sqlite::migrations::runner().get_migrations(),
            )
        }
    }
}

/// Opens a catalog whose schema is current; a catalog behind or ahead of this binary is
/// refused with what to do about it.
pub async fn open(url: &CatalogUrl) -> Result<Arc<dyn Catalog>> {
    let location = url.to_string();
    let (db, recorded, known): (Box<dyn crate::db::Database>, _, _) = match url.target() {
        Target::Postgres(config) => {
            let db = PostgresDb::connect(config)
                .await
                .map_err(|e| connect_error(&location, e))?;
            let client = db.client().await.map_err(|e| connect_error(&location, e))?;
            let recorded = postgres_history(&client).await?;
            let known = embedded::postgres::migrations::runner()
                .get_migrations()
                .clone();
            (Box::new(db), recorded, known)
        }
        Target::Sqlite(path) => {
            let db = SqliteDb::open(path)
                .await
                .map_err(|e| connect_error(&location, e))?;
            let recorded = db
                .with_connection(sqlite_history)
                .await
                .map_err(|e| connect_error(&location, e))??;
            let known = embedded::sqlite::migrations::runner()
                .get_migrations()
                .clone();
            (Box::new(db), recorded, known)
        }
    };
    let pending = pending(&location, &known, &recorded)?;
    if !pending.is_empty() {
        return Err(Error::SchemaOutdated {
            location,
            found: recorded.last().map_or(0, |r| r.version),
            required: latest(&known),
        });
    }
    Ok(Arc::new(SqlCatalog::new(db, location)))
}

fn report(
    location: String,
    applied: Vec<AppliedMigration>,
    known: &[refinery::Migration],
) -> Result<MigrationReport> {
    Ok(MigrationReport {
        location,
        applied,
        version: latest(known),
    })
}

fn latest(known: &[refinery::Migration]) -> i64 {
    known
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The migrations to apply, after checking that the recorded history is one this binary
/// can continue.
fn pending(
    location: &str,
    known: &[refinery::Migration],
    recorded: &[Recorded],
) -> Result<Vec<AppliedMigration>> {
    let refuse = |detail: String| Error::Migration {
        location: location.to_owned(),
        detail,
    };
    let newest_known = latest(known);
    if let Some(newest) = recorded.last().filter(|r| r.version > newest_known) {
        return Err(Error::SchemaTooNew {
            location: location.to_owned(),
            found: newest.version,
            supported: newest_known,
        });
    }
    for r in recorded {
        let Some(m) = known.iter().find(|m| i64::from(m.version()) == r.version) else {
            return Err(refuse(format!(
                "it records migration V{}__{}, which this binary does not have",
                r.version, r.name
            )));
        };
        // Refinery trusts these fields blindly; a damaged row must stop us, not it.
        if chrono::DateTime::parse_from_rfc3339(&r.applied_on).is_err() {
            return Err(refuse(format!(
                "its history row for V{} is damaged (applied_on '{}')",
                r.version, r.applied_on
            )));
        }
        if m.name() != r.name || m.checksum().to_string() != r.checksum {
            return Err(refuse(format!(
                "migration V{}__{} recorded in the catalog differs from this binary's \
                 V{}__{}: the catalog was migrated by a different build of healthai",
                r.version,
                r.name,
                m.version(),
                m.name()
            )));
        }
    }
    let newest_recorded = recorded.last().map_or(0, |r| r.version);
    let mut pending: Vec<_> = known
        .iter()
        .filter(|m| !recorded.iter().any(|r| r.version == i64::from(m.version())))
        .map(|m| AppliedMigration {
            version: m.version().into(),
            name: m.name().to_owned(),
        })
        .collect();
    pending.sort_by_key(|m| m.version);
    if let Some(gap) = pending.iter().find(|m| m.version < newest_recorded) {
        return Err(refuse(format!(
            "the catalog is half-migrated: V{}__{} was never applied, yet V{} was; restore it \
             from a backup",
            gap.version, gap.name, newest_recorded
        )));
    }
    Ok(pending)
}

async fn postgres_history(client: &tokio_postgres::Client) -> Result<Vec<Recorded>> {
    let pg = |e| Error::from(crate::db::postgres::map_error(e));
    let present: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    if !present {
        return Ok(Vec::new());
    }
    client
        .query(HISTORY, &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|row| {
            Ok(Recorded {
                version: row.try_get::<_, i32>(0).map_err(pg)?.into(),
                name: row.try_get(1).map_err(pg)?,
                applied_on: row.try_get(2).map_err(pg)?,
                checksum: row.try_get(3).map_err(pg)?,
            })
        })
        .collect()
}

fn sqlite_history(conn: &mut rusqlite::Connection) -> Result<Vec<Recorded>> {
    let sqlite = |e| Error::from(crate::db::sqlite::map_error(e));
    let present: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if !present {
        return Ok(Vec::new());
    }
    let mut statement = conn.prepare(HISTORY).map_err(sqlite)?;
    let rows = statement
        .query_map([], |row| {
            Ok(Recorded {
                version: row.get(0)?,
                name: row.get(1)?,
                applied_on: row.get(2)?,
                checksum: row.get(3)?,
            })
        })
        .map_err(sqlite)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sqlite)
}

fn connect_error(location: &str, e: DbError) -> Error {
    match e {
        DbError::Unavailable(source) | DbError::Other(source) => Error::Connect {
            location: location.to_owned(),
            source,
        },
        other => Error::Connect {
            location: location.to_owned(),
            source: Box::new(other),
        },
    }
}

/// Refinery reports the failing statement's error; say what it means for the catalog.
fn apply_error(location: &str, e: &refinery::Error) -> Error {
    let cause = match e.kind() {
        refinery::error::Kind::Connection(what, source) => {
            let source = if let Some(pg) = source.downcast_ref::<tokio_postgres::Error>() {
                pg.as_db_error()
                    .map_or_else(|| pg.to_string(), |db| db.message().to_owned())
            } else {
                source.to_string()
            };
            format!("{what}: {source}")
        }
        other => other.to_string(),
    };
    let hint = if cause.contains("already exists") {
        "; the catalog holds tables its migration history does not record: it was half-migrated \
         by hand or belongs to something else. Restore it from a backup or point --catalog at an \
         empty database"
    } else {
        "; nothing was changed"
    };
    Error::Migration {
        location: location.to_owned(),
        detail: format!("{cause}{hint}"),
    }
}
