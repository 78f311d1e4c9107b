use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use catalog::{
    BatchId, Error, FileFilter, NewBatch, NewParquetFile, ParquetFile, StreamId, SubjectId,
    testing::TestDatabase,
};

use crate::support::{
    HOUR_NS, assert_err, at, day, default_org, minutes, parquet_file, stream_id, t0,
};

fn ids(files: &[ParquetFile]) -> Vec<i64> {
    let mut ids: Vec<_> = files.iter().map(|f| f.id.0).collect();
    ids.sort();
    ids
}

pub async fn a_flush_registers_all_its_files_or_none(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let files = catalog.files();

    let flush = vec![
        parquet_file(hr, 0, (0, 6), (1, 5), 1_000),
        parquet_file(hr, 1, (0, 24), (1, 9), 4_000),
        parquet_file(hr, 0, (6, 12), (3, 9), 2_000),
    ];
    let committed = files.commit(flush.clone()).await.unwrap();
    assert_eq!(committed.len(), 3);
    let by_path = |path: &str| committed.iter().find(|f| f.path == path).unwrap();
    assert_eq!(by_path(&flush[0].path).sequence, 1);
    assert_eq!(by_path(&flush[2].path).sequence, 2);
    assert_eq!(by_path(&flush[1].path).sequence, 1);
    assert_eq!(by_path(&flush[1].path).day, day(1));
    assert_eq!(
        ids(&files.live_files(hr, FileFilter::default()).await.unwrap()),
        ids(&committed)
    );

    // A flush with one bad file leaves nothing of the others, partitions included.
    let duplicate = NewParquetFile {
        object_store_id: uuid::Uuid::new_v4(),
        ..flush[0].clone()
    };
    let err = assert_err!(
        files
            .commit(vec![parquet_file(hr, 5, (0, 1), (1, 1), 10), duplicate])
            .await,
        Error::AlreadyExists { .. }
    );
    assert!(err.to_string().contains(&flush[0].path), "{err}");
    assert_err!(files.partition(hr, day(5)).await, Error::NotFound { .. });
    assert_eq!(
        files
            .live_files(hr, FileFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );

    let mut straddling = parquet_file(hr, 2, (20, 24), (1, 1), 10);
    straddling.max_time = at(3, 1);
    let err = assert_err!(files.commit(vec![straddling]).await, Error::Invalid { .. });
    assert!(err.to_string().contains("partition day"), "{err}");
    assert_err!(
        files
            .commit(vec![parquet_file(StreamId(987_654), 0, (0, 1), (1, 1), 10)])
            .await,
        Error::NotFound { .. }
    );

    // Files remember the batch that wrote them, which must exist.
    let batch = catalog
        .ingest()
        .begin_batch(
            NewBatch {
                org,
                source: "watch.csv".into(),
                format: "csv".into(),
                bytes: 100,
                created_by: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let linked = files
        .commit(vec![NewParquetFile {
            ingest_batch: Some(batch.id),
            ..parquet_file(hr, 2, (0, 1), (1, 1), 10)
        }])
        .await
        .unwrap();
    assert_eq!(linked[0].ingest_batch, Some(batch.id));
    assert_err!(
        files
            .commit(vec![NewParquetFile {
                ingest_batch: Some(BatchId(987_654)),
                ..parquet_file(hr, 2, (1, 2), (1, 1), 10)
            }])
            .await,
        Error::NotFound { .. }
    );

    let known = files
        .known_paths(&["default/nowhere.parquet".into(), flush[1].path.clone()])
        .await
        .unwrap();
    assert_eq!(known, [flush[1].path.clone()]);
}

pub async fn live_files_are_pruned_by_time_and_subject(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let steps = stream_id(&catalog, org, "steps").await;
    let files = catalog.files();
    let committed = files
        .commit(vec![
            parquet_file(hr, 0, (0, 6), (1, 5), 1_000),
            parquet_file(hr, 0, (6, 12), (3, 9), 2_000),
            parquet_file(hr, 1, (0, 24), (1, 9), 4_000),
            parquet_file(steps, 0, (0, 24), (1, 9), 500),
        ])
        .await
        .unwrap();
    let [morning, noon, next_day, _steps] = committed.as_slice() else {
        unreachable!()
    };
    let live = |filter| async move { ids(&files.live_files(hr, filter).await.unwrap()) };
    let hours = |d, from, to| Some((at(d, from), at(d, to)));
    let subjects = |low, high| Some((SubjectId(low), SubjectId(high)));

    assert_eq!(live(FileFilter::default()).await, ids(&committed[..3]));
    assert_eq!(
        live(FileFilter {
            time: hours(0, 5, 7),
            subjects: None
        })
        .await,
        ids(&[morning.clone(), noon.clone()])
    );
    // The end of the range is exclusive: a range ending at 06:00 does not need the noon file.
    assert_eq!(
        live(FileFilter {
            time: hours(0, 5, 6),
            subjects: None
        })
        .await,
        [morning.id.0]
    );
    assert_eq!(
        live(FileFilter {
            time: hours(1, 1, 2),
            subjects: None
        })
        .await,
        [next_day.id.0]
    );
    assert_eq!(
        live(FileFilter {
            time: Some((at(0, 11), at(1, 1))),
            subjects: None
        })
        .await,
        ids(&[noon.clone(), next_day.clone()])
    );
    assert!(
        live(FileFilter {
            time: hours(4, 0, 1),
            subjects: None
        })
        .await
        .is_empty()
    );
    assert!(
        live(FileFilter {
            time: Some((at(0, 7), at(0, 7))),
            subjects: None
        })
        .await
        .is_empty()
    );

    assert_eq!(
        live(FileFilter {
            time: None,
            subjects: subjects(6, 6)
        })
        .await,
        ids(&[noon.clone(), next_day.clone()])
    );
    assert_eq!(
        live(FileFilter {
            time: None,
            subjects: subjects(1, 2)
        })
        .await,
        ids(&[morning.clone(), next_day.clone()])
    );
    assert_eq!(
        live(FileFilter {
            time: hours(0, 0, 24),
            subjects: subjects(9, 20)
        })
        .await,
        [noon.id.0]
    );

    let partitions = files.partitions(hr).await.unwrap();
    let summary: Vec<_> = partitions
        .iter()
        .map(|p| (p.day, p.live_files, p.live_rows, p.last_sequence))
        .collect();
    assert_eq!(summary, [(day(0), 2, 3_000, 2), (day(1), 1, 4_000, 1)]);
    assert_eq!(files.partition(hr, day(1)).await.unwrap(), partitions[1]);
    assert_eq!(files.partitions(steps).await.unwrap().len(), 1);
}

pub async fn concurrent_flushes_to_one_partition_get_distinct_write_orders(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    // Writers list their partitions in opposite orders: the catalog's lock
                    // order, not theirs, must decide.
                    let mut flush = vec![
                        parquet_file(hr, 0, (0, 1), (1, 1), 10),
                        parquet_file(hr, 1, (0, 1), (1, 1), 10),
                    ];
                    if writer % 2 == 1 {
                        flush.reverse();
                    }
                    catalog.files().commit(flush).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for d in [0, 1] {
        let files = catalog
            .files()
            .live_files(
                hr,
                FileFilter {
                    time: Some((at(d, 0), at(d, 24))),
                    subjects: None,
                },
            )
            .await
            .unwrap();
        let mut sequences: Vec<_> = files.iter().map(|f| f.sequence).collect();
        sequences.sort();
        assert_eq!(sequences, (1..=40).collect::<Vec<_>>());
        assert_eq!(
            catalog
                .files()
                .partition(hr, day(d))
                .await
                .unwrap()
                .last_sequence,
            40
        );
    }
}

pub async fn a_swap_replaces_live_files_and_schedules_their_deletion(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let files = catalog.files();
    let committed = files
        .commit(vec![
            parquet_file(hr, 0, (0, 4), (1, 5), 100),
            parquet_file(hr, 0, (2, 8), (1, 5), 100),
            parquet_file(hr, 0, (8, 9), (1, 5), 100),
            parquet_file(hr, 1, (0, 1), (1, 5), 100),
        ])
        .await
        .unwrap();
    let [first, second, third, elsewhere] = committed.as_slice() else {
        unreachable!()
    };
    let partition = first.partition;
    let grace = t0() + minutes(10);

    let mut merged = parquet_file(hr, 0, (0, 8), (1, 5), 180);
    merged.compaction_level = 1;
    let swapped = files
        .swap(
            partition,
            &[first.id, second.id],
            vec![merged.clone()],
            grace,
        )
        .await
        .unwrap();
    assert_eq!(swapped.len(), 1);
    // The merged file keeps the write order of the newest file it replaces.
    assert_eq!((swapped[0].sequence, swapped[0].compaction_level), (2, 1));
    let live = files.live_files(hr, FileFilter::default()).await.unwrap();
    assert_eq!(
        ids(&live),
        ids(&[third.clone(), elsewhere.clone(), swapped[0].clone()])
    );

    let err = assert_err!(
        files
            .swap(
                partition,
                &[first.id],
                vec![parquet_file(hr, 0, (0, 1), (1, 1), 1)],
                grace
            )
            .await,
        Error::Conflict(_)
    );
    assert!(err.to_string().contains("no longer a live file"), "{err}");
    assert_err!(
        files.swap(partition, &[elsewhere.id], vec![], grace).await,
        Error::Conflict(_)
    );
    assert_err!(
        files
            .swap(
                partition,
                &[third.id],
                vec![parquet_file(hr, 1, (0, 1), (1, 1), 1)],
                grace
            )
            .await,
        Error::Invalid { .. }
    );
    assert_err!(
        files.swap(partition, &[], vec![merged], grace).await,
        Error::Invalid { .. }
    );
    assert_err!(
        files
            .swap(partition, &[third.id, third.id], vec![], grace)
            .await,
        Error::Invalid { .. }
    );
    // Refused swaps changed nothing.
    assert_eq!(
        files
            .live_files(hr, FileFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );

    assert!(
        files
            .due_for_deletion(grace - minutes(1), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let due = files.due_for_deletion(grace, 100).await.unwrap();
    assert_eq!(ids(&due), ids(&[first.clone(), second.clone()]));
    assert!(due.iter().all(|f| f.to_delete_at == Some(grace)));
    // Only replaced files can be forgotten.
    assert_eq!(
        files
            .forget(&[first.id, second.id, third.id])
            .await
            .unwrap(),
        2
    );
    assert!(files.due_for_deletion(grace, 100).await.unwrap().is_empty());
    assert!(
        files
            .known_paths(std::slice::from_ref(&first.path))
            .await
            .unwrap()
            .is_empty()
    );

    // Retention: a partition's whole live set replaced by nothing.
    let retired = files
        .swap(partition, &[third.id, swapped[0].id], vec![], grace)
        .await
        .unwrap();
    assert!(retired.is_empty());
    let emptied = files.partition(hr, day(0)).await.unwrap();
    assert_eq!((emptied.live_files, emptied.live_rows), (0, 0));
    assert_eq!(
        ids(&files.live_files(hr, FileFilter::default()).await.unwrap()),
        [elsewhere.id.0]
    );
}

pub async fn concurrent_swaps_of_the_same_files_have_one_winner(db: TestDatabase) {
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    for _ in 0..5 {
        let inputs = catalog
            .files()
            .commit(
                (0..4)
                    .map(|h| parquet_file(hr, 0, (h, h + 1), (1, 5), 25))
                    .collect(),
            )
            .await
            .unwrap();
        let replaced: Vec<_> = inputs.iter().map(|f| f.id).collect();
        let partition = inputs[0].partition;
        let compactors: Vec<_> = (0..2)
            .map(|_| {
                let (catalog, replaced) = (catalog.clone(), replaced.clone());
                tokio::spawn(async move {
                    catalog
                        .files()
                        .swap(
                            partition,
                            &replaced,
                            vec![parquet_file(hr, 0, (0, 4), (1, 5), 100)],
                            t0(),
                        )
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for compactor in compactors {
            match compactor.await.unwrap() {
                Ok(files) => winners.extend(files),
                Err(Error::Conflict(_)) => {}
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!(winners.len(), 1);
        let live = catalog
            .files()
            .live_files(hr, FileFilter::default())
            .await
            .unwrap();
        assert_eq!(ids(&live), ids(&winners));
        catalog
            .files()
            .swap(partition, &[winners[0].id], vec![], t0())
            .await
            .unwrap();
    }
}

pub async fn readers_see_the_file_set_before_or_after_a_swap(db: TestDatabase) {
    const ROWS: i64 = 400;
    let catalog = db.catalog().await;
    let org = default_org(&catalog).await;
    let hr = stream_id(&catalog, org, "heart_rate").await;
    let initial = catalog
        .files()
        .commit(
            (0..4)
                .map(|h| parquet_file(hr, 0, (h, h + 1), (1, 5), ROWS / 4))
                .collect(),
        )
        .await
        .unwrap();
    let partition = initial[0].partition;
    let done = Arc::new(AtomicBool::new(false));

    let compactor = {
        let (catalog, done) = (catalog.clone(), done.clone());
        tokio::spawn(async move {
            for round in 0..30 {
                let live = catalog
                    .files()
                    .live_files(hr, FileFilter::default())
                    .await
                    .unwrap();
                let replaced: Vec<_> = live.iter().map(|f| f.id).collect();
                // Alternate between one merged file and two halves: same rows either way.
                let outputs = if round % 2 == 0 {
                    vec![parquet_file(hr, 0, (0, 4), (1, 5), ROWS)]
                } else {
                    vec![
                        parquet_file(hr, 0, (0, 2), (1, 5), ROWS / 2),
                        parquet_file(hr, 0, (2, 4), (1, 5), ROWS / 2),
                    ]
                };
                catalog
                    .files()
                    .swap(partition, &replaced, outputs, t0())
                    .await
                    .unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (catalog, done) = (catalog.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) || reads == 0 {
                    let window = FileFilter {
                        time: Some((at(0, 0), at(0, 0) + 4 * HOUR_NS)),
                        subjects: None,
                    };
                    let live = catalog.files().live_files(hr, window).await.unwrap();
                    let rows: i64 = live.iter().map(|f| f.row_count).sum();
                    assert_eq!(rows, ROWS, "a reader saw a mix of two file sets: {live:?}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    compactor.await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
}
