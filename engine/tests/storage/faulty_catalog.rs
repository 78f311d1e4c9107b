//! A catalog whose file registrations fail on demand, around a real one: what a catalog
//! restart or a lost connection looks like to a flush.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::SeqCst},
};

use async_trait::async_trait;
use catalog::*;
use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug)]
pub struct FaultyCatalog {
    inner: Arc<dyn Catalog>,
    files: FaultyFiles,
}

#[derive(Debug)]
struct FaultyFiles {
    inner: Arc<dyn Catalog>,
    fail_commits: AtomicBool,
}

impl FaultyCatalog {
    pub fn new(inner: Arc<dyn Catalog>) -> Self {
        FaultyCatalog {
            files: FaultyFiles {
                inner: inner.clone(),
                fail_commits: AtomicBool::new(false),
            },
            inner,
        }
    }

    pub fn fail_commits(&self, fail: bool) {
        self.files.fail_commits.store(fail, SeqCst);
    }
}

impl Catalog for FaultyCatalog {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn organizations(&self) -> &dyn OrganizationRepo {
        self.inner.organizations()
    }
    fn users(&self) -> &dyn UserRepo {
        self.inner.users()
    }
    fn tokens(&self) -> &dyn TokenRepo {
        self.inner.tokens()
    }
    fn subjects(&self) -> &dyn SubjectRepo {
        self.inner.subjects()
    }
    fn goals(&self) -> &dyn GoalRepo {
        self.inner.goals()
    }
    fn streams(&self) -> &dyn StreamRepo {
        self.inner.streams()
    }
    fn files(&self) -> &dyn FileRepo {
        &self.files
    }
    fn ingest(&self) -> &dyn IngestRepo {
        self.inner.ingest()
    }
    fn connectors(&self) -> &dyn ConnectorRepo {
        self.inner.connectors()
    }
    fn foods(&self) -> &dyn FoodRepo {
        self.inner.foods()
    }
    fn audit(&self) -> &dyn AuditRepo {
        self.inner.audit()
    }
    fn erasure(&self) -> &dyn ErasureRepo {
        self.inner.erasure()
    }
}

#[async_trait]
impl FileRepo for FaultyFiles {
    async fn commit(&self, files: Vec<NewParquetFile>) -> Result<Vec<ParquetFile>> {
        if self.fail_commits.load(SeqCst) {
            return Err(Error::Conflict("injected catalog failure".into()));
        }
        self.inner.files().commit(files).await
    }

    async fn swap(
        &self,
        partition: PartitionId,
        replaced: &[ParquetFileId],
        new_files: Vec<NewParquetFile>,
        delete_at: DateTime<Utc>,
    ) -> Result<Vec<ParquetFile>> {
        self.inner
            .files()
            .swap(partition, replaced, new_files, delete_at)
            .await
    }

    async fn live_files(&self, stream: StreamId, filter: FileFilter) -> Result<Vec<ParquetFile>> {
        self.inner.files().live_files(stream, filter).await
    }

    async fn partitions(&self, stream: StreamId) -> Result<Vec<Partition>> {
        self.inner.files().partitions(stream).await
    }

    async fn partition(&self, stream: StreamId, day: NaiveDate) -> Result<Partition> {
        self.inner.files().partition(stream, day).await
    }

    async fn due_for_deletion(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ParquetFile>> {
        self.inner.files().due_for_deletion(now, limit).await
    }

    async fn forget(&self, files: &[ParquetFileId]) -> Result<u64> {
        self.inner.files().forget(files).await
    }

    async fn known_paths(&self, paths: &[String]) -> Result<Vec<String>> {
        self.inner.files().known_paths(paths).await
    }
}
