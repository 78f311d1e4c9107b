//! Fitbit and Google Fit exports end to end: the fixtures (a Google Takeout zip with a
//! Fitbit account export and Google Fit daily files, a folder of Fitabase CSV files) are
//! ingested into a real engine over a SQLite catalog, and the rows read back with SQL.
//! Local times are placed in the subjects' home zones, on days when the clocks change.

mod support;

use support::Harness;

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::Int64Type,
};
use catalog::SubjectProfile;
use ingest::{IngestOptions, IngestReport, Silent};

impl Harness {
    async fn subject(&self, pseudonym: &str, timezone: &str) {
        let catalog = self.engine.catalog();
        let org = catalog.organizations().get("default").await.unwrap().id;
        catalog
            .subjects()
            .create(
                org,
                pseudonym,
                SubjectProfile {
                    timezone: timezone.into(),
                    ..SubjectProfile::default()
                },
            )
            .await
            .unwrap();
    }

    async fn ingest(&self, paths: &[PathBuf], options: IngestOptions) -> IngestReport {
        ingest::ingest(&self.engine, &self.principal, paths, &options, &Silent)
            .await
            .unwrap()
    }

    async fn rows(&self, sql: &str) -> Vec<RecordBatch> {
        self.engine.query("default", sql).await.unwrap().batches
    }

    /// The rows of a query as text lines, `|`-separated (times as ISO 8601, in UTC).
    async fn lines(&self, sql: &str) -> Vec<String> {
        let batches = self.rows(sql).await;
        let mut lines = Vec::new();
        for batch in &batches {
            let columns: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).unwrap())
                .collect();
            for row in 0..batch.num_rows() {
                let cells: Vec<&str> = columns
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        if c.is_null(row) { "∅" } else { c.value(row) }
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
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn takeout_zip() -> PathBuf {
    fixtures().join("fitbit/takeout.zip")
}

fn fitabase() -> PathBuf {
    fixtures().join("fitbit/Fitabase Data 3.12.16-4.11.16")
}

fn subject_as(pseudonym: &str) -> IngestOptions {
    IngestOptions {
        subject: Some(pseudonym.into()),
        ..IngestOptions::default()
    }
}

#[test]
fn the_takeout_zip_holds_the_fixture_files() {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(takeout_zip()).unwrap()).unwrap();
    let mut names = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().to_owned();
        let folder = if name.starts_with("Takeout/Fitbit/") {
            "fitbit"
        } else {
            "google_fit"
        };
        let mut zipped = Vec::new();
        entry.read_to_end(&mut zipped).unwrap();
        let unpacked = std::fs::read(fixtures().join(folder).join(&name)).unwrap();
        assert_eq!(zipped, unpacked, "{name} differs from its unpacked fixture");
        names.push(name);
    }
    assert_eq!(names.len(), 10, "{names:?}");
}

#[tokio::test]
async fn a_fitbit_and_google_fit_takeout_lands_in_local_time() {
    let h = Harness::new().await;
    h.subject("F1", "Europe/Paris").await;
    let report = h.ingest(&[takeout_zip()], subject_as("F1")).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.files, 10);

    // Paris moved its clocks from 02:00 to 03:00 on 2020-03-29: 02:30 did not happen there.
    assert_eq!(
        h.lines("SELECT source, time, bpm FROM heart_rate ORDER BY source, time")
            .await,
        [
            "fitbit|2019-12-31T23:00:05|62.0",
            "fitbit|2019-12-31T23:00:10|63.0",
            "fitbit|2020-03-29T00:59:55|58.0",
            "fitbit|2020-03-29T01:00:05|61.0",
            "fitbit|2020-03-29T01:30:00|60.0",
            "fitbit|2020-03-29T06:00:05|72.0",
            "google_fit|2020-03-29T00:30:00|68.5",
            "google_fit|2020-03-29T00:45:00|71.2",
        ]
    );
    let heart = &report.streams["heart_rate"];
    assert_eq!(heart.rules[&("time".to_owned(), "timezone")].flagged, 1);
    assert_eq!(heart.rules[&("bpm".to_owned(), "range")].rejected, 1);
    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        quarantined[0].file,
        format!(
            "{}!Takeout/Fitbit/Global Export Data/heart_rate-2020-03-29.json",
            takeout_zip().display()
        )
    );
    assert_eq!(quarantined[0].record, Some(4), "the element of the array");

    assert_eq!(
        h.lines(
            "SELECT source, time, end_time, count \
             FROM steps ORDER BY source, time"
        )
        .await,
        [
            "fitbit|2020-03-29T00:58:00|2020-03-29T00:59:00|12",
            "fitbit|2020-03-29T00:59:00|2020-03-29T01:00:00|30",
            "fitbit|2020-03-29T01:00:00|2020-03-29T01:01:00|45",
            "fitbit|2020-03-29T01:01:00|2020-03-29T01:02:00|0",
            "google_fit|2020-03-29T00:30:00|2020-03-29T00:45:00|120",
            "google_fit|2020-03-29T00:45:00|2020-03-29T01:00:00|80",
            "google_fit|2020-03-29T21:45:00|2020-03-29T22:00:00|10",
        ],
        "a minute each, across the skipped hour; Google Fit's quarters are instants, and its \
         daily summary (210 steps) is not counted again"
    );

    assert_eq!(
        h.lines("SELECT stage, time, end_time FROM sleep ORDER BY time")
            .await,
        [
            "awake|2020-03-28T23:30:00|2020-03-28T23:35:00",
            "light|2020-03-28T23:35:00|2020-03-29T00:05:00",
            "deep|2020-03-29T00:05:00|2020-03-29T00:50:00",
            "rem|2020-03-29T00:50:00|2020-03-29T01:10:00",
            "light|2020-03-29T01:10:00|2020-03-29T02:10:00",
            "awake|2020-03-29T02:10:00|2020-03-29T02:15:00",
            "asleep|2020-03-29T12:00:00|2020-03-29T12:20:00",
            "awake|2020-03-29T12:20:00|2020-03-29T12:22:00",
            "awake|2020-03-29T12:22:00|2020-03-29T12:23:00",
        ],
        "stages tile the night, the REM stage over the clock change lasting its 20 minutes; \
         shortData is not read; classic restless counts as awake"
    );

    // The profile says POUND: 165.2 lb are 74.93 kg.
    assert_eq!(
        h.lines(
            "SELECT source, time, round(weight_kg, 2), round(fat_pct, 2), bmi \
             FROM body ORDER BY time"
        )
        .await,
        [
            "fitbit|2020-03-01T06:00:00|74.93|22.14|24.4",
            "fitbit|2020-03-15T06:06:40|74.75|∅|24.34",
            "google_fit|2020-03-29T01:00:00|70.5|∅|∅",
        ]
    );
    assert_eq!(
        h.count("SELECT count(*) FROM active_energy").await,
        0,
        "calories count the basal rate: not active energy"
    );
    assert_eq!(
        h.lines("SELECT pseudonym FROM meta.subjects").await,
        ["F1"],
        "nothing of the profile (names, e-mail) becomes a subject"
    );

    let before = h.lines("SELECT * FROM heart_rate ORDER BY time").await;
    let again = h.ingest(&[takeout_zip()], subject_as("F1")).await;
    assert_eq!(again.totals().rows_accepted, report.totals().rows_accepted);
    assert_eq!(
        h.lines("SELECT * FROM heart_rate ORDER BY time").await,
        before
    );
    assert_eq!(h.count("SELECT count(*) FROM steps").await, 7);
}

#[tokio::test]
async fn google_fit_days_are_instants_whatever_the_subject_zone() {
    let h = Harness::new().await;
    let report = h
        .ingest(&[fixtures().join("google_fit")], subject_as("G1"))
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.files, 2);
    assert_eq!(
        h.lines("SELECT time, end_time, count FROM steps ORDER BY time")
            .await,
        [
            "2020-03-29T00:30:00|2020-03-29T00:45:00|120",
            "2020-03-29T00:45:00|2020-03-29T01:00:00|80",
            "2020-03-29T21:45:00|2020-03-29T22:00:00|10",
        ]
    );
    assert_eq!(
        report.streams["steps"].rows_in, 3,
        "quarters without steps are no rows (never zero)"
    );
}

#[tokio::test]
async fn fitabase_files_land_per_subject_in_their_zones() {
    let h = Harness::new().await;
    // The study's participants lived in the US; the clocks moved on 2016-03-13 at 02:00.
    let subjects = h.dir.path().join("subjects.csv");
    std::fs::write(
        &subjects,
        "subject,timezone\n\
         fitbit-1503960366,America/New_York\n\
         fitbit-1927972279,America/New_York\n\
         fitbit-2022484408,America/New_York\n\
         fitbit-2026352035,America/New_York\n",
    )
    .unwrap();
    let report = h
        .ingest(&[subjects, fitabase()], IngestOptions::default())
        .await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let by_subject = |stream: &str, columns: &str| {
        format!(
            "SELECT s.pseudonym, {columns} FROM {stream} x JOIN meta.subjects s USING (subject_id) \
             ORDER BY s.pseudonym, x.time"
        )
    };
    assert_eq!(
        h.lines(&by_subject("heart_rate", "x.time, x.bpm")).await,
        [
            "fitbit-2022484408|2016-03-13T06:59:55|97.0",
            "fitbit-2022484408|2016-03-13T07:00:05|101.0",
            "fitbit-2022484408|2016-03-13T07:30:00|98.0",
            "fitbit-2022484408|2016-04-12T11:21:00|97.0",
            "fitbit-2026352035|2016-04-12T11:21:05|99.0",
        ]
    );
    assert_eq!(
        h.lines(&by_subject("steps", "x.time, x.end_time, x.count"))
            .await,
        [
            "fitbit-1503960366|2016-03-13T06:58:00|2016-03-13T06:59:00|0",
            "fitbit-1503960366|2016-03-13T06:59:00|2016-03-13T07:00:00|12",
            "fitbit-1503960366|2016-03-13T07:00:00|2016-03-13T07:01:00|40",
            "fitbit-1503960366|2016-04-12T04:00:00|2016-04-12T04:01:00|0",
            "fitbit-1503960366|2016-04-12T04:01:00|2016-04-12T04:02:00|7",
        ],
        "minute steps only: the hourly file of the same folder would count them twice"
    );
    assert_eq!(
        h.lines(&by_subject("sleep", "x.time, x.stage")).await,
        [
            "fitbit-1503960366|2016-04-12T06:47:30|awake",
            "fitbit-1503960366|2016-04-12T06:48:30|awake",
            "fitbit-1503960366|2016-04-12T06:49:30|asleep",
            "fitbit-1503960366|2016-04-12T06:50:30|asleep",
        ]
    );
    assert_eq!(report.streams["sleep"].duplicates(), 1);
    assert_eq!(
        h.lines(&by_subject(
            "body",
            "x.time, round(x.weight_kg, 2), x.fat_pct, round(x.bmi, 2)"
        ))
        .await,
        [
            "fitbit-1503960366|2016-04-06T03:59:59|52.6|22.0|22.65",
            "fitbit-1927972279|2016-04-10T05:08:52|133.5|∅|47.54",
        ]
    );
    assert_eq!(h.count("SELECT count(*) FROM active_energy").await, 0);

    let quarantined = h
        .engine
        .catalog()
        .ingest()
        .quarantined(report.batch, 10)
        .await
        .unwrap();
    let seen: Vec<(String, Option<i64>, &str)> = quarantined
        .iter()
        .map(|q| {
            let file = Path::new(&q.file).file_name().unwrap();
            (
                file.to_string_lossy().into_owned(),
                q.record,
                q.rule.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("heartrate_seconds_merged.csv".to_owned(), Some(6), "range"),
            ("minuteStepsNarrow_merged.csv".to_owned(), Some(7), "rate"),
        ],
        "records are the CSV lines"
    );
}

#[tokio::test]
async fn fitabase_hourly_steps_alone_are_read() {
    let h = Harness::new().await;
    let hourly = h.dir.path().join("hourlySteps_merged.csv");
    std::fs::copy(fitabase().join("hourlySteps_merged.csv"), &hourly).unwrap();
    let report = h.ingest(&[hourly], IngestOptions::default()).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        h.lines("SELECT time, end_time, count FROM steps ORDER BY time")
            .await,
        [
            "2016-03-13T01:00:00|2016-03-13T02:00:00|12",
            "2016-03-13T03:00:00|2016-03-13T04:00:00|40",
            "2016-04-12T00:00:00|2016-04-12T01:00:00|407",
        ],
        "a subject without a home zone keeps the wall clock as UTC"
    );
    let total = h.rows("SELECT sum(count) FROM steps").await;
    assert_eq!(total[0].column(0).as_primitive::<Int64Type>().value(0), 459);
}
