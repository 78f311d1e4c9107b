//! Ingest benchmarks: one per input format `ingest` reads, each file parsed, cleaned (all
//! rules on) and written until the engine acknowledged its rows, as `healthai ingest` does.
//! Throughput is rows accepted into streams (`report.totals().rows_accepted`) per second; every
//! iteration checks that count against what the setup generated, so a reader that loses rows
//! fails the benchmark instead of speeding it up.
//!
//! The inputs are generated in the setup: the same 1 M heart-rate rows as CSV, NDJSON,
//! Parquet, Arrow IPC, InfluxDB line protocol and a Fitabase CSV; an Apple Health export and a
//! FHIR Bundle from `ingest::simulate`; rides as Garmin FIT, GPX and TCX files; a Fitbit
//! account export and Google Fit daily files; Open Food Facts, USDA FoodData Central and
//! CIQUAL food tables. Each benchmark gets its own engine (the embedded SQLite catalog, a
//! local store in a temporary directory).
//!
//! `cargo bench --bench ingest`; `cargo test --bench ingest` runs each once. See
//! benches/README.md for what each ingests and the figures.

use std::{
    f64::consts::TAU,
    fmt::Write as _,
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use arrow::{
    array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray},
    datatypes::{DataType, Field, Schema, TimeUnit},
};
use catalog::CatalogUrl;
use chrono::{DateTime, NaiveDate, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use engine::{Engine, EngineConfig, Principal};
use ingest::{
    IngestOptions, Silent,
    simulate::{SimulationFormat, SimulationOptions, simulate},
};
use object_store::local::LocalFileSystem;
use parquet::{arrow::ArrowWriter, basic::Compression, file::properties::WriterProperties};
use tokio::runtime::Runtime;

/// The allocator the `healthai` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Heart rate, subjects × minutes of one reading a minute: 1 M rows.
const SUBJECTS: usize = 100;
const MINUTES: usize = 10_000;
/// Fitabase `heartrate_seconds_merged.csv`: subjects × readings 5 s apart: 1 M rows.
const FITABASE_SUBJECTS: usize = 20;
const FITABASE_READINGS: usize = 50_000;
/// The simulated Apple Health export: one subject's days.
const APPLE_HEALTH_DAYS: u32 = 180;
/// The simulated FHIR Bundle: one subject's days.
const FHIR_DAYS: u32 = 60;
/// FIT, GPX and TCX: this many rides, each a file of one sample a second.
const RIDES: usize = 4;
const RIDE_SECONDS: usize = 6 * 3600;
/// Fitbit account export: days of `heart_rate-…` (one reading every 5 s) and `steps-…` (one a
/// minute) files.
const FITBIT_DAYS: usize = 4;
/// Google Fit Takeout: daily activity files, 96 quarter-hours each.
const GOOGLE_FIT_DAYS: usize = 7;
/// Open Food Facts products.
const OFF_PRODUCTS: usize = 100_000;
/// USDA FoodData Central SR Legacy: 7 793 foods and 644 125 `food_nutrient` rows (~83 a food).
const FDC_FOODS: usize = 7_800;
const FDC_NUTRIENTS_PER_FOOD: usize = 83;
/// ANSES CIQUAL 2020: 3 186 foods.
const CIQUAL_FOODS: usize = 3_186;
/// The subject of the formats that name none (`healthai ingest --subject`).
const DEVICE_SUBJECT: &str = "S9001";

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

/// One benchmark: the file (or directory of files) one iteration ingests as a batch, and the
/// rows the engine must accept.
struct Case {
    name: &'static str,
    path: PathBuf,
    options: IngestOptions,
    rows: u64,
}

impl Case {
    fn new(name: &'static str, path: PathBuf, rows: usize) -> Self {
        Case {
            name,
            path,
            options: IngestOptions::default(),
            rows: rows as u64,
        }
    }

    /// For the formats whose files name no subject.
    fn of_subject(mut self, subject: &str) -> Self {
        self.options.subject = Some(subject.to_owned());
        self
    }
}

/// Writes the input of a benchmark under the directory given.
type Generate = fn(&Path) -> Case;

const CASES: &[Generate] = &[
    csv_heart_rate,
    ndjson_heart_rate,
    parquet_heart_rate,
    arrow_ipc_heart_rate,
    line_protocol_heart_rate,
    fitabase_heart_rate,
    apple_health_export,
    fhir_bundle,
    fit_rides,
    gpx_rides,
    tcx_rides,
    fitbit_takeout,
    google_fit_days,
    open_food_facts,
    usda_fdc_sr_legacy,
    ciqual_2020,
];

fn create(path: &Path) -> BufWriter<File> {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    BufWriter::with_capacity(1 << 20, File::create(path).unwrap())
}

fn instant(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

// --- The heart-rate rows of the generic formats: `healthai simulate`'s layout, no defects.

fn heart_rate_start() -> DateTime<Utc> {
    instant("2026-03-01T00:00:00Z")
}

fn bpm(subject: usize, minute: usize) -> usize {
    55 + (minute * 7 + subject) % 60
}

/// The RFC 3339 text of every minute, shared by the subjects.
fn minute_texts() -> Vec<String> {
    let start = heart_rate_start();
    (0..MINUTES)
        .map(|m| {
            (start + chrono::Duration::minutes(m as i64))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect()
}

fn csv_heart_rate(dir: &Path) -> Case {
    let path = dir.join("heart_rate.csv");
    let mut out = create(&path);
    writeln!(out, "subject,source,time,bpm").unwrap();
    let times = minute_texts();
    for subject in 0..SUBJECTS {
        for (minute, time) in times.iter().enumerate() {
            let bpm = bpm(subject, minute);
            writeln!(out, "S{subject:04},watch,{time},{bpm}").unwrap();
        }
    }
    out.flush().unwrap();
    Case::new("csv_heart_rate_1M", path, SUBJECTS * MINUTES)
}

fn ndjson_heart_rate(dir: &Path) -> Case {
    let path = dir.join("heart_rate.ndjson");
    let mut out = create(&path);
    let times = minute_texts();
    for subject in 0..SUBJECTS {
        for (minute, time) in times.iter().enumerate() {
            let bpm = bpm(subject, minute);
            writeln!(
                out,
                r#"{{"subject":"S{subject:04}","source":"watch","time":"{time}","bpm":{bpm}}}"#
            )
            .unwrap();
        }
    }
    out.flush().unwrap();
    Case::new("ndjson_heart_rate_1M", path, SUBJECTS * MINUTES)
}

/// The heart-rate rows as typed Arrow columns, a batch per subject: times as UTC instants,
/// beats per minute as doubles.
fn heart_rate_batches() -> (Arc<Schema>, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("subject", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("bpm", DataType::Float64, false),
    ]));
    let start = heart_rate_start().timestamp_nanos_opt().unwrap();
    let times: Vec<i64> = (0..MINUTES as i64)
        .map(|m| start + m * 60_000_000_000)
        .collect();
    let batches = (0..SUBJECTS)
        .map(|subject| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec![format!("S{subject:04}"); MINUTES])),
                Arc::new(StringArray::from(vec!["watch"; MINUTES])),
                Arc::new(TimestampNanosecondArray::from(times.clone()).with_timezone("UTC")),
                Arc::new(Float64Array::from_iter_values(
                    (0..MINUTES).map(|m| bpm(subject, m) as f64),
                )),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    (schema, batches)
}

fn parquet_heart_rate(dir: &Path) -> Case {
    let path = dir.join("heart_rate.parquet");
    let (schema, batches) = heart_rate_batches();
    // Snappy, as pandas, Spark and DuckDB write by default.
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(create(&path), schema, Some(properties)).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    Case::new("parquet_heart_rate_1M", path, SUBJECTS * MINUTES)
}

fn arrow_ipc_heart_rate(dir: &Path) -> Case {
    let path = dir.join("heart_rate.arrow");
    let (schema, batches) = heart_rate_batches();
    let mut writer = arrow::ipc::writer::FileWriter::try_new(create(&path), &schema).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.finish().unwrap();
    Case::new("arrow_ipc_heart_rate_1M", path, SUBJECTS * MINUTES)
}

/// As Telegraf writes it: tags `subject` and `source`, an integer field, nanoseconds.
fn line_protocol_heart_rate(dir: &Path) -> Case {
    let path = dir.join("heart_rate.lp");
    let mut out = create(&path);
    let start = heart_rate_start().timestamp_nanos_opt().unwrap();
    for subject in 0..SUBJECTS {
        for minute in 0..MINUTES {
            let time = start + minute as i64 * 60_000_000_000;
            let bpm = bpm(subject, minute);
            writeln!(
                out,
                "heart_rate,subject=S{subject:04},source=watch bpm={bpm}i {time}"
            )
            .unwrap();
        }
    }
    out.flush().unwrap();
    Case::new("line_protocol_heart_rate_1M", path, SUBJECTS * MINUTES)
}

/// The Kaggle "Fitbit Fitness Tracker Data" heart-rate file: `Id,Time,Value`, ten-digit ids,
/// US wall-clock times with AM/PM, a reading every 5 s.
fn fitabase_heart_rate(dir: &Path) -> Case {
    let path = dir
        .join("Fitabase Data 4.12.16-5.12.16")
        .join("heartrate_seconds_merged.csv");
    let mut out = create(&path);
    writeln!(out, "Id,Time,Value").unwrap();
    let start = NaiveDate::from_ymd_opt(2016, 4, 12)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let times: Vec<String> = (0..FITABASE_READINGS)
        .map(|i| {
            (start + chrono::Duration::seconds(5 * i as i64))
                .format("%-m/%-d/%Y %-I:%M:%S %p")
                .to_string()
        })
        .collect();
    for subject in 0..FITABASE_SUBJECTS {
        let id = 1_503_960_366 + subject * 104_729;
        for (i, time) in times.iter().enumerate() {
            let bpm = 58 + (i * 13 + subject * 7) % 70;
            writeln!(out, "{id},{time},{bpm}").unwrap();
        }
    }
    out.flush().unwrap();
    Case::new(
        "fitbit_fitabase_heart_rate_1M",
        path,
        FITABASE_SUBJECTS * FITABASE_READINGS,
    )
}

// --- The document formats, from the simulator: rows are what it says it wrote.

fn simulated(dir: &Path, format: SimulationFormat, days: u32) -> (PathBuf, usize) {
    let options = SimulationOptions {
        subjects: 1,
        days,
        format,
        ..SimulationOptions::default()
    };
    let summary = simulate(&options, dir).unwrap();
    // `subjects.csv` feeds profiles, not a stream: only the documents are ingested.
    let rows: u64 = summary
        .rows
        .iter()
        .filter(|(stream, _)| *stream != "subjects")
        .map(|(_, rows)| rows)
        .sum();
    let documents = dir.join(format.directory().unwrap());
    (documents, rows as usize)
}

fn apple_health_export(dir: &Path) -> Case {
    let (documents, rows) = simulated(dir, SimulationFormat::AppleHealth, APPLE_HEALTH_DAYS);
    Case::new("apple_health_export_180d", documents, rows)
}

fn fhir_bundle(dir: &Path) -> Case {
    let (documents, rows) = simulated(dir, SimulationFormat::Fhir, FHIR_DAYS);
    Case::new("fhir_bundle_60d", documents, rows)
}

// --- Rides, as FIT, GPX and TCX: one sample a second.

/// One second of a ride: a loop in the Alps with its climbs, speed, heart rate, cadence and
/// power varying smoothly.
struct Sample {
    time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    altitude_m: f64,
    speed_m_s: f64,
    distance_m: f64,
    heart_rate: u8,
    cadence: u8,
    power_w: u16,
}

/// Ride `index` starts at 07:00 UTC on its own day.
fn ride_start(index: usize) -> DateTime<Utc> {
    instant("2026-03-01T07:00:00Z") + chrono::Duration::days(index as i64)
}

fn ride(index: usize) -> Vec<Sample> {
    let start = ride_start(index);
    let mut distance_m = 0.0;
    (0..RIDE_SECONDS)
        .map(|s| {
            let t = s as f64;
            let angle = TAU * t / 7200.0;
            let speed_m_s = 8.0 + 2.5 * (t / 300.0).sin();
            distance_m += speed_m_s;
            Sample {
                time: start + chrono::Duration::seconds(s as i64),
                lat: 45.19 + 0.08 * angle.sin(),
                lon: 5.72 + 0.11 * angle.cos(),
                altitude_m: 450.0 + 300.0 * (t / 1800.0).sin().abs(),
                speed_m_s,
                distance_m,
                heart_rate: (135.0 + 20.0 * (t / 600.0).sin()) as u8,
                cadence: (85.0 + 8.0 * (t / 120.0).sin()) as u8,
                power_w: (210.0 + 60.0 * (t / 240.0).sin()) as u16,
            }
        })
        .collect()
}

fn mean_and_max_heart_rate(samples: &[Sample]) -> (f64, u8) {
    let sum: f64 = samples.iter().map(|s| f64::from(s.heart_rate)).sum();
    let max = samples.iter().map(|s| s.heart_rate).max().unwrap();
    (sum / samples.len() as f64, max)
}

/// Samples plus one workout per ride.
const RIDE_ROWS: usize = RIDES * (RIDE_SECONDS + 1);

/// Just enough of the FIT protocol to write what a Garmin device records: definition and
/// data records with normal headers, little endian, a 14-byte header with its CRC, the file
/// CRC. (The reader's own encoder is test-only inside `ingest`.)
#[derive(Default)]
struct FitWriter {
    records: Vec<u8>,
    /// Field sizes of each local message type defined.
    definitions: [Vec<usize>; 16],
}

/// FIT base types: (base type byte, size).
const ENUM: (u8, u8) = (0x00, 1);
const UINT8: (u8, u8) = (0x02, 1);
const UINT16: (u8, u8) = (0x84, 2);
const SINT32: (u8, u8) = (0x85, 4);
const UINT32: (u8, u8) = (0x86, 4);
const UINT32Z: (u8, u8) = (0x8C, 4);
/// The field number of `timestamp` in every message.
const TIMESTAMP: u8 = 253;
/// The FIT epoch, 1989-12-31T00:00:00Z, in Unix seconds.
const FIT_EPOCH_UNIX: i64 = 631_065_600;

impl FitWriter {
    fn define(&mut self, local: u8, global: u16, fields: &[(u8, (u8, u8))]) {
        self.records.extend([0x40 | local, 0, 0]);
        self.records.extend(global.to_le_bytes());
        self.records.push(fields.len() as u8);
        for (number, (base, size)) in fields {
            self.records.extend([*number, *size, *base]);
        }
        self.definitions[usize::from(local)] = fields
            .iter()
            .map(|(_, (_, size))| usize::from(*size))
            .collect();
    }

    /// A data record; signed values are given as their two's complement bits.
    fn data(&mut self, local: u8, values: &[u64]) {
        self.records.push(local);
        let sizes = &self.definitions[usize::from(local)];
        assert_eq!(sizes.len(), values.len(), "one value per field");
        for (value, size) in values.iter().zip(sizes) {
            self.records.extend(&value.to_le_bytes()[..*size]);
        }
    }

    fn finish(self) -> Vec<u8> {
        let mut file = vec![14, 0x20];
        file.extend(2195u16.to_le_bytes());
        file.extend((self.records.len() as u32).to_le_bytes());
        file.extend(b".FIT");
        file.extend(fit_crc(&file).to_le_bytes());
        file.extend(&self.records);
        file.extend(fit_crc(&file).to_le_bytes());
        file
    }
}

/// The CRC-16 of the FIT protocol.
fn fit_crc(bytes: &[u8]) -> u16 {
    const TABLE: [u16; 16] = [
        0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401, 0xA001, 0x6C00, 0x7800,
        0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
    ];
    let mut crc = 0u16;
    for &byte in bytes {
        for nibble in [byte & 0x0F, byte >> 4] {
            let tmp = TABLE[usize::from(crc & 0x0F)];
            crc = (crc >> 4) & 0x0FFF;
            crc ^= tmp ^ TABLE[usize::from(nibble)];
        }
    }
    crc
}

fn fit_time(time: DateTime<Utc>) -> u64 {
    (time.timestamp() - FIT_EPOCH_UNIX) as u64
}

fn semicircles(degrees: f64) -> u64 {
    u64::from((degrees * 2f64.powi(31) / 180.0).round() as i32 as u32)
}

/// A ride as a Garmin fenix 7 records it: `file_id`, a start event, a `record` a second
/// (position, enhanced altitude and speed, heart rate, cadence, distance, power), a stop
/// event, then `lap`, `session` and `activity`.
fn fit_activity(samples: &[Sample]) -> Vec<u8> {
    const FILE_ID: u16 = 0;
    const LAP: u16 = 19;
    const SESSION: u16 = 18;
    const RECORD: u16 = 20;
    const EVENT: u16 = 21;
    const ACTIVITY: u16 = 34;
    let start = fit_time(samples[0].time);
    let end = fit_time(samples[samples.len() - 1].time);
    let elapsed_ms = (end - start + 1) * 1000;
    let distance_cm = (samples[samples.len() - 1].distance_m * 100.0).round() as u64;
    let (mean_hr, max_hr) = mean_and_max_heart_rate(samples);
    let mut fit = FitWriter::default();
    // Type activity, Garmin, product 3906 (fenix 7), a serial number, created at the start.
    fit.define(
        0,
        FILE_ID,
        &[
            (0, ENUM),
            (1, UINT16),
            (2, UINT16),
            (3, UINT32Z),
            (4, UINT32),
        ],
    );
    fit.data(0, &[4, 1, 3906, 3_456_789_012, start]);
    fit.define(1, EVENT, &[(TIMESTAMP, UINT32), (0, ENUM), (1, ENUM)]);
    fit.data(1, &[start, 0, 0]);
    fit.define(
        2,
        RECORD,
        &[
            (TIMESTAMP, UINT32),
            (0, SINT32),
            (1, SINT32),
            (3, UINT8),
            (4, UINT8),
            (5, UINT32),
            (7, UINT16),
            (73, UINT32),
            (78, UINT32),
        ],
    );
    for s in samples {
        fit.data(
            2,
            &[
                fit_time(s.time),
                semicircles(s.lat),
                semicircles(s.lon),
                u64::from(s.heart_rate),
                u64::from(s.cadence),
                (s.distance_m * 100.0).round() as u64,
                u64::from(s.power_w),
                (s.speed_m_s * 1000.0).round() as u64,
                ((s.altitude_m + 500.0) * 5.0).round() as u64,
            ],
        );
    }
    fit.data(1, &[end, 0, 4]);
    let kcal = (elapsed_ms / 1000) * 11 / 60;
    let (mean_hr, max_hr) = (mean_hr.round() as u64, u64::from(max_hr));
    // One lap: timestamp, start_time, total_elapsed_time, total_distance, total_calories,
    // avg_heart_rate, max_heart_rate.
    fit.define(
        3,
        LAP,
        &[
            (TIMESTAMP, UINT32),
            (2, UINT32),
            (7, UINT32),
            (9, UINT32),
            (11, UINT16),
            (15, UINT8),
            (16, UINT8),
        ],
    );
    fit.data(
        3,
        &[end, start, elapsed_ms, distance_cm, kcal, mean_hr, max_hr],
    );
    // The session, sport cycling (2), sub-sport generic (0).
    fit.define(
        4,
        SESSION,
        &[
            (TIMESTAMP, UINT32),
            (2, UINT32),
            (5, ENUM),
            (6, ENUM),
            (7, UINT32),
            (9, UINT32),
            (11, UINT16),
            (16, UINT8),
            (17, UINT8),
        ],
    );
    fit.data(
        4,
        &[
            end,
            start,
            2,
            0,
            elapsed_ms,
            distance_cm,
            kcal,
            mean_hr,
            max_hr,
        ],
    );
    fit.define(
        5,
        ACTIVITY,
        &[(TIMESTAMP, UINT32), (0, UINT32), (1, UINT16), (2, ENUM)],
    );
    fit.data(5, &[end, elapsed_ms, 1, 0]);
    fit.finish()
}

fn fit_rides(dir: &Path) -> Case {
    let dir = dir.join("fit");
    for index in 0..RIDES {
        let samples = ride(index);
        let name = samples[0].time.format("%Y-%m-%d-%H-%M-%S.fit").to_string();
        let mut out = create(&dir.join(name));
        out.write_all(&fit_activity(&samples)).unwrap();
        out.flush().unwrap();
    }
    Case::new("fit_rides_4x6h", dir, RIDE_ROWS).of_subject(DEVICE_SUBJECT)
}

fn iso_millis(time: DateTime<Utc>) -> impl std::fmt::Display {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// A ride as Garmin Connect exports it: GPX 1.1, `TrackPointExtension` heart rate and cadence.
fn gpx_rides(dir: &Path) -> Case {
    let dir = dir.join("gpx");
    for index in 0..RIDES {
        let samples = ride(index);
        let start = samples[0].time;
        let mut out = create(&dir.join(format!("activity_{}.gpx", 18_000_000_000 + index)));
        write!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx creator="Garmin Connect" version="1.1"
  xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/11.xsd"
  xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
  xmlns="http://www.topografix.com/GPX/1/1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns2="http://www.garmin.com/xmlschemas/GpxExtensions/v3">
  <metadata>
    <link href="connect.garmin.com">
      <text>Garmin Connect</text>
    </link>
    <time>{}</time>
  </metadata>
  <trk>
    <name>Grenoble Cycling</name>
    <type>cycling</type>
    <trkseg>
"#,
            iso_millis(start)
        )
        .unwrap();
        for s in &samples {
            write!(
                out,
                r#"      <trkpt lat="{:.14}" lon="{:.14}">
        <ele>{:.1}</ele>
        <time>{}</time>
        <extensions>
          <ns3:TrackPointExtension>
            <ns3:atemp>9.0</ns3:atemp>
            <ns3:hr>{}</ns3:hr>
            <ns3:cad>{}</ns3:cad>
          </ns3:TrackPointExtension>
        </extensions>
      </trkpt>
"#,
                s.lat,
                s.lon,
                s.altitude_m,
                iso_millis(s.time),
                s.heart_rate,
                s.cadence
            )
            .unwrap();
        }
        write!(out, "    </trkseg>\n  </trk>\n</gpx>\n").unwrap();
        out.flush().unwrap();
    }
    Case::new("gpx_rides_4x6h", dir, RIDE_ROWS).of_subject(DEVICE_SUBJECT)
}

/// A ride as Garmin Connect exports it as TCX: one `Lap` an hour with its summary, every
/// `Trackpoint` with position, altitude, distance, heart rate, cadence and the `TPX`
/// extension's speed and power, the device as `Creator`.
fn tcx_rides(dir: &Path) -> Case {
    let dir = dir.join("tcx");
    for index in 0..RIDES {
        let samples = ride(index);
        let mut out = create(&dir.join(format!("activity_{}.tcx", 18_000_000_000 + index)));
        write!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase
  xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"
  xmlns:ns5="http://www.garmin.com/xmlschemas/ActivityGoals/v1"
  xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2"
  xmlns:ns2="http://www.garmin.com/xmlschemas/UserProfile/v2"
  xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns4="http://www.garmin.com/xmlschemas/ProfileExtension/v1">
  <Activities>
    <Activity Sport="Biking">
      <Id>{}</Id>
"#,
            iso_millis(samples[0].time)
        )
        .unwrap();
        let mut lap_start_distance = 0.0;
        for lap in samples.chunks(3600) {
            let (mean_hr, max_hr) = mean_and_max_heart_rate(lap);
            let lap_end_distance = lap[lap.len() - 1].distance_m;
            write!(
                out,
                r#"      <Lap StartTime="{}">
        <TotalTimeSeconds>{}.0</TotalTimeSeconds>
        <DistanceMeters>{:.1}</DistanceMeters>
        <MaximumSpeed>10.5</MaximumSpeed>
        <Calories>660</Calories>
        <AverageHeartRateBpm>
          <Value>{}</Value>
        </AverageHeartRateBpm>
        <MaximumHeartRateBpm>
          <Value>{}</Value>
        </MaximumHeartRateBpm>
        <Intensity>Active</Intensity>
        <TriggerMethod>Manual</TriggerMethod>
        <Track>
"#,
                iso_millis(lap[0].time),
                lap.len(),
                lap_end_distance - lap_start_distance,
                mean_hr.round(),
                max_hr
            )
            .unwrap();
            lap_start_distance = lap_end_distance;
            for s in lap {
                write!(
                    out,
                    r#"          <Trackpoint>
            <Time>{}</Time>
            <Position>
              <LatitudeDegrees>{:.7}</LatitudeDegrees>
              <LongitudeDegrees>{:.7}</LongitudeDegrees>
            </Position>
            <AltitudeMeters>{:.1}</AltitudeMeters>
            <DistanceMeters>{:.1}</DistanceMeters>
            <HeartRateBpm>
              <Value>{}</Value>
            </HeartRateBpm>
            <Cadence>{}</Cadence>
            <Extensions>
              <ns3:TPX>
                <ns3:Speed>{:.2}</ns3:Speed>
                <ns3:Watts>{}</ns3:Watts>
              </ns3:TPX>
            </Extensions>
          </Trackpoint>
"#,
                    iso_millis(s.time),
                    s.lat,
                    s.lon,
                    s.altitude_m,
                    s.distance_m,
                    s.heart_rate,
                    s.cadence,
                    s.speed_m_s,
                    s.power_w
                )
                .unwrap();
            }
            write!(out, "        </Track>\n      </Lap>\n").unwrap();
        }
        write!(
            out,
            r#"      <Creator xsi:type="Device_t">
        <Name>Edge 530</Name>
        <UnitId>3345678901</UnitId>
        <ProductID>3121</ProductID>
      </Creator>
    </Activity>
  </Activities>
</TrainingCenterDatabase>
"#
        )
        .unwrap();
        out.flush().unwrap();
    }
    Case::new("tcx_rides_4x6h", dir, RIDE_ROWS).of_subject(DEVICE_SUBJECT)
}

// --- Phone and wearable exports.

/// A Fitbit account export from Google Takeout: per day, `heart_rate-YYYY-MM-DD.json` (a
/// reading every 5 s, with its confidence) and `steps-YYYY-MM-DD.json` (a count a minute, as
/// text), pretty-printed the way Fitbit writes them.
fn fitbit_takeout(dir: &Path) -> Case {
    let dir = dir.join("Takeout/Fitbit/Global Export Data");
    let first = NaiveDate::from_ymd_opt(2020, 1, 6).unwrap();
    let mut rows = 0;
    for day in 0..FITBIT_DAYS {
        let date = first + chrono::Duration::days(day as i64);
        let midnight = date.and_hms_opt(0, 0, 0).unwrap();
        let fitbit_time = |seconds: usize| -> String {
            (midnight + chrono::Duration::seconds(seconds as i64))
                .format("%m/%d/%y %H:%M:%S")
                .to_string()
        };
        let mut heart = create(&dir.join(format!("heart_rate-{date}.json")));
        let mut entries = String::new();
        for reading in 0..86_400 / 5 {
            let bpm = 60 + (reading * 11 + day * 3) % 60;
            let confidence = reading % 4;
            write!(
                entries,
                "{}{{\n  \"dateTime\" : \"{}\",\n  \"value\" : {{\n    \"bpm\" : {bpm},\n    \"confidence\" : {confidence}\n  }}\n}}",
                if reading == 0 { "[" } else { "," },
                fitbit_time(reading * 5)
            )
            .unwrap();
            rows += 1;
        }
        writeln!(heart, "{entries}]").unwrap();
        heart.flush().unwrap();
        let mut steps = create(&dir.join(format!("steps-{date}.json")));
        let mut entries = String::new();
        for minute in 0..1440 {
            let count = (minute * 37 + day) % 130;
            write!(
                entries,
                "{}{{\n  \"dateTime\" : \"{}\",\n  \"value\" : \"{count}\"\n}}",
                if minute == 0 { "[" } else { "," },
                fitbit_time(minute * 60)
            )
            .unwrap();
            rows += 1;
        }
        writeln!(steps, "{entries}]").unwrap();
        steps.flush().unwrap();
    }
    Case::new("fitbit_takeout_4d", dir, rows).of_subject(DEVICE_SUBJECT)
}

/// Google Fit's `Daily activity metrics/YYYY-MM-DD.csv`: 96 quarter-hours a day, times of day
/// with the UTC offset, the average heart rate every quarter (the watch is worn), steps,
/// distance and move minutes while awake (07:00–23:00).
fn google_fit_days(dir: &Path) -> Case {
    const HEADER: &str = "Start time,End time,Move Minutes count,Calories (kcal),Distance (m),\
Heart Points,Heart Minutes,Average heart rate (bpm),Max heart rate (bpm),Min heart rate (bpm),\
Low latitude (deg),Low longitude (deg),High latitude (deg),High longitude (deg),\
Average speed (m/s),Max speed (m/s),Min speed (m/s),Step count,Average weight (kg),\
Max weight (kg),Min weight (kg),Walking duration (ms)";
    let dir = dir.join("Takeout/Fit/Daily activity metrics");
    let first = NaiveDate::from_ymd_opt(2026, 1, 12).unwrap();
    let mut rows = 0;
    for day in 0..GOOGLE_FIT_DAYS {
        let date = first + chrono::Duration::days(day as i64);
        let mut out = create(&dir.join(format!("{date}.csv")));
        writeln!(out, "{HEADER}").unwrap();
        let time_of_day = |quarter: usize| {
            let minutes = quarter % 96 * 15;
            format!("{:02}:{:02}:00.000+01:00", minutes / 60, minutes % 60)
        };
        for quarter in 0..96 {
            let (start, end) = (time_of_day(quarter), time_of_day(quarter + 1));
            let hr = 62.0 + ((quarter * 7 + day) % 40) as f64 + 0.5;
            let heart = format!("{hr:.1},{:.1},{:.1}", hr + 6.0, hr - 5.0);
            if (28..92).contains(&quarter) {
                let steps = 150 + (quarter * 53 + day * 11) % 1400;
                let distance = steps as f64 * 0.74;
                let move_minutes = steps / 100;
                writeln!(
                    out,
                    "{start},{end},{move_minutes},31.6,{distance:.1},,,{heart},,,,,1.2,1.6,0.8,{steps},,,,{}",
                    move_minutes * 60_000
                )
                .unwrap();
                rows += 2;
            } else {
                writeln!(out, "{start},{end},,20.5,,,,{heart},,,,,,,,,,,,").unwrap();
                rows += 1;
            }
        }
        out.flush().unwrap();
    }
    Case::new("google_fit_daily_7d", dir, rows).of_subject(DEVICE_SUBJECT)
}

/// The Open Food Facts export (`en.openfoodfacts.org.products.csv`, tab-separated): every
/// product named, with consistent energy (kcal and kJ) and salt/sodium. Foods go to
/// `reference.foods`; the report counts them loaded as rows accepted.
fn open_food_facts(dir: &Path) -> Case {
    const HEADER: &[&str] = &[
        "code",
        "url",
        "creator",
        "created_t",
        "created_datetime",
        "last_modified_t",
        "last_modified_datetime",
        "product_name",
        "generic_name",
        "quantity",
        "brands",
        "categories",
        "countries_en",
        "nutriscore_grade",
        "energy-kj_100g",
        "energy-kcal_100g",
        "energy_100g",
        "fat_100g",
        "saturated-fat_100g",
        "carbohydrates_100g",
        "sugars_100g",
        "fiber_100g",
        "proteins_100g",
        "salt_100g",
        "sodium_100g",
    ];
    let path = dir.join("en.openfoodfacts.org.products.csv");
    let mut out = create(&path);
    writeln!(out, "{}", HEADER.join("\t")).unwrap();
    for i in 0..OFF_PRODUCTS {
        let code = 3_017_620_000_000u64 + i as u64;
        let fat = (i % 250) as f64 / 10.0;
        let carbs = (i % 450) as f64 / 10.0;
        let protein = (i % 200) as f64 / 10.0;
        let fiber = (i % 80) as f64 / 10.0;
        let kcal = 9.0 * fat + 4.0 * carbs + 4.0 * protein + 2.0 * fiber;
        let kj = kcal * 4.184;
        let salt = (i % 40) as f64 / 20.0;
        writeln!(
            out,
            "{code}\thttp://world-en.openfoodfacts.org/product/{code}\topenfoodfacts-contributors\t1457680652\t\
             2016-03-11T07:57:32Z\t1700000000\t2023-11-14T22:13:20Z\tProduct {i}\t\t400 g\tBrand {}\t\
             Snacks\tFrance\tc\t{kj:.0}\t{kcal:.0}\t{kj:.0}\t{fat:.1}\t{:.1}\t{carbs:.1}\t{:.1}\t{fiber:.1}\t\
             {protein:.1}\t{salt:.2}\t{:.3}",
            i % 500,
            fat / 3.0,
            carbs / 2.0,
            salt / 2.5
        )
        .unwrap();
    }
    out.flush().unwrap();
    Case::new("open_food_facts_100k", path, OFF_PRODUCTS)
}

/// A USDA FoodData Central SR Legacy download as the CSV zip unpacks it: `food.csv`,
/// `food_nutrient.csv` (every food with the twelve nutrients read, ranked sources included,
/// and 71 more that are skipped) and `nutrient.csv`, all fields quoted. Foods go to
/// `reference.foods`; the report counts them loaded as rows accepted.
fn usda_fdc_sr_legacy(dir: &Path) -> Case {
    const READ: [(u32, &str, &str); 12] = [
        (1003, "Protein", "G"),
        (1004, "Total lipid (fat)", "G"),
        (1005, "Carbohydrate, by difference", "G"),
        (1008, "Energy", "KCAL"),
        (1050, "Carbohydrate, by summation", "G"),
        (1062, "Energy", "KJ"),
        (1063, "Sugars, Total NLEA", "G"),
        (1079, "Fiber, total dietary", "G"),
        (1093, "Sodium, Na", "MG"),
        (2000, "Total Sugars", "G"),
        (2047, "Energy (Atwater General Factors)", "KCAL"),
        (2048, "Energy (Atwater Specific Factors)", "KCAL"),
    ];
    let folder = dir.join("FoodData_Central_sr_legacy_food_csv_2018-04");
    let mut nutrient = create(&folder.join("nutrient.csv"));
    writeln!(nutrient, r#""id","name","unit_name","nutrient_nbr","rank""#).unwrap();
    for (rank, (id, name, unit)) in READ.iter().enumerate() {
        writeln!(
            nutrient,
            r#""{id}","{name}","{unit}","{}","{}""#,
            id - 800,
            rank * 100
        )
        .unwrap();
    }
    nutrient.flush().unwrap();
    let mut food = create(&folder.join("food.csv"));
    writeln!(
        food,
        r#""fdc_id","data_type","description","food_category_id","publication_date""#
    )
    .unwrap();
    let mut food_nutrient = create(&folder.join("food_nutrient.csv"));
    writeln!(
        food_nutrient,
        r#""id","fdc_id","nutrient_id","amount","data_points","derivation_id","min","max","median","loq","footnote","min_year_acquired","percent_daily_value""#
    )
    .unwrap();
    let mut row_id = 1_283_674u64;
    for i in 0..FDC_FOODS {
        let fdc_id = 167_512 + i;
        writeln!(
            food,
            r#""{fdc_id}","sr_legacy_food","Food {i}, raw, ""plain""","{}","2019-04-01""#,
            i % 25 + 1
        )
        .unwrap();
        let fat = (i % 400) as f64 / 10.0;
        let carbs = (i % 500) as f64 / 10.0;
        let protein = (i % 300) as f64 / 10.0;
        let kcal = 9.0 * fat + 4.0 * (carbs + protein);
        let amounts = [
            protein,
            fat,
            carbs,
            kcal,
            carbs * 0.98,
            kcal * 4.184,
            carbs / 3.0,
            carbs / 10.0,
            (i % 2000) as f64,
            carbs / 3.0,
            kcal * 1.01,
            kcal * 0.99,
        ];
        let others =
            (0..FDC_NUTRIENTS_PER_FOOD - READ.len()).map(|k| (1100 + k as u32, k as f64 / 7.0));
        for (nutrient_id, amount) in READ.iter().map(|r| r.0).zip(amounts).chain(others) {
            row_id += 1;
            writeln!(
                food_nutrient,
                r#""{row_id}","{fdc_id}","{nutrient_id}","{amount:.3}","","70","","","","","","","""#
            )
            .unwrap();
        }
    }
    food.flush().unwrap();
    food_nutrient.flush().unwrap();
    Case::new("usda_fdc_sr_legacy", folder, FDC_FOODS)
}

/// The ANSES CIQUAL 2020 table as its spreadsheet exports it: `;`-separated, Windows-1252,
/// CRLF, French decimals, `traces`, `< 0,5` and `-` among the values, the nutrient columns
/// of the fixture `ingest/tests/fixtures/foods/ciqual`.
fn ciqual_2020(dir: &Path) -> Case {
    const HEADER: &str = "alim_grp_code;alim_ssgrp_code;alim_ssssgrp_code;alim_grp_nom_fr;\
        alim_ssgrp_nom_fr;alim_ssssgrp_nom_fr;alim_code;alim_nom_fr;alim_nom_sci;\
        Energie, Règlement UE N° 1169/2011 (kJ/100 g);Energie, Règlement UE N° 1169/2011 (kcal/100 g);\
        Energie, N x facteur Jones, avec fibres  (kJ/100 g);Energie, N x facteur Jones, avec fibres  (kcal/100 g);\
        Eau (g/100 g);Protéines, N x facteur de Jones (g/100 g);Protéines, N x 6.25 (g/100 g);\
        Glucides (g/100 g);Lipides (g/100 g);Sucres (g/100 g);Amidon (g/100 g);\
        Fibres alimentaires (g/100 g);AG saturés (g/100 g);AG 18:2 9c,12c (n-6), linoléique (g/100 g);\
        Sel chlorure de sodium (g/100 g);Sodium (mg/100 g);Vitamine C (mg/100 g)";
    // Windows-1252: the Latin-1 characters are their own byte, `œ` is 0x9C.
    let windows_1252 = |text: &str| -> Vec<u8> {
        text.chars()
            .map(|c| match c {
                'œ' => 0x9C,
                c => u8::try_from(u32::from(c)).unwrap(),
            })
            .collect()
    };
    let french = |value: f64| format!("{value:.1}").replace('.', ",");
    let mut text = String::new();
    text.push_str(HEADER);
    text.push_str("\r\n");
    for i in 0..CIQUAL_FOODS {
        let fat = (i % 400) as f64 / 10.0;
        let carbs = (i % 500) as f64 / 10.0;
        let protein = (i % 300) as f64 / 10.0;
        let kcal = 9.0 * fat + 4.0 * (carbs + protein);
        let trace_or = |value: f64| match i % 7 {
            0 => "traces".to_owned(),
            1 => "< 0,5".to_owned(),
            2 => "-".to_owned(),
            _ => french(value),
        };
        write!(
            text,
            "07;0701;070101;produits céréaliers;pains et assimilés;pains;{};Aliment {i}, cuit, à l'œuf;;\
             {};{};{};{};{};{};{};{};{};{};{};{};{};0,3;{};{};-\r\n",
            10_000 + i,
            french(kcal * 4.184),
            french(kcal),
            french(kcal * 4.2),
            french(kcal * 1.01),
            french(100.0 - fat - carbs - protein),
            french(protein),
            french(protein * 1.05),
            french(carbs),
            french(fat),
            trace_or(carbs / 3.0),
            french(carbs / 2.0),
            trace_or(carbs / 10.0),
            french(fat / 3.0),
            french((i % 2000) as f64 * 2.5 / 1000.0),
            french((i % 2000) as f64),
        )
        .unwrap();
    }
    let path = dir.join("Table Ciqual 2020_FR_2020 07 07.csv");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, windows_1252(&text)).unwrap();
    Case::new("ciqual_2020", path, CIQUAL_FOODS)
}

async fn ingest_case(setup: &Setup, case: &Case) {
    let report = ingest::ingest(
        &setup.engine,
        &setup.principal,
        std::slice::from_ref(&case.path),
        &case.options,
        &Silent,
    )
    .await
    .unwrap();
    assert!(
        report.failed.is_empty(),
        "{}: {:?}",
        case.name,
        report.failed
    );
    assert_eq!(
        report.totals().rows_accepted,
        case.rows,
        "{}: rows accepted ({} rejected: {:?})",
        case.name,
        report.rejections_total,
        report.rejections.first()
    );
}

fn ingest_formats(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("ingest");
    // Iterations take 0.3-2 s: one to a few per sample keeps the whole run in minutes.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for generate in CASES {
        let setup = runtime.block_on(setup());
        let case = generate(&setup.dir.path().join("input"));
        group.throughput(Throughput::Elements(case.rows));
        group.bench_function(case.name, |b| {
            b.iter(|| runtime.block_on(ingest_case(&setup, &case)))
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_formats);
criterion_main!(benches);
