//! FHIR R4 files end to end: the fixtures of `tests/fixtures/fhir` ingested into a real engine
//! over a SQLite catalog and a local store, the rows read back with SQL, the quarantine and
//! failures from the report and the catalog.

mod support;

use support::Harness;

use std::path::PathBuf;

use arrow::{
    array::{AsArray, RecordBatch},
    datatypes::{Float64Type, Int64Type},
};
use ingest::{IngestOptions, IngestReport, Silent, formats::Format};

impl Harness {
    async fn ingest(&self, paths: &[PathBuf], options: IngestOptions) -> IngestReport {
        ingest::ingest(&self.engine, &self.principal, paths, &options, &Silent)
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &str) -> Vec<RecordBatch> {
        self.engine.query("default", sql).await.unwrap().batches
    }

    /// The rows of a query as text, one line per row, cells separated by `|`.
    async fn text(&self, sql: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for batch in self.rows(sql).await {
            for row in 0..batch.num_rows() {
                let cells: Vec<String> = batch
                    .columns()
                    .iter()
                    .map(|c| {
                        arrow::util::display::array_value_to_string(c, row)
                            .unwrap_or_else(|e| e.to_string())
                    })
                    .collect();
                lines.push(cells.join("|"));
            }
        }
        lines
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql).await[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }

    async fn number(&self, sql: &str) -> f64 {
        self.rows(sql).await[0]
            .column(0)
            .as_primitive::<Float64Type>()
            .value(0)
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fhir")
        .join(name)
}

#[tokio::test]
async fn a_fhir_bundle_lands_in_its_streams() {
    let h = Harness::new().await;
    let report = h
        .ingest(&[fixture("bundle.json")], IngestOptions::default())
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    assert_eq!(
        h.text(
            "SELECT s.pseudonym, h.source, CAST(h.time AS VARCHAR) AS t, h.bpm FROM heart_rate h \
             JOIN meta.subjects s USING (subject_id) ORDER BY t"
        )
        .await,
        [
            "ana|Polar H10|2026-03-01T05:00:00|58.0",
            "ana|Polar H10|2026-03-01T05:01:00|61.0",
        ],
        "the entered-in-error reading at 06:02 is not stored; the one without a value is refused"
    );
    assert_eq!(
        h.text("SELECT source, CAST(time AS VARCHAR), systolic, diastolic FROM blood_pressure")
            .await,
        ["Omron M7|2026-03-01T07:00:00|121.0|79.0"]
    );
    assert_eq!(
        h.text("SELECT source, CAST(time AS VARCHAR), round(weight_kg, 3), fat_pct, bmi FROM body")
            .await,
        ["Withings Body+|2026-03-01T06:00:00|69.989|21.5|22.9"],
        "154.3 [lb_av] in kg, with the fat and BMI of the same weighing, in one row"
    );
    assert_eq!(
        h.number("SELECT round(mmol_l, 3) FROM glucose").await,
        5.273,
        "95 mg/dL"
    );
    assert_eq!(
        h.text("SELECT source, CAST(time AS VARCHAR), pct FROM spo2")
            .await,
        ["fhir|2026-03-01T05:30:00|97.0"],
        "no device: the format's name"
    );
    assert_eq!(h.count("SELECT count(*) FROM sleep").await, 0);
    assert_eq!(
        h.count("SELECT count(*) FROM meta.subjects WHERE pseudonym = 'ana'")
            .await,
        1
    );

    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    let seen: Vec<(Option<i64>, Option<&str>, &str)> = quarantined
        .iter()
        .map(|q| (q.record, q.column.as_deref(), q.rule.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(Some(11), Some("bpm"), "required")],
        "entry 11 has a dataAbsentReason instead of a value"
    );
    assert!(quarantined[0].file.ends_with("fhir/bundle.json"));
    assert_eq!(report.totals().rows_accepted, 6);

    // The same Bundle again changes nothing.
    h.ingest(&[fixture("bundle.json")], IngestOptions::default())
        .await;
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 2);
    assert_eq!(h.count("SELECT count(*) FROM body").await, 1);
}

#[tokio::test]
async fn fhir_bulk_data_is_read_line_by_line() {
    let h = Harness::new().await;
    let report = h
        .ingest(&[fixture("Observation.ndjson")], IngestOptions::default())
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        h.text(
            "SELECT s.pseudonym, h.source, h.bpm FROM heart_rate h JOIN meta.subjects s USING (subject_id)"
        )
        .await,
        ["bob|#garmin-connect|72.0"]
    );
    assert_eq!(
        h.text("SELECT CAST(time AS VARCHAR), CAST(end_time AS VARCHAR), count FROM steps")
            .await,
        ["2026-03-01T09:00:00|2026-03-01T09:15:00|1520"]
    );
    assert_eq!(
        h.text("SELECT rmssd_ms FROM hrv").await,
        ["48.2"],
        "SDNN feeds hrv"
    );
    assert_eq!(
        h.number("SELECT round(kcal, 6) FROM active_energy").await,
        100.0
    );
    assert_eq!(
        h.text("SELECT source, systolic, diastolic FROM blood_pressure")
            .await,
        ["Withings BPM Connect|131.0|84.0"],
        "separate halves make one reading"
    );
    assert_eq!(h.number("SELECT mmol_l FROM glucose").await, 5.4);
    assert_eq!(
        report
            .streams
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "active_energy",
            "blood_pressure",
            "glucose",
            "heart_rate",
            "hrv",
            "steps"
        ],
        "the body temperature on line 9 is skipped"
    );

    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        (
            quarantined[0].record,
            quarantined[0].column.as_deref(),
            quarantined[0].rule.as_str()
        ),
        (Some(3), Some("count"), "rate"),
        "5000 steps in a minute, on line 3"
    );
}

#[tokio::test]
async fn an_observation_without_subject_takes_the_one_given() {
    let h = Harness::new().await;
    let options = IngestOptions {
        subject: Some("S9".into()),
        ..IngestOptions::default()
    };
    let report = h.ingest(&[fixture("observation.json")], options).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        h.text(
            "SELECT s.pseudonym, h.source, CAST(h.time AS VARCHAR), h.rmssd_ms FROM hrv h \
             JOIN meta.subjects s USING (subject_id)"
        )
        .await,
        ["S9|Oura Ring|2026-03-02T02:00:00|52.5"]
    );
}

#[tokio::test]
async fn a_malformed_fhir_file_is_named_with_its_line_and_the_others_land() {
    let h = Harness::new().await;
    let options = IngestOptions {
        format: Format::Fhir,
        ..IngestOptions::default()
    };
    let report = h
        .ingest(
            &[fixture("malformed.json"), fixture("bundle.json")],
            options,
        )
        .await;
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let (file, problem) = &report.failed[0];
    assert!(file.ends_with("fhir/malformed.json"), "{file}");
    assert_eq!(
        problem,
        "not readable as FHIR JSON at line 8, column 9: expected `,` or `}`"
    );
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 2);
}

#[tokio::test]
async fn a_directory_of_fhir_files_is_detected_file_by_file() {
    let h = Harness::new().await;
    let options = IngestOptions {
        subject: Some("S9".into()),
        ..IngestOptions::default()
    };
    let report = h.ingest(&[fixture("")], options).await;
    assert_eq!(report.files, 4);
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(report.failed[0].0.ends_with("malformed.json"));
    assert_eq!(
        h.text(
            "SELECT s.pseudonym, count(*) FROM hrv h JOIN meta.subjects s USING (subject_id) \
             GROUP BY 1 ORDER BY 1"
        )
        .await,
        ["S9|1", "bob|1"],
        "files that name their subjects keep them; --subject only fills in"
    );
    let batch = h
        .engine
        .catalog()
        .ingest()
        .get_batch(report.batch)
        .await
        .unwrap();
    assert_eq!(batch.counts.rows_accepted, 13);
}
