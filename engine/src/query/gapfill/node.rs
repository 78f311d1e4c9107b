//! [`GapFill`]: the logical node [`GapFillRule`](super::GapFillRule) puts above an
//! aggregation grouped by `date_bin_gapfill`.

use std::{cmp::Ordering, fmt, sync::Arc};

use arrow::datatypes::{Field, Fields};
use datafusion::{
    common::{DFSchema, DFSchemaRef, DataFusionError, Result, ScalarValue},
    logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore},
};

use super::functions::Fill;

/// One limit of the time range, as written in WHERE: `time >= value` is an inclusive lower
/// bound, `time < value` an exclusive upper one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Bound {
    pub value: Expr,
    pub inclusive: bool,
}

/// A column the node adds: an aggregate column of its input, gap-filled another way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FillColumn {
    /// The input column filled.
    pub column: usize,
    pub fill: Fill,
    /// The output column's name: the call's, such as `locf(avg(heart_rate.bpm))`.
    pub name: String,
}

/// Fills the gaps of an aggregation grouped by time buckets and other keys (the *series*):
/// its output is the input's rows plus, for every series, a row for every bucket of the time
/// range it has none for, holding the series' keys, the bucket, and for each aggregate NULL
/// (or what the aggregate of no rows is, where the aggregate is never NULL: `count` gives
/// 0). After the input's columns come the [`FillColumn`]s. The time range is the tightest of
/// the bounds: expressions without columns, evaluated when the plan is made physical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GapFill {
    pub input: Arc<LogicalPlan>,
    /// The input columns of the series' keys.
    pub series: Vec<usize>,
    /// The input column of the buckets.
    pub time: usize,
    pub stride: Expr,
    pub origin: Option<Expr>,
    pub lower: Vec<Bound>,
    pub upper: Vec<Bound>,
    /// What each input column holds in a gap (unused for the series and time columns).
    pub gap_values: Vec<ScalarValue>,
    pub fills: Vec<FillColumn>,
    schema: DFSchemaRef,
}

impl GapFill {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn try_new(
        input: Arc<LogicalPlan>,
        series: Vec<usize>,
        time: usize,
        stride: Expr,
        origin: Option<Expr>,
        lower: Vec<Bound>,
        upper: Vec<Bound>,
        gap_values: Vec<ScalarValue>,
        fills: Vec<FillColumn>,
    ) -> Result<Self> {
        let schema = Self::schema_of(&input, &gap_values, &fills)?;
        Ok(GapFill {
            input,
            series,
            time,
            stride,
            origin,
            lower,
            upper,
            gap_values,
            fills,
            schema,
        })
    }

    /// The node with more fill columns.
    pub(crate) fn with_fills(&self, fills: Vec<FillColumn>) -> Result<Self> {
        let mut node = self.clone();
        node.schema = Self::schema_of(&node.input, &node.gap_values, &fills)?;
        node.fills = fills;
        Ok(node)
    }

    fn schema_of(
        input: &LogicalPlan,
        gap_values: &[ScalarValue],
        fills: &[FillColumn],
    ) -> Result<DFSchemaRef> {
        let input_schema = input.schema();
        let mut fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> =
            input_schema
                .iter()
                .zip(gap_values)
                .map(|((qualifier, field), gap)| {
                    let field = if gap.is_null() && !field.is_nullable() {
                        Arc::new(field.as_ref().clone().with_nullable(true))
                    } else {
                        field.clone()
                    };
                    (qualifier.cloned(), field)
                })
                .collect();
        for fill in fills {
            let field = input_schema.field(fill.column);
            fields.push((
                None,
                Arc::new(Field::new(&fill.name, field.data_type().clone(), true)),
            ));
        }
        let schema = DFSchema::new_with_metadata(fields, input_schema.metadata().clone())?;
        Ok(Arc::new(schema))
    }

    pub(crate) fn input_fields(&self) -> &Fields {
        self.input.schema().inner().fields()
    }
}

impl PartialOrd for GapFill {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        let ordering =
            (&self.input, self.expressions()).partial_cmp(&(&other.input, other.expressions()))?;
        // Equal only if equal in everything, as `PartialEq` says.
        (ordering != Ordering::Equal || self == other).then_some(ordering)
    }
}

impl UserDefinedLogicalNodeCore for GapFill {
    fn name(&self) -> &str {
        "GapFill"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// The stride, the origin if any, the lower bounds, the upper bounds.
    fn expressions(&self) -> Vec<Expr> {
        std::iter::once(&self.stride)
            .chain(&self.origin)
            .chain(self.lower.iter().map(|b| &b.value))
            .chain(self.upper.iter().map(|b| &b.value))
            .cloned()
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let fields = self.input_fields();
        let series: Vec<&str> = self
            .series
            .iter()
            .map(|&i| fields[i].name().as_str())
            .collect();
        let bounds = |bounds: &[Bound], inclusive: &str, exclusive: &str| {
            bounds
                .iter()
                .map(|b| {
                    let op = if b.inclusive { inclusive } else { exclusive };
                    format!("{op} {}", b.value)
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        write!(
            f,
            "GapFill: series=[{}], time={}, stride={}",
            series.join(", "),
            fields[self.time].name(),
            self.stride
        )?;
        if let Some(origin) = &self.origin {
            write!(f, ", origin={origin}")?;
        }
        write!(
            f,
            ", range=[{}; {}]",
            bounds(&self.lower, ">=", ">"),
            bounds(&self.upper, "<=", "<")
        )?;
        if !self.fills.is_empty() {
            let fills: Vec<&str> = self.fills.iter().map(|c| c.name.as_str()).collect();
            write!(f, ", fills=[{}]", fills.join(", "))?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let expected = 1 + usize::from(self.origin.is_some()) + self.lower.len() + self.upper.len();
        if exprs.len() != expected || inputs.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "GapFill takes {expected} expressions and 1 input, not {} and {}",
                exprs.len(),
                inputs.len()
            )));
        }
        // Optimizer rules alias what they rewrite, to keep names these expressions do not give.
        let mut exprs = exprs.into_iter().map(Expr::unalias);
        let mut take = |n: usize| exprs.by_ref().take(n).collect::<Vec<_>>();
        let stride = take(1);
        let origin = take(usize::from(self.origin.is_some())).pop();
        let mut rebound = |bounds: &[Bound]| -> Vec<Bound> {
            bounds
                .iter()
                .zip(take(bounds.len()))
                .map(|(b, value)| Bound {
                    value,
                    inclusive: b.inclusive,
                })
                .collect()
        };
        let lower = rebound(&self.lower);
        let upper = rebound(&self.upper);
        let Some(stride) = stride.into_iter().next() else {
            return Err(DataFusionError::Internal("GapFill without a stride".into()));
        };
        GapFill::try_new(
            Arc::new(inputs.swap_remove(0)),
            self.series.clone(),
            self.time,
            stride,
            origin,
            lower,
            upper,
            self.gap_values.clone(),
            self.fills.clone(),
        )
    }
}
