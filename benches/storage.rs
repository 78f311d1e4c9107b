//! Storage benchmarks: acknowledged write throughput for Arrow batches, scan throughput of a
//! stream, and what pruning by time and subject saves.
//!
//! `cargo bench --bench storage`; the embedded catalog and a local store in a temporary
//! directory, as `healthai` runs by default. See benches/README.md for the figures.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use catalog::CatalogUrl;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{Engine, EngineConfig};
use futures::{StreamExt, stream};
use object_store::local::LocalFileSystem;
use tokio::runtime::Runtime;

/// The allocator the `healthai` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MINUTE: i64 = 60_000_000_000;
/// 2026-03-01T00:00:00Z.
const START: i64 = 1_772_323_200_000_000_000;

struct Setup {
    _dir: tempfile::TempDir,
    engine: Engine,
    subjects: Vec<i64>,
}

async fn setup(subjects: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = CatalogUrl::sqlite(dir.path().join("catalog.db"));
    catalog::migrate(&url).await.unwrap();
    let catalog = catalog::open(&url).await.unwrap();
    let org = catalog.organizations().get("default").await.unwrap().id;
    let names: Vec<String> = (0..subjects).map(|i| format!("S{i:05}")).collect();
    let subjects = catalog
        .subjects()
        .ensure(org, &names)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id.0)
        .collect();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
    let engine = Engine::open(catalog, store, EngineConfig::default()).unwrap();
    Setup {
        _dir: dir,
        engine,
        subjects,
    }
}

/// One reading a minute per subject, `minutes` long from `start_minute`, in batches of one
/// subject's rows as a device uploads them.
fn heart_rate(subjects: &[i64], start_minute: i64, minutes: i64) -> Vec<RecordBatch> {
    subjects
        .iter()
        .map(|&subject| {
            let times = (start_minute..start_minute + minutes).map(|m| START + m * MINUTE);
            RecordBatch::try_from_iter(vec![
                (
                    "subject_id",
                    Arc::new(Int64Array::from(vec![subject; minutes as usize])) as _,
                ),
                (
                    "source",
                    Arc::new(StringArray::from(vec!["watch"; minutes as usize])) as _,
                ),
                (
                    "time",
                    Arc::new(TimestampNanosecondArray::from_iter_values(times)) as _,
                ),
                (
                    "bpm",
                    Arc::new(Float64Array::from_iter_values(
                        (start_minute..start_minute + minutes)
                            .map(|m| 55.0 + ((m * 7 + subject) % 60) as f64),
                    )) as _,
                ),
            ])
            .unwrap()
        })
        .collect()
}

async fn write_all(engine: &Engine, batches: Vec<RecordBatch>) {
    stream::iter(batches)
        .map(|batch| engine.write("default", "heart_rate", batch, None))
        .buffer_unordered(256)
        .for_each(|written| async move {
            written.unwrap();
        })
        .await;
}

fn write_throughput(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let setup = runtime.block_on(setup(200));
    // 200 subjects × 10 000 minutes = 2 M rows per iteration, in 200 batches of 10 000.
    let minutes = 10_000;
    let rows = (setup.subjects.len() as i64 * minutes) as u64;
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut round = 0;
    group.bench_function("heart_rate_acknowledged", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                // New times every round, as fresh data arrives.
                let batches = heart_rate(&setup.subjects, round * minutes, minutes);
                round += 1;
                let start = Instant::now();
                runtime.block_on(write_all(&setup.engine, batches));
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.finish();
}

fn scan_and_pruning(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let setup = runtime.block_on(setup(100));
    // 100 subjects × 30 days of one reading a minute: 4.32 M rows, compacted.
    let days = 30;
    let rows = (setup.subjects.len() as i64 * days * 1440) as u64;
    runtime.block_on(async {
        for day in 0..days {
            write_all(&setup.engine, heart_rate(&setup.subjects, day * 1440, 1440)).await;
        }
        setup.engine.compact(2).await.unwrap();
    });
    let query = |sql: String| {
        let engine = setup.engine.clone();
        let runtime = &runtime;
        move || runtime.block_on(async { engine.query("default", &sql).await.unwrap() })
    };

    let mut scans = c.benchmark_group("scan");
    scans.throughput(Throughput::Elements(rows));
    scans.sample_size(10);
    for (name, sql) in [
        ("avg_bpm", "SELECT avg(bpm) FROM heart_rate"),
        (
            "max_bpm_per_subject",
            "SELECT subject_id, max(bpm) FROM heart_rate GROUP BY subject_id",
        ),
        (
            "hourly_avg_per_subject",
            "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, avg(bpm) FROM heart_rate GROUP BY 1, 2",
        ),
    ] {
        let run = query(sql.to_owned());
        scans.bench_function(name, |b| b.iter(&run));
    }
    scans.finish();

    // One subject, one hour: with bounds the catalog and the Parquet statistics can prune,
    // and the same rows asked for in a way nothing can prune.
    let subject = setup.subjects[42];
    let mut pruning = c.benchmark_group("pruning");
    pruning.sample_size(20);
    for (name, predicate) in [
        (
            "pruned",
            format!(
                "subject_id = {subject} AND time >= TIMESTAMP '2026-03-15T10:00:00' AND time < TIMESTAMP '2026-03-15T11:00:00'"
            ),
        ),
        (
            "unprunable",
            format!(
                "subject_id + 0 = {subject} AND CAST(time AS VARCHAR) >= '2026-03-15T10:00:00' AND CAST(time AS VARCHAR) < '2026-03-15T11:00:00'"
            ),
        ),
    ] {
        let run = query(format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) FROM heart_rate WHERE {predicate} GROUP BY 1"
        ));
        assert_eq!(run().num_rows(), 60, "{name}");
        pruning.bench_function(BenchmarkId::new("one_subject_one_hour", name), |b| {
            b.iter(&run)
        });
    }
    pruning.finish();
}

criterion_group!(benches, write_throughput, scan_and_pruning);
criterion_main!(benches);
