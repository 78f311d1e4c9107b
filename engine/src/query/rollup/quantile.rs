//! `approx_quantile(value, q)`: a quantile from a mergeable [`Sketch`], so the rollups can
//! answer it — from raw values or, in a rollup plan, from the rollups' sketches, with the
//! same result.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, Float64Type},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
    physical_expr::expressions::Literal,
};

use crate::rollup::Sketch;

/// What the function aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Input {
    /// Numbers.
    Values,
    /// Encoded sketches, from rollups.
    Sketches,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxQuantile {
    input: Input,
    signature: Signature,
}

/// `approx_quantile(value, q)`, registered in every session.
pub(crate) fn approx_quantile() -> AggregateUDF {
    AggregateUDF::from(ApproxQuantile {
        input: Input::Values,
        signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable),
    })
}

/// The same quantile from rollup sketches; only rollup plans use it.
pub(crate) fn approx_quantile_of_sketches() -> AggregateUDF {
    AggregateUDF::from(ApproxQuantile {
        input: Input::Sketches,
        signature: Signature::exact(
            vec![DataType::Binary, DataType::Float64],
            Volatility::Immutable,
        ),
    })
}

impl AggregateUDFImpl for ApproxQuantile {
    fn name(&self) -> &str {
        match self.input {
            Input::Values => "approx_quantile",
            Input::Sketches => "approx_quantile_of_sketches",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sketch"),
            DataType::Binary,
            false,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("approx_quantile(DISTINCT …) is not supported");
        }
        let q = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Float64(Some(q)) if (0.0..=1.0).contains(q) => Some(*q),
                _ => None,
            });
        let Some(q) = q else {
            return plan_err!(
                "approx_quantile(value, q): q must be a constant between 0 and 1, as in approx_quantile(bpm, 0.5)"
            );
        };
        Ok(Box::new(QuantileAccumulator {
            input: self.input,
            q,
            sketch: Sketch::default(),
        }))
    }
}

#[derive(Debug)]
struct QuantileAccumulator {
    input: Input,
    q: f64,
    sketch: Sketch,
}

impl QuantileAccumulator {
    fn merge_sketches(&mut self, array: &ArrayRef) -> Result<()> {
        for bytes in array.as_binary::<i32>().iter().flatten() {
            match Sketch::decode(bytes) {
                Some(sketch) => self.sketch.merge(&sketch),
                None => {
                    return exec_err!("a rollup holds a quantile sketch this engine cannot read");
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match self.input {
            Input::Values => {
                for value in values[0].as_primitive::<Float64Type>().iter().flatten() {
                    self.sketch.insert(value);
                }
                Ok(())
            }
            Input::Sketches => self.merge_sketches(&values[0]),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.merge_sketches(&states[0])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut bytes = Vec::new();
        self.sketch.encode(&mut bytes);
        Ok(vec![ScalarValue::Binary(Some(bytes))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.sketch.quantile(self.q)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sketch.heap_size()
    }
}
