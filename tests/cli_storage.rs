//! Writing, querying and maintaining data with the `healthai` binary, as the README shows it.
//! Every command is a new process: each step also restarts the engine.

use std::{
    path::Path,
    process::{Command, Output},
};

use catalog::testing::TestDatabase;

struct Run<'a> {
    dir: &'a Path,
    catalog: Option<String>,
}

impl Run<'_> {
    fn healthai(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_healthai"));
        command
            .args(args)
            .current_dir(self.dir)
            .env_remove("HEALTHAI_CATALOG")
            .env_remove("HEALTHAI_STORE")
            .env_remove("HEALTHAI_ORG");
        if let Some(catalog) = &self.catalog {
            command.env("HEALTHAI_CATALOG", catalog);
        }
        command.output().expect("run healthai")
    }

    /// Runs a command that must succeed and returns its output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.healthai(args);
        assert!(
            output.status.success(),
            "healthai {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must fail with `code` and returns its message.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.healthai(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "healthai {args:?}: {stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{stderr}"
        );
        stderr
    }
}

/// Two subjects, two days of one reading a minute each.
fn readings_csv(dir: &Path) {
    let mut csv = String::from("subject,source,time,bpm\n");
    for subject in ["S0001", "S0002"] {
        for minute in 0..2 * 24 * 60 {
            let (day, rest) = (1 + minute / (24 * 60), minute % (24 * 60));
            csv.push_str(&format!(
                "{subject},watch,2026-03-{day:02}T{:02}:{:02}:00Z,{}\n",
                rest / 60,
                rest % 60,
                60 + minute % 40
            ));
        }
    }
    std::fs::write(dir.join("readings.csv"), csv).unwrap();
}

fn the_readme_walkthrough(run: &Run) {
    readings_csv(run.dir);
    assert_eq!(
        run.ok(&["write", "heart_rate", "readings.csv"]),
        "readings.csv: 5760 rows written to heart_rate\n"
    );
    let per_subject = "SELECT s.pseudonym, count(*) AS readings, max(h.bpm) AS max_bpm \
                       FROM heart_rate h JOIN meta.subjects s USING (subject_id) \
                       GROUP BY 1 ORDER BY 1";
    let expected = "pseudonym,readings,max_bpm\nS0001,2880,99.0\nS0002,2880,99.0\n";
    assert_eq!(run.ok(&["query", per_subject, "--format", "csv"]), expected);

    // Importing the same file again changes nothing.
    run.ok(&["write", "heart_rate", "readings.csv"]);
    assert_eq!(run.ok(&["query", per_subject, "--format", "csv"]), expected);
    let files =
        "SELECT sum(live_files) AS files FROM system.partitions WHERE stream = 'heart_rate'";
    assert_eq!(run.ok(&["query", files, "--format", "csv"]), "files\n4\n");

    let compacted = run.ok(&["compact"]);
    assert!(
        compacted.starts_with("compacted 2 partitions: 4 files into 2, 11520 rows into 5760"),
        "{compacted}"
    );
    assert_eq!(run.ok(&["query", files, "--format", "csv"]), "files\n2\n");
    assert_eq!(run.ok(&["query", per_subject, "--format", "csv"]), expected);

    let erased = run.ok(&["erase", "--subject", "S0002"]);
    assert!(
        erased.contains("2 files rewritten, 2880 rows removed"),
        "{erased}"
    );
    assert_eq!(
        run.ok(&["query", per_subject, "--format", "csv"]),
        "pseudonym,readings,max_bpm\nS0001,2880,99.0\n"
    );
    let refused = run.fails(&["erase", "--subject", "S0002"], 1);
    assert!(
        refused.contains("already has a completed erasure request"),
        "{refused}"
    );

    let json = run.ok(&[
        "query",
        "SELECT subject_id, bpm FROM heart_rate ORDER BY time LIMIT 2",
        "--format",
        "json",
    ]);
    assert_eq!(
        json,
        "[{\"subject_id\":1,\"bpm\":60.0},{\"subject_id\":1,\"bpm\":61.0}]\n"
    );
    let table = run.ok(&["query", "SELECT count(*) AS n FROM heart_rate"]);
    assert!(
        table.contains("| 2880 |") && table.ends_with("1 row\n"),
        "{table}"
    );
}

#[test]
fn the_readme_walkthrough_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: None,
    };
    the_readme_walkthrough(&run);
    assert!(
        dir.path()
            .join("healthai-data/store/default/heart_rate/2026-03-01")
            .is_dir()
    );
}

#[tokio::test]
async fn the_readme_walkthrough_on_postgres() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: Some(db.connection_string()),
    };
    run.ok(&["migrate"]);
    the_readme_walkthrough(&run);
}

#[test]
fn retention_drops_old_days_of_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: None,
    };
    readings_csv(dir.path());
    run.ok(&["write", "heart_rate", "readings.csv"]);
    // The readings are from March 2026; keeping 30 days from now keeps none of them.
    let dropped = run.ok(&["retention", "--stream", "heart_rate", "--days", "30"]);
    assert!(
        dropped
            .starts_with("heart_rate keeps 30 days\ndropped 2 expired days (2 files, 5760 rows)"),
        "{dropped}"
    );
    assert_eq!(
        run.ok(&[
            "query",
            "SELECT count(*) AS n FROM heart_rate",
            "--format",
            "csv"
        ]),
        "n\n0\n"
    );
    let kept = run.ok(&["retention", "--stream", "heart_rate", "--keep-all"]);
    assert!(kept.starts_with("heart_rate keeps everything\n"), "{kept}");
    run.fails(&["retention", "--stream", "heart_rate"], 2);
}

#[test]
fn custom_streams_are_registered_from_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: None,
    };
    std::fs::write(
        dir.path().join("skin.json"),
        r#"{"name": "skin_temperature", "kind": "point", "description": "Ring skin temperature",
            "columns": [{"name": "celsius", "type": "Float64", "unit": "Cel", "min": 25, "max": 45, "nullable": false}]}"#,
    )
    .unwrap();
    assert_eq!(
        run.ok(&["streams", "register", "skin.json"]),
        "registered stream skin_temperature (4 columns)\n"
    );
    assert!(
        run.ok(&["streams"])
            .contains("skin_temperature   point     custom    celsius (Cel, 25..45)")
    );
    std::fs::write(
        dir.path().join("skin.csv"),
        "subject,source,time,celsius\nS1,ring,2026-03-01T02:00:00Z,33.5\n",
    )
    .unwrap();
    run.ok(&["write", "skin_temperature", "skin.csv"]);
    assert_eq!(
        run.ok(&[
            "query",
            "SELECT celsius FROM skin_temperature",
            "--format",
            "csv"
        ]),
        "celsius\n33.5\n"
    );
    let refused = run.fails(&["streams", "register", "skin.json"], 1);
    assert!(
        refused.contains("stream skin_temperature already exists"),
        "{refused}"
    );
}

#[test]
fn bad_files_and_queries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: None,
    };
    let write = |name: &str, content: &str| std::fs::write(dir.path().join(name), content).unwrap();

    write(
        "extra.csv",
        "subject,source,time,bpm,mood\nS1,watch,2026-03-01T00:00:00Z,60,ok\n",
    );
    let message = run.fails(&["write", "heart_rate", "extra.csv"], 1);
    assert!(
        message.contains("extra.csv: column 'mood' is not a column of stream heart_rate"),
        "{message}"
    );

    write(
        "garbled.csv",
        "subject,source,time,bpm\nS1,watch,2026-03-01T00:00:00Z,60\nS1,watch,2026-03-01T00:01:00Z,sixty\n",
    );
    let message = run.fails(&["write", "heart_rate", "garbled.csv"], 1);
    assert!(
        message.contains("garbled.csv:") && message.contains("sixty"),
        "{message}"
    );
    assert!(
        message.contains("line 3") || message.contains("row 2") || message.contains("line 2"),
        "{message}"
    );

    write(
        "missing.csv",
        "subject,time,bpm\nS1,2026-03-01T00:00:00Z,60\n",
    );
    let message = run.fails(&["write", "heart_rate", "missing.csv"], 1);
    assert!(
        message.contains("missing.csv: stream heart_rate: column 'source' is missing"),
        "{message}"
    );

    write("notes.txt", "hello");
    let message = run.fails(&["write", "heart_rate", "notes.txt"], 1);
    assert!(message.contains("unknown format '.txt'"), "{message}");

    let message = run.fails(&["query", "SELEC 1"], 1);
    assert!(message.contains("SQL"), "{message}");
    let message = run.fails(&["query", "DROP TABLE heart_rate"], 1);
    assert!(
        message.contains("not supported") || message.contains("not allowed"),
        "{message}"
    );
    let message = run.fails(&["query", "SELECT 1", "--store", "gs://bucket"], 2);
    assert!(message.contains("unsupported scheme 'gs'"), "{message}");
    // Nothing of the refused files was stored.
    assert_eq!(
        run.ok(&[
            "query",
            "SELECT count(*) AS n FROM heart_rate",
            "--format",
            "csv"
        ]),
        "n\n0\n"
    );
}

#[test]
fn query_results_can_be_saved_as_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        catalog: None,
    };
    readings_csv(dir.path());
    run.ok(&["write", "heart_rate", "readings.csv"]);
    let output = run.healthai(&[
        "query",
        "SELECT * FROM heart_rate WHERE bpm > 98",
        "--format",
        "parquet",
    ]);
    assert!(output.status.success());
    let bytes = bytes::Bytes::from(output.stdout);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2 * 2 * 24 * 60 / 40);
}
