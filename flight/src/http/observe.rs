//! Liveness, readiness, metrics and the OpenAPI document.

use std::time::{Duration, Instant};

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AppState, json, metrics};
use crate::Result;

/// How long a readiness probe waits for the catalog or the store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn health() -> Result<Response> {
    json(
        StatusCode::OK,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    )
}

/// Runs a probe under the timeout: (ok, milliseconds, error).
async fn probe<E: std::fmt::Display>(
    check: impl Future<Output = Result<(), E>>,
) -> serde_json::Value {
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, check).await;
    let millis = started.elapsed().as_secs_f64() * 1e3;
    match outcome {
        Ok(Ok(())) => json!({ "ok": true, "millis": millis }),
        Ok(Err(e)) => json!({ "ok": false, "millis": millis, "error": e.to_string() }),
        Err(_) => json!({
            "ok": false, "millis": millis,
            "error": format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        }),
    }
}

pub(crate) async fn ready(State(state): State<AppState>) -> Result<Response> {
    let engine = state.auth.engine();
    let catalog = probe(async { engine.catalog().organizations().list().await.map(|_| ()) }).await;
    let store = probe(engine.check_store()).await;
    let ready = catalog["ok"] == true && store["ok"] == true;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = json(
        status,
        &json!({
            "status": if ready { "ready" } else { "unavailable" },
            "checks": { "catalog": catalog, "store": store },
        }),
    )?;
    // Not an error body: probes read the checks.
    response.extensions_mut().insert(super::Probe);
    Ok(response)
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let text = metrics::render(state.auth.engine().catalog().as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}
