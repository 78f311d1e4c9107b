//! [`GapFillExec`], its stream, and [`GapFillPlanner`], which makes it of a [`GapFill`].

use std::{
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use arrow::{
    array::{RecordBatch, RecordBatchOptions},
    compute::{SortOptions, concat_batches},
    datatypes::{DataType, Schema, SchemaRef, TimeUnit},
};
use async_trait::async_trait;
use datafusion::{
    catalog::Session,
    common::{DFSchema, DataFusionError, Result, ScalarValue, tree_node::TreeNodeRecursion},
    execution::{
        RecordBatchStream, SendableRecordBatchStream, TaskContext,
        memory_pool::{MemoryConsumer, MemoryReservation},
    },
    logical_expr::{
        ColumnarValue, Expr, LogicalPlan, UserDefinedLogicalNode,
        physical_planning_context::PhysicalPlanningContext,
    },
    physical_expr::{
        EquivalenceProperties, LexOrdering, OrderingRequirements, Partitioning, PhysicalExpr,
        PhysicalSortExpr, expressions::Column,
    },
    physical_plan::{
        DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
        InputDistributionRequirements, PlanProperties,
        execution_plan::EmissionType,
        metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet},
    },
    physical_planner::{ExtensionPlanner, PhysicalPlanner},
};
use futures::{Stream, StreamExt};

use super::{
    fill::{Chunk, Filler, Params},
    node::{Bound, GapFill},
};

const NANOS_PER_DAY: i128 = 86_400_000_000_000;

/// Makes a [`GapFillExec`] of each [`GapFill`] node, evaluating its stride, origin and time
/// range: by then the placeholders have their values.
#[derive(Debug, Default)]
pub struct GapFillPlanner;

#[async_trait]
impl ExtensionPlanner for GapFillPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _planning: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<GapFill>() else {
            return Ok(None);
        };
        let input = crate::query::only_input("GapFill", physical_inputs)?;
        let params = resolve(node, session)?;
        let schema = Arc::new(node.schema().as_arrow().clone());
        let fill_names = node.fills.iter().map(|f| f.name.clone()).collect();
        Ok(Some(Arc::new(GapFillExec::new(
            input.clone(),
            params,
            fill_names,
            schema,
        ))))
    }
}

/// The node's parameters as numbers in the time column's unit.
fn resolve(node: &GapFill, session: &dyn Session) -> Result<Params> {
    let time_type = node.input_fields()[node.time].data_type();
    let DataType::Timestamp(unit, _) = time_type else {
        return Err(DataFusionError::Plan(format!(
            "date_bin_gapfill needs a timestamp column, not {time_type}"
        )));
    };
    let per_unit = nanos_per(*unit);
    let in_units = |what: &str, nanos: i128| -> Result<i64> {
        if nanos % per_unit != 0 {
            return Err(DataFusionError::Plan(format!(
                "the {what} of date_bin_gapfill must be a whole number of {unit:?}s"
            )));
        }
        i64::try_from(nanos / per_unit).map_err(|_| out_of_range(what))
    };
    let stride = in_units(
        "stride",
        stride_nanos(&constant(session, &node.stride, "stride")?)?,
    )?;
    if stride <= 0 {
        return Err(DataFusionError::Plan(
            "the stride of date_bin_gapfill must be positive".to_owned(),
        ));
    }
    let origin = match &node.origin {
        Some(origin) => {
            let value = constant(session, origin, "origin")?;
            let nanos = timestamp_nanos(&value)?.ok_or_else(|| {
                DataFusionError::Plan("the origin of date_bin_gapfill is NULL".to_owned())
            })?;
            in_units("origin", nanos)?
        }
        None => 0,
    };
    // The first and last instants the filters let through, in the column's unit; NULL bounds
    // let nothing through.
    let limit = |bound: &Bound, lower: bool| -> Result<Option<i128>> {
        let value = constant(session, &bound.value, "time range bound")?;
        Ok(
            timestamp_nanos(&value)?.map(|nanos| match (lower, bound.inclusive) {
                (true, true) => ceil_div(nanos, per_unit),
                (true, false) => nanos.div_euclid(per_unit) + 1,
                (false, true) => nanos.div_euclid(per_unit),
                (false, false) => ceil_div(nanos, per_unit) - 1,
            }),
        )
    };
    let lows = node
        .lower
        .iter()
        .map(|b| limit(b, true))
        .collect::<Result<Option<Vec<_>>>>()?;
    let highs = node
        .upper
        .iter()
        .map(|b| limit(b, false))
        .collect::<Result<Option<Vec<_>>>>()?;
    let bin = |t: i128| {
        let (origin, stride) = (i128::from(origin), i128::from(stride));
        origin + (t - origin).div_euclid(stride) * stride
    };
    let (first, last) = match (
        lows.and_then(|l| l.into_iter().max()),
        highs.and_then(|h| h.into_iter().min()),
    ) {
        (Some(low), Some(high)) if low <= high => (bin(low), bin(high)),
        _ => (1, 0),
    };
    let to_i64 = |bucket: i128| i64::try_from(bucket).map_err(|_| out_of_range("time range"));
    Ok(Params {
        series: node.series.clone(),
        time: node.time,
        stride,
        first: to_i64(first)?,
        last: to_i64(last)?,
        gap_values: node.gap_values.clone(),
        fills: node.fills.iter().map(|f| (f.column, f.fill)).collect(),
    })
}

fn out_of_range(what: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "the {what} of date_bin_gapfill is beyond the range of timestamps"
    ))
}

fn nanos_per(unit: TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

/// The value of an expression without columns.
fn constant(session: &dyn Session, expr: &Expr, what: &str) -> Result<ScalarValue> {
    let evaluated = session
        .create_physical_expr(expr.clone(), &DFSchema::empty())
        .and_then(|physical| {
            let one_row = RecordBatch::try_new_with_options(
                Arc::new(Schema::empty()),
                vec![],
                &RecordBatchOptions::new().with_row_count(Some(1)),
            )?;
            match physical.evaluate(&one_row)? {
                ColumnarValue::Scalar(value) => Ok(value),
                ColumnarValue::Array(array) => ScalarValue::try_from_array(&array, 0),
            }
        });
    evaluated.map_err(|e| {
        DataFusionError::Plan(format!(
            "the {what} of date_bin_gapfill, `{expr}`, has no value: {e}"
        ))
    })
}

fn stride_nanos(value: &ScalarValue) -> Result<i128> {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Ok(i128::from(v.days) * NANOS_PER_DAY + i128::from(v.nanoseconds))
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Ok(i128::from(v.days) * NANOS_PER_DAY + i128::from(v.milliseconds) * 1_000_000)
        }
        ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_)) => {
            Err(DataFusionError::Plan(
                "date_bin_gapfill needs a stride of days, hours, minutes or seconds, not \
                 months or years"
                    .to_owned(),
            ))
        }
        other => Err(DataFusionError::Plan(format!(
            "the stride of date_bin_gapfill must be an INTERVAL, not {other}"
        ))),
    }
}

/// The instant of a timestamp in nanoseconds since the epoch; none for NULL.
fn timestamp_nanos(value: &ScalarValue) -> Result<Option<i128>> {
    let (v, per_unit) = match value {
        ScalarValue::TimestampSecond(v, _) => (v, nanos_per(TimeUnit::Second)),
        ScalarValue::TimestampMillisecond(v, _) => (v, nanos_per(TimeUnit::Millisecond)),
        ScalarValue::TimestampMicrosecond(v, _) => (v, nanos_per(TimeUnit::Microsecond)),
        ScalarValue::TimestampNanosecond(v, _) => (v, nanos_per(TimeUnit::Nanosecond)),
        other if other.is_null() => return Ok(None),
        other => {
            return Err(DataFusionError::Plan(format!(
                "date_bin_gapfill needs timestamps for its origin and time range, not {} ({other})",
                other.data_type()
            )));
        }
    };
    Ok(v.map(|v| i128::from(v) * per_unit))
}

/// Fills the gaps of its input, sorted by series keys then bucket, in one partition: see
/// [`GapFill`] for what it outputs. It streams: rows wait only for a later value to
/// interpolate to. It shows in `EXPLAIN`:
///
/// ```text
/// GapFillExec: series=[subject_id@0], time=date_bin_gapfill(…)@1, stride=300000000000, buckets=[1772323200000000000, 1772330100000000000], fills=[locf(avg(heart_rate.bpm))]
/// ```
#[derive(Debug)]
pub struct GapFillExec {
    input: Arc<dyn ExecutionPlan>,
    params: Arc<Params>,
    fill_names: Vec<String>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl GapFillExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        params: Params,
        fill_names: Vec<String>,
        schema: SchemaRef,
    ) -> Self {
        let params = Arc::new(params);
        let properties = Self::properties_of(&input, &params, &schema);
        GapFillExec {
            input,
            params,
            fill_names,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// Series keys then bucket, ascending, NULLs last: as `ORDER BY` sorts them.
    fn ordering(params: &Params, schema: &Schema) -> Option<LexOrdering> {
        let ascending = SortOptions {
            descending: false,
            nulls_first: false,
        };
        LexOrdering::new(params.series.iter().chain([&params.time]).map(|&i| {
            PhysicalSortExpr::new(Arc::new(Column::new(schema.field(i).name(), i)), ascending)
        }))
    }

    fn properties_of(
        input: &Arc<dyn ExecutionPlan>,
        params: &Params,
        schema: &SchemaRef,
    ) -> PlanProperties {
        let equivalences = match Self::ordering(params, schema) {
            Some(ordering) => EquivalenceProperties::new_with_orderings(schema.clone(), [ordering]),
            None => EquivalenceProperties::new(schema.clone()),
        };
        PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            input.boundedness(),
        )
    }
}

impl DisplayAs for GapFillExec {
    fn fmt_as(&self, format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let input = self.input.schema();
        let column = |i: usize| format!("{}@{i}", input.field(i).name());
        let series: Vec<String> = self.params.series.iter().map(|&i| column(i)).collect();
        let params = &self.params;
        let described = format!(
            "series=[{}], time={}, stride={}, buckets=[{}, {}], fills=[{}]",
            series.join(", "),
            column(params.time),
            params.stride,
            params.first,
            params.last,
            self.fill_names.join(", ")
        );
        match format {
            DisplayFormatType::TreeRender => write!(f, "{described}"),
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "GapFillExec: {described}")
            }
        }
    }
}

impl ExecutionPlan for GapFillExec {
    fn name(&self) -> &str {
        "GapFillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![Distribution::SinglePartition])
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![
            Self::ordering(&self.params, &self.input.schema())
                .map(|ordering| OrderingRequirements::new(ordering.into())),
        ]
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
        let input = crate::query::only_input(self.name(), &children)?.clone();
        let properties = Self::properties_of(&input, &self.params, &self.schema);
        Ok(Arc::new(GapFillExec {
            input,
            params: self.params.clone(),
            fill_names: self.fill_names.clone(),
            schema: self.schema.clone(),
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
                "GapFillExec has one output partition, not {partition}"
            )));
        }
        let input_schema = self.input.schema();
        Ok(Box::pin(GapFillStream {
            filler: Filler::new(self.params.clone(), self.schema.clone(), &input_schema)?,
            input: self.input.execute(0, context.clone())?,
            input_schema,
            schema: self.schema.clone(),
            waiting: Vec::new(),
            chunk: None,
            input_done: false,
            finished: false,
            batch_size: context.session_config().batch_size(),
            reservation: MemoryConsumer::new("GapFillExec").register(context.memory_pool()),
            baseline: BaselineMetrics::new(&self.metrics, partition),
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

struct GapFillStream {
    input: SendableRecordBatchStream,
    input_schema: SchemaRef,
    schema: SchemaRef,
    filler: Filler,
    /// Input rows waiting for a value to interpolate to.
    waiting: Vec<RecordBatch>,
    chunk: Option<Chunk>,
    input_done: bool,
    finished: bool,
    batch_size: usize,
    /// The waiting rows and the chunk's.
    reservation: MemoryReservation,
    baseline: BaselineMetrics,
}

impl GapFillStream {
    fn advance(&mut self, cx: &mut Context<'_>) -> Result<Poll<Option<RecordBatch>>> {
        loop {
            if let Some(chunk) = &mut self.chunk {
                if let Some(batch) = self.filler.next_batch(chunk, self.batch_size)? {
                    return Ok(Poll::Ready(Some(batch)));
                }
                self.waiting.extend(chunk.rest());
                self.chunk = None;
                self.reserve()?;
                continue;
            }
            if self.finished {
                return Ok(Poll::Ready(None));
            }
            if self.input_done {
                self.finished = true;
                let rows = self.take_waiting()?;
                self.chunk = Some(self.filler.chunk(rows, true)?);
                continue;
            }
            let batch = match self.input.poll_next_unpin(cx) {
                Poll::Pending => return Ok(Poll::Pending),
                Poll::Ready(None) => {
                    self.input_done = true;
                    continue;
                }
                Poll::Ready(Some(batch)) => batch?,
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let unblocks = match self.waiting.first() {
                Some(waiting) => self.filler.unblocks(waiting, &batch)?,
                None => true,
            };
            self.waiting.push(batch);
            if unblocks {
                let rows = self.take_waiting()?;
                self.chunk = Some(self.filler.chunk(rows, false)?);
            }
            self.reserve()?;
        }
    }

    fn take_waiting(&mut self) -> Result<RecordBatch> {
        let rows = match self.waiting.as_slice() {
            [one] => one.clone(),
            many => concat_batches(&self.input_schema, many)?,
        };
        self.waiting.clear();
        Ok(rows)
    }

    fn reserve(&mut self) -> Result<()> {
        let bytes: usize = self
            .waiting
            .iter()
            .chain(self.chunk.as_ref().map(Chunk::batch))
            .map(RecordBatch::get_array_memory_size)
            .sum();
        self.reservation.try_resize(bytes)
    }
}

impl Stream for GapFillStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = match self.advance(cx) {
            Ok(Poll::Ready(batch)) => Poll::Ready(batch.map(Ok)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(e) => {
                self.finished = true;
                self.chunk = None;
                Poll::Ready(Some(Err(e)))
            }
        };
        self.baseline.record_poll(polled)
    }
}

impl RecordBatchStream for GapFillStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
