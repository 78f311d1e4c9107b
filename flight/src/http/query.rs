//! `POST /api/v1/query`: SQL with parameters, results streamed in the format asked for.

use arrow::array::RecordBatch;
use axum::{
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use catalog::AuditOutcome;
use datafusion::{common::ParamValues, scalar::ScalarValue};
use engine::{Engine, Principal, QueryStream};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::{
    AppState, Caller, QueryParams,
    cache::{self, Question},
    encode::{Encoder, ResultFormat},
    json_body,
};
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
    format: Option<String>,
}

pub(crate) async fn run(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["format"])?;
    let request: QueryRequest = json_body(&body, "query (sql, params, format)")?;
    let format = match request.format.as_deref().or(params.get("format")) {
        Some(name) => ResultFormat::from_name(name)?,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .and_then(ResultFormat::from_accept)
            .unwrap_or(ResultFormat::Json),
    };
    let engine = state.auth.engine();
    let Some(age) = cache::accepted_age(&headers) else {
        let values = bind(engine, &principal, &request.sql, &request.params).await?;
        return stream(engine, &principal, &request.sql, values, format).await;
    };
    let question = Question::new(&principal, &request.sql, &request.params, format.name());
    // Read before the query runs: a change while it runs makes its answer outdated at once.
    let data_version = engine.data_version();
    if let Some((answer, elapsed)) = state.answers.get(&question, data_version, age) {
        engine.audit(
            &principal,
            "query",
            Some(&request.sql),
            Some(answer.rows),
            AuditOutcome::Ok,
            Some("answered from the result cache".to_owned()),
        );
        let mut response = reply(format, Body::from(answer.body));
        let headers = response.headers_mut();
        headers.insert(header::AGE, elapsed.as_secs().into());
        headers.insert(CACHE_STATUS, HeaderValue::from_static("hit"));
        return Ok(response);
    }
    let values = bind(engine, &principal, &request.sql, &request.params).await?;
    let mut rows = engine.query_as(&principal, &request.sql, values).await?;
    let mut encoder = format.encoder(rows.schema().clone())?;
    let mut body = Vec::new();
    let mut count = 0i64;
    while let Some(batch) = rows.next().await.transpose()? {
        count += batch.num_rows() as i64;
        body.extend(encoder.batch(&batch)?);
        if body.len() > cache::MAX_ANSWER_BYTES {
            // Too large to keep: what is encoded goes first, the rest as it comes.
            return Ok(reply(format, continued(body, rows, encoder)));
        }
    }
    body.extend(encoder.finish()?);
    let body = Bytes::from(body);
    state
        .answers
        .put(question, body.clone(), count, data_version);
    let mut response = reply(format, Body::from(body));
    response
        .headers_mut()
        .insert(CACHE_STATUS, HeaderValue::from_static("miss"));
    Ok(response)
}

/// Says whether an answer came from the result cache (`hit`) or was computed and kept
/// (`miss`).
const CACHE_STATUS: HeaderName = HeaderName::from_static("x-healthai-cache");

/// Parameters as the query's placeholders want them: JSON values, cast to the type the query
/// implies for each (a string compared with `time` becomes a timestamp).
pub(crate) async fn bind(
    engine: &Engine,
    principal: &Principal,
    sql: &str,
    params: &[Value],
) -> Result<Option<ParamValues>> {
    if params.is_empty() {
        return Ok(None);
    }
    let prepared = engine.prepare_as(principal, sql).await?;
    if prepared.parameters.len() != params.len() {
        return Err(Error::Invalid(format!(
            "the query has {} placeholder(s) but {} parameter(s) were given",
            prepared.parameters.len(),
            params.len()
        )));
    }
    let mut values = Vec::with_capacity(params.len());
    for (i, (value, (_, wanted))) in params.iter().zip(&prepared.parameters).enumerate() {
        let number = i + 1;
        let scalar = scalar(value)
            .map_err(|problem| Error::Invalid(format!("parameter ${number}: {problem}")))?;
        let scalar = match wanted {
            Some(wanted) if scalar.is_null() => ScalarValue::try_from(wanted).map_err(|e| {
                Error::Invalid(format!(
                    "parameter ${number}: no null of type {wanted}: {e}"
                ))
            })?,
            Some(wanted) if scalar.data_type() != *wanted => {
                scalar.cast_to(wanted).map_err(|_| {
                    Error::Invalid(format!(
                        "parameter ${number}: {value} cannot be used as {wanted}"
                    ))
                })?
            }
            _ => scalar,
        };
        values.push(scalar);
    }
    Ok(Some(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    )))
}

fn scalar(value: &Value) -> Result<ScalarValue, String> {
    Ok(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(Some(
                n.as_f64().ok_or_else(|| format!("{n} is out of range"))?,
            )),
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Value::Array(_) | Value::Object(_) => {
            return Err("use a string, number, boolean or null".into());
        }
    })
}

/// Runs a query and streams its rows. The first batch is computed before the status is sent,
/// so that errors found early (most of them) are answered with their status; a failure later
/// cuts the response short.
pub(crate) async fn stream(
    engine: &Engine,
    principal: &Principal,
    sql: &str,
    params: Option<ParamValues>,
    format: ResultFormat,
) -> Result<Response> {
    let mut rows = engine.query_as(principal, sql, params).await?;
    let mut encoder = format.encoder(rows.schema().clone())?;
    let head = match rows.next().await.transpose()? {
        Some(batch) => encoder.batch(&batch)?,
        None => return Ok(reply(format, Body::from(encoder.finish()?))),
    };
    Ok(reply(format, continued(head, rows, encoder)))
}

/// A response body: `head`, then the encoding of the rest of `rows`.
fn continued(head: Vec<u8>, rows: QueryStream, encoder: Box<dyn Encoder>) -> Body {
    let rest = futures::stream::unfold(Some((rows, encoder)), |state| async move {
        let (mut rows, mut encoder) = state?;
        let next: Result<Vec<u8>> = match rows.next().await {
            Some(Ok(batch)) => encoder.batch(&batch),
            Some(Err(e)) => Err(e.into()),
            None => return Some((encoder.finish(), None)),
        };
        match next {
            Ok(bytes) => Some((Ok(bytes), Some((rows, encoder)))),
            Err(e) => {
                tracing::warn!(target: "healthai::http", error = %e, "a query failed while its result was being sent");
                Some((Err(e), None))
            }
        }
    });
    let body =
        futures::stream::once(async { Ok(head) })
            .chain(rest)
            .map(|chunk: Result<Vec<u8>>| {
                chunk
                    .map(Bytes::from)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            });
    Body::from_stream(body)
}

fn reply(format: ResultFormat, body: Body) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// Runs a query as the principal and collects its rows (for answers built from small
/// queries).
pub(crate) async fn collect(
    engine: &Engine,
    principal: &Principal,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<Vec<RecordBatch>> {
    let params = (!params.is_empty())
        .then(|| ParamValues::List(params.into_iter().map(Into::into).collect()));
    Ok(engine
        .query_as(principal, sql, params)
        .await?
        .collect()
        .await?)
}
