//! The [`Catalog`] trait and its repositories. Every backend implements all of them, and
//! `catalog/tests/conformance` holds each backend to the same behaviour.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::{Backend, Result, model::*};

/// The relational description of everything HealthAI holds: who may see what, which streams
/// exist, and which Parquet files make up each stream.
///
/// ```no_run
/// # async fn example() -> catalog::Result<()> {
/// let url: catalog::CatalogUrl = "sqlite://./healthai-data/catalog.db".parse()?;
/// catalog::migrate(&url).await?;
/// let catalog = catalog::open(&url).await?;
/// let org = catalog.organizations().get(catalog::DEFAULT_ORG).await?;
/// let streams = catalog.streams().list(org.id).await?;
/// assert!(streams.iter().any(|s| s.name == "heart_rate"));
/// # Ok(()) }
/// ```
pub trait Catalog: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;
    /// Where the catalog lives, without its password.
    fn location(&self) -> &str;
    /// Its connections now, for monitoring; `None` where the backend does not say.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
    fn organizations(&self) -> &dyn OrganizationRepo;
    fn users(&self) -> &dyn UserRepo;
    fn tokens(&self) -> &dyn TokenRepo;
    fn subjects(&self) -> &dyn SubjectRepo;
    fn goals(&self) -> &dyn GoalRepo;
    fn streams(&self) -> &dyn StreamRepo;
    fn files(&self) -> &dyn FileRepo;
    fn ingest(&self) -> &dyn IngestRepo;
    fn connectors(&self) -> &dyn ConnectorRepo;
    fn foods(&self) -> &dyn FoodRepo;
    fn audit(&self) -> &dyn AuditRepo;
    fn erasure(&self) -> &dyn ErasureRepo;
}

#[async_trait]
pub trait OrganizationRepo: Send + Sync {
    /// Creates an organization with its own copy of the standard streams.
    async fn create(&self, name: &str) -> Result<Organization>;
    async fn get(&self, name: &str) -> Result<Organization>;
    async fn list(&self) -> Result<Vec<Organization>>;
}

#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Creates a user with roles, subject link and coached groups, all or nothing. Emails
    /// are compared case-insensitively.
    async fn create(&self, user: NewUser) -> Result<User>;
    async fn get(&self, id: UserId) -> Result<User>;
    async fn get_by_email(&self, org: OrgId, email: &str) -> Result<User>;
    /// The users with this email in any organization (a login without an organization).
    async fn find_by_email(&self, email: &str) -> Result<Vec<User>>;
    async fn list(&self, org: OrgId) -> Result<Vec<User>>;
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()>;
    async fn set_password_hash(&self, id: UserId, hash: PasswordHash) -> Result<()>;
    async fn grant_role(&self, id: UserId, role: Role) -> Result<()>;
    async fn revoke_role(&self, id: UserId, role: Role) -> Result<()>;
    /// The permissions the given roles grant together.
    async fn permissions(&self, roles: &[Role]) -> Result<Vec<Permission>>;
}

#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Stores a new refresh token (its hash) starting a new family: one login.
    async fn issue(
        &self,
        user: UserId,
        hash: TokenHash,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshToken>;

    /// Exchanges a valid token for a new one of the same family, atomically. Of two
    /// concurrent rotations of one token, one wins; the other is a reuse, which revokes the
    /// whole family.
    async fn rotate(
        &self,
        presented: TokenHash,
        replacement: TokenHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<RefreshToken>;

    async fn find(&self, hash: TokenHash) -> Result<Option<RefreshToken>>;
    /// Logout: revokes every token of the presented token's family. Returns how many.
    async fn revoke_family(&self, hash: TokenHash, now: DateTime<Utc>) -> Result<u64>;
    async fn revoke_all_for_user(&self, user: UserId, now: DateTime<Utc>) -> Result<u64>;
    /// Forgets tokens that expired before `before`.
    async fn delete_expired(&self, before: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait SubjectRepo: Send + Sync {
    async fn create(&self, org: OrgId, pseudonym: &str, profile: SubjectProfile)
    -> Result<Subject>;
    /// The subjects with these pseudonyms, creating the missing ones with a default profile
    /// (the ingest path). Erased subjects are returned as they are, so callers can refuse
    /// their data.
    async fn ensure(&self, org: OrgId, pseudonyms: &[String]) -> Result<Vec<Subject>>;
    async fn get(&self, id: SubjectId) -> Result<Subject>;
    async fn get_by_pseudonym(&self, org: OrgId, pseudonym: &str) -> Result<Subject>;
    async fn list(&self, org: OrgId) -> Result<Vec<Subject>>;
    /// The organization's erased subjects, whose rows every query hides.
    async fn erased(&self, org: OrgId) -> Result<Vec<SubjectId>>;
    async fn update_profile(&self, id: SubjectId, profile: SubjectProfile) -> Result<Subject>;

    async fn create_group(&self, group: NewGroup) -> Result<Group>;
    async fn list_groups(&self, org: OrgId) -> Result<Vec<Group>>;
    async fn add_member(&self, group: GroupId, subject: SubjectId) -> Result<()>;
    async fn remove_member(&self, group: GroupId, subject: SubjectId) -> Result<()>;
    async fn members(&self, group: GroupId) -> Result<Vec<SubjectId>>;
    async fn add_coach(&self, group: GroupId, user: UserId) -> Result<()>;
    /// The subjects of every group the user coaches: what a coach may read.
    async fn coached_subjects(&self, coach: UserId) -> Result<Vec<SubjectId>>;
}

#[async_trait]
pub trait GoalRepo: Send + Sync {
    async fn create(&self, goal: NewGoal) -> Result<Goal>;
    async fn list(&self, org: OrgId) -> Result<Vec<Goal>>;
    async fn list_for_subject(&self, subject: SubjectId) -> Result<Vec<Goal>>;
    async fn delete(&self, id: GoalId) -> Result<()>;
}

#[async_trait]
pub trait StreamRepo: Send + Sync {
    /// The organization's streams, standard and custom, by name.
    async fn list(&self, org: OrgId) -> Result<Vec<Stream>>;
    async fn get(&self, org: OrgId, name: &str) -> Result<Stream>;
    async fn get_by_id(&self, id: StreamId) -> Result<Stream>;
    /// Registers a custom stream after checking its schema.
    async fn register(&self, org: OrgId, stream: NewStream) -> Result<Stream>;
    /// Days of data kept; `None` keeps everything.
    async fn set_retention(&self, id: StreamId, days: Option<i64>) -> Result<Stream>;
}

/// Partitions and the Parquet files that hold the data.
///
/// Invariant: every change to a partition's live file set (a commit, a swap) happens in one
/// transaction that first bumps the partition's `last_sequence`, which serializes them; a
/// reader sees the live set before or after a change, never a mix.
#[async_trait]
pub trait FileRepo: Send + Sync {
    /// Registers the files of one flush, in one transaction: all become live, or none. Each
    /// file gets the next write order of its partition; partitions are created as needed.
    async fn commit(&self, files: Vec<NewParquetFile>) -> Result<Vec<ParquetFile>>;

    /// Replaces live files of one partition with new ones (compaction, erasure rewrite,
    /// retention with no new files). The replaced files leave the live set now and are to be
    /// deleted at `delete_at`; the new files take the greatest write order of those they
    /// replace. Fails with [`crate::Error::Conflict`] when a replaced file is no longer live.
    async fn swap(
        &self,
        partition: PartitionId,
        replaced: &[ParquetFileId],
        new_files: Vec<NewParquetFile>,
        delete_at: DateTime<Utc>,
    ) -> Result<Vec<ParquetFile>>;

    /// The live files of a stream that may hold rows matching the filter, in partition day
    /// and write order.
    async fn live_files(&self, stream: StreamId, filter: FileFilter) -> Result<Vec<ParquetFile>>;

    async fn partitions(&self, stream: StreamId) -> Result<Vec<Partition>>;
    async fn partition(&self, stream: StreamId, day: NaiveDate) -> Result<Partition>;

    /// Replaced files whose deletion time has come, oldest first.
    async fn due_for_deletion(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ParquetFile>>;
    /// Forgets replaced files once their objects are deleted. Live files are never forgotten.
    async fn forget(&self, files: &[ParquetFileId]) -> Result<u64>;
    /// Which of these object-store paths the catalog knows, live or replaced.
    async fn known_paths(&self, paths: &[String]) -> Result<Vec<String>>;
}

#[async_trait]
pub trait IngestRepo: Send + Sync {
    async fn begin_batch(&self, batch: NewBatch, started_at: DateTime<Utc>) -> Result<IngestBatch>;
    /// Ends a running batch as committed or failed, with its counts.
    async fn finish_batch(
        &self,
        id: BatchId,
        status: BatchStatus,
        counts: BatchCounts,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<IngestBatch>;
    async fn get_batch(&self, id: BatchId) -> Result<IngestBatch>;
    /// The organization's batches, newest first.
    async fn list_batches(&self, org: OrgId, limit: i64) -> Result<Vec<IngestBatch>>;
    async fn record_quality(&self, batch: BatchId, reports: Vec<QualityReport>) -> Result<()>;
    async fn quality_reports(&self, batch: BatchId) -> Result<Vec<QualityReport>>;
    /// The organization's quality reports, newest batches first, at most `limit` of them.
    async fn org_quality_reports(
        &self,
        org: OrgId,
        limit: i64,
    ) -> Result<Vec<(BatchId, QualityReport)>>;
    /// Records the time a batch covers per stream and subject, in one transaction; coverage
    /// recorded again for the same stream and subject widens it and adds the rows.
    async fn record_coverage(&self, batch: BatchId, coverage: Vec<SubjectCoverage>) -> Result<()>;
    /// A batch's coverage by stream and subject.
    async fn coverage(&self, batch: BatchId) -> Result<Vec<SubjectCoverage>>;
    /// The coverage of the organization's batches, newest batches first, at most `limit` rows.
    async fn org_coverage(&self, org: OrgId, limit: i64)
    -> Result<Vec<(BatchId, SubjectCoverage)>>;
    /// Records rows that batches rejected, all in one transaction. Values longer than 200
    /// characters and reasons longer than 1000 are cut there; a batch or stream that does not
    /// exist, or a stream of another organization than its batch's, refuses them all.
    async fn quarantine(&self, rows: Vec<QuarantinedRow>) -> Result<()>;
    /// A batch's quarantined rows in the order they were recorded, at most `limit` of them.
    async fn quarantined(&self, batch: BatchId, limit: i64) -> Result<Vec<QuarantinedRow>>;
    /// The organization's quarantined rows, newest batches first and each batch's rows in the
    /// order they were recorded, at most `limit` of them.
    async fn org_quarantine(&self, org: OrgId, limit: i64) -> Result<Vec<QuarantinedRow>>;
}

#[async_trait]
pub trait FoodRepo: Send + Sync {
    /// Adds foods, replacing those with the same id, in one transaction; answers how many were
    /// written. A food with no name, an id longer than 200 characters or a negative or
    /// non-finite nutrient refuses the whole call, naming it.
    async fn upsert(&self, org: OrgId, foods: Vec<Food>, now: DateTime<Utc>) -> Result<u64>;
    /// The foods of `ids` that exist, in id order.
    async fn get(&self, org: OrgId, ids: &[String]) -> Result<Vec<Food>>;
    /// The organization's foods in id order, at most `limit` of them.
    async fn list(&self, org: OrgId, limit: i64) -> Result<Vec<Food>>;
}

#[async_trait]
pub trait ConnectorRepo: Send + Sync {
    async fn create(&self, connector: NewConnector) -> Result<Connector>;
    async fn get(&self, id: ConnectorId) -> Result<Connector>;
    async fn get_by_name(&self, org: OrgId, name: &str) -> Result<Connector>;
    async fn list(&self, org: OrgId) -> Result<Vec<Connector>>;
    async fn set_enabled(&self, id: ConnectorId, enabled: bool) -> Result<()>;
    /// Claims one connector for a run now, whatever its schedule and even when disabled (a
    /// run asked for by hand), unless another run holds a lease on it that has not expired:
    /// that is a conflict.
    async fn claim(
        &self,
        id: ConnectorId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Connector>;
    /// Claims one enabled connector whose run is due and not leased by another node; the
    /// claim holds until `lease_until`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Connector>>;
    /// Records a claimed run's end and schedules the next one.
    async fn finish_run(&self, id: ConnectorId, run: ConnectorRun) -> Result<Connector>;
}

#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Appends entries; the log cannot be changed or shortened afterwards.
    async fn append(&self, entries: Vec<AuditEntry>) -> Result<()>;
    /// The organization's entries at or after `since`, oldest first.
    async fn list(&self, org: OrgId, since: DateTime<Utc>, limit: i64) -> Result<Vec<AuditRecord>>;
}

#[async_trait]
pub trait ErasureRepo: Send + Sync {
    /// Records the request and, in the same transaction, marks the subject erased (hidden
    /// from queries from now on) and clears its personal identifiers.
    async fn request(
        &self,
        subject: SubjectId,
        requested_by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<ErasureRequest>;
    /// Requests whose files still hold the subject's rows, across organizations.
    async fn pending(&self) -> Result<Vec<ErasureRequest>>;
    async fn complete(
        &self,
        id: ErasureId,
        files_rewritten: i64,
        rows_removed: i64,
        now: DateTime<Utc>,
    ) -> Result<ErasureRequest>;
    async fn fail(&self, id: ErasureId, error: &str) -> Result<ErasureRequest>;
    async fn list(&self, org: OrgId) -> Result<Vec<ErasureRequest>>;
}
