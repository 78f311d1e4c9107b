//! [`StreamTable`]: a stream as a SQL table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use catalog::{Catalog, FileFilter, SubjectId};
use datafusion::{
    catalog::{Session, TableProvider},
    common::{DFSchema, DataFusionError, Result},
    execution::object_store::ObjectStoreUrl,
    logical_expr::{Expr, TableProviderFilterPushDown, TableType, utils::conjunction},
    physical_plan::{
        ExecutionPlan,
        empty::EmptyExec,
        filter::FilterExec,
        projection::{ProjectionExec, ProjectionExpr},
    },
    prelude::{col, lit},
};

use super::{
    prune,
    scan::{FileScan, cached_reader},
};
use crate::{
    access::RowScope,
    schema::{SUBJECT_ID, StreamSchema},
};

/// A stream of the session's organization. Its scan asks the catalog for the live files that
/// may match the query's time and subject bounds, reads them (merging overlapping ones), and
/// keeps only the rows of subjects the session may see, inside the scan, where no SQL can
/// reach.
#[derive(Debug, Clone)]
pub(crate) struct StreamTable {
    pub schema: Arc<StreamSchema>,
    pub catalog: Arc<dyn Catalog>,
    pub store: ObjectStoreUrl,
    /// The subjects the session may read.
    pub scope: RowScope,
    /// Subjects whose rows never leave the scan (erased subjects).
    pub hidden: Arc<[i64]>,
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for StreamTable {
    fn schema(&self) -> SchemaRef {
        self.schema.arrow_schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune files, row groups and pages; DataFusion still applies them to rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.schema.arrow_schema();
        let Some(bounds) = self.bounds(filters) else {
            return self.nothing(projection);
        };
        let files = self
            .catalog
            .files()
            .live_files(self.schema.id(), bounds)
            .await
            .map_err(external)?;
        let df_schema = DFSchema::try_from(table.clone())?;
        let physical = |exprs: Vec<Expr>| {
            conjunction(exprs)
                .map(|e| state.create_physical_expr(e, &df_schema))
                .transpose()
        };
        let key_columns = self.schema.sort_key_names();
        let on_keys = |e: &&Expr| {
            e.column_refs()
                .iter()
                .all(|c| key_columns.contains(&c.name.as_str()))
        };
        let key_predicate = physical(filters.iter().filter(on_keys).cloned().collect())?;

        // Read subject_id even when the query does not ask for it: the subject filter needs it.
        // The projection below then returns exactly the requested columns.
        let requested: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..table.fields().len()).collect(),
        };
        let subject = self.schema.index_of(SUBJECT_ID);
        let mut read = requested.clone();
        let visibility = self.visibility();
        if visibility.is_some() && !read.contains(&subject) {
            read.push(subject);
        }
        let plan = FileScan {
            schema: &self.schema,
            store: &self.store,
            options: state.default_table_options().parquet,
            files,
            bounds,
            projection: Some(read.clone()),
            // The filters are inexact, so DataFusion keeps them in a filter above this scan
            // and its filter pushdown hands them to the reader of each file read directly;
            // given here as well, each would be evaluated twice (pruning and rows).
            predicate: None,
            key_predicate,
            reader: Some(cached_reader(state.runtime_env(), &self.store)?),
        }
        .plan()?;
        let Some(visible) = visibility else {
            return Ok(plan);
        };
        let read_schema = DFSchema::try_from(plan.schema())?;
        let visible = state.create_physical_expr(visible, &read_schema)?;
        let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(visible, plan)?);
        if read == requested {
            return Ok(filtered);
        }
        let exprs = requested
            .iter()
            .enumerate()
            .map(|(position, &i)| {
                let name = table.field(i).name();
                ProjectionExpr::new(
                    Arc::new(datafusion::physical_expr::expressions::Column::new(
                        name, position,
                    )),
                    name.clone(),
                )
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
    }
}

impl StreamTable {
    /// The catalog bounds of the files the filters and the session's scope leave to read;
    /// `None` when the session may see no row.
    pub(super) fn bounds(&self, filters: &[Expr]) -> Option<FileFilter> {
        let mut bounds = prune::file_filter(filters);
        match &self.scope {
            RowScope::Nothing => return None,
            RowScope::Subjects(ids) => {
                let (first, last) = (ids.first()?, ids.last()?);
                let (low, high) = bounds
                    .subjects
                    .unwrap_or((SubjectId(i64::MIN), SubjectId(i64::MAX)));
                bounds.subjects = Some((low.max(SubjectId(*first)), high.min(SubjectId(*last))));
            }
            RowScope::All => {}
        }
        Some(bounds)
    }

    /// The filter on `subject_id` that keeps the rows the session may see; `None` when it may
    /// see every subject's.
    pub(super) fn visibility(&self) -> Option<Expr> {
        let mut visible = Vec::new();
        if let RowScope::Subjects(ids) = &self.scope {
            let listed = ids.iter().map(|id| lit(*id)).collect();
            visible.push(col(SUBJECT_ID).in_list(listed, false));
        }
        if !self.hidden.is_empty() {
            let hidden = self.hidden.iter().map(|id| lit(*id)).collect();
            visible.push(col(SUBJECT_ID).in_list(hidden, true));
        }
        conjunction(visible)
    }

    /// The scan of a session that may see no row of this stream.
    fn nothing(&self, projection: Option<&Vec<usize>>) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.arrow_schema().project(p)?),
            None => self.schema.arrow_schema().clone(),
        };
        Ok(Arc::new(EmptyExec::new(schema)))
    }
}
