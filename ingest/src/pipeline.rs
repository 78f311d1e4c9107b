//! One ingest batch: files in, clean rows out to the engine, every decision counted.
//!
//! Each file is read on a blocking thread into extracts; each extract's subjects are
//! resolved in the catalog, then it is cleaned in parallel (rayon). A file's rows are written
//! only once the whole file was read and cleaned, so a file that breaks half-way leaves
//! nothing behind; the other files of the batch still land. Rejected rows go to the
//! quarantine, the counts to the batch and its quality reports.
//!
//! Food-composition tables ([`crate::foods`]) are loaded into `reference.foods` before the
//! other files, so that the meals of the batch are enriched from them.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use arrow::{array::RecordBatch, compute::concat_batches};
use catalog::{
    BatchCounts, BatchId, BatchStatus, NewBatch, Nutrients, QualityReport, QuarantinedRow,
    SubjectCoverage, SubjectId,
};
use chrono::{DateTime, Utc};
use engine::{Commit, Engine, Principal, StreamSchema};
use tokio::sync::mpsc;

use crate::{
    Error, Result,
    clean::{self, Cleaned, Rejection, Stats},
    extract::{Extract, SUBJECT, SUBJECT_ID},
    foods::{self, Enrichment, FoodChunk, FoodCounts, FoodLoad},
    formats::{self, ColumnMap, Format, Input, Survey},
    profiles::{self, PROFILES},
    series,
    subjects::Subjects,
};

/// Rejected rows kept in the quarantine per batch; the counts are always complete.
pub const QUARANTINE_LIMIT: usize = 10_000;
/// Rows per write to the engine.
const WRITE_ROWS: usize = 256 * 1024;
/// Extracts read ahead of cleaning.
const READ_AHEAD: usize = 4;
/// The stream whose rows are enriched from the `foods` table.
const MEALS: &str = "meals";

/// What `healthai ingest` was asked to do.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: Format,
    /// The stream of generic files; else each file's name says it.
    pub stream: Option<String>,
    /// The subject (pseudonym) of files that do not name one.
    pub subject: Option<String>,
    /// The `source` of rows that do not name one; else the format's name.
    pub source: Option<String>,
    pub map: ColumnMap,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            format: Format::Auto,
            stream: None,
            subject: None,
            source: None,
            map: ColumnMap::default(),
        }
    }
}

/// Hears how an ingest advances, for progress bars.
pub trait Progress: Send + Sync {
    /// How many files the batch holds, zip entries counted one by one.
    fn files_found(&self, _count: u64) {}
    fn file_started(&self, _name: &str, _bytes: u64) {}
    fn rows_read(&self, _rows: u64) {}
    fn file_finished(&self, _name: &str) {}
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {}

/// The outcome of a batch.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub batch: BatchId,
    pub files: usize,
    /// Files that could not be read at all, with why; nothing of them was written.
    pub failed: Vec<(String, String)>,
    /// Counts per stream.
    pub streams: BTreeMap<String, Stats>,
    /// Counts of the food-composition tables loaded into `reference.foods`, per source.
    pub foods: BTreeMap<String, FoodCounts>,
    /// Rejected rows, in file and record order, as far as kept.
    pub rejections: Vec<Rejection>,
    pub rejections_total: u64,
}

impl IngestReport {
    /// The counts of all streams, and of the food rows loaded or rejected (skipped rows of
    /// open food databases are not counted as rows: they are not foods).
    pub fn totals(&self) -> Stats {
        let mut total = Stats::default();
        for stats in self.streams.values() {
            total.merge(stats);
        }
        for counts in self.foods.values() {
            total.rows_in += counts.loaded + counts.rejected;
            total.rows_accepted += counts.loaded;
        }
        total
    }
}

/// The files under `paths`: files as given, directories walked in name order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files)?;
    }
    Ok(files)
}

fn walk(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let name = path.display().to_string();
    let metadata =
        std::fs::metadata(path).map_err(|e| Error::file(&name, format!("cannot open: {e}")))?;
    if !metadata.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::file(&name, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        walk(&entry, files)?;
    }
    Ok(())
}

/// Ingests files as one batch of the principal's organization.
pub async fn ingest(
    engine: &Engine,
    principal: &Principal,
    paths: &[PathBuf],
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let files = expand(paths)?;
    let source = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let inputs = files.iter().map(|f| Input::file(f)).collect();
    ingest_inputs(engine, principal, &source, inputs, options, progress).await
}

/// Ingests inputs (files, or bodies received over the network) as one batch of the
/// principal's organization; `source` says where they come from in the batch's record.
pub async fn ingest_inputs(
    engine: &Engine,
    principal: &Principal,
    source: &str,
    inputs: Vec<Input>,
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let bytes: u64 = inputs.iter().map(Input::size).sum();
    let mut run = Run::begin(
        engine,
        principal,
        options,
        source,
        options.format.name(),
        bytes,
    )
    .await?;
    run.report.files = inputs.len();
    let outcome = run.inputs(inputs, progress).await;
    let report = run
        .finish(outcome.as_ref().err().map(ToString::to_string))
        .await?;
    outcome.map(|()| report)
}

/// One ingest batch in progress: files, or units of extracts from elsewhere (a connector's
/// pages), cleaned and written one unit at a time.
pub(crate) struct Run<'a> {
    engine: &'a Engine,
    principal: &'a Principal,
    options: &'a IngestOptions,
    batch: BatchId,
    /// Where the batch comes from, for messages.
    source: String,
    /// The schemas of the streams met, by name.
    streams: BTreeMap<String, Arc<StreamSchema>>,
    /// Nutrients per 100 g of the foods meals named, `None` for ids `reference.foods` lacks.
    foods: HashMap<String, Option<Nutrients>>,
    stream_names: Vec<String>,
    report: IngestReport,
}

/// A file's cleaned rows, held until the whole file is read.
#[derive(Default)]
struct FileRows {
    batches: BTreeMap<String, Vec<RecordBatch>>,
    stats: BTreeMap<String, Stats>,
    rejections: Vec<Rejection>,
}

impl<'a> Run<'a> {
    /// Opens the batch in the catalog; `source` and `format` describe it there.
    pub(crate) async fn begin(
        engine: &'a Engine,
        principal: &'a Principal,
        options: &'a IngestOptions,
        source: &str,
        format: &str,
        bytes: u64,
    ) -> Result<Self> {
        let catalog = engine.catalog();
        let batch = catalog
            .ingest()
            .begin_batch(
                NewBatch {
                    org: principal.org.id,
                    source: source.chars().take(1000).collect(),
                    format: format.to_owned(),
                    bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
                    created_by: principal.user,
                },
                Utc::now(),
            )
            .await
            .map_err(|e| Error::file(source, e.to_string()))?;
        let stream_names = catalog
            .streams()
            .list(principal.org.id)
            .await
            .map_err(|e| Error::file(source, e.to_string()))?
            .into_iter()
            .map(|s| s.name)
            .collect();
        Ok(Run {
            engine,
            principal,
            options,
            batch: batch.id,
            source: source.to_owned(),
            streams: BTreeMap::new(),
            foods: HashMap::new(),
            stream_names,
            report: IngestReport {
                batch: batch.id,
                files: 0,
                failed: Vec::new(),
                streams: BTreeMap::new(),
                foods: BTreeMap::new(),
                rejections: Vec::new(),
                rejections_total: 0,
            },
        })
    }

    /// Records the batch's end, counts, quality reports and quarantine in the catalog;
    /// `error` says why the batch failed, if it did.
    pub(crate) async fn finish(self, error: Option<String>) -> Result<IngestReport> {
        let report = self.report;
        let totals = report.totals();
        let counts = BatchCounts {
            rows_in: totals.rows_in as i64,
            rows_accepted: totals.rows_accepted as i64,
            rows_rejected: totals.rejected() as i64,
            rows_corrected: totals.corrected() as i64,
        };
        let (status, error) = match error {
            None if report.failed.len() < report.files || report.files == 0 => {
                (BatchStatus::Committed, None)
            }
            None => (
                BatchStatus::Failed,
                Some("no file could be read".to_owned()),
            ),
            Some(error) => (BatchStatus::Failed, Some(error)),
        };
        let reports: Vec<QualityReport> = quality_reports(&self.streams, &report.streams);
        let quarantine: Vec<QuarantinedRow> = report
            .rejections
            .iter()
            .map(|r| QuarantinedRow {
                batch: report.batch,
                stream: self.streams.get(&*r.stream).map(|s| s.id()),
                file: r.file.to_string(),
                record: i64::try_from(r.record).ok().filter(|n| *n > 0),
                column: r.column.clone(),
                rule: r.rule.to_owned(),
                reason: r.reason.clone(),
                value: r.value.clone(),
            })
            .collect();
        let coverage: Vec<SubjectCoverage> = report
            .streams
            .iter()
            .filter_map(|(name, stats)| Some((self.streams.get(name)?.id(), stats)))
            .flat_map(|(stream, stats)| {
                stats
                    .coverage
                    .iter()
                    .map(move |(subject, c)| SubjectCoverage {
                        stream,
                        subject: SubjectId(*subject),
                        first: DateTime::from_timestamp_nanos(c.first),
                        last: DateTime::from_timestamp_nanos(c.last),
                        rows: i64::try_from(c.rows).unwrap_or(i64::MAX),
                    })
            })
            .collect();
        let ingest = self.engine.catalog().ingest();
        let recorded = async {
            ingest.record_quality(report.batch, reports).await?;
            ingest.record_coverage(report.batch, coverage).await?;
            ingest.quarantine(quarantine).await?;
            ingest
                .finish_batch(report.batch, status, counts, error, Utc::now())
                .await
        };
        recorded
            .await
            .map_err(|e| Error::file(&self.source, e.to_string()))?;
        Ok(report)
    }

    /// Cleans and writes extracts that belong together (a page of an API) like a file: all
    /// of their rows are written, or none when one fails.
    pub(crate) async fn extracts(&mut self, extracts: Vec<Extract>) -> Result<()> {
        let mut rows = FileRows::default();
        let mut subjects = Subjects::new(self.engine, self.principal.org.id, "ingest");
        for extract in extracts {
            self.extract(extract, &mut subjects, &mut rows).await?;
        }
        self.report.files += 1;
        self.write(rows).await
    }

    async fn inputs(&mut self, given: Vec<Input>, progress: &dyn Progress) -> Result<()> {
        let mut inputs = Vec::new();
        for input in given {
            match formats::is_archive(&input).and_then(|zip| match zip {
                true => formats::archive_entries(&input),
                false => Ok(vec![input]),
            }) {
                Ok(entries) => inputs.extend(entries),
                Err(Error::File { file, problem }) => self.report.failed.push((file, problem)),
                Err(other) => return Err(other),
            }
        }
        self.report.files = inputs.len() + self.report.failed.len();
        progress.files_found(self.report.files as u64);
        // What one file of an export tells the readers of the others; reads small files.
        let listed = inputs.clone();
        let survey = tokio::task::spawn_blocking(move || formats::survey(&listed))
            .await
            .map(Arc::new)
            .map_err(|e| Error::file("ingest", format!("surveying the files stopped: {e}")))?;
        // Foods first: the meals of the batch are enriched from them.
        let plan = foods::plan(inputs, self.options.format);
        for (file, problem) in plan.failed {
            progress.file_finished(&file);
            self.report.failed.push((file, problem));
        }
        for load in plan.loads {
            let files = load.files();
            progress.file_started(&files[0], 0);
            match self.load_foods(load, progress).await {
                Ok(()) => {}
                Err(Error::File { file, problem }) => self.report.failed.push((file, problem)),
                Err(other) => return Err(other),
            }
            for file in &files {
                progress.file_finished(file);
            }
        }
        // Profiles next: the readings' local times need the subjects' time zones.
        let (profiles, readings): (Vec<Input>, Vec<Input>) = plan
            .others
            .into_iter()
            .partition(|input| input.stem() == PROFILES);
        for input in profiles.into_iter().chain(readings) {
            let name = input.name.to_string();
            progress.file_started(&name, 0);
            match self.file(input, &survey, progress).await {
                Ok(rows) => self.write(rows).await?,
                Err(Error::File { file, problem }) => self.report.failed.push((file, problem)),
                Err(other) => return Err(other),
            }
            progress.file_finished(&name);
        }
        Ok(())
    }

    /// Reads and cleans one file; nothing is written yet.
    async fn file(
        &mut self,
        input: Input,
        survey: &Arc<Survey>,
        progress: &dyn Progress,
    ) -> Result<FileRows> {
        let format = match self.options.format {
            Format::Auto => formats::detect(&input)?,
            given => given,
        };
        if input.stem() == PROFILES {
            return self.profiles(input, format, survey).await;
        }
        let named_by_content = !format.is_generic();
        let stream = match format.is_generic() {
            true => Some(formats::stream_of(
                &input,
                self.options.stream.as_deref(),
                &self.stream_names,
            )?),
            false => None,
        };
        let (sender, mut receiver) = mpsc::channel::<Extract>(READ_AHEAD);
        let map = self.options.map.clone();
        let survey = survey.clone();
        let reader = tokio::task::spawn_blocking(move || {
            formats::read(
                input,
                format,
                stream.as_deref(),
                &map,
                &survey,
                &mut |extract| {
                    sender
                        .blocking_send(extract)
                        .map_err(|_| Error::file("ingest", "cleaning stopped"))
                },
            )
        });
        let mut rows = FileRows::default();
        let mut subjects = Subjects::new(self.engine, self.principal.org.id, "ingest");
        let mut failure = None;
        while let Some(extract) = receiver.recv().await {
            progress.rows_read(extract.batch.num_rows() as u64);
            if named_by_content && !self.stream_names.contains(&extract.stream) {
                unknown_stream(&extract, &self.principal.org.name, &mut rows);
                continue;
            }
            if let Err(e) = self.extract(extract, &mut subjects, &mut rows).await {
                failure = Some(e);
                break;
            }
        }
        drop(receiver);
        let read = reader
            .await
            .map_err(|e| Error::file("ingest", format!("reading stopped: {e}")))?;
        if let Some(e) = failure {
            return Err(e);
        }
        read?;
        Ok(rows)
    }

    /// Reads a food table on a blocking thread and upserts its foods chunk by chunk.
    async fn load_foods(&mut self, load: FoodLoad, progress: &dyn Progress) -> Result<()> {
        let name = load.files()[0].to_string();
        let (sender, mut receiver) = mpsc::channel::<FoodChunk>(READ_AHEAD);
        let source = self.options.source.clone();
        let reader = tokio::task::spawn_blocking(move || {
            load.read(source.as_deref(), &mut |chunk| {
                sender
                    .blocking_send(chunk)
                    .map_err(|_| Error::file("ingest", "loading foods stopped"))
            })
        });
        let catalog = self.engine.catalog().clone();
        let mut failure = None;
        while let Some(chunk) = receiver.recv().await {
            let FoodChunk {
                source,
                foods,
                rejections,
                counts,
            } = chunk;
            progress.rows_read(counts.loaded + counts.rejected + counts.skipped);
            if !foods.is_empty()
                && let Err(e) = catalog
                    .foods()
                    .upsert(self.principal.org.id, foods, Utc::now())
                    .await
            {
                failure = Some(Error::file(
                    &name,
                    format!("the catalog refused foods: {e}"),
                ));
                break;
            }
            self.report.foods.entry(source).or_default().merge(&counts);
            self.quarantine(rejections);
        }
        drop(receiver);
        // Meals look foods up again after a load.
        self.foods.clear();
        let read = reader
            .await
            .map_err(|e| Error::file(&name, format!("reading stopped: {e}")))?;
        if let Some(e) = failure {
            return Err(e);
        }
        read
    }

    async fn profiles(
        &mut self,
        input: Input,
        format: Format,
        survey: &Arc<Survey>,
    ) -> Result<FileRows> {
        let map = self.options.map.clone();
        let survey = survey.clone();
        let mut extracts = Vec::new();
        let read = tokio::task::spawn_blocking(move || {
            formats::read(
                input,
                format,
                Some(PROFILES),
                &map,
                &survey,
                &mut |extract| {
                    extracts.push(extract);
                    Ok(())
                },
            )
            .map(|()| extracts)
        })
        .await
        .map_err(|e| Error::file(PROFILES, format!("reading stopped: {e}")))??;
        let mut rows = FileRows::default();
        for extract in read {
            let (stats, rejections) =
                profiles::apply(self.engine, self.principal.org.id, &extract).await?;
            rows.stats
                .entry(PROFILES.to_owned())
                .or_default()
                .merge(&stats);
            rows.rejections.extend(rejections);
        }
        Ok(rows)
    }

    async fn extract(
        &mut self,
        mut extract: Extract,
        subjects: &mut Subjects<'_>,
        rows: &mut FileRows,
    ) -> Result<()> {
        let schema = self.schema(&extract.stream, &extract.file).await?;
        self.complete(&mut extract)?;
        let resolved = subjects
            .rows(&extract.batch)
            .await
            .map_err(|e| relabel(e, &extract.file))?;
        let file = extract.file.clone();
        let (cleaned, extract) = tokio::task::spawn_blocking(move || {
            let cleaned = clean::clean(&schema, &extract, &resolved);
            (cleaned, extract)
        })
        .await
        .map_err(|e| Error::file(&file, format!("cleaning stopped: {e}")))?;
        let cleaned = cleaned.map_err(|e| Error::file(&file, format!("cleaning failed: {e}")))?;
        let Cleaned {
            mut batch,
            rejections,
            mut stats,
        } = cleaned;
        if extract.stream == MEALS {
            batch = self.enrich(batch, &mut stats, &file).await?;
        }
        rows.stats
            .entry(extract.stream.clone())
            .or_default()
            .merge(&stats);
        rows.batches
            .entry(extract.stream.clone())
            .or_default()
            .push(batch);
        rows.rejections.extend(rejections);
        Ok(())
    }

    /// Fills the missing nutrients of cleaned meals from `reference.foods`, looking up only the
    /// foods not met yet.
    async fn enrich(
        &mut self,
        batch: RecordBatch,
        stats: &mut Stats,
        file: &str,
    ) -> Result<RecordBatch> {
        let unseen: Vec<String> = foods::food_ids_to_enrich(&batch)
            .into_iter()
            .filter(|id| !self.foods.contains_key(id))
            .collect();
        if !unseen.is_empty() {
            let found = self
                .engine
                .catalog()
                .foods()
                .get(self.principal.org.id, &unseen)
                .await
                .map_err(|e| Error::file(file, format!("cannot look foods up: {e}")))?;
            for id in unseen {
                self.foods.insert(id, None);
            }
            for food in found {
                self.foods.insert(food.id, Some(food.per_100g));
            }
        }
        let (batch, enrichment) = Enrichment::apply(batch, &self.foods)
            .map_err(|e| Error::file(file, format!("enriching meals failed: {e}")))?;
        enrichment.record(stats);
        Ok(batch)
    }

    /// Adds what the options supply and the file does not: the subject, the source.
    fn complete(&self, extract: &mut Extract) -> Result<()> {
        let schema = extract.batch.schema();
        let has_subject = schema.column_with_name(SUBJECT).is_some()
            || schema.column_with_name(SUBJECT_ID).is_some();
        let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
        let mut columns = extract.batch.columns().to_vec();
        let rows = extract.batch.num_rows();
        if !has_subject && let Some(subject) = &self.options.subject {
            fields.push(Arc::new(arrow::datatypes::Field::new(
                SUBJECT,
                arrow::datatypes::DataType::Utf8,
                true,
            )));
            columns.push(Arc::new(arrow::array::StringArray::from_iter_values(
                std::iter::repeat_n(subject.as_str(), rows),
            )));
        }
        if let Some(source) = &self.options.source {
            extract.default_source = source.clone();
        }
        extract.batch =
            RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
                .map_err(|e| Error::file(&extract.file, e.to_string()))?;
        Ok(())
    }

    async fn schema(&mut self, stream: &str, file: &str) -> Result<Arc<StreamSchema>> {
        if let Some(schema) = self.streams.get(stream) {
            return Ok(schema.clone());
        }
        let schema = self
            .engine
            .stream(&self.principal.org.name, stream)
            .await
            .map_err(|e| Error::engine(file, e))?;
        self.streams.insert(stream.to_owned(), schema.clone());
        Ok(schema)
    }

    /// Writes a file's rows, de-duplicated per stream, and adds its counts to the report.
    async fn write(&mut self, rows: FileRows) -> Result<()> {
        let FileRows {
            batches,
            mut stats,
            rejections,
        } = rows;
        let mut slices = Vec::new();
        for (stream, parts) in batches {
            let schema = self.streams[&stream].clone();
            let mut stream_stats = stats.remove(&stream).unwrap_or_default();
            // Sorting a whole file's rows is CPU work: off the async runtime, which also
            // serves requests when ingest runs inside the server.
            let (unique, stream_stats) = tokio::task::spawn_blocking(move || {
                let unique = unique_rows(&schema, &parts, &mut stream_stats);
                (unique, stream_stats)
            })
            .await
            .map_err(|e| Error::file(&stream, format!("de-duplication stopped: {e}")))?;
            stats.insert(stream.clone(), stream_stats);
            let unique = unique.map_err(|e| Error::file(&stream, e.to_string()))?;
            let mut offset = 0;
            while offset < unique.num_rows() {
                let len = WRITE_ROWS.min(unique.num_rows() - offset);
                slices.push((stream.clone(), unique.slice(offset, len)));
                offset += len;
            }
        }
        // Queued in order, awaited together: the engine commits a stream's slices as one,
        // as soon as the last is queued, instead of waiting its flush interval for others.
        let mut submitted = Vec::with_capacity(slices.len());
        let mut slices = slices.into_iter().peekable();
        while let Some((stream, slice)) = slices.next() {
            let commit = match slices.peek() {
                Some((next, _)) if *next == stream => Commit::Grouped,
                _ => Commit::Now,
            };
            let write = self
                .engine
                .submit_as(self.principal, &stream, slice, Some(self.batch), commit)
                .await
                .map_err(|e| Error::engine(&stream, e))?;
            submitted.push((stream, write));
        }
        let durable = submitted.into_iter().map(|(stream, write)| async move {
            write.durable().await.map_err(|e| Error::engine(&stream, e))
        });
        futures::future::try_join_all(durable).await?;
        for (stream, s) in stats {
            self.report.streams.entry(stream).or_default().merge(&s);
        }
        self.quarantine(rejections);
        Ok(())
    }

    /// Counts rejected rows and keeps them, up to the batch's quarantine limit.
    fn quarantine(&mut self, rejections: Vec<Rejection>) {
        self.report.rejections_total += rejections.len() as u64;
        let room = QUARANTINE_LIMIT.saturating_sub(self.report.rejections.len());
        self.report
            .rejections
            .extend(rejections.into_iter().take(room));
    }
}

/// A stream's rows of one file as one batch, de-duplicated, with the series rules applied
/// and counted.
fn unique_rows(
    schema: &StreamSchema,
    parts: &[RecordBatch],
    stats: &mut Stats,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let all = concat_batches(schema.arrow_schema(), parts)?;
    let unique = clean::deduplicate(schema, all, stats)?;
    let unique = series::overlapping_sleep(schema, unique, stats)?;
    series::flag_spikes(schema, &unique, stats)?;
    series::cover(schema, &unique, stats)?;
    Ok(unique)
}

/// Rejects every row of an extract whose content names a stream the organization does not
/// have (a line-protocol measurement): the other streams of the file still land.
fn unknown_stream(extract: &Extract, org: &str, rows: &mut FileRows) {
    let count = extract.batch.num_rows() as u64;
    let stats = rows.stats.entry(extract.stream.clone()).or_default();
    stats.rows_in += count;
    let rule = stats
        .rules
        .entry((clean::ROW.to_owned(), "stream"))
        .or_default();
    rule.checked += count;
    rule.rejected += count;
    let stream: Arc<str> = extract.stream.as_str().into();
    let reason = format!(
        "organization {org} has no stream '{}' (`healthai streams` lists them)",
        extract.stream
    );
    rows.rejections
        .extend(extract.records.iter().map(|record| Rejection {
            stream: stream.clone(),
            file: extract.file.clone(),
            record: *record,
            column: None,
            rule: "stream",
            reason: reason.clone(),
            value: None,
        }));
}

/// Names the file in an error raised where only "ingest" was known.
fn relabel(error: Error, file: &str) -> Error {
    match error {
        Error::File { problem, .. } => Error::File {
            file: file.to_owned(),
            problem,
        },
        other => other,
    }
}

/// The quality reports of a batch: a row per stream, column and rule, plus completeness.
fn quality_reports(
    schemas: &BTreeMap<String, Arc<StreamSchema>>,
    streams: &BTreeMap<String, Stats>,
) -> Vec<QualityReport> {
    let mut reports = Vec::new();
    for (name, stats) in streams {
        let Some(schema) = schemas.get(name) else {
            continue;
        };
        for ((column, rule), count) in &stats.rules {
            if count.checked == 0 && count.rejected == 0 {
                continue;
            }
            reports.push(QualityReport {
                stream: schema.id(),
                column: column.clone(),
                rule: (*rule).to_owned(),
                rows_checked: count.checked.max(count.rejected + count.corrected) as i64,
                rows_corrected: count.corrected as i64,
                rows_rejected: count.rejected as i64,
                rows_flagged: count.flagged as i64,
                completeness: None,
            });
        }
        for (column, (present, rows)) in &stats.present {
            reports.push(QualityReport {
                stream: schema.id(),
                column: column.clone(),
                rule: "completeness".to_owned(),
                rows_checked: *rows as i64,
                rows_corrected: 0,
                rows_rejected: 0,
                rows_flagged: 0,
                completeness: (*rows > 0)
                    .then(|| *present as f64 / *rows as f64)
                    .or(Some(1.0)),
            });
        }
    }
    reports
}
