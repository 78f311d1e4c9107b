//! [`LatestBucketsExec`] and [`LatestBucketsPlanner`], which makes it of a
//! [`LatestBuckets`](super::LatestBuckets).

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use datafusion::{
    catalog::Session,
    common::{
        Column, DataFusionError, Result, ScalarValue,
        tree_node::{Transformed, TreeNode, TreeNodeRecursion},
    },
    execution::{SendableRecordBatchStream, SessionState, TaskContext},
    logical_expr::{
        Expr, Filter, LogicalPlan, UserDefinedLogicalNode,
        physical_planning_context::PhysicalPlanningContext,
    },
    physical_expr::PhysicalExpr,
    physical_plan::{
        DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
        collect,
        metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet},
        stream::RecordBatchStreamAdapter,
    },
    physical_planner::{ExtensionPlanner, PhysicalPlanner},
};
use futures::{StreamExt, TryStreamExt};

use super::LatestBuckets;
use crate::{
    query::{functions::Bucketing, only_input, prune, scan},
    schema::TIME,
};

/// How much longer each window is than the one before: a few windows reach back from minutes
/// to months, and the rows read before the window that answers are a fifteenth of its own.
const GROWTH: i128 = 16;

/// Makes a [`LatestBucketsExec`] of each [`LatestBuckets`] node over the plan of its sort, or
/// leaves that plan alone when it reads no file.
#[derive(Debug, Default)]
pub struct LatestBucketsPlanner;

#[async_trait]
impl ExtensionPlanner for LatestBucketsPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _planning: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<LatestBuckets>() else {
            return Ok(None);
        };
        let whole = only_input("LatestBuckets", physical_inputs)?;
        let (Some(session), Some((first_file, last_file))) = (
            session.as_any().downcast_ref::<SessionState>(),
            scan::time_range_of_files(whole),
        ) else {
            return Ok(Some(whole.clone()));
        };
        if whole.output_partitioning().partition_count() != 1 {
            return Ok(Some(whole.clone()));
        }
        let mut bounds = (i64::MIN, i64::MAX);
        node.input.apply(|plan| {
            if let LogicalPlan::TableScan(scan) = plan {
                if let Some(time) = prune::file_filter(&scan.filters).time {
                    bounds = time;
                }
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let windows = Windows {
            bucketing: node.bucketing,
            fetch: node.fetch,
            first: bounds.0.max(first_file),
            end: bounds.1.min(last_file.saturating_add(1)),
        };
        Ok(Some(Arc::new(LatestBucketsExec::new(
            whole.clone(),
            Arc::new(Narrowing {
                sort: node.input.clone(),
                session: session.clone(),
                windows,
            }),
        ))))
    }
}

/// The windows a query is tried over, newest first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Windows {
    bucketing: Bucketing,
    /// The rows the query keeps.
    fetch: usize,
    /// The first instant the query may read: a window from there on is the whole query.
    first: i64,
    /// The end of the instants the query may read, exclusive.
    end: i64,
}

impl Windows {
    /// The start of each window, each a bucket's start: the first window covers as many
    /// buckets as the query keeps rows, and each next one is [`GROWTH`] times longer.
    fn starts(&self) -> Vec<i64> {
        let mut starts: Vec<i64> = Vec::new();
        let mut span = i128::from(self.bucketing.stride) * self.fetch as i128;
        while let Some(start) = i64::try_from(i128::from(self.end) - span)
            .ok()
            .and_then(|t| self.bucketing.bucket(t))
            .filter(|&start| start > self.first)
        {
            if starts.last() != Some(&start) {
                starts.push(start);
            }
            span = span.saturating_mul(GROWTH);
        }
        starts
    }
}

/// What trying a window takes: the sort's logical plan, and the session to plan it in.
struct Narrowing {
    sort: LogicalPlan,
    session: SessionState,
    windows: Windows,
}

impl Narrowing {
    /// The query over the rows from `start` on: the same plan with `time >= start` above its
    /// scan and among the scan's filters, so that the catalog lists only the files that reach
    /// `start`. Planned without the logical optimizer, which made the plan already (and would
    /// put a [`LatestBuckets`] above it again).
    async fn plan(&self, start: i64) -> Result<Arc<dyn ExecutionPlan>> {
        let narrowed = self
            .sort
            .clone()
            .transform_up(|plan| {
                let LogicalPlan::TableScan(mut scan) = plan else {
                    return Ok(Transformed::no(plan));
                };
                let from_start =
                    Expr::Column(Column::new(Some(scan.table_name.clone()), TIME)).gt_eq(
                        Expr::Literal(ScalarValue::TimestampNanosecond(Some(start), None), None),
                    );
                scan.filters.push(from_start.clone());
                let filter = Filter::try_new(from_start, Arc::new(LogicalPlan::TableScan(scan)))?;
                Ok(Transformed::yes(LogicalPlan::Filter(filter)))
            })?
            .data;
        self.session
            .query_planner()
            .create_physical_plan(&narrowed, &self.session)
            .await
    }
}

impl fmt::Debug for Narrowing {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Narrowing")
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

/// Runs its sort over the newest rows first; see the [module documentation](super). Its
/// input is the plan of the whole query, run when no window answers.
#[derive(Debug)]
pub struct LatestBucketsExec {
    whole: Arc<dyn ExecutionPlan>,
    narrowing: Arc<Narrowing>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl LatestBucketsExec {
    fn new(whole: Arc<dyn ExecutionPlan>, narrowing: Arc<Narrowing>) -> Self {
        let properties = whole.properties().clone();
        Self {
            whole,
            narrowing,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for LatestBucketsExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let windows = &self.narrowing.windows;
        let instant = |t: i64| chrono::DateTime::from_timestamp_nanos(t).naive_utc();
        let described = format!(
            "fetch={}, stride={}ns, windows={} before {}",
            windows.fetch,
            windows.bucketing.stride,
            windows.starts().len(),
            instant(windows.end)
        );
        match format {
            DisplayFormatType::TreeRender => write!(f, "{described}"),
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "LatestBucketsExec: {described}")
            }
        }
    }
}

impl ExecutionPlan for LatestBucketsExec {
    fn name(&self) -> &str {
        "LatestBucketsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.whole]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
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
        let whole = only_input(self.name(), &children)?.clone();
        Ok(Arc::new(Self::new(whole, self.narrowing.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "LatestBucketsExec has one output partition, not {partition}"
            )));
        }
        let windows_run = MetricBuilder::new(&self.metrics).counter("windows_run", partition);
        let whole_runs = MetricBuilder::new(&self.metrics).counter("whole_runs", partition);
        let run = run(
            self.narrowing.clone(),
            self.whole.clone(),
            context,
            windows_run,
            whole_runs,
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::once(run).try_flatten(),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The newest window that returns as many rows as the query keeps, or the whole query.
async fn run(
    narrowing: Arc<Narrowing>,
    whole: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
    windows_run: Count,
    whole_runs: Count,
) -> Result<SendableRecordBatchStream> {
    let windows = narrowing.windows;
    for start in windows.starts() {
        let plan = narrowing.plan(start).await?;
        windows_run.add(1);
        let schema = plan.schema();
        let batches = collect(plan, context.clone()).await?;
        if batches.iter().map(|b| b.num_rows()).sum::<usize>() >= windows.fetch {
            let batches = futures::stream::iter(batches.into_iter().map(Ok));
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                batches.boxed(),
            )));
        }
    }
    whole_runs.add(1);
    whole.execute(0, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    fn windows(fetch: usize, first: i64, end: i64) -> Windows {
        Windows {
            bucketing: Bucketing {
                stride: MINUTE,
                origin: 0,
            },
            fetch,
            first,
            end,
        }
    }

    #[test]
    fn windows_start_on_buckets_and_grow_sixteen_fold() {
        // The end in the middle of minute 1 000: windows of 5, 80 and 1 280 minutes before
        // it, each moved back to a minute's start.
        let end = 1_000 * MINUTE + MINUTE / 2;
        let starts = windows(5, i64::MIN, end).starts();
        assert_eq!(starts[..3], [995 * MINUTE, 920 * MINUTE, -280 * MINUTE]);
    }

    #[test]
    fn no_window_reaches_the_first_instant() {
        // Windows of 5, 80 and 1 280 minutes before minute 1 000; only the first two start
        // after minute 100, where the rows begin.
        let starts = windows(5, 100 * MINUTE, 1_000 * MINUTE).starts();
        assert_eq!(starts, vec![995 * MINUTE, 920 * MINUTE]);
        assert!(windows(5, 996 * MINUTE, 1_000 * MINUTE).starts().is_empty());
        // 5 minutes × 16⁶ is the longest window timestamps hold.
        assert_eq!(windows(5, i64::MIN, 0).starts().len(), 7);
    }
}
