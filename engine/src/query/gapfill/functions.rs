//! The SQL functions of gap filling. None of them computes anything: [`GapFillRule`] rewrites
//! the queries that use them where they belong, and any call left in a plan fails with a
//! message that says how to use it.
//!
//! [`GapFillRule`]: super::GapFillRule

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::{
    common::{DataFusionError, Result},
    logical_expr::{
        ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    },
};

pub(crate) const DATE_BIN_GAPFILL: &str = "date_bin_gapfill";
pub(crate) const LOCF: &str = "locf";
pub(crate) const INTERPOLATE: &str = "interpolate";

/// How to use `date_bin_gapfill`, said whenever it is used otherwise.
pub(crate) const DATE_BIN_GAPFILL_USAGE: &str = "date_bin_gapfill needs GROUP BY and a time \
    range `time >= … AND time < …` in WHERE, as in `SELECT date_bin_gapfill(INTERVAL '5 \
    minutes', time) AS t, avg(bpm) FROM heart_rate WHERE time >= … AND time < … GROUP BY t`";

/// How to use `locf` and `interpolate`.
pub(crate) fn fill_usage(function: &str) -> String {
    format!(
        "{function} fills the gaps of an aggregate, as in `{function}(avg(bpm))`, in the SELECT \
         list of a query grouped by date_bin_gapfill"
    )
}

/// The three functions, for a session's registry.
pub(crate) fn all() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(DateBinGapfill::new())),
        Arc::new(ScalarUDF::from(FillFunction::new(Fill::Locf))),
        Arc::new(ScalarUDF::from(FillFunction::new(Fill::Interpolate))),
    ]
}

/// How the gaps of a column are filled, beyond NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub(crate) enum Fill {
    /// The last non-NULL value of the same series, carried forward.
    Locf,
    /// Linear in time between the non-NULL values around the gap.
    Interpolate,
}

impl Fill {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fill::Locf => LOCF,
            Fill::Interpolate => INTERPOLATE,
        }
    }

    /// The fill an expression asks for, if it is a call to `locf` or `interpolate`.
    pub(crate) fn of_call(expr: &Expr) -> Option<(Fill, &[Expr])> {
        let Expr::ScalarFunction(call) = expr else {
            return None;
        };
        let function = call.func.inner().as_ref() as &dyn std::any::Any;
        function
            .downcast_ref::<FillFunction>()
            .map(|f| (f.fill, call.args.as_slice()))
    }
}

/// The arguments of `date_bin_gapfill`, if `expr` calls it.
pub(crate) fn date_bin_gapfill_call(expr: &Expr) -> Option<&[Expr]> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    let function = call.func.inner().as_ref() as &dyn std::any::Any;
    function
        .is::<DateBinGapfill>()
        .then_some(call.args.as_slice())
}

/// `date_bin_gapfill(stride, time[, origin])`: `date_bin` with the same arguments and types,
/// whose GROUP BY also gets the buckets no row falls in.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DateBinGapfill {
    date_bin: Arc<ScalarUDF>,
}

impl DateBinGapfill {
    fn new() -> Self {
        DateBinGapfill {
            date_bin: crate::query::functions::date_bin(),
        }
    }
}

impl ScalarUDFImpl for DateBinGapfill {
    fn name(&self) -> &str {
        DATE_BIN_GAPFILL
    }

    fn signature(&self) -> &Signature {
        self.date_bin.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.date_bin.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.date_bin.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Plan(DATE_BIN_GAPFILL_USAGE.to_owned()))
    }
}

/// `locf(aggregate)` and `interpolate(aggregate)`: the aggregate, with its gaps filled.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FillFunction {
    fill: Fill,
    signature: Signature,
}

impl FillFunction {
    fn new(fill: Fill) -> Self {
        FillFunction {
            fill,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FillFunction {
    fn name(&self) -> &str {
        self.fill.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan(fill_usage(self.fill.name())))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Plan(fill_usage(self.fill.name())))
    }
}
