//! The simulator's document formats round trip: the same seed simulated as CSV, as Apple
//! Health exports and as FHIR Bundles, each directory ingested into its own engine, gives the
//! same rows per subject in every stream the format carries (defects included: duplicates,
//! pounds, naive local times, unparseable and out-of-range values are cleaned the same way).

use std::{path::Path, sync::Arc};

use catalog::testing::TestDatabase;
use chrono::NaiveDate;
use engine::{Engine, EngineConfig, Principal};
use ingest::{
    IngestOptions, Silent,
    simulate::{SimulationFormat, SimulationOptions, simulate},
};
use object_store::local::LocalFileSystem;

/// Per subject: the rows of a stream and a sum over them that changes with any value.
const CHECKS: [(&str, &str); 6] = [
    ("heart_rate", "sum(bpm)"),
    ("steps", "sum(count)"),
    (
        "sleep",
        "sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) / 1000000000",
    ),
    (
        "body",
        "round(sum(weight_kg), 6) || '/' || coalesce(round(sum(fat_pct), 6), -1)",
    ),
    (
        "workouts",
        "coalesce(round(sum(distance_m), 3), -1) || '/' || coalesce(sum(avg_hr), -1)",
    ),
    ("meals", "sum(quantity_g)"),
];

/// The simulated data of `format`, ingested into a fresh engine: for each check, one line
/// per subject.
async fn ingested(format: SimulationFormat) -> Vec<(&'static str, Vec<String>)> {
    let options = SimulationOptions {
        subjects: 3,
        first_subject: 0,
        days: 4,
        seed: 7,
        start: NaiveDate::from_ymd_opt(2026, 3, 27).unwrap(),
        defects: true,
        format,
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    simulate(&options, &data).unwrap();

    let db = TestDatabase::sqlite().await;
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
    let engine = Engine::open(db.catalog().await, store, EngineConfig::default()).unwrap();
    let principal = Principal::operator(engine.organization("default").await.unwrap());
    let report = ingest::ingest(
        &engine,
        &principal,
        std::slice::from_ref(&data),
        &IngestOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    let failed: Vec<&str> = report
        .failed
        .iter()
        .map(|(file, _)| relative(file, &data))
        .collect();
    assert!(failed.is_empty(), "{format:?}: {:?}", report.failed);

    let mut seen = Vec::new();
    for (stream, sum) in CHECKS {
        let sql = format!(
            "SELECT s.pseudonym || ' ' || CAST(count(*) AS VARCHAR) || ' ' || CAST({sum} AS VARCHAR) \
             FROM {stream} JOIN meta.subjects s USING (subject_id) GROUP BY s.pseudonym"
        );
        let batches = engine.query("default", &sql).await.unwrap().batches;
        let mut lines = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                lines.push(
                    arrow::util::display::array_value_to_string(batch.column(0), row).unwrap(),
                );
            }
        }
        lines.sort();
        seen.push((stream, lines));
    }
    seen
}

fn relative<'a>(file: &'a str, dir: &Path) -> &'a str {
    let dir = dir.display().to_string();
    file.strip_prefix(&dir)
        .map(|f| f.trim_start_matches('/'))
        .unwrap_or(file)
}

#[tokio::test]
async fn simulated_documents_ingest_to_the_rows_of_the_csv() {
    let csv = ingested(SimulationFormat::Csv).await;
    for (stream, lines) in &csv {
        assert!(!lines.is_empty(), "{stream} has rows");
    }
    assert_eq!(csv[0].1.len(), 3, "every subject has heart rates");
    for (format, carried) in [
        (
            SimulationFormat::AppleHealth,
            &["heart_rate", "steps", "sleep", "body", "workouts"][..],
        ),
        (SimulationFormat::Fhir, &["heart_rate", "steps", "body"][..]),
    ] {
        let documents = ingested(format).await;
        for ((stream, expected), (_, got)) in csv.iter().zip(&documents) {
            if carried.contains(stream) {
                assert_eq!(
                    got, expected,
                    "{format:?} {stream}: per subject, rows and sum"
                );
            } else {
                assert!(got.is_empty(), "{format:?} carries no {stream}: {got:?}");
            }
        }
    }
}
