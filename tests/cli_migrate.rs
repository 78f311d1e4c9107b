//! `healthai migrate` as a user runs it: the real binary, a real catalog on each backend, and
//! the bad inputs that must end in one clear message and a non-zero exit.

use std::process::{Command, Output};

use catalog::testing::TestDatabase;

fn healthai(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_healthai"))
        .args(args)
        .current_dir(dir)
        .env_remove("HEALTHAI_CATALOG")
        .env_remove("HEALTHAI_ORG")
        .output()
        .expect("run healthai")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The one-line error a failed command printed, after checking it failed cleanly.
fn failure(output: &Output, exit_code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(exit_code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

async fn migrate_twice(db: &TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.connection_string();
    let first = healthai(dir.path(), &["migrate", "--catalog", &url]);
    assert!(first.status.success(), "{first:?}");
    let text = stdout(&first);
    assert!(
        text.contains(
            "applied V1__initial\napplied V2__seed\napplied V3__erased_subjects\n\
             applied V4__quarantine\napplied V5__foods\n\
             applied V6__ingest_coverage\nschema version 6\n"
        ),
        "{text}"
    );

    let second = healthai(dir.path(), &["migrate", "--catalog", &url]);
    assert!(second.status.success(), "{second:?}");
    assert!(stdout(&second).contains("schema version 6 is current; nothing to apply"));

    let streams = healthai(dir.path(), &["streams", "--catalog", &url]);
    assert!(streams.status.success(), "{streams:?}");
    assert!(
        stdout(&streams).contains("heart_rate         point     standard  bpm (/min, 25..250)")
    );
}

#[tokio::test]
async fn migrate_applies_once_on_sqlite() {
    migrate_twice(&TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn migrate_applies_once_on_postgres() {
    migrate_twice(&TestDatabase::postgres().await).await;
}

#[test]
fn the_embedded_default_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let created = healthai(dir.path(), &["org", "create", "acme"]);
    assert!(created.status.success(), "{created:?}");
    assert!(dir.path().join("healthai-data/catalog.db").exists());
    let orgs = healthai(dir.path(), &["org", "list"]);
    assert_eq!(stdout(&orgs), "acme\ndefault\n");
    let streams = healthai(dir.path(), &["streams", "--org", "acme"]);
    assert_eq!(stdout(&streams).lines().count(), 13, "{}", stdout(&streams));

    let missing = healthai(dir.path(), &["streams", "--org", "nobody"]);
    assert!(failure(&missing, 1).contains("organization nobody not found"));
    let duplicate = healthai(dir.path(), &["org", "create", "acme"]);
    assert!(failure(&duplicate, 1).contains("organization acme already exists"));
}

#[test]
fn a_wrong_catalog_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = healthai(
        dir.path(),
        &["migrate", "--catalog", "mysql://root:hunter2@db/x"],
    );
    let message = failure(&output, 2);
    assert!(message.contains("unsupported scheme 'mysql'"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn an_unreachable_server_is_named_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let output = healthai(
        dir.path(),
        &[
            "migrate",
            "--catalog",
            "postgres://healthai:hunter2@127.0.0.1:1/healthai",
        ],
    );
    let message = failure(&output, 1);
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn a_wrong_password_is_named() {
    let server = std::env::var(catalog::testing::POSTGRES_URL_VAR)
        .expect("HEALTHAI_TEST_POSTGRES_URL (scripts/test sets it)");
    let (scheme, rest) = server.split_once("://").unwrap();
    let (userinfo, host) = rest
        .split_once('@')
        .expect("the test server URL has a user");
    let user = userinfo.split(':').next().unwrap();
    let wrong = format!("{scheme}://{user}:not-the-password@{host}");
    let dir = tempfile::tempdir().unwrap();
    let message = failure(&healthai(dir.path(), &["migrate", "--catalog", &wrong]), 1);
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(!message.contains("not-the-password"), "{message}");
}

#[tokio::test]
async fn a_catalog_from_a_newer_healthai_is_refused() {
    for db in [TestDatabase::sqlite().await, TestDatabase::postgres().await] {
        catalog::migrate(db.url()).await.unwrap();
        db.execute_raw(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (7, 'from_the_future', '2031-01-01T00:00:00Z', '42')",
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = db.connection_string();
        for args in [
            ["migrate", "--catalog", &url],
            ["streams", "--catalog", &url],
        ] {
            let message = failure(&healthai(dir.path(), &args), 1);
            assert!(
                message.contains("schema version 7, newer than the 6"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn a_half_migrated_catalog_is_refused() {
    for db in [TestDatabase::sqlite().await, TestDatabase::postgres().await] {
        db.execute_raw("CREATE TABLE subjects (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = db.connection_string();
        let message = failure(&healthai(dir.path(), &["migrate", "--catalog", &url]), 1);
        assert!(message.contains("half-migrated"), "{message}");
        assert!(message.contains("already exists"), "{message}");
    }
}

#[tokio::test]
async fn an_outdated_postgres_catalog_asks_for_migrate() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.connection_string();
    let message = failure(&healthai(dir.path(), &["streams", "--catalog", &url]), 1);
    assert!(
        message.contains("run `healthai migrate --catalog"),
        "{message}"
    );
}
