//! Simulating data and ingesting it with the `healthai` binary, as the README shows: the
//! quality report, the quarantine, canonical rows in SQL, and a second import that changes
//! nothing.

use std::{path::Path, process::Command};

fn healthai(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_healthai"))
        .args(args)
        .current_dir(dir)
        .env_remove("HEALTHAI_CATALOG")
        .env_remove("HEALTHAI_STORE")
        .env_remove("HEALTHAI_ORG")
        .output()
        .expect("run healthai");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = healthai(dir, args);
    assert!(success, "healthai {args:?}: {stderr}");
    stdout
}

fn number(dir: &Path, sql: &str) -> i64 {
    let out = ok(dir, &["query", sql, "--format", "csv"]);
    out.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{sql}: {out}"))
}

#[test]
fn simulated_data_with_defects_is_cleaned_and_reingesting_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let simulated = ok(
        dir,
        &[
            "simulate",
            "--subjects",
            "4",
            "--days",
            "3",
            "--defects",
            "--out",
            "sim",
        ],
    );
    assert!(simulated.contains("heart_rate.csv"), "{simulated}");
    assert!(simulated.contains("defects:"), "{simulated}");

    let report = ok(dir, &["ingest", "sim"]);
    for expected in [
        "batch 1:",
        "accepted",
        "heart_rate",
        "body",
        "sleep",
        "rules that acted:",
        "heart_rate.bpm",
        "range",
        "quarantine:",
        "foods",
    ] {
        assert!(
            report.contains(expected),
            "'{expected}' missing from the report:\n{report}"
        );
    }
    let stored = number(dir, "SELECT count(*) FROM heart_rate");
    assert!(stored > 4 * 3 * 600, "{stored} heart-rate rows");
    assert_eq!(
        number(
            dir,
            "SELECT count(*) FROM heart_rate WHERE bpm < 25 OR bpm > 250"
        ),
        0
    );
    assert_eq!(
        number(dir, "SELECT count(*) FROM body WHERE weight_kg > 200"),
        0,
        "pounds were converted"
    );
    assert!(
        number(
            dir,
            "SELECT count(*) FROM meta.subjects WHERE timezone <> 'UTC'"
        ) > 0,
        "subjects.csv set the time zones"
    );
    let quarantined = number(
        dir,
        "SELECT count(*) FROM system.quarantine WHERE batch_id = 1",
    );
    assert!(quarantined > 0);
    let reports = number(
        dir,
        "SELECT count(*) FROM system.quality_reports WHERE batch_id = 1 AND rows_rejected > 0",
    );
    assert!(reports > 0);

    let before = ok(
        dir,
        &[
            "query",
            "SELECT subject_id, source, time, bpm FROM heart_rate ORDER BY 1, 2, 3",
            "--format",
            "csv",
        ],
    );
    let again = ok(dir, &["ingest", "sim"]);
    assert!(again.contains("batch 2:"), "{again}");
    let after = ok(
        dir,
        &[
            "query",
            "SELECT subject_id, source, time, bpm FROM heart_rate ORDER BY 1, 2, 3",
            "--format",
            "csv",
        ],
    );
    assert!(
        before == after,
        "a second import changed the heart-rate rows"
    );
}

#[test]
fn unreadable_files_are_named_and_fail_the_command_when_nothing_lands() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(
        dir.join("heart_rate.csv"),
        "subject,time,bpm\nS1,2026-03-01T06:00:00Z,60\nS1,2026-03-01T06:01:00Z,61,extra\n",
    )
    .unwrap();
    std::fs::write(dir.join("mystery.bin"), [0u8, 1, 2, 3]).unwrap();
    let (success, stdout, stderr) = healthai(dir, &["ingest", "heart_rate.csv", "mystery.bin"]);
    assert!(!success);
    assert!(
        stderr.starts_with("error: no file could be read (2 of 2)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("heart_rate.csv:")
            && stdout.contains("mystery.bin: cannot tell its format"),
        "{stdout}"
    );
    assert_eq!(
        number(dir, "SELECT count(*) FROM heart_rate"),
        0,
        "nothing of a broken file is written"
    );
}
