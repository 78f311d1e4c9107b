//! [`RollupTable`]: a stream's rollup at one width as a table, and [`RollupExec`], which
//! rolls raw rows up at query time.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, LazyLock, Mutex},
};

use arrow::{compute::SortOptions, datatypes::SchemaRef};
use async_trait::async_trait;
use catalog::ParquetFile;
use datafusion::{
    catalog::{Session, TableProvider},
    common::{DFSchema, DataFusionError, Result, tree_node::TreeNodeRecursion},
    datasource::{
        listing::PartitionedFile,
        physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource},
        source::DataSourceExec,
    },
    execution::{SendableRecordBatchStream, TaskContext},
    logical_expr::{Expr, TableProviderFilterPushDown, TableType, utils::conjunction},
    physical_expr::{
        EquivalenceProperties, LexOrdering, Partitioning, PhysicalExpr, PhysicalSortExpr,
        expressions::Column,
    },
    physical_plan::{
        DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
        empty::EmptyExec,
        execution_plan::{Boundedness, EmissionType},
        filter::FilterExec,
        projection::{ProjectionExec, ProjectionExpr},
        stream::RecordBatchStreamAdapter,
        union::UnionExec,
    },
};
use futures::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};

use super::super::{
    scan::{FileScan, cached_reader, overlapping_groups},
    stream_table::StreamTable,
};
use crate::{
    rollup::{Part, RollupBuilder, RollupSchema, ValueInputs, Width},
    schema::{SUBJECT_ID, TIME},
    store::rollup_path,
};

/// Rollup rows of a stream at one width, as partial aggregates: a (subject, bucket) may come
/// in several rows, which the aggregation above merges. Files whose rollups stand for them
/// (compacted, overlapping no other file) are read from their rollup files; the others are
/// read raw, de-duplicated, and rolled up by [`RollupExec`].
#[derive(Debug)]
pub(crate) struct RollupTable {
    pub stream: StreamTable,
    pub rollup: RollupSchema,
    pub width: Width,
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Sizes of rollup files, which the catalog does not keep: files never change, so a size
/// once read stays true.
static ROLLUP_SIZES: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// The sizes of rollup files; `None` for a file that has none (compacted before this engine
/// wrote rollups), whose data file is then rolled up at query time.
async fn sizes(store: &Arc<dyn ObjectStore>, paths: &[Path]) -> Result<Vec<Option<u64>>> {
    let known: Vec<Option<u64>> = {
        let cache = ROLLUP_SIZES.lock().unwrap_or_else(|e| e.into_inner());
        paths
            .iter()
            .map(|p| cache.get(p.as_ref()).copied())
            .collect()
    };
    let lookups = paths.iter().cloned().zip(known).map(|(path, known)| {
        let store = store.clone();
        async move {
            match known {
                Some(size) => Ok(Some(size)),
                None => match store.head(&path).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(external(e)),
                },
            }
        }
    });
    let looked_up: Vec<Option<u64>> = stream::iter(lookups).buffered(16).try_collect().await?;
    let mut cache = ROLLUP_SIZES.lock().unwrap_or_else(|e| e.into_inner());
    for (path, size) in paths.iter().zip(&looked_up) {
        if let Some(size) = size {
            cache.insert(path.to_string(), *size);
        }
    }
    Ok(looked_up)
}

#[async_trait]
impl TableProvider for RollupTable {
    fn schema(&self) -> SchemaRef {
        self.rollup.arrow.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.rollup.arrow.clone();
        let requested: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..table.fields().len()).collect(),
        };
        let Some(bounds) = self.stream.bounds(filters) else {
            return Ok(Arc::new(EmptyExec::new(Arc::new(
                table.project(&requested)?,
            ))));
        };
        let files = self
            .stream
            .catalog
            .files()
            .live_files(self.stream.schema.id(), bounds)
            .await
            .map_err(external)?;
        let mut rolled: Vec<(Path, u64)> = Vec::new();
        let mut raw: Vec<ParquetFile> = Vec::new();
        let mut candidates: Vec<&ParquetFile> = Vec::new();
        for group in overlapping_groups(&files) {
            if group.len() == 1 && files[group[0]].compaction_level >= 1 {
                candidates.push(&files[group[0]]);
            } else {
                raw.extend(group.into_iter().map(|i| files[i].clone()));
            }
        }
        if !candidates.is_empty() {
            let store = state.runtime_env().object_store(&self.stream.store)?;
            let paths: Vec<Path> = candidates
                .iter()
                .map(|f| rollup_path(&f.path, self.width))
                .collect();
            let sizes = sizes(&store, &paths).await?;
            for ((file, path), size) in candidates.into_iter().zip(paths).zip(sizes) {
                match size {
                    Some(size) => rolled.push((path, size)),
                    None => raw.push(file.clone()),
                }
            }
        }

        let subject = table.index_of(SUBJECT_ID)?;
        let visibility = self.stream.visibility();
        let mut read = requested.clone();
        if visibility.is_some() && !read.contains(&subject) {
            read.push(subject);
        }
        let rollup_df_schema = DFSchema::try_from(table.clone())?;
        let predicate = conjunction(filters.to_vec())
            .map(|e| state.create_physical_expr(e, &rollup_df_schema))
            .transpose()?;
        let options = state.default_table_options().parquet;
        let reader = cached_reader(state.runtime_env(), &self.stream.store)?;

        let mut parts: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !rolled.is_empty() {
            let mut source = ParquetSource::new(table.clone())
                .with_table_parquet_options(options.clone())
                .with_parquet_file_reader_factory(reader.clone());
            if let Some(predicate) = &predicate {
                source = source.with_predicate(predicate.clone());
            }
            let groups = rolled
                .into_iter()
                .map(|(path, size)| {
                    FileGroup::new(vec![PartitionedFile::new(path.to_string(), size)])
                })
                .collect();
            // Each rollup file is sorted as its data file: by subject, then bucket. Saying so
            // lets the aggregation kernel fold its rows without a hash table.
            let ascending = SortOptions {
                descending: false,
                nulls_first: false,
            };
            let ordering = LexOrdering::new([
                PhysicalSortExpr::new(Arc::new(Column::new(SUBJECT_ID, subject)), ascending),
                PhysicalSortExpr::new(
                    Arc::new(Column::new(TIME, table.index_of(TIME)?)),
                    ascending,
                ),
            ])
            .expect("two sort columns");
            let config = FileScanConfigBuilder::new(self.stream.store.clone(), Arc::new(source))
                .with_file_groups(groups)
                .with_output_ordering(vec![ordering])
                .with_projection_indices(Some(read.clone()))?
                .build();
            parts.push(DataSourceExec::from_data_source(config));
        }
        if !raw.is_empty() {
            let stream = &self.stream.schema;
            let mut columns = vec![stream.index_of(SUBJECT_ID), stream.index_of(TIME)];
            columns.extend(self.rollup.values.iter().map(|v| v.index));
            let stream_df_schema = DFSchema::try_from(stream.arrow_schema().clone())?;
            // Rollup filters are on subject_id and bucket-aligned times: on raw rows they
            // keep the same rows, and they are key predicates, safe below a merge.
            let raw_predicate = conjunction(filters.to_vec())
                .map(|e| state.create_physical_expr(e, &stream_df_schema))
                .transpose()?;
            let scan = FileScan {
                schema: stream,
                store: &self.stream.store,
                options,
                files: raw,
                bounds,
                projection: Some(columns),
                predicate: raw_predicate.clone(),
                key_predicate: raw_predicate,
                reader: Some(reader),
            }
            .plan()?;
            let sketches = self
                .rollup
                .values
                .iter()
                .map(|v| table.index_of(&Part::Sketch.column(&v.name)))
                .map(|i| i.map(|i| read.contains(&i)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let rolled_up: Arc<dyn ExecutionPlan> = Arc::new(RollupExec::try_new(
                scan,
                self.rollup.clone(),
                self.width,
                sketches,
            )?);
            parts.push(project(rolled_up, &table, &read)?);
        }
        let plan = match parts.len() {
            0 => {
                return Ok(Arc::new(EmptyExec::new(Arc::new(
                    table.project(&requested)?,
                ))));
            }
            1 => parts.remove(0),
            _ => UnionExec::try_new(parts)?,
        };
        let Some(visible) = visibility else {
            return Ok(plan);
        };
        let visible = state.create_physical_expr(visible, &DFSchema::try_from(plan.schema())?)?;
        let filtered: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(visible, plan)?);
        if read == requested {
            return Ok(filtered);
        }
        let positions: Vec<usize> = (0..requested.len()).collect();
        let kept = Arc::new(table.project(&requested)?);
        let exprs = positions
            .iter()
            .map(|&i| {
                let name = kept.field(i).name();
                ProjectionExpr::new(Arc::new(Column::new(name, i)), name.clone())
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, filtered)?))
    }
}

/// The columns `read` (indices into the full rollup schema `table`) of a plan producing the
/// full rollup schema.
fn project(
    plan: Arc<dyn ExecutionPlan>,
    table: &SchemaRef,
    read: &[usize],
) -> Result<Arc<dyn ExecutionPlan>> {
    let exprs = read
        .iter()
        .map(|&i| {
            let name = table.field(i).name();
            ProjectionExpr::new(Arc::new(Column::new(name, i)), name.clone())
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
}

/// Rolls each input partition's rows up at one width, streaming. Input partitions sorted by
/// subject and time give one row per (subject, bucket); other orders give partial rows.
#[derive(Debug)]
pub(crate) struct RollupExec {
    input: Arc<dyn ExecutionPlan>,
    rollup: RollupSchema,
    width: Width,
    /// Positions in the input of subject_id, time and each value column of `rollup`.
    subject: usize,
    time: usize,
    values: ValueInputs,
    properties: Arc<PlanProperties>,
}

impl RollupExec {
    pub(crate) fn try_new(
        input: Arc<dyn ExecutionPlan>,
        rollup: RollupSchema,
        width: Width,
        sketches: Vec<bool>,
    ) -> Result<Self> {
        let schema = input.schema();
        let subject = schema.index_of(SUBJECT_ID)?;
        let time = schema.index_of(TIME)?;
        let values = ValueInputs {
            positions: rollup
                .values
                .iter()
                .map(|v| schema.index_of(&v.name))
                .collect::<std::result::Result<_, _>>()?,
            sketches,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(rollup.arrow.clone()),
            Partitioning::UnknownPartitioning(input.properties().partitioning.partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(RollupExec {
            input,
            rollup,
            width,
            subject,
            time,
            values,
            properties,
        })
    }
}

impl DisplayAs for RollupExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RollupExec: width={} (raw rows not yet rolled up)",
            self.width.label()
        )
    }
}

/// Rows gathered before a partial rollup batch goes on.
const OUTPUT_ROWS: usize = 8192;

impl ExecutionPlan for RollupExec {
    fn name(&self) -> &str {
        "RollupExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(RollupExec::try_new(
            crate::query::only_input(self.name(), &children)?.clone(),
            self.rollup.clone(),
            self.width,
            self.values.sketches.clone(),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let builder = RollupBuilder::with_columns(
            self.rollup.clone(),
            self.width,
            self.subject,
            self.time,
            Some(self.values.clone()),
        );
        let batches = stream::unfold((input, Some(builder)), |(mut input, builder)| async move {
            let mut builder = builder?;
            loop {
                match input.next().await {
                    Some(Ok(batch)) => {
                        if let Err(e) = builder.push(&batch) {
                            return Some((Err(external(e)), (input, None)));
                        }
                        if builder.pending_rows() >= OUTPUT_ROWS {
                            let out = builder.take(false).map_err(external);
                            return Some((out, (input, Some(builder))));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (input, None))),
                    None => {
                        let out = builder.take(true).map_err(external);
                        return Some((out, (input, None)));
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.rollup.arrow.clone(),
            batches,
        )))
    }
}
