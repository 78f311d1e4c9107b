//! Gap filling, as InfluxDB IOx has it: an aggregation grouped by
//! `date_bin_gapfill(stride, time[, origin])` gets a row for every bucket of the time range
//! in WHERE, for every combination of the other group keys (a *series*), even buckets no row
//! falls in. There, aggregates are NULL (`count` is 0), `locf(aggregate)` carries the series'
//! last non-NULL value forward and `interpolate(aggregate)` draws a straight line between
//! the non-NULL values around the gap; both treat a NULL aggregate as a gap too.
//!
//! ```sql
//! SELECT subject_id, date_bin_gapfill(INTERVAL '5 minutes', time) AS t,
//!        locf(avg(bpm)) AS bpm_locf, interpolate(avg(bpm)) AS bpm_lin, max(bpm) AS raw_max
//! FROM heart_rate
//! WHERE time >= TIMESTAMP '2026-03-01T00:00:00' AND time < TIMESTAMP '2026-03-01T02:00:00'
//! GROUP BY subject_id, t ORDER BY subject_id, t
//! ```
//!
//! Three steps, each at DataFusion's own seam: the functions (`functions`) are placeholders
//! that fail when run; [`GapFillRule`], an analyzer rule, turns the aggregation into `date_bin`
//! under a `GapFill` logical node (`node`); [`GapFillPlanner`] makes that a [`GapFillExec`],
//! which fills the gaps of its input sorted by series and bucket as it streams (`fill`).

mod exec;
mod fill;
mod functions;
mod node;
mod rule;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;

pub(crate) use self::{exec::GapFillPlanner, rule::GapFillRule};

/// Gap filling in a session being built with DataFusion's default features: the functions
/// and the rule. Its query planner must plan `GapFill` nodes with [`GapFillPlanner`].
pub(crate) fn install(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    builder
        .scalar_functions()
        .get_or_insert_with(Vec::new)
        .extend(functions::all());
    builder.with_analyzer_rule(Arc::new(GapFillRule))
}
