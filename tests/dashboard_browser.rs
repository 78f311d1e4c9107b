//! The README's first command as a user meets it: `healthai demo` simulates and ingests a
//! dataset and serves it; then headless Chromium (driven by `tests/browser/dashboard.mjs`
//! with playwright-core) logs in to the dashboard, opens each of its four views, checks that
//! every chart shows data and that the console shows no error, and saves screenshots.
//! `scripts/test` installs what it needs (`scripts/browser-deps`).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

const PASSWORD: &str = "browser-test-password";

/// Stops the demo when the test ends, however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_dashboard_shows_every_view_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_healthai"))
            .current_dir(dir.path())
            .args([
                "demo",
                "--subjects",
                "12",
                "--days",
                "14",
                "--password",
                PASSWORD,
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start healthai demo"),
    );
    // The demo keeps printing while it serves: its output is read to the end on a thread, so
    // that it never writes into a closed pipe.
    let stdout = BufReader::new(demo.0.stdout.take().unwrap());
    let (lines, printed_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let mut url = None;
    for line in printed_lines.iter() {
        if let Some(address) = line.strip_prefix("dashboard:") {
            url = Some(address.trim().to_owned());
            break;
        }
        printed.push(line);
    }
    let url =
        url.unwrap_or_else(|| panic!("the demo printed no dashboard URL:\n{}", printed.join("\n")));
    let report = printed.join("\n");
    assert!(
        report.contains("heart_rate"),
        "the demo's ingest report:\n{report}"
    );

    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.mjs");
    let output = Command::new("node")
        .arg(script)
        .env("DASHBOARD_URL", &url)
        .env("DASHBOARD_ORG", "default")
        .env("DASHBOARD_EMAIL", "demo@healthai.local")
        .env("DASHBOARD_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &screenshots)
        .output()
        .expect("run node: the browser test needs Node.js and `scripts/browser-deps`");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(
        std::fs::read_dir(&screenshots).unwrap().count() >= 4,
        "a screenshot per view in {}",
        screenshots.display()
    );
}
