//! A `healthai serve` process for end-to-end tests: data and users prepared with the command
//! line, the server on a free port of 127.0.0.1, stopped when the value is dropped; and the
//! Flight SQL client calls the tests share.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use arrow::{
    array::{AsArray, RecordBatch},
    datatypes::Int64Type,
};
use arrow_flight::{
    FlightInfo, flight_service_client::FlightServiceClient, sql::client::FlightSqlServiceClient,
};
use futures::TryStreamExt;
use tonic::{Code, transport::Channel};

pub struct Server {
    pub dir: tempfile::TempDir,
    /// The gRPC port (Flight SQL, the typed API).
    pub port: u16,
    /// The HTTP port (REST API, metrics).
    pub http_port: u16,
    child: Child,
}

/// Users every server has: (email, password).
pub const ADMIN: (&str, &str) = ("admin@example.org", "admin-password");
pub const ANALYST: (&str, &str) = ("analyst@example.org", "analyst-password");
pub const COACH: (&str, &str) = ("coach@example.org", "coach-password");
pub const MEMBER: (&str, &str) = ("ana@example.org", "member-password");
pub const INGEST: (&str, &str) = ("gateway@example.org", "ingest-password");

/// Readings per subject: two hours of one a minute.
pub const READINGS: usize = 120;

pub fn healthai(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_healthai"))
        .args(args)
        .current_dir(dir)
        .env_remove("HEALTHAI_CATALOG")
        .env_remove("HEALTHAI_STORE")
        .env_remove("HEALTHAI_ORG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run healthai");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "healthai {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

impl Server {
    /// Three subjects (S1, S2, S3) with readings; S1 is the member's, S2 and S3 the coach's
    /// group; one user per role.
    pub fn start() -> Self {
        Self::start_with(&[], None)
    }

    /// [`Server::start`] with more `healthai serve` options (see [`Server::serve_with`]).
    pub fn start_with(extra: &[&str], log: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("subject,source,time,bpm\n");
        for (i, subject) in ["S1", "S2", "S3"].iter().enumerate() {
            for minute in 0..READINGS {
                csv.push_str(&format!(
                    "{subject},watch,2026-03-01T{:02}:{:02}:00Z,{}\n",
                    8 + minute / 60,
                    minute % 60,
                    60 + i * 10 + minute % 10
                ));
            }
        }
        std::fs::write(dir.path().join("hr.csv"), csv).unwrap();
        let run = |args: &[&str], stdin: Option<&str>| healthai(dir.path(), args, stdin);
        run(&["write", "heart_rate", "hr.csv"], None);
        run(
            &[
                "group", "add", "runners", "--member", "S2", "--member", "S3",
            ],
            None,
        );
        let password = |p: &str| format!("{p}\n");
        run(
            &[
                "user",
                "add",
                "--email",
                ADMIN.0,
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some(&password(ADMIN.1)),
        );
        run(
            &[
                "user",
                "add",
                "--email",
                ANALYST.0,
                "--role",
                "analyst",
                "--password-stdin",
            ],
            Some(&password(ANALYST.1)),
        );
        run(
            &[
                "user",
                "add",
                "--email",
                COACH.0,
                "--role",
                "coach",
                "--group",
                "runners",
                "--password-stdin",
            ],
            Some(&password(COACH.1)),
        );
        run(
            &[
                "user",
                "add",
                "--email",
                MEMBER.0,
                "--role",
                "member",
                "--subject",
                "S1",
                "--password-stdin",
            ],
            Some(&password(MEMBER.1)),
        );
        run(
            &[
                "user",
                "add",
                "--email",
                INGEST.0,
                "--role",
                "ingest",
                "--password-stdin",
            ],
            Some(&password(INGEST.1)),
        );
        let log = log.map(|name| dir.path().join(name));
        Self::serve_with(dir, extra, log.as_deref())
    }

    /// Starts `healthai serve` over an existing data directory.
    pub fn serve(dir: tempfile::TempDir) -> Self {
        Self::serve_with(dir, &[], None)
    }

    /// Starts `healthai serve` with more options, its log in `log` (else on the test's
    /// stderr, warnings only).
    pub fn serve_with(dir: tempfile::TempDir, extra: &[&str], log: Option<&Path>) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let level: &[&str] = if log.is_some() {
            &[]
        } else {
            &["--log-level", "warn"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_healthai"))
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--max-request-mib",
                "32",
                "--query-memory-mib",
                "64",
                "--query-timeout-secs",
                "20",
                "--shutdown-grace-secs",
                "1",
            ])
            .args(level)
            .args(extra)
            .current_dir(dir.path())
            .env_remove("HEALTHAI_CATALOG")
            .env_remove("HEALTHAI_STORE")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start healthai serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so the server's last words do not meet a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        // "… gRPC API on 127.0.0.1:PORT, the REST API on http://127.0.0.1:PORT (catalog …"
        let port_after = |marker: &str| -> u16 {
            line.split(marker)
                .nth(1)
                .and_then(|rest| rest.split([' ', ',']).next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("unexpected first line from healthai serve: {line}"))
        };
        let port = port_after(" API on 127.0.0.1:");
        let http_port = port_after(" on http://127.0.0.1:");
        Server {
            dir,
            port,
            http_port,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The REST API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn secret_file(&self) -> PathBuf {
        self.dir.path().join("healthai-data/jwt.secret")
    }

    /// Runs a `healthai` command on the server's data directory.
    pub fn healthai(&self, args: &[&str]) -> String {
        healthai(self.dir.path(), args, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM, as an operator would; the server finishes calls and flushes the audit log.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub async fn channel(server: &Server) -> Channel {
    Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn connect(server: &Server) -> FlightSqlServiceClient<Channel> {
    let channel = channel(server).await;
    let inner = FlightServiceClient::new(channel).max_decoding_message_size(16 << 20);
    FlightSqlServiceClient::new_from_inner(inner)
}

pub async fn login(
    server: &Server,
    (email, password): (&str, &str),
) -> FlightSqlServiceClient<Channel> {
    let mut client = connect(server).await;
    client.handshake(email, password).await.expect("handshake");
    client
}

pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    client.do_get(ticket).await?.try_collect().await
}

pub async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let info = client.execute(sql.into(), None).await?;
    fetch(client, info).await
}

pub fn single_int(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

pub fn code(error: &arrow_flight::error::FlightError) -> Code {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => status.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}
