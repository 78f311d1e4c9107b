//! Connectors: data pulled from public HTTP APIs on a schedule.
//!
//! A connector is a row of the catalog's `connectors` table: a name, a kind, a JSON
//! configuration (checked by [`create`], naming the bad key), a schedule and a cursor. The
//! kinds:
//!
//! - `json_api` ([`json_api`]): a JSON API of readings mapped onto one stream by JSON
//!   pointers, read page by page from the cursor on; each run is one ingest batch (source
//!   `connector:<name>`) cleaned, reported and quarantined like files.
//! - `open_food_facts` ([`open_food_facts`]): products by barcode into the `foods`
//!   reference table.
//!
//! Requests are spaced to the connector's rate limit and retried with backoff ([`http`]).
//! Credentials live in environment variables (`${VAR}` in headers or the URL), read when a
//! run starts: the catalog holds only their names, and messages never show their values.
//!
//! [`run_due`] is one round of the scheduler: it claims due connectors one at a time with a
//! lease (so that nodes sharing a catalog never run one twice at once), runs each, and
//! records the outcome and the next run (`now + schedule`). [`spawn`] repeats it in the
//! background; [`run_now`] runs one connector by hand.

mod config;
mod http;
mod json_api;
mod open_food_facts;

use std::{fmt, str::FromStr, time::Duration};

use catalog::{Connector, ConnectorRun, NewConnector, Organization};
use chrono::{DateTime, Utc};
use engine::{Engine, Principal};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{Error, IngestOptions, IngestReport, Result, pipeline::Run};
use http::{Client, Target};
use json_api::JsonApi;
use open_food_facts::OpenFoodFacts;

/// The kinds of connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    JsonApi,
    OpenFoodFacts,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::JsonApi, Kind::OpenFoodFacts];

    pub fn name(self) -> &'static str {
        match self {
            Kind::JsonApi => "json_api",
            Kind::OpenFoodFacts => "open_food_facts",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == text)
            .ok_or_else(|| {
                format!("unknown connector kind '{text}'; the kinds are json_api, open_food_facts")
            })
    }
}

/// A checked configuration.
enum Config {
    JsonApi(Box<JsonApi>),
    OpenFoodFacts(OpenFoodFacts),
}

impl Config {
    fn parse(kind: &str, config: &Value) -> Result<Self, String> {
        Ok(match kind.parse::<Kind>()? {
            Kind::JsonApi => {
                Config::JsonApi(Box::new(JsonApi::parse(config).map_err(|e| e.to_string())?))
            }
            Kind::OpenFoodFacts => {
                Config::OpenFoodFacts(OpenFoodFacts::parse(config).map_err(|e| e.to_string())?)
            }
        })
    }
}

/// Creates a connector after checking its kind and configuration (a `json_api`'s stream and
/// columns against the organization's streams).
pub async fn create(engine: &Engine, new: NewConnector) -> Result<Connector> {
    let name = new.name.clone();
    let config = Config::parse(&new.kind, &new.config).map_err(|e| Error::connector(&name, e))?;
    if let Config::JsonApi(api) = &config {
        let org = organization(engine, new.org)
            .await
            .map_err(|e| Error::connector(&name, e))?;
        let stream = engine.stream(&org.name, &api.stream).await.map_err(|e| {
            Error::connector(
                &name,
                format!(
                    "config key stream: {}",
                    match e {
                        engine::Error::Catalog(catalog::Error::NotFound { .. }) => format!(
                            "organization {} has no stream {} (see healthai streams)",
                            org.name, api.stream
                        ),
                        other => other.to_string(),
                    }
                ),
            )
        })?;
        api.check_stream(stream.stream())
            .map_err(|e| Error::connector(&name, e.to_string()))?;
    }
    engine
        .catalog()
        .connectors()
        .create(new)
        .await
        .map_err(|e| Error::connector(&name, e.to_string()))
}

/// The environment variables a connector's configuration names (`${VAR}`), which the nodes
/// that run it need.
pub fn environment_variables(config: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut visit = vec![config];
    while let Some(value) = visit.pop() {
        match value {
            Value::String(text) => {
                for name in http::env_references(text).unwrap_or_default() {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_owned());
                    }
                }
            }
            Value::Array(items) => visit.extend(items),
            Value::Object(map) => visit.extend(map.values()),
            _ => {}
        }
    }
    names.sort();
    names
}

/// What `open_food_facts` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoodsReport {
    /// Products found.
    pub fetched: u64,
    /// Foods written to `foods`.
    pub written: u64,
    /// Barcodes the database does not have.
    pub not_found: Vec<String>,
    /// Meals' `off:` food ids that are not barcodes, hence not asked for.
    pub not_barcodes: Vec<String>,
    /// Nutrient values left out as impossible.
    pub values_dropped: u64,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub connector: String,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    pub retries: u64,
    /// Pages read (`json_api`).
    pub pages: u64,
    /// The batch of a `json_api` run.
    pub ingest: Option<IngestReport>,
    pub foods: Option<FoodsReport>,
    /// The cursor after the run.
    pub cursor: Option<String>,
    /// Why the run failed, as `last_error` keeps it.
    pub error: Option<String>,
    pub next_run_at: DateTime<Utc>,
}

/// Runs every due connector once, each claimed for `lease` (which should outlast a run),
/// and answers their reports.
pub async fn run_due(engine: &Engine, lease: Duration) -> Result<Vec<RunReport>> {
    let mut reports = Vec::new();
    loop {
        let now = Utc::now();
        let claimed = engine
            .catalog()
            .connectors()
            .claim_due(now, now + lease_span(lease))
            .await
            .map_err(|e| Error::connector("scheduler", e.to_string()))?;
        let Some(connector) = claimed else {
            return Ok(reports);
        };
        reports.push(run_claimed(engine, connector).await?);
    }
}

/// Runs the organization's connector `name` now, whatever its schedule.
pub async fn run_now(
    engine: &Engine,
    org: &Organization,
    name: &str,
    lease: Duration,
) -> Result<RunReport> {
    let connectors = engine.catalog().connectors();
    let connector = connectors
        .get_by_name(org.id, name)
        .await
        .map_err(|e| Error::connector(name, e.to_string()))?;
    let now = Utc::now();
    let claimed = connectors
        .claim(connector.id, now, now + lease_span(lease))
        .await
        .map_err(|e| Error::connector(name, e.to_string()))?;
    run_claimed(engine, claimed).await
}

/// Runs [`run_due`] every `every` until the handle is aborted; failures are in the
/// connectors' `last_error`, problems with the catalog in the log.
pub fn spawn(engine: &Engine, every: Duration, lease: Duration) -> tokio::task::JoinHandle<()> {
    let engine = engine.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match run_due(&engine, lease).await {
                Ok(reports) => {
                    for report in reports {
                        match &report.error {
                            None => tracing::info!(
                                connector = %report.connector,
                                requests = report.requests,
                                "connector run finished"
                            ),
                            Some(error) => tracing::warn!(
                                connector = %report.connector,
                                %error,
                                "connector run failed"
                            ),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "connector scheduling failed"),
            }
        }
    })
}

fn lease_span(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1))
}

async fn organization(engine: &Engine, id: catalog::OrgId) -> Result<Organization, String> {
    engine
        .catalog()
        .organizations()
        .list()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| format!("organization {id} does not exist"))
}

/// Runs a connector claimed for this node and records the outcome. Only a catalog that
/// cannot record it is an error; the run's own failure is in the report.
async fn run_claimed(engine: &Engine, connector: Connector) -> Result<RunReport> {
    let started_at = Utc::now();
    let mut report = RunReport {
        connector: connector.name.clone(),
        kind: connector.kind.clone(),
        started_at,
        finished_at: started_at,
        requests: 0,
        retries: 0,
        pages: 0,
        ingest: None,
        foods: None,
        cursor: connector.cursor.clone(),
        error: None,
        next_run_at: started_at,
    };
    let new_cursor = match organization(engine, connector.org).await {
        Ok(org) => run_kind(engine, &connector, org, &mut report).await,
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| {
        report.error = Some(e);
        None
    });
    report.finished_at = Utc::now();
    report.next_run_at =
        report.finished_at + chrono::Duration::seconds(connector.schedule_seconds.max(1));
    let finished = engine
        .catalog()
        .connectors()
        .finish_run(
            connector.id,
            ConnectorRun {
                cursor: new_cursor,
                error: report.error.clone(),
                finished_at: report.finished_at,
                next_run_at: report.next_run_at,
            },
        )
        .await
        .map_err(|e| Error::connector(&connector.name, format!("cannot record the run: {e}")))?;
    report.cursor = finished.cursor;
    Ok(report)
}

/// Runs the connector's kind; answers the cursor to store (`None` keeps the previous one).
/// A failure after a cursor was reached sets `report.error` and still answers it.
async fn run_kind(
    engine: &Engine,
    connector: &Connector,
    org: Organization,
    report: &mut RunReport,
) -> Result<Option<String>, String> {
    let name = connector.name.as_str();
    let mut principal = Principal::operator(org);
    principal.actor = format!("connector:{name}");
    match Config::parse(&connector.kind, &connector.config)? {
        Config::JsonApi(api) => {
            let options = IngestOptions {
                subject: api.subject.clone(),
                source: api.source.clone(),
                ..IngestOptions::default()
            };
            let source = format!("connector:{name}");
            let mut run = Run::begin(engine, &principal, &options, &source, "json_api", 0)
                .await
                .map_err(|e| e.to_string())?;
            let outcome = match Client::new(name, &api.http, &[&api.url]) {
                Ok(mut client) => {
                    let outcome = api
                        .pages(
                            name,
                            &mut run,
                            &mut client,
                            connector.cursor.as_deref(),
                            &mut report.pages,
                        )
                        .await;
                    report.requests = client.requests;
                    report.retries = client.retries;
                    outcome
                }
                Err(e) => Err(e),
            };
            let batch = run
                .finish(outcome.as_ref().err().cloned())
                .await
                .map_err(|e| e.to_string())?;
            report.ingest = Some(batch);
            outcome
        }
        Config::OpenFoodFacts(off) => {
            let mut client = Client::new(name, &off.http, &[])?;
            let mut foods = FoodsReport::default();
            let mut cursor = None;
            let outcome = off
                .run(
                    engine,
                    &principal,
                    &mut client,
                    connector.cursor.as_deref(),
                    &mut cursor,
                    &mut foods,
                )
                .await;
            report.requests = client.requests;
            report.retries = client.retries;
            report.foods = Some(foods);
            if let Err(e) = outcome {
                report.error = Some(e);
            }
            Ok(cursor)
        }
    }
}

/// The message of a response whose status ends the run.
fn status_problem(status: StatusCode, target: &Target) -> String {
    let hint = if status.is_redirection() {
        " (a redirect to another host is not followed: the connector's headers may carry \
         credentials)"
    } else {
        match status.as_u16() {
            401 | 403 => " (check the credentials the headers take from the environment)",
            404 => " (check the URL)",
            _ => "",
        }
    };
    format!("HTTP {} from {}{hint}", status.as_u16(), target.shown)
}

/// Percent-encodes all but the unreserved characters of RFC 3986, for a value in a URL.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_are_named() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
        }
        assert!("csv".parse::<Kind>().unwrap_err().contains("json_api"));
    }

    #[test]
    fn environment_variables_are_listed_once() {
        let config = json!({"url": "https://x/?k=${KEY}", "headers": {"A": "Bearer ${TOKEN}", "B": "${KEY}"}});
        assert_eq!(environment_variables(&config), ["KEY", "TOKEN"]);
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(percent_encode("a b/é+${X}"), "a%20b%2F%C3%A9%2B%24%7BX%7D");
        assert_eq!(percent_encode("2026-01-01_x.~"), "2026-01-01_x.~");
    }
}
