//! The catalog: the relational description of everything HealthAI holds.
//!
//! It records organizations, users and their roles, refresh tokens, subjects and groups,
//! goals, the schema of every stream, the partitions and Parquet files that hold the data,
//! ingest batches with their quality reports, connectors, the audit log and erasure requests.
//! It never holds health measurements: those live in Parquet files in the object store.
//!
//! [`Catalog`] is one trait with two backends: PostgreSQL for production, where several
//! `healthai serve` nodes share it, and an embedded SQLite file for the default setup. Open
//! one with [`migrate`] and [`open`]; `catalog/tests/conformance` holds both to the same
//! behaviour.

mod db;
mod error;
mod interface;
mod migrate;
mod model;
mod repos;
mod url;
mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, Result, TokenRejection};
pub use interface::*;
pub use migrate::{AppliedMigration, MigrationReport, migrate, open};
pub use model::*;
pub use url::{Backend, CatalogUrl};
