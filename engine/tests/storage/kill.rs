//! SIGKILL in the middle of writes loses nothing acknowledged and shows nothing partial.
//!
//! The test binary runs itself again as a writer process (the `killed_writer_process` test,
//! told what to do by environment variables), reads the batches it acknowledges from its
//! output, kills it with SIGKILL, and then reads what a new engine finds.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use arrow::{array::AsArray, datatypes::Int64Type};
use catalog::testing::TestDatabase;
use engine::{Engine, EngineConfig, WriterConfig};
use object_store::local::LocalFileSystem;

use crate::support::{MARCH_1, Reading, SECOND, heart_rate, test_config};

const CATALOG_VAR: &str = "HEALTHAI_KILLED_WRITER_CATALOG";
const STORE_VAR: &str = "HEALTHAI_KILLED_WRITER_STORE";
const WRITERS: usize = 4;
const ROWS: i64 = 500;

/// The rows of writer `w`'s batch `i`: its own subject, its own times.
fn batch_rows(subject: i64, i: i64) -> Vec<Reading> {
    (0..ROWS)
        .map(|j| {
            (
                subject,
                "watch",
                MARCH_1 + (i * ROWS + j) * SECOND,
                i as f64,
            )
        })
        .collect()
}

pub async fn writer_process() {
    let (Ok(url), Ok(store)) = (std::env::var(CATALOG_VAR), std::env::var(STORE_VAR)) else {
        return;
    };
    let catalog = catalog::open(&url.parse().unwrap()).await.unwrap();
    let org = catalog.organizations().get("default").await.unwrap().id;
    let subjects: Vec<String> = (1..=WRITERS).map(|w| format!("W{w}")).collect();
    let subjects = catalog.subjects().ensure(org, &subjects).await.unwrap();
    let store = Arc::new(LocalFileSystem::new_with_prefix(store).unwrap());
    let config = EngineConfig {
        writer: WriterConfig {
            flush_interval: Duration::from_millis(5),
            ..WriterConfig::default()
        },
        ..test_config()
    };
    let engine = Engine::open(catalog, store, config).unwrap();
    let writers: Vec<_> = subjects
        .into_iter()
        .enumerate()
        .map(|(w, subject)| {
            let engine = engine.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let batch = heart_rate(&batch_rows(subject.id.0, i));
                    engine
                        .write("default", "heart_rate", batch, None)
                        .await
                        .unwrap();
                    println!("acked {w} {i}");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
}

pub async fn a_killed_writer_loses_no_acknowledged_row(db: TestDatabase) {
    db.catalog().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CATALOG_VAR, db.connection_string())
        .env(STORE_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: BTreeSet<(usize, i64)> = BTreeSet::new();
    let started = Instant::now();
    while acked.len() < 60 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the writer process acknowledged too little"
        );
        let line = lines
            .next()
            .expect("the writer process ended early")
            .unwrap();
        if let Some(ack) = line.strip_prefix("acked ") {
            let (w, i) = ack.split_once(' ').unwrap();
            acked.insert((w.parse().unwrap(), i.parse().unwrap()));
        }
    }
    child.kill().unwrap();
    // Acknowledgements printed before the kill still count.
    for line in lines.map_while(Result::ok) {
        if let Some((w, i)) = line.strip_prefix("acked ").and_then(|a| a.split_once(' ')) {
            acked.insert((w.parse().unwrap(), i.parse().unwrap()));
        }
    }
    child.wait().unwrap();

    let catalog = catalog::open(db.url()).await.unwrap();
    let org = catalog.organizations().get("default").await.unwrap().id;
    let subjects: BTreeMap<i64, usize> = catalog
        .subjects()
        .list(org)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.id.0, s.pseudonym[1..].parse::<usize>().unwrap() - 1))
        .collect();
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let engine = Engine::open(catalog, store, test_config()).unwrap();
    let counts = engine
        .query(
            "default",
            "SELECT subject_id, CAST(bpm AS BIGINT) AS batch, count(*) AS rows FROM heart_rate GROUP BY 1, 2",
        )
        .await
        .unwrap();
    let mut visible: BTreeMap<(usize, i64), i64> = BTreeMap::new();
    for batch in &counts.batches {
        let subject = batch.column(0).as_primitive::<Int64Type>();
        let index = batch.column(1).as_primitive::<Int64Type>();
        let rows = batch.column(2).as_primitive::<Int64Type>();
        for r in 0..batch.num_rows() {
            visible.insert((subjects[&subject.value(r)], index.value(r)), rows.value(r));
        }
    }
    for ack in &acked {
        assert_eq!(
            visible.get(ack),
            Some(&ROWS),
            "acknowledged batch {ack:?} is not fully stored"
        );
    }
    for (batch, rows) in &visible {
        assert_eq!(*rows, ROWS, "batch {batch:?} is partly visible");
    }
}
