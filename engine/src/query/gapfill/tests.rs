//! Gap filling in SQL on small tables whose answers are written out, the operator against a
//! reference model on random input cut into random batches, and the errors of misuse.

use std::sync::Arc;

use arrow::{
    array::{
        Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampNanosecondArray,
    },
    datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit},
    util::pretty::pretty_format_batches,
};
use datafusion::{
    catalog::MemTable,
    common::{ParamValues, ScalarValue},
    datasource::memory::MemorySourceConfig,
    execution::SessionStateBuilder,
    physical_optimizer::{PhysicalOptimizerRule, optimizer::PhysicalOptimizer},
    physical_plan::{ExecutionPlan, collect, displayable},
    prelude::{SessionConfig, SessionContext, col},
};

use super::{exec::GapFillExec, fill::Params, functions::Fill, install};
use crate::query::physical_optimizer_rules;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
/// 2026-03-01T00:00:00Z.
const MARCH_1: i64 = 1_772_323_200 * SECOND;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("subject_id", DataType::Int64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("source", DataType::Utf8, false),
        Field::new("bpm", DataType::Float64, true),
    ]))
}

/// (subject, minutes after midnight, source, bpm)
type Reading = (i64, i64, &'static str, Option<f64>);

fn batch(rows: &[Reading]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(TimestampNanosecondArray::from_iter_values(
            rows.iter().map(|r| MARCH_1 + r.1 * MINUTE),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.3))),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// A session as the engine builds them (gap filling, the aggregation kernel) over a table
/// `hr` of the readings, in two partitions.
fn context(rows: &[Reading]) -> SessionContext {
    context_with(rows, physical_optimizer_rules())
}

fn context_with(
    rows: &[Reading],
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(4);
    let builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .with_query_planner(Arc::new(crate::query::ExtensionPlanners));
    let ctx = SessionContext::new_with_state(install(builder).build());
    let half = rows.len() / 2;
    let table = MemTable::try_new(
        schema(),
        vec![vec![batch(&rows[..half])], vec![batch(&rows[half..])]],
    )
    .unwrap()
    .with_sort_order(vec![vec![
        col("subject_id").sort(true, false),
        col("time").sort(true, false),
    ]]);
    ctx.register_table("hr", Arc::new(table)).unwrap();
    ctx
}

async fn table(ctx: &SessionContext, sql: &str) -> String {
    let frame = ctx.sql(sql).await.unwrap();
    let batches = frame
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(batches) => panic!(
            "{sql} should fail, and gave\n{}",
            pretty_format_batches(&batches).unwrap()
        ),
        Err(e) => e.to_string(),
    }
}

fn lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

const RANGE: &str =
    "time >= TIMESTAMP '2026-03-01T00:00:00' AND time < TIMESTAMP '2026-03-01T00:40:00'";

/// Subject 1 has buckets 0, 15 and 30; subject 2 has 5, 20 (with a NULL) and 25.
fn readings() -> Vec<Reading> {
    vec![
        (1, 1, "watch", Some(60.0)),
        (1, 2, "watch", Some(64.0)),
        (1, 16, "watch", Some(70.0)),
        (1, 31, "watch", Some(80.0)),
        (2, 7, "ring", Some(50.0)),
        (2, 22, "ring", None),
        (2, 26, "ring", Some(56.0)),
        // Outside the range: filtered out before the aggregation.
        (2, 45, "ring", Some(99.0)),
    ]
}

#[tokio::test]
async fn every_bucket_of_the_range_for_every_series() {
    let sql = format!(
        "SELECT subject_id, date_bin_gapfill(INTERVAL '5 minutes', time) AS t, \
         locf(avg(bpm)) AS bpm_locf, round(interpolate(avg(bpm)), 2) AS bpm_lin, \
         max(bpm) AS raw_max, count(bpm) AS n, interpolate(count(bpm)) AS n_lin \
         FROM hr WHERE {RANGE} GROUP BY subject_id, t ORDER BY subject_id, t"
    );
    // Counts are never NULL: 0 in a gap, and an integer line (rounded) for interpolate.
    let expected = "
        +------------+---------------------+----------+---------+---------+---+-------+
        | subject_id | t                   | bpm_locf | bpm_lin | raw_max | n | n_lin |
        +------------+---------------------+----------+---------+---------+---+-------+
        | 1          | 2026-03-01T00:00:00 | 62.0     | 62.0    | 64.0    | 2 | 2     |
        | 1          | 2026-03-01T00:05:00 | 62.0     | 64.67   |         | 0 | 2     |
        | 1          | 2026-03-01T00:10:00 | 62.0     | 67.33   |         | 0 | 1     |
        | 1          | 2026-03-01T00:15:00 | 70.0     | 70.0    | 70.0    | 1 | 1     |
        | 1          | 2026-03-01T00:20:00 | 70.0     | 73.33   |         | 0 | 1     |
        | 1          | 2026-03-01T00:25:00 | 70.0     | 76.67   |         | 0 | 1     |
        | 1          | 2026-03-01T00:30:00 | 80.0     | 80.0    | 80.0    | 1 | 1     |
        | 1          | 2026-03-01T00:35:00 | 80.0     |         |         | 0 |       |
        | 2          | 2026-03-01T00:00:00 |          |         |         | 0 |       |
        | 2          | 2026-03-01T00:05:00 | 50.0     | 50.0    | 50.0    | 1 | 1     |
        | 2          | 2026-03-01T00:10:00 | 50.0     | 51.5    |         | 0 | 1     |
        | 2          | 2026-03-01T00:15:00 | 50.0     | 53.0    |         | 0 | 0     |
        | 2          | 2026-03-01T00:20:00 | 50.0     | 54.5    |         | 0 | 0     |
        | 2          | 2026-03-01T00:25:00 | 56.0     | 56.0    | 56.0    | 1 | 1     |
        | 2          | 2026-03-01T00:30:00 | 56.0     |         |         | 0 |       |
        | 2          | 2026-03-01T00:35:00 | 56.0     |         |         | 0 |       |
        +------------+---------------------+----------+---------+---------+---+-------+";
    // With the aggregation kernel and with DataFusion's own aggregation (then sorted).
    for ctx in [
        context(&readings()),
        context_with(&readings(), PhysicalOptimizer::new().rules),
    ] {
        assert_eq!(lines(&table(&ctx, &sql).await), lines(expected));
    }
}

#[tokio::test]
async fn the_plan_fills_above_the_aggregation_kernel() {
    let ctx = context(&readings());
    let sql = format!(
        "EXPLAIN SELECT subject_id, date_bin_gapfill(INTERVAL '5 minutes', time) AS t, \
         locf(avg(bpm)) FROM hr WHERE {RANGE} GROUP BY subject_id, t ORDER BY subject_id, t"
    );
    let plan = table(&ctx, &sql).await;
    assert!(plan.contains("GapFill: series=[subject_id]"), "{plan}");
    assert!(
        plan.contains("GapFillExec: series=[subject_id@0]"),
        "{plan}"
    );
    assert!(plan.contains("BucketedAggregateExec"), "{plan}");
    // The aggregation's order is the one gap filling and ORDER BY need.
    assert!(!plan.contains("SortExec"), "{plan}");
}

#[tokio::test]
async fn locf_and_interpolate_of_the_same_aggregate_beside_it() {
    let ctx = context(&readings());
    let sql = format!(
        "SELECT date_bin_gapfill(INTERVAL '10 minutes', time) AS t, avg(bpm), locf(avg(bpm)), \
         interpolate(avg(bpm)) * 2 AS twice FROM hr WHERE {RANGE} AND subject_id = 1 \
         GROUP BY t ORDER BY t"
    );
    let expected = "
        +---------------------+-------------+-------------------+-------+
        | t                   | avg(hr.bpm) | locf(avg(hr.bpm)) | twice |
        +---------------------+-------------+-------------------+-------+
        | 2026-03-01T00:00:00 | 62.0        | 62.0              | 124.0 |
        | 2026-03-01T00:10:00 | 70.0        | 70.0              | 140.0 |
        | 2026-03-01T00:20:00 |             | 70.0              | 150.0 |
        | 2026-03-01T00:30:00 | 80.0        | 80.0              | 160.0 |
        +---------------------+-------------+-------------------+-------+";
    assert_eq!(lines(&table(&ctx, &sql).await), lines(expected));
}

#[tokio::test]
async fn empty_input_gives_every_bucket_only_without_other_keys() {
    let ctx = context(&readings());
    let empty =
        "time >= TIMESTAMP '2026-03-02T00:00:00' AND time < TIMESTAMP '2026-03-02T00:15:00'";
    let by_subject = format!(
        "SELECT subject_id, date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) AS n \
         FROM hr WHERE {empty} GROUP BY subject_id, t"
    );
    assert_eq!(lines(&table(&ctx, &by_subject).await), "++\n++");
    let alone = format!(
        "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) AS n, \
         locf(max(bpm)) AS m FROM hr WHERE {empty} GROUP BY t ORDER BY t"
    );
    let expected = "
        +---------------------+---+---+
        | t                   | n | m |
        +---------------------+---+---+
        | 2026-03-02T00:00:00 | 0 |   |
        | 2026-03-02T00:05:00 | 0 |   |
        | 2026-03-02T00:10:00 | 0 |   |
        +---------------------+---+---+";
    assert_eq!(lines(&table(&ctx, &alone).await), lines(expected));
}

#[tokio::test]
async fn having_filters_the_filled_rows() {
    let ctx = context(&readings());
    let sql = format!(
        "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) AS n FROM hr \
         WHERE {RANGE} GROUP BY t HAVING count(*) = 0 ORDER BY t"
    );
    // The empty buckets, which only the filling made.
    let expected = "
        +---------------------+---+
        | t                   | n |
        +---------------------+---+
        | 2026-03-01T00:10:00 | 0 |
        | 2026-03-01T00:35:00 | 0 |
        +---------------------+---+";
    assert_eq!(lines(&table(&ctx, &sql).await), lines(expected));
}

#[tokio::test]
async fn a_single_bucket() {
    let ctx = context(&readings());
    let sql = "SELECT subject_id, date_bin_gapfill(INTERVAL '1 hour', time) AS t, \
               interpolate(min(bpm)) AS low FROM hr \
               WHERE time BETWEEN TIMESTAMP '2026-03-01T00:00:00' AND TIMESTAMP '2026-03-01T00:59:59' \
               GROUP BY subject_id, t ORDER BY subject_id, t";
    let expected = "
        +------------+---------------------+------+
        | subject_id | t                   | low  |
        +------------+---------------------+------+
        | 1          | 2026-03-01T00:00:00 | 60.0 |
        | 2          | 2026-03-01T00:00:00 | 50.0 |
        +------------+---------------------+------+";
    assert_eq!(lines(&table(&ctx, sql).await), lines(expected));
}

#[tokio::test]
async fn several_keys_each_a_series_and_leading_gaps_stay_null() {
    // No series has a row in the first two buckets.
    let rows = vec![
        (1, 12, "watch", Some(60.0)),
        (1, 13, "ring", Some(61.0)),
        (1, 24, "ring", Some(65.0)),
        (2, 21, "watch", Some(70.0)),
    ];
    let ctx = context(&rows);
    let sql = "SELECT subject_id, source, date_bin_gapfill(INTERVAL '10 minutes', time) AS t, \
               locf(max(bpm)) AS last, interpolate(max(bpm)) AS line FROM hr \
               WHERE time >= TIMESTAMP '2026-03-01T00:00:00' AND time < TIMESTAMP '2026-03-01T00:30:00' \
               GROUP BY subject_id, source, t ORDER BY subject_id, source, t";
    let expected = "
        +------------+--------+---------------------+------+------+
        | subject_id | source | t                   | last | line |
        +------------+--------+---------------------+------+------+
        | 1          | ring   | 2026-03-01T00:00:00 |      |      |
        | 1          | ring   | 2026-03-01T00:10:00 | 61.0 | 61.0 |
        | 1          | ring   | 2026-03-01T00:20:00 | 65.0 | 65.0 |
        | 1          | watch  | 2026-03-01T00:00:00 |      |      |
        | 1          | watch  | 2026-03-01T00:10:00 | 60.0 | 60.0 |
        | 1          | watch  | 2026-03-01T00:20:00 | 60.0 |      |
        | 2          | watch  | 2026-03-01T00:00:00 |      |      |
        | 2          | watch  | 2026-03-01T00:10:00 |      |      |
        | 2          | watch  | 2026-03-01T00:20:00 | 70.0 | 70.0 |
        +------------+--------+---------------------+------+------+";
    assert_eq!(lines(&table(&ctx, sql).await), lines(expected));
}

#[tokio::test]
async fn an_origin_shifts_the_buckets_and_a_stride_need_not_divide_the_range() {
    let ctx = context(&readings());
    // Buckets of 7 minutes from 00:03; the range 00:05–00:20 starts inside the bucket of
    // 00:03 and ends inside that of 00:17.
    let sql = "SELECT date_bin_gapfill(INTERVAL '7 minutes', time, TIMESTAMP '2026-03-01T00:03:00') AS t, \
               count(*) AS n FROM hr \
               WHERE time >= TIMESTAMP '2026-03-01T00:05:00' AND time <= TIMESTAMP '2026-03-01T00:20:00' \
               GROUP BY t ORDER BY t";
    let expected = "
        +---------------------+---+
        | t                   | n |
        +---------------------+---+
        | 2026-03-01T00:03:00 | 1 |
        | 2026-03-01T00:10:00 | 1 |
        | 2026-03-01T00:17:00 | 0 |
        +---------------------+---+";
    assert_eq!(lines(&table(&ctx, sql).await), lines(expected));
}

#[tokio::test]
async fn bounds_may_be_placeholders_and_the_tightest_bound_wins() {
    let ctx = context(&readings());
    let sql = "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) AS n FROM hr \
               WHERE time > $1 AND time >= TIMESTAMP '2026-03-01T00:00:00' AND time < $2 \
               AND subject_id = 2 GROUP BY t ORDER BY t";
    let frame = ctx
        .sql(sql)
        .await
        .unwrap()
        .with_param_values(ParamValues::List(vec![
            ScalarValue::TimestampNanosecond(Some(MARCH_1 + 4 * MINUTE), None).into(),
            ScalarValue::TimestampNanosecond(Some(MARCH_1 + 20 * MINUTE), None).into(),
        ]))
        .unwrap();
    let text = pretty_format_batches(&frame.collect().await.unwrap())
        .unwrap()
        .to_string();
    let expected = "
        +---------------------+---+
        | t                   | n |
        +---------------------+---+
        | 2026-03-01T00:00:00 | 0 |
        | 2026-03-01T00:05:00 | 1 |
        | 2026-03-01T00:10:00 | 0 |
        | 2026-03-01T00:15:00 | 0 |
        +---------------------+---+";
    assert_eq!(lines(&text), lines(expected));
}

#[tokio::test]
async fn misuse_is_refused_with_what_to_write() {
    let ctx = context(&readings());
    let cases = [
        (
            "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) FROM hr".to_owned(),
            "date_bin_gapfill needs GROUP BY and a time range `time >= … AND time < …` in WHERE",
        ),
        (
            "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) FROM hr GROUP BY t"
                .to_owned(),
            "WHERE has no lower bound (`time >= …`) nor upper bound (`time < …`) on hr.time",
        ),
        (
            "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) FROM hr \
             WHERE time >= TIMESTAMP '2026-03-01T00:00:00' GROUP BY t"
                .to_owned(),
            "WHERE has no upper bound (`time < …`) on hr.time",
        ),
        (
            "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) FROM hr \
             WHERE time < TIMESTAMP '2026-03-01T00:00:00' OR subject_id = 1 GROUP BY t"
                .to_owned(),
            "WHERE has no lower bound (`time >= …`) nor upper bound",
        ),
        (
            format!("SELECT subject_id FROM hr WHERE {RANGE} AND locf(bpm) > 1"),
            "locf fills the gaps of an aggregate, as in `locf(avg(bpm))`, in the SELECT list of \
             a query grouped by date_bin_gapfill",
        ),
        (
            format!(
                "SELECT interpolate(avg(bpm)) FROM hr WHERE {RANGE} GROUP BY date_bin(INTERVAL '5 minutes', time)"
            ),
            "interpolate fills the gaps of an aggregate",
        ),
        (
            format!(
                "SELECT locf(subject_id), date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) \
                 FROM hr WHERE {RANGE} GROUP BY subject_id, t"
            ),
            "locf fills the gaps of an aggregate",
        ),
        (
            format!(
                "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, interpolate(max(source)) \
                 FROM hr WHERE {RANGE} GROUP BY t"
            ),
            "interpolate needs a numeric aggregate, and `max(hr.source)` is Utf8",
        ),
        (
            format!(
                "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, locf(avg(bpm)) \
                 FROM hr WHERE {RANGE} GROUP BY t HAVING count(*) > 0"
            ),
            "locf fills the gaps of an aggregate",
        ),
        (
            format!(
                "SELECT date_bin_gapfill(INTERVAL '1 month', time) AS t, count(*) FROM hr \
                 WHERE {RANGE} GROUP BY t"
            ),
            "date_bin_gapfill needs a stride of days, hours, minutes or seconds, not months",
        ),
        (
            format!(
                "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS a, \
                 date_bin_gapfill(INTERVAL '10 minutes', time) AS b, count(*) FROM hr \
                 WHERE {RANGE} GROUP BY a, b"
            ),
            "date_bin_gapfill may appear only once in GROUP BY",
        ),
    ];
    for (sql, expected) in cases {
        let message = error(&ctx, &sql).await;
        assert!(message.contains(expected), "{sql}\n{message}");
    }
}

#[tokio::test]
async fn unbound_placeholders_are_refused_when_the_query_runs() {
    // DataFusion's filter refuses the placeholder before the gap filling would.
    let ctx = context(&readings());
    let sql = "SELECT date_bin_gapfill(INTERVAL '5 minutes', time) AS t, count(*) FROM hr \
               WHERE time >= $1 AND time < TIMESTAMP '2026-03-02T00:00:00' GROUP BY t";
    let message = error(&ctx, sql).await;
    assert!(
        message.contains("Placeholder '$1' was not provided a value"),
        "{message}"
    );
}

/// SplitMix64.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An aggregation's output: (series, bucket, value), sorted, one row per series and bucket.
type Group = (i64, i64, Option<f64>);

fn groups_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series", DataType::Int64, false),
        Field::new(
            "bucket",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("value", DataType::Float64, true),
    ]))
}

fn output_schema() -> SchemaRef {
    let mut fields: Vec<Field> = groups_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("locf", DataType::Float64, true));
    fields.push(Field::new("interpolate", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

/// (series, bucket, value, locf, interpolate)
type Filled = (i64, i64, Option<f64>, Option<f64>, Option<f64>);

/// The expected output, the obvious way: every bucket of the range and every bucket with a
/// group, per series, then the fills looked up around each row.
fn model(groups: &[Group], params: &Params) -> Vec<Filled> {
    let mut series: Vec<i64> = groups.iter().map(|g| g.0).collect();
    series.dedup();
    if params.series.is_empty() {
        series = vec![0];
    }
    let mut out = Vec::new();
    for s in series {
        let mine: Vec<&Group> = groups
            .iter()
            .filter(|g| params.series.is_empty() || g.0 == s)
            .collect();
        let mut buckets: Vec<i64> = mine.iter().map(|g| g.1).collect();
        let mut b = params.first;
        while b <= params.last {
            buckets.push(b);
            b += params.stride;
        }
        buckets.sort();
        buckets.dedup();
        let value_at = |b: i64| mine.iter().find(|g| g.1 == b).and_then(|g| g.2);
        for &b in &buckets {
            let value = value_at(b);
            let before = mine.iter().rev().find(|g| g.1 <= b && g.2.is_some());
            let after = mine.iter().find(|g| g.1 >= b && g.2.is_some());
            let locf = before.and_then(|g| g.2);
            let line = match (before, after) {
                (Some(p), Some(n)) if p.1 == n.1 => p.2,
                (Some(p), Some(n)) => {
                    let (v0, v1) = (p.2.unwrap(), n.2.unwrap());
                    Some(v0 + (v1 - v0) * (b - p.1) as f64 / (n.1 - p.1) as f64)
                }
                _ => None,
            };
            let key = mine.first().map_or(s, |g| g.0);
            out.push((key, b, value, locf, line));
        }
    }
    out
}

#[tokio::test]
async fn the_operator_matches_a_model_on_random_input() {
    let mut random = Random(7);
    for round in 0..300 {
        let stride = [1, 2, 3, 5][random.below(4) as usize];
        let keyless = random.below(5) == 0;
        let mut groups: Vec<Group> = Vec::new();
        let series_count = if keyless { 1 } else { random.below(4) };
        let null_share = random.below(4);
        for s in 0..series_count {
            // Buckets a stride apart, from a little before the range to a little after.
            let mut bucket = stride * (random.below(4) as i64 - 2);
            while bucket < 30 {
                if random.below(3) == 0 {
                    let value = (random.below(4) >= null_share).then(|| random.below(100) as f64);
                    groups.push((s as i64 * 10, bucket, value));
                }
                bucket += stride;
            }
        }
        let first = stride * random.below(3) as i64;
        let last = first + stride * (random.below(8) as i64 - 1);
        let params = Params {
            series: if keyless { vec![] } else { vec![0] },
            time: 1,
            stride,
            first,
            last,
            // Without keys the first column is a value, never NULL, as `count` is.
            gap_values: vec![
                ScalarValue::Int64(Some(0)),
                ScalarValue::TimestampNanosecond(None, None),
                ScalarValue::Float64(None),
            ],
            fills: vec![(2, Fill::Locf), (2, Fill::Interpolate)],
        };
        // The groups cut into batches at random places, empty ones included.
        let mut batches = Vec::new();
        let mut start = 0;
        while start < groups.len() {
            let end = if random.below(5) == 0 {
                start
            } else {
                (start + 1 + random.below(5) as usize).min(groups.len())
            };
            let part = &groups[start..end];
            batches.push(
                RecordBatch::try_new(
                    groups_schema(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(part.iter().map(|g| g.0))),
                        Arc::new(TimestampNanosecondArray::from_iter_values(
                            part.iter().map(|g| g.1),
                        )),
                        Arc::new(Float64Array::from_iter(part.iter().map(|g| g.2))),
                    ],
                )
                .unwrap(),
            );
            start = end;
        }
        let input = MemorySourceConfig::try_new_exec(&[batches], groups_schema(), None).unwrap();
        let exec: Arc<dyn ExecutionPlan> = Arc::new(GapFillExec::new(
            input,
            params.clone(),
            vec!["locf".into(), "interpolate".into()],
            output_schema(),
        ));
        let batch_size = 1 + random.below(5) as usize;
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(batch_size));
        let output = collect(exec.clone(), ctx.task_ctx()).await.unwrap();
        let mut actual = Vec::new();
        for batch in &output {
            assert!(batch.num_rows() <= batch_size, "round {round}");
            let series = batch.column(0).as_primitive::<Int64Type>();
            let bucket = batch
                .column(1)
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>();
            let [value, locf, line] =
                [2, 3, 4].map(|i| batch.column(i).as_primitive::<Float64Type>().clone());
            let get = |a: &arrow::array::PrimitiveArray<Float64Type>, i: usize| {
                a.is_valid(i).then(|| a.value(i))
            };
            for i in 0..batch.num_rows() {
                actual.push((
                    series.value(i),
                    bucket.value(i),
                    get(&value, i),
                    get(&locf, i),
                    get(&line, i),
                ));
            }
        }
        let expected = model(&groups, &params);
        let plan = displayable(exec.as_ref()).indent(true).to_string();
        assert_eq!(
            actual.len(),
            expected.len(),
            "round {round}\n{plan}\n{groups:?}"
        );
        for (got, want) in actual.iter().zip(&expected) {
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (a, b) => a == b,
            };
            assert!(
                (got.0, got.1, got.2, got.3) == (want.0, want.1, want.2, want.3)
                    && close(got.4, want.4),
                "round {round}: {got:?} != {want:?}\n{plan}\n{groups:?}"
            );
        }
    }
}
