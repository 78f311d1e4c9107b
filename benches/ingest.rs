//! Ingest benchmarks: a heart-rate CSV file and the same rows as NDJSON, parsed, cleaned (all
//! rules on) and written until the engine acknowledged them, as `healthai ingest` does.
//!
//! `cargo bench --bench ingest`; the embedded catalog and a local store in a temporary
//! directory. See benches/README.md for the figures and the DuckDB comparison.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use catalog::CatalogUrl;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::{Engine, EngineConfig, Principal};
use ingest::{IngestOptions, Silent};
use object_store::local::LocalFileSystem;
use tokio::runtime::Runtime;

/// Subjects × minutes of one reading a minute: 1 M rows.
const SUBJECTS: usize = 100;
const MINUTES: usize = 10_000;

struct Setup {
    dir: tempfile::TempDir,
    engine: Engine,
    principal: Principal,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = CatalogUrl::sqlite(dir.path().join("catalog.db"));
    catalog::migrate(&url).await.unwrap();
    let catalog = catalog::open(&url).await.unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
    let engine = Engine::open(catalog, store, EngineConfig::default()).unwrap();
    let principal = Principal::operator(engine.organization("default").await.unwrap());
    Setup {
        dir,
        engine,
        principal,
    }
}

/// The file `healthai simulate` would write for heart rate, without defects: RFC 3339 times.
fn write_files(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let csv_path = dir.join("heart_rate.csv");
    let ndjson_path = dir.join("heart_rate.ndjson");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
    let mut ndjson = std::io::BufWriter::new(std::fs::File::create(&ndjson_path).unwrap());
    writeln!(csv, "subject,source,time,bpm").unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap();
    for subject in 0..SUBJECTS {
        for minute in 0..MINUTES {
            let time =
                (start + chrono::Duration::minutes(minute as i64)).format("%Y-%m-%dT%H:%M:%SZ");
            let bpm = 55 + (minute * 7 + subject) % 60;
            writeln!(csv, "S{subject:04},watch,{time},{bpm}").unwrap();
            writeln!(
                ndjson,
                r#"{{"subject":"S{subject:04}","source":"watch","time":"{time}","bpm":{bpm}}}"#
            )
            .unwrap();
        }
    }
    (csv_path, ndjson_path)
}

fn ingest_files(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let setup = runtime.block_on(setup());
    let (csv, ndjson) = write_files(setup.dir.path());
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements((SUBJECTS * MINUTES) as u64));
    for (name, path) in [("csv_heart_rate_1M", csv), ("ndjson_heart_rate_1M", ndjson)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let report = ingest::ingest(
                        &setup.engine,
                        &setup.principal,
                        std::slice::from_ref(&path),
                        &IngestOptions::default(),
                        &Silent,
                    )
                    .await
                    .unwrap();
                    assert_eq!(report.totals().rows_accepted, (SUBJECTS * MINUTES) as u64);
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_files);
criterion_main!(benches);
