//! The storage and query engine of HealthAI.
//!
//! Data comes in as Arrow record batches and goes out as DataFusion SQL results. In between
//! it lives in Parquet files in an object store, one set of files per stream and UTC day,
//! described by the catalog:
//!
//! - the **write path** ([`Engine::write`]) checks a batch against its stream and hands it to
//!   a group commit that writes sorted, de-duplicated files and registers them in one catalog
//!   transaction before acknowledging;
//! - the **query path** ([`Engine::query`], [`Engine::session`]) gives each request a
//!   DataFusion session holding one organization's streams and catalog tables, with file
//!   pruning by time and subject and de-duplication of overlapping files;
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

mod error;
mod maintenance;
mod parquet_file;
mod query;
mod registry;
mod schema;
mod sort;
mod store;
mod write;

use std::{sync::Arc, time::Duration};

use arrow::{array::RecordBatch, datatypes::SchemaRef};
use catalog::{BatchId, Catalog, Organization};
use datafusion::{
    execution::{
        SendableRecordBatchStream,
        memory_pool::FairSpillPool,
        object_store::ObjectStoreUrl,
        runtime_env::{RuntimeEnv, RuntimeEnvBuilder},
    },
    prelude::SessionContext,
};
use object_store::ObjectStore;

pub use error::{Error, Result};
pub use maintenance::{
    CompactionReport, ErasureReport, GarbageReport, MaintenanceConfig, RetentionReport,
};
pub use schema::{StreamSchema, arrow_type};
pub use store::StoreLocation;
pub use write::{WriteReceipt, WriterConfig};

/// How the engine writes, queries and maintains.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub writer: WriterConfig,
    pub maintenance: MaintenanceConfig,
    /// Memory all running queries may use together, in bytes.
    pub query_memory: usize,
    /// Parallelism of a query.
    pub target_partitions: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            writer: WriterConfig::default(),
            maintenance: MaintenanceConfig::default(),
            query_memory: 2 << 30,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
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
    registry: registry::Registry,
    runtime: Arc<RuntimeEnv>,
    store_url: ObjectStoreUrl,
}

impl Engine {
    /// An engine over a catalog and an object store. Must be called inside a Tokio runtime:
    /// the writer's committers run on it.
    pub fn open(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        config: EngineConfig,
    ) -> Result<Self> {
        let store_url = ObjectStoreUrl::parse("healthai://store/")?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(config.query_memory)))
            .build_arc()?;
        runtime.register_object_store(store_url.as_ref(), store.clone());
        Ok(Engine {
            inner: Arc::new(Inner {
                writer: write::Writer::new(catalog.clone(), store.clone(), config.writer.clone()),
                catalog,
                store,
                config,
                registry: registry::Registry::default(),
                runtime,
                store_url,
            }),
        })
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
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

    /// Stores a batch in a stream, returning once it is durable: the batch is conformed to the
    /// stream (columns, types, required values, vocabularies, intervals), its subjects are
    /// checked, and it joins the stream's next group commit. Rows with the same series key and
    /// time as stored rows replace them.
    pub async fn write(
        &self,
        org: &str,
        stream: &str,
        batch: RecordBatch,
        ingest_batch: Option<BatchId>,
    ) -> Result<WriteReceipt> {
        let schema = self.stream(org, stream).await?;
        let conformed = schema.conform(&batch)?;
        self.inner
            .registry
            .check_subjects(self.inner.catalog.as_ref(), &schema, &conformed)
            .await?;
        self.inner
            .writer
            .write(schema, conformed, ingest_batch)
            .await
    }

    /// A DataFusion session over one organization's data, for this request only.
    pub async fn session(&self, org: &str) -> Result<SessionContext> {
        let org = self.organization(org).await?;
        let streams = self
            .inner
            .registry
            .streams(self.inner.catalog.as_ref(), &org)
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
        Ok(query::session(query::SessionParts {
            catalog: self.inner.catalog.clone(),
            runtime: self.inner.runtime.clone(),
            store: self.inner.store_url.clone(),
            target_partitions: self.inner.config.target_partitions,
            context: query::Context {
                org: org.id,
                streams: streams.into(),
                hidden: hidden.into(),
            },
        }))
    }

    /// Runs a read-only SQL query and collects its result.
    pub async fn query(&self, org: &str, sql: &str) -> Result<QueryOutput> {
        let frame = self
            .session(org)
            .await?
            .sql_with_options(sql, query::read_only())
            .await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        Ok(QueryOutput { schema, batches })
    }

    /// Runs a read-only SQL query, streaming its result.
    pub async fn query_stream(&self, org: &str, sql: &str) -> Result<SendableRecordBatchStream> {
        let frame = self
            .session(org)
            .await?
            .sql_with_options(sql, query::read_only())
            .await?;
        Ok(frame.execute_stream().await?)
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
