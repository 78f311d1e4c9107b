//! [`DedupExec`]: keeps the first of each run of rows with equal keys.
//!
//! Its input is the sorted merge of overlapping files, ordered by the series key, the time and
//! then the file's write order, newest first; the first row of each run is therefore the
//! newest write of that reading, and the others are what it replaced.

use std::{fmt, sync::Arc};

use arrow::{
    array::{BooleanArray, RecordBatch},
    compute::filter_record_batch,
    row::{OwnedRow, RowConverter, SortField},
};
use datafusion::{
    common::{Result, tree_node::TreeNodeRecursion},
    execution::{SendableRecordBatchStream, TaskContext},
    physical_expr::{Distribution, LexOrdering, OrderingRequirements, PhysicalExpr},
    physical_plan::{
        DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, PlanProperties,
        execution_plan::{Boundedness, EmissionType},
        stream::RecordBatchStreamAdapter,
    },
};
use futures::StreamExt;

#[derive(Debug)]
pub(crate) struct DedupExec {
    input: Arc<dyn ExecutionPlan>,
    /// The ordering the input arrives in; its leading `key_len` columns are the key.
    ordering: LexOrdering,
    key: Vec<usize>,
    properties: Arc<PlanProperties>,
}

impl DedupExec {
    /// `ordering` is the input's order; rows are equal when its first `key.len()` columns
    /// (given as indices in `key`) are.
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        ordering: LexOrdering,
        key: Vec<usize>,
    ) -> Self {
        let properties = PlanProperties::new(
            input.properties().eq_properties.clone(),
            input.properties().partitioning.clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        DedupExec {
            input,
            ordering,
            key,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for DedupExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let schema = self.input.schema();
        let key: Vec<_> = self
            .key
            .iter()
            .map(|i| schema.field(*i).name().as_str())
            .collect();
        write!(f, "DedupExec: key=[{}], newest write wins", key.join(", "))
    }
}

impl ExecutionPlan for DedupExec {
    fn name(&self) -> &str {
        "DedupExec"
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
        vec![Some(OrderingRequirements::new(
            self.ordering.clone().into(),
        ))]
    }

    // The output is in the input's order, and the plan properties say so. Answering `true`
    // here would let DataFusion's sort pushdown put a query's ORDER BY *below* this operator,
    // replacing the key order it needs with another.
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for sort in self.ordering.iter() {
            if f(&sort.expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(DedupExec::new(
            super::only_input(self.name(), &children)?.clone(),
            self.ordering.clone(),
            self.key.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = self.input.schema();
        let fields = self
            .key
            .iter()
            .map(|i| SortField::new(schema.field(*i).data_type().clone()))
            .collect();
        let mut dedup = Deduplicator {
            converter: RowConverter::new(fields)?,
            key: self.key.clone(),
            last: None,
        };
        let output = input.map(move |batch| dedup.apply(&batch?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

struct Deduplicator {
    converter: RowConverter,
    key: Vec<usize>,
    /// The key of the last row kept, carried across batch boundaries.
    last: Option<OwnedRow>,
}

impl Deduplicator {
    fn apply(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        if batch.num_rows() == 0 {
            return Ok(batch.clone());
        }
        let columns: Vec<_> = self.key.iter().map(|i| batch.column(*i).clone()).collect();
        let rows = self.converter.convert_columns(&columns)?;
        let keep: BooleanArray = (0..rows.num_rows())
            .map(|i| {
                Some(match i {
                    0 => self
                        .last
                        .as_ref()
                        .is_none_or(|last| last.row() != rows.row(0)),
                    _ => rows.row(i) != rows.row(i - 1),
                })
            })
            .collect();
        self.last = Some(rows.row(rows.num_rows() - 1).owned());
        Ok(filter_record_batch(batch, &keep)?)
    }
}
