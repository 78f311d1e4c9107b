//! The one-pass aggregation over input sorted by `(subject, time)`.
//!
//! A batch is cut into *runs*: maximal stretches of rows with the same subject and bucket,
//! found by comparing each row's time with the bounds of the current bucket (at most one
//! division per run, none when a subject's next run is in the next bucket). Each argument
//! column is then summarized per run longer than one row in a tight loop over its primitive
//! values (count, sum, extremes, squared deviations from the run's mean, only what its
//! aggregates need), and each aggregate appends its states for all of the batch's runs in one
//! loop (a run of one row is its value). A group is complete when a run with another key
//! starts: the input order guarantees its key never comes back. Completed groups gather in a
//! [`Groups`] chunk, a column per aggregate and field, which is either turned into the output
//! batch or, when several input partitions are aggregated, merged with the other partitions'
//! chunks by key.

use std::{collections::VecDeque, mem, ops::Range, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, make_array},
    buffer::NullBuffer,
    datatypes::{
        DataType, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
        TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    },
};
use datafusion::{
    common::{DataFusionError, Result, exec_err},
    logical_expr::ColumnarValue,
    physical_expr::PhysicalExpr,
};

use crate::query::functions::Bucketing;

/// How a value column is read: as `i64` (Int64 and timestamps, reinterpreted) or `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numeric {
    Int,
    Float,
}

/// An aggregate function the kernel computes, with DataFusion's semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    /// Non-null values (every row for `count(*)`).
    Count,
    /// NULL without values; Int64 sums wrap around as DataFusion's do.
    Sum(Numeric),
    Min(Numeric),
    Max(Numeric),
    /// Of Float64 (DataFusion casts other numbers to Float64 first).
    Avg,
    /// `var`/`var_pop`, or their square roots `stddev`/`stddev_pop`, of Float64.
    Variance {
        population: bool,
        root: bool,
    },
    /// The value (NULL included) of the earliest row by time.
    First(Numeric),
    /// The value (NULL included) of the latest row by time.
    Last(Numeric),
}

impl Function {
    fn needs(self) -> Needs {
        match self {
            Function::Count | Function::First(_) | Function::Last(_) => Needs::default(),
            Function::Sum(_) | Function::Avg => Needs {
                sum: true,
                ..Needs::default()
            },
            Function::Min(_) | Function::Max(_) => Needs {
                extremes: true,
                ..Needs::default()
            },
            Function::Variance { .. } => Needs {
                sum: true,
                deviations: true,
                ..Needs::default()
            },
        }
    }

    /// Folds `other` (later rows of the same group, or the same group from another
    /// partition) into `into`. Inlined: into a new, empty state it folds down to a copy.
    #[inline(always)]
    fn merge(self, into: &mut State, other: &State) {
        if other.count == 0 {
            return;
        }
        match self {
            Function::Count => {}
            Function::Sum(Numeric::Int) => into.int = into.int.wrapping_add(other.int),
            Function::Sum(Numeric::Float) | Function::Avg => into.float += other.float,
            Function::Min(Numeric::Int) => {
                into.int = if into.count == 0 {
                    other.int
                } else {
                    into.int.min(other.int)
                }
            }
            Function::Max(Numeric::Int) => {
                into.int = if into.count == 0 {
                    other.int
                } else {
                    into.int.max(other.int)
                }
            }
            Function::Min(Numeric::Float) => {
                into.float = if into.count == 0 {
                    other.float
                } else {
                    min_f64(into.float, other.float)
                }
            }
            Function::Max(Numeric::Float) => {
                into.float = if into.count == 0 {
                    other.float
                } else {
                    max_f64(into.float, other.float)
                }
            }
            Function::Variance { .. } => {
                if into.count == 0 {
                    into.float = other.float;
                    into.m2 = other.m2;
                } else {
                    // Chan et al.: combine two (count, mean, m2) summaries.
                    let (n1, n2) = (into.count as f64, other.count as f64);
                    let n = n1 + n2;
                    let delta = other.float - into.float;
                    into.float += delta * n2 / n;
                    into.m2 += other.m2 + delta * delta * n1 * n2 / n;
                }
            }
            Function::First(_) => {
                if into.count == 0 || other.time < into.time {
                    into.take_value(other);
                }
            }
            Function::Last(_) => {
                if into.count == 0 || other.time >= into.time {
                    into.take_value(other);
                }
            }
        }
        into.count += other.count;
    }
}

/// What the runs of an argument must be summarized into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Needs {
    sum: bool,
    extremes: bool,
    deviations: bool,
}

impl Needs {
    fn union(self, other: Needs) -> Needs {
        Needs {
            sum: self.sum || other.sum,
            extremes: self.extremes || other.extremes,
            deviations: self.deviations || other.deviations,
        }
    }
}

/// An aggregate's state for one group while it is folded: one layout for every function. A
/// chunk of groups keeps only the fields each function uses ([`Groups`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct State {
    /// Values folded in (rows, for first and last); 0 means none yet.
    count: i64,
    /// Sum, minimum, maximum, first or last of an `i64` column.
    int: i64,
    /// Sum, minimum, maximum, first or last of an `f64` column; the mean for variances.
    float: f64,
    /// Sum of squared deviations from the mean, for variances.
    m2: f64,
    /// For first and last: the time of the row the value comes from.
    time: i64,
    /// For first and last: whether that value is not NULL.
    valid: bool,
}

impl State {
    fn take_value(&mut self, other: &State) {
        self.int = other.int;
        self.float = other.float;
        self.time = other.time;
        self.valid = other.valid;
    }
}

/// In Arrow's order: NaN sorts above every number (it is the minimum only of NaNs), and
/// -0 below +0.
#[inline]
fn min_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() || a.total_cmp(&b).is_le() {
        a
    } else {
        b
    }
}

/// In Arrow's order: NaN sorts above every number, -0 below +0.
#[inline]
fn max_f64(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a.total_cmp(&b).is_ge() {
        a
    } else {
        b
    }
}

/// One aggregate of the query: its function and which argument it reads.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub function: Function,
    pub argument: usize,
}

/// An argument expression, evaluated once per batch however many aggregates read it.
#[derive(Debug, Clone)]
pub(crate) struct Argument {
    pub expr: Arc<dyn PhysicalExpr>,
    /// What its aggregates need of a run's values, summarized once for all of them.
    needs: Needs,
    /// Whether an aggregate reads its values, not only whether they are NULL.
    values_needed: bool,
}

impl Argument {
    pub(crate) fn new(expr: Arc<dyn PhysicalExpr>) -> Self {
        Argument {
            expr,
            needs: Needs::default(),
            values_needed: false,
        }
    }
}

/// An argument's values in one batch.
enum Values {
    Float(Float64Array),
    Int(Int64Array),
    /// Only which rows are NULL matters (`count` of another type); `None`: no NULLs.
    Presence(Option<NullBuffer>),
    /// A NULL constant.
    Absent,
}

impl Values {
    fn evaluate(argument: &Argument, batch: &RecordBatch) -> Result<Values> {
        let array = match argument.expr.evaluate(batch)? {
            ColumnarValue::Scalar(scalar) if scalar.is_null() => return Ok(Values::Absent),
            // `count(*)` counts a constant: every row.
            ColumnarValue::Scalar(_) if !argument.values_needed => {
                return Ok(Values::Presence(None));
            }
            value => value.into_array(batch.num_rows())?,
        };
        if !argument.values_needed {
            return Ok(Values::Presence(array.logical_nulls()));
        }
        match as_numeric(&array) {
            Some(values) => Ok(values),
            None => exec_err!(
                "BucketedAggregateExec: argument {} is {}, not a number",
                argument.expr,
                array.data_type()
            ),
        }
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        match self {
            Values::Float(a) => a.nulls(),
            Values::Int(a) => a.nulls(),
            Values::Presence(nulls) => nulls.as_ref(),
            Values::Absent => None,
        }
    }

    fn valid_in(&self, rows: &Range<usize>) -> i64 {
        if matches!(self, Values::Absent) {
            return 0;
        }
        let len = rows.len();
        match self.nulls() {
            None => len as i64,
            Some(nulls) => {
                let bits = nulls.inner();
                (bits
                    .inner()
                    .count_set_bits_offset(bits.offset() + rows.start, len)) as i64
            }
        }
    }

    fn is_valid(&self, row: usize) -> bool {
        match self {
            Values::Absent => false,
            _ => self.nulls().is_none_or(|n| n.is_valid(row)),
        }
    }

    /// The value of one row as the state of a first or last.
    fn row_state(&self, row: usize, rows: i64, time: i64) -> State {
        let mut state = State {
            count: rows,
            time,
            valid: self.is_valid(row),
            ..State::default()
        };
        match self {
            Values::Float(a) => state.float = a.values()[row],
            Values::Int(a) => state.int = a.values()[row],
            Values::Presence(_) | Values::Absent => state.valid = false,
        }
        state
    }

    /// Summary of the rows of one run.
    fn summarize(&self, rows: Range<usize>, needs: Needs) -> Summary {
        if rows.len() == 1 {
            return self.summarize_row(rows.start, needs);
        }
        let count = self.valid_in(&rows);
        let mut summary = Summary {
            count,
            ..Summary::default()
        };
        if count == 0 || needs == Needs::default() {
            return summary;
        }
        let sparse = count < rows.len() as i64;
        match self {
            Values::Float(array) => {
                let values = &array.values()[rows.clone()];
                match array.nulls() {
                    Some(nulls) if sparse => {
                        summarize_f64_sparse(values, nulls, rows.start, needs, &mut summary)
                    }
                    _ => summarize_f64(values, needs, &mut summary),
                }
            }
            Values::Int(array) => {
                let values = &array.values()[rows.clone()];
                match array.nulls() {
                    Some(nulls) if sparse => {
                        summarize_i64_sparse(values, nulls, rows.start, needs, &mut summary)
                    }
                    _ => summarize_i64(values, needs, &mut summary),
                }
            }
            Values::Presence(_) | Values::Absent => {}
        }
        summary
    }
}

impl Values {
    /// [`Self::summarize`] of a run of one row, what most runs are when buckets are about as
    /// long as the time between readings (a reading a minute, grouped per minute): the same
    /// summary without the loops.
    #[inline]
    fn summarize_row(&self, row: usize, needs: Needs) -> Summary {
        let valid = self.is_valid(row);
        let mut summary = Summary {
            count: i64::from(valid),
            ..Summary::default()
        };
        if !valid {
            return summary;
        }
        match self {
            Values::Float(array) => {
                let x = array.values()[row];
                if needs.extremes || needs.sum || needs.deviations {
                    // A sum starts from +0: the sum of -0 alone is +0.
                    summary.float_sum = 0.0 + x;
                }
                if needs.extremes {
                    (summary.float_min, summary.float_max) = (x, x);
                }
                if needs.deviations {
                    let deviation = x - summary.float_sum;
                    summary.m2 = deviation * deviation;
                }
            }
            Values::Int(array) => {
                let x = array.values()[row];
                if needs.sum {
                    summary.int_sum = x;
                }
                if needs.extremes {
                    (summary.int_min, summary.int_max) = (x, x);
                }
            }
            Values::Presence(_) | Values::Absent => {}
        }
        summary
    }
}

/// The kernel reads Float64 as `f64` and Int64 and timestamps (which are `i64`s) as `i64`.
fn as_numeric(array: &ArrayRef) -> Option<Values> {
    Some(match array.data_type() {
        DataType::Float64 => Values::Float(array.as_primitive::<Float64Type>().clone()),
        DataType::Int64 => Values::Int(array.as_primitive::<Int64Type>().clone()),
        DataType::Timestamp(unit, _) => Values::Int(match unit {
            TimeUnit::Second => array
                .as_primitive::<TimestampSecondType>()
                .reinterpret_cast::<Int64Type>(),
            TimeUnit::Millisecond => array
                .as_primitive::<TimestampMillisecondType>()
                .reinterpret_cast::<Int64Type>(),
            TimeUnit::Microsecond => array
                .as_primitive::<TimestampMicrosecondType>()
                .reinterpret_cast::<Int64Type>(),
            TimeUnit::Nanosecond => array
                .as_primitive::<TimestampNanosecondType>()
                .reinterpret_cast::<Int64Type>(),
        }),
        _ => return None,
    })
}

/// Which types the kernel reads as numbers, for the rule's checks.
pub(crate) fn numeric_of(data_type: &DataType) -> Option<Numeric> {
    match data_type {
        DataType::Float64 => Some(Numeric::Float),
        DataType::Int64 | DataType::Timestamp(_, _) => Some(Numeric::Int),
        _ => None,
    }
}

/// The values of one argument over one run.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    count: i64,
    float_sum: f64,
    int_sum: i64,
    float_min: f64,
    float_max: f64,
    int_min: i64,
    int_max: i64,
    /// Sum of squared deviations from the run's mean.
    m2: f64,
}

impl Summary {
    /// The run as the state of one aggregate.
    #[inline]
    fn state(&self, function: Function) -> State {
        let mut state = State {
            count: self.count,
            ..State::default()
        };
        match function {
            Function::Count | Function::First(_) | Function::Last(_) => {}
            Function::Sum(Numeric::Int) => state.int = self.int_sum,
            Function::Sum(Numeric::Float) | Function::Avg => state.float = self.float_sum,
            Function::Min(Numeric::Int) => state.int = self.int_min,
            Function::Max(Numeric::Int) => state.int = self.int_max,
            Function::Min(Numeric::Float) => state.float = self.float_min,
            Function::Max(Numeric::Float) => state.float = self.float_max,
            Function::Variance { .. } => {
                if self.count > 0 {
                    state.float = self.float_sum / self.count as f64;
                }
                state.m2 = self.m2;
            }
        }
        state
    }
}

/// Independent accumulators, so that the loops are not one long dependency chain.
const LANES: usize = 4;

fn summarize_f64(values: &[f64], needs: Needs, summary: &mut Summary) {
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut sums = [0.0; LANES];
    if needs.extremes {
        // One pass for the sum and the extremes. NaN fails every comparison, so the lanes
        // skip it; the sum carries it, which says when to look again.
        let mut mins = [f64::INFINITY; LANES];
        let mut maxs = [f64::NEG_INFINITY; LANES];
        for chunk in chunks.clone() {
            for lane in 0..LANES {
                let x = chunk[lane];
                sums[lane] += x;
                mins[lane] = if x < mins[lane] { x } else { mins[lane] };
                maxs[lane] = if x > maxs[lane] { x } else { maxs[lane] };
            }
        }
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &x in mins.iter().chain(tail) {
            min = if x < min { x } else { min };
        }
        for &x in maxs.iter().chain(tail) {
            max = if x > max { x } else { max };
        }
        summary.float_sum = sums.iter().sum::<f64>() + tail.iter().sum::<f64>();
        if summary.float_sum.is_nan() && values.iter().any(|x| x.is_nan()) {
            max = f64::NAN;
            if values.iter().all(|x| x.is_nan()) {
                min = f64::NAN;
            }
        }
        // Comparisons do not tell -0 from +0; Arrow's order puts -0 first.
        if min == 0.0 {
            min = values
                .iter()
                .copied()
                .filter(|x| *x == 0.0)
                .fold(0.0, min_f64);
        }
        if max == 0.0 {
            max = values
                .iter()
                .copied()
                .filter(|x| *x == 0.0)
                .fold(-0.0, max_f64);
        }
        summary.float_min = min;
        summary.float_max = max;
    } else if needs.sum || needs.deviations {
        for chunk in chunks.clone() {
            for lane in 0..LANES {
                sums[lane] += chunk[lane];
            }
        }
        summary.float_sum = sums.iter().sum::<f64>() + tail.iter().sum::<f64>();
    }
    if needs.deviations {
        let mean = summary.float_sum / values.len() as f64;
        let mut m2s = [0.0; LANES];
        for chunk in chunks {
            for lane in 0..LANES {
                let d = chunk[lane] - mean;
                m2s[lane] += d * d;
            }
        }
        summary.m2 =
            m2s.iter().sum::<f64>() + tail.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
    }
}

fn summarize_f64_sparse(
    values: &[f64],
    nulls: &NullBuffer,
    first_row: usize,
    needs: Needs,
    summary: &mut Summary,
) {
    let valid = |i: usize| nulls.is_valid(first_row + i);
    let (mut sum, mut min, mut max) = (0.0, f64::NAN, f64::NAN);
    let mut seen = false;
    for (i, &x) in values.iter().enumerate() {
        if valid(i) {
            sum += x;
            if seen {
                min = min_f64(min, x);
                max = max_f64(max, x);
            } else {
                (min, max, seen) = (x, x, true);
            }
        }
    }
    summary.float_sum = sum;
    if needs.extremes {
        summary.float_min = min;
        summary.float_max = max;
    }
    if needs.deviations {
        let mean = sum / summary.count as f64;
        summary.m2 = values
            .iter()
            .enumerate()
            .filter(|&(i, _)| valid(i))
            .map(|(_, &x)| (x - mean) * (x - mean))
            .sum();
    }
}

fn summarize_i64(values: &[i64], needs: Needs, summary: &mut Summary) {
    if needs.sum {
        summary.int_sum = values.iter().fold(0i64, |s, &x| s.wrapping_add(x));
    }
    if needs.extremes {
        summary.int_min = values.iter().copied().min().unwrap_or_default();
        summary.int_max = values.iter().copied().max().unwrap_or_default();
    }
}

fn summarize_i64_sparse(
    values: &[i64],
    nulls: &NullBuffer,
    first_row: usize,
    needs: Needs,
    summary: &mut Summary,
) {
    let mut valid = values
        .iter()
        .enumerate()
        .filter(|&(i, _)| nulls.is_valid(first_row + i))
        .map(|(_, &x)| x);
    let Some(first) = valid.next() else {
        return;
    };
    let (mut sum, mut min, mut max) = (first, first, first);
    for x in valid {
        sum = sum.wrapping_add(x);
        min = min.min(x);
        max = max.max(x);
    }
    if needs.sum {
        summary.int_sum = sum;
    }
    if needs.extremes {
        summary.int_min = min;
        summary.int_max = max;
    }
}

/// Completed groups, in key order: their keys and, per aggregate, a column of states. Turning
/// a chunk into rows then reads each output column's values in a row, and a group holds only
/// the fields its aggregates use (two numbers for a `max`, not a whole [`State`]).
#[derive(Debug)]
pub(crate) struct Groups {
    pub subjects: Vec<i64>,
    pub buckets: Vec<i64>,
    states: Vec<StateColumn>,
}

impl Groups {
    pub(crate) fn new(plan: &Plan, capacity: usize) -> Self {
        Groups {
            subjects: Vec::with_capacity(capacity),
            buckets: Vec::with_capacity(capacity),
            states: plan
                .aggregates
                .iter()
                .map(|aggregate| StateColumn::new(aggregate.function.fields(), capacity))
                .collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.subjects.len()
    }

    /// Bytes the vectors hold, capacity included.
    pub(crate) fn memory_size(&self) -> usize {
        (self.subjects.capacity() + self.buckets.capacity()) * mem::size_of::<i64>()
            + self
                .states
                .iter()
                .map(StateColumn::memory_size)
                .sum::<usize>()
    }

    pub(crate) fn clear(&mut self) {
        self.subjects.clear();
        self.buckets.clear();
        self.states.iter_mut().for_each(StateColumn::clear);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    pub(crate) fn key(&self, group: usize) -> (i64, i64) {
        (self.subjects[group], self.buckets[group])
    }

    /// The states of one group, one per aggregate, into `into`.
    pub(crate) fn copy_states(&self, group: usize, into: &mut [State]) {
        for (column, state) in self.states.iter().zip(into) {
            *state = column.get(group);
        }
    }

    pub(crate) fn push(&mut self, key: (i64, i64), states: &[State]) {
        self.subjects.push(key.0);
        self.buckets.push(key.1);
        for (column, state) in self.states.iter_mut().zip(states) {
            column.push(state);
        }
    }
}

/// Which fields of a [`State`] a function uses besides the count.
#[derive(Debug, Clone, Copy, Default)]
struct Fields {
    int: bool,
    float: bool,
    m2: bool,
    /// The time and validity of the row a first or last took its value from.
    chosen_row: bool,
}

impl Function {
    fn fields(self) -> Fields {
        let (int, float) = (
            Fields {
                int: true,
                ..Fields::default()
            },
            Fields {
                float: true,
                ..Fields::default()
            },
        );
        match self {
            Function::Count => Fields::default(),
            Function::Sum(Numeric::Int)
            | Function::Min(Numeric::Int)
            | Function::Max(Numeric::Int) => int,
            Function::Sum(Numeric::Float)
            | Function::Min(Numeric::Float)
            | Function::Max(Numeric::Float)
            | Function::Avg => float,
            Function::Variance { .. } => Fields { m2: true, ..float },
            Function::First(Numeric::Int) | Function::Last(Numeric::Int) => Fields {
                chosen_row: true,
                ..int
            },
            Function::First(Numeric::Float) | Function::Last(Numeric::Float) => Fields {
                chosen_row: true,
                ..float
            },
        }
    }
}

/// One aggregate's states over a chunk of groups, field by field; the vectors of fields its
/// function does not use stay empty.
#[derive(Debug)]
struct StateColumn {
    fields: Fields,
    counts: Vec<i64>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    m2s: Vec<f64>,
    times: Vec<i64>,
    valid: Vec<bool>,
}

impl StateColumn {
    fn new(fields: Fields, capacity: usize) -> Self {
        fn vector<T>(used: bool, capacity: usize) -> Vec<T> {
            Vec::with_capacity(if used { capacity } else { 0 })
        }
        StateColumn {
            fields,
            counts: Vec::with_capacity(capacity),
            ints: vector(fields.int, capacity),
            floats: vector(fields.float, capacity),
            m2s: vector(fields.m2, capacity),
            times: vector(fields.chosen_row, capacity),
            valid: vector(fields.chosen_row, capacity),
        }
    }

    fn memory_size(&self) -> usize {
        (self.counts.capacity() + self.ints.capacity() + self.times.capacity())
            * mem::size_of::<i64>()
            + (self.floats.capacity() + self.m2s.capacity()) * mem::size_of::<f64>()
            + self.valid.capacity()
    }

    fn clear(&mut self) {
        self.counts.clear();
        self.ints.clear();
        self.floats.clear();
        self.m2s.clear();
        self.times.clear();
        self.valid.clear();
    }

    #[inline]
    fn push(&mut self, state: &State) {
        self.counts.push(state.count);
        if self.fields.int {
            self.ints.push(state.int);
        }
        if self.fields.float {
            self.floats.push(state.float);
        }
        if self.fields.m2 {
            self.m2s.push(state.m2);
        }
        if self.fields.chosen_row {
            self.times.push(state.time);
            self.valid.push(state.valid);
        }
    }

    fn get(&self, group: usize) -> State {
        let mut state = State {
            count: self.counts[group],
            ..State::default()
        };
        if self.fields.int {
            state.int = self.ints[group];
        }
        if self.fields.float {
            state.float = self.floats[group];
        }
        if self.fields.m2 {
            state.m2 = self.m2s[group];
        }
        if self.fields.chosen_row {
            state.time = self.times[group];
            state.valid = self.valid[group];
        }
        state
    }

    /// Appends the states of runs, run `i` being rows `bounds[i]..bounds[i + 1]`. Runs of
    /// one row, what most are when a bucket is about as long as the time between readings,
    /// take the value itself where the argument has no NULLs. `shared` holds the argument's
    /// summaries of these runs longer than one row, in order, when the batch made them.
    fn extend_runs(
        &mut self,
        function: Function,
        values: &Values,
        shared: &[Summary],
        bounds: &[usize],
        times: &[i64],
    ) {
        let runs = bounds.windows(2).map(|run| run[0]..run[1]);
        let mut shared = shared.iter();
        let mut state_of = |rows: Range<usize>| match function {
            Function::First(_) | Function::Last(_) => run_state(function, values, rows, times),
            _ if rows.len() > 1 => match shared.next() {
                Some(summary) => summary_state(function, summary),
                None => run_state(function, values, rows, times),
            },
            _ => run_state(function, values, rows, times),
        };
        match (function, values) {
            (Function::Count, values) if values.nulls().is_none() => {
                let counted = !matches!(values, Values::Absent);
                self.counts
                    .extend(runs.map(|rows| if counted { rows.len() as i64 } else { 0 }));
            }
            (
                Function::Sum(Numeric::Float)
                | Function::Avg
                | Function::Min(Numeric::Float)
                | Function::Max(Numeric::Float),
                Values::Float(array),
            ) if array.nulls().is_none() => {
                let xs = array.values();
                // A sum starts from +0 (the sum of -0 alone is +0); an extreme is the value.
                let sum = matches!(function, Function::Sum(_) | Function::Avg);
                // Without NULLs a run's count is its length; each vector grows in one loop.
                self.counts
                    .extend(runs.clone().map(|rows| rows.len() as i64));
                self.floats.extend(runs.map(|rows| match rows.len() {
                    1 if sum => 0.0 + xs[rows.start],
                    1 => xs[rows.start],
                    _ => state_of(rows).float,
                }));
            }
            (
                Function::Sum(Numeric::Int)
                | Function::Min(Numeric::Int)
                | Function::Max(Numeric::Int),
                Values::Int(array),
            ) if array.nulls().is_none() => {
                let xs = array.values();
                self.counts
                    .extend(runs.clone().map(|rows| rows.len() as i64));
                self.ints.extend(runs.map(|rows| match rows.len() {
                    1 => xs[rows.start],
                    _ => state_of(rows).int,
                }));
            }
            _ => {
                for rows in runs {
                    self.push(&state_of(rows));
                }
            }
        }
    }

    /// Replaces the state of the last group.
    fn set_last(&mut self, state: &State) {
        self.counts.pop();
        self.ints.pop();
        self.floats.pop();
        self.m2s.pop();
        self.times.pop();
        self.valid.pop();
        self.push(state);
    }
}

/// What the kernel is configured with, shared by every partition.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Input column of the subject (Int64, not nullable).
    pub subject: usize,
    /// Input column of the time (Timestamp(ns), not nullable).
    pub time: usize,
    pub bucketing: Bucketing,
    pub arguments: Vec<Argument>,
    pub aggregates: Vec<Aggregate>,
    /// Output: the schema, and where the subject and bucket columns are in it (0 and 1,
    /// in the GROUP BY order), the aggregates following.
    pub schema: SchemaRef,
    pub subject_first: bool,
}

impl Plan {
    /// Records what the aggregates need of each argument; call once after building.
    pub(crate) fn with_needs(mut self) -> Self {
        for argument in &mut self.arguments {
            argument.needs = Needs::default();
            argument.values_needed = false;
        }
        for aggregate in &self.aggregates {
            let argument = &mut self.arguments[aggregate.argument];
            argument.needs = argument.needs.union(aggregate.function.needs());
            argument.values_needed |= aggregate.function != Function::Count;
        }
        self
    }

    /// Folds group `group` of a chunk into `into`.
    pub(crate) fn merge(&self, into: &mut [State], groups: &Groups, group: usize) {
        for ((aggregate, into), column) in self.aggregates.iter().zip(into).zip(&groups.states) {
            aggregate.function.merge(into, &column.get(group));
        }
    }

    /// The output batch of completed groups.
    pub(crate) fn finish(&self, groups: &Groups) -> Result<RecordBatch> {
        let subjects: ArrayRef = Arc::new(Int64Array::from(groups.subjects.clone()));
        let bucket_field = self.schema.field(usize::from(self.subject_first));
        let buckets = retyped(
            Int64Array::from(groups.buckets.clone()),
            bucket_field.data_type(),
        )?;
        let mut columns = if self.subject_first {
            vec![subjects, buckets]
        } else {
            vec![buckets, subjects]
        };
        for (index, (aggregate, states)) in self.aggregates.iter().zip(&groups.states).enumerate() {
            let field = self.schema.field(2 + index);
            columns.push(finish_column(
                aggregate.function,
                states,
                field.data_type(),
            )?);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The final values of one aggregate over a chunk of groups, as DataFusion evaluates them.
fn finish_column(
    function: Function,
    states: &StateColumn,
    data_type: &DataType,
) -> Result<ArrayRef> {
    let counts = &states.counts;
    let has_values = || validity(counts.iter().map(|&count| count > 0));
    let chosen_valid = || {
        validity(
            counts
                .iter()
                .zip(&states.valid)
                .map(|(&count, &valid)| count > 0 && valid),
        )
    };
    match function {
        Function::Count => retyped(Int64Array::new(counts.clone().into(), None), data_type),
        Function::Sum(Numeric::Int) | Function::Min(Numeric::Int) | Function::Max(Numeric::Int) => {
            retyped(
                Int64Array::new(states.ints.clone().into(), has_values()),
                data_type,
            )
        }
        Function::Sum(Numeric::Float)
        | Function::Min(Numeric::Float)
        | Function::Max(Numeric::Float) => Ok(Arc::new(Float64Array::new(
            states.floats.clone().into(),
            has_values(),
        ))),
        Function::Avg => {
            let means = states
                .floats
                .iter()
                .zip(counts)
                .map(|(&sum, &count)| if count > 0 { sum / count as f64 } else { 0.0 })
                .collect();
            Ok(Arc::new(Float64Array::new(means, has_values())))
        }
        Function::Variance { population, root } => {
            let min_count = if population { 1 } else { 2 };
            let values = states
                .m2s
                .iter()
                .zip(counts)
                .map(|(&m2, &count)| {
                    if count < min_count {
                        return 0.0;
                    }
                    let divisor = if population { count } else { count - 1 };
                    let variance = m2 / divisor as f64;
                    if root { variance.sqrt() } else { variance }
                })
                .collect();
            let valid = validity(counts.iter().map(|&count| count >= min_count));
            Ok(Arc::new(Float64Array::new(values, valid)))
        }
        Function::First(Numeric::Int) | Function::Last(Numeric::Int) => retyped(
            Int64Array::new(states.ints.clone().into(), chosen_valid()),
            data_type,
        ),
        Function::First(Numeric::Float) | Function::Last(Numeric::Float) => Ok(Arc::new(
            Float64Array::new(states.floats.clone().into(), chosen_valid()),
        )),
    }
}

/// The validity of the groups, or `None` when every one has a value (the usual case, found
/// without building a bitmap).
fn validity(valid: impl Iterator<Item = bool> + Clone) -> Option<NullBuffer> {
    if valid.clone().all(|v| v) {
        return None;
    }
    Some(NullBuffer::from_iter(valid))
}

/// An Int64 array as another type with `i64` values (timestamps), sharing its buffers.
fn retyped(array: Int64Array, data_type: &DataType) -> Result<ArrayRef> {
    if data_type == &DataType::Int64 {
        return Ok(Arc::new(array));
    }
    let data = array
        .into_data()
        .into_builder()
        .data_type(data_type.clone());
    Ok(make_array(data.build()?))
}

/// The runs of a batch: the key of each, and where each starts, the batch's end last.
#[derive(Debug, Default)]
struct Runs {
    keys: Vec<(i64, i64)>,
    bounds: Vec<usize>,
}

/// The state of one aggregate over the rows of one run.
#[inline]
fn run_state(function: Function, values: &Values, rows: Range<usize>, times: &[i64]) -> State {
    let count = rows.len() as i64;
    match function {
        Function::First(_) => values.row_state(rows.start, count, times[rows.start]),
        Function::Last(_) => values.row_state(rows.end - 1, count, times[rows.end - 1]),
        function => summary_state(function, &values.summarize(rows, function.needs())),
    }
}

/// The state of one aggregate over a run, from the run's summary.
#[inline]
fn summary_state(function: Function, summary: &Summary) -> State {
    let mut state = State::default();
    function.merge(&mut state, &summary.state(function));
    state
}

/// The aggregation of one input partition, batch after batch.
pub(crate) struct Grouper {
    plan: Arc<Plan>,
    /// The group whose rows may continue in the next batch: the last one of `completed`.
    open: Option<(i64, i64)>,
    /// (subject, time) of the last row folded in, to check the input order.
    last_row: Option<(i64, i64)>,
    /// Groups so far, the open one last.
    completed: Groups,
    ready: VecDeque<Groups>,
    /// Chunks already turned into rows, kept for their memory: a fresh megabyte per chunk
    /// costs more in page faults than the aggregation itself.
    spare: Vec<Groups>,
    chunk_size: usize,
    /// Reused per batch: the argument values, the runs, and per argument the summaries of
    /// the runs longer than one row being appended (one pass over a run's values for all
    /// its aggregates).
    values: Vec<Values>,
    runs: Runs,
    summaries: Vec<Vec<Summary>>,
    /// Whether the CPU has AVX2, for the order check of each run.
    avx2: bool,
}

impl Grouper {
    pub(crate) fn new(plan: Arc<Plan>, chunk_size: usize) -> Self {
        let chunk_size = chunk_size.max(1);
        Grouper {
            open: None,
            last_row: None,
            // Grown as needed: short queries have a few groups, not a chunk's worth.
            completed: Groups::new(&plan, 0),
            ready: VecDeque::new(),
            spare: Vec::new(),
            chunk_size,
            values: Vec::new(),
            runs: Runs::default(),
            summaries: vec![Vec::new(); plan.arguments.len()],
            avx2: has_avx2(),
            plan,
        }
    }

    /// Folds a batch in; groups it completes become available from [`Self::take_ready`].
    ///
    /// Two passes: the batch is cut into runs (each checked to be in order while its rows
    /// are in the cache), then each aggregate's states are appended for all runs at once, in
    /// a loop chosen once per batch for its function and argument. The input must be sorted
    /// by (subject, time): a row that comes before the previous one is an error, never a
    /// wrong answer.
    pub(crate) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let len = batch.num_rows();
        if len == 0 {
            return Ok(());
        }
        let plan = self.plan.clone();
        let subjects = i64_column(batch, plan.subject)?;
        let times = i64_column(batch, plan.time)?;
        let (subjects, times) = (subjects.values().as_ref(), times.values().as_ref());
        self.values.clear();
        for argument in &plan.arguments {
            self.values.push(Values::evaluate(argument, batch)?);
        }
        self.find_runs(&plan, subjects, times)?;
        self.last_row = Some((subjects[len - 1], times[len - 1]));
        let runs = self.runs.keys.len();
        let mut run = 0;
        if self.open == Some(self.runs.keys[0]) {
            // The group went on from the previous batch.
            let rows = self.runs.bounds[0]..self.runs.bounds[1];
            self.fold_into_open(&plan, rows, times);
            run = 1;
        }
        while run < runs {
            if self.completed.len() >= self.chunk_size {
                // The open group is complete: a full chunk says more will follow.
                let next = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Groups::new(&plan, self.chunk_size));
                let full = mem::replace(&mut self.completed, next);
                self.ready.push_back(full);
            }
            let end = runs.min(run + (self.chunk_size - self.completed.len()).max(1));
            let keys = &self.runs.keys[run..end];
            self.completed.subjects.extend(keys.iter().map(|key| key.0));
            self.completed.buckets.extend(keys.iter().map(|key| key.1));
            let bounds = &self.runs.bounds[run..=end];
            for ((argument, values), summaries) in plan
                .arguments
                .iter()
                .zip(&self.values)
                .zip(&mut self.summaries)
            {
                summaries.clear();
                if argument.needs != Needs::default() {
                    summaries.extend(
                        bounds
                            .windows(2)
                            .filter(|run| run[1] - run[0] > 1)
                            .map(|run| values.summarize(run[0]..run[1], argument.needs)),
                    );
                }
            }
            for (aggregate, column) in plan.aggregates.iter().zip(&mut self.completed.states) {
                column.extend_runs(
                    aggregate.function,
                    &self.values[aggregate.argument],
                    &self.summaries[aggregate.argument],
                    bounds,
                    times,
                );
            }
            self.open = Some(self.runs.keys[end - 1]);
            run = end;
        }
        Ok(())
    }

    /// Cuts a batch into runs (into `self.runs`), checking the input order.
    fn find_runs(&mut self, plan: &Plan, subjects: &[i64], times: &[i64]) -> Result<()> {
        let len = subjects.len();
        let bucketing = plan.bucketing;
        self.runs.keys.clear();
        self.runs.bounds.clear();
        // The subject of the last run and the start of the bucket after its bucket: where
        // the next run of that subject usually is, found without a division.
        let mut next_bucket: Option<(i64, i64)> = None;
        let mut previous = self.last_row;
        let mut start = 0;
        while start < len {
            let (subject, time) = (subjects[start], times[start]);
            if let Some(previous) = previous
                && (subject, time) < previous
            {
                return Err(unsorted(previous, (subject, time)));
            }
            let bucket = match next_bucket {
                Some((same, next))
                    if same == subject
                        && time
                            .checked_sub(next)
                            .is_some_and(|d| (0..bucketing.stride).contains(&d)) =>
                {
                    next
                }
                _ => match bucketing.bucket(time) {
                    Some(bucket) => bucket,
                    None => {
                        return exec_err!(
                            "date_bin of time {time} with stride {} ns and origin {} overflows",
                            bucketing.stride,
                            bucketing.origin
                        );
                    }
                },
            };
            // The bucket's last instant; saturating, as no time lies beyond i64::MAX.
            let last = bucket.saturating_add(bucketing.stride - 1);
            next_bucket = last.checked_add(1).map(|next| (subject, next));
            let end = start
                + 1
                + leading_in_group(&subjects[start + 1..], &times[start + 1..], subject, last);
            let rows = start..end;
            // The search skips whole blocks on the strength of their last row, which only
            // holds for rows in order: check the rows it took (one row is in order).
            if rows.len() > 1
                && !run_in_order(&subjects[rows.clone()], &times[rows.clone()], self.avx2)
            {
                return Err(
                    match first_unsorted(&subjects[rows.clone()], &times[rows.clone()]) {
                        Some(row) => unsorted(
                            (subjects[start + row - 1], times[start + row - 1]),
                            (subjects[start + row], times[start + row]),
                        ),
                        None => DataFusionError::Internal(format!(
                            "BucketedAggregateExec: rows {start}..{end} were taken as one group \
                         but are not"
                        )),
                    },
                );
            }
            self.runs.keys.push((subject, bucket));
            self.runs.bounds.push(start);
            previous = Some((subjects[end - 1], times[end - 1]));
            start = end;
        }
        self.runs.bounds.push(len);
        Ok(())
    }

    /// Folds the rows of the batch's first run into the open group, whose key it has.
    fn fold_into_open(&mut self, plan: &Plan, rows: Range<usize>, times: &[i64]) {
        let open = self.completed.len() - 1;
        for (aggregate, column) in plan.aggregates.iter().zip(&mut self.completed.states) {
            let run = run_state(
                aggregate.function,
                &self.values[aggregate.argument],
                rows.clone(),
                times,
            );
            let mut state = column.get(open);
            aggregate.function.merge(&mut state, &run);
            column.set_last(&state);
        }
    }

    /// Takes back a chunk from [`Self::take_ready`] whose rows were made, to fill it again.
    pub(crate) fn recycle(&mut self, mut groups: Groups) {
        const SPARE_CHUNKS: usize = 4;
        if self.spare.len() < SPARE_CHUNKS && groups.subjects.capacity() > 0 {
            groups.clear();
            self.spare.push(groups);
        }
    }

    /// A chunk of completed groups, in key order, if one is full.
    pub(crate) fn take_ready(&mut self) -> Option<Groups> {
        self.ready.pop_front()
    }

    /// Completes the last group after the input ended; the rest comes from `take_ready`.
    pub(crate) fn finish(&mut self) {
        self.open = None;
        if !self.completed.is_empty() {
            let rest = mem::replace(&mut self.completed, Groups::new(&self.plan, 0));
            self.ready.push_back(rest);
        }
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The first row that comes before its predecessor in (subject, time) order, if any, to
/// name it in the error.
fn first_unsorted(subjects: &[i64], times: &[i64]) -> Option<usize> {
    subjects
        .windows(2)
        .zip(times.windows(2))
        .position(|(s, t)| (s[1], t[1]) < (s[0], t[0]))
        .map(|pair| pair + 1)
}

/// Whether the rows of a run all have its first row's subject and times that never go
/// back. This reads every row the kernel is given, and 64-bit comparisons only vectorize
/// from SSE4.2 on, which the baseline x86-64 target lacks: where the CPU has AVX2, the same
/// loop runs compiled for it.
fn run_in_order(subjects: &[i64], times: &[i64], avx2: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` says the CPU has AVX2 (`has_avx2`).
        return unsafe { run_in_order_avx2(subjects, times) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    run_in_order_in(subjects, times)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_in_order_avx2(subjects: &[i64], times: &[i64]) -> bool {
    run_in_order_in(subjects, times)
}

#[inline(always)]
fn run_in_order_in(subjects: &[i64], times: &[i64]) -> bool {
    let rows = subjects.len().min(times.len());
    if rows < 2 {
        return true;
    }
    let subject = subjects[0];
    let (previous_times, next_times) = (&times[..rows - 1], &times[1..rows]);
    let next_subjects = &subjects[1..rows];
    let mut in_order = true;
    for i in 0..rows - 1 {
        in_order &= (next_subjects[i] == subject) & (next_times[i] >= previous_times[i]);
    }
    in_order
}

/// How many leading rows belong to `subject` at or before `last`. The rows are sorted by
/// subject and time, so those rows are a prefix and a block belongs to it when its last row
/// does: whole blocks are skipped with one test each.
fn leading_in_group(subjects: &[i64], times: &[i64], subject: i64, last: i64) -> usize {
    const BLOCK: usize = 8;
    let rows = subjects.len().min(times.len());
    let belongs = |row: usize| subjects[row] == subject && times[row] <= last;
    let mut leading = 0;
    while leading + BLOCK <= rows && belongs(leading + BLOCK - 1) {
        leading += BLOCK;
    }
    while leading < rows && belongs(leading) {
        leading += 1;
    }
    leading
}

fn unsorted(previous: (i64, i64), row: (i64, i64)) -> DataFusionError {
    DataFusionError::Execution(format!(
        "BucketedAggregateExec: input is not sorted by subject and time: \
         (subject {}, time {}) follows (subject {}, time {})",
        row.0, row.1, previous.0, previous.1
    ))
}

/// An Int64 or timestamp column's values as `i64`.
fn i64_column(batch: &RecordBatch, index: usize) -> Result<Int64Array> {
    let array = batch.column(index);
    if array.null_count() > 0 {
        return exec_err!(
            "BucketedAggregateExec: column {} has NULLs",
            batch.schema().field(index).name()
        );
    }
    match as_numeric(array) {
        Some(Values::Int(values)) => Ok(values),
        _ => exec_err!(
            "BucketedAggregateExec: column {} is {}, not Int64 or a timestamp",
            batch.schema().field(index).name(),
            array.data_type()
        ),
    }
}

/// An origin as an RFC 3339 instant, for EXPLAIN.
pub(crate) fn origin_display(origin: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(origin)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of one row takes a shortcut past the loops; it must give what they give.
    #[test]
    fn one_row_summaries_are_the_loops() {
        let all_needs = (0..8).map(|bits| Needs {
            sum: bits & 1 != 0,
            extremes: bits & 2 != 0,
            deviations: bits & 4 != 0,
        });
        let fields = |s: &Summary| {
            (
                s.count,
                s.float_sum.to_bits(),
                s.float_min.to_bits(),
                s.float_max.to_bits(),
                // Any NaN: the sign of a NaN from arithmetic is not specified.
                if s.m2.is_nan() {
                    u64::MAX
                } else {
                    s.m2.to_bits()
                },
                (s.int_sum, s.int_min, s.int_max),
            )
        };
        for needs in all_needs {
            let floats = [3.5, f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY];
            let ints = [7, -3, 0, i64::MAX, i64::MIN];
            let rows: Vec<Values> = floats
                .iter()
                .map(|&x| Values::Float(Float64Array::from(vec![x])))
                .chain(ints.iter().map(|&x| Values::Int(Int64Array::from(vec![x]))))
                .chain([
                    Values::Float(Float64Array::from(vec![None])),
                    Values::Int(Int64Array::from(vec![None])),
                    Values::Presence(None),
                    Values::Absent,
                ])
                .collect();
            for values in rows {
                let mut looped = Summary {
                    count: values.valid_in(&(0..1)),
                    ..Summary::default()
                };
                if looped.count > 0 && needs != Needs::default() {
                    match &values {
                        Values::Float(a) => summarize_f64(a.values(), needs, &mut looped),
                        Values::Int(a) => summarize_i64(a.values(), needs, &mut looped),
                        Values::Presence(_) | Values::Absent => {}
                    }
                }
                let shortcut = values.summarize(0..1, needs);
                assert_eq!(fields(&shortcut), fields(&looped), "{needs:?}");
            }
        }
    }

    /// The states appended for a batch's runs at once, from the argument's shared summaries
    /// or not, are those of each run on its own, for every function, runs of one row and
    /// more, with and without NULLs.
    #[test]
    fn states_of_runs_at_once_are_each_runs() {
        let floats = [
            3.5,
            -0.0,
            f64::NAN,
            0.0,
            -0.0,
            f64::INFINITY,
            2.0,
            f64::NEG_INFINITY,
        ];
        let ints = [7, -3, 0, i64::MAX, i64::MIN, 5, 5, -1];
        let bounds = [0, 1, 2, 5, 6, 8];
        let times: Vec<i64> = (0..8).collect();
        let with_nulls = |i: usize| i % 3 != 1;
        let arguments = [
            Values::Float(Float64Array::from(floats.to_vec())),
            Values::Float(Float64Array::from_iter(
                floats
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| with_nulls(i).then_some(x)),
            )),
            Values::Int(Int64Array::from(ints.to_vec())),
            Values::Int(Int64Array::from_iter(
                ints.iter()
                    .enumerate()
                    .map(|(i, &x)| with_nulls(i).then_some(x)),
            )),
            Values::Presence(None),
            Values::Absent,
        ];
        let every_need = Needs {
            sum: true,
            extremes: true,
            deviations: true,
        };
        let state = |s: &State| {
            let nan_free = |x: f64| if x.is_nan() { u64::MAX } else { x.to_bits() };
            (
                s.count,
                s.int,
                nan_free(s.float),
                nan_free(s.m2),
                s.time,
                s.valid,
            )
        };
        for numeric in [Numeric::Int, Numeric::Float] {
            let functions = [
                Function::Count,
                Function::Sum(numeric),
                Function::Min(numeric),
                Function::Max(numeric),
                Function::Avg,
                Function::Variance {
                    population: false,
                    root: true,
                },
                Function::First(numeric),
                Function::Last(numeric),
            ];
            for function in functions {
                for values in &arguments {
                    let mut each = StateColumn::new(function.fields(), 0);
                    for run in bounds.windows(2) {
                        each.push(&run_state(function, values, run[0]..run[1], &times));
                    }
                    // Without shared summaries, and with those of every need, as an argument
                    // read by every function has them.
                    let shared: Vec<Summary> = bounds
                        .windows(2)
                        .filter(|run| run[1] - run[0] > 1)
                        .map(|run| values.summarize(run[0]..run[1], every_need))
                        .collect();
                    for shared in [&[][..], &shared] {
                        let mut at_once = StateColumn::new(function.fields(), 0);
                        at_once.extend_runs(function, values, shared, &bounds, &times);
                        for group in 0..bounds.len() - 1 {
                            assert_eq!(
                                state(&at_once.get(group)),
                                state(&each.get(group)),
                                "{function:?}, group {group}, {} shared",
                                shared.len()
                            );
                        }
                    }
                }
            }
        }
    }

    /// The one-pass summary of a run against folding the values one by one in Arrow's order.
    #[test]
    fn float_extremes_follow_arrows_order() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let runs: [&[f64]; 9] = [
            &[3.0, 1.0, 2.0, 5.0, 4.0, 0.5, 7.0],
            &[nan],
            &[nan, nan, nan, nan, nan],
            &[1.0, nan, -2.0, 8.0, 3.0],
            &[0.0, -0.0, 1.0, 2.0, 3.0],
            &[-0.0, 0.0, -1.0, -2.0, -3.0],
            &[inf, -inf, 1.0, 2.0, 0.0],
            &[inf, inf],
            &[0.0, 0.0, -0.0, 0.0, 0.0, 0.0],
        ];
        let needs = Needs {
            sum: true,
            extremes: true,
            deviations: false,
        };
        for values in runs {
            let mut summary = Summary::default();
            summarize_f64(values, needs, &mut summary);
            let min = values[1..].iter().copied().fold(values[0], min_f64);
            let max = values[1..].iter().copied().fold(values[0], max_f64);
            let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(
                same(summary.float_min, min),
                "min of {values:?}: {}",
                summary.float_min
            );
            assert!(
                same(summary.float_max, max),
                "max of {values:?}: {}",
                summary.float_max
            );
        }
    }

    #[test]
    fn runs_end_where_the_subject_or_the_bucket_changes() {
        let subjects = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2];
        let times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 4];
        assert_eq!(leading_in_group(&subjects, &times, 1, 9), 10);
        assert_eq!(leading_in_group(&subjects, &times, 1, 100), 11);
        assert_eq!(leading_in_group(&subjects[11..], &times[11..], 2, 100), 2);
        assert_eq!(leading_in_group(&subjects, &times, 1, -1), 0);
        assert_eq!(first_unsorted(&subjects, &times), None);
        assert_eq!(first_unsorted(&[1, 1, 1], &[5, 6, 5]), Some(2));
        assert_eq!(first_unsorted(&[2, 1], &[0, 9]), Some(1));
        for avx2 in [false, has_avx2()] {
            assert!(run_in_order(&subjects[..11], &times[..11], avx2));
            assert!(run_in_order(&[4, 4, 4], &[5, 5, 6], avx2));
            // Another subject inside a block, or a time that goes back.
            assert!(!run_in_order(&[1, 1, 2, 1], &[0, 1, 2, 3], avx2));
            assert!(!run_in_order(&[1, 1, 1, 1, 1], &[0, 1, 3, 2, 4], avx2));
        }
    }
}
