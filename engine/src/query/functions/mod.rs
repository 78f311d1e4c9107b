//! Health and time-series SQL functions, registered in every session.
//!
//! Scalar: `hr_zone(bpm, max_hr)`, `max_hr(age)`, `local_day(time, tz)`,
//! `local_time(time, tz)`. Aggregate: `time_weighted_avg(value, time)`,
//! `time_in_zone(bpm, time, max_hr, zone)`, `trimp(bpm, time, rest_hr, max_hr [, sex])`,
//! `resting_heart_rate(bpm, time)`, `asleep_minutes(time, end_time)`. docs/time-series-sql.md
//! gives each definition with an example.
//!
//! Times are instants: `Timestamp` of any unit, with or without a zone, read as UTC (the
//! streams' `time` columns). Rows with a NULL in an argument are skipped; an aggregate over
//! no usable row is NULL. The aggregates that follow readings in time order keep the group's
//! readings and sort them when they finish, so the order rows arrive in never matters and
//! their partial states (lists of readings) merge across partitions.

/// `PartialEq`, `Eq` and `Hash` by name for a wrapper (`self.0`) of a DataFusion function:
/// every instance is the same function, and planning hashes expressions many times, where
/// hashing a long signature cost a sixth of a short query's planning.
macro_rules! same_by_name {
    ($wrapper:ty) => {
        impl PartialEq for $wrapper {
            fn eq(&self, _: &Self) -> bool {
                true
            }
        }

        impl Eq for $wrapper {}

        impl std::hash::Hash for $wrapper {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.name().hash(state);
            }
        }
    };
}

mod date_bin;
mod date_part;
mod local_time;
mod resting;
mod series;
mod sleep;
mod trimp;
mod weighted;
mod zones;

pub(crate) use date_bin::{Bucketing, date_bin, stride_nanos, timestamp_nanos};
pub(crate) use date_part::ExtractPlanner;

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::{
    common::{Result, plan_err},
    logical_expr::{AggregateUDF, ScalarUDF},
    prelude::SessionContext,
};

/// Adds the functions to a session.
pub(crate) fn register(ctx: &SessionContext) {
    ctx.register_udf(date_bin().as_ref().clone());
    ctx.register_udf(date_part::date_part().as_ref().clone());
    ctx.register_udf(ScalarUDF::from(zones::HrZone::new()));
    ctx.register_udf(ScalarUDF::from(zones::MaxHr::new()));
    ctx.register_udf(ScalarUDF::from(local_time::LocalTime::day()));
    ctx.register_udf(ScalarUDF::from(local_time::LocalTime::time()));
    for function in [
        series::SeriesFunction::TimeWeightedAvg,
        series::SeriesFunction::TimeInZone,
        series::SeriesFunction::Trimp,
    ] {
        ctx.register_udaf(AggregateUDF::from(series::SeriesAggregate::new(function)));
    }
    ctx.register_udaf(AggregateUDF::from(resting::RestingHeartRate::new()));
    ctx.register_udaf(AggregateUDF::from(sleep::AsleepMinutes::new()));
}

const NANOS_PER_MINUTE: f64 = 60e9;

/// Refuses a call with the wrong number of arguments, showing how to call the function.
fn check_arity(usage: &str, args: &[DataType], counts: &[usize]) -> Result<()> {
    if counts.contains(&args.len()) {
        Ok(())
    } else {
        plan_err!("{usage} was called with {} arguments", args.len())
    }
}

/// Numbers become Float64.
fn number(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || t.is_null() {
        Ok(DataType::Float64)
    } else {
        plan_err!("{function}: {argument} must be a number, got {t}")
    }
}

/// Timestamps become nanoseconds (keeping their zone: the values are UTC instants either way).
fn instant(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, zone) => Ok(DataType::Timestamp(TimeUnit::Nanosecond, zone.clone())),
        DataType::Null => Ok(DataType::Timestamp(TimeUnit::Nanosecond, None)),
        _ => plan_err!("{function}: {argument} must be a timestamp, got {t}"),
    }
}

/// Strings become Utf8.
fn text(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8)
        }
        _ => plan_err!("{function}: {argument} must be a string, got {t}"),
    }
}

#[cfg(test)]
mod testing {
    //! Runs SQL over in-memory tables in a session with the functions registered.

    use std::sync::Arc;

    use arrow::{
        array::{AsArray, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray},
        datatypes::Float64Type,
        util::pretty::pretty_format_batches,
    };
    use datafusion::{
        catalog::MemTable,
        common::Result,
        prelude::{SessionConfig, SessionContext},
    };

    /// `partitions` becomes table `t`, one MemTable partition per element.
    pub(super) async fn run(
        sql: &str,
        partitions: Vec<Vec<RecordBatch>>,
        target_partitions: usize,
    ) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new().with_target_partitions(target_partitions),
        );
        super::register(&ctx);
        let schema = partitions[0][0].schema();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, partitions)?))?;
        ctx.sql(sql).await?.collect().await
    }

    /// Heart-rate readings: (subject_id, minute since the epoch, bpm).
    pub(super) fn heart_rate_minutes(rows: &[(i64, i64, Option<f64>)]) -> RecordBatch {
        const MINUTE: i64 = 60_000_000_000;
        RecordBatch::try_from_iter(vec![
            (
                "subject_id",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.1 * MINUTE),
                )) as _,
            ),
            (
                "bpm",
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))) as _,
            ),
        ])
        .unwrap()
    }

    /// The result as a table, for comparisons.
    pub(super) async fn table(sql: &str, batch: RecordBatch) -> String {
        let batches = run(sql, vec![vec![batch]], 1).await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    /// A Float64 column of the result.
    pub(super) async fn floats(sql: &str, batch: RecordBatch, column: &str) -> Vec<Option<f64>> {
        let batches = run(sql, vec![vec![batch]], 1).await.unwrap();
        batches
            .iter()
            .flat_map(|b| {
                b.column_by_name(column)
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The message of the error the query fails with.
    pub(super) async fn error(sql: &str, batch: RecordBatch) -> String {
        match run(sql, vec![vec![batch]], 1).await {
            Ok(batches) => panic!(
                "{sql} succeeded: {}",
                pretty_format_batches(&batches).unwrap()
            ),
            Err(e) => e.to_string(),
        }
    }

    /// Splits a batch's rows over `n` partitions round-robin and checks that the query gives
    /// the same table over many partitions (partial aggregates merged) as over one.
    pub(super) async fn same_when_split(sql: &str, batch: RecordBatch, n: usize) -> String {
        let single = table(sql, batch.clone()).await;
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
        for row in 0..batch.num_rows() {
            partitions[row % n].push(batch.slice(row, 1));
        }
        partitions.retain(|p| !p.is_empty());
        let plan = run(&format!("EXPLAIN {sql}"), partitions.clone(), n)
            .await
            .unwrap();
        let plan = pretty_format_batches(&plan).unwrap().to_string();
        assert!(plan.contains("mode=Partial"), "{plan}");
        let split = run(sql, partitions, n).await.unwrap();
        let split = pretty_format_batches(&split).unwrap().to_string();
        assert_eq!(split, single, "{sql}");
        single
    }
}
