//! The aggregates that follow a group's readings in time order: `time_weighted_avg`,
//! `time_in_zone` and `trimp`.
//!
//! Step semantics: a reading holds until the next reading of the group (last observation
//! carried forward), so its weight is the time to the next one; the last reading has no next
//! and weighs nothing. Readings at the same instant count as one, their mean. `time_in_zone`
//! and `trimp` cap a reading's span at [`MAX_SPAN`] so that the hours a watch was off do not
//! count as the last reading before them; `time_weighted_avg` does not cap.
//!
//! The state is the group's readings (two lists: times and values), sorted only when the
//! aggregate finishes: partial states from any partitions merge by concatenation.

use std::{mem::size_of, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, ListArray, TimestampNanosecondArray},
    buffer::OffsetBuffer,
    datatypes::{DataType, Field, FieldRef, Float64Type, TimeUnit, TimestampNanosecondType},
};
use datafusion::{
    common::{Result, ScalarValue},
    logical_expr::{
        Accumulator, AggregateUDFImpl, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

use super::{trimp, weighted, zones};

/// The longest a reading counts for in `time_in_zone` and `trimp`: 5 minutes.
pub(super) const MAX_SPAN: i64 = 5 * 60_000_000_000;

/// A reading: UTC time in nanoseconds, and the value the aggregate follows.
pub(super) type Sample = (i64, f64);

/// A distinct instant's value and how long it holds (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Step {
    pub value: f64,
    pub span: i64,
}

/// Sorts the samples, merges those of one instant into their mean, and gives each the time
/// to the next instant, capped at `max_span`; the last instant holds for 0.
pub(super) fn steps(samples: &mut [Sample], max_span: Option<i64>) -> Vec<Step> {
    samples.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut instants: Vec<(i64, f64)> = Vec::new();
    for run in samples.chunk_by(|a, b| a.0 == b.0) {
        let mean = run.iter().map(|s| s.1).sum::<f64>() / run.len() as f64;
        instants.push((run[0].0, mean));
    }
    let mut steps: Vec<Step> = instants
        .windows(2)
        .map(|pair| {
            let span = pair[1].0.saturating_sub(pair[0].0);
            Step {
                value: pair[0].1,
                span: max_span.map_or(span, |cap| span.min(cap)),
            }
        })
        .collect();
    if let Some(&(_, value)) = instants.last() {
        steps.push(Step { value, span: 0 });
    }
    steps
}

/// Which of the three aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum SeriesFunction {
    TimeWeightedAvg,
    TimeInZone,
    Trimp,
}

impl SeriesFunction {
    fn name(self) -> &'static str {
        match self {
            SeriesFunction::TimeWeightedAvg => "time_weighted_avg",
            SeriesFunction::TimeInZone => "time_in_zone",
            SeriesFunction::Trimp => "trimp",
        }
    }
}

/// What an accumulator samples from its rows and makes of the steps, with the constant
/// zone of `time_in_zone`.
#[derive(Debug, Clone, Copy)]
enum Finish {
    Average,
    MinutesInZone(i32),
    Impulse,
}

/// `time_weighted_avg`, `time_in_zone` or `trimp`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct SeriesAggregate {
    function: SeriesFunction,
    signature: Signature,
}

impl SeriesAggregate {
    pub(super) fn new(function: SeriesFunction) -> Self {
        SeriesAggregate {
            function,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// A nullable list field of nullable `item`s.
pub(super) fn list_field(name: String, item: DataType) -> FieldRef {
    Arc::new(Field::new_list(
        name,
        Field::new_list_field(item, true),
        true,
    ))
}

fn timestamps() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

impl AggregateUDFImpl for SeriesAggregate {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match self.function {
            SeriesFunction::TimeWeightedAvg => weighted::coerce(args),
            SeriesFunction::TimeInZone => zones::coerce_time_in_zone(args),
            SeriesFunction::Trimp => trimp::coerce(args),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let finish = match self.function {
            SeriesFunction::TimeWeightedAvg => Finish::Average,
            SeriesFunction::TimeInZone => Finish::MinutesInZone(zones::constant_zone(&args)?),
            SeriesFunction::Trimp => Finish::Impulse,
        };
        Ok(Box::new(SeriesAccumulator {
            finish,
            samples: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_field(format_state_name(args.name, "times"), timestamps()),
            list_field(format_state_name(args.name, "values"), DataType::Float64),
        ])
    }
}

#[derive(Debug)]
struct SeriesAccumulator {
    finish: Finish,
    samples: Vec<Sample>,
}

/// A one-row list holding `values`.
pub(super) fn one_list(values: ArrayRef) -> ScalarValue {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let offsets = OffsetBuffer::from_lengths([values.len()]);
    ScalarValue::List(Arc::new(ListArray::new(field, offsets, values, None)))
}

/// The values of every non-null row of a list column, concatenated.
pub(super) fn list_rows(state: &ArrayRef) -> impl Iterator<Item = ArrayRef> + '_ {
    state.as_list::<i32>().iter().flatten()
}

impl Accumulator for SeriesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match self.finish {
            Finish::Average => weighted::samples(values, &mut self.samples),
            Finish::MinutesInZone(_) => zones::shares_of_max(values, &mut self.samples),
            Finish::Impulse => trimp::intensities(values, &mut self.samples),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (times, values) in list_rows(&states[0]).zip(list_rows(&states[1])) {
            let times = times.as_primitive::<TimestampNanosecondType>();
            let values = values.as_primitive::<Float64Type>();
            self.samples.extend(
                times
                    .values()
                    .iter()
                    .copied()
                    .zip(values.values().iter().copied()),
            );
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let times = TimestampNanosecondArray::from_iter_values(self.samples.iter().map(|s| s.0));
        let values = Float64Array::from_iter_values(self.samples.iter().map(|s| s.1));
        Ok(vec![one_list(Arc::new(times)), one_list(Arc::new(values))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.samples.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        let max_span = match self.finish {
            Finish::Average => None,
            Finish::MinutesInZone(_) | Finish::Impulse => Some(MAX_SPAN),
        };
        let steps = steps(&mut self.samples, max_span);
        Ok(ScalarValue::Float64(Some(match self.finish {
            Finish::Average => weighted::average(&steps),
            Finish::MinutesInZone(zone) => zones::minutes_in(zone, &steps),
            Finish::Impulse => trimp::impulse(&steps),
        })))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.samples.capacity() * size_of::<Sample>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    #[test]
    fn steps_sort_merge_instants_and_cap() {
        let mut samples = vec![(10 * MINUTE, 4.0), (0, 1.0), (MINUTE, 2.0), (MINUTE, 6.0)];
        assert_eq!(
            steps(&mut samples, Some(5 * MINUTE)),
            vec![
                Step {
                    value: 1.0,
                    span: MINUTE
                },
                Step {
                    value: 4.0,
                    span: 5 * MINUTE
                },
                Step {
                    value: 4.0,
                    span: 0
                },
            ]
        );
        assert_eq!(steps(&mut [], None), vec![]);
    }

    /// Feeds `rows` to one accumulator, and to three whose states are merged into a fourth:
    /// both must give the same answer.
    fn single_and_merged(finish: Finish, rows: &[ArrayRef]) {
        let accumulator = || SeriesAccumulator {
            finish,
            samples: Vec::new(),
        };
        let mut single = accumulator();
        single.update_batch(rows).unwrap();
        let expected = single.evaluate().unwrap();

        let len = rows[0].len();
        let cuts = [0, len / 3, 2 * len / 3, len];
        let mut merged = accumulator();
        for cut in cuts.windows(2) {
            let (start, end) = (cut[0], cut[1]);
            let mut part = accumulator();
            part.update_batch(
                &rows
                    .iter()
                    .map(|c| c.slice(start, end - start))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let states: Vec<ArrayRef> = part
                .state()
                .unwrap()
                .into_iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            merged.merge_batch(&states).unwrap();
        }
        assert_eq!(merged.evaluate().unwrap(), expected, "{finish:?}");
    }

    #[test]
    fn partial_states_merge_to_the_single_pass_answer() {
        let times: ArrayRef = Arc::new(TimestampNanosecondArray::from_iter_values(
            [7, 3, 0, 1, 9, 2, 30, 8, 5].map(|m| m * MINUTE),
        ));
        let bpm: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(120.0),
            Some(90.0),
            None,
            Some(150.0),
            Some(181.0),
            Some(60.0),
            Some(100.0),
            Some(140.0),
            Some(170.0),
        ]));
        let constant = |v: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![v; 9])) };
        single_and_merged(Finish::Average, &[bpm.clone(), times.clone()]);
        single_and_merged(
            Finish::MinutesInZone(3),
            &[bpm.clone(), times.clone(), constant(200.0), constant(3.0)],
        );
        single_and_merged(
            Finish::Impulse,
            &[bpm, times, constant(60.0), constant(190.0)],
        );
    }
}
