//! `healthai connector` as the README shows it, against a minimal HTTP API served by a thread
//! of the test: add (with a configuration refused first), list, run, disable.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::Path,
    process::Command,
};

fn healthai(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_healthai"))
        .args(args)
        .current_dir(dir)
        .env_remove("HEALTHAI_CATALOG")
        .env_remove("HEALTHAI_STORE")
        .env_remove("HEALTHAI_ORG")
        .env("HEALTHAI_TEST_API_TOKEN", "cli-secret")
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

/// Serves three readings to requests that carry the token, 401 to others.
fn serve_readings() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut authorized = false;
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                authorized |= line.split_once(':').is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization")
                        && value.trim() == "Bearer cli-secret"
                });
            }
            let (status, body) = if authorized {
                (
                    "200 OK",
                    r#"{"data": [
                        {"t": "2026-03-01T06:00:00Z", "v": 61},
                        {"t": "2026-03-01T06:01:00Z", "v": 62},
                        {"t": "2026-03-01T06:02:00Z", "v": 400}]}"#,
                )
            } else {
                ("401 Unauthorized", "{}")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[test]
fn connectors_are_added_listed_run_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let base = serve_readings();
    let config = |authorization: &str| {
        format!(
            r#"{{"url": "{base}/readings", "stream": "heart_rate", "items": "/data",
                "fields": {{"time": "/t", "bpm": "/v"}}, "subject": "S1",
                "headers": {{"Authorization": "{authorization}"}}}}"#
        )
    };

    let (success, _, stderr) = healthai(
        dir,
        &[
            "connector",
            "add",
            "hr",
            "--kind",
            "json_api",
            "--config",
            &config("Bearer cli-secret"),
        ],
    );
    assert!(!success);
    assert!(
        stderr.contains("config key headers.Authorization"),
        "{stderr}"
    );

    std::fs::write(
        dir.join("hr.json"),
        config("Bearer ${HEALTHAI_TEST_API_TOKEN}"),
    )
    .unwrap();
    let added = ok(
        dir,
        &[
            "connector",
            "add",
            "hr",
            "--kind",
            "json_api",
            "--config",
            "hr.json",
            "--every",
            "15m",
        ],
    );
    assert!(
        added.contains("added connector hr (json_api), every 15m"),
        "{added}"
    );

    let report = ok(dir, &["connector", "run", "hr"]);
    for expected in [
        "1 page(s), 3 rows read, 2 accepted, 1 rejected",
        "quarantine:",
        "record 3",
    ] {
        assert!(
            report.contains(expected),
            "'{expected}' missing from\n{report}"
        );
    }
    let count = ok(
        dir,
        &[
            "query",
            "SELECT count(*) AS n FROM heart_rate",
            "--format",
            "csv",
        ],
    );
    assert_eq!(count.lines().nth(1), Some("2"), "{count}");

    ok(dir, &["connector", "disable", "hr"]);
    let list = ok(dir, &["connector", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("hr "))
        .unwrap_or_else(|| panic!("{list}"));
    for expected in ["json_api", " no ", "15m", "ok"] {
        assert!(row.contains(expected), "'{expected}' missing from {row}");
    }
    assert!(!list.contains("cli-secret"), "{list}");

    let (success, _, stderr) = healthai(dir, &["connector", "run", "nothing"]);
    assert!(!success);
    assert!(stderr.contains("nothing"), "{stderr}");
}
