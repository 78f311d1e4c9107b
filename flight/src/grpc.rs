//! The typed gRPC API (`proto/healthai/v1`): query, ingest, catalog and admin services for
//! programs that prefer typed messages to SQL. Each call authenticates, then runs as its
//! caller through the engine: the same row-level security, limits and audit as Flight SQL.

use std::{collections::HashMap, sync::Arc, time::Duration};

use arrow::{
    array::{
        Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch,
        StringBuilder, TimestampNanosecondBuilder,
    },
    datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampNanosecondType},
};
use catalog::{
    ColumnType, NewUser, OrgId, Permission, Role, Stream as CatalogStream, User as CatalogUser,
};
use datafusion::common::{ParamValues, ScalarValue};
use engine::Principal;
use futures::StreamExt;
use prost_types::Timestamp;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Error, Result,
    auth::Authenticator,
    pb::{
        self, Aggregate, Bucket, BucketedAggregatesRequest, BucketedAggregatesResponse,
        LatestReadingsRequest, LatestReadingsResponse, Reading, Value, WriteRequest, WriteResponse,
        value::Kind,
    },
};

const INTERFACE: &str = "grpc";

enum RoleChange {
    Grant,
    Revoke,
}

/// The services share the authenticator, which holds the engine.
#[derive(Clone)]
pub struct Services {
    auth: Arc<Authenticator>,
}

impl Services {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Services { auth }
    }

    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth.authenticate(header, INTERFACE).await
    }
}

/// A stream or column name that goes into SQL: it must be one the schema knows.
fn checked_column<'a>(
    stream: &'a CatalogStream,
    column: &str,
) -> Result<&'a catalog::StreamColumn> {
    stream.column(column).ok_or_else(|| {
        let names: Vec<_> = stream.columns.iter().map(|c| c.name.as_str()).collect();
        Error::Invalid(format!(
            "stream {} has no column '{column}' (its columns: {})",
            stream.name,
            names.join(", ")
        ))
    })
}

fn nanos(t: &Option<Timestamp>, what: &str) -> Result<i64> {
    let t = t
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("{what} is required")))?;
    t.seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(t.nanos)))
        .ok_or_else(|| Error::Invalid(format!("{what} is out of range")))
}

fn timestamp(nanos: i64) -> Timestamp {
    Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

fn instant(nanos: i64) -> ScalarValue {
    ScalarValue::TimestampNanosecond(Some(nanos), None)
}

/// `$n` placeholders for a list of pseudonyms, appended to `params`.
fn subject_list(subjects: &[String], params: &mut Vec<ScalarValue>) -> String {
    let placeholders: Vec<_> = subjects
        .iter()
        .map(|s| {
            params.push(ScalarValue::Utf8(Some(s.clone())));
            format!("${}", params.len())
        })
        .collect();
    placeholders.join(", ")
}

async fn collect(
    auth: &Authenticator,
    principal: &Principal,
    sql: &str,
    params: Vec<ScalarValue>,
) -> Result<Vec<RecordBatch>> {
    let params = (!params.is_empty())
        .then(|| ParamValues::List(params.into_iter().map(Into::into).collect()));
    Ok(auth
        .engine()
        .query_as(principal, sql, params)
        .await?
        .collect()
        .await?)
}

async fn stream_of(
    auth: &Authenticator,
    principal: &Principal,
    name: &str,
) -> Result<CatalogStream> {
    Ok(auth
        .engine()
        .catalog()
        .streams()
        .get(principal.org.id, name)
        .await?)
}

#[tonic::async_trait]
impl pb::query_service_server::QueryService for Services {
    async fn bucketed_aggregates(
        &self,
        request: Request<BucketedAggregatesRequest>,
    ) -> Result<Response<BucketedAggregatesResponse>, Status> {
        let principal = self.principal(&request).await?;
        let r = request.into_inner();
        let stream = stream_of(&self.auth, &principal, &r.stream).await?;
        let column = checked_column(&stream, &r.column)?;
        if !matches!(column.arrow_type, ColumnType::Int64 | ColumnType::Float64) {
            return Err(Error::Invalid(format!("column {} is not numeric", column.name)).into());
        }
        let bucket = r
            .bucket
            .as_ref()
            .and_then(|d| Duration::try_from(*d).ok())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Error::Invalid("bucket must be a positive duration".into()))?;
        if r.aggregates.is_empty() {
            return Err(Error::Invalid("ask for at least one aggregate".into()).into());
        }
        let value = format!("CAST(t.{} AS DOUBLE)", column.name);
        let aggregates = r
            .aggregates
            .iter()
            .map(|a| {
                Ok(
                    match Aggregate::try_from(*a).unwrap_or(Aggregate::Unspecified) {
                        Aggregate::Count => format!("CAST(count({value}) AS DOUBLE)"),
                        Aggregate::Sum => format!("sum({value})"),
                        Aggregate::Min => format!("min({value})"),
                        Aggregate::Max => format!("max({value})"),
                        Aggregate::Mean => format!("avg({value})"),
                        Aggregate::Stddev => format!("stddev({value})"),
                        Aggregate::First => format!("first_value({value} ORDER BY t.time)"),
                        Aggregate::Last => format!("last_value({value} ORDER BY t.time)"),
                        Aggregate::Unspecified => {
                            return Err(Error::Invalid(format!("unknown aggregate {a}")));
                        }
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut params = vec![
            instant(nanos(&r.start, "start")?),
            instant(nanos(&r.end, "end")?),
        ];
        let mut sql = format!(
            "SELECT s.pseudonym, date_bin(INTERVAL '{} nanoseconds', t.time, TIMESTAMP '1970-01-01T00:00:00') AS bucket, {} \
             FROM health.{} t JOIN meta.subjects s ON s.subject_id = t.subject_id \
             WHERE t.time >= $1 AND t.time < $2",
            bucket.as_nanos(),
            aggregates.join(", "),
            stream.name,
        );
        if !r.subjects.is_empty() {
            sql.push_str(&format!(
                " AND s.pseudonym IN ({})",
                subject_list(&r.subjects, &mut params)
            ));
        }
        sql.push_str(" GROUP BY 1, 2 ORDER BY 1, 2");
        let batches = collect(&self.auth, &principal, &sql, params).await?;
        let mut buckets = Vec::new();
        for batch in &batches {
            let subjects = batch.column(0).as_string::<i32>();
            let starts = batch.column(1).as_primitive::<TimestampNanosecondType>();
            let values: Vec<_> = (2..batch.num_columns())
                .map(|i| batch.column(i).as_primitive::<Float64Type>())
                .collect();
            for row in 0..batch.num_rows() {
                buckets.push(Bucket {
                    subject: subjects.value(row).to_owned(),
                    start: Some(timestamp(starts.value(row))),
                    values: values
                        .iter()
                        .map(|v| {
                            if v.is_null(row) {
                                f64::NAN
                            } else {
                                v.value(row)
                            }
                        })
                        .collect(),
                });
            }
        }
        Ok(Response::new(BucketedAggregatesResponse { buckets }))
    }

    async fn latest_readings(
        &self,
        request: Request<LatestReadingsRequest>,
    ) -> Result<Response<LatestReadingsResponse>, Status> {
        let principal = self.principal(&request).await?;
        let r = request.into_inner();
        let stream = stream_of(&self.auth, &principal, &r.stream).await?;
        let mut params = Vec::new();
        let filter = if r.subjects.is_empty() {
            String::new()
        } else {
            format!(
                " WHERE s.pseudonym IN ({})",
                subject_list(&r.subjects, &mut params)
            )
        };
        let sql = format!(
            "SELECT * FROM (SELECT s.pseudonym AS __subject, t.*, \
             row_number() OVER (PARTITION BY t.subject_id ORDER BY t.time DESC) AS __rank \
             FROM health.{} t JOIN meta.subjects s ON s.subject_id = t.subject_id{filter}) \
             WHERE __rank = 1 ORDER BY __subject",
            stream.name
        );
        let batches = collect(&self.auth, &principal, &sql, params).await?;
        let mut readings = Vec::new();
        for batch in &batches {
            let schema = batch.schema();
            let subject = batch.column(0).as_string::<i32>();
            for row in 0..batch.num_rows() {
                let mut reading = Reading {
                    subject: subject.value(row).to_owned(),
                    ..Reading::default()
                };
                for (i, field) in schema.fields().iter().enumerate() {
                    let column = batch.column(i);
                    match field.name().as_str() {
                        "__subject" | "__rank" | "subject_id" => {}
                        "source" => {
                            reading.source = column.as_string::<i32>().value(row).to_owned()
                        }
                        "time" => {
                            reading.time = Some(timestamp(
                                column.as_primitive::<TimestampNanosecondType>().value(row),
                            ))
                        }
                        "end_time" => {
                            reading.end_time = Some(timestamp(
                                column.as_primitive::<TimestampNanosecondType>().value(row),
                            ))
                        }
                        name => {
                            if let Some(value) = value_of(column, row) {
                                reading.values.insert(name.to_owned(), value);
                            }
                        }
                    }
                }
                readings.push(reading);
            }
        }
        Ok(Response::new(LatestReadingsResponse { readings }))
    }
}

fn value_of(column: &ArrayRef, row: usize) -> Option<Value> {
    if column.is_null(row) {
        return None;
    }
    let kind = match column.data_type() {
        DataType::Float64 => Kind::Number(column.as_primitive::<Float64Type>().value(row)),
        DataType::Int64 => Kind::Integer(column.as_primitive::<Int64Type>().value(row)),
        DataType::Utf8 => Kind::Text(column.as_string::<i32>().value(row).to_owned()),
        DataType::Boolean => Kind::Flag(column.as_boolean().value(row)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Kind::Instant(timestamp(
            column.as_primitive::<TimestampNanosecondType>().value(row),
        )),
        _ => return None,
    };
    Some(Value { kind: Some(kind) })
}

#[tonic::async_trait]
impl pb::ingest_service_server::IngestService for Services {
    async fn write(
        &self,
        request: Request<Streaming<WriteRequest>>,
    ) -> Result<Response<WriteResponse>, Status> {
        let principal = self.principal(&request).await?;
        let mut messages = request.into_inner();
        let mut written = 0i64;
        let mut subjects: HashMap<String, i64> = HashMap::new();
        while let Some(message) = messages.next().await {
            let message = message?;
            if message.rows.is_empty() {
                continue;
            }
            let stream = stream_of(&self.auth, &principal, &message.stream).await?;
            let missing: Vec<String> = message
                .rows
                .iter()
                .filter(|r| !subjects.contains_key(&r.subject))
                .map(|r| r.subject.clone())
                .collect();
            if !missing.is_empty() {
                for subject in self
                    .auth
                    .engine()
                    .catalog()
                    .subjects()
                    .ensure(principal.org.id, &missing)
                    .await
                    .map_err(Error::from)?
                {
                    subjects.insert(subject.pseudonym, subject.id.0);
                }
            }
            let batch = rows_to_batch(&stream, &message.rows, &subjects)?;
            let rows = batch.num_rows() as i64;
            let outcome = self
                .auth
                .engine()
                .write_as(&principal, &stream.name, batch, None)
                .await;
            let audit = match &outcome {
                Ok(_) => catalog::AuditOutcome::Ok,
                Err(engine::Error::Denied(_)) => catalog::AuditOutcome::Denied,
                Err(_) => catalog::AuditOutcome::Error,
            };
            let detail = outcome.as_ref().err().map(ToString::to_string);
            self.auth.engine().audit(
                &principal,
                "write",
                Some(&stream.name),
                Some(rows),
                audit,
                detail,
            );
            outcome.map_err(Error::from)?;
            written += rows;
        }
        Ok(Response::new(WriteResponse {
            rows_written: written,
        }))
    }
}

/// Rows of the typed API as a batch of the stream, naming the row and column of any misfit.
fn rows_to_batch(
    stream: &CatalogStream,
    rows: &[Reading],
    subjects: &HashMap<String, i64>,
) -> Result<RecordBatch> {
    let misfit = |row: usize, problem: String| {
        Error::Invalid(format!("stream {}, row {row}: {problem}", stream.name))
    };
    for (row, reading) in rows.iter().enumerate() {
        if let Some(unknown) = reading
            .values
            .keys()
            .find(|name| stream.column(name).is_none())
        {
            return Err(misfit(row, format!("no column '{unknown}'")));
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::new();
    for column in &stream.columns {
        let name = column.name.as_str();
        let array: ArrayRef = match name {
            "subject_id" => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for (row, r) in rows.iter().enumerate() {
                    let id = subjects
                        .get(&r.subject)
                        .ok_or_else(|| misfit(row, "no subject".into()))?;
                    b.append_value(*id);
                }
                Arc::new(b.finish())
            }
            "source" => Arc::new(
                rows.iter()
                    .map(|r| Some(r.source.as_str()))
                    .collect::<arrow::array::StringArray>(),
            ),
            "time" | "end_time" => {
                let mut b = TimestampNanosecondBuilder::with_capacity(rows.len());
                for (row, r) in rows.iter().enumerate() {
                    let value = if name == "time" { &r.time } else { &r.end_time };
                    b.append_value(nanos(value, name).map_err(|e| misfit(row, e.to_string()))?);
                }
                Arc::new(b.finish())
            }
            _ => values_column(column, rows).map_err(|(row, problem)| misfit(row, problem))?,
        };
        columns.push(array);
    }
    let schema = Arc::new(arrow::datatypes::Schema::new(
        stream
            .columns
            .iter()
            .map(|c| arrow::datatypes::Field::new(&c.name, engine::arrow_type(c.arrow_type), true))
            .collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn values_column(
    column: &catalog::StreamColumn,
    rows: &[Reading],
) -> std::result::Result<ArrayRef, (usize, String)> {
    let name = column.name.as_str();
    let wrong = |row: usize, value: &Value| {
        (
            row,
            format!(
                "column '{name}' is {}, not {:?}",
                column.arrow_type, value.kind
            ),
        )
    };
    Ok(match column.arrow_type {
        ColumnType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for (row, r) in rows.iter().enumerate() {
                match r.values.get(name) {
                    None => b.append_null(),
                    Some(Value {
                        kind: Some(Kind::Number(v)),
                    }) => b.append_value(*v),
                    Some(Value {
                        kind: Some(Kind::Integer(v)),
                    }) => b.append_value(*v as f64),
                    Some(other) => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for (row, r) in rows.iter().enumerate() {
                match r.values.get(name) {
                    None => b.append_null(),
                    Some(Value {
                        kind: Some(Kind::Integer(v)),
                    }) => b.append_value(*v),
                    Some(other) => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Utf8 => {
            let mut b = StringBuilder::new();
            for (row, r) in rows.iter().enumerate() {
                match r.values.get(name) {
                    None => b.append_null(),
                    Some(Value {
                        kind: Some(Kind::Text(v)),
                    }) => b.append_value(v),
                    Some(other) => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for (row, r) in rows.iter().enumerate() {
                match r.values.get(name) {
                    None => b.append_null(),
                    Some(Value {
                        kind: Some(Kind::Flag(v)),
                    }) => b.append_value(*v),
                    Some(other) => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::TimestampNs => {
            let mut b = TimestampNanosecondBuilder::with_capacity(rows.len());
            for (row, r) in rows.iter().enumerate() {
                match r.values.get(name) {
                    None => b.append_null(),
                    Some(Value {
                        kind: Some(Kind::Instant(t)),
                    }) => b.append_value(nanos(&Some(*t), name).map_err(|e| (row, e.to_string()))?),
                    Some(other) => return Err(wrong(row, other)),
                }
            }
            Arc::new(b.finish())
        }
    })
}

#[tonic::async_trait]
impl pb::catalog_service_server::CatalogService for Services {
    async fn list_streams(
        &self,
        request: Request<pb::ListStreamsRequest>,
    ) -> Result<Response<pb::ListStreamsResponse>, Status> {
        let principal = self.principal(&request).await?;
        let streams = self
            .auth
            .engine()
            .catalog()
            .streams()
            .list(principal.org.id)
            .await
            .map_err(Error::from)?;
        let streams = streams
            .into_iter()
            .map(|s| pb::Stream {
                name: s.name,
                kind: s.kind.to_string(),
                standard: s.standard,
                description: s.description,
                retention_days: s.retention_days,
                columns: s
                    .columns
                    .into_iter()
                    .map(|c| pb::StreamColumn {
                        name: c.name,
                        r#type: c.arrow_type.to_string(),
                        unit: c.unit.unwrap_or_default(),
                        role: c.role.to_string(),
                        nullable: c.nullable,
                        plausible_min: c.plausible_min,
                        plausible_max: c.plausible_max,
                        allowed_values: c.allowed_values.unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListStreamsResponse { streams }))
    }

    async fn list_subjects(
        &self,
        request: Request<pb::ListSubjectsRequest>,
    ) -> Result<Response<pb::ListSubjectsResponse>, Status> {
        let principal = self.principal(&request).await?;
        let sql = "SELECT pseudonym, subject_id, sex, birth_year, height_cm, max_hr, timezone, display_name, email \
                   FROM meta.subjects ORDER BY pseudonym";
        let batches = collect(&self.auth, &principal, sql, Vec::new()).await?;
        let mut subjects = Vec::new();
        for b in &batches {
            let text = |i: usize, row: usize| {
                let c = b.column(i).as_string::<i32>();
                if c.is_null(row) {
                    String::new()
                } else {
                    c.value(row).to_owned()
                }
            };
            let int = |i: usize, row: usize| {
                let c = b.column(i).as_primitive::<Int64Type>();
                (!c.is_null(row)).then(|| c.value(row))
            };
            let height = b.column(4).as_primitive::<Float64Type>();
            for row in 0..b.num_rows() {
                subjects.push(pb::Subject {
                    pseudonym: text(0, row),
                    subject_id: int(1, row).unwrap_or_default(),
                    sex: text(2, row),
                    birth_year: int(3, row),
                    height_cm: (!height.is_null(row)).then(|| height.value(row)),
                    max_hr: int(5, row),
                    timezone: text(6, row),
                    display_name: text(7, row),
                    email: text(8, row),
                });
            }
        }
        Ok(Response::new(pb::ListSubjectsResponse { subjects }))
    }

    async fn list_goals(
        &self,
        request: Request<pb::ListGoalsRequest>,
    ) -> Result<Response<pb::ListGoalsResponse>, Status> {
        let principal = self.principal(&request).await?;
        let subject = request.into_inner().subject;
        let mut params = Vec::new();
        let mut sql = "SELECT g.goal_id, s.pseudonym, g.metric, g.target, g.comparator, g.period, \
                       CAST(g.starts_on AS TIMESTAMP) AS starts_on, CAST(g.ends_on AS TIMESTAMP) AS ends_on \
                       FROM meta.goals g JOIN meta.subjects s ON s.subject_id = g.subject_id"
            .to_owned();
        if !subject.is_empty() {
            params.push(ScalarValue::Utf8(Some(subject)));
            sql.push_str(" WHERE s.pseudonym = $1");
        }
        sql.push_str(" ORDER BY s.pseudonym, g.goal_id");
        let batches = collect(&self.auth, &principal, &sql, params).await?;
        let mut goals = Vec::new();
        for b in &batches {
            let ids = b.column(0).as_primitive::<Int64Type>();
            let text = |i: usize| b.column(i).as_string::<i32>();
            let targets = b.column(3).as_primitive::<Float64Type>();
            let starts = b.column(6).as_primitive::<TimestampNanosecondType>();
            let ends = b.column(7).as_primitive::<TimestampNanosecondType>();
            for row in 0..b.num_rows() {
                goals.push(pb::Goal {
                    goal_id: ids.value(row),
                    subject: text(1).value(row).to_owned(),
                    metric: text(2).value(row).to_owned(),
                    target: targets.value(row),
                    comparator: text(4).value(row).to_owned(),
                    period: text(5).value(row).to_owned(),
                    starts_on: Some(timestamp(starts.value(row))),
                    ends_on: (!ends.is_null(row)).then(|| timestamp(ends.value(row))),
                });
            }
        }
        Ok(Response::new(pb::ListGoalsResponse { goals }))
    }
}

impl Services {
    /// An admin of the caller's organization, or a refusal.
    async fn admin<T>(&self, request: &Request<T>) -> Result<Principal> {
        let principal = self.principal(request).await?;
        if !principal.can(Permission::ManageUsers) {
            return Err(Error::Denied(format!(
                "{} may not manage users",
                principal.actor
            )));
        }
        Ok(principal)
    }

    async fn change_role(
        &self,
        request: Request<pb::RoleRequest>,
        change: RoleChange,
    ) -> Result<pb::User> {
        let principal = self.admin(&request).await?;
        let r = request.into_inner();
        let user = self.user_by_email(principal.org.id, &r.email).await?;
        let role = role(&r.role)?;
        let users = self.auth.engine().catalog().users();
        let action = match change {
            RoleChange::Grant => {
                users.grant_role(user.id, role).await?;
                "grant_role"
            }
            RoleChange::Revoke => {
                users.revoke_role(user.id, role).await?;
                "revoke_role"
            }
        };
        let detail = format!("{} {}", user.email, r.role);
        self.auth.engine().audit(
            &principal,
            action,
            Some(&detail),
            None,
            catalog::AuditOutcome::Ok,
            None,
        );
        self.user_message(users.get(user.id).await?).await
    }

    async fn user_by_email(&self, org: OrgId, email: &str) -> Result<CatalogUser> {
        Ok(self
            .auth
            .engine()
            .catalog()
            .users()
            .get_by_email(org, email)
            .await?)
    }

    async fn user_message(&self, user: CatalogUser) -> Result<pb::User> {
        let catalog = self.auth.engine().catalog();
        let subject = match user.subject {
            Some(id) => catalog.subjects().get(id).await?.pseudonym,
            None => String::new(),
        };
        let groups = catalog.subjects().list_groups(user.org).await?;
        let coach_of = user
            .coach_of
            .iter()
            .filter_map(|g| {
                groups
                    .iter()
                    .find(|group| group.id == *g)
                    .map(|group| group.name.clone())
            })
            .collect();
        Ok(pb::User {
            user_id: user.id.0,
            email: user.email,
            display_name: user.display_name.unwrap_or_default(),
            roles: user.roles.iter().map(|r| r.to_string()).collect(),
            subject,
            coach_of,
            disabled: user.disabled,
        })
    }
}

fn role(name: &str) -> Result<Role> {
    name.parse()
        .map_err(|e: catalog::Error| Error::Invalid(e.to_string()))
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Services {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let principal = self.admin(&request).await?;
        let r = request.into_inner();
        let catalog = self.auth.engine().catalog();
        let org = principal.org.id;
        let roles = r
            .roles
            .iter()
            .map(|name| role(name))
            .collect::<Result<Vec<_>>>()?;
        let subject = match r.subject.as_str() {
            "" => None,
            pseudonym => Some(
                catalog
                    .subjects()
                    .ensure(org, &[pseudonym.to_owned()])
                    .await
                    .map_err(Error::from)?[0]
                    .id,
            ),
        };
        let groups = catalog
            .subjects()
            .list_groups(org)
            .await
            .map_err(Error::from)?;
        let coach_of = r
            .coach_of
            .iter()
            .map(|name| {
                groups
                    .iter()
                    .find(|g| &g.name == name)
                    .map(|g| g.id)
                    .ok_or_else(|| Error::Invalid(format!("no group named '{name}'")))
            })
            .collect::<Result<Vec<_>>>()?;
        let password_hash = match r.password.as_str() {
            "" => None,
            password => Some(Authenticator::hash_password(password)?),
        };
        let user = catalog
            .users()
            .create(NewUser {
                org,
                email: r.email,
                display_name: (!r.display_name.is_empty()).then_some(r.display_name),
                password_hash,
                roles,
                subject,
                coach_of,
            })
            .await
            .map_err(Error::from)?;
        self.auth.engine().audit(
            &principal,
            "create_user",
            Some(&user.email),
            None,
            catalog::AuditOutcome::Ok,
            None,
        );
        Ok(Response::new(self.user_message(user).await?))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let principal = self.admin(&request).await?;
        let mut users = Vec::new();
        for user in self
            .auth
            .engine()
            .catalog()
            .users()
            .list(principal.org.id)
            .await
            .map_err(Error::from)?
        {
            users.push(self.user_message(user).await?);
        }
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn set_user_disabled(
        &self,
        request: Request<pb::SetUserDisabledRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let principal = self.admin(&request).await?;
        let r = request.into_inner();
        let user = self.user_by_email(principal.org.id, &r.email).await?;
        let catalog = self.auth.engine().catalog();
        catalog
            .users()
            .set_disabled(user.id, r.disabled)
            .await
            .map_err(Error::from)?;
        if r.disabled {
            catalog
                .tokens()
                .revoke_all_for_user(user.id, chrono::Utc::now())
                .await
                .map_err(Error::from)?;
        }
        let user = catalog.users().get(user.id).await.map_err(Error::from)?;
        Ok(Response::new(self.user_message(user).await?))
    }

    async fn grant_role(
        &self,
        request: Request<pb::RoleRequest>,
    ) -> Result<Response<pb::User>, Status> {
        Ok(Response::new(
            self.change_role(request, RoleChange::Grant).await?,
        ))
    }

    async fn revoke_role(
        &self,
        request: Request<pb::RoleRequest>,
    ) -> Result<Response<pb::User>, Status> {
        Ok(Response::new(
            self.change_role(request, RoleChange::Revoke).await?,
        ))
    }

    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let principal = self.admin(&request).await?;
        let r = request.into_inner();
        let user = self.user_by_email(principal.org.id, &r.email).await?;
        let ttl = (r.days > 0).then(|| Duration::from_secs(r.days as u64 * 86_400));
        let (token, expires) = self.auth.service_token(&user, ttl)?;
        self.auth.engine().audit(
            &principal,
            "issue_token",
            Some(&user.email),
            None,
            catalog::AuditOutcome::Ok,
            None,
        );
        Ok(Response::new(pb::IssueTokenResponse {
            token,
            expires_at: Some(timestamp(expires.timestamp_nanos_opt().unwrap_or(i64::MAX))),
        }))
    }

    async fn revoke_tokens(
        &self,
        request: Request<pb::RevokeTokensRequest>,
    ) -> Result<Response<pb::RevokeTokensResponse>, Status> {
        let principal = self.admin(&request).await?;
        let r = request.into_inner();
        let user = self.user_by_email(principal.org.id, &r.email).await?;
        let revoked = self
            .auth
            .engine()
            .catalog()
            .tokens()
            .revoke_all_for_user(user.id, chrono::Utc::now())
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::RevokeTokensResponse {
            revoked: revoked as i64,
        }))
    }
}

impl From<crate::Tokens> for pb::Tokens {
    fn from(tokens: crate::Tokens) -> Self {
        pb::Tokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_in: tokens.expires_in,
        }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for Services {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::Tokens>, Status> {
        let r = request.into_inner();
        let (_, tokens) = self.auth.login(&r.username, &r.password, INTERFACE).await?;
        Ok(Response::new(tokens.into()))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::Tokens>, Status> {
        let tokens = self
            .auth
            .refresh(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(tokens.into()))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.auth
            .logout(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }
}
