//! InfluxDB line protocol end to end: a gateway's file ingested into a real engine over a
//! SQLite catalog, the rows read back with SQL, the bad lines found in the quarantine with
//! their line numbers.

use std::{path::PathBuf, sync::Arc};

use arrow::util::pretty::pretty_format_batches;
use catalog::{BatchStatus, testing::TestDatabase};
use engine::{Engine, EngineConfig, Principal};
use ingest::{IngestOptions, Silent, formats::Format};
use object_store::local::LocalFileSystem;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/line_protocol/gateway.lp")
}

#[tokio::test]
async fn a_gateway_file_lands_with_its_bad_lines_quarantined() {
    let db = TestDatabase::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let engine = Engine::open(db.catalog().await, store, EngineConfig::default()).unwrap();
    let principal = Principal::operator(engine.organization("default").await.unwrap());
    let options = IngestOptions {
        format: "line-protocol:s".parse::<Format>().unwrap(),
        ..IngestOptions::default()
    };
    let report = ingest::ingest(&engine, &principal, &[fixture()], &options, &Silent)
        .await
        .unwrap();
    let totals = report.totals();
    assert_eq!(
        (totals.rows_in, totals.rows_accepted, totals.rejected()),
        (8, 5, 3)
    );
    assert_eq!(report.streams["skin_temp"].rows_in, 1, "{report:?}");

    let sql = "SELECT s.pseudonym, h.source, CAST(h.time AS VARCHAR) AS t, h.bpm \
               FROM heart_rate h JOIN meta.subjects s USING (subject_id) ORDER BY 1, 3";
    let text = pretty_format_batches(&engine.query("default", sql).await.unwrap().batches)
        .unwrap()
        .to_string();
    for expected in [
        "| S1        | polar h10 | 2026-03-01T06:00:00 | 58.0 |",
        "| S1        | polar h10 | 2026-03-01T06:01:00 | 61.5 |",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
    assert_eq!(text.matches("| S").count(), 2, "{text}");

    let sql = "SELECT meal, food_id, energy_kcal, source FROM meals";
    let text = pretty_format_batches(&engine.query("default", sql).await.unwrap().batches)
        .unwrap()
        .to_string();
    assert!(
        text.contains("| breakfast | off:3017620422003 | 162.3       | line-protocol |"),
        "tags feed key columns, the default source applies:\n{text}"
    );
    let sql = "SELECT count, CAST(end_time AS VARCHAR) AS e FROM steps";
    let text = pretty_format_batches(&engine.query("default", sql).await.unwrap().batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 120   | 2026-03-01T06:01:00 |"), "{text}");

    let catalog = engine.catalog();
    let batch = catalog.ingest().get_batch(report.batch).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Committed);
    assert_eq!(batch.format, "line-protocol");
    let quarantined = catalog
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    let seen: Vec<(Option<i64>, &str)> = quarantined
        .iter()
        .map(|q| (q.record, q.rule.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(Some(4), "range"), (Some(5), "parse"), (Some(8), "stream")]
    );
    assert!(
        quarantined[1]
            .reason
            .starts_with("line 5: field 'bpm': 'oops' is not a number"),
        "{}",
        quarantined[1].reason
    );
    assert!(quarantined[2].stream.is_none());
    assert!(quarantined[2].reason.contains("no stream 'skin_temp'"));
}
