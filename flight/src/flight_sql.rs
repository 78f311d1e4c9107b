//! Arrow Flight SQL: what BI tools (JDBC, ODBC, ADBC) and ML clients (pyarrow, polars) speak.
//!
//! Statement and prepared-statement handles are the statement itself (and its bound
//! parameters), so any node can answer a DoGet for a handle another node issued. Parameters
//! bound with DoPut come back in a new handle and are also remembered here, for clients that
//! keep using the first one. A statement GetFlightInfo planned is kept for a few seconds for
//! the DoGet that follows, so it is planned once (see [`PlannedStatements`]).

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arrow::{
    array::RecordBatch,
    datatypes::{DataType, Field, Schema, SchemaRef},
    ipc::writer::IpcWriteOptions,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
    decode::FlightRecordBatchStream,
    encode::FlightDataEncoderBuilder,
    error::FlightError,
    flight_service_server::FlightService,
    sql::{
        ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
        ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetCrossReference,
        CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
        CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
        CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
        CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult,
        ProstMessageExt, SqlInfo, TableExistsOption, TableNotExistOption, TicketStatementQuery,
        metadata::{SqlInfoData, XdbcTypeInfoData},
        server::{FlightSqlService, PeekableFlightDataStream},
    },
};
use base64::Engine as _;
use bytes::Bytes;
use datafusion::{common::ParamValues, scalar::ScalarValue};
use engine::{PlannedQuery, Principal, QueryStream};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming, metadata::MetadataValue};

use crate::{Error, Result, auth::Authenticator, metadata};

const INTERFACE: &str = "flight";
const CATALOG: &str = "healthai";

type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// A statement as its handle carries it.
#[derive(Debug, Serialize, Deserialize)]
struct Handle {
    sql: String,
    /// Bound parameters: a one-row Arrow IPC stream, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<String>,
}

impl Handle {
    fn encode(&self) -> Bytes {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|_| Error::Invalid("unknown statement handle".into()))
    }

    fn parameters(&self) -> Result<Option<RecordBatch>> {
        let Some(encoded) = &self.parameters else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Invalid("malformed parameters in statement handle".into()))?;
        let mut reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
        reader.next().transpose().map_err(Error::from)
    }

    fn with_parameters(sql: String, batch: &RecordBatch) -> Result<Self> {
        let mut buffer = Vec::new();
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut buffer, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
        drop(writer);
        Ok(Handle {
            sql,
            parameters: Some(base64::engine::general_purpose::STANDARD.encode(buffer)),
        })
    }
}

/// The values of a one-row parameter batch, as `$1`, `$2`, … in column order.
fn parameter_values(batch: Option<RecordBatch>) -> Result<Option<ParamValues>> {
    let Some(batch) = batch else {
        return Ok(None);
    };
    if batch.num_rows() != 1 {
        return Err(Error::Invalid(format!(
            "bind one row of parameters, not {} (run the statement once per row)",
            batch.num_rows()
        )));
    }
    let values = batch
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0))
        .collect::<datafusion::error::Result<Vec<_>>>()
        .map_err(|e| Error::Invalid(format!("unusable parameter: {e}")))?;
    Ok(Some(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    )))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default()).try_into()?;
    Ok(message.0)
}

fn flight_info(
    schema: &Schema,
    ticket: &impl ProstMessageExt,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(ticket.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn encode(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
    max_message: usize,
) -> DataStream {
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(max_message)
            .build(batches)
            .map_err(Status::from),
    )
}

/// A query's rows as Flight data.
fn rows(stream: QueryStream) -> DataStream {
    let schema = stream.schema().clone();
    let batches = stream.map_err(|e| FlightError::Tonic(Box::new(Status::from(Error::from(e)))));
    encode(schema, batches, DEFAULT_MESSAGE)
}

fn one_batch(batch: RecordBatch) -> DataStream {
    let schema = batch.schema();
    encode(
        schema,
        futures::stream::once(async { Ok(batch) }),
        DEFAULT_MESSAGE,
    )
}

/// Bytes of a DoGet message the encoder aims for: under the 4 MiB a gRPC client accepts by
/// default, whatever it was configured with.
const DEFAULT_MESSAGE: usize = 2 << 20;

/// How long a statement planned by GetFlightInfo waits for its DoGet. Clients fetch at once;
/// a plan holds the erased subjects as they were when it was made, so it is not kept long.
const PLAN_KEPT: Duration = Duration::from_secs(10);
/// Planned statements kept at most (the oldest goes first).
const PLANS_KEPT: usize = 64;

/// Statements planned by GetFlightInfo, by ticket, for the DoGet that fetches them. A ticket
/// still carries the whole statement: a DoGet that finds no plan here (another node, a second
/// fetch, a plan too old) plans it again.
#[derive(Default)]
struct PlannedStatements(Mutex<VecDeque<KeptPlan>>);

struct KeptPlan {
    ticket: Bytes,
    principal: Principal,
    at: Instant,
    query: PlannedQuery,
}

impl PlannedStatements {
    fn keep(&self, ticket: Bytes, principal: &Principal, query: PlannedQuery) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|plan| plan.at.elapsed() < PLAN_KEPT);
        if kept.len() == PLANS_KEPT {
            kept.pop_front();
        }
        kept.push_back(KeptPlan {
            ticket,
            principal: principal.clone(),
            at: Instant::now(),
            query,
        });
    }

    /// The plan of a ticket, made for a caller with the same rights as this one.
    fn take(&self, ticket: &[u8], principal: &Principal) -> Option<PlannedQuery> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let position = kept
            .iter()
            .position(|plan| plan.ticket == ticket && same_rights(&plan.principal, principal))?;
        let plan = kept.remove(position)?;
        (plan.at.elapsed() < PLAN_KEPT).then_some(plan.query)
    }
}

/// Whether two principals read the same rows the same way: a plan made for one may run for
/// the other.
fn same_rights(a: &Principal, b: &Principal) -> bool {
    a.org.id == b.org.id && a.user == b.user && a.scope == b.scope && a.permissions == b.permissions
}

pub struct FlightSql {
    auth: Arc<Authenticator>,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
    /// Parameters bound to a handle, for clients that do not adopt the handle DoPut returns.
    bound: Mutex<HashMap<Bytes, RecordBatch>>,
    plans: PlannedStatements,
}

impl FlightSql {
    pub fn new(auth: Arc<Authenticator>) -> Result<Self> {
        Ok(FlightSql {
            auth,
            sql_info: metadata::sql_info()?,
            xdbc: metadata::xdbc_types()?,
            bound: Mutex::new(HashMap::new()),
            plans: PlannedStatements::default(),
        })
    }

    /// The server declares no primary or foreign keys: key listings are empty results with
    /// the specification's schema, announced here and streamed by `no_keys`.
    async fn key_listing_info(
        &self,
        request: Request<FlightDescriptor>,
        command: &impl ProstMessageExt,
        schema: Schema,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        flight_info(&schema, command, request.into_inner())
    }

    async fn no_keys(
        &self,
        request: Request<Ticket>,
        schema: Schema,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        Ok(Response::new(one_batch(RecordBatch::new_empty(Arc::new(
            schema,
        )))))
    }

    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        Ok(self.auth.authenticate(header, INTERFACE).await?)
    }

    fn bound(&self) -> std::sync::MutexGuard<'_, HashMap<Bytes, RecordBatch>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement a handle names, with its parameters from the handle or bound here.
    fn statement(&self, handle: &Bytes) -> Result<(String, Option<ParamValues>)> {
        let decoded = Handle::decode(handle)?;
        let parameters = match decoded.parameters()? {
            Some(batch) => Some(batch),
            None => self.bound().get(handle).cloned(),
        };
        Ok((decoded.sql, parameter_values(parameters)?))
    }

    /// Runs a statement and streams its rows in the schema announced by GetFlightInfo.
    async fn run(
        &self,
        principal: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
    ) -> Result<DataStream, Status> {
        let stream = self
            .auth
            .engine()
            .query_as(principal, sql, parameters)
            .await
            .map_err(Error::from)?;
        Ok(rows(stream))
    }

    /// Plans a statement for GetFlightInfo and keeps the plan for the DoGet of `ticket`.
    async fn plan(
        &self,
        principal: &Principal,
        sql: &str,
        parameters: Option<ParamValues>,
        ticket: Bytes,
    ) -> Result<SchemaRef, Status> {
        let planned = self
            .auth
            .engine()
            .plan_as(principal, sql, parameters)
            .await
            .map_err(Error::from)?;
        let schema = planned.schema();
        self.plans.keep(ticket, principal, planned);
        Ok(schema)
    }

    /// Runs the statement of a ticket: from its plan when GetFlightInfo left one.
    async fn fetch(&self, principal: &Principal, ticket: &Bytes) -> Result<DataStream, Status> {
        let engine = self.auth.engine();
        let stream = match self.plans.take(ticket, principal) {
            Some(planned) => engine.run_as(principal, planned).await,
            None => {
                let (sql, parameters) = self.statement(ticket)?;
                engine.query_as(principal, &sql, parameters).await
            }
        };
        Ok(rows(stream.map_err(Error::from)?))
    }

    /// A DoGet whose ticket is the JSON of an InfluxDB 3 client:
    /// `{"database": …, "sql_query": …, "query_type": "sql"}`.
    pub(crate) async fn json_ticket(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        #[derive(Deserialize)]
        struct JsonTicket {
            #[serde(default)]
            database: String,
            sql_query: String,
            #[serde(default = "sql")]
            query_type: String,
        }
        fn sql() -> String {
            "sql".into()
        }
        let principal = self.principal(&request).await?;
        let ticket: JsonTicket =
            serde_json::from_slice(&request.get_ref().ticket).map_err(|e| {
                Status::invalid_argument(format!(
                    "a JSON ticket needs sql_query (and database): {e}"
                ))
            })?;
        if ticket.query_type != "sql" {
            return Err(Status::invalid_argument(format!(
                "query_type '{}' is not supported; use \"sql\"",
                ticket.query_type
            )));
        }
        if !ticket.database.is_empty() && ticket.database != principal.org.name {
            return Err(Status::permission_denied(format!(
                "database '{}' is not this token's organization ({})",
                ticket.database, principal.org.name
            )));
        }
        Ok(Response::new(
            self.run(&principal, &ticket.sql_query, None).await?,
        ))
    }

    /// Refuses statements that change data or schema.
    async fn update(&self, principal: &Principal, sql: &str) -> Result<i64, Status> {
        let message = if principal.is_admin() {
            format!(
                "`{}`: streams change only through writes (Flight ingest, DoPut, the ingest API) and \
                 the maintenance commands; DDL and DML statements are not supported",
                sql.trim()
            )
        } else {
            return Err(Status::permission_denied(format!(
                "DDL and DML are not allowed for {} (roles: {})",
                principal.actor,
                principal
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        Err(Status::unimplemented(message))
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "send `authorization: Basic base64(USERNAME:PASSWORD)` to log in",
                )
            })?;
        let token = match header.split_once(' ') {
            Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => {
                self.auth
                    .login_basic(credentials, INTERFACE)
                    .await?
                    .1
                    .access_token
            }
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                self.auth.authenticate(Some(header), INTERFACE).await?;
                token.trim().to_owned()
            }
            _ => {
                return Err(Status::unauthenticated(
                    "unsupported authorization scheme; use Basic or Bearer",
                ));
            }
        };
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: Bytes::from(token.clone()),
        };
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(futures::stream::once(async { Ok(response) })));
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| Status::internal(e.to_string()))?;
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = self.principal(&request).await?;
        let sql = query.query;
        let handle = Handle {
            sql: sql.clone(),
            parameters: None,
        }
        .encode();
        let schema = self.plan(&principal, &sql, None, handle.clone()).await?;
        let ticket = TicketStatementQuery {
            statement_handle: handle,
        };
        flight_info(&schema, &ticket, request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let principal = self.principal(&request).await?;
        let handle = &query.prepared_statement_handle;
        let (sql, parameters) = self.statement(handle)?;
        // The ticket carries the parameters, whichever way they were bound.
        let bound = match Handle::decode(handle)?.parameters()? {
            Some(_) => handle.clone(),
            None => match self.bound().get(handle) {
                Some(batch) => Handle::with_parameters(sql.clone(), batch)?.encode(),
                None => handle.clone(),
            },
        };
        let schema = self
            .plan(&principal, &sql, parameters, bound.clone())
            .await?;
        let ticket = TicketStatementQuery {
            statement_handle: bound,
        };
        flight_info(&schema, &ticket, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.fetch(&principal, &ticket.statement_handle).await?,
        ))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.fetch(&principal, &query.prepared_statement_handle)
                .await?,
        ))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let principal = self.principal(&request).await?;
        let prepared = self
            .auth
            .engine()
            .prepare_as(&principal, &query.query)
            .await
            .map_err(Error::from)?;
        let parameters = Schema::new(
            prepared
                .parameters
                .iter()
                .map(|(name, data_type)| {
                    Field::new(name, data_type.clone().unwrap_or(DataType::Utf8), true)
                })
                .collect::<Vec<_>>(),
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle {
                sql: query.query,
                parameters: None,
            }
            .encode(),
            dataset_schema: schema_bytes(&prepared.schema)?,
            parameter_schema: schema_bytes(&parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.principal(&request).await?;
        self.bound().remove(&query.prepared_statement_handle);
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.principal(&request).await?;
        let batches = decode_batches(request).await?;
        let Some(parameters) = batches.into_iter().find(|b| b.num_rows() > 0) else {
            return Ok(DoPutPreparedStatementResult {
                prepared_statement_handle: None,
            });
        };
        let handle = query.prepared_statement_handle;
        let sql = Handle::decode(&handle)?.sql;
        parameter_values(Some(parameters.clone()))?;
        self.bound().insert(handle, parameters.clone());
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(Handle::with_parameters(sql, &parameters)?.encode()),
        })
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = self.principal(&request).await?;
        self.update(&principal, &command.query).await
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = self.principal(&request).await?;
        let sql = Handle::decode(&query.prepared_statement_handle)?.sql;
        self.update(&principal, &sql).await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let principal = self.principal(&request).await?;
        let options = command.table_definition_options.unwrap_or_default();
        if options.if_not_exist == TableNotExistOption::Create as i32 && command.table.is_empty() {
            return Err(Status::invalid_argument("name the stream to ingest into"));
        }
        if options.if_exists == TableExistsOption::Replace as i32
            || options.if_exists == TableExistsOption::Fail as i32
        {
            return Err(Status::invalid_argument(format!(
                "ingest appends to stream {} (rows with the same series key and time replace stored ones); \
                 replacing or refusing an existing stream is not supported",
                command.table
            )));
        }
        if let Some(schema) = command
            .schema
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "health")
        {
            return Err(Status::invalid_argument(format!(
                "ingest writes to streams in schema health, not {schema}"
            )));
        }
        let engine = self.auth.engine();
        if engine
            .catalog()
            .streams()
            .get(principal.org.id, &command.table)
            .await
            .is_err()
        {
            return Err(Status::not_found(format!(
                "stream {} does not exist; streams are registered with `healthai streams register`, \
                 not created by ingest",
                command.table
            )));
        }
        let source = format!("Flight ingest into {}", command.table);
        let mut rows = 0i64;
        let mut batches = decoded(request);
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let written =
                ingest::write_batch(engine, &principal, &command.table, batch, &source).await;
            let outcome = match &written {
                Ok(_) => catalog::AuditOutcome::Ok,
                Err(_) => catalog::AuditOutcome::Error,
            };
            engine.audit(
                &principal,
                "write",
                Some(&command.table),
                written.as_ref().ok().map(|n| *n as i64),
                outcome,
                written.as_ref().err().map(ToString::to_string),
            );
            rows += written.map_err(Error::from)? as i64;
        }
        Ok(rows)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        flight_info(&self.sql_info.schema(), &query, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        let builder = query.into_builder(&self.sql_info);
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        flight_info(
            &query.into_builder().schema(),
            &CommandGetCatalogs {},
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.clone().into_builder().schema();
        flight_info(&schema, &query, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let principal = self.principal(&request).await?;
        let schemas = metadata::schemas(self.auth.engine(), &principal).await?;
        let mut builder = query.into_builder();
        for schema in &schemas {
            builder.append(CATALOG, schema);
        }
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        let schema = query.clone().into_builder().schema();
        flight_info(&schema, &query, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        let principal = self.principal(&request).await?;
        let tables = metadata::tables(self.auth.engine(), &principal).await?;
        let mut builder = query.into_builder();
        for table in &tables {
            builder
                .append(
                    CATALOG,
                    &table.schema,
                    &table.name,
                    table.kind,
                    &table.columns,
                )
                .map_err(Status::from)?;
        }
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        flight_info(
            &query.into_builder().schema(),
            &CommandGetTableTypes {},
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        let mut builder = query.into_builder();
        for kind in metadata::TABLE_TYPES {
            builder.append(kind);
        }
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request).await?;
        flight_info(&self.xdbc.schema(), &query, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        let builder = query.into_builder(&self.xdbc);
        Ok(Response::new(one_batch(
            builder.build().map_err(Status::from)?,
        )))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.key_listing_info(request, &query, metadata::primary_keys_schema())
            .await
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.no_keys(request, metadata::primary_keys_schema()).await
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.key_listing_info(request, &query, metadata::foreign_keys_schema())
            .await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.no_keys(request, metadata::foreign_keys_schema()).await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.key_listing_info(request, &query, metadata::foreign_keys_schema())
            .await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.no_keys(request, metadata::foreign_keys_schema()).await
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.key_listing_info(request, &query, metadata::foreign_keys_schema())
            .await
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<DataStream>, Status> {
        self.no_keys(request, metadata::foreign_keys_schema()).await
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DataStream>, Status> {
        self.principal(&request).await?;
        Err(Status::invalid_argument(format!(
            "unknown ticket type {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Record batches of a DoPut, skipping descriptor-only messages (some clients send the
/// command alone first).
fn decoded(
    request: Request<PeekableFlightDataStream>,
) -> impl Stream<Item = Result<RecordBatch, Status>> + Send {
    let data = request
        .into_inner()
        .try_filter(|message| futures::future::ready(!message.data_header.is_empty()))
        .map_err(FlightError::from);
    FlightRecordBatchStream::new_from_flight_data(data).map_err(Status::from)
}

async fn decode_batches(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<RecordBatch>, Status> {
    decoded(request).try_collect().await
}

/// The Flight service as served: Flight SQL, plus plain DoGet tickets holding the JSON of
/// InfluxDB 3 clients, which Flight SQL's dispatcher would refuse.
pub struct FlightEndpoints(pub Arc<FlightSql>);

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FlightService for FlightEndpoints {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<arrow_flight::PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<arrow_flight::ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&*self.0, request).await
    }

    async fn list_flights(
        &self,
        request: Request<arrow_flight::Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&*self.0, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&*self.0, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<arrow_flight::PollInfo>, Status> {
        FlightService::poll_flight_info(&*self.0, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<arrow_flight::SchemaResult>, Status> {
        FlightService::get_schema(&*self.0, request).await
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        // A protobuf Any starts with 0x0A; a JSON ticket with '{'.
        if request.get_ref().ticket.first() == Some(&b'{') {
            return self.0.json_ticket(request).await;
        }
        FlightService::do_get(&*self.0, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&*self.0, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&*self.0, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&*self.0, request).await
    }

    async fn list_actions(
        &self,
        request: Request<arrow_flight::Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&*self.0, request).await
    }
}
