//! [`BucketedAggregateExec`]: the operator, its streams, and the merge of partitions.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    fmt, mem,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use arrow::{array::RecordBatch, compute::SortOptions};
use datafusion::{
    common::{DataFusionError, Result, runtime::SpawnedTask, tree_node::TreeNodeRecursion},
    execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext},
    physical_expr::{
        EquivalenceProperties, LexOrdering, OrderingRequirements, Partitioning, PhysicalExpr,
        PhysicalSortExpr, expressions::Column,
    },
    physical_plan::{
        DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
        execution_plan::EmissionType,
        metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet},
        stream::RecordBatchStreamAdapter,
    },
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::kernel::{Grouper, Groups, Plan, State, origin_display};

/// Aggregates input sorted by `(subject, time)` per `(subject, date_bin(stride, time,
/// origin))` group in one streaming pass, without a hash table: each group is complete when
/// the next key starts. Several sorted input partitions are aggregated in parallel and their
/// groups merged by key. The output is one partition, sorted by subject and bucket, with the
/// schema DataFusion's `AggregateExec` has for the same query.
///
/// [`BucketedAggregateRule`](super::BucketedAggregateRule) puts it in plans; it shows in
/// `EXPLAIN`:
///
/// ```text
/// BucketedAggregateExec: gby=[subject_id@0, date_bin(60000000000 ns, time@1, origin 1970-01-01T00:00:00Z)], aggr=[max(heart_rate.bpm), avg(heart_rate.bpm)]
/// ```
#[derive(Debug)]
pub struct BucketedAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    plan: Arc<Plan>,
    /// The input's order: subject then time, with the sort options the input declares.
    input_ordering: LexOrdering,
    aggregate_names: Vec<String>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl BucketedAggregateExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        plan: Plan,
        input_ordering: LexOrdering,
        aggregate_names: Vec<String>,
    ) -> Self {
        let properties = Self::properties_of(&input, &plan);
        BucketedAggregateExec {
            input,
            plan: Arc::new(plan),
            input_ordering,
            aggregate_names,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    fn properties_of(input: &Arc<dyn ExecutionPlan>, plan: &Plan) -> PlanProperties {
        let schema = plan.schema.clone();
        let (subject, bucket) = if plan.subject_first { (0, 1) } else { (1, 0) };
        let ascending = SortOptions {
            descending: false,
            nulls_first: false,
        };
        let sorted_by = |index: usize| {
            PhysicalSortExpr::new(
                Arc::new(Column::new(schema.field(index).name(), index)),
                ascending,
            )
        };
        let ordering = [sorted_by(subject), sorted_by(bucket)];
        PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema.clone(), [ordering]),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            input.boundedness(),
        )
    }
}

impl DisplayAs for BucketedAggregateExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let schema = self.input.schema();
        let subject = format!(
            "{}@{}",
            schema.field(self.plan.subject).name(),
            self.plan.subject
        );
        let bucketing = self.plan.bucketing;
        let bucket = format!(
            "date_bin({} ns, {}@{}, origin {})",
            bucketing.stride,
            schema.field(self.plan.time).name(),
            self.plan.time,
            origin_display(bucketing.origin)
        );
        let groups = if self.plan.subject_first {
            [subject, bucket]
        } else {
            [bucket, subject]
        };
        match format {
            DisplayFormatType::TreeRender => {
                writeln!(f, "gby={}", groups.join(", "))?;
                write!(f, "aggr={}", self.aggregate_names.join(", "))
            }
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "BucketedAggregateExec: gby=[{}], aggr=[{}]",
                groups.join(", "),
                self.aggregate_names.join(", ")
            ),
        }
    }
}

impl ExecutionPlan for BucketedAggregateExec {
    fn name(&self) -> &str {
        "BucketedAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![Some(OrderingRequirements::new(
            self.input_ordering.clone().into(),
        ))]
    }

    // Every input partition is aggregated as it comes; none is split or merged first.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for argument in &self.plan.arguments {
            if f(&argument.expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        let properties = Self::properties_of(&input, &self.plan);
        Ok(Arc::new(BucketedAggregateExec {
            input,
            plan: self.plan.clone(),
            input_ordering: self.input_ordering.clone(),
            aggregate_names: self.aggregate_names.clone(),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "BucketedAggregateExec has one output partition, not {partition}"
            )));
        }
        let chunk_size = context.session_config().batch_size();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let partitions = self.input.output_partitioning().partition_count();
        if partitions == 1 {
            return Ok(Box::pin(SortedStream {
                input: self.input.execute(0, context)?,
                grouper: Grouper::new(self.plan.clone(), chunk_size),
                plan: self.plan.clone(),
                done: false,
                baseline,
            }));
        }
        let mut sources = Vec::with_capacity(partitions);
        for index in 0..partitions {
            let input = self.input.execute(index, context.clone())?;
            sources.push(Source::spawn(
                input,
                Grouper::new(self.plan.clone(), chunk_size),
                baseline.elapsed_compute().clone(),
            ));
        }
        let merger = Merger {
            current_states: vec![State::default(); self.plan.aggregates.len()],
            plan: self.plan.clone(),
            sources,
            heap: BinaryHeap::with_capacity(partitions),
            current: None,
            output: Groups::default(),
            chunk_size,
            started: false,
        };
        let batches = futures::stream::try_unfold(merger, |mut merger| async move {
            Ok(merger.next_batch().await?.map(|batch| (batch, merger)))
        })
        .map(move |batch| {
            if let Ok(batch) = &batch {
                baseline.record_output(batch.num_rows());
            }
            batch
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.plan.schema.clone(),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One sorted input partition, aggregated in the consumer's task.
struct SortedStream {
    input: SendableRecordBatchStream,
    grouper: Grouper,
    plan: Arc<Plan>,
    done: bool,
    baseline: BaselineMetrics,
}

impl Stream for SortedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(groups) = this.grouper.take_ready() {
                let timer = this.baseline.elapsed_compute().timer();
                let batch = this.plan.finish(groups);
                timer.done();
                return this.baseline.record_poll(Poll::Ready(Some(batch)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let pushed = match ready!(this.input.poll_next_unpin(cx)) {
                Some(Ok(batch)) => {
                    let _timer = this.baseline.elapsed_compute().timer();
                    this.grouper.push(&batch)
                }
                Some(Err(error)) => Err(error),
                None => {
                    this.done = true;
                    this.grouper.finish();
                    Ok(())
                }
            };
            if let Err(error) = pushed {
                this.done = true;
                return Poll::Ready(Some(Err(error)));
            }
        }
    }
}

impl RecordBatchStream for SortedStream {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.plan.schema.clone()
    }
}

/// One input partition aggregated in its own task, its completed groups arriving in order.
struct Source {
    receiver: mpsc::Receiver<Result<Groups>>,
    task: Option<SpawnedTask<()>>,
    groups: Groups,
    position: usize,
}

impl Source {
    fn spawn(
        mut input: SendableRecordBatchStream,
        mut grouper: Grouper,
        elapsed_compute: datafusion::physical_plan::metrics::Time,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(2);
        let task = SpawnedTask::spawn(async move {
            let aggregated: Result<()> = async {
                while let Some(batch) = input.next().await {
                    let batch = batch?;
                    let timer = elapsed_compute.timer();
                    grouper.push(&batch)?;
                    timer.done();
                    while let Some(groups) = grouper.take_ready() {
                        if sender.send(Ok(groups)).await.is_err() {
                            // The query was dropped.
                            return Ok(());
                        }
                    }
                }
                grouper.finish();
                while let Some(groups) = grouper.take_ready() {
                    if sender.send(Ok(groups)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            }
            .await;
            if let Err(error) = aggregated {
                // Nobody to tell if the receiver is gone.
                let _ = sender.send(Err(error)).await;
            }
        });
        Source {
            receiver,
            task: Some(task),
            groups: Groups::default(),
            position: 0,
        }
    }

    /// Moves to the partition's next chunk; `false` when the partition is done.
    async fn next_chunk(&mut self) -> Result<bool> {
        loop {
            match self.receiver.recv().await {
                Some(Ok(groups)) if groups.is_empty() => continue,
                Some(Ok(groups)) => {
                    self.groups = groups;
                    self.position = 0;
                    return Ok(true);
                }
                Some(Err(error)) => return Err(error),
                None => {
                    // A task that ends without sending its end is one that panicked.
                    if let Some(task) = self.task.take() {
                        task.await
                            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))?;
                    }
                    return Ok(false);
                }
            }
        }
    }

    fn head(&self) -> (i64, i64) {
        self.groups.key(self.position)
    }
}

/// Merges the partitions' groups by key; a group split between partitions (a bucket across
/// two files) is folded together.
struct Merger {
    plan: Arc<Plan>,
    sources: Vec<Source>,
    /// The next group of each partition that has one: (key, partition), smallest first.
    heap: BinaryHeap<Reverse<((i64, i64), usize)>>,
    current: Option<(i64, i64)>,
    current_states: Vec<State>,
    output: Groups,
    chunk_size: usize,
    started: bool,
}

impl Merger {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if !self.started {
            self.started = true;
            for (index, source) in self.sources.iter_mut().enumerate() {
                if source.next_chunk().await? {
                    self.heap.push(Reverse((source.head(), index)));
                }
            }
        }
        let width = self.plan.aggregates.len();
        while let Some(Reverse((key, index))) = self.heap.pop() {
            let source = &mut self.sources[index];
            let states = source.groups.group_states(source.position, width);
            if self.current == Some(key) {
                self.plan.merge(&mut self.current_states, states);
            } else {
                if let Some(current) = self.current {
                    self.output.push(current, &self.current_states);
                }
                self.current = Some(key);
                self.current_states.copy_from_slice(states);
            }
            source.position += 1;
            if source.position < source.groups.len() || source.next_chunk().await? {
                self.heap.push(Reverse((source.head(), index)));
            }
            if self.output.len() >= self.chunk_size {
                return self.plan.finish(mem::take(&mut self.output)).map(Some);
            }
        }
        if let Some(current) = self.current.take() {
            self.output.push(current, &self.current_states);
        }
        if self.output.is_empty() {
            return Ok(None);
        }
        self.plan.finish(mem::take(&mut self.output)).map(Some)
    }
}
