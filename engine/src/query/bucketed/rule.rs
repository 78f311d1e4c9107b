//! [`BucketedAggregateRule`]: puts [`BucketedAggregateExec`] where DataFusion planned an
//! `AggregateExec` the kernel computes the same way.

use std::sync::Arc;

use arrow::{
    compute::SortOptions,
    datatypes::{DataType, Schema, TimeUnit},
};
use datafusion::{
    common::{
        Result, ScalarValue,
        config::ConfigOptions,
        tree_node::{Transformed, TreeNode},
    },
    physical_expr::{
        LexOrdering, PhysicalExpr, PhysicalSortExpr, ScalarFunctionExpr,
        aggregate::AggregateFunctionExpr,
        expressions::{Column, Literal},
    },
    physical_optimizer::PhysicalOptimizerRule,
    physical_plan::{
        ExecutionPlan, ExecutionPlanProperties,
        aggregates::{AggregateExec, AggregateMode},
        coalesce_partitions::CoalescePartitionsExec,
        repartition::RepartitionExec,
    },
};

use super::{
    exec::BucketedAggregateExec,
    kernel::{Aggregate, Argument, Function, Numeric, Plan, numeric_of},
};
use crate::query::functions::{Bucketing, stride_nanos};

/// Replaces DataFusion's aggregation of
/// `GROUP BY subject, date_bin(INTERVAL …, time [, origin])` (in either order) by
/// [`BucketedAggregateExec`] when every condition for an identical answer holds:
///
/// - the group keys are exactly an Int64 column and `date_bin` of a Timestamp(ns) column
///   (both not nullable) with a constant stride of days, hours, minutes… (no months) and an
///   optional constant origin;
/// - each input partition is sorted by (subject, time) (the stream scans declare it);
/// - every aggregate is `count`, `sum` (Int64, Float64), `min`/`max` (Int64, Float64,
///   timestamps), `avg`, `var`, `var_pop`, `stddev`, `stddev_pop` (Float64), or
///   `first_value`/`last_value` (Int64, Float64, timestamps) with no ordering or ordered by
///   the time column, none with DISTINCT, FILTER or IGNORE NULLS.
///
/// Anything else keeps DataFusion's plan. The rule runs before DataFusion distributes and
/// sorts the plan (`EnsureRequirements`), on the `Partial`/`Final` pair the planner made.
///
/// ```
/// # use datafusion::{execution::SessionStateBuilder, prelude::SessionContext};
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_physical_optimizer_rules(engine::physical_optimizer_rules())
///     .build();
/// let ctx = SessionContext::new_with_state(state);
/// ```
#[derive(Debug, Default)]
pub struct BucketedAggregateRule;

impl PhysicalOptimizerRule for BucketedAggregateRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match rewrite(&node)? {
                Some(bucketed) => Transformed::yes(bucketed),
                None => Transformed::no(node),
            })
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "BucketedAggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The kernel in place of `node`, if `node` is an aggregation it computes.
fn rewrite(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(top) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let raw = match top.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => top,
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            let mut below = top.input();
            // Exchanges put between the phases, should the rule run after they are.
            while below.is::<RepartitionExec>() || below.is::<CoalescePartitionsExec>() {
                below = below.children()[0];
            }
            match below.downcast_ref::<AggregateExec>() {
                Some(partial) if *partial.mode() == AggregateMode::Partial => partial,
                _ => return Ok(None),
            }
        }
        AggregateMode::Partial | AggregateMode::PartialReduce => return Ok(None),
    };
    if raw.aggr_expr().len() != top.aggr_expr().len()
        || raw.filter_expr().iter().any(Option::is_some)
    {
        return Ok(None);
    }
    let input = raw.input();
    let input_schema = input.schema();
    let group_by = raw.group_expr();
    if !group_by.is_single() || group_by.expr().len() != 2 {
        return Ok(None);
    }
    let (first, second) = (&group_by.expr()[0].0, &group_by.expr()[1].0);
    let (subject_first, subject, bucket) = match (
        subject_column(first, &input_schema),
        subject_column(second, &input_schema),
    ) {
        (Some(subject), None) => (true, subject, second),
        (None, Some(subject)) => (false, subject, first),
        _ => return Ok(None),
    };
    let Some((bucketing, time)) = date_bin(bucket, &input_schema) else {
        return Ok(None);
    };
    if time == subject {
        return Ok(None);
    }
    let Some(input_ordering) = sorted_by(input, &input_schema, subject, time)? else {
        return Ok(None);
    };

    let schema = top.schema();
    if schema.fields().len() != 2 + raw.aggr_expr().len() {
        return Ok(None);
    }
    let mut arguments: Vec<Argument> = Vec::new();
    let mut aggregates = Vec::new();
    for (index, expr) in raw.aggr_expr().iter().enumerate() {
        let output_type = schema.field(2 + index).data_type();
        let Some((function, argument)) = supported(expr, &input_schema, time, output_type)? else {
            return Ok(None);
        };
        let argument = match arguments
            .iter()
            .position(|a| a.expr.as_ref() == argument.as_ref())
        {
            Some(position) => position,
            None => {
                arguments.push(Argument::new(argument));
                arguments.len() - 1
            }
        };
        aggregates.push(Aggregate { function, argument });
    }
    let plan = Plan {
        subject,
        time,
        bucketing,
        arguments,
        aggregates,
        schema,
        subject_first,
    }
    .with_needs();
    let names = raw
        .aggr_expr()
        .iter()
        .map(|e| e.name().to_owned())
        .collect();
    Ok(Some(Arc::new(BucketedAggregateExec::new(
        input.clone(),
        plan,
        input_ordering,
        names,
    ))))
}

/// The index of a not-nullable Int64 input column.
fn subject_column(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<usize> {
    let column = expr.downcast_ref::<Column>()?;
    let field = schema.fields().get(column.index())?;
    (field.data_type() == &DataType::Int64 && !field.is_nullable()).then_some(column.index())
}

/// `date_bin(constant stride without months, not-nullable Timestamp(ns) column[, constant
/// origin])`: its bucketing and the time column's index.
fn date_bin(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<(Bucketing, usize)> {
    let function = expr.downcast_ref::<ScalarFunctionExpr>()?;
    let args = function.args();
    if function.fun().name() != "date_bin" || !(2..=3).contains(&args.len()) {
        return None;
    }
    let stride = stride_nanos(literal(&args[0])?)?;
    let time = args[1].downcast_ref::<Column>()?;
    let field = schema.fields().get(time.index())?;
    if !matches!(
        field.data_type(),
        DataType::Timestamp(TimeUnit::Nanosecond, _)
    ) || field.is_nullable()
    {
        return None;
    }
    let origin = match args.get(2) {
        None => 0,
        Some(origin) => match literal(origin)? {
            ScalarValue::TimestampNanosecond(Some(origin), _) => *origin,
            _ => return None,
        },
    };
    (stride > 0).then_some((Bucketing { stride, origin }, time.index()))
}

fn literal(expr: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>().map(Literal::value)
}

/// The input's (subject, time) order, if each of its partitions is sorted so.
fn sorted_by(
    input: &Arc<dyn ExecutionPlan>,
    schema: &Schema,
    subject: usize,
    time: usize,
) -> Result<Option<LexOrdering>> {
    let properties = input.equivalence_properties();
    for nulls_first in [false, true] {
        let options = SortOptions {
            descending: false,
            nulls_first,
        };
        let by = |index: usize| {
            PhysicalSortExpr::new(
                Arc::new(Column::new(schema.field(index).name(), index)),
                options,
            )
        };
        let ordering = [by(subject), by(time)];
        if properties.ordering_satisfy(ordering.clone())? {
            return Ok(LexOrdering::new(ordering));
        }
    }
    Ok(None)
}

/// The kernel's function for an aggregate expression and the argument it reads, if the
/// kernel computes it exactly as DataFusion does.
fn supported(
    expr: &AggregateFunctionExpr,
    schema: &Schema,
    time: usize,
    output_type: &DataType,
) -> Result<Option<(Function, Arc<dyn PhysicalExpr>)>> {
    let arguments = expr.expressions();
    if expr.is_distinct() || expr.ignore_nulls() || arguments.len() != 1 {
        return Ok(None);
    }
    let argument = arguments[0].clone();
    let input_type = argument.data_type(schema)?;
    let numeric = numeric_of(&input_type);
    let same_type = &input_type == output_type;
    let float = input_type == DataType::Float64 && output_type == &DataType::Float64;
    let function = match expr.fun().name() {
        "count" if output_type == &DataType::Int64 => Function::Count,
        "sum" if same_type && matches!(input_type, DataType::Int64 | DataType::Float64) => {
            Function::Sum(numeric.unwrap_or(Numeric::Float))
        }
        "min" if same_type => match numeric {
            Some(numeric) => Function::Min(numeric),
            None => return Ok(None),
        },
        "max" if same_type => match numeric {
            Some(numeric) => Function::Max(numeric),
            None => return Ok(None),
        },
        "avg" if float => Function::Avg,
        "var" if float => Function::Variance {
            population: false,
            root: false,
        },
        "var_pop" if float => Function::Variance {
            population: true,
            root: false,
        },
        "stddev" if float => Function::Variance {
            population: false,
            root: true,
        },
        "stddev_pop" if float => Function::Variance {
            population: true,
            root: true,
        },
        name @ ("first_value" | "last_value") if same_type => {
            let Some(numeric) = numeric else {
                return Ok(None);
            };
            let first = name == "first_value";
            // Ordered by time descending, the first value is the latest one.
            let first = match expr.order_bys() {
                [] => first,
                [order] => match order.expr.downcast_ref::<Column>() {
                    Some(column) if column.index() == time => first != order.options.descending,
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            };
            if first {
                Function::First(numeric)
            } else {
                Function::Last(numeric)
            }
        }
        _ => return Ok(None),
    };
    // Ordered aggregates other than first/last are order-insensitive, as DataFusion reports.
    if !matches!(function, Function::First(_) | Function::Last(_)) && !expr.order_bys().is_empty() {
        return Ok(None);
    }
    Ok(Some((function, argument)))
}
