//! Physical plans over a stream's Parquet files.
//!
//! Files of one partition whose key ranges overlap (flushes not yet compacted, a late write
//! into an old day) may hold several versions of a reading. They are read as one sorted merge,
//! ordered by the sort key and then by write order, newest first, and [`DedupExec`] keeps the
//! newest version. Files that overlap nothing are read directly, with no merge cost. Below a
//! merge, only predicates on key columns are pushed into the reader: a predicate on a value
//! could skip the newest version of a reading and let an older one through.

use std::sync::Arc;

use arrow::{
    compute::SortOptions,
    datatypes::{DataType, Field, SchemaRef},
};
use catalog::{FileFilter, ParquetFile};
use datafusion::{
    common::{
        ColumnStatistics, Result, ScalarValue, Statistics,
        config::TableParquetOptions,
        stats::Precision,
        tree_node::{TreeNode, TreeNodeRecursion},
    },
    datasource::{
        listing::PartitionedFile,
        physical_plan::{
            FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetFileReaderFactory,
            ParquetSource, parquet::CachedParquetFileReaderFactory,
        },
        source::DataSourceExec,
        table_schema::TableSchema,
    },
    execution::{object_store::ObjectStoreUrl, runtime_env::RuntimeEnv},
    physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr, expressions::Column},
    physical_plan::{
        ExecutionPlan,
        empty::EmptyExec,
        projection::{ProjectionExec, ProjectionExpr},
        sorts::sort_preserving_merge::SortPreservingMergeExec,
        union::UnionExec,
    },
};

use super::dedup::DedupExec;
use crate::schema::{SUBJECT_ID, StreamSchema, TIME};

/// The partition column that carries each file's write order into a merge.
const SEQUENCE: &str = "__healthai_sequence";

/// A scan of some of a stream's files.
pub(crate) struct FileScan<'a> {
    pub schema: &'a StreamSchema,
    pub store: &'a ObjectStoreUrl,
    pub options: TableParquetOptions,
    pub files: Vec<ParquetFile>,
    /// The time and subject ranges the query reads, for estimating the rows it reads.
    pub bounds: FileFilter,
    /// Stream columns to return, by index; `None` for all.
    pub projection: Option<Vec<usize>>,
    /// For pruning files read directly: any predicate over the stream's columns.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    /// For pruning files that are merged: a predicate on key and time columns only.
    pub key_predicate: Option<Arc<dyn PhysicalExpr>>,
    /// How files are opened; `None` reads each footer afresh (maintenance, whose files are
    /// about to be replaced, so remembering them would only evict what queries use).
    pub reader: Option<Arc<dyn ParquetFileReaderFactory>>,
}

/// A reader that keeps each file's footer and page index in the runtime's metadata cache.
/// A file is never rewritten at its path (every data file and its rollups are named by a
/// fresh UUID), so what was read once stays true; a point query then reads only the pages
/// it needs instead of the footer, its statistics and the page index of a day first.
pub(crate) fn cached_reader(
    runtime: &RuntimeEnv,
    store: &ObjectStoreUrl,
) -> Result<Arc<dyn ParquetFileReaderFactory>> {
    Ok(Arc::new(CachedParquetFileReaderFactory::new(
        runtime.object_store(store)?,
        runtime.cache_manager.get_file_metadata_cache(),
    )))
}

impl FileScan<'_> {
    /// Reads non-overlapping files directly and merges each set of overlapping ones.
    pub(crate) fn plan(self) -> Result<Arc<dyn ExecutionPlan>> {
        let groups = overlapping_groups(&self.files);
        let (singles, merged): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.len() == 1);
        let mut parts = Vec::new();
        if !singles.is_empty() {
            let files = singles
                .iter()
                .map(|g| &self.files[g[0]])
                .collect::<Vec<_>>();
            parts.push(self.direct(&files)?);
        }
        for group in merged {
            let files = group.iter().map(|i| &self.files[*i]).collect::<Vec<_>>();
            parts.push(self.deduplicated(&files)?);
        }
        match parts.len() {
            0 => Ok(Arc::new(EmptyExec::new(self.output_schema()?))),
            1 => Ok(parts.remove(0)),
            _ => UnionExec::try_new(parts),
        }
    }

    /// All files as one sorted, de-duplicated stream: what compaction writes.
    pub(crate) fn merged(self) -> Result<Arc<dyn ExecutionPlan>> {
        match self.files.len() {
            0 => Ok(Arc::new(EmptyExec::new(self.output_schema()?))),
            _ => {
                let files: Vec<_> = self.files.iter().collect();
                self.deduplicated(&files)
            }
        }
    }

    fn output_schema(&self) -> Result<SchemaRef> {
        let schema = self.schema.arrow_schema();
        Ok(match &self.projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema.clone(),
        })
    }

    fn sort_exprs(&self) -> Vec<PhysicalSortExpr> {
        let schema = self.schema.arrow_schema();
        self.schema
            .sort_key()
            .iter()
            .map(|&i| {
                PhysicalSortExpr::new(
                    Arc::new(Column::new(schema.field(i).name(), i)),
                    SortOptions {
                        descending: false,
                        nulls_first: false,
                    },
                )
            })
            .collect()
    }

    fn source(
        &self,
        schema: impl Into<TableSchema>,
        predicate: &Option<Arc<dyn PhysicalExpr>>,
    ) -> ParquetSource {
        let mut source =
            ParquetSource::new(schema).with_table_parquet_options(self.options.clone());
        if let Some(predicate) = predicate {
            source = source.with_predicate(predicate.clone());
        }
        if let Some(reader) = &self.reader {
            source = source.with_parquet_file_reader_factory(reader.clone());
        }
        source
    }

    /// One partition per file, each sorted by the sort key.
    fn direct(&self, files: &[&ParquetFile]) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema.arrow_schema().clone();
        let source = self.source(schema.clone(), &self.predicate);
        let partitioned: Vec<_> = files
            .iter()
            .map(|f| self.partitioned_file(f, None))
            .collect();
        let table_statistics = self.expected(merged_statistics(&partitioned, &schema)?, files);
        let groups = partitioned.into_iter().map(single_file_group).collect();
        let ordering = LexOrdering::new(self.sort_exprs()).expect("the sort key is never empty");
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(table_statistics)
            .with_output_ordering(vec![ordering])
            .with_projection_indices(self.projection.clone())?
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    /// The sorted merge of overlapping files, newest write first, de-duplicated.
    fn deduplicated(&self, files: &[&ParquetFile]) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema = TableSchema::builder(self.schema.arrow_schema().clone())
            .with_table_partition_cols(vec![Arc::new(Field::new(SEQUENCE, DataType::Int64, false))])
            .build();
        let full = table_schema.table_schema().clone();
        let source = self.source(table_schema, &self.key_predicate);
        let partitioned: Vec<_> = files
            .iter()
            .map(|f| self.partitioned_file(f, Some(f.sequence)))
            .collect();
        let table_statistics = self.expected(merged_statistics(&partitioned, &full)?, files);
        let groups = partitioned.into_iter().map(single_file_group).collect();

        let key_len = self.schema.sort_key().len();
        let mut sort = self.sort_exprs();
        sort.push(PhysicalSortExpr::new(
            Arc::new(Column::new(SEQUENCE, full.fields().len() - 1)),
            SortOptions {
                descending: true,
                nulls_first: false,
            },
        ));
        let ordering = LexOrdering::new(sort).expect("the sort key is never empty");
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(table_statistics.to_inexact())
            .with_output_ordering(vec![ordering.clone()])
            .build();
        let scan = DataSourceExec::from_data_source(config);
        let merge = Arc::new(SortPreservingMergeExec::new(ordering.clone(), scan));
        let key = self.schema.sort_key()[..key_len].to_vec();
        let dedup = Arc::new(DedupExec::new(merge, ordering, key));

        let columns: Vec<usize> = match &self.projection {
            Some(p) => p.clone(),
            None => (0..self.schema.arrow_schema().fields().len()).collect(),
        };
        let exprs = columns
            .into_iter()
            .map(|i| {
                let name = full.field(i).name();
                ProjectionExpr::new(Arc::new(Column::new(name, i)), name.clone())
            })
            .collect::<Vec<_>>();
        Ok(Arc::new(ProjectionExec::try_new(exprs, dedup)?))
    }

    /// The files' statistics with the rows the query's bounds leave as an estimate. DataFusion
    /// spreads a scan over more partitions (a round-robin exchange, then partial and final
    /// aggregations) unless it expects at most one batch of rows: an hour of one subject's
    /// readings is a few dozen rows of a day's file, and spreading them cost more than they do.
    fn expected(&self, statistics: Statistics, files: &[&ParquetFile]) -> Statistics {
        if self.bounds == FileFilter::default() {
            return statistics;
        }
        let rows: f64 = files
            .iter()
            .map(|file| expected_rows(file, &self.bounds))
            .sum();
        Statistics {
            num_rows: Precision::Inexact(rows.ceil() as usize),
            ..statistics.to_inexact()
        }
    }

    /// A file with the statistics the catalog holds: row count, time and subject ranges.
    fn partitioned_file(&self, file: &ParquetFile, sequence: Option<i64>) -> PartitionedFile {
        let schema = self.schema.arrow_schema();
        let column_statistics = schema
            .fields()
            .iter()
            .map(|field| {
                let range = match field.name().as_str() {
                    TIME => Some((
                        ScalarValue::TimestampNanosecond(Some(file.min_time), None),
                        ScalarValue::TimestampNanosecond(Some(file.max_time), None),
                    )),
                    SUBJECT_ID => Some((
                        ScalarValue::Int64(Some(file.min_subject.0)),
                        ScalarValue::Int64(Some(file.max_subject.0)),
                    )),
                    _ => None,
                };
                match range {
                    // Exact: the reader may replace a column whose minimum equals its maximum
                    // by that constant, which these ranges make true.
                    Some((min, max)) => ColumnStatistics::new_unknown()
                        .with_null_count(Precision::Exact(0))
                        .with_min_value(Precision::Exact(min))
                        .with_max_value(Precision::Exact(max)),
                    None => ColumnStatistics::new_unknown(),
                }
            })
            .collect();
        let statistics = Statistics {
            num_rows: Precision::Exact(file.row_count as usize),
            total_byte_size: Precision::Inexact(file.size_bytes as usize),
            column_statistics,
        };
        let mut partitioned = PartitionedFile::new(file.path.clone(), file.size_bytes as u64);
        if let Some(sequence) = sequence {
            partitioned =
                partitioned.with_partition_values(vec![ScalarValue::Int64(Some(sequence))]);
        }
        partitioned.with_statistics(Arc::new(statistics))
    }
}

/// The rows of a file within the bounds, if its rows spread evenly over its time range and
/// its range of subject ids.
fn expected_rows(file: &ParquetFile, bounds: &FileFilter) -> f64 {
    let share = |(low, high): (i128, i128), (first, last): (i128, i128)| {
        let overlap = (high.min(last) - low.max(first)).max(0);
        overlap as f64 / (last - first).max(1) as f64
    };
    let mut rows = file.row_count as f64;
    if let Some((start, end)) = bounds.time {
        rows *= share(
            (start.into(), end.into()),
            (file.min_time.into(), i128::from(file.max_time) + 1),
        );
    }
    if let Some((low, high)) = bounds.subjects {
        rows *= share(
            (low.0.into(), i128::from(high.0) + 1),
            (
                file.min_subject.0.into(),
                i128::from(file.max_subject.0) + 1,
            ),
        );
    }
    rows
}

/// The first and last instants of the files `plan` reads, from the ranges the catalog gives
/// each file (see [`FileScan::partitioned_file`]); `None` when it reads none.
pub(crate) fn time_range_of_files(plan: &Arc<dyn ExecutionPlan>) -> Option<(i64, i64)> {
    let mut range: Option<(i64, i64)> = None;
    let _ = plan.apply(|node| {
        let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|source| source.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let Ok(time) = config.file_schema().index_of(TIME) else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let instant = |value: &Precision<ScalarValue>| match value {
            Precision::Exact(ScalarValue::TimestampNanosecond(Some(t), _)) => Some(*t),
            _ => None,
        };
        for file in config.file_groups.iter().flat_map(|group| group.iter()) {
            let column = file
                .statistics
                .as_ref()
                .and_then(|s| s.column_statistics.get(time));
            if let Some((first, last)) =
                column.and_then(|c| Some((instant(&c.min_value)?, instant(&c.max_value)?)))
            {
                range = Some(match range {
                    Some((low, high)) => (low.min(first), high.max(last)),
                    None => (first, last),
                });
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    range
}

fn single_file_group(file: PartitionedFile) -> FileGroup {
    let statistics = file.statistics.clone();
    let group = FileGroup::new(vec![file]);
    match statistics {
        Some(s) => group.with_statistics(s),
        None => group,
    }
}

fn merged_statistics(files: &[PartitionedFile], schema: &SchemaRef) -> Result<Statistics> {
    Statistics::try_merge_iter(files.iter().filter_map(|f| f.statistics.as_deref()), schema)
}

/// Groups the files that overlap, transitively: two files overlap when they share the day,
/// and their subject ranges and time ranges both intersect. Singletons overlap nothing.
pub(crate) fn overlapping_groups(files: &[ParquetFile]) -> Vec<Vec<usize>> {
    let mut group_of: Vec<usize> = (0..files.len()).collect();
    fn root(group_of: &mut [usize], mut i: usize) -> usize {
        while group_of[i] != i {
            group_of[i] = group_of[group_of[i]];
            i = group_of[i];
        }
        i
    }
    for a in 0..files.len() {
        for b in a + 1..files.len() {
            let (x, y) = (&files[a], &files[b]);
            let overlap = x.partition == y.partition
                && x.min_subject <= y.max_subject
                && y.min_subject <= x.max_subject
                && x.min_time <= y.max_time
                && y.min_time <= x.max_time;
            if overlap {
                let (ra, rb) = (root(&mut group_of, a), root(&mut group_of, b));
                group_of[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of_root = std::collections::HashMap::new();
    for i in 0..files.len() {
        let r = root(&mut group_of, i);
        let g = *index_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use catalog::{ParquetFileId, PartitionId, StreamId, SubjectId};
    use chrono::{NaiveDate, Utc};

    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn day_of(first_subject: i64, last_subject: i64, rows: i64) -> ParquetFile {
        ParquetFile {
            id: ParquetFileId(1),
            partition: PartitionId(1),
            stream: StreamId(1),
            day: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            object_store_id: uuid::Uuid::nil(),
            path: "day.parquet".to_owned(),
            sequence: 1,
            min_time: 0,
            max_time: 24 * HOUR - 1,
            min_subject: SubjectId(first_subject),
            max_subject: SubjectId(last_subject),
            row_count: rows,
            size_bytes: 1,
            compaction_level: 1,
            ingest_batch: None,
            created_at: Utc::now(),
            to_delete_at: None,
        }
    }

    #[test]
    fn expected_rows_are_the_share_of_the_time_and_subjects_read() {
        let file = day_of(1, 300, 7_200_000);
        let hour_of_one = FileFilter {
            time: Some((10 * HOUR, 11 * HOUR)),
            subjects: Some((SubjectId(7), SubjectId(7))),
        };
        assert_eq!(expected_rows(&file, &hour_of_one).round(), 1_000.0);
        let eight = FileFilter {
            subjects: Some((SubjectId(1), SubjectId(8))),
            ..FileFilter::default()
        };
        assert_eq!(expected_rows(&file, &eight).round(), 192_000.0);
        // Bounds past the file's ranges, or open on one side, count what they cover.
        let from_noon = FileFilter {
            time: Some((12 * HOUR, i64::MAX)),
            subjects: Some((SubjectId(i64::MIN), SubjectId(1_000))),
        };
        assert_eq!(expected_rows(&file, &from_noon).round(), 3_600_000.0);
        let elsewhere = FileFilter {
            time: Some((30 * HOUR, 31 * HOUR)),
            ..FileFilter::default()
        };
        assert_eq!(expected_rows(&file, &elsewhere), 0.0);
        let one_subject_file = day_of(5, 5, 86_400);
        let that_subject = FileFilter {
            subjects: Some((SubjectId(5), SubjectId(5))),
            ..FileFilter::default()
        };
        assert_eq!(expected_rows(&one_subject_file, &that_subject), 86_400.0);
    }
}
