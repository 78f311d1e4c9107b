use std::{
    collections::BTreeMap,
    fmt,
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use arrow::{
    array::{
        Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampNanosecondArray,
    },
    datatypes::{Float64Type, Int64Type, TimestampNanosecondType},
};
use async_trait::async_trait;
use bytes::Bytes;
use catalog::{Catalog, FileFilter, ParquetFile, testing::TestDatabase};
use engine::{Engine, EngineConfig, MaintenanceConfig, WriterConfig};
use futures::stream::BoxStream;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, local::LocalFileSystem,
    path::Path,
};
use tokio::sync::Semaphore;

pub const SECOND: i64 = 1_000_000_000;
pub const HOUR: i64 = 3_600 * SECOND;
pub const DAY: i64 = 24 * HOUR;

/// 2026-03-01T00:00:00Z in nanoseconds.
pub const MARCH_1: i64 = 1_772_323_200 * SECOND;

pub fn test_config() -> EngineConfig {
    EngineConfig {
        writer: WriterConfig {
            flush_interval: Duration::from_millis(20),
            ..WriterConfig::default()
        },
        maintenance: MaintenanceConfig {
            deletion_grace: Duration::ZERO,
            orphan_grace: Duration::ZERO,
            ..MaintenanceConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// A real catalog, a real local object store, and an engine over them.
pub struct Harness {
    pub db: TestDatabase,
    pub dir: tempfile::TempDir,
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<FaultyStore>,
    pub engine: Engine,
}

impl Harness {
    pub async fn new(db: TestDatabase) -> Self {
        Self::with_config(db, test_config()).await
    }

    pub async fn with_config(db: TestDatabase, config: EngineConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = db.catalog().await;
        let store = Arc::new(FaultyStore::new(Arc::new(
            LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        )));
        let engine = Engine::open(catalog.clone(), store.clone(), config).unwrap();
        Harness {
            db,
            dir,
            catalog,
            store,
            engine,
        }
    }

    /// A second engine over the same catalog and store, as after a restart.
    pub async fn restarted(&self) -> Engine {
        let catalog = catalog::open(self.db.url()).await.unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(self.dir.path()).unwrap());
        Engine::open(catalog, store, test_config()).unwrap()
    }

    /// Subjects S1…Sn of the default organization, by their catalog ids.
    pub async fn subjects(&self, n: usize) -> Vec<i64> {
        let org = self.catalog.organizations().get("default").await.unwrap();
        let pseudonyms: Vec<String> = (1..=n).map(|i| format!("S{i}")).collect();
        self.catalog
            .subjects()
            .ensure(org.id, &pseudonyms)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.0)
            .collect()
    }

    pub async fn write(&self, rows: &[Reading]) -> engine::Result<engine::WriteReceipt> {
        self.engine
            .write("default", "heart_rate", heart_rate(rows), None)
            .await
    }

    /// The stored readings, as the query path returns them.
    pub async fn readings(&self) -> BTreeMap<(i64, String, i64), f64> {
        readings(
            &self.engine,
            "SELECT subject_id, source, time, bpm FROM heart_rate",
        )
        .await
    }

    /// The catalog's live files of `heart_rate`.
    pub async fn live_files(&self) -> Vec<ParquetFile> {
        let stream = self
            .engine
            .stream("default", "heart_rate")
            .await
            .unwrap()
            .id();
        self.catalog
            .files()
            .live_files(stream, FileFilter::default())
            .await
            .unwrap()
    }

    /// Every Parquet data file in the store, with its rows.
    pub fn parquet_files(&self) -> Vec<(std::path::PathBuf, Vec<RecordBatch>)> {
        self.files_where(|path| !is_rollup(path))
    }

    /// Every rollup file in the store, with its rows.
    pub fn rollup_files(&self) -> Vec<(std::path::PathBuf, Vec<RecordBatch>)> {
        self.files_where(is_rollup)
    }

    fn files_where(
        &self,
        wanted: impl Fn(&std::path::Path) -> bool,
    ) -> Vec<(std::path::PathBuf, Vec<RecordBatch>)> {
        let mut files = Vec::new();
        let mut pending = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "parquet") && wanted(&path) {
                    let bytes = Bytes::from(std::fs::read(&path).unwrap());
                    let batches =
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                            bytes,
                        )
                        .unwrap()
                        .build()
                        .unwrap()
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap();
                    files.push((path, batches));
                }
            }
        }
        files
    }
}

fn is_rollup(path: &std::path::Path) -> bool {
    path.components().any(|c| c.as_os_str() == "rollups")
}

/// (subject_id, source, time in ns, bpm)
pub type Reading = (i64, &'static str, i64, f64);

pub fn heart_rate(rows: &[Reading]) -> RecordBatch {
    RecordBatch::try_from_iter(vec![
        (
            "subject_id",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
        ),
        (
            "source",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))) as _,
        ),
        (
            "time",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.2),
            )) as _,
        ),
        (
            "bpm",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))) as _,
        ),
    ])
    .unwrap()
}

pub async fn readings(engine: &Engine, sql: &str) -> BTreeMap<(i64, String, i64), f64> {
    let output = engine.query("default", sql).await.unwrap();
    let mut readings = BTreeMap::new();
    for batch in &output.batches {
        let subject = batch.column(0).as_primitive::<Int64Type>();
        let source = batch.column(1).as_string::<i32>();
        let time = batch.column(2).as_primitive::<TimestampNanosecondType>();
        let bpm = batch.column(3).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let key = (subject.value(i), source.value(i).to_owned(), time.value(i));
            assert!(
                readings.insert(key.clone(), bpm.value(i)).is_none(),
                "the query returned {key:?} twice"
            );
        }
    }
    readings
}

pub async fn count(engine: &Engine, sql: &str) -> i64 {
    let output = engine.query("default", sql).await.unwrap();
    output.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

pub async fn explain(engine: &Engine, sql: &str) -> String {
    let output = engine
        .query("default", &format!("EXPLAIN {sql}"))
        .await
        .unwrap();
    let batch = &output.batches[0];
    let plans = batch.column(1).as_string::<i32>();
    (0..plans.len())
        .map(|i| plans.value(i))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A deterministic pseudo-random sequence (xorshift), so failures can be replayed.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(seed.max(1))
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn injected(operation: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected {operation} failure").into(),
    }
}

/// A store that fails or stalls on demand, around a real one.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    pub fail_puts: AtomicBool,
    /// Reads served (whole objects or ranges).
    pub reads: AtomicUsize,
    /// Uploads wait while all of its permits are taken (see `stall_uploads`).
    put_gate: Arc<Semaphore>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultyStore {
            inner,
            fail_puts: AtomicBool::new(false),
            reads: AtomicUsize::new(0),
            put_gate: Arc::new(Semaphore::new(GATE_PERMITS as usize)),
        }
    }

    /// Uploads wait until the returned permit is dropped.
    pub async fn stall_uploads(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.put_gate
            .clone()
            .acquire_many_owned(GATE_PERMITS)
            .await
            .unwrap()
    }
}

const GATE_PERMITS: u32 = 1_000;

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let _gate = self.put_gate.acquire().await;
        if self.fail_puts.load(SeqCst) {
            return Err(injected("put"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if self.fail_puts.load(SeqCst) {
            return Err(injected("put"));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.reads.fetch_add(1, SeqCst);
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.reads.fetch_add(1, SeqCst);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
