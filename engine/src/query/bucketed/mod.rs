//! Aggregation per subject and time bucket in one pass over sorted input.
//!
//! Dashboards and models mostly ask for `GROUP BY subject_id, date_bin(INTERVAL '1 minute',
//! time)`. Every stream scan returns each partition sorted by `(subject_id, time)`, so the
//! rows of a group arrive together and the groups arrive in key order: no hash table is
//! needed, and a group is finished as soon as the next one starts.
//! [`BucketedAggregateRule`] finds such aggregations in DataFusion's physical plans and puts
//! [`BucketedAggregateExec`] in their place when it computes exactly the same answer, with
//! the same schema; `kernel` has the loops.

mod exec;
mod kernel;
mod rule;

#[cfg(test)]
mod tests;

pub use self::{exec::BucketedAggregateExec, rule::BucketedAggregateRule};
