//! Writes over HTTP: NDJSON or CSV rows for one stream, and InfluxDB line protocol. A body is
//! one ingest batch, cleaned like a file (`ingest::ingest_inputs`), with its quality report
//! and quarantine; the answer is the batch's summary.

use std::{collections::BTreeMap, io::Read};

use axum::{
    Extension,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use catalog::AuditOutcome;
use engine::Principal;
use ingest::{
    IngestOptions, IngestReport, Silent,
    formats::{Format, Input, Precision},
};
use serde::Serialize;

use super::{AppState, Caller, QueryParams, RequestId, api::BATCH_HEADER, json, metrics};
use crate::{Error, Result};

/// Rejected rows listed in an answer; the quarantine keeps more.
const REJECTIONS_SHOWN: usize = 100;

pub(crate) async fn records(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(stream): Path<String>,
    Extension(RequestId(id)): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["format", "subject", "source"])?;
    state
        .auth
        .engine()
        .catalog()
        .streams()
        .get(principal.org.id, &stream)
        .await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = match params.get("format") {
        Some("csv" | "tsv") => Format::Csv,
        Some("ndjson" | "jsonl" | "json") => Format::Ndjson,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "unknown format '{other}': ndjson or csv"
            )));
        }
        None if content_type.starts_with("text/csv")
            || content_type.starts_with("text/tab-separated-values") =>
        {
            Format::Csv
        }
        None => Format::Ndjson,
    };
    let options = IngestOptions {
        format,
        stream: Some(stream.clone()),
        subject: params.get("subject").map(str::to_owned),
        source: params.get("source").map(str::to_owned),
        ..IngestOptions::default()
    };
    let source = format!("HTTP POST /api/v1/streams/{stream}/records (request {id})");
    write(&state, &principal, &headers, &source, &id, body, &options).await
}

pub(crate) async fn line_protocol(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Extension(RequestId(id)): Extension<RequestId>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["precision", "bucket", "db", "org"])?;
    for name in ["bucket", "db"] {
        if let Some(given) = params.get(name)
            && given != principal.org.name
        {
            return Err(Error::Denied(format!(
                "{name} '{given}' is not this token's organization; name {} or leave it out \
                 (measurements name the streams)",
                principal.org.name
            )));
        }
    }
    let precision = params
        .get("precision")
        .map(str::parse::<Precision>)
        .transpose()
        .map_err(Error::Invalid)?
        .unwrap_or_default();
    let options = IngestOptions {
        format: Format::LineProtocol(precision),
        ..IngestOptions::default()
    };
    let source = format!("HTTP POST /api/v2/write (request {id})");
    write(&state, &principal, &headers, &source, &id, body, &options).await
}

/// A body, decompressed when the client says it is gzip (Telegraf's default), within the
/// same limit as a plain body.
fn decoded(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Vec<u8>> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Error::Invalid(format!("the gzip body does not decompress: {e}")))?;
            if out.len() > limit {
                return Err(Error::TooLarge(format!(
                    "the body decompresses to more than the server's limit of {} MiB",
                    limit >> 20
                )));
            }
            Ok(out)
        }
        other => Err(Error::Invalid(format!(
            "unsupported Content-Encoding '{other}': send the body as is or gzip"
        ))),
    }
}

async fn write(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    source: &str,
    request_id: &str,
    body: Bytes,
    options: &IngestOptions,
) -> Result<Response> {
    let body = decoded(headers, body, state.config.max_body_bytes)?;
    if body.is_empty() {
        return Err(Error::Invalid("the request body is empty".into()));
    }
    let engine = state.auth.engine();
    // A dot in the name would read as an extension (`.zip` opens an archive).
    let input = Input::bytes(&format!("request {}", request_id.replace('.', "-")), body);
    let outcome =
        ingest::ingest_inputs(engine, principal, source, vec![input], options, &Silent).await;
    let audit = match &outcome {
        Ok(report) => (
            AuditOutcome::Ok,
            Some(report.totals().rows_accepted as i64),
            None,
        ),
        Err(ingest::Error::Engine { source, .. })
            if matches!(**source, engine::Error::Denied(_)) =>
        {
            (AuditOutcome::Denied, None, Some(source.to_string()))
        }
        Err(e) => (AuditOutcome::Error, None, Some(e.to_string())),
    };
    engine.audit(principal, "ingest", Some(source), audit.1, audit.0, audit.2);
    let report = outcome?;
    metrics::ingested(&report);
    if let Some((file, problem)) = report.failed.first() {
        return Err(Error::Ingest(ingest::Error::File {
            file: file.clone(),
            problem: format!("{problem} (batch {})", report.batch),
        }));
    }
    let mut response = json(StatusCode::OK, &Summary::of(&report))?;
    if let Ok(value) = HeaderValue::from_str(&report.batch.to_string()) {
        response.headers_mut().insert(BATCH_HEADER, value);
    }
    Ok(response)
}

#[derive(Serialize)]
struct RuleView {
    column: String,
    rule: &'static str,
    checked: u64,
    corrected: u64,
    rejected: u64,
    flagged: u64,
}

#[derive(Serialize)]
struct StreamView {
    rows_in: u64,
    rows_accepted: u64,
    rows_rejected: u64,
    duplicates: u64,
    rules: Vec<RuleView>,
}

#[derive(Serialize)]
struct RejectionView {
    stream: String,
    file: String,
    record: u64,
    column: Option<String>,
    rule: &'static str,
    reason: String,
    value: Option<String>,
}

#[derive(Serialize)]
struct FailedView {
    file: String,
    problem: String,
}

/// The answer to a write: the batch and its quality summary.
#[derive(Serialize)]
struct Summary {
    batch_id: i64,
    status: &'static str,
    rows_in: u64,
    rows_accepted: u64,
    rows_rejected: u64,
    rows_corrected: u64,
    duplicates: u64,
    streams: BTreeMap<String, StreamView>,
    rejections: Vec<RejectionView>,
    rejections_total: u64,
    failed: Vec<FailedView>,
}

impl Summary {
    fn of(report: &IngestReport) -> Self {
        let totals = report.totals();
        Summary {
            batch_id: report.batch.0,
            status: "committed",
            rows_in: totals.rows_in,
            rows_accepted: totals.rows_accepted,
            rows_rejected: totals.rejected(),
            rows_corrected: totals.corrected(),
            duplicates: totals.duplicates(),
            streams: report
                .streams
                .iter()
                .map(|(name, stats)| {
                    let rules = stats
                        .rules
                        .iter()
                        .filter(|(_, c)| c.checked + c.rejected + c.corrected + c.flagged > 0)
                        .map(|((column, rule), count)| RuleView {
                            column: column.clone(),
                            rule,
                            checked: count.checked,
                            corrected: count.corrected,
                            rejected: count.rejected,
                            flagged: count.flagged,
                        })
                        .collect();
                    (
                        name.clone(),
                        StreamView {
                            rows_in: stats.rows_in,
                            rows_accepted: stats.rows_accepted,
                            rows_rejected: stats.rejected(),
                            duplicates: stats.duplicates(),
                            rules,
                        },
                    )
                })
                .collect(),
            rejections: report
                .rejections
                .iter()
                .take(REJECTIONS_SHOWN)
                .map(|r| RejectionView {
                    stream: r.stream.to_string(),
                    file: r.file.to_string(),
                    record: r.record,
                    column: r.column.clone(),
                    rule: r.rule,
                    reason: r.reason.clone(),
                    value: r.value.clone(),
                })
                .collect(),
            rejections_total: report.rejections_total,
            failed: report
                .failed
                .iter()
                .map(|(file, problem)| FailedView {
                    file: file.clone(),
                    problem: problem.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_bodies_decompress_within_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&vec![b'a'; 10_000]).unwrap();
        let compressed = Bytes::from(gz.finish().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            decoded(&headers, compressed.clone(), 20_000).unwrap().len(),
            10_000
        );
        let err = decoded(&headers, compressed, 5_000).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(decoded(&headers, Bytes::from_static(b"x"), 10).is_err());
        assert_eq!(
            decoded(&HeaderMap::new(), Bytes::from_static(b"plain"), 10).unwrap(),
            b"plain"
        );
    }
}
