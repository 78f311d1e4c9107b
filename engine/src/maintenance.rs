//! Keeping the stored data in shape: compaction merges a partition's small files into sorted,
//! de-duplicated larger ones; retention drops expired days; erasure rewrites every file that
//! holds a subject's rows; garbage collection deletes replaced files after their grace period
//! and files no flush registered.
//!
//! Each change to a partition's files is one catalog swap. A swap that finds a file already
//! replaced (another node compacted it, an erasure rewrote it) fails with a conflict and
//! changes nothing; compaction skips the partition until next time, erasure starts over on
//! the stream. What a failed step uploaded is garbage, collected later.

use std::{collections::HashSet, sync::Arc, time::Duration};

use arrow::{
    array::{AsArray, Int64Array, RecordBatch},
    compute::{filter_record_batch, kernels::cmp::neq},
    datatypes::Int64Type,
};
use catalog::{
    ErasureRequest, FileFilter, NewParquetFile, Organization, ParquetFile, Partition, SubjectId,
    UserId,
};
use chrono::{DateTime, Utc};
use datafusion::{
    common::config::TableParquetOptions,
    physical_plan::{ExecutionPlan, execute_stream, filter::FilterExec},
    prelude::{SessionContext, col, lit},
};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, path::Path};

use crate::{
    Engine, Error, Result,
    parquet_file::{self, EncodedFile, FileWriter},
    query::{
        scan::{FileScan, overlapping_groups},
        session_config,
    },
    rollup::Width,
    schema::{SUBJECT_ID, StreamSchema},
    sort::NANOS_PER_DAY,
    store,
};

#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// The background task compacts a partition once it holds this many live files.
    pub compaction_min_files: usize,
    /// A partition no file arrived in for this long is compacted even with a single fresh
    /// file, so that days done with get their rollups.
    pub settle: Duration,
    /// Rows in a compacted file, at most; files are cut between subjects.
    pub compacted_file_rows: usize,
    /// How long replaced files stay readable for queries that already planned on them.
    pub deletion_grace: Duration,
    /// How old a file no flush registered must be before it is deleted: longer than any
    /// flush takes between uploading a file and registering it.
    pub orphan_grace: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            compaction_min_files: 4,
            settle: Duration::from_secs(600),
            compacted_file_rows: 8_000_000,
            deletion_grace: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(3_600),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub partitions: usize,
    pub files_in: usize,
    pub files_out: usize,
    pub rows_in: i64,
    pub rows_out: i64,
    /// Partitions another change got to first; they are compacted next time.
    pub conflicts: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub partitions: usize,
    pub files: usize,
    pub rows: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    pub files_rewritten: i64,
    pub rows_removed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GarbageReport {
    /// Replaced files deleted once their grace period was over.
    pub replaced: usize,
    /// Files no flush registered, deleted once older than the orphan grace period.
    pub orphans: usize,
}

/// How many times erasure starts a stream over after losing a race with compaction.
const ERASURE_ATTEMPTS: usize = 5;

fn grace(now: DateTime<Utc>, grace: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX)
}

impl Engine {
    /// Compacts every partition, of every organization, where at least `min_files` files need
    /// merging — fresh (level 0) files, and files whose keys overlap — or where any does and
    /// no file arrived for the settle time. A partition already made of compacted, disjoint
    /// files is left alone. Compacted files get their rollups.
    pub async fn compact(&self, min_files: usize) -> Result<CompactionReport> {
        let mut report = CompactionReport::default();
        for org in self.catalog().organizations().list().await? {
            let hidden = self.hidden_subjects(&org).await?;
            for schema in self
                .registry()
                .streams(self.catalog().as_ref(), &org)
                .await?
                .iter()
            {
                for partition in self.catalog().files().partitions(schema.id()).await? {
                    if partition.live_files >= 1 {
                        self.compact_partition(schema, &partition, &hidden, min_files, &mut report)
                            .await?;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn compact_partition(
        &self,
        schema: &Arc<StreamSchema>,
        partition: &Partition,
        hidden: &[i64],
        min_files: usize,
        report: &mut CompactionReport,
    ) -> Result<()> {
        let files = self.partition_files(schema, partition).await?;
        let settle = chrono::Duration::from_std(self.config().maintenance.settle)
            .unwrap_or(chrono::Duration::MAX);
        let settled = Utc::now()
            .checked_sub_signed(settle)
            .is_some_and(|cutoff| files.iter().all(|f| f.created_at < cutoff));
        let wanted = files_to_merge(&files);
        if wanted == 0 || (wanted < min_files && !settled) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut plan = FileScan {
            schema,
            store: self.store_url(),
            options: TableParquetOptions::default(),
            files: files.clone(),
            bounds: FileFilter::default(),
            projection: None,
            predicate: None,
            key_predicate: None,
            reader: None,
        }
        .merged()?;
        // Compaction also removes what erasures may have missed (a write racing a request).
        if !hidden.is_empty() {
            let list = hidden.iter().map(|id| lit(*id)).collect();
            let context =
                SessionContext::new_with_config_rt(session_config(1), self.runtime().clone());
            let visible = context.create_physical_expr(
                col(SUBJECT_ID).in_list(list, true),
                &datafusion::common::DFSchema::try_from(plan.schema())?,
            )?;
            plan = Arc::new(FilterExec::try_new(visible, plan)?);
        }
        let encoded = self.write_out(schema, plan, 1).await?;
        let mut new_files = Vec::with_capacity(encoded.len());
        let rows_out: i64 = encoded.iter().map(|f| f.rows).sum();
        let densities: Vec<(u64, Vec<(Width, u64)>)> = encoded
            .iter()
            .map(|f| {
                let rollups = f.rollups.iter().map(|r| (r.width, r.rows)).collect();
                (f.rows.max(0) as u64, rollups)
            })
            .collect();
        for file in encoded {
            new_files.push(parquet_file::put(self.store().as_ref(), schema, file, 1, None).await?);
        }
        let files_out = new_files.len();
        let replaced: Vec<_> = files.iter().map(|f| f.id).collect();
        let delete_at = grace(Utc::now(), self.config().maintenance.deletion_grace);
        match self
            .catalog()
            .files()
            .swap(partition.id, &replaced, new_files, delete_at)
            .await
        {
            Ok(_) => {
                crate::data_changed();
                for (readings, rollups) in &densities {
                    self.densities().record(schema.id(), *readings, rollups);
                }
                crate::metrics::COMPACTION_SECONDS
                    .with(&[schema.name()])
                    .observe(started.elapsed());
                report.partitions += 1;
                report.files_in += files.len();
                report.files_out += files_out;
                report.rows_in += files.iter().map(|f| f.row_count).sum::<i64>();
                report.rows_out += rows_out;
                Ok(())
            }
            Err(catalog::Error::Conflict(_)) => {
                report.conflicts += 1;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a sorted plan and encodes its rows into files of at most the compacted size, cut
    /// between subjects so that the files' subject ranges do not overlap.
    async fn write_out(
        &self,
        schema: &StreamSchema,
        plan: Arc<dyn ExecutionPlan>,
        level: i64,
    ) -> Result<Vec<EncodedFile>> {
        let max_rows = self.config().maintenance.compacted_file_rows.max(1);
        let context = SessionContext::new_with_config_rt(session_config(1), self.runtime().clone());
        let mut batches = execute_stream(plan, context.task_ctx())?;
        let mut done = Vec::new();
        let mut current: Option<FileWriter> = None;
        while let Some(batch) = batches.next().await {
            let mut batch = batch?;
            while batch.num_rows() > 0 {
                let writer = match &mut current {
                    Some(writer) => writer,
                    None => current.insert(FileWriter::new(schema, level, max_rows)?),
                };
                let room = max_rows.saturating_sub(writer.rows());
                match next_subject_at_or_after(schema, &batch, room, writer.last_subject()) {
                    Some(cut) => {
                        writer.write(&batch.slice(0, cut))?;
                        batch = batch.slice(cut, batch.num_rows() - cut);
                        if let Some(full) = current.take() {
                            done.push(full.finish()?);
                        }
                    }
                    None => {
                        writer.write(&batch)?;
                        break;
                    }
                }
            }
        }
        if let Some(last) = current.filter(|w| w.rows() > 0) {
            done.push(last.finish()?);
        }
        Ok(done)
    }

    /// The live files of one partition.
    async fn partition_files(
        &self,
        schema: &StreamSchema,
        partition: &Partition,
    ) -> Result<Vec<ParquetFile>> {
        let start = partition
            .day
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .unwrap_or(i64::MIN);
        let filter = FileFilter {
            time: Some((start, start.saturating_add(NANOS_PER_DAY))),
            subjects: None,
        };
        Ok(self
            .catalog()
            .files()
            .live_files(schema.id(), filter)
            .await?
            .into_iter()
            .filter(|f| f.partition == partition.id)
            .collect())
    }

    async fn hidden_subjects(&self, org: &Organization) -> Result<Vec<i64>> {
        Ok(self
            .catalog()
            .subjects()
            .erased(org.id)
            .await?
            .into_iter()
            .map(|s| s.0)
            .collect())
    }

    /// Drops the days of each stream that are older than its retention period: their files
    /// leave the catalog now and the store after the grace period.
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> Result<RetentionReport> {
        let mut report = RetentionReport::default();
        for org in self.catalog().organizations().list().await? {
            for schema in self
                .registry()
                .streams(self.catalog().as_ref(), &org)
                .await?
                .iter()
            {
                let Some(days) = schema.stream.retention_days else {
                    continue;
                };
                let cutoff = (now - chrono::Duration::days(days)).date_naive();
                for partition in self.catalog().files().partitions(schema.id()).await? {
                    if partition.day >= cutoff || partition.live_files == 0 {
                        continue;
                    }
                    let files = self.partition_files(schema, &partition).await?;
                    let ids: Vec<_> = files.iter().map(|f| f.id).collect();
                    let delete_at = grace(now, self.config().maintenance.deletion_grace);
                    match self
                        .catalog()
                        .files()
                        .swap(partition.id, &ids, vec![], delete_at)
                        .await
                    {
                        Ok(_) => {
                            crate::data_changed();
                            report.partitions += 1;
                            report.files += files.len();
                            report.rows += files.iter().map(|f| f.row_count).sum::<i64>();
                        }
                        // A compaction replaced the files meanwhile: the next run drops them.
                        Err(catalog::Error::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(report)
    }

    /// GDPR erasure of a subject, by its pseudonym: hidden from every query at once, then
    /// removed from every file that holds its rows. Returns the completed request.
    pub async fn erase(
        &self,
        org: &str,
        pseudonym: &str,
        requested_by: Option<UserId>,
    ) -> Result<ErasureRequest> {
        let request = self.request_erasure(org, pseudonym, requested_by).await?;
        let org = self.organization(org).await?;
        self.complete_erasure(&org, request).await
    }

    /// The first half of an erasure: the request is recorded and the subject hidden from
    /// every query at once; [`Engine::process_erasures`] (the background maintenance) removes
    /// its rows from the files later.
    pub async fn request_erasure(
        &self,
        org: &str,
        pseudonym: &str,
        requested_by: Option<UserId>,
    ) -> Result<ErasureRequest> {
        let org = self.organization(org).await?;
        let subject = self
            .catalog()
            .subjects()
            .get_by_pseudonym(org.id, pseudonym)
            .await?;
        let request = self
            .catalog()
            .erasure()
            .request(subject.id, requested_by, Utc::now())
            .await?;
        self.registry().mark_erased(org.id, subject.id);
        crate::data_changed();
        Ok(request)
    }

    /// Completes the erasure requests still pending (a node stopped midway, a step failed).
    pub async fn process_erasures(&self) -> Result<Vec<ErasureRequest>> {
        let pending = self.catalog().erasure().pending().await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let orgs = self.catalog().organizations().list().await?;
        let mut completed = Vec::new();
        for request in pending {
            let Some(org) = orgs.iter().find(|o| o.id == request.org) else {
                continue;
            };
            self.registry().mark_erased(org.id, request.subject);
            completed.push(self.complete_erasure(org, request).await?);
        }
        Ok(completed)
    }

    async fn complete_erasure(
        &self,
        org: &Organization,
        request: ErasureRequest,
    ) -> Result<ErasureRequest> {
        match self.erase_rows(org, request.subject).await {
            Ok(done) => Ok(self
                .catalog()
                .erasure()
                .complete(
                    request.id,
                    done.files_rewritten,
                    done.rows_removed,
                    Utc::now(),
                )
                .await?),
            Err(e) => {
                self.catalog()
                    .erasure()
                    .fail(request.id, &e.to_string())
                    .await?;
                Err(e)
            }
        }
    }

    async fn erase_rows(&self, org: &Organization, subject: SubjectId) -> Result<ErasureReport> {
        let mut report = ErasureReport::default();
        let holding = FileFilter {
            time: None,
            subjects: Some((subject, subject)),
        };
        for schema in self
            .registry()
            .streams(self.catalog().as_ref(), org)
            .await?
            .iter()
        {
            let mut attempts = 0;
            'stream: loop {
                attempts += 1;
                for file in self
                    .catalog()
                    .files()
                    .live_files(schema.id(), holding)
                    .await?
                {
                    let Some((removed, new_files)) =
                        self.rewrite_without(schema, &file, subject).await?
                    else {
                        continue;
                    };
                    let delete_at = grace(Utc::now(), self.config().maintenance.deletion_grace);
                    match self
                        .catalog()
                        .files()
                        .swap(file.partition, &[file.id], new_files, delete_at)
                        .await
                    {
                        Ok(_) => {
                            crate::data_changed();
                            report.files_rewritten += 1;
                            report.rows_removed += removed;
                        }
                        Err(catalog::Error::Conflict(reason)) if attempts < ERASURE_ATTEMPTS => {
                            tracing::info!(%reason, stream = schema.name(), "erasure lost a race; starting the stream over");
                            continue 'stream;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                break;
            }
        }
        Ok(report)
    }

    /// The file's rows without the subject's, as new files; `None` when the file holds none
    /// of them (its subject range spans the subject without containing it).
    async fn rewrite_without(
        &self,
        schema: &Arc<StreamSchema>,
        file: &ParquetFile,
        subject: SubjectId,
    ) -> Result<Option<(i64, Vec<NewParquetFile>)>> {
        let plan = FileScan {
            schema,
            store: self.store_url(),
            options: TableParquetOptions::default(),
            files: vec![file.clone()],
            bounds: FileFilter::default(),
            projection: None,
            predicate: None,
            key_predicate: None,
            reader: None,
        }
        .plan()?;
        let context = SessionContext::new_with_config_rt(session_config(1), self.runtime().clone());
        let batches: Vec<RecordBatch> = execute_stream(plan, context.task_ctx())?
            .try_collect()
            .await?;
        let subject_column = schema.index_of(SUBJECT_ID);
        let other = Int64Array::new_scalar(subject.0);
        let mut kept = Vec::with_capacity(batches.len());
        let mut removed = 0;
        for batch in &batches {
            let ids = batch.column(subject_column).as_primitive::<Int64Type>();
            let keep = neq(ids, &other)?;
            let remaining = filter_record_batch(batch, &keep)?;
            removed += (batch.num_rows() - remaining.num_rows()) as i64;
            kept.push(remaining);
        }
        if removed == 0 {
            return Ok(None);
        }
        let level = file.compaction_level;
        let mut new_files = Vec::new();
        if kept.iter().any(|b| b.num_rows() > 0) {
            let mut writer = FileWriter::new(schema, level, file.row_count as usize)?;
            for batch in kept.iter().filter(|b| b.num_rows() > 0) {
                writer.write(batch)?;
            }
            new_files.push(
                parquet_file::put(
                    self.store().as_ref(),
                    schema,
                    writer.finish()?,
                    level,
                    file.ingest_batch,
                )
                .await?,
            );
        }
        Ok(Some((removed, new_files)))
    }

    /// Deletes replaced files whose grace period is over, then files nobody registered that
    /// are older than the orphan grace period.
    pub async fn collect_garbage(&self, now: DateTime<Utc>) -> Result<GarbageReport> {
        let mut report = GarbageReport::default();
        loop {
            let due = self.catalog().files().due_for_deletion(now, 500).await?;
            if due.is_empty() {
                break;
            }
            for file in &due {
                for width in Width::ALL {
                    self.delete_object(&store::rollup_path(&file.path, width))
                        .await?;
                }
                self.delete_object(&Path::from(file.path.as_str())).await?;
            }
            let ids: Vec<_> = due.iter().map(|f| f.id).collect();
            report.replaced += self.catalog().files().forget(&ids).await? as usize;
        }
        let cutoff = now
            - chrono::Duration::from_std(self.config().maintenance.orphan_grace)
                .unwrap_or(chrono::Duration::MAX);
        let mut listing = self.store().list(None).try_chunks(500);
        while let Some(chunk) = listing.next().await {
            let objects = chunk.map_err(|e| Error::store("list", "(the whole store)", e.1))?;
            let candidates: Vec<String> = objects
                .iter()
                .filter(|o| o.last_modified < cutoff && o.location.as_ref().ends_with(".parquet"))
                .map(|o| o.location.to_string())
                .collect();
            if candidates.is_empty() {
                continue;
            }
            // A rollup lives as long as its data file.
            let data_paths: Vec<String> = candidates
                .iter()
                .map(|p| store::data_path_of_rollup(p).unwrap_or_else(|| p.clone()))
                .collect();
            let known: HashSet<String> = self
                .catalog()
                .files()
                .known_paths(&data_paths)
                .await?
                .into_iter()
                .collect();
            let unknown = candidates
                .iter()
                .zip(&data_paths)
                .filter(|(_, data)| !known.contains(*data));
            for (path, _) in unknown {
                self.delete_object(&Path::from(path.as_str())).await?;
                report.orphans += 1;
            }
        }
        Ok(report)
    }

    async fn delete_object(&self, path: &Path) -> Result<()> {
        match self.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::store("delete", path, e)),
        }
    }

    /// One round of background maintenance; failures are logged, the next round retries.
    pub(crate) async fn maintain_once(&self) {
        let min_files = self.config().maintenance.compaction_min_files;
        if let Err(e) = self.compact(min_files).await {
            tracing::warn!(error = %e, "compaction failed");
        }
        if let Err(e) = self.apply_retention(Utc::now()).await {
            tracing::warn!(error = %e, "retention failed");
        }
        if let Err(e) = self.process_erasures().await {
            tracing::warn!(error = %e, "erasure failed");
        }
        if let Err(e) = self.collect_garbage(Utc::now()).await {
            tracing::warn!(error = %e, "garbage collection failed");
        }
    }
}

/// How many of a partition's files want merging: fresh ones and those whose keys overlap.
fn files_to_merge(files: &[ParquetFile]) -> usize {
    let overlapping: HashSet<usize> = overlapping_groups(files)
        .into_iter()
        .filter(|group| group.len() > 1)
        .flatten()
        .collect();
    (0..files.len())
        .filter(|i| overlapping.contains(i) || files[*i].compaction_level == 0)
        .count()
}

/// Where to start a new file in a batch, when the current file has room for `room` more rows
/// and ends with subject `last`: the first row at or after `room` that starts another
/// subject, so that no subject spans two files. `None` when the batch fits or ends first.
fn next_subject_at_or_after(
    schema: &StreamSchema,
    batch: &RecordBatch,
    room: usize,
    last: Option<i64>,
) -> Option<usize> {
    if batch.num_rows() <= room {
        return None;
    }
    let ids = batch
        .column(schema.index_of(SUBJECT_ID))
        .as_primitive::<Int64Type>();
    (room..ids.len()).find(|&i| {
        let previous = if i == 0 { last } else { Some(ids.value(i - 1)) };
        previous.is_some_and(|p| p != ids.value(i))
    })
}
