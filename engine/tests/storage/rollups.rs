//! Rollups: written at compaction, used for the aggregations they can answer, and giving the
//! raw computation's results — also where some files are compacted and others not, where a
//! late write overlaps a compacted file, and for erased subjects.

use arrow::{
    array::{Array, RecordBatch},
    datatypes::DataType,
    util::display::{ArrayFormatter, FormatOptions},
};
use catalog::testing::TestDatabase;
use engine::{Engine, EngineConfig};

use crate::support::{DAY, Harness, MARCH_1, Random, Reading, SECOND, explain, test_config};

/// Writes readings over three days in overlapping rounds, compacts, then writes a late
/// batch over the first day, so that answers need rollups and raw rows together.
async fn loaded(db: TestDatabase) -> (Harness, Vec<i64>) {
    let h = Harness::new(db).await;
    let s = h.subjects(4).await;
    let mut random = Random::new(7);
    let round = |random: &mut Random, days: u64| -> Vec<Reading> {
        (0..400)
            .map(|_| {
                let subject = s[random.below(4) as usize];
                let day = random.below(days) as i64;
                // One reading per subject and second at most, its source fixed by the
                // second: no two readings of a subject share a time.
                let second = random.below(6 * 3_600) as i64;
                let source = if second % 2 == 0 { "watch" } else { "ring" };
                let bpm = 45.0 + random.below(1_200) as f64 / 10.0;
                (subject, source, MARCH_1 + day * DAY + second * SECOND, bpm)
            })
            .collect()
    };
    for _ in 0..4 {
        h.write(&round(&mut random, 3)).await.unwrap();
    }
    let report = h.engine.compact(2).await.unwrap();
    assert!(report.partitions >= 3, "{report:?}");
    h.write(&round(&mut random, 1)).await.unwrap();
    (h, s)
}

/// Every value of a result, as text; floats rounded so that summing in another order does
/// not show.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, format)| {
                        if column.data_type() == &DataType::Float64 && column.is_valid(i) {
                            let value = column
                                .as_any()
                                .downcast_ref::<arrow::array::Float64Array>()
                                .unwrap()
                                .value(i);
                            format!("{value:.6}")
                        } else {
                            format.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

fn raw_engine(h: &Harness) -> Engine {
    let config = EngineConfig {
        rollups: false,
        ..test_config()
    };
    Engine::open(h.catalog.clone(), h.store.clone(), config).unwrap()
}

async fn same_as_raw(h: &Harness, raw: &Engine, sql: &str) -> Vec<Vec<String>> {
    let with = rows(&h.engine.query("default", sql).await.unwrap().batches);
    let without = rows(&raw.query("default", sql).await.unwrap().batches);
    assert_eq!(with, without, "{sql}");
    with
}

pub async fn rollups_answer_as_the_raw_rows_do(db: TestDatabase) {
    let (h, s) = loaded(db).await;
    let raw = raw_engine(&h);
    let rollup_files = h.rollup_files().len();
    assert!(rollup_files >= 9, "{rollup_files} rollup files");

    let hourly = "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS hour, count(*) AS n, \
                  avg(bpm), min(bpm), max(bpm), sum(bpm), stddev(bpm), var_pop(bpm), \
                  first_value(bpm ORDER BY time), last_value(bpm ORDER BY time), \
                  approx_quantile(bpm, 0.5) AS median, approx_quantile(bpm, 0.9) \
                  FROM heart_rate GROUP BY subject_id, hour ORDER BY subject_id, hour";
    let plan = explain(&h.engine, hourly).await;
    assert!(
        plan.contains("heart_rate_rollup_1h")
            && plan.contains("/rollups/")
            && plan.contains("RollupExec"),
        "{plan}"
    );
    let answer = same_as_raw(&h, &raw, hourly).await;
    assert!(answer.len() > 30, "{} groups", answer.len());

    let queries = [
        // Days of the whole organization, with a bound-aligned window.
        "SELECT CAST(date_trunc('day', time) AS DATE) AS day, count(DISTINCT subject_id), \
         sum(bpm), count(bpm) FROM heart_rate WHERE time >= TIMESTAMP '2026-03-01T00:00:00' \
         AND time < TIMESTAMP '2026-03-03T00:00:00' GROUP BY 1 ORDER BY 1"
            .to_owned(),
        // No grouping; and a window with no data at all.
        "SELECT count(*), min(time), max(time), avg(bpm), stddev_pop(bpm) FROM heart_rate"
            .to_owned(),
        "SELECT count(*), sum(bpm), count(bpm) FROM heart_rate \
         WHERE time >= TIMESTAMP '2030-01-01T00:00:00' AND time < TIMESTAMP '2030-01-02T00:00:00'"
            .to_owned(),
        // The dashboard's resting heart rate: an aggregation of an aggregation, with HAVING.
        "SELECT subject_id, day, min(bpm) AS rest FROM ( \
           SELECT subject_id, CAST(date_trunc('day', hour) AS DATE) AS day, bpm FROM ( \
             SELECT subject_id, date_trunc('hour', time) AS hour, avg(bpm) AS bpm \
             FROM heart_rate GROUP BY 1, 2 HAVING count(*) >= 3)) \
         GROUP BY 1, 2 ORDER BY 1, 2"
            .to_owned(),
    ];
    for sql in &queries {
        assert!(explain(&h.engine, sql).await.contains("_rollup_"), "{sql}");
        same_as_raw(&h, &raw, sql).await;
    }

    // About one reading per subject and minute: a minute rollup row would stand for a single
    // reading, so the raw rows answer, also for an engine that did not compact the files and
    // measures them from the rollups' footers.
    let quarters = format!(
        "SELECT date_bin(INTERVAL '15 minutes', time) AS q, max(bpm), count(*) \
         FROM heart_rate WHERE subject_id = {} AND time >= TIMESTAMP '2026-03-02T01:00:00' \
         AND time < TIMESTAMP '2026-03-02T05:00:00' GROUP BY 1 ORDER BY 1",
        s[1]
    );
    let restarted = Engine::open(h.catalog.clone(), h.store.clone(), test_config()).unwrap();
    for engine in [&h.engine, &restarted] {
        assert!(!explain(engine, &quarters).await.contains("_rollup_"));
        assert!(
            explain(engine, hourly)
                .await
                .contains("heart_rate_rollup_1h")
        );
    }
    same_as_raw(&h, &raw, &quarters).await;

    // What rollups cannot answer keeps the plan over raw rows, with the same results.
    let raw_only = [
        "SELECT date_bin(INTERVAL '1 hour', time), count(*) FROM heart_rate \
         WHERE time > TIMESTAMP '2026-03-01T00:00:00' GROUP BY 1 ORDER BY 1",
        "SELECT source, count(*) FROM heart_rate GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('hour', time), count(*) FROM heart_rate WHERE bpm > 100 GROUP BY 1 ORDER BY 1",
        "SELECT date_bin(INTERVAL '90 seconds', time), max(bpm) FROM heart_rate GROUP BY 1 ORDER BY 1",
        "SELECT subject_id, median(bpm) FROM heart_rate GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('second', time), count(*) FROM heart_rate GROUP BY 1 ORDER BY 1 LIMIT 5",
    ];
    for sql in raw_only {
        assert!(!explain(&h.engine, sql).await.contains("_rollup_"), "{sql}");
        same_as_raw(&h, &raw, sql).await;
    }

    // An erased subject leaves rollup answers at once, before any file is rewritten.
    h.engine
        .request_erasure("default", "S2", None)
        .await
        .unwrap();
    let subjects = "SELECT count(DISTINCT subject_id) FROM heart_rate";
    assert_eq!(same_as_raw(&h, &raw, subjects).await, [["3"]]);
    same_as_raw(&h, &raw, hourly).await;
}

pub async fn rollups_follow_compaction_and_garbage_collection(db: TestDatabase) {
    let (h, _) = loaded(db).await;
    let raw = raw_engine(&h);
    let daily = "SELECT subject_id, date_trunc('day', time) AS day, count(*), max(bpm) \
                 FROM heart_rate GROUP BY 1, 2 ORDER BY 1, 2";
    // Everything compacted: every file answers from its rollups, nothing is rolled up raw.
    h.engine.compact(1).await.unwrap();
    let plan = explain(&h.engine, daily).await;
    assert!(
        plan.contains("heart_rate_rollup_1d") && !plan.contains("RollupExec"),
        "{plan}"
    );
    same_as_raw(&h, &raw, daily).await;
    // Replaced files take their rollups with them; live files keep theirs.
    let garbage = h
        .engine
        .collect_garbage(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(garbage.replaced > 0);
    assert_eq!(garbage.orphans, 0);
    assert_eq!(h.rollup_files().len(), 3 * h.parquet_files().len());
    same_as_raw(&h, &raw, daily).await;

    // A compacted file without its rollup (compacted by an engine before rollups) is rolled
    // up at query time.
    let two_hourly = "SELECT subject_id, date_bin(INTERVAL '2 hours', time) AS at, count(*), \
                      min(bpm) FROM heart_rate GROUP BY 1, 2 ORDER BY 1, 2";
    let (hour_rollup, _) = h
        .rollup_files()
        .into_iter()
        .find(|(path, _)| path.to_string_lossy().ends_with(".1h.parquet"))
        .unwrap();
    std::fs::remove_file(&hour_rollup).unwrap();
    let plan = explain(&h.engine, two_hourly).await;
    assert!(
        plan.contains("heart_rate_rollup_1h") && plan.contains("RollupExec"),
        "{plan}"
    );
    same_as_raw(&h, &raw, two_hourly).await;
}

/// Readings every five seconds: a minute rollup row stands for twelve of them, so per-minute
/// aggregations read the minute rollups, before and after a restart.
pub async fn dense_minutes_are_answered_from_minute_rollups(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    let mut random = Random::new(5);
    let readings: Vec<Reading> = s
        .iter()
        .flat_map(|&subject| {
            (0..2 * 720)
                .map(|i| {
                    let bpm = 50.0 + random.below(900) as f64 / 10.0;
                    (subject, "watch", MARCH_1 + i * 5 * SECOND, bpm)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    h.write(&readings).await.unwrap();
    h.engine.compact(1).await.unwrap();
    let raw = raw_engine(&h);
    let minutes = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS m, max(bpm), \
                   sum(bpm), count(*) FROM heart_rate GROUP BY 1, 2 ORDER BY 1, 2";
    let restarted = Engine::open(h.catalog.clone(), h.store.clone(), test_config()).unwrap();
    for engine in [&h.engine, &restarted] {
        // Rollup files are sorted by subject and bucket: the kernel folds them without hashing.
        let plan = explain(engine, minutes).await;
        assert!(
            plan.contains("heart_rate_rollup_1m") && plan.contains("BucketedAggregateExec"),
            "{plan}"
        );
    }
    let answer = same_as_raw(&h, &raw, minutes).await;
    assert_eq!(answer.len(), 2 * 120);
    assert!(answer.iter().all(|row| row[4] == "12"), "{answer:?}");
}
