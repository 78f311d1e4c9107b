//! The write path: group commit per stream.
//!
//! Writers hand over conformed batches and wait. One committer task per stream gathers them
//! until the flush size or interval is reached, or a writer asks to commit now (it has
//! nothing more to send, as at the end of an imported file), then flushes: sorts and
//! de-duplicates the rows, writes one Parquet file per UTC day to the object store, registers
//! all the files in the catalog in one transaction, and only then acknowledges every writer
//! of the flush. A failure anywhere fails every writer of the flush, and nothing of it becomes
//! visible: files already uploaded are unknown to the catalog and are collected as garbage
//! later.
//!
//! Memory is bounded: a writer takes its batch's size from a shared budget before queueing,
//! waits while the budget is spent (back-pressure), and gets "overloaded, retry" if it stays
//! spent too long.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use arrow::array::RecordBatch;
use catalog::{BatchId, Catalog, NewParquetFile, ParquetFile, StreamId};
use futures::future::try_join_all;
use object_store::ObjectStore;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    time::Instant,
};

use crate::{
    Error, Result,
    parquet_file::{self, FileWriter},
    schema::StreamSchema,
    sort::sort_and_split,
};

/// When the writer flushes, and how much it may hold meanwhile.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// A flush starts once this many rows wait.
    pub flush_rows: usize,
    /// … or once the oldest waiting row has waited this long.
    pub flush_interval: Duration,
    /// Bytes of batches that may wait for a flush, all streams together.
    pub max_buffer_bytes: usize,
    /// How long a writer waits for room in the buffer before it is told to retry.
    pub overload_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            flush_rows: 1_000_000,
            flush_interval: Duration::from_millis(100),
            max_buffer_bytes: 512 << 20,
            overload_timeout: Duration::from_secs(10),
        }
    }
}

/// When a write's group commit starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Once the flush size or interval is reached: many small writers share one commit
    /// and one file per day.
    Grouped,
    /// As soon as this write is queued, with whatever else waits: its writer sends nothing
    /// more until this is durable (the last batch of an imported file), so waiting for
    /// others would only add latency.
    Now,
}

/// A write queued for its stream's group commit.
pub struct SubmittedWrite {
    stream: String,
    rows: usize,
    outcome: Option<oneshot::Receiver<Result<(), Arc<Error>>>>,
}

impl SubmittedWrite {
    /// Waits until the write's commit ends: its rows are durable, or the commit failed.
    pub async fn durable(self) -> Result<WriteReceipt> {
        let rows = self.rows;
        let Some(outcome) = self.outcome else {
            return Ok(WriteReceipt { rows });
        };
        match outcome.await {
            Ok(Ok(())) => Ok(WriteReceipt { rows }),
            Ok(Err(source)) => Err(Error::Flush {
                stream: self.stream,
                source,
            }),
            Err(_) => Err(Error::Closed),
        }
    }
}

/// What a writer learns once its rows are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReceipt {
    pub rows: usize,
}

/// The unit the buffer budget is counted in: a semaphore counts in u32.
const BUDGET_UNIT: usize = 1024;

pub(crate) struct Writer {
    shared: Arc<Shared>,
    committers: Mutex<HashMap<StreamId, mpsc::UnboundedSender<Pending>>>,
}

struct Shared {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    config: WriterConfig,
    budget: Arc<Semaphore>,
}

struct Pending {
    batch: RecordBatch,
    ingest_batch: Option<BatchId>,
    commit: Commit,
    done: oneshot::Sender<Result<(), Arc<Error>>>,
    /// Returned to the budget when the flush holding the batch ends, whatever its outcome.
    _room: OwnedSemaphorePermit,
}

impl Writer {
    pub(crate) fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        config: WriterConfig,
    ) -> Self {
        let units = (config.max_buffer_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Writer {
            shared: Arc::new(Shared {
                catalog,
                store,
                budget: Arc::new(Semaphore::new(units)),
                config,
            }),
            committers: Mutex::new(HashMap::new()),
        }
    }

    /// Queues a batch already conformed to the stream for its next group commit.
    pub(crate) async fn submit(
        &self,
        schema: Arc<StreamSchema>,
        batch: RecordBatch,
        ingest_batch: Option<BatchId>,
        commit: Commit,
    ) -> Result<SubmittedWrite> {
        let rows = batch.num_rows();
        let stream = schema.name().to_owned();
        if rows == 0 {
            return Ok(SubmittedWrite {
                stream,
                rows,
                outcome: None,
            });
        }
        let room = self.reserve(&batch).await?;
        let (done, outcome) = oneshot::channel();
        let pending = Pending {
            batch,
            ingest_batch,
            commit,
            done,
            _room: room,
        };
        self.committer(&schema)
            .send(pending)
            .map_err(|_| Error::Closed)?;
        Ok(SubmittedWrite {
            stream,
            rows,
            outcome: Some(outcome),
        })
    }

    async fn reserve(&self, batch: &RecordBatch) -> Result<OwnedSemaphorePermit> {
        let total = self.shared.budget_units();
        let units = (batch.get_array_memory_size() / BUDGET_UNIT).clamp(1, total) as u32;
        let waiting = self.shared.budget.clone().acquire_many_owned(units);
        match tokio::time::timeout(self.shared.config.overload_timeout, waiting).await {
            Ok(Ok(room)) => Ok(room),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Overloaded(format!(
                "{} MiB of writes wait for storage",
                self.shared.config.max_buffer_bytes >> 20
            ))),
        }
    }

    fn committer(&self, schema: &Arc<StreamSchema>) -> mpsc::UnboundedSender<Pending> {
        let mut committers = self.committers.lock().unwrap_or_else(|e| e.into_inner());
        committers
            .entry(schema.id())
            .or_insert_with(|| {
                let (sender, inbox) = mpsc::unbounded_channel();
                tokio::spawn(commit_loop(self.shared.clone(), schema.clone(), inbox));
                sender
            })
            .clone()
    }
}

impl Shared {
    fn budget_units(&self) -> usize {
        (self.config.max_buffer_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS)
    }
}

async fn commit_loop(
    shared: Arc<Shared>,
    schema: Arc<StreamSchema>,
    mut inbox: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = inbox.recv().await {
        let deadline = Instant::now() + shared.config.flush_interval;
        let mut rows = first.batch.num_rows();
        let mut now = first.commit == Commit::Now;
        let mut group = vec![first];
        while rows < shared.config.flush_rows {
            let next = match now {
                true => inbox.try_recv().ok(),
                false => tokio::time::timeout_at(deadline, inbox.recv())
                    .await
                    .ok()
                    .flatten(),
            };
            let Some(next) = next else { break };
            rows += next.batch.num_rows();
            now |= next.commit == Commit::Now;
            group.push(next);
        }
        let started = Instant::now();
        let outcome = flush(&shared, &schema, &group)
            .await
            .map(|_| ())
            .map_err(Arc::new);
        let result = if outcome.is_ok() { "ok" } else { "error" };
        crate::metrics::FLUSH_SECONDS
            .with(&[schema.name(), result])
            .observe(started.elapsed());
        if outcome.is_ok() {
            crate::data_changed();
            crate::metrics::FLUSHED_ROWS
                .with(&[schema.name()])
                .add(rows as u64);
        }
        for pending in group {
            // A writer that stopped waiting (its client went away) needs no answer.
            let _ = pending.done.send(outcome.clone());
        }
    }
}

async fn flush(
    shared: &Shared,
    schema: &Arc<StreamSchema>,
    group: &[Pending],
) -> Result<Vec<ParquetFile>> {
    let batches: Vec<RecordBatch> = group.iter().map(|p| p.batch.clone()).collect();
    let ingest_batch = group
        .first()
        .and_then(|p| p.ingest_batch)
        .filter(|b| group.iter().all(|p| p.ingest_batch == Some(*b)));
    let sorting = schema.clone();
    let days = tokio::task::spawn_blocking(move || sort_and_split(&sorting, &batches))
        .await
        .map_err(|e| Error::Internal(format!("flush task failed: {e}")))??;
    let uploads = days
        .into_iter()
        .map(|day| upload(shared, schema.clone(), day, ingest_batch));
    let files = try_join_all(uploads).await?;
    Ok(shared.catalog.files().commit(files).await?)
}

/// Encodes one day's rows and puts the file in the object store.
async fn upload(
    shared: &Shared,
    schema: Arc<StreamSchema>,
    day: Vec<RecordBatch>,
    ingest_batch: Option<BatchId>,
) -> Result<NewParquetFile> {
    let encoding = schema.clone();
    let file = tokio::task::spawn_blocking(move || {
        let rows = day.iter().map(RecordBatch::num_rows).sum();
        let mut writer = FileWriter::new(&encoding, 0, rows)?;
        for batch in &day {
            writer.write(batch)?;
        }
        writer.finish()
    })
    .await
    .map_err(|e| Error::Internal(format!("encoding task failed: {e}")))??;
    parquet_file::put(shared.store.as_ref(), &schema, file, 0, ingest_batch).await
}
