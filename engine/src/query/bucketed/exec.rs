//! [`BucketedAggregateExec`]: the operator, its streams, and the merge of partitions.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use arrow::{
    array::RecordBatch,
    compute::{SortOptions, interleave_record_batch},
};
use datafusion::{
    common::{DataFusionError, Result, runtime::SpawnedTask, tree_node::TreeNodeRecursion},
    execution::{
        RecordBatchStream, SendableRecordBatchStream, TaskContext,
        memory_pool::{MemoryConsumer, MemoryReservation},
    },
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

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
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = crate::query::only_input(self.name(), &children)?.clone();
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
        let run_ahead = Arc::new(RunAhead {
            reservation: MemoryConsumer::new("BucketedAggregateExec run-ahead")
                .register(context.memory_pool()),
        });
        let mut sources = Vec::with_capacity(partitions);
        for index in 0..partitions {
            let input = self.input.execute(index, context.clone())?;
            sources.push(Source::spawn(
                input,
                self.plan.clone(),
                chunk_size,
                run_ahead.clone(),
                baseline.elapsed_compute().clone(),
            ));
        }
        let merger = Merger {
            current_states: vec![State::default(); self.plan.aggregates.len()],
            plan: self.plan.clone(),
            sources,
            heap: BinaryHeap::with_capacity(partitions),
            current: None,
            folded: Groups::new(&self.plan, 0),
            pending: Vec::new(),
            pending_rows: Vec::new(),
            ready: VecDeque::new(),
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
                let batch = this.plan.finish(&groups);
                this.grouper.recycle(groups);
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

/// Completed groups of one partition, in key order, with their output rows: a source
/// finishes its own chunks, in parallel with the others, so that the merge only slices them
/// and touches states where partitions share a group.
struct Chunk {
    groups: Groups,
    batch: RecordBatch,
    /// Where the chunk waits until the merge is done with it; freed with the chunk.
    _slot: Slot,
}

/// Chunks a partition may hold that the merge has not taken yet, whatever the budget: the
/// merge needs every partition's next group to go on, so each must always be able to send it.
const OWN_SLOTS: usize = 2;

/// At most this much of a query's memory holds chunks beyond the partitions' own slots.
const RUN_AHEAD_BYTES: usize = 32 << 20;

/// Room for partitions to run ahead of the merge. The merge takes groups in key order: while
/// it drains one partition, the others would wait for it with nowhere to put their finished
/// chunks, and partitions over consecutive ranges of subjects would be aggregated one after
/// the other instead of in parallel. Chunks beyond a partition's own slots are reserved from
/// the query's memory pool, up to [`RUN_AHEAD_BYTES`] for all partitions together.
struct RunAhead {
    reservation: MemoryReservation,
}

impl RunAhead {
    fn try_hold(self: &Arc<Self>, bytes: usize) -> Option<Slot> {
        if self.reservation.size() + bytes > RUN_AHEAD_BYTES {
            return None;
        }
        self.reservation.try_grow(bytes).ok()?;
        Some(Slot::RunAhead {
            budget: self.clone(),
            bytes,
        })
    }
}

enum Slot {
    /// Given back to the partition when the chunk is dropped.
    Own {
        _permit: OwnedSemaphorePermit,
    },
    RunAhead {
        budget: Arc<RunAhead>,
        bytes: usize,
    },
}

impl Slot {
    /// One of the partition's own slots if one is free, else room in the run-ahead budget,
    /// else the wait for an own slot.
    async fn take(own: &Arc<Semaphore>, run_ahead: &Arc<RunAhead>, bytes: usize) -> Result<Slot> {
        if let Ok(permit) = own.clone().try_acquire_owned() {
            return Ok(Slot::Own { _permit: permit });
        }
        if let Some(slot) = run_ahead.try_hold(bytes) {
            return Ok(slot);
        }
        let permit = own.clone().acquire_owned().await.map_err(|_| {
            DataFusionError::Internal("a partition's chunk slots were closed".into())
        })?;
        Ok(Slot::Own { _permit: permit })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Slot::RunAhead { budget, bytes } = self {
            budget.reservation.shrink(*bytes);
        }
    }
}

impl Chunk {
    /// Memory the chunk holds while it waits: its groups' vectors and its rows.
    fn bytes(groups: &Groups, batch: &RecordBatch) -> usize {
        groups.memory_size() + batch.get_array_memory_size()
    }
}

/// One input partition aggregated in its own task, its completed groups arriving in order.
struct Source {
    receiver: mpsc::UnboundedReceiver<Result<Chunk>>,
    /// Chunks merged, back to the task to be filled again.
    spent: mpsc::UnboundedSender<Groups>,
    task: Option<SpawnedTask<()>>,
    chunk: Option<Chunk>,
    position: usize,
    /// Where the current chunk's rows are among the merger's pending batches, once some are.
    pending_slot: Option<usize>,
}

impl Source {
    fn spawn(
        mut input: SendableRecordBatchStream,
        plan: Arc<Plan>,
        chunk_size: usize,
        run_ahead: Arc<RunAhead>,
        elapsed_compute: datafusion::physical_plan::metrics::Time,
    ) -> Self {
        let mut grouper = Grouper::new(plan.clone(), chunk_size);
        let own_slots = Arc::new(Semaphore::new(OWN_SLOTS));
        let (sender, receiver) = mpsc::unbounded_channel();
        let (spent, mut spent_chunks) = mpsc::unbounded_channel();
        let task = SpawnedTask::spawn(async move {
            let aggregated: Result<()> = async {
                let mut input_done = false;
                while !input_done {
                    while let Ok(groups) = spent_chunks.try_recv() {
                        grouper.recycle(groups);
                    }
                    match input.next().await {
                        Some(batch) => {
                            let batch = batch?;
                            let _timer = elapsed_compute.timer();
                            grouper.push(&batch)?;
                        }
                        None => {
                            input_done = true;
                            grouper.finish();
                        }
                    }
                    while let Some(groups) = grouper.take_ready() {
                        let batch = {
                            let _timer = elapsed_compute.timer();
                            plan.finish(&groups)?
                        };
                        let bytes = Chunk::bytes(&groups, &batch);
                        let slot = Slot::take(&own_slots, &run_ahead, bytes).await?;
                        let chunk = Chunk {
                            groups,
                            batch,
                            _slot: slot,
                        };
                        if sender.send(Ok(chunk)).is_err() {
                            // The query was dropped.
                            return Ok(());
                        }
                    }
                }
                Ok(())
            }
            .await;
            if let Err(error) = aggregated {
                // Nobody to tell if the receiver is gone.
                let _ = sender.send(Err(error));
            }
        });
        Source {
            receiver,
            spent,
            task: Some(task),
            chunk: None,
            position: 0,
            pending_slot: None,
        }
    }

    /// Moves to the partition's next chunk; `false` when the partition is done.
    async fn next_chunk(&mut self) -> Result<bool> {
        if let Some(chunk) = self.chunk.take() {
            // The task may have finished; then the memory is simply freed.
            let _ = self.spent.send(chunk.groups);
        }
        self.position = 0;
        self.pending_slot = None;
        loop {
            match self.receiver.recv().await {
                Some(Ok(chunk)) if chunk.groups.is_empty() => continue,
                Some(Ok(chunk)) => {
                    self.chunk = Some(chunk);
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

    /// Skips `groups` groups; false once the partition is exhausted.
    async fn advance(&mut self, groups: usize) -> Result<bool> {
        self.position += groups;
        match &self.chunk {
            Some(chunk) if self.position < chunk.groups.len() => Ok(true),
            _ => self.next_chunk().await,
        }
    }

    fn chunk(&self) -> Result<&Chunk> {
        self.chunk
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("merged past a partition's end".into()))
    }

    fn head(&self) -> Result<(i64, i64)> {
        Ok(self.chunk()?.groups.key(self.position))
    }

    /// How many groups from the head on have keys below `bound`.
    fn count_below(&self, bound: (i64, i64)) -> Result<usize> {
        let groups = &self.chunk()?.groups;
        let (mut low, mut high) = (self.position, groups.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if groups.key(middle) < bound {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low - self.position)
    }
}

/// Merges the partitions' groups by key. Where one partition's groups come before every
/// other partition's next group, they are final: the merge passes on a slice of that
/// partition's own output rows. A group split between partitions (a bucket across two
/// files) is folded together from the states.
struct Merger {
    plan: Arc<Plan>,
    sources: Vec<Source>,
    /// The next group of each partition that has one: (key, partition), smallest first.
    heap: BinaryHeap<Reverse<((i64, i64), usize)>>,
    /// The group being folded from several partitions.
    current: Option<(i64, i64)>,
    current_states: Vec<State>,
    /// Folded groups not yet turned into rows.
    folded: Groups,
    /// Output rows in key order, too few yet for a batch of their own: rows of these batches
    /// (a partition's chunk, or folded groups), gathered into one batch when flushed. Where
    /// partitions take turns group by group (one day per file, grouped by subject and day),
    /// every run is one row: gathering them costs a copy per row, slicing and concatenating
    /// cost a batch per row.
    pending: Vec<RecordBatch>,
    pending_rows: Vec<(usize, usize)>,
    ready: VecDeque<RecordBatch>,
    chunk_size: usize,
    started: bool,
}

impl Merger {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if !self.started {
            self.started = true;
            for (index, source) in self.sources.iter_mut().enumerate() {
                if source.next_chunk().await? {
                    self.heap.push(Reverse((source.head()?, index)));
                }
            }
        }
        while self.ready.is_empty() {
            let Some(Reverse((key, index))) = self.heap.pop() else {
                self.close_current();
                self.flush_folded()?;
                self.flush_pending()?;
                break;
            };
            let bound = self
                .heap
                .peek()
                .map_or((i64::MAX, i64::MAX), |next| next.0.0);
            let source = &mut self.sources[index];
            let final_groups = if self.current == Some(key) {
                0
            } else {
                source.count_below(bound)?
            };
            let more = if final_groups == 0 {
                // Shared with another partition (or continued from one): fold the states.
                let groups = &source.chunk()?.groups;
                if self.current == Some(key) {
                    self.plan
                        .merge(&mut self.current_states, groups, source.position);
                } else {
                    if let Some(current) = self.current.replace(key) {
                        self.folded.push(current, &self.current_states);
                    }
                    groups.copy_states(source.position, &mut self.current_states);
                }
                source.advance(1).await?
            } else {
                self.close_current();
                self.flush_folded()?;
                self.add_source_rows(index, final_groups)?;
                self.sources[index].advance(final_groups).await?
            };
            let source = &self.sources[index];
            if more {
                self.heap.push(Reverse((source.head()?, index)));
            }
            if self.folded.len() >= self.chunk_size {
                self.flush_folded()?;
            }
        }
        Ok(self.ready.pop_front())
    }

    fn close_current(&mut self) {
        if let Some(current) = self.current.take() {
            self.folded.push(current, &self.current_states);
        }
    }

    fn flush_folded(&mut self) -> Result<()> {
        if self.folded.is_empty() {
            return Ok(());
        }
        let rows = self.plan.finish(&self.folded)?;
        self.folded.clear();
        self.add_rows(rows)
    }

    /// Queues the next `count` rows of a partition's chunk, in key order.
    fn add_source_rows(&mut self, index: usize, count: usize) -> Result<()> {
        let source = &self.sources[index];
        let (batch, position) = (&source.chunk()?.batch, source.position);
        if count >= self.chunk_size / 8 {
            let rows = batch.slice(position, count);
            self.flush_pending()?;
            self.ready.push_back(rows);
            return Ok(());
        }
        let slot = match source.pending_slot {
            Some(slot) => slot,
            None => {
                self.pending.push(batch.clone());
                let slot = self.pending.len() - 1;
                self.sources[index].pending_slot = Some(slot);
                slot
            }
        };
        self.queue(slot, position, count)
    }

    /// Queues rows in key order: large batches pass as they are, small ones are gathered
    /// into batches of about the configured size.
    fn add_rows(&mut self, rows: RecordBatch) -> Result<()> {
        if rows.num_rows() >= self.chunk_size / 8 {
            self.flush_pending()?;
            self.ready.push_back(rows);
            return Ok(());
        }
        let count = rows.num_rows();
        self.pending.push(rows);
        self.queue(self.pending.len() - 1, 0, count)
    }

    fn queue(&mut self, slot: usize, position: usize, count: usize) -> Result<()> {
        self.pending_rows
            .extend((position..position + count).map(|row| (slot, row)));
        if self.pending_rows.len() >= self.chunk_size {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending_rows.is_empty() {
            return Ok(());
        }
        let batches: Vec<&RecordBatch> = self.pending.iter().collect();
        let batch = interleave_record_batch(&batches, &self.pending_rows)?;
        self.pending.clear();
        self.pending_rows.clear();
        for source in &mut self.sources {
            source.pending_slot = None;
        }
        self.ready.push_back(batch);
        Ok(())
    }
}
