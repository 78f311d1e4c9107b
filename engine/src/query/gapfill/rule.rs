//! [`GapFillRule`]: rewrites the queries that use `date_bin_gapfill`, `locf` and
//! `interpolate` into plans with a [`GapFill`] node.

use std::sync::Arc;

use datafusion::{
    common::{
        Column, DataFusionError, Result, ScalarValue,
        config::ConfigOptions,
        tree_node::{Transformed, TreeNode, TreeNodeRecursion},
    },
    logical_expr::{
        Aggregate, Between, BinaryExpr, Expr, Extension, LogicalPlan, Operator, Projection,
        expr::{Alias, ScalarFunction},
        utils::split_conjunction,
    },
    optimizer::AnalyzerRule,
};

use super::{
    functions::{self, DATE_BIN_GAPFILL_USAGE, Fill, fill_usage},
    node::{Bound, FillColumn, GapFill},
};

/// Makes `GROUP BY …, date_bin_gapfill(stride, time[, origin])` a gap-filling query:
///
/// ```text
/// Projection: subject_id, date_bin_gapfill(…) AS t, locf(avg(bpm))
///   Aggregate: groupBy=[subject_id, date_bin_gapfill(…)], aggr=[avg(bpm)]
///     Filter: time >= … AND time < …
/// ```
///
/// becomes
///
/// ```text
/// Projection: subject_id, date_bin_gapfill(…) AS t, locf(avg(bpm))
///   GapFill: series=[subject_id], time=date_bin_gapfill(…), range=[>= …; < …], fills=[locf(avg(bpm))]
///     Aggregate: groupBy=[subject_id, date_bin(…) AS date_bin_gapfill(…)], aggr=[avg(bpm)]
///       Filter: time >= … AND time < …
/// ```
///
/// The time range comes from the filters right below the aggregation: comparisons and
/// `BETWEEN` of the time column with expressions without columns (`$1` placeholders
/// included, bound before the rule runs). Both a lower and an upper bound are required.
/// `locf(x)` and `interpolate(x)` in the projection right above, where `x` is an aggregate,
/// become fill columns of the node. Any other use of the three functions is refused with a
/// message that says how to use them. The rule runs after type coercion, so the arguments
/// of `date_bin_gapfill` are those `date_bin` takes.
///
/// [`install`](super::install) adds it to a session with the functions and the planner of
/// the node.
#[derive(Debug, Default)]
pub struct GapFillRule;

impl AnalyzerRule for GapFillRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite)
            .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "gap_fill"
    }
}

fn rewrite(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let rewritten = match node {
        LogicalPlan::Aggregate(aggregate) => gap_fill(aggregate)?,
        LogicalPlan::Projection(projection) => fill_projection(projection)?,
        node => Transformed::no(node),
    };
    refuse_leftovers(&rewritten.data)?;
    Ok(rewritten)
}

/// Refuses a node that still calls one of the functions: they have no place there.
fn refuse_leftovers(node: &LogicalPlan) -> Result<()> {
    for expr in node.expressions() {
        if let Some(usage) = leftover_call(&expr)? {
            return Err(DataFusionError::Plan(usage));
        }
    }
    Ok(())
}

/// How to use the first gap-filling function `expr` calls, if it calls one.
fn leftover_call(expr: &Expr) -> Result<Option<String>> {
    let mut usage = None;
    expr.apply(|e| {
        if functions::date_bin_gapfill_call(e).is_some() {
            usage = Some(DATE_BIN_GAPFILL_USAGE.to_owned());
        } else if let Some((fill, _)) = Fill::of_call(e) {
            usage = Some(fill_usage(fill.name()));
        }
        Ok(if usage.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(usage)
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(Alias { expr, .. }) => unaliased(expr),
        expr => expr,
    }
}

/// The aggregation grouped by `date_bin` below a [`GapFill`], if it is grouped by
/// `date_bin_gapfill`.
fn gap_fill(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let mut found = None;
    for (index, key) in aggregate.group_expr.iter().enumerate() {
        match functions::date_bin_gapfill_call(unaliased(key)) {
            Some(_) if found.is_some() => {
                return Err(DataFusionError::Plan(
                    "date_bin_gapfill may appear only once in GROUP BY".to_owned(),
                ));
            }
            Some(args) => found = Some((index, args.to_vec())),
            None if leftover_call(key)?.is_some() => {
                return Err(DataFusionError::Plan(format!(
                    "date_bin_gapfill must be a GROUP BY key of its own, not inside `{key}` \
                     (no GROUPING SETS, ROLLUP or CUBE either)"
                )));
            }
            None => {}
        }
    }
    let Some((time, args)) = found else {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    };
    let (stride, time_column, origin) = match args.as_slice() {
        [stride, time_column] => (stride, time_column, None),
        [stride, time_column, origin] => (stride, time_column, Some(origin)),
        _ => {
            return Err(DataFusionError::Plan(format!(
                "date_bin_gapfill takes 2 or 3 arguments (stride, time, origin), not {}",
                args.len()
            )));
        }
    };
    let time_column = column_of(time_column).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "date_bin_gapfill needs a column as its time argument, not `{time_column}`"
        ))
    })?;
    for (what, expr) in [("stride", Some(stride)), ("origin", origin)] {
        if let Some(expr) = expr
            && has_columns(expr)
        {
            return Err(DataFusionError::Plan(format!(
                "the {what} of date_bin_gapfill must be a constant, not `{expr}`"
            )));
        }
    }
    let (lower, upper) = time_range(&aggregate.input, &time_column);
    let missing = match (lower.is_empty(), upper.is_empty()) {
        (true, true) => Some("lower bound (`time >= …`) nor upper bound (`time < …`)"),
        (true, false) => Some("lower bound (`time >= …`)"),
        (false, true) => Some("upper bound (`time < …`)"),
        (false, false) => None,
    };
    if let Some(missing) = missing {
        return Err(DataFusionError::Plan(format!(
            "{DATE_BIN_GAPFILL_USAGE}; WHERE has no {missing} on {time_column}"
        )));
    }

    let bucket_name = aggregate.schema.fields()[time].name().clone();
    let date_bin = crate::query::functions::date_bin();
    let mut group_expr = aggregate.group_expr.clone();
    group_expr[time] =
        Expr::ScalarFunction(ScalarFunction::new_udf(date_bin, args.clone())).alias(bucket_name);
    let gap_values = gap_values(&aggregate)?;
    let series = (0..aggregate.group_expr.len())
        .filter(|&i| i != time)
        .collect();
    let rewritten = Aggregate::try_new_with_schema(
        aggregate.input.clone(),
        group_expr,
        aggregate.aggr_expr.clone(),
        aggregate.schema.clone(),
    )?;
    let rewritten = LogicalPlan::Aggregate(rewritten);
    refuse_leftovers(&rewritten)?;
    let node = GapFill::try_new(
        Arc::new(rewritten),
        series,
        time,
        stride.clone(),
        origin.cloned(),
        lower,
        upper,
        gap_values,
        Vec::new(),
    )?;
    Ok(Transformed::yes(LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    })))
}

/// What each output column of the aggregation holds in a gap: NULL, or, for an aggregate
/// that is never NULL, its value over no rows (`count` gives 0).
fn gap_values(aggregate: &Aggregate) -> Result<Vec<ScalarValue>> {
    let keys = aggregate.group_expr.len();
    aggregate
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let null = ScalarValue::try_from(field.data_type())?;
            if i < keys || field.is_nullable() {
                return Ok(null);
            }
            match aggregate.aggr_expr.get(i - keys).map(unaliased) {
                Some(Expr::AggregateFunction(function)) => {
                    function.func.default_value(field.data_type())
                }
                _ => Ok(null),
            }
        })
        .collect()
}

/// The column an expression is, under casts.
fn column_of(expr: &Expr) -> Option<Column> {
    match expr {
        Expr::Column(column) => Some(column.clone()),
        Expr::Cast(cast) => column_of(&cast.expr),
        Expr::TryCast(cast) => column_of(&cast.expr),
        _ => None,
    }
}

fn has_columns(expr: &Expr) -> bool {
    !expr.column_refs().is_empty()
}

/// The lower and upper bounds on `time` in the filters right below an aggregation.
fn time_range(input: &LogicalPlan, time: &Column) -> (Vec<Bound>, Vec<Bound>) {
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    let is_time = |expr: &Expr| column_of(expr).as_ref() == Some(time);
    let bound = |value: &Expr, inclusive| Bound {
        value: value.clone(),
        inclusive,
    };
    let mut node = input;
    while let LogicalPlan::Filter(filter) = node {
        for conjunct in split_conjunction(&filter.predicate) {
            match conjunct {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    let (value, op) = if is_time(left) && !has_columns(right) {
                        (right.as_ref(), *op)
                    } else if is_time(right) && !has_columns(left) {
                        match op.swap() {
                            Some(op) => (left.as_ref(), op),
                            None => continue,
                        }
                    } else {
                        continue;
                    };
                    match op {
                        Operator::Gt => lower.push(bound(value, false)),
                        Operator::GtEq => lower.push(bound(value, true)),
                        Operator::Lt => upper.push(bound(value, false)),
                        Operator::LtEq => upper.push(bound(value, true)),
                        Operator::Eq => {
                            lower.push(bound(value, true));
                            upper.push(bound(value, true));
                        }
                        _ => {}
                    }
                }
                Expr::Between(Between {
                    expr,
                    negated: false,
                    low,
                    high,
                }) if is_time(expr) && !has_columns(low) && !has_columns(high) => {
                    lower.push(bound(low, true));
                    upper.push(bound(high, true));
                }
                _ => {}
            }
        }
        node = &filter.input;
    }
    (lower, upper)
}

/// The projection right above a [`GapFill`], its `locf(x)` and `interpolate(x)` made
/// columns the node adds.
fn fill_projection(projection: Projection) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Extension(extension) = projection.input.as_ref() else {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    };
    let Some(node) = extension.node.as_any().downcast_ref::<GapFill>() else {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    };
    let input_schema = node.input.schema().clone();
    let keys = node.series.len() + 1;
    let mut fills = node.fills.clone();
    let mut exprs = Vec::with_capacity(projection.expr.len());
    let mut changed = false;
    for (expr, (qualifier, field)) in projection.expr.iter().zip(projection.schema.iter()) {
        let rewritten = expr.clone().transform_up(|e| {
            let Some((fill, args)) = Fill::of_call(&e) else {
                return Ok(Transformed::no(e));
            };
            let column = match args {
                [Expr::Column(column)] => input_schema.maybe_index_of_column(column),
                _ => None,
            };
            let column = match column {
                Some(column) if column >= keys => column,
                _ => return Err(DataFusionError::Plan(fill_usage(fill.name()))),
            };
            if fill == Fill::Interpolate {
                let data_type = input_schema.field(column).data_type();
                if !data_type.is_numeric() {
                    return Err(DataFusionError::Plan(format!(
                        "interpolate needs a numeric aggregate, and `{}` is {data_type}",
                        args[0]
                    )));
                }
            }
            let name = e.schema_name().to_string();
            if !fills.iter().any(|f| f.name == name) {
                fills.push(FillColumn {
                    column,
                    fill,
                    name: name.clone(),
                });
            }
            Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                name,
            ))))
        })?;
        changed |= rewritten.transformed;
        let expr = if rewritten.transformed {
            let (was_qualifier, was_name) = (qualifier.cloned(), field.name());
            match rewritten.data.qualified_name() {
                (q, n) if q == was_qualifier && &n == was_name => rewritten.data,
                _ => rewritten.data.alias_qualified(was_qualifier, was_name),
            }
        } else {
            rewritten.data
        };
        exprs.push(expr);
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    }
    let node = node.with_fills(fills)?;
    let input = LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    });
    let projection = Projection::try_new_with_schema(exprs, Arc::new(input), projection.schema)?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}
