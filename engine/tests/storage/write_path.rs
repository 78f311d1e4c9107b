use std::{collections::BTreeMap, sync::Arc, sync::atomic::Ordering::SeqCst, time::Duration};

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use catalog::testing::TestDatabase;
use engine::{Commit, Engine, EngineConfig, Error, Principal, WriterConfig};

use crate::{
    faulty_catalog::FaultyCatalog,
    support::{
        DAY, HOUR, Harness, MARCH_1, Random, Reading, SECOND, count, heart_rate, readings,
        test_config,
    },
};

pub async fn written_rows_come_back_by_sql(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    let receipt = h
        .write(&[
            (s[0], "watch", MARCH_1, 61.0),
            (s[0], "watch", MARCH_1 + 60 * SECOND, 64.0),
            (s[1], "ring", MARCH_1 + DAY, 70.0),
        ])
        .await
        .unwrap();
    assert_eq!(receipt.rows, 3);
    let stored = h.readings().await;
    assert_eq!(
        stored,
        BTreeMap::from([
            ((s[0], "watch".into(), MARCH_1), 61.0),
            ((s[0], "watch".into(), MARCH_1 + 60 * SECOND), 64.0),
            ((s[1], "ring".into(), MARCH_1 + DAY), 70.0),
        ])
    );
    // One file per UTC day, each registered with its ranges.
    let live = h.live_files().await;
    assert_eq!(live.len(), 2);
    assert_eq!(
        (live[0].min_time, live[0].max_time, live[0].row_count),
        (MARCH_1, MARCH_1 + 60 * SECOND, 2)
    );
    assert!(
        live[0].path.starts_with("default/heart_rate/2026-03-01/"),
        "{}",
        live[0].path
    );
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM heart_rate WHERE bpm > 62").await,
        2
    );
}

pub async fn rewriting_a_reading_replaces_it(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(1).await[0];
    // Within one batch the last row wins; in a later write, the later write wins.
    h.write(&[(s, "watch", MARCH_1, 60.0), (s, "watch", MARCH_1, 61.0)])
        .await
        .unwrap();
    h.write(&[(s, "watch", MARCH_1, 62.0), (s, "ring", MARCH_1, 59.0)])
        .await
        .unwrap();
    h.write(&[(s, "watch", MARCH_1 + SECOND, 63.0)])
        .await
        .unwrap();
    let expected = BTreeMap::from([
        ((s, "ring".into(), MARCH_1), 59.0),
        ((s, "watch".into(), MARCH_1), 62.0),
        ((s, "watch".into(), MARCH_1 + SECOND), 63.0),
    ]);
    assert_eq!(h.readings().await, expected);
    // Re-ingesting the same data changes nothing.
    h.write(&[(s, "watch", MARCH_1, 62.0), (s, "ring", MARCH_1, 59.0)])
        .await
        .unwrap();
    assert_eq!(h.readings().await, expected);
    assert_eq!(count(&h.engine, "SELECT count(*) FROM heart_rate").await, 3);

    let report = h.engine.compact(2).await.unwrap();
    assert_eq!((report.partitions, report.files_out), (1, 1));
    assert_eq!(report.rows_out, 3);
    assert_eq!(h.readings().await, expected);
}

/// Writes queued one after another commit in that order, and a write that asks to commit
/// now takes what waits before it into one commit instead of waiting the flush interval.
pub async fn a_commit_now_write_commits_what_was_queued_before_it(db: TestDatabase) {
    let config = EngineConfig {
        writer: WriterConfig {
            flush_interval: Duration::from_secs(3600),
            ..WriterConfig::default()
        },
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(1).await[0];
    let principal = Principal::operator(h.engine.organization("default").await.unwrap());
    let versions = [60.0, 61.0, 62.0];
    let mut submitted = Vec::new();
    for (i, bpm) in versions.into_iter().enumerate() {
        let commit = match i + 1 == versions.len() {
            true => Commit::Now,
            false => Commit::Grouped,
        };
        let rows = heart_rate(&[
            (s, "watch", MARCH_1, bpm),
            (s, "watch", MARCH_1 + SECOND * i as i64, bpm),
        ]);
        let write = h
            .engine
            .submit_as(&principal, "heart_rate", rows, None, commit)
            .await
            .unwrap();
        submitted.push(write);
    }
    // Without the last write's request the commit would wait an hour: the timeout fails the
    // test rather than hanging it.
    let durable = futures::future::try_join_all(submitted.into_iter().map(|w| w.durable()));
    let receipts = tokio::time::timeout(Duration::from_secs(60), durable)
        .await
        .expect("the commit did not wait for the flush interval")
        .unwrap();
    assert_eq!(receipts.iter().map(|r| r.rows).sum::<usize>(), 6);
    assert_eq!(
        h.readings().await,
        BTreeMap::from([
            ((s, "watch".into(), MARCH_1), 62.0),
            ((s, "watch".into(), MARCH_1 + SECOND), 61.0),
            ((s, "watch".into(), MARCH_1 + 2 * SECOND), 62.0),
        ])
    );
    assert_eq!(
        h.live_files().await.len(),
        1,
        "one commit, one file for the day"
    );
}

pub async fn deduplication_matches_a_reference_model(db: TestDatabase) {
    let h = Harness::new(db).await;
    let subjects = h.subjects(5).await;
    let sources = ["watch", "ring", "phone"];
    let mut reference: BTreeMap<(i64, String, i64), f64> = BTreeMap::new();
    let mut random = Random::new(20_260_301);
    let mut value = 0.0;
    for round in 0..12 {
        let mut rows: Vec<Reading> = Vec::new();
        for _ in 0..200 {
            let subject = subjects[random.below(5) as usize];
            let source = sources[random.below(3) as usize];
            // Few distinct times, so that rows collide within and across writes and days.
            let time =
                MARCH_1 + random.below(3) as i64 * DAY + random.below(40) as i64 * 30 * SECOND;
            value += 1.0;
            rows.push((subject, source, time, value));
        }
        let apply = |reference: &mut BTreeMap<(i64, String, i64), f64>, rows: &[Reading]| {
            for &(subject, source, time, bpm) in rows {
                reference.insert((subject, source.to_owned(), time), bpm);
            }
        };
        // Sometimes two writers in one flush, whose order is their arrival order: the second
        // starts a moment later, but a loaded machine may still let it arrive first, so
        // either order, whole, is right.
        let mut swapped = None;
        if round % 3 == 0 {
            let (first, second) = rows.split_at(100);
            let (a, b) = tokio::join!(h.write(first), async {
                tokio::time::sleep(Duration::from_millis(2)).await;
                h.write(second).await
            });
            a.unwrap();
            b.unwrap();
            let mut other_order = reference.clone();
            apply(&mut other_order, second);
            apply(&mut other_order, first);
            swapped = Some(other_order);
        } else {
            h.write(&rows).await.unwrap();
        }
        apply(&mut reference, &rows);
        let found = h.readings().await;
        if let Some(other_order) = swapped.filter(|other| *other == found) {
            reference = other_order;
        }
        assert_eq!(found, reference, "after write {round}");
        if round == 7 {
            h.engine.compact(2).await.unwrap();
            assert_eq!(h.readings().await, reference, "after compaction");
        }
    }
    let filtered = readings(
        &h.engine,
        &format!(
            "SELECT subject_id, source, time, bpm FROM heart_rate WHERE subject_id = {} AND bpm > 1000",
            subjects[2]
        ),
    )
    .await;
    let expected: BTreeMap<_, _> = reference
        .iter()
        .filter(|((subject, _, _), bpm)| *subject == subjects[2] && **bpm > 1000.0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(
        filtered, expected,
        "a value filter must apply after de-duplication"
    );
    // An ORDER BY other than the files' order must sort after the merge, not inside it.
    let ordered = h
        .engine
        .query(
            "default",
            "SELECT subject_id, source, time, bpm FROM heart_rate ORDER BY subject_id, source, time",
        )
        .await
        .unwrap();
    let rows: usize = ordered.batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, reference.len());
    assert_eq!(
        readings(
            &h.engine,
            "SELECT subject_id, source, time, bpm FROM heart_rate ORDER BY subject_id, source, time"
        )
        .await,
        reference
    );
}

pub async fn bad_batches_are_refused_with_their_place(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    let cases: Vec<(RecordBatch, &str)> = vec![
        (
            heart_rate(&[
                (s[0], "watch", MARCH_1, 60.0),
                (987_654, "watch", MARCH_1, 60.0),
            ]),
            "subject_id 987654 at row 1 is not a subject",
        ),
        (
            RecordBatch::try_from_iter(vec![
                ("subject_id", Arc::new(Int64Array::from(vec![s[0]])) as _),
                ("source", Arc::new(StringArray::from(vec!["watch"])) as _),
                (
                    "time",
                    Arc::new(TimestampNanosecondArray::from(vec![MARCH_1])) as _,
                ),
                ("bpm", Arc::new(StringArray::from(vec!["sixty"])) as _),
            ])
            .unwrap(),
            "column 'bpm' has type Utf8",
        ),
        (
            RecordBatch::try_from_iter(vec![
                ("subject_id", Arc::new(Int64Array::from(vec![s[0]])) as _),
                (
                    "time",
                    Arc::new(TimestampNanosecondArray::from(vec![MARCH_1])) as _,
                ),
                ("bpm", Arc::new(Float64Array::from(vec![60.0])) as _),
            ])
            .unwrap(),
            "column 'source' is missing",
        ),
    ];
    for (batch, expected) in cases {
        let err = h
            .engine
            .write("default", "heart_rate", batch, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = h
        .engine
        .write("default", "pulse", heart_rate(&[]), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stream pulse not found"), "{err}");

    // An erased subject's data is not accepted again, even when the erasure was requested
    // elsewhere (here: straight in the catalog), once this node re-reads the erased subjects.
    h.catalog
        .erasure()
        .request(catalog::SubjectId(s[1]), None, chrono::Utc::now())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = h
        .write(&[(s[1], "watch", MARCH_1, 60.0)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is erased"), "{err}");
    // Nothing of the refused batches was stored.
    assert!(h.readings().await.is_empty());
}

pub async fn writers_wait_when_the_buffer_is_full(db: TestDatabase) {
    let config = EngineConfig {
        writer: WriterConfig {
            flush_interval: Duration::from_millis(5),
            max_buffer_bytes: 64 * 1024,
            overload_timeout: Duration::from_millis(300),
            ..WriterConfig::default()
        },
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(1).await[0];
    let rows: Vec<Reading> = (0..2_000)
        .map(|i| (s, "watch", MARCH_1 + i * SECOND, 60.0))
        .collect();
    // Uploads stall: the first write holds the whole buffer until they resume.
    let stalled = h.store.stall_uploads().await;
    let engine = h.engine.clone();
    let first_rows = rows.clone();
    let first = tokio::spawn(async move {
        engine
            .write("default", "heart_rate", heart_rate(&first_rows), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = h.write(&rows).await.unwrap_err();
    assert!(matches!(err, Error::Overloaded(_)), "{err}");
    assert!(err.to_string().contains("retry later"), "{err}");

    drop(stalled);
    assert_eq!(first.await.unwrap().unwrap().rows, 2_000);
    // With room again, writes go through.
    h.write(&rows).await.unwrap();
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM heart_rate").await,
        2_000
    );
}

pub async fn a_failed_upload_fails_its_writers_and_leaves_nothing(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(1).await[0];
    h.store.fail_puts.store(true, SeqCst);
    let err = h
        .write(&[
            (s, "watch", MARCH_1, 60.0),
            (s, "watch", MARCH_1 + DAY, 61.0),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Flush { .. }), "{err}");
    assert!(err.to_string().contains("injected put failure"), "{err}");
    assert!(
        err.to_string().contains("nothing of this write was stored"),
        "{err}"
    );
    assert!(h.readings().await.is_empty());

    h.store.fail_puts.store(false, SeqCst);
    h.write(&[(s, "watch", MARCH_1 + HOUR, 62.0)])
        .await
        .unwrap();
    assert_eq!(h.readings().await.len(), 1);
}

pub async fn a_failed_registration_leaves_garbage_that_is_collected(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let real = db.catalog().await;
    let faulty = Arc::new(FaultyCatalog::new(real.clone()));
    let store =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let engine = Engine::open(faulty.clone(), store, test_config()).unwrap();
    let org = real.organizations().get("default").await.unwrap().id;
    let s = real.subjects().ensure(org, &["S1".into()]).await.unwrap()[0]
        .id
        .0;

    faulty.fail_commits(true);
    let err = engine
        .write(
            "default",
            "heart_rate",
            heart_rate(&[
                (s, "watch", MARCH_1, 60.0),
                (s, "watch", MARCH_1 + DAY, 61.0),
            ]),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("injected catalog failure"),
        "{err}"
    );
    assert_eq!(count(&engine, "SELECT count(*) FROM heart_rate").await, 0);
    // The uploaded files exist but nobody registered them: garbage.
    let files_on_disk = || {
        walk(dir.path())
            .into_iter()
            .filter(|p| p.ends_with(".parquet"))
            .count()
    };
    assert_eq!(files_on_disk(), 2);
    faulty.fail_commits(false);
    engine
        .write(
            "default",
            "heart_rate",
            heart_rate(&[(s, "watch", MARCH_1 + HOUR, 62.0)]),
            None,
        )
        .await
        .unwrap();
    let report = engine
        .collect_garbage(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(report.orphans, 2);
    assert_eq!(files_on_disk(), 1);
    assert_eq!(count(&engine, "SELECT count(*) FROM heart_rate").await, 1);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

pub async fn a_restart_finds_every_acknowledged_row(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(3).await;
    let mut rows = Vec::new();
    for (i, subject) in s.iter().enumerate() {
        for minute in 0..100 {
            rows.push((
                *subject,
                "watch",
                MARCH_1 + i as i64 * DAY + minute * 60 * SECOND,
                60.0 + minute as f64,
            ));
        }
    }
    h.write(&rows).await.unwrap();
    let before = h.readings().await;
    assert_eq!(before.len(), 300);
    let restarted = h.restarted().await;
    drop(h.engine.clone());
    assert_eq!(
        readings(
            &restarted,
            "SELECT subject_id, source, time, bpm FROM heart_rate"
        )
        .await,
        before
    );
}
