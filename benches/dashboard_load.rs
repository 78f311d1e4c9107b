//! Dashboard API load: concurrent clients send the dashboard's kinds of queries to
//! `POST /api/v1/query` of a running `healthai demo` (or `serve`), and the latencies are
//! reported as p50/p90/p99 per query and overall.
//!
//! ```text
//! healthai demo --password bench &       # the demo dataset, 100 subjects x 30 days
//! cargo bench --bench dashboard_load -- --password bench [--clients 32] [--seconds 30] [--max-age 30]
//! ```
//!
//! Each client logs in, keeps one HTTP connection alive (as a browser does) and loops over the
//! queries for `--seconds`: those of the Overview and Activity views for the last 28 days of
//! data, for the whole organization (the heaviest filter) and for one subject (the common
//! one). Like the dashboard, clients send `Cache-Control: max-age=30` (they accept an answer
//! up to 30 s old, which the server may give from its result cache); `--max-age 0` makes every
//! query computed, which measures the engine itself (rollups, kernel). The client is a
//! single-threaded Tokio runtime, so that it takes little of the machine from the server.

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

/// The allocator the `healthai` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WINDOW: &str = "time >= CAST($1 AS TIMESTAMP) AND time < CAST($2 AS TIMESTAMP)";

fn queries() -> Vec<(&'static str, String)> {
    let active_per_day = ["heart_rate", "steps", "meals", "body"]
        .map(|stream| {
            format!(
                "SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day FROM {stream} \
                 WHERE {WINDOW} GROUP BY 1, 2"
            )
        })
        .join(" UNION ALL ");
    vec![
        (
            "active subjects per day",
            format!(
                "SELECT day, count(DISTINCT subject_id) AS subjects FROM ({active_per_day}) \
                 GROUP BY 1 ORDER BY 1"
            ),
        ),
        (
            "steps per day",
            format!(
                "SELECT CAST(date_trunc('day', time) AS DATE) AS day, \
                 CAST(sum(count) AS DOUBLE) / count(DISTINCT subject_id) AS steps \
                 FROM steps WHERE {WINDOW} GROUP BY 1 ORDER BY 1"
            ),
        ),
        (
            "resting heart rate",
            format!(
                "SELECT day, avg(rest) AS resting FROM ( \
                   SELECT subject_id, CAST(date_trunc('day', hour) AS DATE) AS day, min(bpm) AS rest FROM ( \
                     SELECT subject_id, date_trunc('hour', time) AS hour, avg(bpm) AS bpm \
                     FROM heart_rate WHERE {WINDOW} GROUP BY 1, 2 HAVING count(*) >= 6) \
                   GROUP BY 1, 2) \
                 GROUP BY 1 ORDER BY 1"
            ),
        ),
        (
            "sleep stages",
            format!(
                "SELECT CAST(date_trunc('day', end_time) AS DATE) AS night, stage, \
                 sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) / 3.6e12 \
                 / count(DISTINCT subject_id) AS hours \
                 FROM sleep WHERE {WINDOW} GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        ),
        (
            "workouts per week",
            format!(
                "SELECT CAST(date_trunc('week', time) AS DATE) AS week, sport, count(*) AS workouts \
                 FROM workouts WHERE {WINDOW} GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        ),
        (
            "one subject's heart rate by hour",
            format!(
                "SELECT date_bin(INTERVAL '1 hour', time) AS hour, avg(bpm), max(bpm) \
                 FROM heart_rate WHERE {WINDOW} AND subject_id = $3 GROUP BY 1 ORDER BY 1"
            ),
        ),
    ]
}

#[derive(Parser)]
#[command(about = "Dashboard API load against a running healthai")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "default/demo@healthai.local")]
    user: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// The Cache-Control max-age the clients send, as the dashboard does; 0: always computed.
    #[arg(long, default_value_t = 30)]
    max_age: u64,
    /// `cargo bench` passes this to every bench target.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Sample {
    query: usize,
    latency: Duration,
    hit: bool,
}

async fn login(http: &reqwest::Client, args: &Args) -> String {
    let reply: Value = http
        .post(format!("{}/api/v1/auth/login", args.url))
        .json(&json!({ "username": args.user, "password": args.password }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("cannot log in at {}: {e}", args.url))
        .json()
        .await
        .expect("the login answer is JSON");
    reply["access_token"]
        .as_str()
        .expect("the login answer has an access token")
        .to_owned()
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(args));
}

async fn run(args: Args) {
    let queries = queries();
    let setup = reqwest::Client::new();
    let token = login(&setup, &args).await;
    let last: Vec<Value> = setup
        .post(format!("{}/api/v1/query", args.url))
        .bearer_auth(&token)
        .json(&json!({ "sql": "SELECT CAST(max(time) AS VARCHAR) AS last, min(subject_id) AS subject FROM heart_rate" }))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the data's last reading")
        .json()
        .await
        .expect("JSON rows");
    let end_text = last[0]["last"].as_str().expect("data in heart_rate");
    let end = chrono::NaiveDate::parse_from_str(&end_text[..10], "%Y-%m-%d").expect("a date");
    let start = end - chrono::Days::new(28);
    let params = json!([start.to_string(), end.to_string(), last[0]["subject"]]);

    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut clients = Vec::new();
    for index in 0..args.clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("an HTTP client");
        let token = login(&http, &args).await;
        let url = format!("{}/api/v1/query", args.url);
        let queries = queries.clone();
        let params = params.clone();
        let max_age = args.max_age;
        clients.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors = Vec::new();
            let mut i = index;
            while Instant::now() < deadline {
                let query = i % queries.len();
                i += 1;
                let sql = &queries[query].1;
                let used = if sql.contains("$3") { 3 } else { 2 };
                let body = json!({
                    "sql": sql,
                    "params": params.as_array().map(|p| p[..used].to_vec()),
                    "format": "json",
                });
                let mut request = http.post(&url).bearer_auth(&token).json(&body);
                if max_age > 0 {
                    request = request.header("cache-control", format!("max-age={max_age}"));
                }
                let started = Instant::now();
                let outcome = match request.send().await {
                    Ok(reply) if reply.status().is_success() => {
                        let hit = reply
                            .headers()
                            .get("x-healthai-cache")
                            .is_some_and(|v| v == "hit");
                        reply.bytes().await.map(|_| hit).map_err(|e| e.to_string())
                    }
                    Ok(reply) => Err(format!(
                        "{}: {}",
                        reply.status(),
                        reply.text().await.unwrap_or_default()
                    )),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(hit) => samples.push(Sample {
                        query,
                        latency: started.elapsed(),
                        hit,
                    }),
                    Err(e) => errors.push(format!("{}: {e}", queries[query].0)),
                }
            }
            (samples, errors)
        }));
    }
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for client in clients {
        let (s, e) = client.await.expect("a client task");
        samples.extend(s);
        errors.extend(e);
    }

    let hits = samples.iter().filter(|s| s.hit).count();
    println!(
        "{} clients, {:.0} s, {} queries ({:.1}/s), {} errors; window {start} .. {end}; max-age {}: {hits} answered from the result cache",
        args.clients,
        args.seconds,
        samples.len(),
        samples.len() as f64 / args.seconds,
        errors.len(),
        args.max_age,
    );
    println!(
        "{:<36} {:>7} {:>9} {:>9} {:>9}",
        "query", "n", "p50 ms", "p90 ms", "p99 ms"
    );
    let quantiles = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        let pick = |q: f64| values[((q * values.len() as f64) as usize).min(values.len() - 1)];
        (pick(0.5), pick(0.9), pick(0.99))
    };
    let millis = |s: &Sample| s.latency.as_secs_f64() * 1e3;
    for (index, (name, _)) in queries.iter().enumerate() {
        let values: Vec<f64> = samples
            .iter()
            .filter(|s| s.query == index)
            .map(millis)
            .collect();
        if !values.is_empty() {
            let n = values.len();
            let (p50, p90, p99) = quantiles(values);
            println!("{name:<36} {n:>7} {p50:>9.2} {p90:>9.2} {p99:>9.2}");
        }
    }
    if !samples.is_empty() {
        let all: Vec<f64> = samples.iter().map(millis).collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let (p50, p90, p99) = quantiles(all);
        println!(
            "{:<36} {:>7} {p50:>9.2} {p90:>9.2} {p99:>9.2}",
            "all",
            samples.len()
        );
        println!("mean {mean:.2} ms");
    }
    for error in errors.iter().take(5) {
        println!("error: {error}");
    }
}
