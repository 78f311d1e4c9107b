//! The storage and query engine of HealthAI.
//!
//! Data comes in as Arrow record batches and goes out as DataFusion SQL results. In between
//! it lives in Parquet files in an object store, one set of files per stream and UTC day,
//! described by the catalog:
//!
//! - the **write path** ([`Engine::write`]) checks a batch against its stream and hands it to
//!   a group commit that writes sorted, de-duplicated files and registers them in one catalog
//!   transaction before acknowledging;
//! - the **query path** ([`Engine::query_as`], or [`Engine::plan_as`] then [`Engine::run_as`]
//!   where a protocol asks for the schema before the rows; [`Engine::session_as`]) gives each
//!   request a DataFusion session holding one organization's streams and catalog tables as
//!   one [`Principal`] may see them, with file pruning by time and subject, de-duplication of
//!   overlapping files, per-query limits, and an audit entry for every query;
//! - **maintenance** ([`Engine::compact`], [`Engine::apply_retention`], [`Engine::erase`],
//!   [`Engine::collect_garbage`]) merges small files, drops expired days, rewrites files to
//!   erase a subject and deletes what is no longer referenced.
//!
//! ```no_run
//! # async fn example(catalog: std::sync::Arc<dyn catalog::Catalog>, batch: arrow::array::RecordBatch) -> engine::Result<()> {
//! let store = "./healthai-data/store".parse::<engine::StoreLocation>()?.open()?;
//! let engine = engine::Engine::open(catalog, store, engine::EngineConfig::default())?;
//! engine.write("default", "heart_rate", batch, None).await?;
//! let result = engine.query("default", "SELECT subject_id, avg(bpm) FROM heart_rate GROUP BY 1").await?;
//! # Ok(()) }
//! ```

mod access;
mod audit;
mod error;
mod file_cache;
mod maintenance;
pub mod metrics;
mod parquet_file;
mod query;
mod registry;
mod rollup;
mod schema;
mod sort;
mod store;
mod write;

use std::{sync::Arc, time::Duration};

use arrow::{array::RecordBatch, datatypes::SchemaRef};
use catalog::{
    AuditEntry, AuditOutcome, BatchId, Catalog, Organization, Permission, StreamId, User,
};
use chrono::Utc;
use datafusion::{
    common::ParamValues,
    execution::{
        SendableRecordBatchStream, SessionState,
        memory_pool::FairSpillPool,
        object_store::ObjectStoreUrl,
        runtime_env::{RuntimeEnv, RuntimeEnvBuilder},
    },
    physical_plan::execute_stream,
    prelude::{DataFrame, SessionContext},
};
use object_store::ObjectStore;

pub use access::{Principal, QueryLimits, RowScope};
pub use error::{Error, Result};
pub use maintenance::{
    CompactionReport, ErasureReport, GarbageReport, MaintenanceConfig, RetentionReport,
};
pub use query::{
    BucketedAggregateExec, BucketedAggregateRule, QueryStream, physical_optimizer_rules,
};
pub use schema::{StreamSchema, arrow_type};
pub use store::StoreLocation;
pub use write::{Commit, SubmittedWrite, WriteReceipt, WriterConfig};

/// How the engine writes, queries and maintains.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub writer: WriterConfig,
    pub maintenance: MaintenanceConfig,
    /// What one query may use.
    pub query_limits: QueryLimits,
    /// Parallelism of a query.
    pub target_partitions: usize,
    /// Whether bucketed aggregations may run on [`BucketedAggregateExec`]; off only to compare
    /// with DataFusion's own plan.
    pub aggregation_kernel: bool,
    /// Whether aggregations may be answered from the rollups; off only to compare with the
    /// raw computation.
    pub rollups: bool,
    /// Bytes of stored Parquet files kept in memory after a first read (0: none).
    pub file_cache: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            writer: WriterConfig::default(),
            maintenance: MaintenanceConfig::default(),
            query_limits: QueryLimits::default(),
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            aggregation_kernel: true,
            rollups: true,
            file_cache: 1 << 30,
        }
    }
}

/// A planned query with placeholders.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub schema: SchemaRef,
    /// The placeholders (`$1`, …) in order, with their types where the query implies them.
    pub parameters: Vec<(String, Option<arrow::datatypes::DataType>)>,
}

/// A query planned for a principal and not run yet (see [`Engine::plan_as`]).
#[derive(Debug)]
pub struct PlannedQuery {
    sql: String,
    frame: DataFrame,
}

impl PlannedQuery {
    /// The schema of the rows the query will return.
    pub fn schema(&self) -> SchemaRef {
        self.frame.schema().inner().clone()
    }
}

/// A query's answer, with its schema even when it has no rows.
#[derive(Debug)]
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Counts the changes this process made to stored data: flushes, compactions, retention,
/// erasures. Answers computed at one count are still true at the same count, as far as this
/// process knows; changes made by other processes are not counted.
static DATA_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn data_changed() {
    DATA_VERSION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The engine: cheap to clone, shared by every request of a process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    config: EngineConfig,
    writer: write::Writer,
    registry: Arc<registry::Registry>,
    audit: audit::AuditLog,
    /// Shared by every query; each query gets a copy with a memory pool of its own.
    runtime: Arc<RuntimeEnv>,
    /// What each request's session is cloned from.
    session_template: SessionState,
    store_url: ObjectStoreUrl,
    /// Readings per rollup row, which decide whether a rollup is worth reading.
    densities: Arc<rollup::Densities>,
}

impl Engine {
    /// An engine over a catalog and an object store. Must be called inside a Tokio runtime:
    /// the writer's committers run on it.
    pub fn open(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        config: EngineConfig,
    ) -> Result<Self> {
        let store = file_cache::FileCache::wrap(store, config.file_cache);
        let store_url = ObjectStoreUrl::parse("healthai://store/")?;
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        runtime.register_object_store(store_url.as_ref(), store.clone());
        let densities: Arc<rollup::Densities> = Arc::default();
        let session_template = query::session_template(
            config.target_partitions,
            config.aggregation_kernel,
            config.rollups.then(|| densities.clone()),
            runtime.clone(),
        );
        Ok(Engine {
            inner: Arc::new(Inner {
                writer: write::Writer::new(catalog.clone(), store.clone(), config.writer.clone()),
                audit: audit::AuditLog::new(catalog.clone()),
                catalog,
                store,
                config,
                registry: Arc::default(),
                runtime,
                session_template,
                store_url,
                densities,
            }),
        })
    }

    /// Changes whenever this process changes stored data (see `DATA_VERSION`): what a cache
    /// of answers keys on, beside an age limit for the changes of other processes.
    pub fn data_version(&self) -> u64 {
        DATA_VERSION.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// Whether the object store answers: a listing of its top level (a readiness probe).
    pub async fn check_store(&self) -> Result<()> {
        self.inner
            .store
            .list_with_delimiter(None)
            .await
            .map(|_| ())
            .map_err(|e| Error::store("list", "/", e))
    }

    pub async fn organization(&self, name: &str) -> Result<Organization> {
        self.inner
            .registry
            .organization(self.inner.catalog.as_ref(), name)
            .await
    }

    /// A stream of an organization, with its Arrow schema.
    pub async fn stream(&self, org: &str, stream: &str) -> Result<Arc<StreamSchema>> {
        let org = self.organization(org).await?;
        self.inner
            .registry
            .stream(self.inner.catalog.as_ref(), &org, stream)
            .await
    }

    /// Stores a batch in a stream as the operator (the command line, ingest jobs).
    pub async fn write(
        &self,
        org: &str,
        stream: &str,
        batch: RecordBatch,
        ingest_batch: Option<BatchId>,
    ) -> Result<WriteReceipt> {
        let principal = Principal::operator(self.organization(org).await?);
        self.write_as(&principal, stream, batch, ingest_batch).await
    }

    /// Stores a batch in a stream, returning once it is durable: the batch is conformed to the
    /// stream (columns, types, required values, vocabularies, intervals), its subjects are
    /// checked against the organization and against what the principal may write for, and
    /// it joins the stream's next group commit. Rows with the same series key and time as
    /// stored rows replace them.
    pub async fn write_as(
        &self,
        principal: &Principal,
        stream: &str,
        batch: RecordBatch,
        ingest_batch: Option<BatchId>,
    ) -> Result<WriteReceipt> {
        self.submit_as(principal, stream, batch, ingest_batch, Commit::Grouped)
            .await?
            .durable()
            .await
    }

    /// Checks a batch as [`Engine::write_as`] does and queues it for its stream's group
    /// commit, returning once it is queued (and has room in the write buffer), not once it
    /// is durable: await [`SubmittedWrite::durable`] for that. Batches one caller submits
    /// to a stream are committed in the order submitted, so of two versions of a reading the
    /// later submitted wins.
    pub async fn submit_as(
        &self,
        principal: &Principal,
        stream: &str,
        batch: RecordBatch,
        ingest_batch: Option<BatchId>,
        commit: Commit,
    ) -> Result<SubmittedWrite> {
        let schema = self
            .inner
            .registry
            .stream(self.inner.catalog.as_ref(), &principal.org, stream)
            .await?;
        let conformed = schema.conform(&batch)?;
        let subjects = self
            .inner
            .registry
            .check_subjects(self.inner.catalog.as_ref(), &schema, &conformed)
            .await?;
        principal.check_write(subjects)?;
        self.inner
            .writer
            .submit(schema, conformed, ingest_batch, commit)
            .await
    }

    /// The principal of a user: the permissions of their roles and the subjects they read.
    pub async fn principal(&self, user: &User, interface: &'static str) -> Result<Principal> {
        let org = self
            .inner
            .registry
            .organization_by_id(self.inner.catalog.as_ref(), user.org)
            .await?;
        Principal::of_user(self.inner.catalog.as_ref(), org, user, interface).await
    }

    /// A DataFusion session over one organization's data as the principal may see it, for
    /// one request. Its queries run without the engine's limits: [`Engine::query_as`] and
    /// [`Engine::run_as`] apply them.
    pub async fn session_as(&self, principal: &Principal) -> Result<SessionContext> {
        principal.check_read()?;
        let org = &principal.org;
        let streams = self
            .inner
            .registry
            .streams(self.inner.catalog.as_ref(), org)
            .await?;
        let hidden: Vec<i64> = self
            .inner
            .catalog
            .subjects()
            .erased(org.id)
            .await?
            .into_iter()
            .map(|s| s.0)
            .collect();
        if self.inner.config.rollups {
            let ids: Vec<StreamId> = streams.iter().map(|s| s.id()).collect();
            self.inner
                .densities
                .measure(self.inner.catalog.as_ref(), &self.inner.store, &ids)
                .await?;
        }
        let parts = query::SessionParts {
            org: org.clone(),
            registry: self.inner.registry.clone(),
            catalog: self.inner.catalog.clone(),
            store: self.inner.store_url.clone(),
            context: query::Context {
                org: org.id,
                streams,
                hidden: hidden.into(),
                scope: principal.scope.clone(),
                identifiers: principal.can(Permission::ReadIdentifiers),
            },
            system_tables: principal.can(Permission::ReadAllSubjects),
            audit_table: principal.can(Permission::ReadAudit),
        };
        Ok(query::session(&self.inner.session_template, parts))
    }

    /// Plans a read-only query, with parameters for its `$1`/`?` placeholders.
    async fn plan(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<DataFrame> {
        let session = self.session_as(principal).await?;
        let frame = session
            .sql_with_options(&query::number_placeholders(sql), query::read_only())
            .await?;
        Ok(match params {
            Some(params) => frame.with_param_values(params)?,
            None => frame,
        })
    }

    /// Plans a read-only query for the principal without running it: its schema is known,
    /// and [`Engine::run_as`] runs it later without planning it again. A refusal is audited.
    pub async fn plan_as(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<PlannedQuery> {
        match self.plan(principal, sql, params).await {
            Ok(frame) => Ok(PlannedQuery {
                sql: sql.to_owned(),
                frame,
            }),
            Err(e) => {
                self.audit_refusal(principal, sql, &e);
                Err(e)
            }
        }
    }

    /// Plans a query with placeholders: the schema of its rows (when the placeholders' types
    /// can be inferred without values) and the placeholders with their inferred types.
    pub async fn prepare_as(&self, principal: &Principal, sql: &str) -> Result<Prepared> {
        let frame = match self.plan(principal, sql, None).await {
            Ok(frame) => frame,
            Err(e) => {
                self.audit_refusal(principal, sql, &e);
                return Err(e);
            }
        };
        let mut parameters: Vec<(String, Option<arrow::datatypes::DataType>)> = frame
            .logical_plan()
            .get_parameter_types()?
            .into_iter()
            .collect();
        // "$1", "$2", … in numeric order, not text order.
        parameters.sort_by_key(|(name, _)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        Ok(Prepared {
            schema: frame.schema().inner().clone(),
            parameters,
        })
    }

    /// Runs a read-only query as the principal, streaming its rows under the engine's query
    /// limits; an audit entry records it whatever the outcome.
    pub async fn query_as(
        &self,
        principal: &Principal,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<QueryStream> {
        let began = std::time::Instant::now();
        match self.plan(principal, sql, params).await {
            Ok(frame) => self.start(principal, sql, frame, began).await,
            Err(e) => Err(self.query_failed(principal, sql, e, began)),
        }
    }

    /// Runs a query planned by [`Engine::plan_as`] for the same principal, as
    /// [`Engine::query_as`] would.
    pub async fn run_as(
        &self,
        principal: &Principal,
        planned: PlannedQuery,
    ) -> Result<QueryStream> {
        let PlannedQuery { sql, frame } = planned;
        self.start(principal, &sql, frame, std::time::Instant::now())
            .await
    }

    async fn start(
        &self,
        principal: &Principal,
        sql: &str,
        frame: DataFrame,
        began: std::time::Instant,
    ) -> Result<QueryStream> {
        let schema = frame.schema().inner().clone();
        match self.execute(frame).await {
            Ok(stream) => Ok(QueryStream::new(
                schema,
                stream,
                began,
                self.inner.config.query_limits,
                self.inner.audit.clone(),
                self.audit_entry(principal, "query", Some(sql), AuditOutcome::Ok),
            )),
            Err(e) => Err(self.query_failed(principal, sql, e, began)),
        }
    }

    /// Executes a planned query with a memory pool of its own, so that one query over its
    /// limit fails alone.
    async fn execute(&self, frame: DataFrame) -> Result<SendableRecordBatchStream> {
        let base = &self.inner.runtime;
        let runtime = Arc::new(RuntimeEnv {
            memory_pool: Arc::new(FairSpillPool::new(self.inner.config.query_limits.memory)),
            disk_manager: base.disk_manager.clone(),
            cache_manager: base.cache_manager.clone(),
            object_store_registry: base.object_store_registry.clone(),
        });
        let task = frame.task_ctx().with_runtime(runtime);
        let plan = frame.create_physical_plan().await?;
        Ok(execute_stream(plan, Arc::new(task))?)
    }

    fn query_failed(
        &self,
        principal: &Principal,
        sql: &str,
        error: Error,
        began: std::time::Instant,
    ) -> Error {
        metrics::QUERY_SECONDS
            .with(&[principal.interface, "error"])
            .observe(began.elapsed());
        self.audit_refusal(principal, sql, &error);
        error
    }

    /// Runs a read-only query as the operator of an organization and collects its result.
    pub async fn query(&self, org: &str, sql: &str) -> Result<QueryOutput> {
        let principal = Principal::operator(self.organization(org).await?);
        let stream = self.query_as(&principal, sql, None).await?;
        let schema = stream.schema().clone();
        Ok(QueryOutput {
            schema,
            batches: stream.collect().await?,
        })
    }

    /// Records an access that did not go through a query (a login, a write, an export).
    pub fn audit(
        &self,
        principal: &Principal,
        action: &str,
        statement: Option<&str>,
        rows: Option<i64>,
        outcome: AuditOutcome,
        detail: Option<String>,
    ) {
        let mut entry = self.audit_entry(principal, action, statement, outcome);
        entry.rows = rows;
        entry.detail = detail;
        self.inner.audit.record(entry);
    }

    /// Waits until every access recorded so far is in the catalog's audit log.
    pub async fn flush_audit(&self) {
        self.inner.audit.flush().await;
    }

    fn audit_entry(
        &self,
        principal: &Principal,
        action: &str,
        statement: Option<&str>,
        outcome: AuditOutcome,
    ) -> AuditEntry {
        AuditEntry {
            org: principal.org.id,
            at: Utc::now(),
            user: principal.user,
            actor: principal.actor.clone(),
            action: action.to_owned(),
            interface: principal.interface.to_owned(),
            statement: statement.map(str::to_owned),
            subject: None,
            rows: None,
            outcome,
            detail: None,
        }
    }

    fn audit_refusal(&self, principal: &Principal, sql: &str, error: &Error) {
        let outcome = match error {
            Error::Denied(_) => AuditOutcome::Denied,
            _ => AuditOutcome::Error,
        };
        let mut entry = self.audit_entry(principal, "query", Some(sql), outcome);
        entry.detail = Some(error.to_string());
        self.inner.audit.record(entry);
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub(crate) fn registry(&self) -> &registry::Registry {
        &self.inner.registry
    }

    pub(crate) fn store_url(&self) -> &ObjectStoreUrl {
        &self.inner.store_url
    }

    pub(crate) fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.inner.runtime
    }

    pub(crate) fn densities(&self) -> &rollup::Densities {
        &self.inner.densities
    }

    /// Runs compaction, retention, pending erasures and garbage collection every `interval`,
    /// until the engine is dropped. Errors are logged and retried on the next round.
    pub fn spawn_maintenance(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Engine { inner }.maintain_once().await;
            }
        })
    }
}
