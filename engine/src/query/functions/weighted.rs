//! `time_weighted_avg(value, time)`: the mean of a step function through the readings.
//!
//! Each reading holds until the next one (see `series.rs`), uncapped, so the answer is
//! Σ valueᵢ × (timeᵢ₊₁ − timeᵢ) / (time_last − time_first). The last reading only closes
//! the span of the one before it; a group whose readings share one instant gives their mean.

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Float64Type, TimestampNanosecondType},
};
use datafusion::common::Result;

use super::{
    check_arity, instant, number,
    series::{Sample, Step},
};

pub(super) fn coerce(args: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("time_weighted_avg(value, time)", args, &[2])?;
    Ok(vec![
        number("time_weighted_avg", "value", &args[0])?,
        instant("time_weighted_avg", "time", &args[1])?,
    ])
}

pub(super) fn samples(values: &[ArrayRef], samples: &mut Vec<Sample>) -> Result<()> {
    let value = values[0].as_primitive::<Float64Type>();
    let time = values[1].as_primitive::<TimestampNanosecondType>();
    for row in 0..value.len() {
        if value.is_valid(row) && time.is_valid(row) {
            samples.push((time.value(row), value.value(row)));
        }
    }
    Ok(())
}

/// The time-weighted mean of non-empty `steps`.
pub(super) fn average(steps: &[Step]) -> f64 {
    let duration: f64 = steps.iter().map(|s| s.span as f64).sum();
    if duration > 0.0 {
        steps.iter().map(|s| s.value * s.span as f64).sum::<f64>() / duration
    } else {
        steps.last().map_or(f64::NAN, |s| s.value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, TimestampNanosecondArray};

    use super::super::testing::{error, same_when_split, table};

    const MINUTE: i64 = 60_000_000_000;

    /// (group, minute, value)
    fn rows(rows: &[(i64, i64, Option<i64>)]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "g",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| r.1 * MINUTE),
                )) as _,
            ),
            (
                "v",
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))) as _,
            ),
        ])
        .unwrap()
    }

    #[tokio::test]
    async fn weights_each_reading_by_the_time_to_the_next() {
        let batch = rows(&[
            // 10 for 1 minute, 40 for 3 minutes, then 1000 closes: (10 + 120) / 4 = 32.5,
            // given out of order.
            (1, 4, Some(1000)),
            (1, 1, Some(40)),
            (1, 0, Some(10)),
            (1, 2, None),
            // One reading: its value.
            (2, 7, Some(70)),
            // One instant, two readings: their mean.
            (3, 5, Some(10)),
            (3, 5, Some(20)),
            // No usable reading: NULL.
            (4, 5, None),
            // No cap: 50 held for 10 hours, 100 for 1 minute.
            (5, 0, Some(50)),
            (5, 600, Some(100)),
            (5, 601, Some(0)),
        ]);
        let sql = "SELECT g, round(time_weighted_avg(v, time), 6) AS avg FROM t \
                   GROUP BY g ORDER BY g";
        assert_eq!(
            same_when_split(sql, batch, 4).await,
            "\
+---+-----------+
| g | avg       |
+---+-----------+
| 1 | 32.5      |
| 2 | 70.0      |
| 3 | 15.0      |
| 4 |           |
| 5 | 50.083195 |
+---+-----------+"
        );
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_number_and_a_time() {
        let batch = rows(&[(1, 0, Some(1))]);
        let swapped = error("SELECT time_weighted_avg(time, v) FROM t", batch.clone()).await;
        assert!(
            swapped.contains("time_weighted_avg: value must be a number"),
            "{swapped}"
        );
        let no_time = error("SELECT time_weighted_avg(v, v) FROM t", batch.clone()).await;
        assert!(
            no_time.contains("time_weighted_avg: time must be a timestamp, got Int64"),
            "{no_time}"
        );
        let arity = error("SELECT time_weighted_avg(v) FROM t", batch).await;
        assert!(arity.contains("time_weighted_avg(value, time)"), "{arity}");
    }

    #[tokio::test]
    async fn an_empty_table_gives_null() {
        let batch = rows(&[(1, 0, Some(1))]);
        assert_eq!(
            table(
                "SELECT time_weighted_avg(v, time) AS avg FROM t WHERE g = 2",
                batch
            )
            .await,
            "+-----+\n| avg |\n+-----+\n|     |\n+-----+"
        );
    }
}
