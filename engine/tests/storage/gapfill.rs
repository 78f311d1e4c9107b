use std::collections::BTreeMap;

use arrow::{
    array::{Array, AsArray, PrimitiveArray, RecordBatch},
    datatypes::{Float64Type, Int64Type, TimestampNanosecondType},
};
use catalog::testing::TestDatabase;
use datafusion::{common::ParamValues, scalar::ScalarValue};
use engine::Principal;

use crate::support::{Harness, MARCH_1, Random, Reading, SECOND, explain};

const MINUTE: i64 = 60 * SECOND;
const BUCKET: i64 = 5 * MINUTE;
/// Two hours of 5-minute buckets.
const BUCKETS: i64 = 24;

/// (bucket, avg, locf, interpolated, max)
type Row = (i64, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

fn rows_of(batches: &[RecordBatch]) -> BTreeMap<i64, Vec<Row>> {
    let mut rows: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for batch in batches {
        let subject = batch.column(0).as_primitive::<Int64Type>();
        let bucket = batch.column(1).as_primitive::<TimestampNanosecondType>();
        let get = |a: &PrimitiveArray<Float64Type>, i: usize| a.is_valid(i).then(|| a.value(i));
        let [avg, locf, line, max] =
            [2, 3, 4, 5].map(|c| batch.column(c).as_primitive::<Float64Type>().clone());
        for i in 0..batch.num_rows() {
            rows.entry(subject.value(i)).or_default().push((
                bucket.value(i),
                get(&avg, i),
                get(&locf, i),
                get(&line, i),
                get(&max, i),
            ));
        }
    }
    rows
}

/// Heart rates with gaps of many buckets, at the start, in the middle and at the end of the
/// range, filled by SQL as a model computes them from the written readings.
pub async fn gapfill_fills_every_bucket_of_the_range(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    let mut random = Random::new(11);
    // Minutes (from midnight) without readings, per subject.
    let gaps: [&[(i64, i64)]; 2] = [&[(20, 47)], &[(0, 23), (61, 64), (95, 200)]];
    let mut readings: Vec<Reading> = Vec::new();
    for (subject, gaps) in s.iter().zip(gaps) {
        // A minute before the range, which the WHERE clause leaves out.
        readings.push((*subject, "watch", MARCH_1 - MINUTE, 200.0));
        for minute in 0..120 {
            if gaps.iter().any(|&(from, to)| (from..to).contains(&minute)) || random.below(3) == 0 {
                continue;
            }
            let bpm = 50.0 + random.below(500) as f64 / 10.0;
            readings.push((*subject, "watch", MARCH_1 + minute * MINUTE, bpm));
        }
    }
    h.write(&readings).await.unwrap();

    let sql = "SELECT subject_id, date_bin_gapfill(INTERVAL '5 minutes', time) AS t, avg(bpm) AS bpm, \
               locf(avg(bpm)) AS bpm_locf, interpolate(avg(bpm)) AS bpm_lin, max(bpm) AS raw_max \
               FROM heart_rate \
               WHERE time >= TIMESTAMP '2026-03-01T00:00:00' AND time < TIMESTAMP '2026-03-01T02:00:00' \
               GROUP BY subject_id, t ORDER BY subject_id, t";
    let plan = explain(&h.engine, sql).await;
    // Gap filling sits above whatever answers the aggregation: here the minute rollups.
    assert!(
        plan.contains("GapFillExec") && plan.contains("heart_rate_rollup_1m"),
        "{plan}"
    );

    // The model: per subject and bucket, the readings' mean and maximum, then the fills.
    let mut expected: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    for &subject in &s {
        let mut buckets: Vec<(i64, Option<f64>, Option<f64>)> = Vec::new();
        for b in 0..BUCKETS {
            let start = MARCH_1 + b * BUCKET;
            let bpms: Vec<f64> = readings
                .iter()
                .filter(|r| r.0 == subject && (start..start + BUCKET).contains(&r.2))
                .map(|r| r.3)
                .collect();
            let avg = (!bpms.is_empty()).then(|| bpms.iter().sum::<f64>() / bpms.len() as f64);
            let max = bpms.iter().copied().reduce(f64::max);
            buckets.push((start, avg, max));
        }
        let known: Vec<(i64, f64)> = buckets
            .iter()
            .filter_map(|&(t, avg, _)| avg.map(|v| (t, v)))
            .collect();
        let rows = buckets
            .iter()
            .map(|&(t, avg, max)| {
                let before = known.iter().rev().find(|k| k.0 <= t);
                let after = known.iter().find(|k| k.0 >= t);
                let line = match (before, after) {
                    (Some(&(t0, v0)), Some(&(t1, v1))) if t1 > t0 => {
                        Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
                    }
                    (Some(&(_, v0)), Some(_)) => Some(v0),
                    _ => None,
                };
                (t, avg, before.map(|k| k.1), line, max)
            })
            .collect();
        expected.insert(subject, rows);
    }
    // The gaps are there: NULL aggregates, leading NULLs for both fills, trailing for
    // interpolation only.
    let second = &expected[&s[1]];
    assert!(second[0].1.is_none() && second[0].2.is_none() && second[0].3.is_none());
    assert!(second[23].1.is_none() && second[23].2.is_some() && second[23].3.is_none());

    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (a, b) => a == b,
    };
    let same = |actual: &BTreeMap<i64, Vec<Row>>| {
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        for (subject, rows) in actual {
            let want = &expected[subject];
            assert_eq!(rows.len(), want.len(), "subject {subject}");
            for (got, want) in rows.iter().zip(want) {
                assert!(
                    got.0 == want.0
                        && close(got.1, want.1)
                        && close(got.2, want.2)
                        && close(got.3, want.3)
                        && close(got.4, want.4),
                    "subject {subject}: {got:?} != {want:?}"
                );
            }
        }
    };
    let output = h.engine.query("default", sql).await.unwrap();
    same(&rows_of(&output.batches));

    // The same range given as parameters, bound before the plan is made.
    let with_parameters = sql
        .replace("TIMESTAMP '2026-03-01T00:00:00'", "$1")
        .replace("TIMESTAMP '2026-03-01T02:00:00'", "$2");
    let principal = Principal::operator(h.engine.organization("default").await.unwrap());
    let parameters = ParamValues::List(vec![
        ScalarValue::TimestampNanosecond(Some(MARCH_1), None).into(),
        ScalarValue::TimestampNanosecond(Some(MARCH_1 + BUCKETS * BUCKET), None).into(),
    ]);
    let stream = h
        .engine
        .query_as(&principal, &with_parameters, Some(parameters))
        .await
        .unwrap();
    same(&rows_of(&stream.collect().await.unwrap()));

    let error = h
        .engine
        .query(
            "default",
            "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) FROM heart_rate \
             WHERE time >= TIMESTAMP '2026-03-01T00:00:00' GROUP BY t",
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("WHERE has no upper bound"),
        "{error}"
    );
}
