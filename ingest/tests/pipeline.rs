//! Ingest batches end to end: files on disk, a real engine over a SQLite catalog and a local
//! object store, the rows read back with SQL and the batch, quality reports and quarantine
//! read back from the catalog.

mod support;

use support::Harness;

use std::path::PathBuf;

use arrow::array::{AsArray, RecordBatch};
use catalog::{BatchStatus, SubjectProfile};
use ingest::{IngestOptions, IngestReport, Silent};

impl Harness {
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    async fn ingest(&self, paths: &[PathBuf], options: IngestOptions) -> IngestReport {
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
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    }
}

const HEART_RATE: &str = "\
subject,source,time,bpm
S1,watch,2026-03-01T06:00:00Z,58
S1,watch,2026-03-01T06:01:00Z,300
S1,watch,2026-03-01T06:01:00Z,61
S1,watch,2026-03-01T06:01:00Z,62
S2,watch,2026-03-01T07:02:00Z,--
S2,watch,not-a-time,70
,watch,2026-03-01T06:03:00Z,70
S2,,2026-03-01T07:05:00+01:00,71
";

#[tokio::test]
async fn bad_rows_are_quarantined_and_their_neighbours_land() {
    let h = Harness::new().await;
    let file = h.file("heart_rate.csv", HEART_RATE);
    let report = h
        .ingest(std::slice::from_ref(&file), IngestOptions::default())
        .await;
    let totals = report.totals();
    assert_eq!(
        (
            totals.rows_in,
            totals.rows_accepted,
            totals.rejected(),
            totals.duplicates()
        ),
        (8, 3, 4, 1)
    );

    let rows = h
        .rows("SELECT s.pseudonym, h.source, CAST(h.time AS VARCHAR) AS t, h.bpm FROM heart_rate h JOIN meta.subjects s USING (subject_id) ORDER BY 1, 3")
        .await;
    let text = arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    for expected in [
        "| S1        | watch  | 2026-03-01T06:00:00 | 58.0 |",
        "| S1        | watch  | 2026-03-01T06:01:00 | 62.0 |",
        "| S2        | csv    | 2026-03-01T06:05:00 | 71.0 |",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }

    let catalog = h.engine.catalog();
    let batch = catalog.ingest().get_batch(report.batch).await.unwrap();
    assert_eq!(batch.status, BatchStatus::Committed);
    assert_eq!(
        (
            batch.counts.rows_in,
            batch.counts.rows_accepted,
            batch.counts.rows_rejected
        ),
        (8, 3, 4)
    );
    let quarantined = catalog
        .ingest()
        .quarantined(report.batch, 100)
        .await
        .unwrap();
    let seen: Vec<(Option<i64>, Option<&str>, &str)> = quarantined
        .iter()
        .map(|q| (q.record, q.column.as_deref(), q.rule.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some(3), Some("bpm"), "range"),
            (Some(6), Some("bpm"), "type"),
            (Some(7), Some("time"), "time"),
            (Some(8), Some("subject"), "subject"),
        ]
    );
    assert!(
        quarantined
            .iter()
            .all(|q| q.file.ends_with("heart_rate.csv"))
    );
    assert_eq!(quarantined[1].value.as_deref(), Some("--"));

    let reports = catalog
        .ingest()
        .quality_reports(report.batch)
        .await
        .unwrap();
    let rule = |column: &str, rule: &str| {
        reports
            .iter()
            .find(|r| r.column == column && r.rule == rule)
            .unwrap_or_else(|| panic!("no report for {column} {rule}: {reports:?}"))
    };
    assert_eq!(rule("bpm", "range").rows_rejected, 1);
    assert_eq!(rule("*", "duplicate").rows_corrected, 1);
    assert_eq!(rule("source", "default").rows_corrected, 1);
    assert_eq!(rule("bpm", "completeness").completeness, Some(1.0));
    let system = h
        .count(&format!(
            "SELECT count(*) FROM system.quality_reports WHERE batch_id = {}",
            report.batch
        ))
        .await;
    assert_eq!(system as usize, reports.len());
}

#[tokio::test]
async fn re_ingesting_a_file_changes_nothing() {
    let h = Harness::new().await;
    let file = h.file("heart_rate.csv", HEART_RATE);
    h.ingest(std::slice::from_ref(&file), IngestOptions::default())
        .await;
    let before = h
        .rows("SELECT * FROM heart_rate ORDER BY subject_id, time")
        .await;
    let second = h
        .ingest(std::slice::from_ref(&file), IngestOptions::default())
        .await;
    assert_eq!(second.totals().rows_accepted, 3);
    let after = h
        .rows("SELECT * FROM heart_rate ORDER BY subject_id, time")
        .await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn units_and_local_times_become_canonical() {
    let h = Harness::new().await;
    let catalog = h.engine.catalog();
    let org = catalog.organizations().get("default").await.unwrap().id;
    let paris = catalog
        .subjects()
        .create(
            org,
            "P1",
            SubjectProfile {
                timezone: "Europe/Paris".into(),
                ..SubjectProfile::default()
            },
        )
        .await
        .unwrap();
    let body = h.file(
        "body.csv",
        "subject,time,weight_kg,weight_kg_unit\n\
         P1,2026-01-15 08:00,80,\n\
         P1,2026-07-15 08:00,176.37,lb\n\
         P1,2026-03-29 02:30,80,kg\n\
         P1,2026-03-30 08:00,12.6,stone-ish\n",
    );
    let glucose = h.file(
        "glucose-week.csv",
        "subject,time,mmol_l[mg/dL]\nP1,2026-03-01T06:00:00Z,90\n",
    );
    let report = h.ingest(&[body, glucose], IngestOptions::default()).await;
    assert_eq!(report.streams["body"].rows_accepted, 3);
    assert_eq!(
        report.streams["body"].rules[&("time".to_owned(), "timezone")].corrected,
        4
    );
    assert_eq!(
        report.streams["body"].rules[&("time".to_owned(), "timezone")].flagged,
        1,
        "the skipped hour"
    );
    assert_eq!(
        report.streams["body"].rules[&("weight_kg".to_owned(), "unit")].corrected,
        1
    );
    let rows = h
        .rows(&format!("SELECT CAST(time AS VARCHAR) AS t, round(weight_kg, 2) AS w FROM body WHERE subject_id = {} ORDER BY time", paris.id.0))
        .await;
    let times: Vec<&str> = rows[0]
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(
        times,
        [
            "2026-01-15T07:00:00",
            "2026-03-29T01:30:00",
            "2026-07-15T06:00:00"
        ]
    );
    let weights: Vec<f64> = rows[0]
        .column(1)
        .as_primitive::<arrow::datatypes::Float64Type>()
        .values()
        .to_vec();
    assert_eq!(weights, [80.0, 80.0, 80.0]);
    let glucose = h.rows("SELECT round(mmol_l, 3) FROM glucose").await;
    assert_eq!(
        glucose[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0),
        4.996
    );
}

#[tokio::test]
async fn a_broken_file_writes_nothing_and_the_others_land() {
    let h = Harness::new().await;
    let mut broken = String::from("subject,time,bpm\n");
    for minute in 0..100 {
        broken.push_str(&format!("S1,2026-03-01T06:{:02}:00Z,60\n", minute % 60));
    }
    broken.push_str("S1,2026-03-01T08:00:00Z,60,unexpected\n");
    let broken = h.file("heart_rate-broken.csv", &broken);
    let good = h.file("steps.ndjson", "{\"subject\":\"S1\",\"time\":\"2026-03-01T06:00:00Z\",\"end_time\":\"2026-03-01T06:15:00Z\",\"count\":900}\n{\"subject\":\"S1\",\"time\":\"2026-03-01T06:15:00Z\",\"end_time\":\"2026-03-01T06:16:00Z\",\"count\":1000}\n");
    let report = h.ingest(&[broken, good], IngestOptions::default()).await;
    assert_eq!(report.failed.len(), 1);
    let (file, problem) = &report.failed[0];
    assert!(file.ends_with("heart_rate-broken.csv"), "{file}");
    assert!(
        problem.contains("line") || problem.contains("record"),
        "the position is named: {problem}"
    );
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 0);
    assert_eq!(
        h.count("SELECT count(*) FROM steps").await,
        1,
        "1000 steps in a minute is refused"
    );
    assert_eq!(
        report.streams["steps"].rules[&("count".to_owned(), "rate")].rejected,
        1
    );
}

#[tokio::test]
async fn files_without_subjects_take_the_one_given() {
    let h = Harness::new().await;
    let file = h.file(
        "export.csv",
        "timestamp,heart_rate\n2026-03-01T06:00:00Z,61\n",
    );
    let mut options = IngestOptions {
        stream: Some("heart_rate".into()),
        subject: Some("S7".into()),
        source: Some("strap".into()),
        ..IngestOptions::default()
    };
    options
        .map
        .renames
        .insert("heart_rate".into(), "bpm".into());
    h.ingest(&[file], options).await;
    let rows = h.rows("SELECT s.pseudonym, h.source, h.bpm FROM heart_rate h JOIN meta.subjects s USING (subject_id)").await;
    assert_eq!(rows[0].column(0).as_string::<i32>().value(0), "S7");
    assert_eq!(rows[0].column(1).as_string::<i32>().value(0), "strap");
}

const EXPORT_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>
]>
<HealthData locale="en_US">
 <ExportDate value="2026-03-08 10:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1988-04-02"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana's Apple Watch" unit="count/min" creationDate="2026-03-01 07:01:00 +0100" startDate="2026-03-01 07:00:00 +0100" endDate="2026-03-01 07:00:00 +0100" value="62"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana's Apple Watch" unit="count/min" creationDate="2026-03-01 07:02:00 +0100" startDate="2026-03-01 07:01:00 +0100" endDate="2026-03-01 07:01:00 +0100" value="400"/>
 <Record type="HKQuantityTypeIdentifierBodyMass" sourceName="Scale" unit="lb" creationDate="2026-03-01 07:05:00 +0100" startDate="2026-03-01 07:05:00 +0100" endDate="2026-03-01 07:05:00 +0100" value="154.32"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana's Apple Watch" creationDate="2026-03-01 07:00:00 +0100" startDate="2026-03-01 01:00:00 +0100" endDate="2026-03-01 02:30:00 +0100" value="HKCategoryValueSleepAnalysisAsleepDeep"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" sourceName="Ana's Apple Watch" creationDate="2026-03-01 19:00:00 +0100" startDate="2026-03-01 18:30:00 +0100" endDate="2026-03-01 19:00:00 +0100">
  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="2026-03-01 18:30:00 +0100" endDate="2026-03-01 19:00:00 +0100" average="151" minimum="98" maximum="176" unit="count/min"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="2026-03-01 18:30:00 +0100" endDate="2026-03-01 19:00:00 +0100" sum="5.2" unit="km"/>
 </Workout>
</HealthData>
"#;

#[tokio::test]
async fn an_apple_health_export_zip_lands_in_its_streams() {
    let h = Harness::new().await;
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    archive
        .start_file("apple_health_export/export.xml", options)
        .unwrap();
    std::io::Write::write_all(&mut archive, EXPORT_XML.as_bytes()).unwrap();
    let bytes = archive.finish().unwrap().into_inner();
    let path = h.dir.path().join("export.zip");
    std::fs::write(&path, bytes).unwrap();

    let options = IngestOptions {
        subject: Some("A1".into()),
        ..IngestOptions::default()
    };
    let report = h.ingest(&[path], options).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.streams["heart_rate"].rows_accepted, 1);
    assert_eq!(
        report.streams["heart_rate"].rules[&("bpm".to_owned(), "range")].rejected,
        1
    );
    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    assert_eq!(
        quarantined[0].file,
        format!(
            "{}!apple_health_export/export.xml",
            h.dir.path().join("export.zip").display()
        )
    );
    assert_eq!(quarantined[0].record, Some(2));

    let weight = h
        .rows("SELECT round(weight_kg, 1) AS w, CAST(time AS VARCHAR) AS t FROM body")
        .await;
    assert_eq!(
        weight[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0),
        70.0
    );
    assert_eq!(
        weight[0].column(1).as_string::<i32>().value(0),
        "2026-03-01T06:05:00"
    );
    assert_eq!(
        h.count("SELECT count(*) FROM sleep WHERE stage = 'deep'")
            .await,
        1
    );
    let workout = h
        .rows("SELECT sport, distance_m, avg_hr, max_hr FROM workouts")
        .await;
    assert_eq!(workout[0].column(0).as_string::<i32>().value(0), "run");
    assert_eq!(
        workout[0]
            .column(1)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0),
        5200.0
    );
}
