//! Garmin FIT files end to end: the fixtures of `tests/fixtures/fit/` (written by the
//! reader's test encoder) ingested into a real engine over a SQLite catalog and a local
//! object store, the rows read back with SQL.

mod support;

use support::Harness;

use std::path::PathBuf;

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::{Float64Type, Int64Type},
};
use ingest::{IngestOptions, IngestReport, Silent};

impl Harness {
    async fn ingest(&self, paths: &[PathBuf]) -> IngestReport {
        let options = IngestOptions {
            subject: Some("G1".into()),
            ..IngestOptions::default()
        };
        ingest::ingest(&self.engine, &self.principal, paths, &options, &Silent)
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &str) -> RecordBatch {
        let batches = self.engine.query("default", sql).await.unwrap().batches;
        let schema = batches[0].schema();
        arrow::compute::concat_batches(&schema, &batches).unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql)
            .await
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fit")
}

fn texts(batch: &RecordBatch, column: usize) -> Vec<Option<String>> {
    batch
        .column(column)
        .as_string::<i32>()
        .iter()
        .map(|t| t.map(str::to_owned))
        .collect()
}

fn numbers(batch: &RecordBatch, column: usize) -> Vec<Option<f64>> {
    batch
        .column(column)
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn close(actual: &[Option<f64>], expected: &[Option<f64>], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{actual:?}");
    for (a, e) in actual.iter().zip(expected) {
        match (a, e) {
            (Some(a), Some(e)) => assert!((a - e).abs() <= tolerance, "{a} vs {e}: {actual:?}"),
            _ => assert_eq!(a, e, "{actual:?}"),
        }
    }
}

#[tokio::test]
async fn fit_files_land_in_their_streams_and_broken_ones_leave_nothing() {
    let h = Harness::new().await;
    let report = h.ingest(&[fixtures()]).await;

    let mut failed = report.failed.clone();
    failed.sort();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].0.ends_with("corrupt_crc.fit"), "{failed:?}");
    assert!(
        failed[0]
            .1
            .starts_with("not a readable FIT file at byte 280: the file CRC is"),
        "{failed:?}"
    );
    assert!(failed[1].0.ends_with("truncated.fit"), "{failed:?}");
    assert!(
        failed[1].1.contains("at byte 188: the file was cut short"),
        "{failed:?}"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM activity_samples WHERE time >= '2026-03-05'")
            .await
            + h.count("SELECT count(*) FROM workouts WHERE time >= '2026-03-05'")
                .await,
        0,
        "nothing of the damaged run (2026-03-05) is stored"
    );
    assert_eq!(report.totals().rejected(), 0, "{:?}", report.rejections);

    let samples = h
        .rows(
            "SELECT s.pseudonym, a.source, CAST(a.time AS VARCHAR) AS t, a.lat, a.lon, \
             a.altitude_m, a.heart_rate, a.power_w, a.cadence \
             FROM activity_samples a JOIN meta.subjects s USING (subject_id) ORDER BY a.time",
        )
        .await;
    assert_eq!(samples.num_rows(), 8);
    assert!(
        texts(&samples, 0)
            .iter()
            .all(|s| s.as_deref() == Some("G1"))
    );
    assert_eq!(
        texts(&samples, 1),
        [
            "garmin fenix 7",
            "garmin fenix 7",
            "garmin fenix 7",
            "garmin fenix 7",
            "garmin fenix 7",
            "garmin fenix 7",
            "wahoo elemnt bolt",
            "wahoo elemnt bolt"
        ]
        .map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        texts(&samples, 2)[0].as_deref(),
        Some("2026-03-01T07:00:00")
    );
    assert_eq!(
        texts(&samples, 2)[6].as_deref(),
        Some("2026-03-02T16:30:00")
    );
    close(
        &numbers(&samples, 3),
        &[
            Some(48.8566),
            Some(48.85665),
            None,
            Some(48.8567),
            Some(48.85675),
            Some(48.8568),
            Some(37.7749),
            Some(37.77495),
        ],
        1e-6,
    );
    close(
        &numbers(&samples, 4),
        &[
            Some(2.3522),
            Some(2.35225),
            None,
            Some(2.3523),
            Some(2.35235),
            Some(2.3524),
            Some(-122.4194),
            Some(-122.41945),
        ],
        1e-6,
    );
    close(
        &numbers(&samples, 5),
        &[
            Some(35.0),
            Some(35.2),
            None,
            None,
            None,
            Some(36.4),
            Some(16.0),
            Some(16.4),
        ],
        1e-9,
    );
    assert_eq!(
        numbers(&samples, 6),
        [
            Some(120.0),
            Some(122.0),
            None,
            Some(125.0),
            Some(126.0),
            Some(128.0),
            Some(131.0),
            Some(133.0)
        ],
        "invalid values stay NULL"
    );
    assert_eq!(
        numbers(&samples, 7),
        [
            Some(210.0),
            None,
            Some(230.0),
            None,
            None,
            Some(240.0),
            Some(250.0),
            None
        ]
    );
    assert_eq!(numbers(&samples, 8)[5], Some(85.5));

    let workouts = h
        .rows(
            "SELECT source, sport, CAST(time AS VARCHAR) AS t, CAST(end_time AS VARCHAR) AS e, \
             distance_m, energy_kcal, avg_hr, max_hr FROM workouts ORDER BY time",
        )
        .await;
    assert_eq!(workouts.num_rows(), 2);
    assert_eq!(
        texts(&workouts, 1),
        [Some("run".to_owned()), Some("ride".to_owned())]
    );
    assert_eq!(
        texts(&workouts, 2),
        [
            Some("2026-03-01T07:00:00".to_owned()),
            Some("2026-03-02T16:30:00".to_owned())
        ]
    );
    assert_eq!(
        texts(&workouts, 3),
        [
            Some("2026-03-01T07:30:25.500".to_owned()),
            Some("2026-03-02T17:30:00".to_owned())
        ]
    );
    close(
        &numbers(&workouts, 4),
        &[Some(5123.4), Some(30123.45)],
        1e-9,
    );
    assert_eq!(numbers(&workouts, 5), [Some(412.0), Some(980.0)]);
    assert_eq!(numbers(&workouts, 6), [Some(148.0), Some(141.0)]);
    assert_eq!(numbers(&workouts, 7), [Some(171.0), Some(168.0)]);

    let steps = h
        .rows(
            "SELECT source, CAST(time AS VARCHAR) AS t, CAST(end_time AS VARCHAR) AS e, count \
             FROM steps ORDER BY time",
        )
        .await;
    assert_eq!(texts(&steps, 0), vec![Some("garmin fenix 7".to_owned()); 3]);
    assert_eq!(
        texts(&steps, 1),
        ["14:00", "14:15", "14:30"].map(|t| Some(format!("2026-03-01T{t}:00")))
    );
    assert_eq!(
        texts(&steps, 2),
        ["14:15", "14:30", "14:45"].map(|t| Some(format!("2026-03-01T{t}:00")))
    );
    let counts: Vec<Option<i64>> = steps.column(3).as_primitive::<Int64Type>().iter().collect();
    assert_eq!(counts, [Some(600), Some(3100), Some(120)]);

    let heart_rate = h
        .rows("SELECT CAST(time AS VARCHAR) AS t, bpm FROM heart_rate ORDER BY time")
        .await;
    assert_eq!(
        texts(&heart_rate, 0),
        ["14:00:20", "14:00:40", "14:01:00", "14:20:00", "14:25:00"]
            .map(|t| Some(format!("2026-03-01T{t}")))
    );
    assert_eq!(
        numbers(&heart_rate, 1),
        [Some(66.0), Some(67.0), Some(64.0), Some(71.0), Some(88.0)]
    );

    let body = h
        .rows("SELECT source, weight_kg, fat_pct, bmi FROM body ORDER BY time")
        .await;
    assert_eq!(
        texts(&body, 0),
        vec![Some("garmin index smart scale".to_owned()); 3]
    );
    close(&numbers(&body, 1), &[Some(75.3), None, Some(74.8)], 1e-9);
    close(&numbers(&body, 2), &[Some(22.15), Some(22.1), None], 1e-9);
    close(&numbers(&body, 3), &[Some(23.6), None, None], 1e-9);
    assert!(
        body.column(1).is_null(1),
        "a weight still calculating is NULL"
    );
}

#[tokio::test]
async fn re_ingesting_fit_files_changes_nothing() {
    let h = Harness::new().await;
    let files = [
        fixtures().join("monitoring.fit"),
        fixtures().join("activity.fit"),
    ];
    h.ingest(&files).await;
    let sql = "SELECT (SELECT count(*) FROM steps) + (SELECT count(*) FROM heart_rate) \
               + (SELECT count(*) FROM activity_samples) + (SELECT count(*) FROM workouts)";
    let before = h.count(sql).await;
    assert_eq!(before, 3 + 5 + 6 + 1);
    let again = h.ingest(&files).await;
    assert_eq!(again.totals().rows_accepted, 15);
    assert_eq!(h.count(sql).await, before);
}
