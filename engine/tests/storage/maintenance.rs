use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arrow::{array::AsArray, datatypes::Int64Type};
use catalog::testing::TestDatabase;
use chrono::Utc;
use engine::{EngineConfig, MaintenanceConfig};

use crate::support::{DAY, HOUR, Harness, MARCH_1, Random, Reading, SECOND, count, test_config};

pub async fn compaction_keeps_every_reading(db: TestDatabase) {
    let config = EngineConfig {
        maintenance: MaintenanceConfig {
            compacted_file_rows: 250,
            ..test_config().maintenance
        },
        ..test_config()
    };
    let h = Harness::with_config(db, config).await;
    let s = h.subjects(6).await;
    let mut random = Random::new(7);
    for write in 0..10 {
        let rows: Vec<Reading> = (0..120)
            .map(|_| {
                let subject = s[random.below(6) as usize];
                (
                    subject,
                    "watch",
                    MARCH_1 + random.below(200) as i64 * 60 * SECOND,
                    write as f64,
                )
            })
            .collect();
        h.write(&rows).await.unwrap();
    }
    let before = h.readings().await;
    let files_before = h.live_files().await;
    assert_eq!(files_before.len(), 10);

    let report = h.engine.compact(2).await.unwrap();
    assert_eq!(
        (report.partitions, report.files_in, report.conflicts),
        (1, 10, 0)
    );
    assert_eq!(report.rows_out as usize, before.len());
    assert!(
        report.files_out > 1,
        "files are cut at the configured size: {report:?}"
    );
    assert_eq!(h.readings().await, before);

    // Compacted files are sorted, unique, level 1, and do not overlap in subjects.
    let after = h.live_files().await;
    assert_eq!(after.len(), report.files_out);
    for pair in after.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.max_subject < b.min_subject || b.max_subject < a.min_subject,
            "{a:?} {b:?}"
        );
    }
    assert!(after.iter().all(|f| f.compaction_level == 1));
    // The replaced files go once their grace period is over; nothing else does.
    let garbage = h
        .engine
        .collect_garbage(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!((garbage.replaced, garbage.orphans), (10, 0));
    assert_eq!(h.parquet_files().len(), after.len());
    assert_eq!(h.readings().await, before);
    // Nothing left to compact.
    assert_eq!(h.engine.compact(2).await.unwrap().partitions, 0);
}

pub async fn concurrent_writers_with_compaction_running(db: TestDatabase) {
    let h = Arc::new(Harness::new(db).await);
    let s = h.subjects(8).await;
    // Writers hold their second half until a compaction has happened, so compaction is
    // guaranteed to interleave with writes however the machine schedules the tasks.
    let (compacted_tx, compacted_rx) = tokio::sync::watch::channel(0usize);
    let writers_done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (h, s, mut compacted) = (h.clone(), s.clone(), compacted_rx.clone());
            tokio::spawn(async move {
                let mut written = BTreeMap::new();
                for round in 0..15 {
                    if round == 8 {
                        tokio::time::timeout(
                            Duration::from_secs(60),
                            compacted.wait_for(|partitions| *partitions > 0),
                        )
                        .await
                        .expect("compaction ran while writers wrote")
                        .unwrap();
                    }
                    // Each writer owns two subjects; its rows overlap its own earlier rows.
                    let rows: Vec<Reading> = (0..50)
                        .map(|i| {
                            let subject = s[w * 2 + i % 2];
                            (
                                subject,
                                "watch",
                                MARCH_1 + ((round * 7 + i) % 60) as i64 * 60 * SECOND,
                                (round * 100 + i) as f64,
                            )
                        })
                        .collect();
                    h.write(&rows).await.unwrap();
                    for (subject, source, time, bpm) in rows {
                        written.insert((subject, source.to_owned(), time), bpm);
                    }
                }
                written
            })
        })
        .collect();
    let compactor = {
        let (h, writers_done) = (h.clone(), writers_done.clone());
        tokio::spawn(async move {
            while !writers_done.load(Ordering::Acquire) {
                let partitions = h.engine.compact(2).await.unwrap().partitions;
                compacted_tx.send_modify(|total| *total += partitions);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            *compacted_tx.borrow()
        })
    };
    let mut expected = BTreeMap::new();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    writers_done.store(true, Ordering::Release);
    assert!(
        compactor.await.unwrap() > 0,
        "compaction ran while writers wrote"
    );
    assert_eq!(h.readings().await, expected);
    h.engine.compact(2).await.unwrap();
    assert_eq!(h.readings().await, expected);
}

pub async fn retention_drops_expired_days(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(1).await[0];
    let now = Utc::now();
    let today = now.timestamp_nanos_opt().unwrap() / DAY * DAY;
    let rows: Vec<Reading> = (0..30)
        .map(|d| (s, "watch", today - d * DAY + HOUR, 60.0))
        .collect();
    h.write(&rows).await.unwrap();
    let stream = h.engine.stream("default", "heart_rate").await.unwrap();
    h.catalog
        .streams()
        .set_retention(stream.id(), Some(7))
        .await
        .unwrap();
    // Other streams keep everything.
    h.engine
        .write(
            "default",
            "steps",
            arrow::array::RecordBatch::try_from_iter(vec![
                (
                    "subject_id",
                    Arc::new(arrow::array::Int64Array::from(vec![s])) as _,
                ),
                (
                    "source",
                    Arc::new(arrow::array::StringArray::from(vec!["phone"])) as _,
                ),
                (
                    "time",
                    Arc::new(arrow::array::TimestampNanosecondArray::from(vec![
                        today - 20 * DAY,
                    ])) as _,
                ),
                (
                    "end_time",
                    Arc::new(arrow::array::TimestampNanosecondArray::from(vec![
                        today - 20 * DAY + HOUR,
                    ])) as _,
                ),
                (
                    "count",
                    Arc::new(arrow::array::Int64Array::from(vec![1200])) as _,
                ),
            ])
            .unwrap(),
            None,
        )
        .await
        .unwrap();

    let fresh = h.restarted().await;
    let report = fresh.apply_retention(now).await.unwrap();
    assert_eq!((report.partitions, report.files, report.rows), (22, 22, 22));
    assert_eq!(count(&fresh, "SELECT count(*) FROM heart_rate").await, 8);
    assert_eq!(count(&fresh, "SELECT count(*) FROM steps").await, 1);
    let oldest = fresh
        .query(
            "default",
            "SELECT CAST(min(time) AS BIGINT) FROM heart_rate",
        )
        .await
        .unwrap();
    let oldest = oldest.batches[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0);
    assert_eq!(oldest, today - 7 * DAY + HOUR);
    // Catalog first, then the files.
    assert_eq!(h.parquet_files().len(), 31);
    fresh
        .collect_garbage(now + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(h.parquet_files().len(), 9);
    assert_eq!(fresh.apply_retention(now).await.unwrap().partitions, 0);
}

pub async fn erasure_removes_the_subject_from_every_file(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(3).await;
    for d in 0..3 {
        let rows: Vec<Reading> = s
            .iter()
            .flat_map(|&subject| {
                (0..10).map(move |m| {
                    (
                        subject,
                        "watch",
                        MARCH_1 + d * DAY + m * 60 * SECOND,
                        70.0 + subject as f64,
                    )
                })
            })
            .collect();
        h.write(&rows).await.unwrap();
    }
    // A second, overlapping write on day 0 so that a merge and several files hold subject 2.
    h.write(&[(s[1], "ring", MARCH_1, 50.0)]).await.unwrap();
    let target = s[1];
    let total = count(&h.engine, "SELECT count(*) FROM heart_rate").await;
    assert_eq!(total, 91);

    let request = h.engine.erase("default", "S2", None).await.unwrap();
    assert_eq!(request.status, catalog::ErasureStatus::Completed);
    assert_eq!(request.rows_removed, Some(31));
    assert_eq!(request.files_rewritten, Some(4));
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM heart_rate").await,
        60
    );
    assert_eq!(
        count(
            &h.engine,
            &format!("SELECT count(*) FROM heart_rate WHERE subject_id = {target}")
        )
        .await,
        0
    );
    assert_eq!(
        count(&h.engine, "SELECT count(*) FROM meta.subjects").await,
        2
    );

    // Once the replaced files are gone, no Parquet file anywhere holds a row of the subject.
    h.engine
        .collect_garbage(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    let files = h.parquet_files();
    assert!(!files.is_empty());
    for (path, batches) in files {
        for batch in batches {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            assert!(
                !ids.values().contains(&target),
                "{} still holds subject {target}",
                path.display()
            );
        }
    }
    // A second request for the same subject is refused; the others are untouched.
    assert!(h.engine.erase("default", "S2", None).await.is_err());
    assert_eq!(
        count(
            &h.engine,
            &format!(
                "SELECT count(*) FROM heart_rate WHERE subject_id = {}",
                s[0]
            )
        )
        .await,
        30
    );
}
