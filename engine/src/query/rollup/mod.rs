//! Answering aggregations from rollups.
//!
//! [`RollupRule`], a logical optimizer rule, finds aggregations over a stream scan that a
//! rollup can answer and rewrites them onto the rollup of the widest width that fits, when
//! that rollup summarizes enough readings per row to be worth reading (see [`Densities`]):
//!
//! - grouping only by `subject_id`, constants, and expressions of `time` through
//!   `date_bin(<stride>, time[, origin])` or `date_trunc('minute'|'hour'|'day'|'week'|'month'|
//!   'quarter'|'year', time)` whose buckets are unions of rollup buckets;
//! - filtering only on `subject_id`, and on `time` by `>=` and `<` against bucket-aligned
//!   instants;
//! - aggregating with decomposable functions: `count`, `sum`, `min`, `max`, `avg`, `var`,
//!   `var_pop`, `stddev`, `stddev_pop`, `first_value`/`last_value` ordered by time,
//!   `count(DISTINCT subject_id)`, `min`/`max(time)` and `approx_quantile`.
//!
//! The rewritten plan aggregates rollup rows (`TableScan: heart_rate_rollup_1h` in EXPLAIN,
//! read by [`RollupTable`]) and recomputes each original aggregate from their parts, under
//! the original output names and types, so the plan above does not change. Anything else
//! keeps DataFusion's plan over the raw rows.

mod quantile;
mod table;

use std::{collections::HashMap, sync::Arc};

use arrow::datatypes::DataType;
use datafusion::{
    catalog::default_table_source::{provider_as_source, source_as_provider},
    common::{
        Column, Result, ScalarValue, TableReference,
        tree_node::{Transformed, TreeNode, TreeNodeRecursion},
    },
    functions::expr_fn::{coalesce, sqrt},
    functions_aggregate::expr_fn::{count_distinct, first_value, last_value, max, min, sum},
    logical_expr::{
        Aggregate, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, cast,
        expr::{AggregateFunction, ScalarFunction, Sort},
        lit,
        utils::{conjunction, split_conjunction_owned},
        when,
    },
    optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule},
};

pub(crate) use self::quantile::approx_quantile;
use self::{quantile::approx_quantile_of_sketches, table::RollupTable};
use super::{
    functions::{Bucketing, timestamp_nanos},
    stream_table::StreamTable,
};
use crate::{
    rollup::{Densities, FIRST_TIME, LAST_TIME, Part, ROWS, RollupSchema, Width},
    schema::{SUBJECT_ID, TIME},
};

/// Rewrites aggregations a rollup can answer onto it; see the module documentation.
#[derive(Debug)]
pub(crate) struct RollupRule {
    pub densities: Arc<Densities>,
}

impl OptimizerRule for RollupRule {
    fn name(&self) -> &str {
        "rollup"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match rewrite(aggregate, &self.densities)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// What one original aggregate becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decomposed<'a> {
    Rows,
    Count(&'a str),
    Sum(&'a str),
    Min(&'a str),
    Max(&'a str),
    Avg(&'a str),
    Variance {
        value: &'a str,
        sample: bool,
        root: bool,
    },
    First(&'a str),
    Last(&'a str),
    DistinctSubjects,
    MinSubject,
    MaxSubject,
    FirstTime,
    LastTime,
    Quantile(&'a str, f64),
}

/// The aggregation's input, seen through filters and projections down to the stream scan.
pub(super) struct Input {
    pub table: StreamTable,
    pub table_name: TableReference,
    pub predicates: Vec<Expr>,
    pub group: Vec<Expr>,
    pub aggregates: Vec<Expr>,
}

fn rewrite(aggregate: &Aggregate, densities: &Densities) -> Result<Option<LogicalPlan>> {
    let Some(input) = look_through(aggregate)? else {
        return Ok(None);
    };
    let rollup = RollupSchema::of(&input.table.schema);
    let belongs = |c: &Column| {
        c.relation.as_ref().is_none_or(|r| r == &input.table_name)
            && (c.name == SUBJECT_ID || c.name == TIME || rollup.value(&c.name).is_some())
    };
    let all_columns_known = input
        .group
        .iter()
        .chain(&input.predicates)
        .chain(&input.aggregates)
        .all(|e| e.column_refs().into_iter().all(belongs));
    if !all_columns_known {
        return Ok(None);
    }

    let mut width = Some(Width::Day);
    for group in &input.group {
        if group
            .column_refs()
            .iter()
            .any(|c| c.name != SUBJECT_ID && c.name != TIME)
        {
            return Ok(None);
        }
        width = width.min(widest(group));
    }
    for predicate in &input.predicates {
        width = width.min(predicate_width(predicate));
    }
    // Narrower widths hold no more readings per row than the widest that fits.
    let Some(width) = width.filter(|&w| densities.worth_reading(input.table.schema.id(), w)) else {
        return Ok(None);
    };
    let mut decomposed = Vec::with_capacity(input.aggregates.len());
    for aggregate in &input.aggregates {
        match decompose(aggregate, &rollup) {
            Some(d) => decomposed.push(d),
            None => return Ok(None),
        }
    }

    let rollup_name = TableReference::bare(format!(
        "{}_rollup_{}",
        input.table.schema.name(),
        width.label()
    ));
    let retarget = |e: &Expr| -> Result<Expr> {
        e.clone()
            .transform(|e| match e {
                Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new(
                    Some(rollup_name.clone()),
                    c.name,
                )))),
                other => Ok(Transformed::no(other)),
            })
            .map(|t| t.data)
    };
    let predicates = input
        .predicates
        .iter()
        .map(retarget)
        .collect::<Result<Vec<_>>>()?;
    let group = input
        .group
        .iter()
        .map(retarget)
        .collect::<Result<Vec<_>>>()?;

    let column = |name: &str| Expr::Column(Column::new(Some(rollup_name.clone()), name));
    let part = |value: &str, part: Part| column(&part.column(value));
    let mut parts: Vec<Expr> = Vec::new();
    let mut part_index: HashMap<String, usize> = HashMap::new();
    let mut partial = |expr: Expr| -> Expr {
        let name = expr.schema_name().to_string();
        let index = *part_index.entry(name).or_insert_with(|| {
            parts.push(expr.clone());
            parts.len() - 1
        });
        Expr::Column(Column::from_name(format!("__rollup_part_{index}")))
    };
    let mut finals = Vec::with_capacity(decomposed.len());
    for d in &decomposed {
        let final_expr = match *d {
            Decomposed::Rows => coalesce(vec![partial(sum(column(ROWS))), lit(0i64)]),
            Decomposed::Count(v) => coalesce(vec![partial(sum(part(v, Part::Count))), lit(0i64)]),
            Decomposed::Sum(v) => partial(sum(part(v, Part::Sum))),
            Decomposed::Min(v) => partial(min(part(v, Part::Min))),
            Decomposed::Max(v) => partial(max(part(v, Part::Max))),
            Decomposed::Avg(v) => {
                let total = cast(partial(sum(part(v, Part::Sum))), DataType::Float64);
                let count = partial(sum(part(v, Part::Count)));
                when(
                    count.clone().gt(lit(0i64)),
                    total / cast(count, DataType::Float64),
                )
                .end()?
            }
            Decomposed::Variance {
                value,
                sample,
                root,
            } => {
                let n = cast(partial(sum(part(value, Part::Count))), DataType::Float64);
                let total = cast(partial(sum(part(value, Part::Sum))), DataType::Float64);
                let squares = partial(sum(part(value, Part::SumOfSquares)));
                let spread = squares - total.clone() * total / n.clone();
                // Rounding can leave a hair below zero where all values are equal.
                let spread = when(spread.clone().lt(lit(0.0)), lit(0.0)).otherwise(spread)?;
                let (least, divisor) = if sample {
                    (1.0, n.clone() - lit(1.0))
                } else {
                    (0.0, n.clone())
                };
                let variance = when(n.gt(lit(least)), spread / divisor).end()?;
                if root { sqrt(variance) } else { variance }
            }
            Decomposed::First(v) => partial(first_value(
                part(v, Part::First),
                vec![Sort::new(column(FIRST_TIME), true, false)],
            )),
            Decomposed::Last(v) => partial(last_value(
                part(v, Part::Last),
                vec![Sort::new(column(LAST_TIME), true, false)],
            )),
            Decomposed::DistinctSubjects => partial(count_distinct(column(SUBJECT_ID))),
            Decomposed::MinSubject => partial(min(column(SUBJECT_ID))),
            Decomposed::MaxSubject => partial(max(column(SUBJECT_ID))),
            Decomposed::FirstTime => partial(min(column(FIRST_TIME))),
            Decomposed::LastTime => partial(max(column(LAST_TIME))),
            Decomposed::Quantile(v, q) => partial(
                Arc::new(approx_quantile_of_sketches()).call(vec![part(v, Part::Sketch), lit(q)]),
            ),
        };
        finals.push(final_expr);
    }
    let parts: Vec<Expr> = parts
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.alias(format!("__rollup_part_{i}")))
        .collect();

    let table = RollupTable {
        stream: input.table.clone(),
        rollup,
        width,
    };
    let mut builder = LogicalPlanBuilder::scan_with_filters(
        rollup_name.clone(),
        provider_as_source(Arc::new(table)),
        None,
        predicates.clone(),
    )?;
    if let Some(predicate) = conjunction(predicates) {
        builder = builder.filter(predicate)?;
    }
    let rolled = builder.aggregate(group.clone(), parts)?.build()?;

    let original = aggregate.schema.as_ref();
    let mut outputs = Vec::with_capacity(original.fields().len());
    for i in 0..group.len() {
        let (qualifier, field) = rolled.schema().qualified_field(i);
        let (original_qualifier, original_field) = original.qualified_field(i);
        outputs.push(
            Expr::Column(Column::new(qualifier.cloned(), field.name()))
                .alias_qualified(original_qualifier.cloned(), original_field.name()),
        );
    }
    for (j, final_expr) in finals.into_iter().enumerate() {
        let (qualifier, field) = original.qualified_field(group.len() + j);
        outputs.push(
            cast(final_expr, field.data_type().clone())
                .alias_qualified(qualifier.cloned(), field.name()),
        );
    }
    Ok(Some(
        LogicalPlanBuilder::from(rolled).project(outputs)?.build()?,
    ))
}

/// Follows the aggregation's input through filters and projections to a stream scan,
/// gathering the predicates and expressing everything in the scan's columns.
pub(super) fn look_through(aggregate: &Aggregate) -> Result<Option<Input>> {
    if aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let mut group = aggregate.group_expr.clone();
    let mut aggregates = aggregate.aggr_expr.clone();
    let mut predicates: Vec<Expr> = Vec::new();
    let mut node = aggregate.input.as_ref();
    loop {
        match node {
            LogicalPlan::Filter(filter) => {
                predicates.extend(split_conjunction_owned(filter.predicate.clone()));
                node = filter.input.as_ref();
            }
            LogicalPlan::Projection(projection) => {
                let map: HashMap<Column, Expr> = projection
                    .schema
                    .columns()
                    .into_iter()
                    .zip(projection.expr.iter().map(|e| e.clone().unalias()))
                    .collect();
                let inline = |exprs: &mut Vec<Expr>| -> Result<()> {
                    for e in exprs.iter_mut() {
                        *e = std::mem::take(e)
                            .transform(|e| match e {
                                Expr::Column(c) => match map.get(&c) {
                                    Some(inner) => Ok(Transformed::yes(inner.clone())),
                                    None => Ok(Transformed::no(Expr::Column(c))),
                                },
                                other => Ok(Transformed::no(other)),
                            })?
                            .data;
                    }
                    Ok(())
                };
                inline(&mut group)?;
                inline(&mut aggregates)?;
                inline(&mut predicates)?;
                node = projection.input.as_ref();
            }
            LogicalPlan::TableScan(scan) => {
                if scan.fetch.is_some() {
                    return Ok(None);
                }
                let provider = source_as_provider(&scan.source)?;
                let Some(table) = provider.downcast_ref::<StreamTable>() else {
                    return Ok(None);
                };
                predicates.extend(scan.filters.iter().cloned());
                return Ok(Some(Input {
                    table: table.clone(),
                    table_name: scan.table_name.clone(),
                    predicates,
                    group,
                    aggregates,
                }));
            }
            _ => return Ok(None),
        }
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == TIME)
}

/// The widest rollup whose buckets divide `nanos` (a stride, an origin, a bound).
fn widest_dividing(nanos: i64) -> Option<Width> {
    Width::ALL
        .into_iter()
        .rev()
        .find(|w| nanos.rem_euclid(w.nanos()) == 0)
}

/// For `date_bin(stride, time[, origin])` and `date_trunc(unit, time)`: the widest rollup
/// whose buckets each fall in one of the call's buckets (`Some(None)`: no rollup does). `None`
/// for other expressions.
fn bucketing(call: &ScalarFunction) -> Option<Option<Width>> {
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) => Some(v.clone()),
        _ => None,
    };
    match (call.func.name(), call.args.as_slice()) {
        ("date_trunc", [unit, time]) if is_time(time) => {
            let unit = match literal(unit) {
                Some(
                    ScalarValue::Utf8(Some(u))
                    | ScalarValue::Utf8View(Some(u))
                    | ScalarValue::LargeUtf8(Some(u)),
                ) => u,
                _ => return Some(None),
            };
            Some(match unit.to_ascii_lowercase().as_str() {
                "minute" => Some(Width::Minute),
                "hour" => Some(Width::Hour),
                "day" | "week" | "month" | "quarter" | "year" => Some(Width::Day),
                _ => None,
            })
        }
        ("date_bin", [_, time, rest @ ..]) if is_time(time) && rest.len() <= 1 => {
            Some(Bucketing::of(call).and_then(|(bucketing, _)| {
                widest_dividing(bucketing.stride).min(widest_dividing(bucketing.origin))
            }))
        }
        _ => None,
    }
}

/// The widest rollup on which `expr` has the same value for every row of a bucket as for
/// the bucket's start; `None` when no rollup has (it reads `time` itself, for instance).
fn widest(expr: &Expr) -> Option<Width> {
    if is_time(expr) {
        return None;
    }
    if let Expr::ScalarFunction(call) = expr
        && let Some(width) = bucketing(call)
    {
        return width;
    }
    let mut width = Some(Width::Day);
    let _ = expr.apply_children(|child| {
        width = width.min(widest(child));
        Ok(TreeNodeRecursion::Continue)
    });
    width
}

/// The widest rollup on which a predicate keeps the same rows, as whole buckets.
fn predicate_width(predicate: &Expr) -> Option<Width> {
    let refs = predicate.column_refs();
    if refs.iter().all(|c| c.name == SUBJECT_ID) {
        return Some(Width::Day);
    }
    if let Expr::IsNotNull(inner) = predicate
        && is_time(inner)
    {
        return Some(Width::Day);
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return None;
    };
    // Only `time >= t` and `time < t`: a bucket starting at or after an aligned `t` lies
    // wholly after it, one starting before it wholly before it.
    let bound = match (left.as_ref(), op, right.as_ref()) {
        (time, Operator::GtEq | Operator::Lt, Expr::Literal(v, _)) if is_time(time) => v,
        (Expr::Literal(v, _), Operator::LtEq | Operator::Gt, time) if is_time(time) => v,
        _ => return None,
    };
    widest_dividing(timestamp_nanos(bound)?)
}

fn value_column<'a>(e: &'a Expr, rollup: &RollupSchema) -> Option<&'a str> {
    match e {
        Expr::Column(c) if rollup.value(&c.name).is_some() => Some(&c.name),
        _ => None,
    }
}

fn decompose<'a>(aggregate: &'a Expr, rollup: &RollupSchema) -> Option<Decomposed<'a>> {
    let inner = match aggregate {
        Expr::Alias(alias) => alias.expr.as_ref(),
        e => e,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
        return None;
    };
    if params.filter.is_some() || params.null_treatment.is_some() {
        return None;
    }
    let args = params.args.as_slice();
    let name = func.name();
    let ordered_by_time = match params.order_by.as_slice() {
        [] => None,
        [Sort { expr, asc, .. }] if is_time(expr) => Some(*asc),
        _ => return None,
    };
    if params.distinct {
        return match (name, args) {
            ("count", [Expr::Column(c)]) if c.name == SUBJECT_ID => {
                Some(Decomposed::DistinctSubjects)
            }
            _ => None,
        };
    }
    fn column_name(e: &Expr) -> Option<&str> {
        match e {
            Expr::Column(c) => Some(c.name.as_str()),
            _ => None,
        }
    }
    match (name, args, ordered_by_time) {
        ("count", [], None) => Some(Decomposed::Rows),
        ("count", [Expr::Literal(v, _)], None) if !v.is_null() => Some(Decomposed::Rows),
        ("count", [arg], None) => match column_name(arg)? {
            SUBJECT_ID | TIME => Some(Decomposed::Rows),
            _ => value_column(arg, rollup).map(Decomposed::Count),
        },
        ("min" | "max", [arg], None) => match (name, column_name(arg)?) {
            ("min", SUBJECT_ID) => Some(Decomposed::MinSubject),
            ("max", SUBJECT_ID) => Some(Decomposed::MaxSubject),
            ("min", TIME) => Some(Decomposed::FirstTime),
            ("max", TIME) => Some(Decomposed::LastTime),
            ("min", _) => value_column(arg, rollup).map(Decomposed::Min),
            _ => value_column(arg, rollup).map(Decomposed::Max),
        },
        ("sum", [arg], None) => value_column(arg, rollup).map(Decomposed::Sum),
        ("avg", [arg], None) => value_column(arg, rollup).map(Decomposed::Avg),
        ("var" | "var_pop" | "stddev" | "stddev_pop", [arg], None) => value_column(arg, rollup)
            .map(|value| Decomposed::Variance {
                value,
                sample: !name.ends_with("_pop"),
                root: name.starts_with("stddev"),
            }),
        ("first_value", [arg], Some(true)) => value_column(arg, rollup).map(Decomposed::First),
        ("last_value", [arg], Some(true)) => value_column(arg, rollup).map(Decomposed::Last),
        ("approx_quantile", [arg, Expr::Literal(ScalarValue::Float64(Some(q)), _)], None) => {
            value_column(arg, rollup).map(|v| Decomposed::Quantile(v, *q))
        }
        _ => None,
    }
}
