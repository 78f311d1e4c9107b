//! Streams and their schemas; ingest batches with their quality reports and quarantine.

use std::collections::HashMap;

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
    response::Response,
};
use catalog::{BatchId, IngestBatch, Permission};
use engine::Principal;
use serde::Serialize;

use super::{AppState, Caller, QueryParams, json};
use crate::{Error, Result};

const DEFAULT_BATCHES: i64 = 50;
const MAX_BATCHES: i64 = 1000;
/// Quarantined rows shown with a batch.
const QUARANTINE_SAMPLE: i64 = 100;

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Response> {
    let streams = state
        .auth
        .engine()
        .catalog()
        .streams()
        .list(principal.org.id)
        .await?;
    json(StatusCode::OK, &streams)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(stream): Path<String>,
) -> Result<Response> {
    let stream = state
        .auth
        .engine()
        .catalog()
        .streams()
        .get(principal.org.id, &stream)
        .await?;
    json(StatusCode::OK, &stream)
}

/// Whether the principal sees this batch: every batch when they read the whole
/// organization, else those they wrote.
fn visible(principal: &Principal, batch: &IngestBatch) -> bool {
    batch.org == principal.org.id
        && (principal.can(Permission::ReadAllSubjects)
            || (batch.created_by.is_some() && batch.created_by == principal.user))
}

pub(crate) async fn batches(
    State(state): State<AppState>,
    Caller(principal): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["limit"])?;
    let limit = match params.get("limit") {
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_BATCHES).contains(n))
            .ok_or_else(|| {
                Error::Invalid(format!("limit must be a number from 1 to {MAX_BATCHES}"))
            })?,
        None => DEFAULT_BATCHES,
    };
    let catalog = state.auth.engine().catalog();
    let everyone = principal.can(Permission::ReadAllSubjects);
    // Others' batches are filtered out here, so read more of them to fill the page.
    let read = if everyone { limit } else { MAX_BATCHES };
    let batches: Vec<IngestBatch> = catalog
        .ingest()
        .list_batches(principal.org.id, read)
        .await?
        .into_iter()
        .filter(|b| visible(&principal, b))
        .take(limit as usize)
        .collect();
    json(StatusCode::OK, &batches)
}

#[derive(Serialize)]
struct QualityView {
    stream: String,
    column: String,
    rule: String,
    rows_checked: i64,
    rows_corrected: i64,
    rows_rejected: i64,
    rows_flagged: i64,
    completeness: Option<f64>,
}

#[derive(Serialize)]
struct QuarantineView {
    stream: Option<String>,
    file: String,
    record: Option<i64>,
    column: Option<String>,
    rule: String,
    reason: String,
    value: Option<String>,
}

#[derive(Serialize)]
struct BatchDetail {
    batch: IngestBatch,
    quality: Vec<QualityView>,
    quarantine: Option<Vec<QuarantineView>>,
}

pub(crate) async fn batch(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::Invalid(format!("batch id '{id}' is not a number")))?;
    let catalog = state.auth.engine().catalog();
    let not_found = || Error::NotFound(format!("no ingest batch {id} you may read"));
    let batch = match catalog.ingest().get_batch(BatchId(id)).await {
        Ok(batch) => batch,
        Err(catalog::Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !visible(&principal, &batch) {
        return Err(not_found());
    }
    let names: HashMap<_, _> = catalog
        .streams()
        .list(principal.org.id)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let name = |id| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let quality = catalog
        .ingest()
        .quality_reports(batch.id)
        .await?
        .into_iter()
        .map(|q| QualityView {
            stream: name(q.stream),
            column: q.column,
            rule: q.rule,
            rows_checked: q.rows_checked,
            rows_corrected: q.rows_corrected,
            rows_rejected: q.rows_rejected,
            rows_flagged: q.rows_flagged,
            completeness: q.completeness,
        })
        .collect();
    // Rejected values are raw data: shown to those who see the quarantine table, and to the
    // writer who sent them.
    let shown = principal.can(Permission::ReadAudit)
        || (batch.created_by.is_some() && batch.created_by == principal.user);
    let quarantine = if shown {
        Some(
            catalog
                .ingest()
                .quarantined(batch.id, QUARANTINE_SAMPLE)
                .await?
                .into_iter()
                .map(|q| QuarantineView {
                    stream: q.stream.map(name),
                    file: q.file,
                    record: q.record,
                    column: q.column,
                    rule: q.rule,
                    reason: q.reason,
                    value: q.value,
                })
                .collect(),
        )
    } else {
        None
    };
    json(
        StatusCode::OK,
        &BatchDetail {
            batch,
            quality,
            quarantine,
        },
    )
}
