//! The repositories, written once over [`crate::db::Tx`] for both backends.

mod audit;
mod connectors;
mod erasure;
mod files;
mod foods;
mod goals;
mod ingest;
mod organizations;
mod streams;
mod subjects;
mod tokens;
mod users;

use std::fmt;

use crate::{
    Backend, Catalog, Result,
    db::{Database, Tx},
    interface::*,
};

/// `count` comma-separated items of a list (`IN (…)`, `VALUES …`), the `n`-th written by
/// `item` for its placeholder number `first + n`.
fn numbered_list(first: usize, count: usize, item: impl Fn(usize) -> String) -> String {
    (first..first + count)
        .map(item)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) struct SqlCatalog {
    db: Box<dyn Database>,
    location: String,
}

impl SqlCatalog {
    pub(crate) fn new(db: Box<dyn Database>, location: String) -> Self {
        SqlCatalog { db, location }
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        Ok(self.db.begin().await?)
    }

    async fn connection(&self) -> Result<Box<dyn Tx>> {
        Ok(self.db.connection().await?)
    }
}

impl fmt::Debug for SqlCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} catalog at {}", self.db.backend(), self.location)
    }
}

impl Catalog for SqlCatalog {
    fn backend(&self) -> Backend {
        self.db.backend()
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn pool_status(&self) -> Option<crate::PoolStatus> {
        Some(self.db.pool_status())
    }

    fn organizations(&self) -> &dyn OrganizationRepo {
        self
    }

    fn users(&self) -> &dyn UserRepo {
        self
    }

    fn tokens(&self) -> &dyn TokenRepo {
        self
    }

    fn subjects(&self) -> &dyn SubjectRepo {
        self
    }

    fn goals(&self) -> &dyn GoalRepo {
        self
    }

    fn streams(&self) -> &dyn StreamRepo {
        self
    }

    fn files(&self) -> &dyn FileRepo {
        self
    }

    fn ingest(&self) -> &dyn IngestRepo {
        self
    }

    fn connectors(&self) -> &dyn ConnectorRepo {
        self
    }

    fn foods(&self) -> &dyn FoodRepo {
        self
    }

    fn audit(&self) -> &dyn AuditRepo {
        self
    }

    fn erasure(&self) -> &dyn ErasureRepo {
        self
    }
}
