//! The query path: a DataFusion session per request, holding one organization's catalog.
//!
//! Schemas of the `healthai` catalog: `health` (the streams), `meta` (subjects, groups,
//! members, goals), `system` (streams, partitions, files, ingest batches, quality reports) and
//! `reference` (reference tables such as foods). `health` is the default schema, so
//! `SELECT * FROM heart_rate` works. Sessions are read-only: DDL, DML and other statements
//! are refused.

mod bucketed;
mod catalog_tables;
pub(crate) mod dedup;
mod functions;
mod gapfill;
mod latest;
mod placeholders;
mod prune;
mod result;
mod rollup;
pub(crate) mod scan;
mod stream_table;

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use catalog::{Catalog, Organization};
use datafusion::{
    catalog::{CatalogProvider, MemoryCatalogProviderList, SchemaProvider, Session, TableProvider},
    common::{DataFusionError, Result as DfResult},
    execution::{
        SessionState, SessionStateBuilder, context::QueryPlanner, object_store::ObjectStoreUrl,
        runtime_env::RuntimeEnv,
    },
    logical_expr::LogicalPlan,
    physical_optimizer::{PhysicalOptimizerRule, optimizer::PhysicalOptimizer},
    physical_plan::ExecutionPlan,
    physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner},
    prelude::{SQLOptions, SessionConfig, SessionContext},
};

pub use self::bucketed::{BucketedAggregateExec, BucketedAggregateRule};
pub(crate) use self::catalog_tables::Context;
pub(crate) use self::placeholders::number_placeholders;
pub use self::result::QueryStream;
use self::stream_table::StreamTable;
use crate::{access::RowScope, registry::Registry, rollup::Densities, schema::StreamSchema};

pub(crate) const CATALOG_NAME: &str = "healthai";
pub(crate) const STREAMS_SCHEMA: &str = "health";

/// What a session may run: queries only.
pub(crate) fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The configuration every session shares: strings come back as Utf8 (what Flight SQL
/// clients read), and `information_schema` describes the tables to BI tools.
pub(crate) fn session_config(target_partitions: usize) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(target_partitions)
        .with_default_catalog_and_schema(CATALOG_NAME, STREAMS_SCHEMA)
        .with_create_default_catalog_and_schema(false);
    let options = config.options_mut();
    options.execution.parquet.schema_force_view_types = false;
    options.sql_parser.map_string_types_to_utf8view = false;
    // DataFusion plans as if a scan's predicate were applied to its rows (a scan with
    // `subject_id = 3` is taken to hold one subject); the reader makes that true only when it
    // filters rows while decoding. Merges below de-duplication rely on the plan's orderings.
    options.execution.parquet.pushdown_filters = true;
    // Stream scans estimate the rows their bounds leave (`scan::FileScan`): a scan expected
    // to return at most a batch stays one partition instead of being spread round-robin.
    options
        .execution
        .use_row_number_estimates_to_optimize_partitioning = true;
    config
}

/// DataFusion's physical optimizer rules with the engine's own: [`BucketedAggregateRule`]
/// runs before `EnsureRequirements`, on the aggregations as the planner made them.
///
/// ```
/// # use datafusion::{execution::SessionStateBuilder, prelude::SessionContext};
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_physical_optimizer_rules(engine::physical_optimizer_rules())
///     .build();
/// let ctx = SessionContext::new_with_state(state);
/// ```
pub fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let before = rules
        .iter()
        .position(|rule| rule.name() == "EnsureRequirements")
        .unwrap_or(0);
    rules.insert(before, Arc::new(BucketedAggregateRule));
    rules
}

/// What every session of an engine starts from: configuration, functions, optimizer rules.
/// Built once, because building it registers every function again (a tenth of a short
/// query's time); each session clones it and gets a catalog of its own.
pub(crate) fn session_template(
    target_partitions: usize,
    aggregation_kernel: bool,
    rollups: Option<Arc<Densities>>,
    runtime: Arc<RuntimeEnv>,
) -> SessionState {
    let mut state = SessionStateBuilder::new()
        .with_config(session_config(target_partitions))
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(if aggregation_kernel {
            physical_optimizer_rules()
        } else {
            PhysicalOptimizer::new().rules
        });
    // Before DataFusion's planners: the first that plans an expression wins.
    if let Some(planners) = state.expr_planners() {
        planners.insert(0, Arc::new(functions::ExtractPlanner));
    }
    if let Some(densities) = rollups {
        state = state.with_optimizer_rule(Arc::new(rollup::RollupRule { densities }));
    }
    // Last: it looks at aggregations as the other rules leave them.
    state = state
        .with_optimizer_rule(Arc::new(latest::LatestBucketsRule))
        .with_query_planner(Arc::new(ExtensionPlanners));
    let ctx = SessionContext::new_with_state(gapfill::install(state).build());
    ctx.register_udaf(rollup::approx_quantile());
    functions::register(&ctx);
    ctx.state()
}

/// The input of an operator that has one: for `ExecutionPlan::with_new_children` and the
/// extension planners, which DataFusion hands a list.
pub(crate) fn only_input<'a>(
    operator: &str,
    inputs: &'a [Arc<dyn ExecutionPlan>],
) -> DfResult<&'a Arc<dyn ExecutionPlan>> {
    match inputs {
        [input] => Ok(input),
        _ => Err(DataFusionError::Internal(format!(
            "{operator} has one input, not {}",
            inputs.len()
        ))),
    }
}

/// DataFusion's physical planner with the planners of the engine's logical nodes.
#[derive(Debug)]
pub(crate) struct ExtensionPlanners;

#[async_trait]
impl QueryPlanner for ExtensionPlanners {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(gapfill::GapFillPlanner),
            Arc::new(latest::LatestBucketsPlanner),
        ])
        .create_physical_plan(logical_plan, session)
        .await
    }
}

pub(crate) struct SessionParts {
    pub org: Organization,
    pub registry: Arc<Registry>,
    pub catalog: Arc<dyn Catalog>,
    pub store: ObjectStoreUrl,
    pub context: Context,
    /// Whether the session has the organization-wide `system` tables.
    pub system_tables: bool,
    /// Whether the session has `system.audit_log` and `system.quarantine`.
    pub audit_table: bool,
}

/// A session from the engine's template holding the organization's catalog as the parts
/// allow. It runs on the engine's shared runtime: a query's own memory pool is given at
/// execution (see `Engine::run_as`).
pub(crate) fn session(template: &SessionState, parts: SessionParts) -> SessionContext {
    let mut state = template.clone();
    // The clone shares the template's catalog list; the organization's catalog must not
    // land in it.
    state.register_catalog_list(Arc::new(MemoryCatalogProviderList::new()));
    let ctx = SessionContext::new_with_state(state);
    let lookup = StreamLookup {
        org: parts.org.clone(),
        registry: parts.registry.clone(),
        catalog: parts.catalog.clone(),
        store: parts.store.clone(),
        scope: parts.context.scope.clone(),
        hidden: parts.context.hidden.clone(),
    };
    let streams = StreamTables {
        known: parts
            .context
            .streams
            .iter()
            .map(|schema| (schema.name().to_owned(), lookup.table(schema.clone())))
            .collect(),
        lookup,
    };
    let [meta, system] = catalog_tables::meta_and_system(
        parts.catalog.clone(),
        parts.context.clone(),
        parts.system_tables,
        parts.audit_table,
    );
    let schema = |tables: Vec<(&str, Arc<dyn TableProvider>)>| -> Arc<dyn SchemaProvider> {
        Arc::new(Tables(
            tables.into_iter().map(|(n, t)| (n.to_owned(), t)).collect(),
        ))
    };
    let schemas = HashMap::from([
        (
            STREAMS_SCHEMA.to_owned(),
            Arc::new(streams) as Arc<dyn SchemaProvider>,
        ),
        ("meta".to_owned(), schema(meta)),
        ("system".to_owned(), schema(system)),
        (
            "reference".to_owned(),
            schema(catalog_tables::reference(
                parts.catalog.clone(),
                parts.context.clone(),
            )),
        ),
    ]);
    ctx.register_catalog(CATALOG_NAME, Arc::new(Schemas(schemas)));
    ctx
}

/// The organization's schemas.
#[derive(Debug)]
struct Schemas(HashMap<String, Arc<dyn SchemaProvider>>);

impl CatalogProvider for Schemas {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.0.keys().cloned().collect();
        names.sort();
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.0.get(name).cloned()
    }
}

/// What a stream table of the session needs besides its schema.
struct StreamLookup {
    org: Organization,
    registry: Arc<Registry>,
    catalog: Arc<dyn Catalog>,
    store: ObjectStoreUrl,
    scope: RowScope,
    hidden: Arc<[i64]>,
}

impl std::fmt::Debug for StreamLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLookup")
            .field("org", &self.org.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl StreamLookup {
    fn table(&self, schema: Arc<StreamSchema>) -> Arc<dyn TableProvider> {
        Arc::new(StreamTable {
            schema,
            catalog: self.catalog.clone(),
            store: self.store.clone(),
            scope: self.scope.clone(),
            hidden: self.hidden.clone(),
        })
    }
}

/// The `health` schema: the streams listed when the session started (a listing may be a
/// moment old), and any other stream the catalog knows by the name a query uses.
#[derive(Debug)]
struct StreamTables {
    known: HashMap<String, Arc<dyn TableProvider>>,
    lookup: StreamLookup,
}

#[async_trait]
impl SchemaProvider for StreamTables {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.known.keys().cloned().collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.known.get(name) {
            return Ok(Some(table.clone()));
        }
        let lookup = &self.lookup;
        match lookup
            .registry
            .stream(lookup.catalog.as_ref(), &lookup.org, name)
            .await
        {
            Ok(schema) => Ok(Some(lookup.table(schema))),
            Err(crate::Error::Catalog(catalog::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(DataFusionError::External(Box::new(e))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.known.contains_key(name)
    }
}

/// A fixed set of tables.
#[derive(Debug)]
struct Tables(HashMap<String, Arc<dyn TableProvider>>);

#[async_trait]
impl SchemaProvider for Tables {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.0.keys().cloned().collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.0.get(name).cloned())
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}
