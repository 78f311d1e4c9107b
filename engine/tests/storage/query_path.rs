use std::collections::{BTreeMap, BTreeSet};

use arrow::{
    array::AsArray,
    datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType},
};
use catalog::{ColumnType, NewStream, StreamColumn, StreamKind, testing::TestDatabase};
use engine::{EngineConfig, Principal};

use crate::support::{
    DAY, HOUR, Harness, MARCH_1, Random, Reading, SECOND, count, explain, heart_rate, test_config,
};

pub async fn pruning_reads_only_the_files_a_query_needs(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(4).await;
    // Four days; each day one write for subjects 1-2 and one for subjects 3-4, so that
    // each file covers one day and two subjects.
    for d in 0..4 {
        for pair in s.chunks(2) {
            let rows: Vec<_> = pair
                .iter()
                .flat_map(|&subject| {
                    (0..24)
                        .map(move |hour| (subject, "watch", MARCH_1 + d * DAY + hour * HOUR, 60.0))
                })
                .collect();
            h.write(&rows).await.unwrap();
        }
    }
    let all = h.live_files().await;
    assert_eq!(all.len(), 8);
    let files_read = |plan: &str| -> BTreeSet<String> {
        all.iter()
            .filter(|f| plan.contains(f.path.as_str()))
            .map(|f| f.path.clone())
            .collect()
    };
    let expect = |day: i64, subjects: &[i64]| -> BTreeSet<String> {
        all.iter()
            .filter(|f| {
                f.min_time >= MARCH_1 + day * DAY
                    && f.max_time < MARCH_1 + (day + 1) * DAY
                    && subjects
                        .iter()
                        .any(|s| (f.min_subject.0..=f.max_subject.0).contains(s))
            })
            .map(|f| f.path.clone())
            .collect()
    };

    let one_subject_one_hour = format!(
        "SELECT max(bpm) FROM heart_rate WHERE subject_id = {} \
         AND time >= TIMESTAMP '2026-03-03T10:00:00' AND time < TIMESTAMP '2026-03-03T11:00:00'",
        s[2]
    );
    let plan = explain(&h.engine, &one_subject_one_hour).await;
    assert_eq!(files_read(&plan), expect(2, &[s[2]]), "{plan}");
    assert_eq!(files_read(&plan).len(), 1);
    // Read from the data file, not a rollup: the file's reader evaluates the filter, once,
    // and no filter is left above it.
    let rows = explain(
        &h.engine,
        &one_subject_one_hour.replace("max(bpm)", "time, bpm"),
    )
    .await;
    let condition = format!("subject_id@0 = {}", s[2]);
    assert_eq!(rows.matches(&condition).count(), 1, "{rows}");
    assert!(!rows.contains("FilterExec"), "{rows}");

    let one_day = "SELECT count(*) FROM heart_rate WHERE time BETWEEN TIMESTAMP '2026-03-02T00:00:00' AND TIMESTAMP '2026-03-02T23:59:59'";
    let plan = explain(&h.engine, one_day).await;
    assert_eq!(files_read(&plan), expect(1, &s), "{plan}");
    assert_eq!(count(&h.engine, one_day).await, 4 * 24);

    // EXPLAIN lists the first files of a long list only; it says how many there are.
    let unbounded = explain(&h.engine, "SELECT count(*) FROM heart_rate WHERE bpm > 1").await;
    assert!(unbounded.contains("file_groups={8 groups"), "{unbounded}");
    assert_eq!(
        count(
            &h.engine,
            &format!(
                "SELECT count(*) FROM heart_rate WHERE subject_id IN ({}, {})",
                s[0], s[3]
            )
        )
        .await,
        2 * 4 * 24
    );
}

pub async fn a_short_read_of_a_large_file_is_not_spread(db: TestDatabase) {
    // Raw rows: a minute rollup of a reading a second would answer these queries instead.
    let config = EngineConfig {
        target_partitions: 4,
        rollups: false,
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(1).await;
    // One subject, a reading every second for a day: one file of 86 400 rows.
    let rows: Vec<_> = (0..DAY / SECOND)
        .map(|i| (s[0], "watch", MARCH_1 + i * SECOND, 60.0 + (i % 50) as f64))
        .collect();
    h.write(&rows).await.unwrap();
    assert_eq!(h.live_files().await.len(), 1);
    let per_minute = |range: &str| {
        format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) AS high \
             FROM heart_rate WHERE subject_id = {} AND {range} GROUP BY minute ORDER BY minute",
            s[0]
        )
    };

    // An hour is 3 600 rows, less than a batch: read and aggregated in one partition.
    let one_hour = per_minute(
        "time >= TIMESTAMP '2026-03-01T10:00:00' AND time < TIMESTAMP '2026-03-01T11:00:00'",
    );
    let plan = explain(&h.engine, &one_hour).await;
    assert!(!plan.contains("RepartitionExec"), "{plan}");
    let output = h.engine.query("default", &one_hour).await.unwrap();
    let high: Vec<f64> = output
        .batches
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    assert_eq!(high, vec![109.0; 60]);

    // The whole day is ten batches: spread over the partitions.
    let whole_day = per_minute("time >= TIMESTAMP '2026-03-01T00:00:00'");
    let plan = explain(&h.engine, &whole_day).await;
    assert!(plan.contains("RepartitionExec"), "{plan}");
    let output = h.engine.query("default", &whole_day).await.unwrap();
    assert_eq!(
        output.batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        24 * 60
    );
}

/// Writes a day of one subject's readings, one an hour; the query that counts one of them.
async fn one_hour_of_a_day(h: &Harness) -> String {
    let s = h.subjects(1).await;
    let rows: Vec<_> = (0..24)
        .map(|hour| (s[0], "watch", MARCH_1 + hour * HOUR, 60.0))
        .collect();
    h.write(&rows).await.unwrap();
    format!(
        "SELECT count(*) FROM heart_rate WHERE subject_id = {} \
         AND time >= TIMESTAMP '2026-03-01T10:00:00' AND time < TIMESTAMP '2026-03-01T11:00:00'",
        s[0]
    )
}

/// The store's reads by each of three runs of `sql`, which counts one row.
async fn reads_per_query(h: &Harness, sql: &str) -> Vec<usize> {
    let reads = || h.store.reads.load(std::sync::atomic::Ordering::SeqCst);
    let mut per_query = Vec::new();
    for _ in 0..3 {
        let before = reads();
        assert_eq!(count(&h.engine, sql).await, 1);
        per_query.push(reads() - before);
    }
    per_query
}

pub async fn a_file_footer_is_read_once(db: TestDatabase) {
    let config = EngineConfig {
        file_cache: 0,
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let one_hour = one_hour_of_a_day(&h).await;
    let per_query = reads_per_query(&h, &one_hour).await;
    // The first query reads the footer and page index; later ones only the pages they need.
    assert!(
        per_query[1] < per_query[0],
        "reads per query: {per_query:?}"
    );
    assert!(per_query[1] >= 1, "reads per query: {per_query:?}");
    assert_eq!(per_query[1], per_query[2], "reads per query: {per_query:?}");
}

pub async fn a_file_is_fetched_once_then_read_from_memory(db: TestDatabase) {
    let h = Harness::new(db).await;
    let one_hour = one_hour_of_a_day(&h).await;
    assert_eq!(reads_per_query(&h, &one_hour).await, [1, 0, 0]);
}

pub async fn a_stream_registered_elsewhere_is_found_at_once(db: TestDatabase) {
    let h = Harness::new(db).await;
    // The session lists the organization's streams, and remembers the list for a moment.
    assert_eq!(count(&h.engine, "SELECT count(*) FROM heart_rate").await, 0);
    let org = h.catalog.organizations().get("default").await.unwrap();
    let column = StreamColumn {
        nullable: false,
        ..StreamColumn::value("celsius", ColumnType::Float64)
    };
    let stream = NewStream::new("skin_temperature", StreamKind::Point, vec![column]);
    h.catalog.streams().register(org.id, stream).await.unwrap();
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM skin_temperature").await,
        0
    );
    let missing = h
        .engine
        .query("default", "SELECT count(*) FROM no_such_stream")
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no_such_stream"), "{missing}");
}

pub async fn catalog_tables_are_queryable(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    h.write(&[
        (s[0], "watch", MARCH_1, 60.0),
        (s[1], "watch", MARCH_1 + DAY, 61.0),
    ])
    .await
    .unwrap();
    let subjects = h
        .engine
        .query(
            "default",
            "SELECT subject_id, pseudonym FROM meta.subjects ORDER BY subject_id",
        )
        .await
        .unwrap();
    assert_eq!(subjects.num_rows(), 2);
    assert_eq!(
        subjects.batches[0].column(1).as_string::<i32>().value(0),
        "S1"
    );

    assert_eq!(
        count(
            &h.engine,
            "SELECT count(*) FROM system.files WHERE stream = 'heart_rate'"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &h.engine,
            "SELECT sum(live_rows) FROM system.partitions WHERE stream = 'heart_rate'"
        )
        .await,
        2
    );
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM system.streams").await,
        12
    );
    // A stream joins the subjects' profile like any table.
    let joined = count(
        &h.engine,
        "SELECT count(*) FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id WHERE s.pseudonym = 'S2'",
    )
    .await;
    assert_eq!(joined, 1);
    let tables = h
        .engine
        .query(
            "default",
            "SELECT table_schema, count(*) FROM information_schema.tables \
             WHERE table_schema IN ('health', 'meta', 'reference', 'system') GROUP BY 1 ORDER BY 1",
        )
        .await
        .unwrap();
    let counts: Vec<(String, i64)> = (0..tables.num_rows())
        .map(|i| {
            let batch = &tables.batches[0];
            (
                batch.column(0).as_string::<i32>().value(i).to_owned(),
                batch.column(1).as_primitive::<Int64Type>().value(i),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("health".into(), 12),
            ("meta".into(), 4),
            ("reference".into(), 1),
            ("system".into(), 8)
        ]
    );
}

pub async fn sessions_are_read_only(db: TestDatabase) {
    let h = Harness::new(db).await;
    for statement in [
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO heart_rate VALUES (1, 'x', TIMESTAMP '2026-03-01T00:00:00', 60)",
        "DROP TABLE heart_rate",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SET datafusion.execution.target_partitions = 1",
    ] {
        let err = h.engine.query("default", statement).await.unwrap_err();
        assert!(
            err.to_string().contains("not supported") || err.to_string().contains("not allowed"),
            "{statement}: {err}"
        );
    }
}

pub async fn results_use_utf8_and_nanosecond_timestamps(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(1).await[0];
    h.write(&[(s, "watch", MARCH_1 + 1_234, 60.0)])
        .await
        .unwrap();
    let output = h
        .engine
        .query("default", "SELECT source, time, upper(source) AS loud, CAST(bpm AS VARCHAR) AS text FROM heart_rate")
        .await
        .unwrap();
    let types: Vec<_> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Utf8,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            DataType::Utf8,
            DataType::Utf8
        ]
    );
    assert_eq!(output.batches[0].schema(), output.schema);
    // An empty result still has its schema.
    let empty = h
        .engine
        .query("default", "SELECT source FROM heart_rate WHERE bpm > 1000")
        .await
        .unwrap();
    assert_eq!(empty.num_rows(), 0);
    assert_eq!(empty.schema.field(0).data_type(), &DataType::Utf8);
}

pub async fn organizations_do_not_see_each_other(db: TestDatabase) {
    let h = Harness::new(db).await;
    let acme = h.catalog.organizations().create("acme").await.unwrap();
    let ours = h.subjects(1).await[0];
    let theirs = h
        .catalog
        .subjects()
        .ensure(acme.id, &["A1".into()])
        .await
        .unwrap()[0]
        .id
        .0;
    h.write(&[(ours, "watch", MARCH_1, 60.0)]).await.unwrap();
    h.engine
        .write(
            "acme",
            "heart_rate",
            heart_rate(&[
                (theirs, "watch", MARCH_1, 90.0),
                (theirs, "watch", MARCH_1 + SECOND, 91.0),
            ]),
            None,
        )
        .await
        .unwrap();
    // Writing another organization's subject into ours is refused.
    let err = h
        .write(&[(theirs, "watch", MARCH_1, 60.0)])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a subject of organization default"),
        "{err}"
    );

    assert_eq!(count(&h.engine, "SELECT count(*) FROM heart_rate").await, 1);
    let acme_rows = h
        .engine
        .query("acme", "SELECT subject_id FROM heart_rate")
        .await
        .unwrap();
    assert_eq!(acme_rows.num_rows(), 2);
    let ids = acme_rows.batches[0].column(0).as_primitive::<Int64Type>();
    assert!(ids.values().iter().all(|id| *id == theirs));
    let acme_files = h
        .engine
        .query("acme", "SELECT path FROM system.files")
        .await
        .unwrap();
    let path = acme_files.batches[0]
        .column(0)
        .as_string::<i32>()
        .value(0)
        .to_owned();
    assert!(path.starts_with("acme/heart_rate/"), "{path}");

    // Every session is cloned from the engine's one template: a session opened for acme
    // while ours is open leaves ours with our catalog.
    let default = h.engine.organization("default").await.unwrap();
    let our_session = h
        .engine
        .session_as(&Principal::operator(default))
        .await
        .unwrap();
    let _acme_session = h
        .engine
        .session_as(&Principal::operator(acme))
        .await
        .unwrap();
    let ours_after = our_session
        .sql("SELECT bpm FROM heart_rate")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let bpm: Vec<f64> = ours_after
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    assert_eq!(bpm, [60.0]);
}

/// Per-minute aggregates over real files, some overlapping (merged and de-duplicated), some
/// not, come from the bucketed kernel and match a model of the last writes.
pub async fn bucketed_aggregates_match_a_reference_model(db: TestDatabase) {
    // Rollups would answer these aggregations; this is about the kernel over raw rows.
    let config = EngineConfig {
        rollups: false,
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(3).await;
    let mut random = Random::new(42);
    // (subject, time, source) -> bpm, the last write winning.
    let mut model = BTreeMap::new();
    for round in 0..6 {
        let rows: Vec<Reading> = (0..300)
            .map(|_| {
                let subject = s[random.below(3) as usize];
                let source = ["watch", "ring"][random.below(2) as usize];
                // The first rounds rewrite the same two days (overlapping files); the
                // others each write a day of their own.
                let day = if round < 4 { random.below(2) } else { round } as i64;
                let time = MARCH_1 + day * DAY + random.below(3 * 3_600) as i64 * SECOND;
                (
                    subject,
                    source,
                    time,
                    40.0 + random.below(1_000) as f64 / 10.0,
                )
            })
            .collect();
        for &(subject, source, time, bpm) in &rows {
            model.insert((subject, time, source), bpm);
        }
        h.write(&rows).await.unwrap();
    }
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, count(*) AS n, \
               min(bpm) AS low, max(bpm) AS high, sum(bpm) AS total FROM heart_rate \
               GROUP BY subject_id, b ORDER BY subject_id, b";
    let plan = explain(&h.engine, sql).await;
    assert!(
        plan.contains("BucketedAggregateExec") && plan.contains("DedupExec"),
        "{plan}"
    );

    const MINUTE: i64 = 60 * SECOND;
    let mut expected: BTreeMap<(i64, i64), (i64, f64, f64, f64)> = BTreeMap::new();
    for (&(subject, time, _), &bpm) in &model {
        let group = expected
            .entry((subject, time - time.rem_euclid(MINUTE)))
            .or_insert((0, f64::INFINITY, f64::NEG_INFINITY, 0.0));
        group.0 += 1;
        group.1 = group.1.min(bpm);
        group.2 = group.2.max(bpm);
        group.3 += bpm;
    }
    let output = h.engine.query("default", sql).await.unwrap();
    let mut actual = Vec::new();
    for batch in &output.batches {
        let subject = batch.column(0).as_primitive::<Int64Type>();
        let bucket = batch.column(1).as_primitive::<TimestampNanosecondType>();
        let n = batch.column(2).as_primitive::<Int64Type>();
        let [low, high, total] =
            [3, 4, 5].map(|i| batch.column(i).as_primitive::<Float64Type>().clone());
        for i in 0..batch.num_rows() {
            actual.push((
                (subject.value(i), bucket.value(i)),
                (n.value(i), low.value(i), high.value(i), total.value(i)),
            ));
        }
    }
    let expected: Vec<_> = expected.into_iter().collect();
    assert_eq!(actual.len(), expected.len());
    for (got, want) in actual.iter().zip(&expected) {
        assert_eq!(
            (got.0, got.1.0, got.1.1, got.1.2),
            (want.0, want.1.0, want.1.1, want.1.2)
        );
        assert!(
            (got.1.3 - want.1.3).abs() < 1e-9 * want.1.3,
            "{got:?} {want:?}"
        );
    }
}

pub async fn the_latest_buckets_are_read_from_the_newest_rows(db: TestDatabase) {
    // Raw rows: rollups would answer these aggregations from files of their own.
    let config = EngineConfig {
        rollups: false,
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(3).await;
    let mut random = Random::new(7);
    // March 1, 2, 3 and 5 (none on the 4th), a reading a minute per subject from midnight to
    // six and from six in the evening to midnight; whole numbers, so that sums are exact in
    // any order.
    for day in [0, 1, 2, 4] {
        let rows: Vec<Reading> = s
            .iter()
            .flat_map(|&subject| {
                (0..24 * 60)
                    .filter(|minute| !(6 * 60..18 * 60).contains(minute))
                    .map(move |minute| {
                        (subject, "watch", MARCH_1 + day * DAY + minute * 60 * SECOND)
                    })
            })
            .map(|(subject, source, time)| (subject, source, time, 40.0 + random.below(150) as f64))
            .collect();
        h.write(&rows).await.unwrap();
    }
    // A second version of March 5's first hours for one subject: a file overlapping the day's.
    let rewritten: Vec<Reading> = (0..3 * 60)
        .map(|minute| {
            (
                s[1],
                "watch",
                MARCH_1 + 4 * DAY + minute * 60 * SECOND,
                200.0,
            )
        })
        .collect();
    h.write(&rewritten).await.unwrap();

    let per_minute = |bound: &str| {
        format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) AS high, \
             min(bpm) AS low, count(*) AS n, avg(bpm) AS mean FROM heart_rate \
             WHERE {bound} GROUP BY minute ORDER BY minute DESC"
        )
    };
    let minutes = |answer: &arrow::array::RecordBatch| -> Vec<i64> {
        answer
            .column(0)
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec()
    };

    // Before three on March 5: the first window, five minutes, holds the answer; it reads the
    // rewritten readings too.
    let answer = latest(
        &h.engine,
        per_minute("time < TIMESTAMP '2026-03-05T03:00:00'"),
        5,
        0,
        1,
        false,
    )
    .await;
    let three = MARCH_1 + 4 * DAY + 3 * HOUR;
    assert_eq!(
        minutes(&answer),
        (1..=5).map(|m| three - m * 60 * SECOND).collect::<Vec<_>>()
    );
    let high = answer.column(1).as_primitive::<Float64Type>();
    assert!(high.values().iter().all(|&bpm| bpm == 200.0), "{answer:?}");

    // Nothing was written on March 4: the windows end where the files the query may read do,
    // at midnight, and the first holds the answer.
    let answer = latest(
        &h.engine,
        per_minute("time <= TIMESTAMP '2026-03-04T12:00:00'"),
        5,
        0,
        1,
        false,
    )
    .await;
    let midnight = MARCH_1 + 3 * DAY;
    assert_eq!(
        minutes(&answer),
        (1..=5)
            .map(|m| midnight - m * 60 * SECOND)
            .collect::<Vec<_>>()
    );

    // Noon on March 3, six hours after the day's last morning reading: windows of 5 and 80
    // minutes are empty, the third (21 h 20 min) reaches the morning.
    let answer = latest(
        &h.engine,
        per_minute("time < TIMESTAMP '2026-03-03T12:00:00'"),
        5,
        0,
        3,
        false,
    )
    .await;
    let six = MARCH_1 + 2 * DAY + 6 * HOUR;
    assert_eq!(
        minutes(&answer),
        (1..=5).map(|m| six - m * 60 * SECOND).collect::<Vec<_>>()
    );

    // 703 minutes (700 after 3 skipped): March 5 has 360 minutes from noon on, and the next
    // window would start before the first file; the whole query answers.
    let answer = latest(
        &h.engine,
        per_minute("time < TIMESTAMP '2026-03-06T00:00:00'"),
        700,
        3,
        1,
        true,
    )
    .await;
    assert_eq!(answer.num_rows(), 700);
    // More minutes than the files hold: not a window is tried.
    let answer = latest(
        &h.engine,
        per_minute("time < TIMESTAMP '2026-03-06T00:00:00'"),
        10_000,
        0,
        0,
        true,
    )
    .await;
    assert_eq!(answer.num_rows(), 4 * 12 * 60);

    // Hours from half past, per subject, with HAVING and an offset, and no bound on time: the
    // windows end where the newest file does.
    let per_hour = "SELECT date_bin(INTERVAL '1 hour', time, TIMESTAMP '2026-01-01T00:30:00') AS h, \
                    subject_id, sum(bpm) AS total FROM heart_rate GROUP BY h, subject_id \
                    HAVING count(*) > 30 ORDER BY h DESC, subject_id";
    let answer = latest(&h.engine, per_hour.to_owned(), 7, 2, 1, false).await;
    assert_eq!(answer.num_rows(), 7);

    // Not the latest buckets: ascending, or ranked by an aggregate.
    for other in [
        "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) FROM heart_rate \
         GROUP BY minute ORDER BY minute LIMIT 5",
        "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) AS high FROM heart_rate \
         GROUP BY minute ORDER BY high DESC LIMIT 5",
    ] {
        let plan = explain(&h.engine, other).await;
        assert!(!plan.contains("LatestBuckets"), "{plan}");
    }
}

async fn table(engine: &engine::Engine, sql: &str) -> arrow::array::RecordBatch {
    let output = engine.query("default", sql).await.unwrap();
    let schema = output.batches[0].schema();
    arrow::compute::concat_batches(&schema, &output.batches).unwrap()
}

/// A latest-buckets query with a limit and an offset, checked against the same query without
/// them, cut in the test; and how it ran: windows tried, and whether the whole query ran.
async fn latest(
    engine: &engine::Engine,
    query: String,
    limit: usize,
    offset: usize,
    windows_run: usize,
    whole: bool,
) -> arrow::array::RecordBatch {
    let limited = format!("{query} LIMIT {limit} OFFSET {offset}");
    let plan = explain(engine, &format!("ANALYZE {limited}")).await;
    assert!(plan.contains("LatestBucketsExec"), "{plan}");
    assert!(
        plan.contains(&format!("windows_run={windows_run}")),
        "{plan}"
    );
    assert_eq!(plan.contains("whole_runs=1"), whole, "{plan}");
    let answer = table(engine, &limited).await;
    let everything = table(engine, &query).await;
    assert!(everything.num_rows() >= offset + answer.num_rows());
    assert_eq!(
        answer,
        everything.slice(offset, answer.num_rows()),
        "{limited}"
    );
    answer
}
