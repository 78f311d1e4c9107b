//! The latest buckets of a stream, read from its newest rows.
//!
//! `SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(bpm) FROM heart_rate
//! WHERE time < … GROUP BY minute ORDER BY minute DESC LIMIT 5` asks for five buckets, and
//! DataFusion's plan aggregates every row before `time` to sort the buckets and keep five. The
//! answer only depends on the newest rows: if the same query over `time >= start` (`start` the
//! first instant of a bucket) returns its five rows, every bucket from `start` on is whole in it,
//! and no bucket before `start` can rank among the first five.
//!
//! [`LatestBucketsRule`], a logical optimizer rule, puts a [`LatestBuckets`] node above a sort
//! with a limit whose first key, descending, is a `date_bin(<stride>, time[, <origin>])` group
//! of an aggregation over a stream scan (through filters, projections and aliases, which may
//! add other group keys, HAVING and further sort keys). [`exec::LatestBucketsExec`] runs the
//! query over windows ending at the end of the rows it may read, each sixteen times longer
//! than the one before, until one returns as many rows as the limit asks for; the catalog
//! lists only the files a window reaches. When no window does, it runs the plan below it,
//! DataFusion's plan of the whole query.

mod exec;

use std::{cmp::Ordering, fmt, sync::Arc};

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::{
    common::{
        Column, DFSchemaRef, DataFusionError, Result,
        tree_node::{Transformed, TreeNode, TreeNodeRecursion},
    },
    logical_expr::{Aggregate, Expr, Extension, LogicalPlan, Sort, UserDefinedLogicalNodeCore},
    optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule},
};

pub(crate) use self::exec::LatestBucketsPlanner;
use super::{functions::Bucketing, rollup::look_through};
use crate::schema::TIME;

/// Puts [`LatestBuckets`] above each sort it applies to; see the module documentation.
#[derive(Debug)]
pub(crate) struct LatestBucketsRule;

impl OptimizerRule for LatestBucketsRule {
    fn name(&self) -> &str {
        "latest_buckets"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        // Down from the top, not into a node already put: the optimizer runs its rules more
        // than once, and the sort below a node would match again.
        plan.transform_down(|plan| {
            if let LogicalPlan::Extension(extension) = &plan
                && extension.node.as_any().is::<LatestBuckets>()
            {
                return Ok(Transformed::new(plan, false, TreeNodeRecursion::Jump));
            }
            let LogicalPlan::Sort(sort) = &plan else {
                return Ok(Transformed::no(plan));
            };
            match LatestBuckets::of(sort)? {
                Some(node) => Ok(Transformed::new(
                    LogicalPlan::Extension(Extension {
                        node: Arc::new(node),
                    }),
                    true,
                    TreeNodeRecursion::Jump,
                )),
                None => Ok(Transformed::no(plan)),
            }
        })
    }
}

/// A sort with a limit, descending by time buckets first, answerable from the newest rows
/// (see the module documentation). Its input is the sort.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LatestBuckets {
    pub input: LogicalPlan,
    /// The rows the sort keeps.
    pub fetch: usize,
    pub bucketing: Bucketing,
}

impl LatestBuckets {
    /// The node for `sort`, when it is such a sort.
    fn of(sort: &Sort) -> Result<Option<Self>> {
        let (Some(fetch), Some(first)) = (sort.fetch, sort.expr.first()) else {
            return Ok(None);
        };
        let Expr::Column(column) = &first.expr else {
            return Ok(None);
        };
        if first.asc {
            return Ok(None);
        }
        let Some((aggregate, group)) = group_of(&sort.input, column) else {
            return Ok(None);
        };
        let Some(input) = look_through(aggregate)? else {
            return Ok(None);
        };
        // Simplification aliases what it rewrites (an origin given as text) to its old name.
        let Expr::ScalarFunction(call) = input.group[group].clone().unalias() else {
            return Ok(None);
        };
        let Some((bucketing, Expr::Column(binned))) = Bucketing::of(&call) else {
            return Ok(None);
        };
        let time = input.table.schema.arrow_schema().field_with_name(TIME)?;
        // A NULL time would be a NULL bucket, first in a descending order.
        let nanosecond_instants =
            time.data_type() == &DataType::Timestamp(TimeUnit::Nanosecond, None);
        if binned.name != TIME || time.is_nullable() || !nanosecond_instants {
            return Ok(None);
        }
        Ok(Some(Self {
            input: LogicalPlan::Sort(sort.clone()),
            fetch,
            bucketing,
        }))
    }
}

/// The aggregation below `plan` that makes `column`, and its group key there; `None` unless
/// `column` is a group key passed up unchanged through filters, projections and aliases.
fn group_of<'a>(mut plan: &'a LogicalPlan, column: &Column) -> Option<(&'a Aggregate, usize)> {
    let mut column = column.clone();
    loop {
        match plan {
            LogicalPlan::Projection(projection) => {
                let i = projection.schema.index_of_column(&column).ok()?;
                let Expr::Column(inner) = projection.expr[i].clone().unalias() else {
                    return None;
                };
                column = inner;
                plan = &projection.input;
            }
            LogicalPlan::Filter(filter) => plan = &filter.input,
            LogicalPlan::SubqueryAlias(alias) => {
                let i = alias.schema.index_of_column(&column).ok()?;
                column = Column::from(alias.input.schema().qualified_field(i));
                plan = &alias.input;
            }
            LogicalPlan::Aggregate(aggregate) => {
                let i = aggregate.schema.index_of_column(&column).ok()?;
                return (i < aggregate.group_expr.len()).then_some((aggregate, i));
            }
            _ => return None,
        }
    }
}

impl PartialOrd for LatestBuckets {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let ordering = (&self.input, self.fetch, self.bucketing).partial_cmp(&(
            &other.input,
            other.fetch,
            other.bucketing,
        ))?;
        // Equal only if equal in everything, as `PartialEq` says.
        (ordering != Ordering::Equal || self == other).then_some(ordering)
    }
}

impl UserDefinedLogicalNodeCore for LatestBuckets {
    fn name(&self) -> &str {
        "LatestBuckets"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "LatestBuckets: fetch={}, stride={}ns, origin={}ns",
            self.fetch, self.bucketing.stride, self.bucketing.origin
        )
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if !exprs.is_empty() || inputs.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "LatestBuckets takes no expression and 1 input, not {} and {}",
                exprs.len(),
                inputs.len()
            )));
        }
        Ok(Self {
            input: inputs.swap_remove(0),
            fetch: self.fetch,
            bucketing: self.bucketing,
        })
    }
}
