//! The health workload benchmark: eleven queries shaped like the TSBS devops queries, in health
//! terms, over data from the project's simulator loaded into a real engine (embedded SQLite
//! catalog, local directory store, compacted), timed in several modes: in-process with the
//! defaults, in-process with DataFusion's generic plans, through Flight SQL end to end, and
//! DuckDB over the same Parquet files.
//!
//! `cargo bench --bench workload -- --scale xs` (`--help` for the options). The loaded store is
//! kept under `--data` and reused by the next run of the same scale. Prints a results table and
//! writes it to `benches/results/workload-<scale>.md` when every query ran in every mode. See
//! benches/README.md.

use std::{
    collections::BTreeMap,
    error::Error,
    fmt::Write as _,
    fs,
    future::Future,
    io::{BufRead, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::Int64Type,
};
use arrow_flight::{
    flight_service_client::FlightServiceClient, sql::client::FlightSqlServiceClient,
};
use catalog::{Catalog, CatalogUrl, NewUser, Role};
use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use clap::Parser;
use engine::{Engine, EngineConfig, MaintenanceConfig, Principal, StoreLocation};
use futures::TryStreamExt;
use ingest::{
    IngestOptions, Silent,
    simulate::{SimulationFormat, SimulationOptions, simulate},
};
use object_store::ObjectStore;
use parquet::arrow::{
    ProjectionMask,
    arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder},
};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

/// The allocator the `healthai` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const ORG: &str = "default";
/// The simulator's seed and first day: every load of a scale holds the same data.
const SEED: u64 = 42;
const START: (i32, u32, u32) = (2026, 3, 1);
/// Subjects simulated and ingested at a time, so that the CSV files of a large scale never
/// take the disk at once.
const CHUNK_SUBJECTS: usize = 50;
/// Bumped when what a load writes changes, so that older stores are loaded again.
const LOAD_VERSION: u32 = 2;
const USER: &str = "workload-bench@example.org";
const PASSWORD: &str = "workload-bench-password";

/// A data size: subjects × days of simulated data. The simulator writes ~1 350 heart-rate
/// rows per subject-day (one a minute while the watch is worn), measured at `tiny`.
struct Scale {
    name: &'static str,
    subjects: usize,
    days: u32,
}

const SCALES: [Scale; 4] = [
    // A smoke run: every query and mode, in seconds.
    Scale {
        name: "tiny",
        subjects: 8,
        days: 3,
    },
    // ≈ 12 M heart-rate rows.
    Scale {
        name: "xs",
        subjects: 300,
        days: 30,
    },
    // ≈ 100 M.
    Scale {
        name: "s",
        subjects: 840,
        days: 90,
    },
    // ≈ 500 M.
    Scale {
        name: "m",
        subjects: 4_200,
        days: 90,
    },
];

#[derive(Parser, Debug)]
#[command(about = "The health workload benchmark (see benches/README.md)")]
struct Args {
    /// Data size: tiny (smoke run), xs (≈ 12 M heart-rate rows), s (≈ 100 M), m (≈ 500 M)
    #[arg(long, default_value = "xs")]
    scale: String,
    /// Where the loaded store lives between runs [default: /tmp/healthai-workload/<scale>]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Timed runs per query and mode, after one warm-up run; the median is reported
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Modes to run, comma-separated [default: all of them]
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Only these queries, comma-separated (q1 … q11, k1, k2) [default: all of them]
    #[arg(long, value_delimiter = ',')]
    queries: Vec<String>,
    /// The Python with the `duckdb` package, for the DuckDB mode
    /// [default: ~/.cache/healthai-venv/bin/python, else python3]
    #[arg(long)]
    python: Option<PathBuf>,
    /// Load the data again even if the store holds this scale
    #[arg(long)]
    reload: bool,
    /// What `cargo bench` passes to every benchmark binary.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let Some(scale) = SCALES.iter().find(|s| s.name == args.scale) else {
        let names: Vec<_> = SCALES.iter().map(|s| s.name).collect();
        return Err(format!(
            "unknown scale {:?}: one of {}",
            args.scale,
            names.join(", ")
        )
        .into());
    };
    let modes: Vec<Mode> = modes()
        .into_iter()
        .filter(|m| args.modes.is_empty() || args.modes.iter().any(|n| n == m.name()))
        .collect();
    if modes.is_empty() {
        let names: Vec<_> = self::modes().iter().map(|m| m.name()).collect();
        return Err(format!("no such modes {:?}: of {}", args.modes, names.join(", ")).into());
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&args, scale, modes))
}

async fn run(args: &Args, scale: &Scale, modes: Vec<Mode>) -> Result<()> {
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| Path::new("/tmp/healthai-workload").join(scale.name));
    let loaded = load(&dir, scale, args.reload).await?;
    let (catalog, store) = open(&dir).await?;
    let engine = Engine::open(catalog.clone(), store.clone(), EngineConfig::default())?;
    let data = describe(&engine, &loaded).await?;
    let windows = Windows::choose(&engine, scale).await?;
    let queries: Vec<Query> = queries(&windows)
        .into_iter()
        .filter(|q| args.queries.is_empty() || args.queries.iter().any(|n| n == q.name))
        .collect();
    let mut covered = Vec::new();
    for query in &queries {
        covered.push(covered_rows(&engine, query).await?);
    }
    let context = Context {
        dir: dir.clone(),
        catalog,
        store,
        python: args.python.clone(),
    };
    let results = run_modes(&context, &modes, &queries, args.runs).await;
    let floor = if queries.iter().any(|q| FLOOR_QUERIES.contains(&q.name)) {
        let floor = decode_floor(&context, args.runs)
            .await
            .map_err(|e| e.to_string());
        match &floor {
            Ok(m) => eprintln!(
                "the Parquet-decode floor: {:.2} ms {} rows",
                m.median_ms, m.rows
            ),
            Err(e) => eprintln!("the Parquet-decode floor: {e}"),
        }
        Some(floor)
    } else {
        None
    };
    let warnings = compare_rows(&queries, &modes, &results);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let report = report(
        scale,
        &data,
        &queries,
        &covered,
        &modes,
        &results,
        floor.as_ref(),
        &warnings,
        args.runs,
    );
    println!("{report}");
    // A run of some queries or modes (an A/B comparison) must not replace the whole table.
    let whole = args.queries.is_empty() && args.modes.is_empty();
    if !whole {
        eprintln!("only some queries or modes ran: benches/results left as they are");
    } else if scale.name != "tiny" {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/results")
            .join(format!("workload-{}.md", scale.name));
        fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        fs::write(&path, &report)?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Loading

/// What a load recorded in the store directory: the scale it holds and what it took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Marker {
    version: u32,
    scale: String,
    subjects: usize,
    days: u32,
    seed: u64,
    rows_ingested: u64,
    load_seconds: f64,
    compaction_seconds: f64,
}

const MARKER: &str = "workload.json";

async fn open(dir: &Path) -> Result<(Arc<dyn Catalog>, Arc<dyn ObjectStore>)> {
    let url = CatalogUrl::sqlite(dir.join("catalog.db"));
    catalog::migrate(&url).await?;
    let catalog = catalog::open(&url).await?;
    let store = StoreLocation::Local(dir.join("store")).open()?;
    Ok((catalog, store))
}

/// The store of `scale` in `dir`: reused when its marker says it holds this scale, otherwise
/// simulated, ingested and compacted (the catalog and store there are replaced).
async fn load(dir: &Path, scale: &Scale, reload: bool) -> Result<Marker> {
    let marker_path = dir.join(MARKER);
    if !reload
        && let Ok(text) = fs::read_to_string(&marker_path)
        && let Ok(marker) = serde_json::from_str::<Marker>(&text)
        && marker.version == LOAD_VERSION
        && marker.scale == scale.name
        && marker.subjects == scale.subjects
        && marker.days == scale.days
        && marker.seed == SEED
    {
        eprintln!("reusing the {} store in {}", scale.name, dir.display());
        return Ok(marker);
    }
    fs::create_dir_all(dir)?;
    for stale in [MARKER, "catalog.db", "catalog.db-wal", "catalog.db-shm"] {
        remove_if_present(&dir.join(stale))?;
    }
    remove_if_present(&dir.join("store"))?;
    let csv = dir.join("csv");
    remove_if_present(&csv)?;

    eprintln!(
        "loading {}: {} subjects × {} days into {}",
        scale.name,
        scale.subjects,
        scale.days,
        dir.display()
    );
    let (catalog, store) = open(dir).await?;
    // Replaced files are deleted as soon as compaction is done with them: nothing else reads
    // this store while it loads, and the disk is limited.
    let config = EngineConfig {
        maintenance: MaintenanceConfig {
            deletion_grace: Duration::ZERO,
            ..MaintenanceConfig::default()
        },
        ..EngineConfig::default()
    };
    let engine = Engine::open(catalog, store, config)?;
    let principal = Principal::operator(engine.organization(ORG).await?);
    let started = Instant::now();
    let mut rows_ingested = 0;
    let mut heart_rate_rows = 0;
    let chunks = scale.subjects.div_ceil(CHUNK_SUBJECTS);
    for chunk in 0..chunks {
        let first_subject = chunk * CHUNK_SUBJECTS;
        let options = SimulationOptions {
            subjects: CHUNK_SUBJECTS.min(scale.subjects - first_subject),
            first_subject,
            days: scale.days,
            seed: SEED,
            start: start_day(),
            defects: false,
            format: SimulationFormat::Csv,
        };
        let simulated = Instant::now();
        let summary = simulate(&options, &csv)?;
        let simulate_seconds = simulated.elapsed().as_secs_f64();
        let ingested = Instant::now();
        let report = ingest::ingest(
            &engine,
            &principal,
            std::slice::from_ref(&csv),
            &IngestOptions::default(),
            &Silent,
        )
        .await?;
        fs::remove_dir_all(&csv)?;
        if !report.failed.is_empty() {
            return Err(format!("files failed to ingest: {:?}", report.failed).into());
        }
        let totals = report.totals();
        if report.rejections_total > 0 {
            eprintln!(
                "  {} rows rejected, e.g. {:?}",
                report.rejections_total,
                report.rejections.first()
            );
        }
        rows_ingested += totals.rows_accepted;
        heart_rate_rows += summary.rows.get("heart_rate").copied().unwrap_or(0);
        eprintln!(
            "  chunk {}/{chunks}: subjects {}–{}, {} rows simulated in {simulate_seconds:.1} s, \
             ingested in {:.1} s; {:.0} heart-rate rows per subject-day so far",
            chunk + 1,
            first_subject + 1,
            first_subject + options.subjects,
            summary.rows.values().sum::<u64>(),
            ingested.elapsed().as_secs_f64(),
            heart_rate_rows as f64
                / ((first_subject + options.subjects) as f64 * f64::from(scale.days)),
        );
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let compacted = Instant::now();
    let compaction = engine.compact(2).await?;
    engine.collect_garbage(Utc::now()).await?;
    let compaction_seconds = compacted.elapsed().as_secs_f64();
    eprintln!(
        "loaded {rows_ingested} rows in {load_seconds:.1} s ({:.2} M rows/s), compacted in \
         {compaction_seconds:.1} s: {compaction:?}",
        rows_ingested as f64 / load_seconds / 1e6
    );
    let marker = Marker {
        version: LOAD_VERSION,
        scale: scale.name.to_owned(),
        subjects: scale.subjects,
        days: scale.days,
        seed: SEED,
        rows_ingested,
        load_seconds,
        compaction_seconds,
    };
    fs::write(marker_path, serde_json::to_string_pretty(&marker)?)?;
    Ok(marker)
}

fn remove_if_present(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn start_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(START.0, START.1, START.2).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The queries

/// The time windows and subjects the queries ask about: chosen from the scale and the
/// subjects' pseudonyms, so every run of a scale asks the same.
struct Windows {
    /// The first 8 subjects by pseudonym.
    subjects: Vec<i64>,
    /// A day in the middle of the data (UTC).
    day: NaiveDateTime,
    /// 10:00–11:00 UTC on that day.
    hour: NaiveDateTime,
    /// Noon of that day.
    before: NaiveDateTime,
    /// The last 7 days of data (UTC days), or all of it when shorter.
    week_start: NaiveDateTime,
    end: NaiveDateTime,
}

impl Windows {
    async fn choose(engine: &Engine, scale: &Scale) -> Result<Windows> {
        let subjects = engine
            .query(
                ORG,
                "SELECT subject_id FROM meta.subjects ORDER BY pseudonym LIMIT 8",
            )
            .await?;
        let subjects: Vec<i64> = subjects
            .batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        if subjects.len() < 8 {
            return Err(format!("8 subjects needed, the store has {}", subjects.len()).into());
        }
        let at = |days: u64, hour: u32| {
            start_day()
                .checked_add_days(Days::new(days))
                .unwrap_or_default()
                .and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or_default())
        };
        let middle = u64::from(scale.days / 2);
        let days = u64::from(scale.days);
        Ok(Windows {
            subjects,
            day: at(middle, 0),
            hour: at(middle, 10),
            before: at(middle, 12),
            // The simulated days are local: the first starts on the eve in UTC.
            week_start: if days >= 7 {
                at(days - 7, 0)
            } else {
                at(0, 0) - chrono::Duration::days(1)
            },
            end: at(days, 0),
        })
    }
}

fn ts(t: NaiveDateTime) -> String {
    format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S"))
}

/// One query, in our dialect and in DuckDB's, side by side, and the stream rows its range
/// covers.
struct Query {
    name: &'static str,
    title: &'static str,
    ours: String,
    duckdb: String,
    /// `(stream, predicate)`: the rows of each stream the query reads, counted once.
    covers: Vec<(&'static str, String)>,
}

fn queries(w: &Windows) -> Vec<Query> {
    let s1 = w.subjects[0];
    let eight = w
        .subjects
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let hour = format!(
        "time >= {} AND time < {}",
        ts(w.hour),
        ts(w.hour + chrono::Duration::hours(1))
    );
    let day = format!(
        "time >= {} AND time < {}",
        ts(w.day),
        ts(w.day + chrono::Duration::days(1))
    );
    let before = format!("time < {}", ts(w.before));
    let week = format!("time >= {} AND time < {}", ts(w.week_start), ts(w.end));
    // 220 − age, the age from the birth year; a common default where the year is unknown.
    let max_hr = "COALESCE(220 - (extract(year FROM h.time) - s.birth_year), 190)";
    let zone = |pct: &str| {
        format!(
            "CASE WHEN {pct} < 0.6 THEN 1 WHEN {pct} < 0.7 THEN 2 WHEN {pct} < 0.8 THEN 3 \
             WHEN {pct} < 0.9 THEN 4 ELSE 5 END"
        )
    };
    vec![
        Query {
            name: "q1",
            title: "per-minute max heart rate, 1 subject, 1 hour",
            ours: format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) AS max_bpm \
                 FROM heart_rate WHERE subject_id = {s1} AND {hour} \
                 GROUP BY minute ORDER BY minute"
            ),
            duckdb: format!(
                "SELECT date_trunc('minute', time) AS minute, max(bpm) AS max_bpm \
                 FROM heart_rate WHERE subject_id = {s1} AND {hour} \
                 GROUP BY minute ORDER BY minute"
            ),
            covers: vec![("heart_rate", format!("subject_id = {s1} AND {hour}"))],
        },
        Query {
            name: "q2",
            title: "per-minute max heart rate, 8 subjects, 1 hour",
            ours: format!(
                "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS minute, \
                 max(bpm) AS max_bpm FROM heart_rate \
                 WHERE subject_id IN ({eight}) AND {hour} \
                 GROUP BY subject_id, minute ORDER BY subject_id, minute"
            ),
            duckdb: format!(
                "SELECT subject_id, date_trunc('minute', time) AS minute, \
                 max(bpm) AS max_bpm FROM heart_rate \
                 WHERE subject_id IN ({eight}) AND {hour} \
                 GROUP BY subject_id, minute ORDER BY subject_id, minute"
            ),
            covers: vec![("heart_rate", format!("subject_id IN ({eight}) AND {hour}"))],
        },
        Query {
            name: "q3",
            title: "hourly heart rate ⋈ hourly steps, every subject, 1 day",
            ours: format!(
                "WITH hr AS (SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, \
                 avg(bpm) AS mean_bpm FROM heart_rate WHERE {day} GROUP BY subject_id, hour), \
                 st AS (SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, \
                 sum(\"count\") AS steps FROM steps WHERE {day} GROUP BY subject_id, hour) \
                 SELECT hr.subject_id, hr.hour, hr.mean_bpm, COALESCE(st.steps, 0) AS steps \
                 FROM hr LEFT JOIN st ON st.subject_id = hr.subject_id AND st.hour = hr.hour \
                 ORDER BY hr.subject_id, hr.hour"
            ),
            duckdb: format!(
                "WITH hr AS (SELECT subject_id, date_trunc('hour', time) AS hour, \
                 avg(bpm) AS mean_bpm FROM heart_rate WHERE {day} GROUP BY subject_id, hour), \
                 st AS (SELECT subject_id, date_trunc('hour', time) AS hour, \
                 sum(\"count\") AS steps FROM steps WHERE {day} GROUP BY subject_id, hour) \
                 SELECT hr.subject_id, hr.hour, hr.mean_bpm, COALESCE(st.steps, 0) AS steps \
                 FROM hr LEFT JOIN st ON st.subject_id = hr.subject_id AND st.hour = hr.hour \
                 ORDER BY hr.subject_id, hr.hour"
            ),
            covers: vec![("heart_rate", day.clone()), ("steps", day.clone())],
        },
        Query {
            name: "q4",
            title: "hourly mean and median heart rate, every subject, 1 day",
            ours: format!(
                "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, \
                 avg(bpm) AS mean_bpm, median(bpm) AS median_bpm FROM heart_rate \
                 WHERE {day} GROUP BY subject_id, hour ORDER BY subject_id, hour"
            ),
            duckdb: format!(
                "SELECT subject_id, date_trunc('hour', time) AS hour, \
                 avg(bpm) AS mean_bpm, median(bpm) AS median_bpm FROM heart_rate \
                 WHERE {day} GROUP BY subject_id, hour ORDER BY subject_id, hour"
            ),
            covers: vec![("heart_rate", day.clone())],
        },
        Query {
            name: "q5",
            title: "daily resting heart rate (lowest hourly mean of ≥ 6 readings), every subject, all days",
            ours: "WITH hourly AS (SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, \
                   avg(bpm) AS mean_bpm, count(bpm) AS readings FROM heart_rate \
                   GROUP BY subject_id, hour) \
                   SELECT subject_id, date_bin(INTERVAL '1 day', hour) AS day, \
                   min(mean_bpm) AS resting_bpm FROM hourly WHERE readings >= 6 \
                   GROUP BY subject_id, day"
                .to_owned(),
            duckdb: "WITH hourly AS (SELECT subject_id, date_trunc('hour', time) AS hour, \
                     avg(bpm) AS mean_bpm, count(bpm) AS readings FROM heart_rate \
                     GROUP BY subject_id, hour) \
                     SELECT subject_id, date_trunc('day', hour) AS day, \
                     min(mean_bpm) AS resting_bpm FROM hourly WHERE readings >= 6 \
                     GROUP BY subject_id, day"
                .to_owned(),
            covers: vec![("heart_rate", "TRUE".to_owned())],
        },
        Query {
            name: "q6",
            title: "readings above 90 % of max heart rate ⋈ subjects, 1 day",
            ours: format!(
                "SELECT s.pseudonym, h.subject_id, h.time, h.bpm \
                 FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id \
                 WHERE h.{day_h} AND h.bpm > 0.9 * {max_hr}",
                day_h = day.replacen("time <", "h.time <", 1)
            ),
            duckdb: format!(
                "SELECT s.pseudonym, h.subject_id, h.time, h.bpm \
                 FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id \
                 WHERE h.{day_h} AND h.bpm > 0.9 * {max_hr}",
                day_h = day.replacen("time <", "h.time <", 1)
            ),
            covers: vec![("heart_rate", day.clone())],
        },
        Query {
            name: "q7",
            title: "last reading per subject",
            ours: "SELECT subject_id, max(time) AS time, last_value(bpm ORDER BY time) AS bpm \
                   FROM heart_rate GROUP BY subject_id"
                .to_owned(),
            duckdb: "SELECT subject_id, max(time) AS time, arg_max(bpm, time) AS bpm \
                     FROM heart_rate GROUP BY subject_id"
                .to_owned(),
            covers: vec![("heart_rate", "TRUE".to_owned())],
        },
        Query {
            name: "q8",
            title: "per-minute max heart rate before a time, latest 5 minutes",
            ours: format!(
                "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) AS max_bpm \
                 FROM heart_rate WHERE {before} GROUP BY minute ORDER BY minute DESC LIMIT 5"
            ),
            duckdb: format!(
                "SELECT date_trunc('minute', time) AS minute, max(bpm) AS max_bpm \
                 FROM heart_rate WHERE {before} GROUP BY minute ORDER BY minute DESC LIMIT 5"
            ),
            covers: vec![("heart_rate", before.clone())],
        },
        Query {
            name: "q9",
            title: "heart-rate-zone minutes per subject and week, all days",
            ours: format!(
                "SELECT subject_id, week, zone, count(*) AS minutes FROM (\
                 SELECT h.subject_id, date_bin(INTERVAL '7 days', h.time) AS week, \
                 {zone} AS zone FROM heart_rate h \
                 JOIN meta.subjects s ON s.subject_id = h.subject_id \
                 WHERE h.bpm >= 0.5 * {max_hr}) GROUP BY subject_id, week, zone",
                zone = zone(&format!("h.bpm / {max_hr}"))
            ),
            // time_bucket's default origin is a Monday in 2000; date_bin's is the epoch.
            duckdb: format!(
                "SELECT subject_id, week, zone, count(*) AS minutes FROM (\
                 SELECT h.subject_id, \
                 time_bucket(INTERVAL '7 days', h.time::TIMESTAMP, TIMESTAMP '1970-01-01') AS week, \
                 {zone} AS zone FROM heart_rate h \
                 JOIN meta.subjects s ON s.subject_id = h.subject_id \
                 WHERE h.bpm >= 0.5 * {max_hr}) GROUP BY subject_id, week, zone",
                zone = zone(&format!("h.bpm / {max_hr}"))
            ),
            covers: vec![("heart_rate", "TRUE".to_owned())],
        },
        Query {
            name: "q10",
            title: "daily nutrition totals per subject (meals ⋈ foods), all days",
            ours: "SELECT m.subject_id, date_bin(INTERVAL '1 day', m.time) AS day, \
                   sum(m.quantity_g * f.energy_kcal / 100) AS energy_kcal, \
                   sum(m.quantity_g * f.protein_g / 100) AS protein_g, \
                   sum(m.quantity_g * f.carbs_g / 100) AS carbs_g, \
                   sum(m.quantity_g * f.fat_g / 100) AS fat_g \
                   FROM meals m JOIN reference.foods f ON f.food_id = m.food_id \
                   GROUP BY m.subject_id, day"
                .to_owned(),
            duckdb: "SELECT m.subject_id, date_trunc('day', m.time) AS day, \
                     sum(m.quantity_g * f.energy_kcal / 100) AS energy_kcal, \
                     sum(m.quantity_g * f.protein_g / 100) AS protein_g, \
                     sum(m.quantity_g * f.carbs_g / 100) AS carbs_g, \
                     sum(m.quantity_g * f.fat_g / 100) AS fat_g \
                     FROM meals m JOIN reference.foods f ON f.food_id = m.food_id \
                     GROUP BY m.subject_id, day"
                .to_owned(),
            covers: vec![("meals", "TRUE".to_owned())],
        },
        Query {
            name: "q11",
            title: "top 10 subjects by steps, 7 days",
            ours: format!(
                "SELECT subject_id, sum(\"count\") AS steps FROM steps WHERE {week} \
                 GROUP BY subject_id ORDER BY steps DESC, subject_id LIMIT 10"
            ),
            duckdb: format!(
                "SELECT subject_id, sum(\"count\") AS steps FROM steps WHERE {week} \
                 GROUP BY subject_id ORDER BY steps DESC, subject_id LIMIT 10"
            ),
            covers: vec![("steps", week.clone())],
        },
        // The aggregation targets (issue 7): per subject and minute, max and mean over
        // everything, beside DuckDB over the same Parquet files; then the same per hour, an
        // aggregation that reduces (60 readings to a row), which the rollups answer in the
        // `engine` mode and the kernel computes in the `kernel` mode.
        every_subject(
            "k1",
            "per-minute max and mean heart rate, every subject, all days",
            "minute",
        ),
        every_subject(
            "k2",
            "hourly max and mean heart rate, every subject, all days",
            "hour",
        ),
    ]
}

/// Max and mean heart rate of every subject per `unit` (`minute`, `hour`), all days.
fn every_subject(name: &'static str, title: &'static str, unit: &str) -> Query {
    let select = |bucket: String| {
        format!(
            "SELECT subject_id, {bucket} AS {unit}, max(bpm) AS max_bpm, avg(bpm) AS mean_bpm \
             FROM heart_rate GROUP BY subject_id, {unit}"
        )
    };
    Query {
        name,
        title,
        ours: select(format!("date_bin(INTERVAL '1 {unit}', time)")),
        duckdb: select(format!("date_trunc('{unit}', time)")),
        covers: vec![("heart_rate", "TRUE".to_owned())],
    }
}

async fn covered_rows(engine: &Engine, query: &Query) -> Result<u64> {
    let mut rows = 0;
    for (stream, predicate) in &query.covers {
        let sql = format!("SELECT count(*) FROM {stream} WHERE {predicate}");
        rows += single_int(&engine.query(ORG, &sql).await?.batches)? as u64;
    }
    Ok(rows)
}

fn single_int(batches: &[RecordBatch]) -> Result<i64> {
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>())
        .filter(|c| !c.is_null(0))
        .map(|c| c.value(0))
        .ok_or_else(|| "expected one integer".into())
}

// ---------------------------------------------------------------------------------------------
// Modes

/// One way of running the queries. Add a mode to `modes()` to compare another configuration;
/// another peer is a variant here and in `Runner`.
enum Mode {
    /// `Engine::query_as` in this process, as the organization's operator, on an engine with
    /// this configuration.
    InProcess {
        name: &'static str,
        description: &'static str,
        config: Box<EngineConfig>,
    },
    /// The Flight SQL server started in this process on a loopback port, and the Rust Flight
    /// SQL client: handshake once, then execute and fetch every batch per run.
    FlightSql,
    /// DuckDB (Python) over the same live Parquet files and exports of the reference tables.
    DuckDb,
}

fn modes() -> Vec<Mode> {
    vec![
        Mode::InProcess {
            name: "engine",
            description: "in-process Engine::query_as, default configuration",
            config: Box::default(),
        },
        Mode::InProcess {
            name: "kernel",
            description: "in-process Engine::query_as, rollups off (raw rows through the \
                          aggregation kernel)",
            config: Box::new(EngineConfig {
                rollups: false,
                ..EngineConfig::default()
            }),
        },
        Mode::InProcess {
            name: "generic",
            description: "in-process Engine::query_as, aggregation kernel and rollups off \
                          (DataFusion's generic plans)",
            config: Box::new(EngineConfig {
                aggregation_kernel: false,
                rollups: false,
                ..EngineConfig::default()
            }),
        },
        Mode::FlightSql,
        Mode::DuckDb,
    ]
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::InProcess { name, .. } => name,
            Mode::FlightSql => "flight-sql",
            Mode::DuckDb => "duckdb",
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Mode::InProcess { description, .. } => description,
            Mode::FlightSql => {
                "Flight SQL end to end (in-process server on 127.0.0.1, Rust client)"
            }
            Mode::DuckDb => "DuckDB over the same Parquet files",
        }
    }

    /// Makes the mode ready to run queries: its engine opened, its server started, its
    /// process up.
    async fn start(&self, cx: &Context) -> Result<Runner> {
        match self {
            Mode::InProcess { config, .. } => Ok(Runner::InProcess(Engine::open(
                cx.catalog.clone(),
                cx.store.clone(),
                (**config).clone(),
            )?)),
            Mode::FlightSql => FlightSqlRunner::start(cx).await.map(Runner::FlightSql),
            Mode::DuckDb => DuckDbRunner::start(cx).await.map(Runner::DuckDb),
        }
    }
}

struct Context {
    dir: PathBuf,
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    python: Option<PathBuf>,
}

/// A query's timing in one mode.
#[derive(Debug, Clone, Deserialize)]
struct Measure {
    median_ms: f64,
    rows: usize,
}

struct ModeResult {
    /// Per query, in the order of the queries: the measure, or why there is none.
    measures: Vec<std::result::Result<Measure, String>>,
    /// What to say about the mode as a whole (its version, why it did not run).
    note: Option<String>,
}

/// Runs every query in every mode, query by query: the modes of a query are measured within
/// seconds of each other, so that a change in what else the machine does between minutes
/// weighs on all of them alike.
async fn run_modes(
    cx: &Context,
    modes: &[Mode],
    queries: &[Query],
    runs: usize,
) -> Vec<ModeResult> {
    let mut runners = Vec::new();
    let mut results = Vec::new();
    for mode in modes {
        eprintln!("mode {}: {}", mode.name(), mode.describe());
        let runner = mode.start(cx).await;
        let note = match &runner {
            Ok(runner) => runner.note(),
            Err(e) => Some(format!("did not run: {e}")),
        };
        if let Some(note) = &note {
            eprintln!("  {note}");
        }
        runners.push(runner.map_err(|e| e.to_string()));
        results.push(ModeResult {
            measures: Vec::new(),
            note,
        });
    }
    for query in queries {
        eprintln!("{}: {}", query.name, query.title);
        for ((mode, runner), result) in modes.iter().zip(&mut runners).zip(&mut results) {
            let measure = match runner {
                Ok(runner) => runner.measure(query, runs).await,
                Err(e) => Err(e.clone()),
            };
            match &measure {
                Ok(m) => eprintln!(
                    "  {:<12} {:>10.2} ms {:>8} rows",
                    mode.name(),
                    m.median_ms,
                    m.rows
                ),
                Err(e) => eprintln!("  {:<12} {e}", mode.name()),
            }
            result.measures.push(measure);
        }
    }
    for runner in runners.into_iter().flatten() {
        if let Err(e) = runner.stop().await {
            eprintln!("warning: stopping a mode: {e}");
        }
    }
    results
}

/// A mode ready to run queries.
enum Runner {
    InProcess(Engine),
    FlightSql(FlightSqlRunner),
    DuckDb(DuckDbRunner),
}

impl Runner {
    fn note(&self) -> Option<String> {
        match self {
            Runner::DuckDb(duckdb) => Some(format!(
                "DuckDB {} with {} threads",
                duckdb.version, duckdb.threads
            )),
            Runner::InProcess(_) | Runner::FlightSql(_) => None,
        }
    }

    /// The query run once to warm up and `runs` times more: the median of those and the
    /// rows returned.
    async fn measure(
        &mut self,
        query: &Query,
        runs: usize,
    ) -> std::result::Result<Measure, String> {
        match self {
            Runner::InProcess(engine) => {
                let principal = match engine.organization(ORG).await {
                    Ok(org) => Principal::operator(org),
                    Err(e) => return Err(e.to_string()),
                };
                measure(runs, || async {
                    let stream = engine.query_as(&principal, &query.ours, None).await?;
                    Ok(stream
                        .try_fold(0, |rows, batch| async move { Ok(rows + batch.num_rows()) })
                        .await?)
                })
                .await
            }
            Runner::FlightSql(flight) => {
                let client = &flight.client;
                measure(runs, || async {
                    let mut client = client.clone();
                    let info = client.execute(query.ours.clone(), None).await?;
                    let mut rows = 0;
                    for endpoint in info.endpoint {
                        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
                        rows += client
                            .do_get(ticket)
                            .await?
                            .try_fold(0, |rows, batch| async move { Ok(rows + batch.num_rows()) })
                            .await?;
                    }
                    Ok(rows)
                })
                .await
            }
            Runner::DuckDb(duckdb) => duckdb.measure(query, runs),
        }
    }

    async fn stop(self) -> Result<()> {
        match self {
            Runner::InProcess(_) => Ok(()),
            Runner::FlightSql(flight) => {
                let _ = flight.stop.send(());
                flight.server.await??;
                Ok(())
            }
            Runner::DuckDb(duckdb) => duckdb.stop(),
        }
    }
}

/// Runs `query` once to warm up and `runs` times more; the median of those and the rows the
/// warm-up returned.
async fn measure<F, Fut>(runs: usize, mut query: F) -> std::result::Result<Measure, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    let rows = query().await.map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let again = query().await.map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if again != rows {
            return Err(format!("{rows} rows, then {again}"));
        }
    }
    Ok(Measure {
        median_ms: median(&mut times),
        rows,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The Flight SQL server of this process and a client logged in to it.
struct FlightSqlRunner {
    client: FlightSqlServiceClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<flight::Result<()>>,
}

impl FlightSqlRunner {
    async fn start(cx: &Context) -> Result<FlightSqlRunner> {
        let engine = Engine::open(
            cx.catalog.clone(),
            cx.store.clone(),
            EngineConfig::default(),
        )?;
        ensure_user(&engine).await?;
        let keys = flight::SigningKeys::secret_file(&cx.dir.join("jwt-secret"))?;
        let auth = Arc::new(flight::Authenticator::new(
            engine,
            keys,
            flight::AuthConfig::default(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(flight::serve(
            auth,
            listener,
            flight::ServerConfig::default(),
            async {
                let _ = stopped.await;
            },
        ));
        let channel = Channel::from_shared(format!("http://{address}"))?
            .connect()
            .await?;
        let inner = FlightServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let mut client = FlightSqlServiceClient::new_from_inner(inner);
        client.handshake(USER, PASSWORD).await?;
        Ok(FlightSqlRunner {
            client,
            stop,
            server,
        })
    }
}

/// The administrator the Flight SQL mode logs in as, created on the first run.
async fn ensure_user(engine: &Engine) -> Result<()> {
    let org = engine.organization(ORG).await?;
    let users = engine.catalog().users();
    match users.get_by_email(org.id, USER).await {
        Ok(user) => {
            users
                .set_password_hash(user.id, flight::Authenticator::hash_password(PASSWORD)?)
                .await?
        }
        Err(catalog::Error::NotFound { .. }) => {
            users
                .create(NewUser {
                    org: org.id,
                    email: USER.to_owned(),
                    display_name: Some("Workload benchmark".to_owned()),
                    password_hash: Some(flight::Authenticator::hash_password(PASSWORD)?),
                    roles: vec![Role::Admin],
                    subject: None,
                    coach_of: Vec::new(),
                })
                .await?;
        }
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

/// The queries measured against the Parquet-decode floor: they read its columns of every
/// row of its stream.
const FLOOR_QUERIES: [&str; 2] = ["k1", "k2"];
/// The columns k1 and k2 read, and the stream.
const FLOOR_STREAM: &str = "heart_rate";
const FLOOR_COLUMNS: [&str; 3] = ["subject_id", "time", "bpm"];

/// The Parquet-decode floor of k1 and k2: the columns they read, of every live heart-rate file, decoded
/// into Arrow batches of the engine's size and dropped: a row group at a time, on as many
/// threads as the engine has partitions, the files and their metadata read into memory
/// beforehand. No aggregation
/// reads Parquet faster than this; the brief asks the kernel's rows/s to be ≥ 60 % of it.
async fn decode_floor(cx: &Context, runs: usize) -> Result<Measure> {
    let engine = Engine::open(
        cx.catalog.clone(),
        cx.store.clone(),
        EngineConfig::default(),
    )?;
    let paths = live_files(cx, &engine)
        .await?
        .remove(FLOOR_STREAM)
        .unwrap_or_default();
    let mut files = Vec::with_capacity(paths.len());
    let mut row_groups = Vec::new();
    for path in paths {
        let bytes = bytes::Bytes::from(fs::read(&path)?);
        let metadata = ArrowReaderMetadata::load(&bytes, Default::default())?;
        row_groups.extend((0..metadata.metadata().num_row_groups()).map(|g| (files.len(), g)));
        files.push((bytes, metadata));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (files, row_groups) = (Arc::new(files), Arc::new(row_groups));
    let measured = measure(runs, || {
        let (files, row_groups) = (files.clone(), row_groups.clone());
        async move {
            tokio::task::spawn_blocking(move || decode_all(&files, &row_groups, threads)).await?
        }
    })
    .await;
    Ok(measured?)
}

/// Every row group decoded once, shared out among `threads` threads; the rows decoded.
fn decode_all(
    files: &[(bytes::Bytes, ArrowReaderMetadata)],
    row_groups: &[(usize, usize)],
    threads: usize,
) -> Result<usize> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| decode_row_groups(files, row_groups, &next)))
            .collect();
        let mut rows = 0;
        for worker in workers {
            rows += worker.join().map_err(|_| "a decoding thread panicked")??;
        }
        Ok(rows)
    })
}

/// Decodes the row groups `next` hands out until there are none left; the rows decoded.
fn decode_row_groups(
    files: &[(bytes::Bytes, ArrowReaderMetadata)],
    row_groups: &[(usize, usize)],
    next: &AtomicUsize,
) -> Result<usize> {
    let mut rows = 0;
    while let Some(&(file, row_group)) = row_groups.get(next.fetch_add(1, Ordering::Relaxed)) {
        let (bytes, metadata) = &files[file];
        let columns = ProjectionMask::columns(metadata.parquet_schema(), FLOOR_COLUMNS);
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), metadata.clone())
                .with_projection(columns)
                .with_row_groups(vec![row_group])
                .with_batch_size(FLOOR_BATCH_ROWS)
                .build()?;
        for batch in reader {
            rows += batch?.num_rows();
        }
    }
    Ok(rows)
}

/// DataFusion's default batch size, which the engine keeps.
const FLOOR_BATCH_ROWS: usize = 8192;

/// `benches/workload_duckdb.py` running, its views created, answering one query per line.
struct DuckDbRunner {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    version: String,
    threads: u64,
}

/// The line the script writes once its views are ready.
#[derive(Debug, Deserialize)]
struct DuckDbReady {
    version: String,
    threads: u64,
}

/// The line the script writes per query.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DuckDbAnswer {
    Measured(Measure),
    Failed { error: String },
}

impl DuckDbRunner {
    async fn start(cx: &Context) -> Result<DuckDbRunner> {
        let python = match &cx.python {
            Some(python) => python.clone(),
            None => {
                let venv = std::env::var_os("HOME")
                    .map(|home| Path::new(&home).join(".cache/healthai-venv/bin/python"));
                venv.filter(|p| p.exists())
                    .unwrap_or_else(|| PathBuf::from("python3"))
            }
        };
        let request_path = write_duckdb_tables(cx).await?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workload_duckdb.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg(&request_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the script's pipes are missing".into());
        };
        let mut output = BufReader::new(output);
        let mut line = String::new();
        tokio::task::block_in_place(|| output.read_line(&mut line))?;
        let Ok(ready) = serde_json::from_str::<DuckDbReady>(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "workload_duckdb.py did not start ({}); does {} have the duckdb and pyarrow \
                 packages? (pip install duckdb pyarrow, or --python)",
                line.trim(),
                python.display()
            )
            .into());
        };
        Ok(DuckDbRunner {
            child,
            input,
            output,
            version: ready.version,
            threads: ready.threads,
        })
    }

    fn measure(&mut self, query: &Query, runs: usize) -> std::result::Result<Measure, String> {
        let request = serde_json::json!({"sql": query.duckdb, "runs": runs});
        tokio::task::block_in_place(|| {
            writeln!(self.input, "{request}")
                .and_then(|()| self.input.flush())
                .map_err(|e| format!("workload_duckdb.py: {e}"))?;
            let mut line = String::new();
            self.output
                .read_line(&mut line)
                .map_err(|e| format!("workload_duckdb.py: {e}"))?;
            match serde_json::from_str::<DuckDbAnswer>(&line) {
                Ok(DuckDbAnswer::Measured(measure)) => Ok(measure),
                Ok(DuckDbAnswer::Failed { error }) => Err(error),
                Err(_) => Err(format!("workload_duckdb.py answered {:?}", line.trim())),
            }
        })
    }

    fn stop(mut self) -> Result<()> {
        // End of input: the script exits.
        drop(self.input);
        let status = tokio::task::block_in_place(|| self.child.wait())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("workload_duckdb.py exited with {status}").into())
        }
    }
}

/// Writes what DuckDB reads: Parquet exports of the reference tables, and a request naming
/// the files of every table (the streams' live files, from the catalog). Returns its path.
async fn write_duckdb_tables(cx: &Context) -> Result<PathBuf> {
    let engine = Engine::open(
        cx.catalog.clone(),
        cx.store.clone(),
        EngineConfig::default(),
    )?;
    let exports = cx.dir.join("duckdb");
    fs::create_dir_all(&exports)?;
    let mut tables = serde_json::Map::new();
    for (table, sql) in [
        ("meta.subjects", "SELECT * FROM meta.subjects"),
        ("reference.foods", "SELECT * FROM reference.foods"),
    ] {
        let path = exports.join(format!("{table}.parquet"));
        write_parquet(&path, engine.query(ORG, sql).await?)?;
        tables.insert(table.to_owned(), serde_json::json!([path]));
    }
    for (stream, paths) in live_files(cx, &engine).await? {
        tables.insert(stream, serde_json::json!(paths));
    }
    let path = exports.join("tables.json");
    fs::write(
        &path,
        serde_json::to_vec_pretty(&serde_json::json!({ "tables": tables }))?,
    )?;
    Ok(path)
}

/// The live Parquet files of each stream, from the catalog, as paths in the local store;
/// those compaction replaced stay in the store until garbage collection and are left out.
async fn live_files(cx: &Context, engine: &Engine) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let files = engine
        .query(
            ORG,
            "SELECT stream, path FROM system.files ORDER BY stream, day, path",
        )
        .await?;
    let store = cx.dir.join("store");
    let mut streams: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for batch in &files.batches {
        let names = batch.column(0).as_string::<i32>();
        let paths = batch.column(1).as_string::<i32>();
        for (stream, path) in names.iter().zip(paths.iter()) {
            if let (Some(stream), Some(path)) = (stream, path) {
                streams
                    .entry(stream.to_owned())
                    .or_default()
                    .push(store.join(path));
            }
        }
    }
    Ok(streams)
}

fn write_parquet(path: &Path, output: engine::QueryOutput) -> Result<()> {
    let file = fs::File::create(path)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, output.schema.clone(), None)?;
    for batch in &output.batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Results

/// Where the rows of a query differ between modes: each mode against the first one that
/// answered.
fn compare_rows(queries: &[Query], modes: &[Mode], results: &[ModeResult]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let answered: Vec<(&str, usize)> = modes
            .iter()
            .zip(results)
            .filter_map(|(mode, result)| match &result.measures[i] {
                Ok(m) => Some((mode.name(), m.rows)),
                Err(_) => None,
            })
            .collect();
        if let Some((first, rows)) = answered.first() {
            for (mode, other) in &answered[1..] {
                if other != rows {
                    warnings.push(format!(
                        "{}: {first} returned {rows} rows, {mode} {other}",
                        query.name
                    ));
                }
            }
        }
    }
    warnings
}

struct DataSummary {
    marker: Marker,
    /// The machine's load average before the modes ran: other processes show in the figures.
    load_before: String,
    /// `(stream, files, rows, bytes)` of the live files.
    streams: Vec<(String, i64, i64, i64)>,
}

async fn describe(engine: &Engine, marker: &Marker) -> Result<DataSummary> {
    let output = engine
        .query(
            ORG,
            "SELECT stream, count(*), sum(rows), sum(bytes) FROM system.files \
             GROUP BY stream ORDER BY stream",
        )
        .await?;
    let mut streams = Vec::new();
    for batch in &output.batches {
        let names = batch.column(0).as_string::<i32>();
        let ints = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
        let (files, rows, bytes) = (ints(1), ints(2), ints(3));
        for row in 0..batch.num_rows() {
            streams.push((
                names.value(row).to_owned(),
                files.value(row),
                rows.value(row),
                bytes.value(row),
            ));
        }
    }
    Ok(DataSummary {
        marker: marker.clone(),
        load_before: load_average(),
        streams,
    })
}

#[allow(clippy::too_many_arguments)]
fn report(
    scale: &Scale,
    data: &DataSummary,
    queries: &[Query],
    covered: &[u64],
    modes: &[Mode],
    results: &[ModeResult],
    floor: Option<&std::result::Result<Measure, String>>,
    warnings: &[String],
    runs: usize,
) -> String {
    let mut md = String::new();
    let marker = &data.marker;
    let load = format!("{} before, {} after", data.load_before, load_average());
    let _ = writeln!(md, "# Health workload benchmark: scale `{}`\n", scale.name);
    let _ = writeln!(
        md,
        "{}, load average {load}; {} (UTC){}; `cargo bench --bench workload -- --scale {}` \
         (release profile).\n",
        machine(),
        Utc::now().format("%Y-%m-%d %H:%M"),
        commit()
            .map(|c| format!(", commit {c}"))
            .unwrap_or_default(),
        scale.name,
    );
    let _ = writeln!(
        md,
        "Data: {} subjects × {} days from the simulator (seed {}, without defects), ingested \
         from CSV in chunks of {CHUNK_SUBJECTS} subjects: {} rows in {:.0} s ({:.2} M rows/s), \
         then compacted in {:.0} s. Live Parquet files:\n",
        marker.subjects,
        marker.days,
        marker.seed,
        marker.rows_ingested,
        marker.load_seconds,
        marker.rows_ingested as f64 / marker.load_seconds.max(1e-9) / 1e6,
        marker.compaction_seconds,
    );
    let _ = writeln!(md, "| stream | files | rows | MiB |\n|---|---:|---:|---:|");
    for (stream, files, rows, bytes) in &data.streams {
        let _ = writeln!(
            md,
            "| {stream} | {files} | {} | {:.1} |",
            thousands(*rows as u64),
            *bytes as f64 / 1048576.0
        );
    }
    let _ = writeln!(
        md,
        "\nModes (hot times: the median of {runs} runs after one warm-up, wall clock around \
         executing the query and reading every batch, counted and dropped):\n"
    );
    for (mode, result) in modes.iter().zip(results) {
        let note = result
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(md, "- `{}`: {}{note}", mode.name(), mode.describe());
    }

    let _ = writeln!(md, "\n## Queries\n");
    let _ = writeln!(md, "| query | what | rows covered |\n|---|---|---:|");
    for (query, rows) in queries.iter().zip(covered) {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            query.name,
            query.title,
            thousands(*rows)
        );
    }

    let header = |md: &mut String, first: &str, names: &[&str]| {
        let _ = writeln!(md, "| {first} | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(names.len()));
    };
    let names: Vec<&str> = modes.iter().map(Mode::name).collect();
    let cell = |result: &std::result::Result<Measure, String>, f: &dyn Fn(&Measure) -> String| {
        match result {
            Ok(m) => f(m),
            Err(_) => "error".to_owned(),
        }
    };

    let _ = writeln!(md, "\n## Median time, ms (rows returned)\n");
    header(&mut md, "query", &names);
    for (i, query) in queries.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .map(|r| {
                cell(&r.measures[i], &|m| {
                    format!("{:.2} ({})", m.median_ms, m.rows)
                })
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", query.name, cells.join(" | "));
    }

    let _ = writeln!(md, "\n## Throughput, rows covered per second\n");
    header(&mut md, "query", &names);
    for (i, query) in queries.iter().enumerate() {
        let cells: Vec<String> = results
            .iter()
            .map(|r| {
                cell(&r.measures[i], &|m| {
                    per_second(covered[i] as f64 / m.median_ms * 1e3)
                })
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", query.name, cells.join(" | "));
    }

    if let Some(peer) = modes.iter().position(|m| matches!(m, Mode::DuckDb)) {
        let others: Vec<usize> = (0..modes.len()).filter(|&m| m != peer).collect();
        let _ = writeln!(
            md,
            "\n## Speed relative to DuckDB (DuckDB's time ÷ the mode's; above 1 is faster)\n"
        );
        let other_names: Vec<&str> = others.iter().map(|&m| names[m]).collect();
        header(&mut md, "query", &other_names);
        let ratio = |mode: usize, i: usize| match (
            &results[peer].measures[i],
            &results[mode].measures[i],
        ) {
            (Ok(duckdb), Ok(ours)) => Some(duckdb.median_ms / ours.median_ms),
            _ => None,
        };
        for (i, query) in queries.iter().enumerate() {
            let cells: Vec<String> = others
                .iter()
                .map(|&m| ratio(m, i).map_or("–".to_owned(), |r| format!("{r:.2}")))
                .collect();
            let _ = writeln!(md, "| {} | {} |", query.name, cells.join(" | "));
        }
        let means: Vec<String> = others
            .iter()
            .map(|&m| {
                // The workload's queries; `k1` and `k2` measure the kernel targets on their own.
                let workload: Vec<usize> = (0..queries.len())
                    .filter(|&i| queries[i].name.starts_with('q'))
                    .collect();
                let ratios: Vec<f64> = workload.iter().filter_map(|&i| ratio(m, i)).collect();
                if ratios.is_empty() {
                    "–".to_owned()
                } else {
                    let mean =
                        (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
                    let of = if ratios.len() < workload.len() {
                        format!(" (of {} queries)", ratios.len())
                    } else {
                        String::new()
                    };
                    format!("**{mean:.2}**{of}")
                }
            })
            .collect();
        let _ = writeln!(md, "| geometric mean of q1–q11 | {} |", means.join(" | "));
    }

    if let Some(floor) = floor {
        floor_section(&mut md, floor, queries, covered, modes, results);
    }

    let errors: Vec<String> = modes
        .iter()
        .zip(results)
        .flat_map(|(mode, result)| {
            queries
                .iter()
                .zip(&result.measures)
                .filter_map(move |(q, m)| {
                    m.as_ref()
                        .err()
                        .map(|e| format!("{} in `{}`: {e}", q.name, mode.name()))
                })
        })
        .collect();
    if !warnings.is_empty() || !errors.is_empty() {
        let _ = writeln!(md, "\n## Warnings\n");
        for line in warnings.iter().chain(&errors) {
            let _ = writeln!(md, "- {line}");
        }
    }

    let _ = writeln!(md, "\n## SQL\n");
    for query in queries {
        let _ = writeln!(
            md,
            "{}, ours:\n```sql\n{}\n```\nDuckDB:\n```sql\n{}\n```\n",
            query.name, query.ours, query.duckdb
        );
    }
    md
}

/// k1 and k2 in every mode as a share of their Parquet-decode floor's rows/s.
fn floor_section(
    md: &mut String,
    floor: &std::result::Result<Measure, String>,
    queries: &[Query],
    covered: &[u64],
    modes: &[Mode],
    results: &[ModeResult],
) {
    let _ = writeln!(md, "\n## k1 and k2 against their Parquet-decode floor\n");
    let floor = match floor {
        Ok(floor) => floor,
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}");
            return;
        }
    };
    let measured: Vec<usize> = (0..queries.len())
        .filter(|&i| FLOOR_QUERIES.contains(&queries[i].name))
        .collect();
    let rows = measured.first().map_or(0, |&i| covered[i]);
    let _ = writeln!(
        md,
        "The columns they read ({}) of every live `{FLOOR_STREAM}` file, decoded by the \
         `parquet` crate into batches of {FLOOR_BATCH_ROWS} rows and dropped, a row group at a \
         time on {} threads, the files and their metadata in memory beforehand: {} rows in {:.2} ms, {} rows/s. \
         Each query's rows/s as a share of it (the brief: at least 60 %); a share above \
         100 % is an answer from the rollups, which read fewer rows than the floor decodes:\n",
        FLOOR_COLUMNS.join(", "),
        std::thread::available_parallelism().map_or(1, usize::from),
        thousands(floor.rows as u64),
        floor.median_ms,
        per_second(rows as f64 / floor.median_ms * 1e3),
    );
    let header: Vec<String> = measured
        .iter()
        .map(|&i| format!("{0} ms | {0} share", queries[i].name))
        .collect();
    let _ = writeln!(
        md,
        "| mode | {} |\n|---|{}",
        header.join(" | "),
        "---:|".repeat(2 * measured.len())
    );
    for (mode, result) in modes.iter().zip(results) {
        let cells: Vec<String> = measured
            .iter()
            .map(|&i| match &result.measures[i] {
                Ok(m) => format!(
                    "{:.2} | {:.0} %",
                    m.median_ms,
                    floor.median_ms / m.median_ms * 100.0
                ),
                Err(_) => "– | –".to_owned(),
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", mode.name(), cells.join(" | "));
    }
}

/// The 1-minute load average.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// "CPU model, N cores, M GiB".
fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("unknown memory".to_owned(), |kb| {
            format!("{:.1} GiB", kb / 1048576.0)
        });
    format!("{cpu}, {cores} cores, {memory}")
}

fn commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A rate with three significant digits and a unit prefix: `95.1 M`, `12.3 k`.
fn per_second(rate: f64) -> String {
    let (value, prefix) = if rate >= 1e9 {
        (rate / 1e9, " G")
    } else if rate >= 1e6 {
        (rate / 1e6, " M")
    } else if rate >= 1e3 {
        (rate / 1e3, " k")
    } else {
        (rate, "")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{prefix}")
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}
