//! The HTTP surface (axum): the REST API for the dashboard, scripts and services, the InfluxDB
//! v2 write endpoint for gateways, and observability (`/metrics`, `/health`, `/ready`).
//!
//! Every route is declared once, in [`api::routes`], with what its OpenAPI operation says
//! about it; the router and the document at `/api/v1/openapi.json` are both built from that
//! table, so no endpoint can be served undocumented. Callers authenticate as on the gRPC port
//! (the same users, tokens and [`Authenticator`]), and the engine applies the same access
//! policy, limits and audit.
//!
//! At the edge, one middleware gives each request an id (`x-request-id`, taken from the
//! client when it is sensible, else generated), renders every error as
//! `{"error": {"code", "message", "request_id"}}`, adds the security headers, counts the
//! request in `/metrics` and logs it.

mod api;
mod auth;
mod cache;
mod dashboard;
mod encode;
mod ingest;
mod metrics;
mod observe;
mod openapi;
mod query;
mod streams;
mod subjects;

use std::{
    borrow::Cow,
    collections::BTreeMap,
    future::{Future, IntoFuture},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use engine::Principal;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{Authenticator, Error, Kind, Result};

/// How the audit log and the metrics name this interface.
const INTERFACE: &str = "rest";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a client.
const REQUEST_ID_CHARS: usize = 128;
/// Every response is for this origin only; the dashboard page loads nothing from elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
                   frame-ancestors 'none'";

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes (writes, queries).
    pub max_body_bytes: usize,
    /// Origins whose pages may call the API from a browser (`*` for any); none by default.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 64 << 20,
            cors_origins: Vec::new(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub auth: Arc<Authenticator>,
    pub config: HttpConfig,
    /// The OpenAPI document, rendered once.
    pub openapi: Bytes,
    /// The methods of each path, for the answer to a method it does not have.
    pub methods: BTreeMap<&'static str, Vec<Method>>,
    /// Query answers kept for clients that accept recent ones.
    pub answers: cache::AnswerCache,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The HTTP application: every route of [`api::routes`] with the edge middleware. Fails on
/// a configuration that cannot work (a CORS origin that is not one).
pub fn router(auth: Arc<Authenticator>, config: HttpConfig) -> Result<Router> {
    let routes = api::routes();
    let document = openapi::document(&routes);
    let mut methods: BTreeMap<&'static str, Vec<Method>> = BTreeMap::new();
    for route in &routes {
        methods
            .entry(route.path)
            .or_default()
            .push(route.method.clone());
    }
    let openapi = serde_json::to_vec_pretty(&document)
        .map_err(|e| Error::Internal(format!("OpenAPI document: {e}")))?;
    let cors = cors(&config.cors_origins)?;
    let limit = config.max_body_bytes;
    let state = AppState(Arc::new(Shared {
        auth,
        config,
        openapi: Bytes::from(openapi),
        methods,
        answers: cache::AnswerCache::default(),
    }));
    let mut router = Router::new();
    for (path, methods) in api::by_path(routes) {
        router = router.route(path, methods);
    }
    let mut router = router
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(limit));
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    Ok(router
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state))
}

/// Serves the application ([`router`]) on `listener` until `shutdown` completes, then lets
/// requests in progress finish for at most `grace`.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .into_future();
    let grace_over = async move {
        match stopped.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result.map_err(|e| Error::Internal(format!("the HTTP server stopped: {e}"))),
        () = grace_over => Ok(()),
    }
}

fn cors(origins: &[String]) -> Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|origin| {
                let origin_text = origin.trim_end_matches('/');
                let host = origin_text
                    .strip_prefix("https://")
                    .or_else(|| origin_text.strip_prefix("http://"));
                let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', ' ']));
                HeaderValue::from_str(origin_text)
                    .ok()
                    .filter(|_| valid)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "CORS origin '{origin}' is not an origin such as https://dashboard.example.org or *"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                REQUEST_ID,
            ])
            .expose_headers([REQUEST_ID, api::BATCH_HEADER])
            .max_age(Duration::from_secs(600)),
    ))
}

async fn no_route(method: Method, uri: axum::http::Uri) -> Error {
    Error::NotFound(format!(
        "no route for {method} {}; the API is described at /api/v1/openapi.json",
        uri.path()
    ))
}

/// Marks an error status whose body is the answer itself (a failed readiness probe), not an
/// error to render.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe;

/// The id of a request, in its extensions for handlers that log or audit.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

/// The code and message of an error response, attached by [`Error`]'s response for the edge
/// middleware to render with the request id.
#[derive(Debug, Clone)]
struct ErrorInfo {
    code: &'static str,
    message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let (status, code) = kind.http();
        let message = self.to_string();
        if matches!(kind, Kind::Internal | Kind::Unavailable) {
            tracing::warn!(target: "healthai::http", code, %message, "request failed");
        }
        let mut response = StatusCode::from_u16(status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
        let headers = response.headers_mut();
        match kind {
            Kind::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"healthai\""),
                );
            }
            Kind::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
            .extensions_mut()
            .insert(ErrorInfo { code, message });
        response
    }
}

/// The authenticated caller: `Authorization: Bearer TOKEN`, `Basic …`, or `Token TOKEN` as
/// InfluxDB clients send it.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| {
                value.to_str().map_err(|_| {
                    Error::Unauthenticated("the authorization header is not text".into())
                })
            })
            .transpose()?;
        let header = header.map(|value| match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("token") => {
                Cow::Owned(format!("Bearer {}", token.trim()))
            }
            _ => Cow::Borrowed(value),
        });
        state
            .auth
            .authenticate(header.as_deref(), INTERFACE)
            .await
            .map(Caller)
    }
}

/// A JSON request body, with a message that says what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::Invalid(format!("the request body is not a valid {what}: {e}")))
}

/// A JSON response.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Response> {
    let body = serde_json::to_vec(value)
        .map_err(|e| Error::Internal(format!("cannot encode the response: {e}")))?;
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response())
}

/// The pairs of a query string, decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of one query parameter, refusing unknown ones so typos do not go unnoticed.
#[derive(Debug)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Self> {
        let pairs = query_pairs(query);
        if let Some((unknown, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(Error::Invalid(format!(
                "unknown query parameter '{unknown}' (this endpoint takes: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(QueryParams(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// The edge of every request: its id, JSON errors, security headers, metrics, the log line.
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= REQUEST_ID_CHARS
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let mut response = next.run(request).await;
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if failed && response.extensions().get::<Probe>().is_none() {
        let request = RequestLine {
            id: &id,
            method: &method,
            path: &path,
            route: &route,
        };
        response = error_body(response, &request, &state).await;
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    security_headers(headers);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::request(&method, &route, status, elapsed);
    tracing::info!(
        target: "healthai::http",
        request_id = %id,
        method = %method,
        path = %path,
        status,
        millis = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}

fn security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(headers, header::CACHE_CONTROL, "no-store");
}

/// What an error body says about the request it answers.
struct RequestLine<'a> {
    id: &'a str,
    method: &'a Method,
    path: &'a str,
    /// The route's path template, `unmatched` when none matched.
    route: &'a str,
}

/// Renders an error response as the JSON error body. Errors of the handlers carry their code
/// and message; those of the router and the extractors (405, 413, a malformed path) are
/// described from their status.
async fn error_body(response: Response, request: &RequestLine<'_>, state: &AppState) -> Response {
    let (mut parts, body) = response.into_parts();
    let (code, message) = match parts.extensions.remove::<ErrorInfo>() {
        Some(info) => (info.code, info.message),
        None => {
            let text = axum::body::to_bytes(body, 4096)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                .unwrap_or_default();
            describe(parts.status, &text, request, state)
        }
    };
    let body = serde_json::json!({
        "error": { "code": code, "message": message, "request_id": request.id }
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

fn describe(
    status: StatusCode,
    text: &str,
    request: &RequestLine<'_>,
    state: &AppState,
) -> (&'static str, String) {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = state
                .methods
                .get(request.route)
                .map(|methods| {
                    methods
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "see /api/v1/openapi.json".into());
            (
                "method_not_allowed",
                format!(
                    "{} is not allowed on {} (allowed: {allowed})",
                    request.method, request.path
                ),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!(
                "the request body is larger than the server's limit of {} MiB (--max-body-mib); \
                 send it in smaller parts",
                state.config.max_body_bytes as f64 / (1 << 20) as f64
            ),
        ),
        status => {
            let code = match status.as_u16() {
                400 => "invalid_argument",
                401 => "unauthenticated",
                403 => "permission_denied",
                404 => "not_found",
                415 => "unsupported_media_type",
                422 => "unprocessable",
                429 => "resource_exhausted",
                503 => "unavailable",
                s if s >= 500 => "internal",
                _ => "invalid_argument",
            };
            let message = if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_owned()
            } else {
                text.to_owned()
            };
            (code, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_must_be_origins() {
        assert!(cors(&[]).unwrap().is_none());
        assert!(cors(&["*".into()]).unwrap().is_some());
        assert!(
            cors(&[
                "https://dash.example.org/".into(),
                "http://127.0.0.1:3000".into()
            ])
            .is_ok()
        );
        for wrong in [
            "dash.example.org",
            "https://dash.example.org/app",
            "https://",
            "ftp://x",
        ] {
            let err = cors(&[wrong.into()]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{wrong}: {err}");
        }
    }

    #[test]
    fn query_parameters_are_decoded_and_checked() {
        let params = QueryParams::parse(
            Some("subject=S%201&source=&source=a+b"),
            &["subject", "source"],
        )
        .unwrap();
        assert_eq!(params.get("subject"), Some("S 1"));
        assert_eq!(params.get("source"), Some("a b"));
        assert_eq!(params.get("format"), None);
        let err = QueryParams::parse(Some("limt=5"), &["limit"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown query parameter 'limt' (this endpoint takes: limit)"
        );
        assert!(QueryParams::parse(None, &[]).is_ok());
    }
}
