//! The REST API end to end: `healthai serve` on free ports, called with a real HTTP client.
//! Authentication (the same tokens as Flight), queries in every format, writes with their
//! quality reports and quarantine, subjects (summaries, goals, export, erasure), streams and
//! batches, errors and limits, observability, and the OpenAPI document checked against the
//! live server.

mod server;

use std::{collections::BTreeSet, io::Read, time::Duration};

use arrow::{
    array::{AsArray, RecordBatch},
    datatypes::Float64Type,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use server::{ADMIN, ANALYST, COACH, INGEST, MEMBER, READINGS, Server, single_int};

/// Every operation of the API as `METHOD /path/{param}`, each exercised by a test here; the
/// OpenAPI document must list exactly these.
const OPERATIONS: &[&str] = &[
    "GET /",
    "GET /dashboard/{file}",
    "GET /health",
    "GET /ready",
    "GET /metrics",
    "GET /api/v1/openapi.json",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/refresh",
    "POST /api/v1/auth/logout",
    "POST /api/v1/query",
    "POST /api/v1/streams/{stream}/records",
    "POST /api/v2/write",
    "GET /api/v1/subjects",
    "GET /api/v1/subjects/{id}/summary",
    "GET /api/v1/subjects/{id}/goals",
    "GET /api/v1/subjects/{id}/export",
    "DELETE /api/v1/subjects/{id}",
    "GET /api/v1/ingest/batches",
    "GET /api/v1/ingest/batches/{id}",
    "GET /api/v1/streams",
    "GET /api/v1/streams/{stream}",
];

struct Api {
    base: String,
    http: Client,
}

impl Api {
    fn new(server: &Server) -> Self {
        Api {
            base: server.http_url(),
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, (email, password): (&str, &str)) -> Value {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn token(&self, user: (&str, &str)) -> String {
        self.login(user).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn query(&self, token: &str, body: Value) -> Response {
        self.http
            .post(self.url("/api/v1/query"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A query that accepts an answer up to a minute old; with the answer's cache status.
    async fn recent(&self, token: &str, sql: &str) -> (String, Vec<Value>) {
        let response = self
            .http
            .post(self.url("/api/v1/query"))
            .bearer_auth(token)
            .header("cache-control", "max-age=60")
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{sql}");
        let status = response.headers()["x-healthai-cache"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, response.json().await.unwrap())
    }

    async fn rows(&self, token: &str, sql: &str) -> Vec<Value> {
        let response = self.query(token, json!({ "sql": sql })).await;
        assert_eq!(response.status(), StatusCode::OK, "{sql}");
        response.json::<Vec<Value>>().await.unwrap()
    }

    async fn write(&self, token: &str, path: &str, content_type: &str, body: &str) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

/// An error response: its status, and the code and message of its JSON body, which always
/// carries the request id of the response's header.
async fn error(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status}"
    );
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a request id header");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn login_refresh_and_logout_give_tokens_flight_accepts() {
    let server = Server::start();
    let api = Api::new(&server);
    let tokens = api.login(ADMIN).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();

    // The same token opens Flight SQL on the gRPC port.
    let mut flight = server::connect(&server).await;
    flight.set_token(access.to_owned());
    let count = server::query(&mut flight, "SELECT count(*) FROM heart_rate")
        .await
        .unwrap();
    assert_eq!(single_int(&count) as usize, 3 * READINGS);

    let refresh = |token: &str| {
        api.http
            .post(api.url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
    };
    let first = tokens["refresh_token"].as_str().unwrap();
    let response = refresh(first).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        api.rows(rotated["access_token"].as_str().unwrap(), "SELECT 1 AS one")
            .await
            .len(),
        1
    );
    // A rotated token presented again revokes the whole login.
    let (status, code, message) = error(refresh(first).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert!(message.contains("refresh token rejected"), "{message}");
    assert_eq!(
        refresh(second).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let tokens = api.login(MEMBER).await;
    let member_refresh = tokens["refresh_token"].as_str().unwrap();
    let logout = api
        .http
        .post(api.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": member_refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refresh(member_refresh).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let wrong = api
        .http
        .post(api.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN.0, "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Bearer realm=\"healthai\""
    );
    let (status, _, message) = error(wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message, "wrong username or password");
    let malformed = api
        .http
        .post(api.url("/api/v1/auth/login"))
        .body("username=admin")
        .send()
        .await
        .unwrap();
    let (status, code, message) = error(malformed).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert!(message.contains("not a valid login"), "{message}");

    // Basic credentials (scripts) and `Token` (InfluxDB clients) work like Bearer.
    let basic = api
        .http
        .post(api.url("/api/v1/query"))
        .basic_auth(ANALYST.0, Some(ANALYST.1))
        .json(&json!({ "sql": "SELECT 1 AS one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
    let analyst = api.token(ANALYST).await;
    let influx = api
        .http
        .post(api.url("/api/v1/query"))
        .header("authorization", format!("Token {analyst}"))
        .json(&json!({ "sql": "SELECT 1 AS one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(influx.status(), StatusCode::OK);
}

fn decode_arrow(bytes: &[u8]) -> Vec<RecordBatch> {
    arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn decode_parquet(bytes: &[u8]) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::copy_from_slice(bytes),
    )
    .unwrap()
    .build()
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// (subject, bpm) of decoded batches.
fn pairs(batches: &[RecordBatch]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for batch in batches {
        let subjects = batch.column_by_name("subject").unwrap().as_string::<i32>();
        let bpm = batch
            .column_by_name("bpm")
            .unwrap()
            .as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            out.push((subjects.value(row).to_owned(), bpm.value(row)));
        }
    }
    out
}

#[tokio::test]
async fn queries_answer_in_every_format_with_parameters() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = api.token(ADMIN).await;
    let sql = "SELECT s.pseudonym AS subject, h.time, h.bpm FROM heart_rate h \
               JOIN meta.subjects s USING (subject_id) WHERE h.bpm >= $1 AND s.pseudonym = $2 \
               ORDER BY h.time";
    let body = |format: &str| json!({ "sql": sql, "params": [68, "S1"], "format": format });

    // S1 reads 60 + minute % 10: two of every ten minutes are at least 68.
    let response = api.query(&admin, body("json")).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: Vec<Value> = response.json().await.unwrap();
    assert_eq!(json.len(), READINGS / 5);
    assert_eq!(
        json[0],
        json!({ "subject": "S1", "time": "2026-03-01T08:08:00", "bpm": 68.0 })
    );
    let expected: Vec<(String, f64)> = json
        .iter()
        .map(|r| {
            (
                r["subject"].as_str().unwrap().to_owned(),
                r["bpm"].as_f64().unwrap(),
            )
        })
        .collect();

    let lines = api.query(&admin, body("ndjson")).await;
    assert_eq!(lines.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = lines
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, json);

    let csv = api.query(&admin, body("csv")).await;
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let mut csv_lines = csv.lines();
    assert_eq!(csv_lines.next(), Some("subject,time,bpm"));
    assert_eq!(csv_lines.next(), Some("S1,2026-03-01T08:08:00,68.0"));
    assert_eq!(csv.lines().count(), json.len() + 1);

    let arrow = api.query(&admin, body("arrow")).await;
    assert_eq!(
        arrow.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    assert_eq!(
        pairs(&decode_arrow(&arrow.bytes().await.unwrap())),
        expected
    );

    let parquet = api.query(&admin, body("parquet")).await;
    assert_eq!(
        parquet.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    assert_eq!(
        pairs(&decode_parquet(&parquet.bytes().await.unwrap())),
        expected
    );

    // Without `format`: the Accept header decides, or the query string.
    let accepted = api
        .http
        .post(api.url("/api/v1/query"))
        .bearer_auth(&admin)
        .header("accept", "text/html, text/csv;q=0.9")
        .json(&json!({ "sql": sql, "params": [68, "S1"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.text().await.unwrap(), csv);
    let by_query = api
        .http
        .post(api.url("/api/v1/query?format=arrow"))
        .bearer_auth(&admin)
        .json(&json!({ "sql": sql, "params": [68, "S1"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        pairs(&decode_arrow(&by_query.bytes().await.unwrap())),
        expected
    );

    // `?` placeholders; strings become timestamps where the query compares them with one.
    let counted = api
        .query(
            &admin,
            json!({
                "sql": "SELECT count(*) AS n FROM heart_rate WHERE time >= ? AND time < ?",
                "params": ["2026-03-01T08:00:00Z", "2026-03-01T08:30:00Z"],
            }),
        )
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap();
    assert_eq!(counted, [json!({ "n": 90 })]);

    // Empty results keep their shape.
    let empty = json!({ "sql": sql, "params": [1000, "S1"] });
    assert_eq!(
        api.query(&admin, empty.clone()).await.text().await.unwrap(),
        "[]\n"
    );
    let mut empty_csv = empty;
    empty_csv["format"] = json!("csv");
    assert_eq!(
        api.query(&admin, empty_csv).await.text().await.unwrap(),
        "subject,time,bpm\n"
    );

    let mismatch = api
        .query(&admin, json!({ "sql": sql, "params": [68] }))
        .await;
    let (status, _, message) = error(mismatch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("2 placeholder(s) but 1 parameter(s)"),
        "{message}"
    );
    let unknown = api.query(&admin, body("xml")).await;
    let (status, _, message) = error(unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("unknown result format 'xml'"), "{message}");
}

#[tokio::test]
async fn errors_are_json_with_the_status_that_fits() {
    let server = Server::start_with(&["--max-body-mib", "1"], None);
    let api = Api::new(&server);
    let admin = api.token(ADMIN).await;
    let member = api.token(MEMBER).await;

    let bad_sql = api.query(&admin, json!({ "sql": "SELEC 1" })).await;
    let (status, code, message) = error(bad_sql).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_argument")
    );
    assert!(message.contains("SELEC"), "{message}");

    let anonymous = api
        .http
        .post(api.url("/api/v1/query"))
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    let (status, _, message) = error(anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.starts_with("no credentials"), "{message}");
    let forged = api
        .query(
            "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
            json!({ "sql": "SELECT 1" }),
        )
        .await;
    let (status, _, message) = error(forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.starts_with("access token rejected"), "{message}");

    // A member's queries see their own subject only; other subjects' endpoints refuse.
    let own = api
        .rows(&member, "SELECT count(*) AS n FROM heart_rate")
        .await;
    assert_eq!(own, [json!({ "n": READINGS })]);
    for path in [
        "/api/v1/subjects/S2/summary",
        "/api/v1/subjects/S2/export",
        "/api/v1/subjects/NOBODY/goals",
    ] {
        let (status, code, message) = error(api.get(&member, path).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{path}"
        );
        assert!(
            message.contains("ana@example.org may not read subject"),
            "{message}"
        );
    }
    let (status, _, message) = error(api.get(&admin, "/api/v1/subjects/NOBODY/goals").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message, "no subject NOBODY");
    let ingest = api.token(INGEST).await;
    let (status, _, _) = error(
        api.query(&ingest, json!({ "sql": "SELECT * FROM heart_rate" }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, code, message) = error(
        api.write(
            &admin,
            "/api/v1/streams/nope/records",
            "application/x-ndjson",
            "{}\n",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert!(message.contains("nope"), "{message}");
    let (status, _, _) = error(api.get(&admin, "/api/v1/streams/nope").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let line = "{\"subject\":\"S1\",\"time\":\"2026-03-01T10:00:00Z\",\"bpm\":64}\n";
    let big = line.repeat((1 << 20) / line.len() + 10);
    let (status, code, message) = error(
        api.write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            &big,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(message.contains("limit of 1 MiB"), "{message}");

    let (status, code, message) = error(api.get(&admin, "/api/v1/nothing").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert!(
        message.starts_with("no route for GET /api/v1/nothing"),
        "{message}"
    );
    let (status, code, message) = error(api.get(&admin, "/api/v1/query").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert!(message.contains("allowed: POST"), "{message}");
    let (status, _, message) = error(api.get(&admin, "/api/v1/ingest/batches?limt=5").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("unknown query parameter 'limt'"),
        "{message}"
    );
    let (status, _, _) = error(api.get(&admin, "/api/v1/ingest/batches/abc").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, code, _) = error(
        api.write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            "{not json",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable")
    );

    // A sensible request id is taken from the client and returned; others are replaced.
    let traced = api
        .http
        .get(api.url("/api/v1/nothing"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "client-id-1");
    error(traced).await;
    let replaced = api
        .http
        .get(api.url("/health"))
        .header("x-request-id", "no spaces allowed")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
}

/// Line protocol, gzip-compressed.
fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn writes_are_cleaned_and_answer_with_their_quality() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = api.token(ADMIN).await;

    // Answers a client accepts as recent are kept, and dropped once data changes.
    let on_march_2 = "SELECT count(*) AS n FROM heart_rate \
                      WHERE time >= TIMESTAMP '2026-03-02T00:00:00' AND time < TIMESTAMP '2026-03-03T00:00:00'";
    let first = api.recent(&admin, on_march_2).await;
    assert_eq!(first, ("miss".to_owned(), vec![json!({ "n": 0 })]));
    assert_eq!(api.recent(&admin, on_march_2).await.0, "hit");
    // Another user with the same access shares the answer.
    let admin_again = api.token(ADMIN).await;
    assert_eq!(api.recent(&admin_again, on_march_2).await.0, "hit");

    let ndjson = "\
{\"subject\":\"S1\",\"source\":\"watch\",\"time\":\"2026-03-02T06:00:00Z\",\"bpm\":61}
{\"subject\":\"S1\",\"source\":\"watch\",\"time\":\"2026-03-02T06:01:00Z\",\"bpm\":62}
{\"subject\":\"S2\",\"source\":\"watch\",\"time\":\"2026-03-02T06:00:00Z\",\"bpm\":63}
{\"subject\":\"S2\",\"source\":\"watch\",\"time\":\"2026-03-02T06:01:00Z\",\"bpm\":400}
";
    let response = api
        .write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let batch_header = response.headers()["x-healthai-batch"]
        .to_str()
        .unwrap()
        .to_owned();
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["batch_id"].to_string(), batch_header);
    assert_eq!(
        (
            &report["rows_in"],
            &report["rows_accepted"],
            &report["rows_rejected"]
        ),
        (&json!(4), &json!(3), &json!(1))
    );
    assert_eq!(
        api.recent(&admin, on_march_2).await,
        ("miss".to_owned(), vec![json!({ "n": 3 })])
    );
    let rejection = &report["rejections"][0];
    assert_eq!(
        (
            &rejection["record"],
            &rejection["column"],
            &rejection["rule"]
        ),
        (&json!(4), &json!("bpm"), &json!("range"))
    );
    let rules = report["streams"]["heart_rate"]["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["column"] == "bpm" && r["rule"] == "range" && r["rejected"] == 1),
        "{rules:?}"
    );

    let csv = "subject,time,bpm\nS3,2026-03-02T06:00:00Z,70\nS3,2026-03-02T06:01:00Z,71\n";
    let response = api
        .write(
            &admin,
            "/api/v1/streams/heart_rate/records?source=chest%20strap",
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["rows_accepted"], 2);

    // Line protocol as an InfluxDB client sends it; line 2 is broken, the others land.
    let lines = "heart_rate,subject=S1,source=ring bpm=55i 1772431200\n\
                 heart_rate,subject=S1 bpm=\n\
                 steps,subject=S1,source=ring count=250i,end_time=\"2026-03-02T06:05:00Z\" 1772431200\n";
    let response = api
        .http
        .post(api.url("/api/v2/write?org=anything&bucket=default&precision=s"))
        .header("authorization", format!("Token {admin}"))
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (&report["rows_in"], &report["rows_rejected"]),
        (&json!(3), &json!(1))
    );
    let rejection = &report["rejections"][0];
    assert_eq!(
        (&rejection["record"], &rejection["rule"]),
        (&json!(2), &json!("parse"))
    );
    assert!(
        rejection["reason"]
            .as_str()
            .unwrap()
            .starts_with("line 2: field 'bpm': no value"),
        "{rejection}"
    );
    let gzipped = api
        .http
        .post(api.url("/api/v2/write?precision=ms"))
        .bearer_auth(&admin)
        .header("content-encoding", "gzip")
        .body(gzip(
            "heart_rate,subject=S2,source=ring bpm=58 1772431260000\n",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), StatusCode::OK);
    let other_bucket = api
        .http
        .post(api.url("/api/v2/write?bucket=telegraf"))
        .bearer_auth(&admin)
        .body("heart_rate,subject=S1 bpm=60\n")
        .send()
        .await
        .unwrap();
    let (status, _, message) = error(other_bucket).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("bucket 'telegraf'"), "{message}");

    let day = api
        .rows(
            &admin,
            "SELECT s.pseudonym AS subject, h.source, h.bpm FROM heart_rate h \
             JOIN meta.subjects s USING (subject_id) WHERE h.time >= '2026-03-02' ORDER BY 1, h.time, 2",
        )
        .await;
    let seen: Vec<(String, String, f64)> = day
        .iter()
        .map(|r| {
            (
                r["subject"].as_str().unwrap().to_owned(),
                r["source"].as_str().unwrap().to_owned(),
                r["bpm"].as_f64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("S1", "ring", 55.0),
        ("S1", "watch", 61.0),
        ("S1", "watch", 62.0),
        ("S2", "watch", 63.0),
        ("S2", "ring", 58.0),
        ("S3", "chest strap", 70.0),
        ("S3", "chest strap", 71.0),
    ];
    assert_eq!(
        seen,
        expected
            .iter()
            .map(|(s, src, b)| (s.to_string(), src.to_string(), *b))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        api.rows(&admin, "SELECT count FROM steps").await,
        [json!({ "count": 250 })]
    );

    // A member writes for their own subject only.
    let member = api.token(MEMBER).await;
    let own = "{\"time\":\"2026-03-03T06:00:00Z\",\"bpm\":59}\n";
    let response = api
        .write(
            &member,
            "/api/v1/streams/heart_rate/records?subject=S1",
            "application/x-ndjson",
            own,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let member_batch = response.json::<Value>().await.unwrap()["batch_id"].clone();
    let theirs = api
        .write(
            &member,
            "/api/v1/streams/heart_rate/records?subject=S2",
            "application/x-ndjson",
            own,
        )
        .await;
    let (status, _, message) = error(theirs).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        message.contains("only write for their own subject"),
        "{message}"
    );
    let (status, _, _) = error(
        api.write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            "",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Batches: the NDJSON one with its quality reports and quarantine.
    let batches: Vec<Value> = api
        .get(&admin, "/api/v1/ingest/batches")
        .await
        .json()
        .await
        .unwrap();
    let batch_id: i64 = batch_header.parse().unwrap();
    assert!(batches.iter().any(|b| b["id"] == batch_id));
    let detail: Value = api
        .get(&admin, &format!("/api/v1/ingest/batches/{batch_header}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["batch"]["status"], "committed");
    assert_eq!(detail["batch"]["format"], "ndjson");
    assert_eq!(detail["batch"]["counts"]["rows_rejected"], 1);
    assert!(
        detail["quality"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["stream"] == "heart_rate"
                && q["rule"] == "range"
                && q["rows_rejected"] == 1),
        "{detail}"
    );
    let quarantine = detail["quarantine"].as_array().unwrap();
    assert_eq!(quarantine.len(), 1);
    assert_eq!(
        (
            &quarantine[0]["record"],
            &quarantine[0]["value"],
            &quarantine[0]["stream"]
        ),
        (&json!(4), &json!("400"), &json!("heart_rate"))
    );
    // A member sees the batches they wrote (the refused one failed), not the others.
    let own: Vec<Value> = api
        .get(&member, "/api/v1/ingest/batches")
        .await
        .json()
        .await
        .unwrap();
    let own: Vec<(&Value, &Value)> = own.iter().map(|b| (&b["id"], &b["status"])).collect();
    assert_eq!(own.len(), 2, "{own:?}");
    assert_eq!(own[1], (&member_batch, &json!("committed")));
    assert_eq!(own[0].1, "failed");
    let (status, _, _) = error(
        api.get(&member, &format!("/api/v1/ingest/batches/{batch_header}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Opens the server's SQLite catalog from the test, beside the running server.
async fn catalog_of(server: &Server) -> std::sync::Arc<dyn catalog::Catalog> {
    let path = server.dir.path().join("healthai-data/catalog.db");
    let url: catalog::CatalogUrl = format!("sqlite://{}", path.display()).parse().unwrap();
    catalog::open(&url).await.unwrap()
}

#[tokio::test]
async fn subjects_have_summaries_goals_exports_and_erasure() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = api.token(ADMIN).await;
    let write = async |stream: &str, rows: &str| {
        let response = api
            .write(
                &admin,
                &format!("/api/v1/streams/{stream}/records"),
                "application/x-ndjson",
                rows,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{stream}");
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["rows_rejected"], 0, "{stream}: {report}");
    };
    write(
        "steps",
        "{\"subject\":\"S1\",\"time\":\"2026-03-01T09:00:00Z\",\"end_time\":\"2026-03-01T09:30:00Z\",\"count\":1000}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-01T17:00:00Z\",\"end_time\":\"2026-03-01T18:00:00Z\",\"count\":2500}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-02T10:00:00Z\",\"end_time\":\"2026-03-02T12:00:00Z\",\"count\":12000}\n",
    )
    .await;
    write(
        "sleep",
        "{\"subject\":\"S1\",\"time\":\"2026-02-28T23:00:00Z\",\"end_time\":\"2026-03-01T03:00:00Z\",\"stage\":\"light\"}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-01T03:00:00Z\",\"end_time\":\"2026-03-01T03:15:00Z\",\"stage\":\"awake\"}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-01T03:15:00Z\",\"end_time\":\"2026-03-01T06:15:00Z\",\"stage\":\"deep\"}\n",
    )
    .await;
    write(
        "body",
        "{\"subject\":\"S1\",\"time\":\"2026-03-01T07:00:00Z\",\"weight_kg\":71.5}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-01T20:00:00Z\",\"weight_kg\":71.0}\n",
    )
    .await;
    write(
        "meals",
        "{\"subject\":\"S1\",\"time\":\"2026-03-01T07:30:00Z\",\"meal\":\"breakfast\",\"food_id\":\"oats\",\"energy_kcal\":350}\n\
         {\"subject\":\"S1\",\"time\":\"2026-03-01T12:30:00Z\",\"meal\":\"lunch\",\"food_id\":\"pasta\",\"energy_kcal\":600}\n",
    )
    .await;
    write(
        "active_energy",
        "{\"subject\":\"S1\",\"time\":\"2026-03-01T17:00:00Z\",\"end_time\":\"2026-03-01T18:00:00Z\",\"kcal\":300}\n",
    )
    .await;

    let member = api.token(MEMBER).await;
    let coach = api.token(COACH).await;
    let listed = |token: String| {
        let api = &api;
        async move {
            let subjects: Vec<Value> = api
                .get(&token, "/api/v1/subjects")
                .await
                .json()
                .await
                .unwrap();
            subjects
                .iter()
                .map(|s| s["pseudonym"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(admin.clone()).await, ["S1", "S2", "S3"]);
    assert_eq!(listed(member.clone()).await, ["S1"]);
    assert_eq!(listed(coach.clone()).await, ["S2", "S3"]);

    let summary: Value = api
        .get(
            &member,
            "/api/v1/subjects/S1/summary?from=2026-03-01&to=2026-03-02",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["subject"], "S1");
    assert_eq!(
        summary["days"],
        json!([
            {
                "date": "2026-03-01", "steps": 3500.0, "resting_hr": 64.5,
                "sleep_minutes": 420.0, "energy_in_kcal": 950.0, "energy_out_kcal": 300.0,
                "weight_kg": 71.0,
            },
            {
                "date": "2026-03-02", "steps": 12000.0, "resting_hr": null,
                "sleep_minutes": null, "energy_in_kcal": null, "energy_out_kcal": null,
                "weight_kg": null,
            },
        ])
    );
    let (status, _, _) = error(
        api.get(
            &member,
            "/api/v1/subjects/S1/summary?from=2026-03-05&to=2026-03-01",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Goals live in the catalog; progress is computed over their period.
    let catalog = catalog_of(&server).await;
    let org = catalog.organizations().get("default").await.unwrap().id;
    let s1 = catalog
        .subjects()
        .get_by_pseudonym(org, "S1")
        .await
        .unwrap()
        .id;
    for (metric, target, comparator, period) in [
        (
            "steps",
            10_000.0,
            catalog::Comparator::AtLeast,
            catalog::GoalPeriod::Day,
        ),
        (
            "steps",
            15_000.0,
            catalog::Comparator::AtLeast,
            catalog::GoalPeriod::Week,
        ),
        (
            "weight_kg",
            72.0,
            catalog::Comparator::AtMost,
            catalog::GoalPeriod::Total,
        ),
        (
            "mindful_minutes",
            10.0,
            catalog::Comparator::AtLeast,
            catalog::GoalPeriod::Day,
        ),
    ] {
        catalog
            .goals()
            .create(catalog::NewGoal {
                org,
                subject: s1,
                metric: metric.into(),
                target,
                comparator,
                period,
                starts_on: "2026-02-01".parse().unwrap(),
                ends_on: None,
            })
            .await
            .unwrap();
    }
    let goals = |on: &'static str| {
        let api = &api;
        let member = member.clone();
        async move {
            let body: Value = api
                .get(&member, &format!("/api/v1/subjects/S1/goals?on={on}"))
                .await
                .json()
                .await
                .unwrap();
            body["goals"].as_array().unwrap().clone()
        }
    };
    let sunday = goals("2026-03-01").await;
    assert_eq!(sunday.len(), 4);
    assert_eq!(
        sunday[0]["progress"],
        json!({ "from": "2026-03-01", "to": "2026-03-01", "value": 3500.0, "ratio": 0.35, "met": false })
    );
    assert_eq!(sunday[1]["progress"]["from"], "2026-02-23", "the ISO week");
    assert_eq!(sunday[1]["progress"]["value"], 3500.0);
    assert_eq!(sunday[2]["progress"]["value"], 71.0);
    assert_eq!(sunday[2]["progress"]["met"], true);
    assert_eq!(sunday[3]["progress"], Value::Null, "no daily measure");
    let monday = goals("2026-03-02").await;
    assert_eq!(monday[0]["progress"]["met"], true);
    assert_eq!(monday[1]["progress"]["value"], 12000.0);

    // Export: the profile, the goals and every stream's rows of the subject.
    let export = api.get(&member, "/api/v1/subjects/S1/export").await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(export.headers()["content-type"], "application/zip");
    assert_eq!(
        export.headers()["content-disposition"],
        "attachment; filename=\"healthai-S1.zip\""
    );
    let bytes = export.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: BTreeSet<String> = zip.file_names().map(str::to_owned).collect();
    for expected in [
        "subject.json",
        "goals.json",
        "heart_rate.parquet",
        "steps.parquet",
        "sleep.parquet",
        "body.parquet",
        "meals.parquet",
        "active_energy.parquet",
    ] {
        assert!(names.contains(expected), "{expected} not in {names:?}");
    }
    let mut read = |name: &str| {
        let mut entry = zip.by_name(name).unwrap();
        let mut out = Vec::new();
        entry.read_to_end(&mut out).unwrap();
        out
    };
    let heart_rate = decode_parquet(&read("heart_rate.parquet"));
    assert_eq!(
        heart_rate.iter().map(RecordBatch::num_rows).sum::<usize>(),
        READINGS
    );
    let profile: Value = serde_json::from_slice(&read("subject.json")).unwrap();
    assert_eq!(profile[0]["pseudonym"], "S1");
    let goals_file: Value = serde_json::from_slice(&read("goals.json")).unwrap();
    assert_eq!(goals_file.as_array().unwrap().len(), 4);
    let ndjson = api
        .get(&admin, "/api/v1/subjects/S1/export?format=ndjson")
        .await
        .bytes()
        .await
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(ndjson.to_vec())).unwrap();
    let mut steps = String::new();
    zip.by_name("steps.ndjson")
        .unwrap()
        .read_to_string(&mut steps)
        .unwrap();
    assert_eq!(steps.lines().count(), 3);

    // Erasure: admins only; the subject disappears at once.
    for token in [&member, &coach] {
        let (status, _, message) = error(
            api.http
                .delete(api.url("/api/v1/subjects/S3"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("may not erase subjects"), "{message}");
    }
    let erased = api
        .http
        .delete(api.url("/api/v1/subjects/S3"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::ACCEPTED);
    let request: Value = erased.json().await.unwrap();
    assert_eq!(request["subject"], "S3");
    assert!(request["erasure_id"].is_i64());
    assert_eq!(listed(admin.clone()).await, ["S1", "S2"]);
    assert_eq!(
        api.rows(&admin, "SELECT count(*) AS n FROM heart_rate")
            .await,
        [json!({ "n": 2 * READINGS })]
    );
    let (status, _, message) = error(api.get(&admin, "/api/v1/subjects/S3/summary").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message, "subject S3 was erased");

    // Exports and erasures are in the audit log.
    let mut actions = Vec::new();
    for _ in 0..50 {
        actions = api
            .rows(
                &admin,
                "SELECT action, statement FROM system.audit_log \
                 WHERE action IN ('export', 'erase') ORDER BY at",
            )
            .await;
        if actions.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        actions,
        [
            json!({ "action": "export", "statement": "subject S1" }),
            json!({ "action": "export", "statement": "subject S1" }),
            json!({ "action": "erase", "statement": "subject S3" }),
        ]
    );
}

#[tokio::test]
async fn streams_observability_cors_headers_and_logs() {
    let server = Server::start_with(
        &[
            "--cors-origin",
            "https://dash.example.org",
            "--log-format",
            "json",
        ],
        Some("serve.log"),
    );
    let api = Api::new(&server);
    let analyst = api.token(ANALYST).await;

    let streams: Vec<Value> = api
        .get(&analyst, "/api/v1/streams")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"heart_rate") && names.contains(&"meals"),
        "{names:?}"
    );
    let stream: Value = api
        .get(&analyst, "/api/v1/streams/body")
        .await
        .json()
        .await
        .unwrap();
    let weight = stream["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "weight_kg")
        .unwrap();
    assert_eq!(
        (&weight["unit"], &weight["plausible_max"]),
        (&json!("kg"), &json!(400.0))
    );

    let health = api.http.get(api.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready: Value = api
        .http
        .get(api.url("/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        (
            &ready["checks"]["catalog"]["ok"],
            &ready["checks"]["store"]["ok"]
        ),
        (&json!(true), &json!(true))
    );

    // After a write and a query, the counters show them.
    let admin = api.token(ADMIN).await;
    let written = api
        .write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            "{\"subject\":\"S1\",\"time\":\"2026-03-04T06:00:00Z\",\"bpm\":61}\n\
             {\"subject\":\"S1\",\"time\":\"2026-03-04T06:01:00Z\",\"bpm\":999}\n",
        )
        .await;
    assert_eq!(
        written.status(),
        StatusCode::OK,
        "{}",
        written.text().await.unwrap()
    );
    api.rows(&admin, "SELECT count(*) FROM heart_rate").await;
    let metrics = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().await.unwrap();
    for line in [
        "healthai_ingest_rows_total{stream=\"heart_rate\",outcome=\"accepted\"} 1",
        "healthai_ingest_rows_total{stream=\"heart_rate\",outcome=\"rejected\"} 1",
        "healthai_ingest_rejections_total{stream=\"heart_rate\",rule=\"range\"} 1",
        "healthai_flush_duration_seconds_count{stream=\"heart_rate\",outcome=\"ok\"} 1",
        "healthai_flushed_rows_total{stream=\"heart_rate\"} 1",
        "healthai_http_requests_total{method=\"POST\",route=\"/api/v1/streams/{stream}/records\",status=\"200\"} 1",
        "healthai_catalog_pool_connections{backend=\"sqlite\",state=\"max\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    for family in [
        "# TYPE healthai_query_duration_seconds histogram",
        "# TYPE healthai_compaction_duration_seconds histogram",
        "# TYPE healthai_object_store_errors_total counter",
        "# TYPE healthai_http_request_duration_seconds histogram",
    ] {
        assert!(metrics.contains(family), "{family} not in\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "healthai_query_duration_seconds_count{interface=\"rest\",outcome=\"ok\"}"
        )),
        "{metrics}"
    );

    // CORS: the configured origin may call from a browser, others may not.
    let preflight = |origin: &str| {
        api.http
            .request(reqwest::Method::OPTIONS, api.url("/api/v1/query"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://dash.example.org").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example.org"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let cross = api
        .http
        .get(api.url("/api/v1/streams"))
        .bearer_auth(&analyst)
        .header("origin", "https://dash.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross.headers()["access-control-allow-origin"],
        "https://dash.example.org"
    );
    let exposed = cross.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    // Security headers on pages and API answers alike.
    let page = api.http.get(api.url("/")).send().await.unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for response in [page, cross] {
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }

    // JSON log lines carry the request id.
    let traced = api
        .http
        .get(api.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), StatusCode::OK);
    let log = std::fs::read_to_string(server.dir.path().join("serve.log")).unwrap();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "trace-me-42")
        .unwrap_or_else(|| panic!("no log line for the request in\n{log}"));
    assert_eq!(line["path"], "/health");
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "healthai::http");
}

/// A minimal JSON Schema check (type, required, properties, additionalProperties, items,
/// oneOf, $ref): enough to hold answers to the document.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return options
            .iter()
            .any(|o| check(doc, o, value, at).is_ok())
            .then_some(())
            .ok_or_else(|| format!("{at}: {value} matches none of {schema}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| fits(t)) {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let Value::Object(object) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: no {name} in {value}"));
            }
        }
        for (name, field) in object {
            if let Some(property) = schema["properties"].get(name) {
                check(doc, property, field, &format!("{at}.{name}"))?;
            } else if schema["additionalProperties"].is_object() {
                check(
                    doc,
                    &schema["additionalProperties"],
                    field,
                    &format!("{at}.{name}"),
                )?;
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, element) in items.iter().enumerate() {
            check(doc, item, element, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_matches_the_live_server() {
    let server = Server::start();
    let api = Api::new(&server);
    let admin = api.token(ADMIN).await;
    // A batch to look at.
    let written = api
        .write(
            &admin,
            "/api/v1/streams/heart_rate/records",
            "application/x-ndjson",
            "{\"subject\":\"S1\",\"time\":\"2026-03-04T06:00:00Z\",\"bpm\":61}\n",
        )
        .await;
    assert_eq!(
        written.status(),
        StatusCode::OK,
        "{}",
        written.text().await.unwrap()
    );

    let doc: Value = api
        .http
        .get(api.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert(format!("{} {path}", method.to_ascii_uppercase()));
            operations.push((method.to_ascii_uppercase(), path.clone(), operation.clone()));
        }
    }
    let exercised: BTreeSet<String> = OPERATIONS.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        documented, exercised,
        "the document lists every route, and only those"
    );

    // The erasure last: it removes the subject the other examples use.
    operations.sort_by_key(|(method, _, _)| method == "DELETE");
    for (method, template, operation) in operations {
        let mut path = template.clone();
        for param in operation["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "path" {
                let example = match &param["example"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                path = path.replace(
                    &format!("{{{}}}", param["name"].as_str().unwrap()),
                    &example,
                );
            }
        }
        let mut request = api.http.request(method.parse().unwrap(), api.url(&path));
        if operation.get("security") != Some(&json!([])) {
            request = request.bearer_auth(&admin);
        }
        if let Some(content) = operation["requestBody"]["content"].as_object() {
            let (media_type, example) = content
                .iter()
                .find_map(|(m, c)| c.get("example").map(|e| (m, e)))
                .unwrap_or_else(|| panic!("{method} {template}: no request example"));
            let body = match example {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            request = request.header("content-type", media_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let what = format!("{method} {path}: {status}");
        assert!(status != 405, "{what}");
        let reply = &operation["responses"][status.to_string()];
        assert!(reply.is_object(), "{what} is not a documented answer");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let media = reply["content"].as_object();
        if let Some(media) = media {
            let (_, spec) = media
                .iter()
                .find(|(m, _)| content_type.starts_with(m.as_str()))
                .unwrap_or_else(|| panic!("{what}: {content_type} not documented ({media:?})"));
            if content_type.starts_with("application/json") {
                let body: Value = response.json().await.unwrap();
                if status == 404 {
                    assert!(
                        !body["error"]["message"]
                            .as_str()
                            .unwrap()
                            .starts_with("no route"),
                        "{what}: {body}"
                    );
                }
                check(&doc, &spec["schema"], &body, &what).unwrap();
            }
        }
        // Only the credentials examples may be refused: the rest answer with success.
        if !(path.starts_with("/api/v1/auth/refresh") || path.starts_with("/api/v1/auth/logout")) {
            assert!((200..300).contains(&status), "{what}");
        }
    }
}
