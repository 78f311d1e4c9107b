//! GPX and TCX files end to end: the fixtures under `tests/fixtures/gpx` and `tcx` ingested
//! into a real engine over a SQLite catalog and a local object store, the rows read back with
//! SQL, the quarantine and failures from the batch.

mod support;

use support::Harness;

use std::path::{Path, PathBuf};

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::{Float64Type, Int64Type},
};
use ingest::{IngestOptions, IngestReport, Silent};

impl Harness {
    async fn ingest(&self, paths: &[PathBuf]) -> IngestReport {
        let options = IngestOptions {
            subject: Some("R1".into()),
            ..IngestOptions::default()
        };
        ingest::ingest(&self.engine, &self.principal, paths, &options, &Silent)
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &str) -> Vec<RecordBatch> {
        self.engine.query("default", sql).await.unwrap().batches
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql).await[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }

    /// The first column of a query, as numbers (`NaN` for null).
    async fn numbers(&self, sql: &str) -> Vec<f64> {
        self.rows(sql)
            .await
            .iter()
            .flat_map(|b| {
                let column = b.column(0).as_primitive::<Float64Type>();
                (0..column.len())
                    .map(|i| {
                        if column.is_null(i) {
                            f64::NAN
                        } else {
                            column.value(i)
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The first row of a query, as text.
    async fn row(&self, sql: &str) -> Vec<String> {
        let rows = self.rows(sql).await;
        let batch = &rows[0];
        batch
            .columns()
            .iter()
            .map(|c| {
                arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                    .unwrap()
                    .value(0)
                    .to_string()
            })
            .collect()
    }
}

fn fixtures(format: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format)
}

fn fixture_text(format: &str, name: &str) -> String {
    std::fs::read_to_string(fixtures(format).join(name)).unwrap()
}

/// A coordinate as the file wrote it, read as a double.
fn degrees(text: &str) -> f64 {
    text.parse().unwrap()
}

fn within_one_percent(found: f64, expected: f64) -> bool {
    (found - expected).abs() <= expected * 0.01
}

#[tokio::test]
async fn gpx_and_tcx_files_land_in_activity_samples_and_workouts() {
    let h = Harness::new().await;
    let report = h.ingest(&[fixtures("gpx"), fixtures("tcx")]).await;
    assert_eq!(report.files, 6);

    // The broken files: named with the byte where they break, nothing of them stored.
    let mut failed = report.failed.clone();
    failed.sort();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let truncated = fixture_text("gpx", "truncated.gpx");
    assert!(failed[0].0.ends_with("gpx/truncated.gpx"), "{failed:?}");
    assert!(
        failed[0].1.starts_with(&format!(
            "not a readable GPX file at byte {}: ",
            truncated.rfind('<').unwrap()
        )),
        "{failed:?}"
    );
    let malformed = fixture_text("tcx", "malformed.tcx");
    assert!(failed[1].0.ends_with("tcx/malformed.tcx"), "{failed:?}");
    assert!(
        failed[1].1.starts_with(&format!(
            "not a readable TCX file at byte {}: ",
            malformed.rfind("</Trackpoint>").unwrap()
        )),
        "{failed:?}"
    );
    for stream in ["activity_samples", "workouts"] {
        assert_eq!(
            h.count(&format!(
                "SELECT count(*) FROM {stream} WHERE time >= '2026-03-05' AND time < '2026-03-06'"
            ))
            .await,
            0,
            "{stream}: nothing of the broken files"
        );
    }

    // Samples, by source: one GPSLogger point has no time.
    let counts = h
        .rows("SELECT source, count(*) AS n FROM activity_samples GROUP BY source ORDER BY source")
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&counts)
        .unwrap()
        .to_string();
    for expected in [
        "| Forerunner 965                                | 12 |",
        "| GPSLogger 131 - http://gpslogger.mendhak.com/ | 7  |",
        "| Garmin Connect                                | 20 |",
        "| StravaGPX                                     | 15 |",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 100)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(quarantined[0].file.ends_with("gpx/missing_time.gpx"));
    assert_eq!(quarantined[0].record, Some(4));
    assert_eq!(quarantined[0].column.as_deref(), Some("time"));
    assert_eq!(quarantined[0].rule, "required");
    assert_eq!(
        report.streams["activity_samples"].rules[&("time".to_owned(), "required")].rejected,
        1,
        "the quality report counts it"
    );

    // Garmin Connect: coordinates exact, TrackPointExtension heart rate and cadence.
    let first = h
        .rows(
            "SELECT lat, lon, altitude_m, heart_rate, cadence, distance_m FROM activity_samples \
             WHERE source = 'Garmin Connect' ORDER BY time LIMIT 1",
        )
        .await;
    let value = |i: usize| first[0].column(i).as_primitive::<Float64Type>().value(0);
    assert_eq!(value(0), degrees("48.84622997604310512542724609375"));
    assert_eq!(value(1), degrees("2.3371200263500213623046875"));
    assert_eq!(value(2), degrees("46.200000762939453125"));
    assert_eq!((value(3), value(4), value(5)), (124.0, 82.0, 0.0));
    assert_eq!(
        h.numbers(
            "SELECT heart_rate FROM activity_samples WHERE source = 'Garmin Connect' ORDER BY time"
        )
        .await[..5],
        [124.0, 127.0, 130.0, 132.0, 135.0]
    );

    // Strava: power beside TrackPointExtension values; no speed given, none stored.
    assert_eq!(
        h.row(
            "SELECT lat, lon, power_w, heart_rate, cadence, speed_m_s FROM activity_samples \
             WHERE source = 'StravaGPX' AND time = '2026-03-02T14:00:03'"
        )
        .await,
        ["45.1886233", "5.7247353", "238.0", "121.0", "84.0", ""]
    );
    assert_eq!(
        h.numbers("SELECT power_w FROM activity_samples WHERE source = 'StravaGPX' ORDER BY time")
            .await[..4],
        [0.0, 186.0, 214.0, 238.0]
    );

    // TCX: position, distance, heart rate and the TPX extension.
    assert_eq!(
        h.row(
            "SELECT lat, lon, altitude_m, distance_m, heart_rate, cadence, speed_m_s, power_w \
             FROM activity_samples WHERE source = 'Forerunner 965' ORDER BY time DESC LIMIT 1"
        )
        .await,
        [
            "51.5041448",
            "-0.1246254",
            "13.0",
            "379.8",
            "163.0",
            "91.0",
            "3.62",
            "289.0"
        ]
    );

    // Workouts: one per track and per activity.
    let workouts = h
        .rows(
            "SELECT source, sport, CAST(time AS VARCHAR) AS t, CAST(end_time AS VARCHAR) AS e, \
             distance_m, energy_kcal, avg_hr, max_hr FROM workouts ORDER BY time",
        )
        .await;
    let batch = &workouts[0];
    assert_eq!(batch.num_rows(), 4);
    let text = |column: usize, row: usize| batch.column(column).as_string::<i32>().value(row);
    let number = |column: usize, row: usize| {
        let values = batch.column(column).as_primitive::<Float64Type>();
        (!values.is_null(row)).then(|| values.value(row))
    };
    let expected = [
        // source, sport, start, end, length on the WGS 84 ellipsoid (Vincenty)
        (
            "Garmin Connect",
            "run",
            "2026-03-01T06:30:00",
            "2026-03-01T06:31:35",
            296.382,
        ),
        (
            "StravaGPX",
            "ride",
            "2026-03-02T14:00:00",
            "2026-03-02T14:00:14",
            109.489,
        ),
        (
            "Forerunner 965",
            "run",
            "2026-03-03T07:15:00",
            "2026-03-03T07:16:50",
            380.0,
        ),
        (
            "GPSLogger 131 - http://gpslogger.mendhak.com/",
            "other",
            "2026-03-04T08:00:00",
            "2026-03-04T08:01:10",
            98.102,
        ),
    ];
    for (row, (source, sport, start, end, metres)) in expected.into_iter().enumerate() {
        assert_eq!(
            (text(0, row), text(1, row), text(2, row), text(3, row)),
            (source, sport, start, end)
        );
        let distance = number(4, row).unwrap();
        assert!(
            within_one_percent(distance, metres),
            "{source}: {distance} m, expected {metres} m"
        );
    }
    // Heart rates: the mean and maximum of the points, or of the laps weighted by time.
    let garmin_mean = [
        124.0, 127.0, 130.0, 132.0, 135.0, 137.0, 139.0, 140.0, 142.0, 143.0, 144.0, 146.0, 147.0,
        148.0, 149.0, 150.0, 151.0, 152.0, 151.0, 150.0,
    ]
    .iter()
    .sum::<f64>()
        / 20.0;
    assert!((number(6, 0).unwrap() - garmin_mean).abs() < 0.051);
    assert_eq!(number(7, 0), Some(152.0));
    assert_eq!(number(7, 1), Some(134.0));
    assert_eq!(
        (number(5, 2), number(6, 2), number(7, 2)),
        (Some(26.0), Some(147.9), Some(163.0))
    );
    assert_eq!((number(6, 3), number(7, 3)), (None, None));
    assert_eq!(number(5, 0), None, "GPX gives no energy");

    // The same files again change nothing.
    let before = h.count("SELECT count(*) FROM activity_samples").await;
    let again = h.ingest(&[fixtures("gpx"), fixtures("tcx")]).await;
    assert_eq!(again.failed.len(), 2);
    assert_eq!(
        h.count("SELECT count(*) FROM activity_samples").await,
        before
    );
    assert_eq!(h.count("SELECT count(*) FROM workouts").await, 4);
}

const EXPORT_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="2026-03-08 10:00:00 +0100"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="1" durationUnit="min" sourceName="Ana's Apple Watch" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:01:00 +0100">
  <WorkoutRoute sourceName="Ana's Apple Watch" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:01:00 +0100">
   <FileReference path="/workout-routes/route_2026-03-01_6.01pm.gpx"/>
  </WorkoutRoute>
 </Workout>
</HealthData>
"#;

const ROUTE_GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Apple Health Export" xmlns="http://www.topografix.com/GPX/1/1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">
  <metadata>
    <time>2026-03-08T09:00:00Z</time>
  </metadata>
  <trk>
    <name>Route 2026-03-01 6:01pm</name>
    <trkseg>
      <trkpt lon="2.352222" lat="48.856614"><ele>35.2</ele><time>2026-03-01T17:00:00Z</time><extensions><speed>2.91</speed><course>84.2</course><hAcc>4.9</hAcc><vAcc>3.1</vAcc></extensions></trkpt>
      <trkpt lon="2.352622" lat="48.856634"><ele>35.4</ele><time>2026-03-01T17:00:10Z</time><extensions><speed>2.95</speed><course>84.0</course><hAcc>4.7</hAcc><vAcc>3.0</vAcc></extensions></trkpt>
    </trkseg>
  </trk>
</gpx>
"#;

#[tokio::test]
async fn apple_health_routes_add_samples_but_no_second_workout() {
    let h = Harness::new().await;
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, content) in [
        ("apple_health_export/export.xml", EXPORT_XML),
        (
            "apple_health_export/workout-routes/route_2026-03-01_6.01pm.gpx",
            ROUTE_GPX,
        ),
    ] {
        archive.start_file(name, options).unwrap();
        std::io::Write::write_all(&mut archive, content.as_bytes()).unwrap();
    }
    let path = h.dir.path().join("export.zip");
    std::fs::write(&path, archive.finish().unwrap().into_inner()).unwrap();

    let report = h.ingest(&[path]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        h.row("SELECT source, sport, count(*) OVER () FROM workouts")
            .await,
        ["Ana's Apple Watch", "run", "1"]
    );
    assert_eq!(
        h.row(
            "SELECT source, lat, lon, speed_m_s, count(*) OVER () FROM activity_samples ORDER BY time"
        )
        .await,
        ["Apple Health Export", "48.856614", "2.352222", "2.91", "2"]
    );
}
