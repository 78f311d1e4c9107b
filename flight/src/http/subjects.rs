//! Subjects: the list a caller may read, daily summaries and goal progress computed with SQL
//! over the streams, GDPR export (portability) and erasure.
//!
//! Every query here runs as the caller, so the row scope and the audit log apply as to any
//! other query; a subject outside the caller's scope is refused before any query runs.

use std::{
    collections::{BTreeMap, HashSet},
    io::{Cursor, Write},
};

use arrow::{
    array::{Array, AsArray, RecordBatch},
    datatypes::{Float64Type, SchemaRef, TimestampNanosecondType},
};
use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use catalog::{AuditOutcome, Comparator, Goal, GoalPeriod, Permission, Subject};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use datafusion::scalar::ScalarValue;
use engine::{Engine, Principal, RowScope};
use serde::Serialize;

use super::{
    AppState, Caller, QueryParams,
    encode::{ResultFormat, encode_all},
    json,
    query::collect,
};
use crate::{Error, Result};

/// The longest summary, in days.
const MAX_DAYS: i64 = 366;

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Response> {
    let sql = "SELECT pseudonym, subject_id, sex, birth_year, height_cm, max_hr, timezone, \
               display_name, email FROM meta.subjects ORDER BY pseudonym";
    let engine = state.auth.engine();
    let rows = engine.query_as(&principal, sql, None).await?;
    let schema = rows.schema().clone();
    let batches = rows.collect().await?;
    let body = encode_all(ResultFormat::Json, schema, &batches)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The subject a path names, if the caller may read it. Callers limited to some subjects
/// are refused alike whether or not the pseudonym exists, so they cannot probe for others.
async fn readable(engine: &Engine, principal: &Principal, pseudonym: &str) -> Result<Subject> {
    let refused = || {
        Error::Denied(format!(
            "{} may not read subject {pseudonym}",
            principal.actor
        ))
    };
    let found = engine
        .catalog()
        .subjects()
        .get_by_pseudonym(principal.org.id, pseudonym)
        .await;
    let subject = match (found, &principal.scope) {
        (Ok(subject), _) => subject,
        (Err(catalog::Error::NotFound { .. }), RowScope::All) => {
            return Err(Error::NotFound(format!("no subject {pseudonym}")));
        }
        (Err(catalog::Error::NotFound { .. }), _) => return Err(refused()),
        (Err(e), _) => return Err(e.into()),
    };
    if !principal.scope.allows(subject.id.0) {
        return Err(refused());
    }
    if subject.erased_at.is_some() {
        return Err(Error::NotFound(format!("subject {pseudonym} was erased")));
    }
    Ok(subject)
}

fn date(text: &str, name: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| Error::Invalid(format!("{name} '{text}' is not a date (YYYY-MM-DD)")))
}

/// Midnight UTC of a day, as the engine's time type.
fn midnight(day: NaiveDate) -> ScalarValue {
    let nanos = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_utc().timestamp_nanos_opt());
    ScalarValue::TimestampNanosecond(nanos, None)
}

/// A daily measure: how one number per day comes out of one stream, and how days add up
/// over a goal's period.
struct Measure {
    name: &'static str,
    stream: &'static str,
    /// `$1` subject id, `$2` first instant, `$3` end instant (exclusive); answers `day`,
    /// `value`.
    sql: &'static str,
    over_days: Combine,
}

#[derive(Clone, Copy)]
enum Combine {
    Sum,
    Mean,
    Last,
}

const MEASURES: &[Measure] = &[
    Measure {
        name: "steps",
        stream: "steps",
        sql: "SELECT date_trunc('day', time) AS day, CAST(sum(count) AS DOUBLE) AS value \
              FROM health.steps WHERE subject_id = $1 AND time >= $2 AND time < $3 GROUP BY 1",
        over_days: Combine::Sum,
    },
    Measure {
        name: "resting_hr",
        stream: "heart_rate",
        sql: "SELECT day, CAST(min(bpm) AS DOUBLE) AS value FROM ( \
                SELECT date_trunc('day', time) AS day, \
                       date_bin(INTERVAL '10 minutes', time, TIMESTAMP '1970-01-01T00:00:00') AS slot, \
                       avg(bpm) AS bpm \
                FROM health.heart_rate WHERE subject_id = $1 AND time >= $2 AND time < $3 \
                GROUP BY 1, 2) GROUP BY day",
        over_days: Combine::Mean,
    },
    Measure {
        name: "sleep_minutes",
        stream: "sleep",
        sql: "SELECT date_trunc('day', end_time) AS day, \
              CAST(sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) AS DOUBLE) / 60000000000.0 AS value \
              FROM health.sleep WHERE subject_id = $1 AND end_time >= $2 AND end_time < $3 \
              AND time >= $2 - INTERVAL '1 day' AND stage NOT IN ('in_bed', 'awake') GROUP BY 1",
        over_days: Combine::Mean,
    },
    Measure {
        name: "energy_in_kcal",
        stream: "meals",
        sql: "SELECT date_trunc('day', time) AS day, CAST(sum(energy_kcal) AS DOUBLE) AS value \
              FROM health.meals WHERE subject_id = $1 AND time >= $2 AND time < $3 GROUP BY 1",
        over_days: Combine::Sum,
    },
    Measure {
        name: "energy_out_kcal",
        stream: "active_energy",
        sql: "SELECT date_trunc('day', time) AS day, CAST(sum(kcal) AS DOUBLE) AS value \
              FROM health.active_energy WHERE subject_id = $1 AND time >= $2 AND time < $3 GROUP BY 1",
        over_days: Combine::Sum,
    },
    Measure {
        name: "weight_kg",
        stream: "body",
        sql: "SELECT date_trunc('day', time) AS day, CAST(last_value(weight_kg ORDER BY time) AS DOUBLE) AS value \
              FROM health.body WHERE subject_id = $1 AND time >= $2 AND time < $3 \
              AND weight_kg IS NOT NULL GROUP BY 1",
        over_days: Combine::Last,
    },
];

/// One measure per day from `from` to `to` (inclusive) for a subject.
async fn daily(
    engine: &Engine,
    principal: &Principal,
    subject: &Subject,
    measure: &Measure,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, f64>> {
    let params = vec![
        ScalarValue::Int64(Some(subject.id.0)),
        midnight(from),
        midnight(to + Duration::days(1)),
    ];
    let batches = collect(engine, principal, measure.sql, params).await?;
    let mut days = BTreeMap::new();
    for batch in &batches {
        let starts = batch.column(0).as_primitive::<TimestampNanosecondType>();
        let values = batch.column(1).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if starts.is_null(row) || values.is_null(row) {
                continue;
            }
            let day = chrono::DateTime::from_timestamp_nanos(starts.value(row)).date_naive();
            days.insert(day, values.value(row));
        }
    }
    Ok(days)
}

async fn streams(engine: &Engine, principal: &Principal) -> Result<HashSet<String>> {
    Ok(engine
        .catalog()
        .streams()
        .list(principal.org.id)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect())
}

#[derive(Serialize)]
struct Summary {
    subject: String,
    from: NaiveDate,
    to: NaiveDate,
    days: Vec<BTreeMap<&'static str, serde_json::Value>>,
}

pub(crate) async fn summary(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(pseudonym): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["from", "to"])?;
    let to = match params.get("to") {
        Some(text) => date(text, "to")?,
        None => Utc::now().date_naive(),
    };
    let from = match params.get("from") {
        Some(text) => date(text, "from")?,
        None => to - Duration::days(6),
    };
    let span = (to - from).num_days() + 1;
    if !(1..=MAX_DAYS).contains(&span) {
        return Err(Error::Invalid(format!(
            "from must be on or before to, at most {MAX_DAYS} days apart"
        )));
    }
    let engine = state.auth.engine();
    let subject = readable(engine, &principal, &pseudonym).await?;
    let present = streams(engine, &principal).await?;
    let mut measured = Vec::new();
    for measure in MEASURES.iter().filter(|m| present.contains(m.stream)) {
        let days = daily(engine, &principal, &subject, measure, from, to).await?;
        measured.push((measure.name, days));
    }
    let days = from
        .iter_days()
        .take(span as usize)
        .map(|day| {
            let mut row = BTreeMap::new();
            row.insert("date", serde_json::json!(day));
            for measure in MEASURES {
                let value = measured
                    .iter()
                    .find(|(name, _)| *name == measure.name)
                    .and_then(|(_, days)| days.get(&day));
                row.insert(measure.name, serde_json::json!(value));
            }
            row
        })
        .collect();
    json(
        StatusCode::OK,
        &Summary {
            subject: subject.pseudonym,
            from,
            to,
            days,
        },
    )
}

/// The days of a goal's period that contain `on`, within the goal's own dates; `None` when
/// the goal is not running that day.
fn period(goal: &Goal, on: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    if on < goal.starts_on || goal.ends_on.is_some_and(|end| on > end) {
        return None;
    }
    let (from, to) = match goal.period {
        GoalPeriod::Day => (on, on),
        GoalPeriod::Week => {
            let monday = on - Duration::days(i64::from(on.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(6))
        }
        GoalPeriod::Month => {
            let first = on.with_day(1)?;
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
            };
            (first, next - Duration::days(1))
        }
        GoalPeriod::Total => (goal.starts_on, on),
    };
    let from = from.max(goal.starts_on);
    let to = goal.ends_on.map_or(to, |end| to.min(end));
    Some((from, to))
}

fn combine(how: Combine, days: &BTreeMap<NaiveDate, f64>) -> Option<f64> {
    if days.is_empty() {
        return None;
    }
    Some(match how {
        Combine::Sum => days.values().sum(),
        Combine::Mean => days.values().sum::<f64>() / days.len() as f64,
        Combine::Last => *days.values().next_back()?,
    })
}

#[derive(Serialize)]
struct Progress {
    from: NaiveDate,
    to: NaiveDate,
    value: Option<f64>,
    ratio: Option<f64>,
    met: bool,
}

#[derive(Serialize)]
struct GoalView {
    goal_id: i64,
    metric: String,
    target: f64,
    comparator: Comparator,
    period: GoalPeriod,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    progress: Option<Progress>,
}

#[derive(Serialize)]
struct Goals {
    subject: String,
    on: NaiveDate,
    goals: Vec<GoalView>,
}

pub(crate) async fn goals(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(pseudonym): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["on"])?;
    let on = match params.get("on") {
        Some(text) => date(text, "on")?,
        None => Utc::now().date_naive(),
    };
    let engine = state.auth.engine();
    let subject = readable(engine, &principal, &pseudonym).await?;
    let present = streams(engine, &principal).await?;
    let mut goals = Vec::new();
    for goal in engine
        .catalog()
        .goals()
        .list_for_subject(subject.id)
        .await?
    {
        let measure = MEASURES
            .iter()
            .find(|m| m.name == goal.metric && present.contains(m.stream));
        let progress = match (measure, period(&goal, on)) {
            (Some(measure), Some((from, to))) => {
                let days = daily(engine, &principal, &subject, measure, from, to).await?;
                let value = combine(measure.over_days, &days);
                let met = value.is_some_and(|v| match goal.comparator {
                    Comparator::AtLeast => v >= goal.target,
                    Comparator::AtMost => v <= goal.target,
                });
                Some(Progress {
                    from,
                    to,
                    value,
                    ratio: value
                        .filter(|_| goal.target != 0.0)
                        .map(|v| v / goal.target),
                    met,
                })
            }
            _ => None,
        };
        goals.push(GoalView {
            goal_id: goal.id.0,
            metric: goal.metric,
            target: goal.target,
            comparator: goal.comparator,
            period: goal.period,
            starts_on: goal.starts_on,
            ends_on: goal.ends_on,
            progress,
        });
    }
    json(
        StatusCode::OK,
        &Goals {
            subject: subject.pseudonym,
            on,
            goals,
        },
    )
}

/// The file of one stream in an export.
struct StreamRows {
    name: String,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

pub(crate) async fn export(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(pseudonym): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let params = QueryParams::parse(query.as_deref(), &["format"])?;
    let format = match params.get("format").unwrap_or("parquet") {
        "parquet" => ResultFormat::Parquet,
        "ndjson" | "jsonl" => ResultFormat::Ndjson,
        other => {
            return Err(Error::Invalid(format!(
                "unknown export format '{other}': parquet or ndjson"
            )));
        }
    };
    let engine = state.auth.engine();
    let subject = readable(engine, &principal, &pseudonym).await?;
    let id = vec![ScalarValue::Int64(Some(subject.id.0))];
    let mut files = Vec::new();
    let mut rows = 0;
    let mut names: Vec<String> = streams(engine, &principal).await?.into_iter().collect();
    names.sort();
    for name in names {
        let sql = format!("SELECT * FROM health.\"{name}\" WHERE subject_id = $1 ORDER BY time");
        let stream = engine
            .query_as(&principal, &sql, Some(params_of(&id)))
            .await?;
        let schema = stream.schema().clone();
        let batches = stream.collect().await?;
        let count: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if count > 0 {
            rows += count;
            files.push(StreamRows {
                name,
                schema,
                batches,
            });
        }
    }
    let profile_sql = "SELECT * FROM meta.subjects WHERE subject_id = $1";
    let profile = engine
        .query_as(&principal, profile_sql, Some(params_of(&id)))
        .await?;
    let profile_schema = profile.schema().clone();
    let profile = encode_all(
        ResultFormat::Json,
        profile_schema,
        &profile.collect().await?,
    )?;
    let goals = serde_json::to_vec_pretty(
        &engine
            .catalog()
            .goals()
            .list_for_subject(subject.id)
            .await?,
    )
    .map_err(|e| Error::Internal(format!("cannot encode goals: {e}")))?;
    let archive = tokio::task::spawn_blocking(move || archive(format, profile, goals, files))
        .await
        .map_err(|e| Error::Internal(format!("the export stopped: {e}")))??;
    engine.audit(
        &principal,
        "export",
        Some(&format!("subject {pseudonym}")),
        Some(rows as i64),
        AuditOutcome::Ok,
        None,
    );
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"healthai-{}.zip\"",
        pseudonym.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    ))
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(archive),
    )
        .into_response())
}

fn params_of(values: &[ScalarValue]) -> datafusion::common::ParamValues {
    datafusion::common::ParamValues::List(values.iter().cloned().map(Into::into).collect())
}

/// The zip of an export: the profile, the goals, a file per stream.
fn archive(
    format: ResultFormat,
    profile: Vec<u8>,
    goals: Vec<u8>,
    files: Vec<StreamRows>,
) -> Result<Vec<u8>> {
    use zip::{CompressionMethod, write::SimpleFileOptions};
    let failed =
        |e: &dyn std::fmt::Display| Error::Internal(format!("cannot write the export: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    // Parquet is compressed already.
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, bytes) in [("subject.json", profile), ("goals.json", goals)] {
        zip.start_file(name, deflated).map_err(|e| failed(&e))?;
        zip.write_all(&bytes).map_err(|e| failed(&e))?;
    }
    for file in files {
        let (extension, options) = match format {
            ResultFormat::Parquet => ("parquet", stored),
            _ => ("ndjson", deflated),
        };
        let bytes = encode_all(format, file.schema, &file.batches)?;
        zip.start_file(format!("{}.{extension}", file.name), options)
            .map_err(|e| failed(&e))?;
        zip.write_all(&bytes).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}

#[derive(Serialize)]
struct Erasure {
    erasure_id: i64,
    subject: String,
    status: catalog::ErasureStatus,
    requested_at: chrono::DateTime<Utc>,
}

pub(crate) async fn erase(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(pseudonym): Path<String>,
) -> Result<Response> {
    if !principal.can(Permission::EraseSubjects) {
        return Err(Error::Denied(format!(
            "{} may not erase subjects (admins only)",
            principal.actor
        )));
    }
    let engine = state.auth.engine();
    readable(engine, &principal, &pseudonym).await?;
    let request = engine
        .request_erasure(&principal.org.name, &pseudonym, principal.user)
        .await?;
    engine.audit(
        &principal,
        "erase",
        Some(&format!("subject {pseudonym}")),
        None,
        AuditOutcome::Ok,
        None,
    );
    // The rows leave the files in the background; the maintenance round retries on failure.
    let background = engine.clone();
    tokio::spawn(async move {
        if let Err(e) = background.process_erasures().await {
            tracing::warn!(target: "healthai::http", error = %e, "erasure will be retried by maintenance");
        }
    });
    json(
        StatusCode::ACCEPTED,
        &Erasure {
            erasure_id: request.id.0,
            subject: pseudonym,
            status: request.status,
            requested_at: request.requested_at,
        },
    )
}

#[cfg(test)]
mod tests {
    use catalog::{GoalId, OrgId, SubjectId};

    use super::*;

    fn goal(period: GoalPeriod, starts: &str, ends: Option<&str>) -> Goal {
        Goal {
            id: GoalId(1),
            org: OrgId(1),
            subject: SubjectId(1),
            metric: "steps".into(),
            target: 10_000.0,
            comparator: Comparator::AtLeast,
            period,
            starts_on: starts.parse().unwrap(),
            ends_on: ends.map(|e| e.parse().unwrap()),
            created_at: Utc::now(),
        }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn periods_contain_the_day_within_the_goal() {
        // 2026-03-04 is a Wednesday.
        let on = day("2026-03-04");
        assert_eq!(
            period(&goal(GoalPeriod::Day, "2026-01-01", None), on),
            Some((on, on))
        );
        assert_eq!(
            period(&goal(GoalPeriod::Week, "2026-01-01", None), on),
            Some((day("2026-03-02"), day("2026-03-08")))
        );
        assert_eq!(
            period(
                &goal(GoalPeriod::Week, "2026-03-03", Some("2026-03-05")),
                on
            ),
            Some((day("2026-03-03"), day("2026-03-05"))),
            "cut to the goal's dates"
        );
        assert_eq!(
            period(
                &goal(GoalPeriod::Month, "2026-01-01", None),
                day("2026-12-09")
            ),
            Some((day("2026-12-01"), day("2026-12-31")))
        );
        assert_eq!(
            period(&goal(GoalPeriod::Total, "2026-02-01", None), on),
            Some((day("2026-02-01"), on))
        );
        assert_eq!(period(&goal(GoalPeriod::Day, "2026-03-05", None), on), None);
        assert_eq!(
            period(&goal(GoalPeriod::Day, "2026-01-01", Some("2026-03-01")), on),
            None
        );
    }

    #[test]
    fn days_combine_by_measure() {
        let days = BTreeMap::from([(day("2026-03-01"), 4.0), (day("2026-03-02"), 8.0)]);
        assert_eq!(combine(Combine::Sum, &days), Some(12.0));
        assert_eq!(combine(Combine::Mean, &days), Some(6.0));
        assert_eq!(combine(Combine::Last, &days), Some(8.0));
        assert_eq!(combine(Combine::Sum, &BTreeMap::new()), None);
    }
}
