//! Connectors end to end against a mock HTTP API started in the test (axum on 127.0.0.1:0):
//! a real engine over a SQLite catalog and a local store, rows read back with SQL, the
//! connector's state read back from the catalog, and what the server received checked on
//! the server's side.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arrow::array::{Array, AsArray, RecordBatch};
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    response::Response,
};
use catalog::{BatchStatus, Connector, ConnectorStatus, NewConnector, testing::TestDatabase};
use chrono::Utc;
use engine::{Engine, EngineConfig, Principal};
use ingest::{
    IngestOptions, Silent,
    connectors::{self, RunReport},
};
use object_store::local::LocalFileSystem;
use serde_json::{Value, json};

const LEASE: Duration = Duration::from_secs(300);

/// A request the mock API received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    at: Instant,
}

/// The mock API: readings to serve, answers to fail with first, and what it received.
#[derive(Default)]
struct Api {
    /// (time, bpm) of subject S1, served by `/readings` from `since` on, two per page.
    readings: Vec<(String, f64)>,
    /// Per path, statuses (with a `Retry-After`) to answer before serving normally.
    failures: HashMap<String, VecDeque<(u16, Option<&'static str>)>>,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Api>>;

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn reading(time: &str, bpm: f64) -> Value {
    json!({"timestamp": time, "value": bpm, "user": {"id": "S1"}, "device": "band"})
}

/// `n` readings a minute apart on 2 March 2026, from minute `from`.
fn minutes(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|m| reading(&format!("2026-03-02T06:{m:02}:00Z"), 60.0 + m as f64))
        .collect()
}

fn respond(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn product(code: &str) -> Option<(u16, Value)> {
    let found = |nutriments: Value| {
        Some((
            200,
            json!({"code": code, "status": 1, "product": {
                "product_name": format!("Product {code}"), "brands": "Brand", "nutriments": nutriments}}),
        ))
    };
    match code {
        "3017620422003" => found(json!({
            "energy-kcal_100g": 539, "energy-kj_100g": 2252, "proteins_100g": 6.3,
            "carbohydrates_100g": 57.5, "fat_100g": 30.9, "fiber_100g": 3.4,
            "sugars_100g": 56.3, "sodium_100g": 0.0428, "salt_100g": 0.107})),
        "1000000000001" => found(json!({"energy-kj_100g": 418.4, "proteins_100g": 1})),
        "1000000000002" => found(json!({"energy-kcal_100g": 50, "salt_100g": 1.25})),
        "1000000000003" => found(json!({"energy-kcal_100g": 70})),
        "1000000000004" => found(json!({"energy-kcal_100g": 80})),
        "4000000000000" => Some((
            404,
            json!({"code": code, "status": 0, "status_verbose": "product not found"}),
        )),
        "4000000000001" => Some((200, json!({"code": code, "status": 0}))),
        _ => None,
    }
}

async fn handle(State(api): State<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let authorization = request
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut api = api.lock().unwrap();
    api.seen.push(Seen {
        path: path.clone(),
        query: query.clone(),
        authorization: authorization.clone(),
        at: Instant::now(),
    });
    if let Some((status, retry_after)) = api.failures.get_mut(&path).and_then(VecDeque::pop_front) {
        let mut response = respond(status, json!({"error": "try again"}));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.parse().unwrap());
        }
        return response;
    }
    let page = |key: &str| query.get(key).map_or(1, |p| p.parse::<usize>().unwrap());
    match path.as_str() {
        "/readings" => {
            let since = chrono::DateTime::parse_from_rfc3339(&query["since"]).unwrap();
            // From `since` included: the last reading of a run comes again in the next one.
            let mut newer: Vec<&(String, f64)> = api
                .readings
                .iter()
                .filter(|(t, _)| chrono::DateTime::parse_from_rfc3339(t).unwrap() >= since)
                .collect();
            newer.sort_by(|a, b| a.0.cmp(&b.0));
            let items: Vec<Value> = newer
                .iter()
                .skip((page("page") - 1) * 2)
                .take(2)
                .map(|(t, bpm)| reading(t, *bpm))
                .collect();
            respond(200, json!({"data": items, "meta": {"page": page("page")}}))
        }
        "/linked" => match query.get("after").map(String::as_str) {
            None => respond(
                200,
                json!({"items": minutes(0, 2), "links": {"next": "/linked?after=2"}}),
            ),
            Some("2") => respond(
                200,
                json!({"items": minutes(2, 1), "links": {"next": null}}),
            ),
            Some(_) => respond(400, json!({"error": "bad after"})),
        },
        "/paced" if page("page") <= 6 => respond(200, json!({"data": minutes(page("page"), 1)})),
        "/paced" => respond(200, json!({"data": []})),
        "/flaky" | "/limited" | "/always" => respond(200, json!({"data": minutes(10, 2)})),
        "/secret" if authorization.as_deref() == Some("Bearer s3cr3t-Token") => {
            respond(200, json!({"data": minutes(20, 1)}))
        }
        "/secret" => respond(401, json!({"error": "unauthorized"})),
        _ => match path
            .strip_prefix("/api/v2/product/")
            .and_then(|file| file.strip_suffix(".json"))
            .and_then(product)
        {
            Some((status, body)) => respond(status, body),
            None => respond(404, json!({"error": "no such page"})),
        },
    }
}

struct Harness {
    _db: TestDatabase,
    _dir: tempfile::TempDir,
    engine: Engine,
    principal: Principal,
    api: Shared,
    base: String,
}

impl Harness {
    async fn new() -> Self {
        let db = TestDatabase::sqlite().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("store")).unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("store")).unwrap());
        let engine = Engine::open(db.catalog().await, store, EngineConfig::default()).unwrap();
        let principal = Principal::operator(engine.organization("default").await.unwrap());
        let api = Shared::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Harness {
            _db: db,
            _dir: dir,
            engine,
            principal,
            api,
            base,
        }
    }

    fn new_connector(&self, name: &str, kind: &str, config: Value) -> NewConnector {
        NewConnector {
            org: self.principal.org.id,
            name: name.into(),
            kind: kind.into(),
            config,
            schedule_seconds: 900,
            first_run_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    async fn create(&self, name: &str, kind: &str, config: Value) -> Connector {
        connectors::create(&self.engine, self.new_connector(name, kind, config))
            .await
            .unwrap()
    }

    /// A `json_api` connector on `path` of the mock API, feeding heart_rate.
    async fn json_api(&self, name: &str, path: &str, extra: Value) -> Connector {
        let mut config = json!({
            "url": format!("{}{path}", self.base),
            "stream": "heart_rate",
            "items": "/data",
            "fields": {"time": "/timestamp", "bpm": "/value", "subject": "/user/id", "source": "/device"},
            "backoff_ms": 10,
            "rate_limit_per_second": 1000,
        });
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        self.create(name, "json_api", config).await
    }

    async fn run(&self, name: &str) -> RunReport {
        connectors::run_now(&self.engine, &self.principal.org, name, LEASE)
            .await
            .unwrap()
    }

    async fn connector(&self, name: &str) -> Connector {
        self.engine
            .catalog()
            .connectors()
            .get_by_name(self.principal.org.id, name)
            .await
            .unwrap()
    }

    fn fail(&self, path: &str, answers: &[(u16, Option<&'static str>)]) {
        self.api
            .lock()
            .unwrap()
            .failures
            .insert(path.into(), answers.iter().copied().collect());
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let api = self.api.lock().unwrap();
        api.seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    async fn rows(&self, sql: &str) -> Vec<RecordBatch> {
        self.engine.query("default", sql).await.unwrap().batches
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql).await[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    }

    async fn pretty(&self, sql: &str) -> String {
        arrow::util::pretty::pretty_format_batches(&self.rows(sql).await)
            .unwrap()
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_read_from_the_cursor_on_and_nothing_is_duplicated() {
    let h = Harness::new().await;
    {
        let mut api = h.api.lock().unwrap();
        for m in 0..5 {
            api.readings
                .push((format!("2026-03-01T06:0{m}:00Z"), 60.0 + m as f64));
        }
        // Refused by the range rule, and quarantined with its page and position.
        api.readings.push(("2026-03-01T05:59:00Z".into(), 300.0));
    }
    h.json_api(
        "hr",
        "/readings?since={cursor}&page={page}",
        json!({"cursor": {"field": "/timestamp", "initial": "2026-01-01T00:00:00Z"}}),
    )
    .await;

    let first = h.run("hr").await;
    assert_eq!(first.error, None);
    assert_eq!(first.pages, 4, "three pages of readings, then an empty one");
    assert_eq!(first.cursor.as_deref(), Some("2026-03-01T06:04:00Z"));
    let batch = first.ingest.as_ref().unwrap();
    assert_eq!(
        (batch.totals().rows_in, batch.totals().rows_accepted),
        (6, 5)
    );
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 5);
    assert!(
        h.pretty("SELECT DISTINCT source FROM heart_rate")
            .await
            .contains("band")
    );
    let catalog = h.engine.catalog();
    let recorded = catalog.ingest().get_batch(batch.batch).await.unwrap();
    assert_eq!(recorded.status, BatchStatus::Committed);
    assert_eq!(recorded.source, "connector:hr");
    assert_eq!(recorded.format, "json_api");
    let quarantined = catalog.ingest().quarantined(batch.batch, 10).await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].rule, "range");
    assert_eq!(quarantined[0].record, Some(1));
    assert!(
        quarantined[0]
            .file
            .contains("/readings?since=2026-01-01T00%3A00%3A00Z&page=1"),
        "{}",
        quarantined[0].file
    );

    let stored = h.connector("hr").await;
    assert_eq!(stored.status, ConnectorStatus::Ok);
    assert_eq!(stored.cursor.as_deref(), Some("2026-03-01T06:04:00Z"));
    assert_eq!(stored.last_error, None);
    let schedule = stored.next_run_at - stored.last_run_at.unwrap();
    assert_eq!(schedule, chrono::Duration::seconds(900));

    h.api.lock().unwrap().readings.extend([
        ("2026-03-01T06:05:00Z".into(), 70.0),
        ("2026-03-01T06:06:00Z".into(), 71.0),
    ]);
    let second = h.run("hr").await;
    assert_eq!(second.error, None);
    assert_eq!(second.cursor.as_deref(), Some("2026-03-01T06:06:00Z"));
    let asked: Vec<String> = h.seen("/readings")[4..]
        .iter()
        .map(|s| s.query["since"].clone())
        .collect();
    assert!(
        asked.iter().all(|since| since == "2026-03-01T06:04:00Z"),
        "the second run asks from the cursor: {asked:?}"
    );
    assert_eq!(
        second.ingest.as_ref().unwrap().totals().rows_in,
        3,
        "only the readings from the cursor on"
    );
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 7);
    assert_eq!(
        h.count("SELECT count(*) FROM (SELECT DISTINCT subject_id, source, time FROM heart_rate)")
            .await,
        7,
        "the re-delivered reading is an upsert"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_page_links_are_followed() {
    let h = Harness::new().await;
    h.json_api(
        "linked",
        "/linked",
        json!({"items": "/items", "next_page": "/links/next"}),
    )
    .await;
    let report = h.run("linked").await;
    assert_eq!(report.error, None);
    assert_eq!(report.pages, 2);
    let seen = h.seen("/linked");
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].query.get("after").map(String::as_str),
        Some("2"),
        "the relative link was resolved"
    );
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_rate_limiting_answers_are_retried() {
    let h = Harness::new().await;
    h.fail("/flaky", &[(500, None)]);
    h.json_api("flaky", "/flaky", json!({})).await;
    let report = h.run("flaky").await;
    assert_eq!(report.error, None);
    assert_eq!((report.requests, report.retries), (2, 1));
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 2);

    h.fail("/limited", &[(429, Some("1"))]);
    h.json_api("limited", "/limited", json!({})).await;
    let report = h.run("limited").await;
    assert_eq!(report.error, None);
    let seen = h.seen("/limited");
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 was honoured, the server saw the retry after {waited:?}"
    );

    h.fail("/always", &[(503, None), (503, None), (503, None)]);
    h.json_api("always", "/always", json!({"max_attempts": 3}))
        .await;
    let report = h.run("always").await;
    let error = report.error.unwrap();
    assert!(error.contains("HTTP 503"), "{error}");
    assert!(error.contains("3 attempts"), "{error}");
    assert_eq!(h.seen("/always").len(), 3);
    assert_eq!(h.connector("always").await.status, ConnectorStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_fails_the_run_at_once_with_the_url() {
    let h = Harness::new().await;
    h.json_api(
        "gone",
        "/missing?since={cursor}",
        json!({"cursor": {"field": "/timestamp", "initial": "2026-01-01T00:00:00Z"}}),
    )
    .await;
    let report = h.run("gone").await;
    assert_eq!(h.seen("/missing").len(), 1, "a 404 is not retried");
    let stored = h.connector("gone").await;
    assert_eq!(stored.status, ConnectorStatus::Failed);
    assert_eq!(stored.cursor, None, "the cursor did not move");
    let error = stored.last_error.unwrap();
    assert!(error.contains("HTTP 404"), "{error}");
    assert!(
        error.contains(&format!(
            "{}/missing?since=2026-01-01T00%3A00%3A00Z",
            h.base
        )),
        "{error}"
    );
    assert_eq!(report.error.as_deref(), Some(error.as_str()));
    let batch = h
        .engine
        .catalog()
        .ingest()
        .get_batch(report.ingest.unwrap().batch)
        .await
        .unwrap();
    assert_eq!(batch.status, BatchStatus::Failed);
    assert_eq!(batch.error.as_deref(), Some(error.as_str()));

    // Nothing listens on port 9: connect errors are retried, then fail the run.
    h.create(
        "unreachable",
        "json_api",
        json!({"url": "http://127.0.0.1:9/x", "stream": "heart_rate",
               "fields": {"time": "/t", "bpm": "/v"}, "subject": "S1",
               "max_attempts": 2, "backoff_ms": 1}),
    )
    .await;
    let error = h.run("unreachable").await.error.unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(error.contains("2 attempts"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_to_the_rate_limit() {
    let h = Harness::new().await;
    h.json_api(
        "paced",
        "/paced?page={page}",
        json!({"rate_limit_per_second": 4}),
    )
    .await;
    let report = h.run("paced").await;
    assert_eq!(report.error, None);
    let times: Vec<Instant> = h.seen("/paced").iter().map(|s| s.at).collect();
    assert_eq!(times.len(), 7, "six pages and an empty one");
    // However the second is cut, the server never receives more than four requests in it
    // (a few milliseconds allowed for the loopback's jitter).
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|t| **t - *start < Duration::from_millis(950))
            .count();
        assert!(
            within <= 4,
            "{within} requests within a second from request {i}"
        );
    }
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_environment_and_stay_out_of_the_catalog() {
    let h = Harness::new().await;
    let refused = connectors::create(
        &h.engine,
        h.new_connector(
            "clear",
            "json_api",
            json!({"url": format!("{}/secret", h.base), "stream": "heart_rate",
                   "fields": {"time": "/t", "bpm": "/v"}, "subject": "S1",
                   "headers": {"Authorization": "Bearer s3cr3t-Token"}}),
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("config key headers.Authorization"),
        "{refused}"
    );
    assert!(refused.contains("environment variable"), "{refused}");

    h.json_api(
        "secret",
        "/secret?key=${HEALTHAI_TEST_CONNECTOR_KEY}",
        json!({"headers": {"Authorization": "Bearer ${HEALTHAI_TEST_CONNECTOR_TOKEN}"}}),
    )
    .await;
    let error = h.run("secret").await.error.unwrap();
    assert!(
        error.contains("HEALTHAI_TEST_CONNECTOR_TOKEN") && error.contains("not set"),
        "{error}"
    );
    assert!(
        h.seen("/secret").is_empty(),
        "nothing sent without the secret"
    );

    // SAFETY: these variables are this test's own; nothing else reads or writes them.
    unsafe {
        std::env::set_var("HEALTHAI_TEST_CONNECTOR_TOKEN", "s3cr3t-Token");
        std::env::set_var("HEALTHAI_TEST_CONNECTOR_KEY", "k3y-Value");
    }
    let report = h.run("secret").await;
    assert_eq!(report.error, None);
    let seen = h.seen("/secret");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer s3cr3t-Token")
    );
    assert_eq!(seen[0].query["key"], "k3y-Value");
    assert_eq!(h.count("SELECT count(*) FROM heart_rate").await, 1);

    // The secret never reaches the catalog: not the configuration, nor the errors, nor the
    // quarantine's page URLs.
    h.fail("/secret", &[(400, None)]);
    let error = h.run("secret").await.error.unwrap();
    assert!(
        error.contains("key=${HEALTHAI_TEST_CONNECTOR_KEY}"),
        "{error}"
    );
    let stored = h.connector("secret").await;
    let everything = format!(
        "{} {:?} {:?}",
        stored.config, stored.last_error, stored.cursor
    );
    assert!(!everything.contains("s3cr3t"), "{everything}");
    assert!(!everything.contains("k3y-Value"), "{everything}");
    assert!(
        stored.config["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .contains("${HEALTHAI_TEST_CONNECTOR_TOKEN}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_food_facts_products_land_in_foods() {
    let h = Harness::new().await;
    // A meal naming a product not in foods yet, one already there, and one not a barcode.
    let meals = h._dir.path().join("meals.csv");
    std::fs::write(
        &meals,
        "subject,time,meal,food_id,quantity_g\n\
         S1,2026-03-01T08:00:00Z,breakfast,off:1000000000003,100\n\
         S1,2026-03-01T08:00:00Z,breakfast,off:3017620422003,15\n\
         S1,2026-03-01T12:00:00Z,lunch,off:not-a-code,200\n",
    )
    .unwrap();
    ingest::ingest(
        &h.engine,
        &h.principal,
        &[meals],
        &IngestOptions::default(),
        &Silent,
    )
    .await
    .unwrap();

    let config = |barcodes: Value| {
        json!({"base_url": h.base.clone(), "barcodes": barcodes, "from_meals": true,
               "rate_limit_per_second": 1000, "backoff_ms": 1, "max_attempts": 1})
    };
    h.create(
        "off",
        "open_food_facts",
        config(json!([
            "3017620422003",
            "1000000000001",
            "1000000000002",
            "4000000000000",
            "4000000000001"
        ])),
    )
    .await;
    let report = h.run("off").await;
    assert_eq!(report.error, None);
    let foods = report.foods.unwrap();
    assert_eq!((foods.fetched, foods.written), (4, 4));
    assert_eq!(foods.not_found, ["4000000000000", "4000000000001"]);
    assert_eq!(foods.not_barcodes, ["off:not-a-code"]);
    assert_eq!(report.cursor.as_deref(), Some("4000000000001"));

    let foods = h
        .rows("SELECT food_id, source, name, brand, energy_kcal, sodium_mg FROM reference.foods ORDER BY food_id")
        .await;
    let foods = arrow::compute::concat_batches(&foods[0].schema(), &foods).unwrap();
    let text = |column: usize, row: usize| {
        let column =
            arrow::compute::cast(foods.column(column), &arrow::datatypes::DataType::Utf8).unwrap();
        let column = column.as_string::<i32>();
        (!column.is_null(row)).then(|| column.value(row).to_owned())
    };
    let number = |column: usize, row: usize| {
        let column = foods
            .column(column)
            .as_primitive::<arrow::datatypes::Float64Type>();
        (!column.is_null(row)).then(|| (column.value(row) * 10.0).round() / 10.0)
    };
    let seen: Vec<_> = (0..foods.num_rows())
        .map(|row| {
            (
                text(0, row).unwrap(),
                text(1, row).unwrap(),
                text(3, row),
                number(4, row),
                number(5, row),
            )
        })
        .collect();
    let food = |id: &str, kcal: f64, sodium: Option<f64>| {
        (
            format!("off:{id}"),
            "open_food_facts".to_owned(),
            Some("Brand".to_owned()),
            Some(kcal),
            sodium,
        )
    };
    assert_eq!(
        seen,
        [
            food("1000000000001", 100.0, None),
            food("1000000000002", 50.0, Some(500.0)),
            food("1000000000003", 70.0, None),
            food("3017620422003", 539.0, Some(42.8)),
        ],
        "kcal from kJ, sodium from salt, the meal's product too"
    );
    assert_eq!(text(2, 3).as_deref(), Some("Product 3017620422003"));
    assert_eq!(h.count("SELECT count(*) FROM reference.foods").await, 4);

    // A run that fails half-way resumes after the last barcode written.
    h.create(
        "resumed",
        "open_food_facts",
        config(json!([
            "1000000000001",
            "1000000000002",
            "1000000000004",
            "3017620422003"
        ])),
    )
    .await;
    h.fail("/api/v2/product/1000000000004.json", &[(503, None)]);
    let before = h.api.lock().unwrap().seen.len();
    let failed = h.run("resumed").await;
    assert!(failed.error.unwrap().contains("HTTP 503"));
    assert_eq!(failed.cursor.as_deref(), Some("1000000000002"));
    let resumed = h.run("resumed").await;
    assert_eq!(resumed.error, None);
    let asked: Vec<String> = h.api.lock().unwrap().seen[before..]
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        asked,
        [
            "/api/v2/product/1000000000001.json",
            "/api/v2/product/1000000000002.json",
            "/api/v2/product/1000000000004.json",
            "/api/v2/product/1000000000004.json",
            "/api/v2/product/3017620422003.json",
        ],
        "the meals' missing product is loaded already; the second run resumes at the failure"
    );
    assert_eq!(resumed.cursor.as_deref(), Some("3017620422003"));
    assert_eq!(h.count("SELECT count(*) FROM reference.foods").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_connectors_are_run_once_by_the_scheduler() {
    let h = Harness::new().await;
    let due = |name: &str| NewConnector {
        first_run_at: Utc::now() - chrono::Duration::minutes(1),
        ..h.new_connector(
            name,
            "json_api",
            json!({"url": format!("{}/paced?page={{page}}", h.base), "stream": "heart_rate",
                   "items": "/data", "fields": {"time": "/timestamp", "bpm": "/value"},
                   "subject": "S9", "rate_limit_per_second": 1000}),
        )
    };
    connectors::create(&h.engine, due("due")).await.unwrap();
    let off = connectors::create(&h.engine, due("switched-off"))
        .await
        .unwrap();
    h.engine
        .catalog()
        .connectors()
        .set_enabled(off.id, false)
        .await
        .unwrap();
    h.json_api("later", "/flaky", json!({})).await;

    let reports = connectors::run_due(&h.engine, LEASE).await.unwrap();
    let ran: Vec<&str> = reports.iter().map(|r| r.connector.as_str()).collect();
    assert_eq!(ran, ["due"]);
    assert_eq!(
        h.count("SELECT count(*) FROM heart_rate h JOIN meta.subjects s USING (subject_id) WHERE s.pseudonym = 'S9'")
            .await,
        6
    );
    assert!(
        connectors::run_due(&h.engine, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "its next run is a schedule away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_are_checked_against_the_stream() {
    let h = Harness::new().await;
    let refusal = |config: Value| {
        let h = &h;
        async move {
            connectors::create(&h.engine, h.new_connector("bad", "json_api", config))
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let base = json!({"url": "https://api.example.com/x", "stream": "heart_rate",
                      "fields": {"time": "/t", "bpm": "/v"}, "subject": "S1"});
    let with = |key: &str, value: Value| {
        let mut config = base.clone();
        config[key] = value;
        config
    };
    let cases = [
        (
            with("stream", json!("heartrate")),
            "config key stream: organization default has no stream heartrate",
        ),
        (
            with("fields", json!({"time": "/t", "bmp": "/v"})),
            "config key fields.bmp: heart_rate has no column bmp",
        ),
        (with("units", json!({"time": "s"})), "config key units.time"),
    ];
    for (config, expected) in cases {
        let message = refusal(config).await;
        assert!(message.contains(expected), "'{expected}' not in {message}");
        assert!(message.starts_with("connector bad: "), "{message}");
    }
    let message = connectors::create(&h.engine, h.new_connector("bad", "csv", json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("unknown connector kind 'csv'"),
        "{message}"
    );
    assert!(
        h.engine
            .catalog()
            .connectors()
            .list(h.principal.org.id)
            .await
            .unwrap()
            .is_empty()
    );
}
