//! The route table: every endpoint, once, with its documentation; and the schemas the
//! document refers to.

use std::collections::BTreeMap;

use axum::{http::HeaderName, routing::MethodRouter};
use serde_json::{Value, json};

use super::{
    AppState, auth, dashboard, ingest, observe,
    openapi::{Route, schema},
    query, streams, subjects,
};

/// The header naming the ingest batch a write created.
pub(crate) const BATCH_HEADER: HeaderName = HeaderName::from_static("x-healthai-batch");

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const CSV: &str = "text/csv";
const ARROW: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";
const ZIP: &str = "application/zip";
const TEXT: &str = "text/plain";

fn string() -> Value {
    json!({ "type": "string" })
}

fn date() -> Value {
    json!({ "type": "string", "format": "date" })
}

fn binary() -> Value {
    json!({ "type": "string", "format": "binary" })
}

/// Every route of the HTTP server.
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::get("/", dashboard::index)
            .op("index", "dashboard", "The dashboard's page")
            .public()
            .reply(200, "An HTML page.", &[("text/html", string())]),
        Route::get("/dashboard/{file}", dashboard::file)
            .op("dashboardFile", "dashboard", "A script, style sheet or icon of the dashboard")
            .public()
            .path_param("file", "The file, e.g. app.js", json!("app.js"))
            .reply(
                200,
                "The file.",
                &[
                    ("text/javascript", string()),
                    ("text/css", string()),
                    ("image/svg+xml", string()),
                ],
            )
            .errors(&[404]),
        Route::get("/health", observe::health)
            .op("health", "observability", "Liveness: the process answers")
            .public()
            .reply(200, "The server is up.", &[(JSON, schema("Health"))]),
        Route::get("/ready", observe::ready)
            .op("ready", "observability", "Readiness: the catalog and the object store answer")
            .public()
            .reply(200, "Ready to serve.", &[(JSON, schema("Ready"))])
            .reply(503, "A dependency does not answer.", &[(JSON, schema("Ready"))]),
        Route::get("/metrics", observe::metrics)
            .op("metrics", "observability", "Metrics in the Prometheus text format")
            .describe(
                "Ingest rows and rejections, flush and compaction durations, query latency by \
                 interface, HTTP requests by route, the catalog connection pool and object \
                 store errors.",
            )
            .public()
            .reply(200, "Prometheus text exposition format 0.0.4.", &[(TEXT, string())]),
        Route::get("/api/v1/openapi.json", observe::openapi)
            .op("openapi", "observability", "This document")
            .public()
            .reply(200, "The OpenAPI 3.1 document.", &[(JSON, json!({ "type": "object" }))]),
        Route::post("/api/v1/auth/login", auth::login)
            .op("login", "auth", "Log in with a username and password")
            .describe(
                "The username is an email, or ORG/EMAIL when the email has accounts in several \
                 organizations. The access token lasts 15 minutes; the refresh token gets new ones.",
            )
            .public()
            .body(
                JSON,
                schema("LoginRequest"),
                Some(json!({ "username": "admin@example.org", "password": "admin-password" })),
            )
            .reply(200, "Tokens.", &[(JSON, schema("Tokens"))])
            .errors(&[400, 401]),
        Route::post("/api/v1/auth/refresh", auth::refresh)
            .op("refresh", "auth", "Exchange a refresh token for new tokens")
            .describe("The refresh token is rotated: the one sent stops working.")
            .public()
            .body(
                JSON,
                schema("RefreshRequest"),
                Some(json!({ "refresh_token": "a refresh token from login" })),
            )
            .reply(200, "New tokens.", &[(JSON, schema("Tokens"))])
            .errors(&[400, 401]),
        Route::post("/api/v1/auth/logout", auth::logout)
            .op("logout", "auth", "End the login a refresh token belongs to")
            .public()
            .body(
                JSON,
                schema("RefreshRequest"),
                Some(json!({ "refresh_token": "a refresh token from login" })),
            )
            .reply(204, "Logged out.", &[])
            .errors(&[400, 401]),
        Route::post("/api/v1/query", query::run)
            .op("query", "query", "Run a read-only SQL query")
            .describe(
                "`$1` or `?` placeholders take `params` (strings are cast to the type the query \
                 implies, e.g. timestamps). The format is `format` in the body or the query \
                 string, else the Accept header, else JSON (an array of objects). Results are \
                 streamed; the caller's row scope, the memory and time limits and the audit log \
                 apply as over Flight SQL.",
            )
            .query("format", "json, ndjson, csv, arrow or parquet", schema("ResultFormat"))
            .body(
                JSON,
                schema("QueryRequest"),
                Some(json!({
                    "sql": "SELECT count(*) AS readings FROM heart_rate WHERE time >= $1",
                    "params": ["2026-03-01T00:00:00Z"],
                })),
            )
            .reply(
                200,
                "The rows.",
                &[
                    (JSON, json!({ "type": "array", "items": { "type": "object" } })),
                    (NDJSON, string()),
                    (CSV, string()),
                    (ARROW, binary()),
                    (PARQUET, binary()),
                ],
            )
            .errors(&[400, 403, 413, 429, 503]),
        Route::post("/api/v1/streams/{stream}/records", ingest::records)
            .op("writeRecords", "ingest", "Write NDJSON or CSV rows to a stream")
            .describe(
                "The body is cleaned like a file of `healthai ingest`: types, units, times, \
                 ranges and duplicates; bad rows go to the quarantine and the others land. The \
                 answer is the batch and its quality summary. CSV is chosen by `format=csv` or a \
                 `text/csv` body, else NDJSON.",
            )
            .path_param("stream", "The stream, e.g. heart_rate", json!("heart_rate"))
            .query("format", "ndjson or csv (default: from Content-Type)", string())
            .query("subject", "The subject (pseudonym) of rows that name none", string())
            .query("source", "The source of rows that name none", string())
            .body(
                NDJSON,
                string(),
                Some(json!(
                    "{\"subject\": \"S1\", \"source\": \"watch\", \"time\": \"2026-03-01T10:00:00Z\", \"bpm\": 64}\n"
                )),
            )
            .body(CSV, string(), None)
            .reply(200, "The batch's quality summary.", &[(JSON, schema("IngestReport"))])
            .errors(&[400, 403, 404, 413, 422, 503]),
        Route::post("/api/v2/write", ingest::line_protocol)
            .op("writeLineProtocol", "ingest", "Write InfluxDB line protocol (InfluxDB v2 API)")
            .describe(
                "Each measurement names a stream; the `subject` tag names the subject, `source` \
                 the source, other tags key columns, fields value columns. A bad line is \
                 quarantined with its line number and the others land. `bucket` (or `db`) must be \
                 empty or the organization's name; `org` is ignored. Influx clients \
                 authenticate with `Authorization: Token ACCESS_TOKEN`.",
            )
            .query("precision", "Timestamp unit: ns (default), us, ms or s", string())
            .query("bucket", "Empty or the organization's name", string())
            .query("db", "Empty or the organization's name", string())
            .query("org", "Ignored", string())
            .body(
                TEXT,
                string(),
                Some(json!("heart_rate,subject=S1,source=polar bpm=64i 1772359200000000000\n")),
            )
            .reply(200, "The batch's quality summary.", &[(JSON, schema("IngestReport"))])
            .errors(&[400, 403, 413, 422, 503]),
        Route::get("/api/v1/subjects", subjects::list)
            .op("listSubjects", "subjects", "The subjects the caller may read")
            .describe("Names and emails are null unless the caller may see identifiers.")
            .reply(
                200,
                "Subjects, by pseudonym.",
                &[(JSON, json!({ "type": "array", "items": schema("Subject") }))],
            )
            .errors(&[403]),
        Route::get("/api/v1/subjects/{id}/summary", subjects::summary)
            .op("dailySummary", "subjects", "A subject's daily summary")
            .describe(
                "Per UTC day: steps, resting heart rate (the lowest 10-minute mean), minutes \
                 asleep (sleep stages other than in_bed and awake, by the day they end), energy \
                 eaten and burned (kcal), and the day's last weight. Days without data are null.",
            )
            .path_param("id", "The subject's pseudonym", json!("S1"))
            .query("from", "First day (default: 6 days before `to`)", date())
            .query("to", "Last day (default: today)", date())
            .reply(200, "The days.", &[(JSON, schema("DailySummary"))])
            .errors(&[400, 403, 404]),
        Route::get("/api/v1/subjects/{id}/goals", subjects::goals)
            .op("goals", "subjects", "A subject's goals and their progress")
            .describe(
                "Progress is measured over the goal's period containing `on`: the day, its ISO \
                 week, its month, or from the goal's start (total). Steps and energy are summed \
                 over the period, sleep minutes and resting heart rate averaged per day, weight is \
                 the latest.",
            )
            .path_param("id", "The subject's pseudonym", json!("S1"))
            .query("on", "The day whose period is measured (default: today)", date())
            .reply(200, "The goals.", &[(JSON, schema("Goals"))])
            .errors(&[400, 403, 404]),
        Route::get("/api/v1/subjects/{id}/export", subjects::export)
            .op("exportSubject", "subjects", "All of a subject's data (GDPR portability)")
            .describe(
                "A zip archive: `subject.json` (the profile) and one file per stream holding the \
                 subject's rows, as Parquet (default) or NDJSON. The export is audited.",
            )
            .path_param("id", "The subject's pseudonym", json!("S1"))
            .query("format", "parquet (default) or ndjson", string())
            .reply(200, "The archive.", &[(ZIP, binary())])
            .errors(&[400, 403, 404]),
        Route::delete("/api/v1/subjects/{id}", subjects::erase)
            .op("eraseSubject", "subjects", "Request the erasure of a subject (GDPR)")
            .describe(
                "Admins only. The subject is hidden from every query at once; background \
                 maintenance then rewrites every file holding its rows.",
            )
            .path_param("id", "The subject's pseudonym", json!("S3"))
            .reply(202, "The erasure request.", &[(JSON, schema("ErasureRequest"))])
            .errors(&[403, 404]),
        Route::get("/api/v1/ingest/batches", streams::batches)
            .op("listBatches", "ingest", "Ingest batches, newest first")
            .describe(
                "Those who read the whole organization see every batch; others the batches they \
                 wrote.",
            )
            .query("limit", "At most this many (default 50, at most 1000)", json!({ "type": "integer" }))
            .reply(
                200,
                "Batches.",
                &[(JSON, json!({ "type": "array", "items": schema("Batch") }))],
            )
            .errors(&[400]),
        Route::get("/api/v1/ingest/batches/{id}", streams::batch)
            .op("getBatch", "ingest", "A batch with its quality reports and quarantine sample")
            .describe(
                "The quarantine sample (the first 100 rejected rows) is shown to admins and to \
                 the batch's writer.",
            )
            .path_param("id", "The batch id", json!(1))
            .reply(200, "The batch.", &[(JSON, schema("BatchDetail"))])
            .errors(&[400, 403, 404]),
        Route::get("/api/v1/streams", streams::list)
            .op("listStreams", "streams", "The organization's streams and their schemas")
            .reply(
                200,
                "Streams.",
                &[(JSON, json!({ "type": "array", "items": schema("Stream") }))],
            ),
        Route::get("/api/v1/streams/{stream}", streams::get)
            .op("getStream", "streams", "A stream and its schema")
            .path_param("stream", "The stream, e.g. heart_rate", json!("heart_rate"))
            .reply(200, "The stream.", &[(JSON, schema("Stream"))])
            .errors(&[404]),
    ]
}

/// The routes' handlers grouped by path, as the router takes them.
pub(crate) fn by_path(routes: Vec<Route>) -> BTreeMap<&'static str, MethodRouter<AppState>> {
    let mut paths: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in routes {
        let merged = match paths.remove(route.path) {
            Some(existing) => existing.merge(route.handler),
            None => route.handler,
        };
        paths.insert(route.path, merged);
    }
    paths
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

/// The schemas of the components, by name.
pub(crate) fn schemas() -> Value {
    let count = json!({ "type": "integer" });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "request_id"],
                    "properties": {
                        "code": { "type": "string", "description": "unauthenticated, permission_denied, invalid_argument, not_found, payload_too_large, unprocessable, resource_exhausted, unavailable, method_not_allowed, internal, …" },
                        "message": { "type": "string" },
                        "request_id": { "type": "string" },
                    },
                },
            },
        },
        "Health": {
            "type": "object", "required": ["status"],
            "properties": { "status": { "type": "string" }, "version": { "type": "string" } },
        },
        "Check": {
            "type": "object", "required": ["ok", "millis"],
            "properties": {
                "ok": { "type": "boolean" },
                "millis": { "type": "number" },
                "error": { "type": "string" },
            },
        },
        "Ready": {
            "type": "object", "required": ["status", "checks"],
            "properties": {
                "status": { "type": "string", "enum": ["ready", "unavailable"] },
                "checks": {
                    "type": "object", "required": ["catalog", "store"],
                    "properties": { "catalog": schema("Check"), "store": schema("Check") },
                },
            },
        },
        "LoginRequest": {
            "type": "object", "required": ["username", "password"],
            "properties": { "username": { "type": "string" }, "password": { "type": "string" } },
        },
        "RefreshRequest": {
            "type": "object", "required": ["refresh_token"],
            "properties": { "refresh_token": { "type": "string" } },
        },
        "Tokens": {
            "type": "object",
            "required": ["access_token", "refresh_token", "expires_in", "token_type"],
            "properties": {
                "access_token": { "type": "string" },
                "refresh_token": { "type": "string" },
                "expires_in": { "type": "integer", "description": "Seconds the access token lasts" },
                "token_type": { "type": "string", "enum": ["Bearer"] },
            },
        },
        "ResultFormat": { "type": "string", "enum": ["json", "ndjson", "csv", "arrow", "parquet"] },
        "QueryRequest": {
            "type": "object", "required": ["sql"],
            "properties": {
                "sql": { "type": "string" },
                "params": {
                    "type": "array",
                    "items": { "type": ["string", "number", "integer", "boolean", "null"] },
                    "description": "Values of $1, $2, … (or the ? placeholders in order)",
                },
                "format": schema("ResultFormat"),
            },
        },
        "RuleCount": {
            "type": "object", "required": ["column", "rule", "checked", "corrected", "rejected", "flagged"],
            "properties": {
                "column": { "type": "string" }, "rule": { "type": "string" },
                "checked": count, "corrected": count, "rejected": count, "flagged": count,
            },
        },
        "StreamQuality": {
            "type": "object",
            "required": ["rows_in", "rows_accepted", "rows_rejected", "duplicates", "rules"],
            "properties": {
                "rows_in": count, "rows_accepted": count, "rows_rejected": count, "duplicates": count,
                "rules": { "type": "array", "items": schema("RuleCount") },
            },
        },
        "Rejection": {
            "type": "object", "required": ["stream", "file", "record", "rule", "reason"],
            "properties": {
                "stream": { "type": "string" },
                "file": { "type": "string" },
                "record": { "type": "integer", "description": "Line or record number, 1-based" },
                "column": nullable("string"),
                "rule": { "type": "string" },
                "reason": { "type": "string" },
                "value": nullable("string"),
            },
        },
        "IngestReport": {
            "type": "object",
            "required": ["batch_id", "status", "rows_in", "rows_accepted", "rows_rejected",
                         "rows_corrected", "duplicates", "streams", "rejections", "rejections_total", "failed"],
            "properties": {
                "batch_id": count,
                "status": { "type": "string", "enum": ["committed", "failed"] },
                "rows_in": count, "rows_accepted": count, "rows_rejected": count,
                "rows_corrected": count, "duplicates": count,
                "streams": { "type": "object", "additionalProperties": schema("StreamQuality") },
                "rejections": {
                    "type": "array", "items": schema("Rejection"),
                    "description": "The first 100 rejected rows",
                },
                "rejections_total": count,
                "failed": {
                    "type": "array",
                    "items": {
                        "type": "object", "required": ["file", "problem"],
                        "properties": { "file": { "type": "string" }, "problem": { "type": "string" } },
                    },
                },
            },
        },
        "Subject": {
            "type": "object", "required": ["pseudonym", "subject_id"],
            "properties": {
                "pseudonym": { "type": "string" },
                "subject_id": { "type": "integer" },
                "sex": nullable("string"),
                "birth_year": nullable("integer"),
                "height_cm": nullable("number"),
                "max_hr": nullable("integer"),
                "timezone": nullable("string"),
                "display_name": nullable("string"),
                "email": nullable("string"),
            },
        },
        "SummaryDay": {
            "type": "object", "required": ["date"],
            "properties": {
                "date": date(),
                "steps": nullable("number"),
                "resting_hr": nullable("number"),
                "sleep_minutes": nullable("number"),
                "energy_in_kcal": nullable("number"),
                "energy_out_kcal": nullable("number"),
                "weight_kg": nullable("number"),
            },
        },
        "DailySummary": {
            "type": "object", "required": ["subject", "from", "to", "days"],
            "properties": {
                "subject": { "type": "string" },
                "from": date(), "to": date(),
                "days": { "type": "array", "items": schema("SummaryDay") },
            },
        },
        "Progress": {
            "type": "object", "required": ["from", "to", "value", "met"],
            "properties": {
                "from": date(), "to": date(),
                "value": nullable("number"),
                "ratio": nullable("number"),
                "met": { "type": "boolean" },
            },
        },
        "Goal": {
            "type": "object",
            "required": ["goal_id", "metric", "target", "comparator", "period", "starts_on", "progress"],
            "properties": {
                "goal_id": { "type": "integer" },
                "metric": { "type": "string" },
                "target": { "type": "number" },
                "comparator": { "type": "string", "enum": ["at_least", "at_most"] },
                "period": { "type": "string", "enum": ["day", "week", "month", "total"] },
                "starts_on": date(),
                "ends_on": { "type": ["string", "null"], "format": "date" },
                "progress": {
                    "oneOf": [schema("Progress"), { "type": "null" }],
                    "description": "Null when the metric has no daily measure or the goal is not running on that day",
                },
            },
        },
        "Goals": {
            "type": "object", "required": ["subject", "on", "goals"],
            "properties": {
                "subject": { "type": "string" },
                "on": date(),
                "goals": { "type": "array", "items": schema("Goal") },
            },
        },
        "ErasureRequest": {
            "type": "object", "required": ["erasure_id", "subject", "status", "requested_at"],
            "properties": {
                "erasure_id": { "type": "integer" },
                "subject": { "type": "string" },
                "status": { "type": "string", "enum": ["pending", "completed", "failed"] },
                "requested_at": { "type": "string", "format": "date-time" },
            },
        },
        "StreamColumn": {
            "type": "object", "required": ["name", "arrow_type", "role", "nullable"],
            "properties": {
                "name": { "type": "string" },
                "arrow_type": { "type": "string" },
                "unit": nullable("string"),
                "role": { "type": "string", "enum": ["key", "time", "end_time", "value"] },
                "nullable": { "type": "boolean" },
                "plausible_min": nullable("number"),
                "plausible_max": nullable("number"),
                "allowed_values": { "type": ["array", "null"], "items": { "type": "string" } },
                "description": { "type": "string" },
            },
        },
        "Stream": {
            "type": "object", "required": ["id", "name", "kind", "standard", "columns"],
            "properties": {
                "id": { "type": "integer" },
                "name": { "type": "string" },
                "kind": { "type": "string", "enum": ["point", "interval"] },
                "standard": { "type": "boolean" },
                "description": { "type": "string" },
                "schema_version": { "type": "integer" },
                "retention_days": nullable("integer"),
                "max_duration_seconds": nullable("integer"),
                "columns": { "type": "array", "items": schema("StreamColumn") },
                "created_at": { "type": "string", "format": "date-time" },
            },
        },
        "Batch": {
            "type": "object", "required": ["id", "source", "format", "status", "counts", "started_at"],
            "properties": {
                "id": { "type": "integer" },
                "source": { "type": "string" },
                "format": { "type": "string" },
                "status": { "type": "string", "enum": ["running", "committed", "failed"] },
                "counts": {
                    "type": "object",
                    "required": ["rows_in", "rows_accepted", "rows_rejected", "rows_corrected"],
                    "properties": {
                        "rows_in": count, "rows_accepted": count,
                        "rows_rejected": count, "rows_corrected": count,
                    },
                },
                "bytes": { "type": "integer" },
                "error": nullable("string"),
                "created_by": nullable("integer"),
                "started_at": { "type": "string", "format": "date-time" },
                "finished_at": { "type": ["string", "null"], "format": "date-time" },
            },
        },
        "QualityReport": {
            "type": "object",
            "required": ["stream", "column", "rule", "rows_checked", "rows_corrected", "rows_rejected", "rows_flagged"],
            "properties": {
                "stream": { "type": "string" },
                "column": { "type": "string" },
                "rule": { "type": "string" },
                "rows_checked": count, "rows_corrected": count,
                "rows_rejected": count, "rows_flagged": count,
                "completeness": nullable("number"),
            },
        },
        "QuarantinedRow": {
            "type": "object", "required": ["file", "rule", "reason"],
            "properties": {
                "stream": nullable("string"),
                "file": { "type": "string" },
                "record": nullable("integer"),
                "column": nullable("string"),
                "rule": { "type": "string" },
                "reason": { "type": "string" },
                "value": nullable("string"),
            },
        },
        "BatchDetail": {
            "type": "object", "required": ["batch", "quality"],
            "properties": {
                "batch": schema("Batch"),
                "quality": { "type": "array", "items": schema("QualityReport") },
                "quarantine": {
                    "type": ["array", "null"], "items": schema("QuarantinedRow"),
                    "description": "Null when the caller may not see rejected values",
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::http::openapi::document;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_has_every_route_once_and_every_reference_resolves() {
        let routes = routes();
        let doc = document(&routes);
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = HashSet::new();
        for route in &routes {
            let method = route.method.as_str().to_ascii_lowercase();
            let operation = &doc["paths"][route.path][&method];
            assert_eq!(
                operation["operationId"], route.id,
                "{} {}",
                route.method, route.path
            );
            assert!(ids.insert(route.id), "operation id {} twice", route.id);
            assert!(
                !route.summary.is_empty() && !route.tag.is_empty(),
                "{}",
                route.id
            );
            for name in route
                .path
                .split('{')
                .skip(1)
                .filter_map(|p| p.split('}').next())
            {
                assert!(
                    route.params.iter().any(|p| p.name == name),
                    "{}: path parameter {name} undocumented",
                    route.id
                );
            }
            let replies = operation["responses"].as_object().unwrap();
            assert!(
                replies.keys().any(|s| s.starts_with('2')),
                "{} has no success reply",
                route.id
            );
            if !route.public {
                assert!(
                    replies.contains_key("401"),
                    "{} does not say it needs credentials",
                    route.id
                );
            }
        }
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, routes.len());
        assert_eq!(
            doc["paths"].as_object().unwrap().len(),
            by_path(routes).len(),
            "the router and the document have the same paths"
        );
        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        assert!(!targets.is_empty());
        for target in targets {
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} does not resolve"
            );
        }
    }
}
