//! The kernel against DataFusion's own plan, on random sorted data: the same rows, the same
//! schema, for every shape the rule rewrites; and DataFusion's plan where it must not.

use std::sync::Arc;

use arrow::{
    array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    },
    compute::concat_batches,
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit},
    util::pretty::pretty_format_batches,
};
use datafusion::{
    catalog::{MemTable, streaming::StreamingTable},
    common::ScalarValue,
    execution::{SendableRecordBatchStream, SessionStateBuilder, TaskContext},
    physical_plan::{
        ExecutionPlan, displayable, stream::RecordBatchStreamAdapter, streaming::PartitionStream,
    },
    prelude::{SessionConfig, SessionContext, col},
};
use futures::StreamExt;
use tokio::sync::Notify;

use crate::query::functions::Bucketing;
use crate::query::physical_optimizer_rules;

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3_600 * SECOND;
const DAY: i64 = 24 * HOUR;

/// SplitMix64: small, deterministic, good enough to shuffle test data.
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

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

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
        Field::new("steps", DataType::Int64, true),
    ]))
}

/// Rows sorted by (subject, time), times unique per subject (so first and last values are
/// well defined), with NULLs, signed zeros, negative times, gaps across bucket boundaries.
/// No NaN or infinities: DataFusion's grouped `min`/`max` give order-dependent answers for
/// them (a value after a NaN replaces it; `min` of +inf alone is `f64::MAX`).
#[derive(Default)]
struct Rows {
    subjects: Vec<i64>,
    times: Vec<i64>,
    bpm: Vec<Option<f64>>,
    steps: Vec<Option<i64>>,
}

impl Rows {
    fn random(random: &mut Random) -> Rows {
        let mut rows = Rows::default();
        let subjects = random.below(5);
        let mut subject = -3 + random.below(4) as i64;
        for _ in 0..subjects {
            subject += 1 + random.below(1000) as i64;
            let count = *random.pick(&[0, 1, 2, 5, 30, 150]);
            let null_bpm = *random.pick(&[0.0, 0.3, 1.0]);
            let null_steps = *random.pick(&[0.0, 0.5, 1.0]);
            let mut time = random.below(4 * DAY as u64) as i64 - 2 * DAY;
            for _ in 0..count {
                time += *random.pick(&[1, SECOND, 7 * SECOND, 59 * SECOND, 61 * SECOND, HOUR, DAY]);
                rows.subjects.push(subject);
                rows.times.push(time);
                rows.bpm.push((!random.chance(null_bpm)).then(|| {
                    if random.chance(0.03) {
                        *random.pick(&[-0.0, 0.0])
                    } else {
                        40.0 + random.below(16_000) as f64 / 100.0
                    }
                }));
                rows.steps.push((!random.chance(null_steps)).then(|| {
                    if random.chance(0.02) {
                        i64::MAX - random.below(10) as i64
                    } else {
                        random.below(300) as i64 - 20
                    }
                }));
            }
        }
        rows
    }

    fn len(&self) -> usize {
        self.subjects.len()
    }

    fn batch(&self, rows: &[usize]) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|&r| self.subjects[r]),
            )),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|&r| self.times[r]),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|&r| ["watch", "ring"][r % 2]),
            )),
            Arc::new(Float64Array::from_iter(rows.iter().map(|&r| self.bpm[r]))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|&r| self.steps[r]))),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    /// The rows spread over `partitions` partitions (each a sorted subsequence, so that a
    /// group may be split between partitions), each cut into batches at random places.
    fn partitions(&self, random: &mut Random, partitions: usize) -> Vec<Vec<RecordBatch>> {
        let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); partitions];
        let spread = random.chance(0.5);
        for row in 0..self.len() {
            let partition = if spread {
                random.below(partitions as u64) as usize
            } else {
                row * partitions / self.len().max(1)
            };
            rows_of[partition].push(row);
        }
        rows_of
            .iter()
            .map(|rows| {
                let mut batches = Vec::new();
                let mut start = 0;
                while start < rows.len() {
                    let len = 1 + random.below(40) as usize;
                    let end = (start + len).min(rows.len());
                    batches.push(self.batch(&rows[start..end]));
                    start = end;
                }
                if batches.is_empty() || random.chance(0.2) {
                    batches.push(self.batch(&[]));
                }
                batches
            })
            .collect()
    }
}

fn context(
    kernel: bool,
    partitions: Vec<Vec<RecordBatch>>,
    sorted: bool,
    batch_size: usize,
) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(batch_size);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if kernel {
        state = state.with_physical_optimizer_rules(physical_optimizer_rules());
    }
    let ctx = SessionContext::new_with_state(state.build());
    let mut table = MemTable::try_new(schema(), partitions).unwrap();
    if sorted {
        table = table.with_sort_order(vec![vec![
            col("subject_id").sort(true, false),
            col("time").sort(true, false),
        ]]);
    }
    ctx.register_table("hr", Arc::new(table)).unwrap();
    ctx
}

async fn plan_and_rows(ctx: &SessionContext, sql: &str) -> (String, SchemaRef, Vec<RecordBatch>) {
    let frame = ctx.sql(sql).await.unwrap();
    let plan: Arc<dyn ExecutionPlan> = frame.clone().create_physical_plan().await.unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
        .await
        .unwrap_or_else(|e| panic!("{sql}\n{text}\n{e}"));
    (text, plan.schema(), batches)
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

fn cells(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let batch = concat_batches(schema, batches).unwrap();
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(
                    |column| match ScalarValue::try_from_array(column.as_ref(), row).unwrap() {
                        value if value.is_null() => Cell::Null,
                        ScalarValue::Int64(Some(v))
                        | ScalarValue::TimestampNanosecond(Some(v), _) => Cell::Int(v),
                        ScalarValue::Float64(Some(v)) => Cell::Float(v),
                        value => Cell::Text(value.to_string()),
                    },
                )
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The same rows (floats within a relative 1e-9), in key order when `ordered`, else in any.
fn assert_same(sql: &str, expected: &[RecordBatch], schema: &SchemaRef, actual: &[RecordBatch]) {
    let mut want = cells(schema, expected);
    let mut got = cells(schema, actual);
    let key = |row: &Vec<Cell>| format!("{:?}", &row[..2]);
    want.sort_by_key(key);
    got.sort_by_key(key);
    let same = want.len() == got.len()
        && want.iter().zip(&got).all(|(w, g)| {
            w.iter().zip(g).all(|(w, g)| match (w, g) {
                (Cell::Float(w), Cell::Float(g)) => close(*w, *g),
                _ => w == g,
            })
        });
    assert!(
        same,
        "{sql}\nDataFusion:\n{}\nkernel:\n{}",
        pretty_format_batches(expected).unwrap(),
        pretty_format_batches(actual).unwrap()
    );
}

const AGGREGATES: &[&str] = &[
    "count(*)",
    "count(bpm)",
    "count(source)",
    "sum(bpm)",
    "min(bpm)",
    "max(bpm)",
    "avg(bpm)",
    "stddev(bpm)",
    "stddev_pop(bpm)",
    "var(bpm)",
    "var_pop(bpm)",
    "first_value(bpm ORDER BY time)",
    "last_value(bpm ORDER BY time)",
    "first_value(bpm ORDER BY time DESC)",
    "sum(steps)",
    "min(steps)",
    "max(steps)",
    "avg(steps)",
    "last_value(steps ORDER BY time)",
    "max(bpm * 2 + 1)",
    "min(time)",
    "max(time)",
    "first_value(time ORDER BY time)",
];

const STRIDES: &[&str] = &[
    "INTERVAL '1 second'",
    "INTERVAL '7 seconds'",
    "INTERVAL '1 minute'",
    "INTERVAL '15 minutes'",
    "INTERVAL '1 hour'",
    "INTERVAL '1 day'",
    "INTERVAL '1 day 2 hours'",
];

const ORIGINS: &[&str] = &[
    "",
    ", TIMESTAMP '1970-01-01 00:00:00'",
    ", TIMESTAMP '2001-01-01 00:00:07.5'",
    ", TIMESTAMP '1969-12-31 23:59:31'",
];

fn random_query(random: &mut Random) -> String {
    let bucket = format!(
        "date_bin({}, time{})",
        random.pick(STRIDES),
        random.pick(ORIGINS)
    );
    let mut aggregates: Vec<&str> = AGGREGATES
        .iter()
        .copied()
        .filter(|_| random.chance(0.35))
        .collect();
    if aggregates.is_empty() {
        aggregates.push(*random.pick(AGGREGATES));
    }
    let aggregates = aggregates.join(", ");
    let filter = *random.pick(&[
        "",
        "",
        "WHERE bpm IS NULL OR bpm > 100",
        "WHERE subject_id > 400",
    ]);
    if random.chance(0.5) {
        format!(
            "SELECT subject_id, {bucket} AS b, {aggregates} FROM hr {filter} GROUP BY subject_id, b"
        )
    } else {
        format!(
            "SELECT {bucket} AS b, subject_id, {aggregates} FROM hr {filter} GROUP BY b, subject_id"
        )
    }
}

/// Runs `sql` with and without the rule over the same partitions; returns the kernel's plan.
async fn compare(
    sql: &str,
    partitions: Vec<Vec<RecordBatch>>,
    sorted: bool,
    batch_size: usize,
) -> String {
    let generic = context(false, partitions.clone(), sorted, batch_size);
    let kernel = context(true, partitions, sorted, batch_size);
    let (generic_plan, generic_schema, expected) = plan_and_rows(&generic, sql).await;
    let (plan, schema, actual) = plan_and_rows(&kernel, sql).await;
    assert!(!generic_plan.contains("BucketedAggregateExec"));
    assert_eq!(schema, generic_schema, "{sql}\n{plan}");
    assert_same(sql, &expected, &schema, &actual);
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_queries_on_random_data_match_datafusion() {
    let mut random = Random(7);
    for case in 0..120 {
        let rows = Rows::random(&mut random);
        let partitions = 1 + random.below(3) as usize;
        let partitions = rows.partitions(&mut random, partitions);
        let batch_size = *random.pick(&[1, 3, 8192]);
        let sql = random_query(&mut random);
        let plan = compare(&sql, partitions, true, batch_size).await;
        assert!(
            plan.contains("BucketedAggregateExec"),
            "case {case}: {sql}\n{plan}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_taking_turns_row_by_row_match_datafusion() {
    // One day per partition, grouped by subject and day: the merge takes one row from each
    // partition in turn (subject 1's day 0, day 1, …, then subject 2's).
    let (days, subjects) = (12, 40);
    let mut random = Random(11);
    let partitions: Vec<Vec<RecordBatch>> = (0..days)
        .map(|day| {
            let mut rows = Rows {
                subjects: Vec::new(),
                times: Vec::new(),
                bpm: Vec::new(),
                steps: Vec::new(),
            };
            // Some subjects miss some days, so that partitions' chunks end at different places.
            for subject in 1..=subjects {
                if random.chance(0.2) {
                    continue;
                }
                for hour in 0..24 {
                    rows.subjects.push(subject);
                    rows.times.push((day * 24 + hour) * HOUR);
                    rows.bpm.push(Some(50.0 + random.below(100) as f64));
                    rows.steps.push(Some(random.below(500) as i64));
                }
            }
            let all: Vec<usize> = (0..rows.len()).collect();
            all.chunks(100).map(|chunk| rows.batch(chunk)).collect()
        })
        .collect();
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 day', time) AS b, count(*), sum(bpm), \
               max(bpm), last_value(steps ORDER BY time) FROM hr GROUP BY subject_id, b";
    for batch_size in [16, 8192] {
        let plan = compare(sql, partitions.clone(), true, batch_size).await;
        assert!(plan.contains("BucketedAggregateExec"), "{plan}");
        // In key order, as the plan declares.
        let ctx = context(true, partitions.clone(), true, batch_size);
        let (_, schema, batches) = plan_and_rows(&ctx, sql).await;
        let keys: Vec<(i64, i64)> = cells(&schema, &batches)
            .iter()
            .map(|row| match row[..2] {
                [Cell::Int(subject), Cell::Int(bucket)] => (subject, bucket),
                _ => panic!("not a key: {row:?}"),
            })
            .collect();
        assert!(keys.len() > (days * subjects / 2) as usize);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }
}

#[tokio::test]
async fn groups_split_between_batches_and_partitions_are_folded_together() {
    // One subject, one minute bucket, each row in its own batch and alternate partitions.
    let rows = Rows {
        subjects: vec![7; 6],
        times: (0..6).map(|i| 60 * SECOND + i * SECOND).collect(),
        bpm: vec![Some(60.0), None, Some(62.0), Some(64.0), None, Some(70.0)],
        steps: vec![Some(1), Some(2), None, Some(3), Some(4), None],
    };
    let single = vec![(0..6).map(|r| rows.batch(&[r])).collect()];
    let split = vec![
        [0, 2, 4].iter().map(|&r| rows.batch(&[r])).collect(),
        [1, 3, 5].iter().map(|&r| rows.batch(&[r])).collect(),
    ];
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, count(*), count(bpm), \
               sum(bpm), avg(bpm), stddev(bpm), first_value(steps ORDER BY time), \
               last_value(steps ORDER BY time) FROM hr GROUP BY subject_id, b";
    for partitions in [single, split] {
        let ctx = context(true, partitions.clone(), true, 8192);
        let (plan, _, batches) = plan_and_rows(&ctx, sql).await;
        assert!(plan.contains("BucketedAggregateExec"), "{plan}");
        let (sum, avg, stddev) = (256.0, 64.0, (56.0f64 / 3.0).sqrt());
        assert_eq!(
            cells(&batches[0].schema(), &batches),
            [vec![
                Cell::Int(7),
                Cell::Int(60 * SECOND),
                Cell::Int(6),
                Cell::Int(4),
                Cell::Float(sum),
                Cell::Float(avg),
                Cell::Float(stddev),
                Cell::Int(1),
                // The latest row's value, though NULL.
                Cell::Null,
            ]]
        );
        compare(sql, partitions, true, 8192).await;
    }
}

/// A partition whose rows come only after `wait` is notified, and that notifies `done` once
/// all its rows were read.
#[derive(Debug)]
struct Gated {
    batches: Vec<RecordBatch>,
    wait: Option<Arc<Notify>>,
    done: Option<Arc<Notify>>,
}

impl PartitionStream for Gated {
    fn schema(&self) -> &SchemaRef {
        self.batches[0].schema_ref()
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (wait, done) = (self.wait.clone(), self.done.clone());
        let opened = futures::stream::once(async move {
            if let Some(wait) = wait {
                wait.notified().await;
            }
        });
        let rows = futures::stream::iter(self.batches.clone().into_iter().map(Ok));
        let ended = futures::stream::once(async move {
            if let Some(done) = done {
                done.notify_one();
            }
        });
        let stream = opened
            .filter_map(|()| async { None })
            .chain(rows)
            .chain(ended.filter_map(|()| async { None }));
        Box::pin(RecordBatchStreamAdapter::new(schema(), stream))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_later_subjects_run_ahead_of_the_merge() {
    // The merge takes subject 1's groups first. Its partition here only starts once the
    // partition of subject 2 was read to its end: a partition that could hold no more than a
    // few finished chunks before the merge takes them would wait forever.
    let minutes = |subject: i64| Rows {
        subjects: vec![subject; 200],
        times: (0..200).map(|i| i * 60 * SECOND).collect(),
        bpm: vec![Some(60.0); 200],
        steps: vec![None; 200],
    };
    let (first, second) = (minutes(1), minutes(2));
    let batches = |rows: &Rows| -> Vec<RecordBatch> {
        (0..20)
            .map(|b| rows.batch(&(b * 10..(b + 1) * 10).collect::<Vec<_>>()))
            .collect()
    };
    let second_read = Arc::new(Notify::new());
    let partitions: Vec<Arc<dyn PartitionStream>> = vec![
        Arc::new(Gated {
            batches: batches(&first),
            wait: Some(second_read.clone()),
            done: None,
        }),
        Arc::new(Gated {
            batches: batches(&second),
            wait: None,
            done: Some(second_read),
        }),
    ];
    let table = StreamingTable::try_new(schema(), partitions)
        .unwrap()
        .with_sort_order(vec![
            col("subject_id").sort(true, false),
            col("time").sort(true, false),
        ]);
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(8);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rules(physical_optimizer_rules())
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table("hr", Arc::new(table)).unwrap();
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, count(*) FROM hr \
               GROUP BY subject_id, b";
    let (plan, _, batches) =
        tokio::time::timeout(std::time::Duration::from_secs(30), plan_and_rows(&ctx, sql))
            .await
            .expect("the partition of subject 2 waited for the merge");
    assert!(plan.contains("BucketedAggregateExec"), "{plan}");
    let rows = cells(&batches[0].schema(), &batches);
    assert_eq!(rows.len(), 400);
    assert_eq!(rows[0][..3], [Cell::Int(1), Cell::Int(0), Cell::Int(1)]);
    assert_eq!(
        rows[399][..3],
        [Cell::Int(2), Cell::Int(199 * 60 * SECOND), Cell::Int(1)]
    );
}

#[tokio::test]
async fn empty_input_has_no_groups() {
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS b, max(bpm), count(*) \
               FROM hr GROUP BY subject_id, b";
    for partitions in [vec![vec![]], vec![vec![Rows::default().batch(&[])]; 3]] {
        let ctx = context(true, partitions.clone(), true, 8192);
        let (plan, _, batches) = plan_and_rows(&ctx, sql).await;
        assert!(plan.contains("BucketedAggregateExec"), "{plan}");
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
        compare(sql, partitions, true, 8192).await;
    }
}

#[tokio::test]
async fn all_null_groups_follow_sql() {
    let rows = Rows {
        subjects: vec![1, 1, 2],
        times: vec![0, SECOND, 0],
        bpm: vec![None, None, Some(80.0)],
        steps: vec![None, None, Some(5)],
    };
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, count(bpm), sum(bpm), \
               min(bpm), avg(bpm), stddev(bpm), stddev_pop(bpm), sum(steps), first_value(bpm ORDER BY time) \
               FROM hr GROUP BY subject_id, b ORDER BY subject_id";
    let ctx = context(true, vec![vec![rows.batch(&[0, 1, 2])]], true, 8192);
    let (_, _, batches) = plan_and_rows(&ctx, sql).await;
    use Cell::{Float, Int, Null};
    assert_eq!(
        cells(&batches[0].schema(), &batches),
        [
            vec![
                Int(1),
                Int(0),
                Int(0),
                Null,
                Null,
                Null,
                Null,
                Null,
                Null,
                Null
            ],
            vec![
                Int(2),
                Int(0),
                Int(1),
                Float(80.0),
                Float(80.0),
                Float(80.0),
                Null,
                Float(0.0),
                Int(5),
                Float(80.0)
            ],
        ]
    );
    compare(sql, vec![vec![rows.batch(&[0, 1, 2])]], true, 8192).await;
}

#[tokio::test]
async fn ordered_output_needs_no_sort_and_explain_shows_the_kernel() {
    let mut random = Random(11);
    let rows = Rows::random(&mut random);
    let partitions = rows.partitions(&mut random, 2);
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, max(bpm) FROM hr \
               GROUP BY subject_id, b ORDER BY subject_id, b";
    let ctx = context(true, partitions.clone(), true, 8192);
    let (plan, schema, batches) = plan_and_rows(&ctx, sql).await;
    assert!(!plan.contains("SortExec"), "{plan}");
    let generic = context(false, partitions, true, 8192);
    let (_, _, expected) = plan_and_rows(&generic, sql).await;
    // In the same order, not only the same rows.
    assert_eq!(
        cells(&schema, &batches).len(),
        cells(&schema, &expected).len()
    );
    let keys = |batches: &[RecordBatch]| -> Vec<Vec<Cell>> {
        cells(&schema, batches)
            .into_iter()
            .map(|row| row[..2].to_vec())
            .collect()
    };
    assert_eq!(keys(&batches), keys(&expected));

    let explain = ctx.sql(&format!("EXPLAIN {sql}")).await.unwrap();
    let explain = pretty_format_batches(&explain.collect().await.unwrap())
        .unwrap()
        .to_string();
    assert!(
        explain.contains("BucketedAggregateExec: gby=[subject_id@0, date_bin(60000000000 ns, time@1, origin 1970-01-01T00:00:00Z)], aggr=[max(hr.bpm)]"),
        "{explain}"
    );
}

/// Queries the kernel must leave to DataFusion, with the reason.
#[tokio::test]
async fn unsupported_shapes_keep_datafusions_plan() {
    let mut random = Random(3);
    let rows = Rows::random(&mut random);
    let cases = [
        (
            "max(bpm)",
            "GROUP BY subject_id, b",
            false,
            "unsorted input",
        ),
        (
            "median(bpm)",
            "GROUP BY subject_id, b",
            true,
            "unsupported aggregate",
        ),
        (
            "count(DISTINCT bpm)",
            "GROUP BY subject_id, b",
            true,
            "DISTINCT",
        ),
        (
            "sum(bpm) FILTER (WHERE steps > 3)",
            "GROUP BY subject_id, b",
            true,
            "FILTER",
        ),
        (
            "first_value(bpm ORDER BY steps)",
            "GROUP BY subject_id, b",
            true,
            "other order",
        ),
        (
            "first_value(bpm IGNORE NULLS)",
            "GROUP BY subject_id, b",
            true,
            "IGNORE NULLS",
        ),
        ("max(source)", "GROUP BY subject_id, b", true, "text values"),
        (
            "max(bpm)",
            "GROUP BY subject_id, b, source",
            true,
            "extra key",
        ),
        ("max(bpm)", "GROUP BY b", true, "no subject"),
        ("max(bpm)", "GROUP BY steps, b", true, "nullable key"),
    ];
    for (aggregate, group_by, sorted, why) in cases {
        let sql = format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS b, {aggregate} FROM hr {group_by}"
        );
        let partitions = rows.partitions(&mut random, 2);
        let ctx = context(true, partitions.clone(), sorted, 8192);
        let (plan, _, _) = plan_and_rows(&ctx, &sql).await;
        assert!(
            !plan.contains("BucketedAggregateExec"),
            "{why}: {sql}\n{plan}"
        );
    }
    let month = "SELECT subject_id, date_bin(INTERVAL '1 month', time) AS b, max(bpm) FROM hr \
                 GROUP BY subject_id, b";
    let ctx = context(true, rows.partitions(&mut random, 1), true, 8192);
    let (plan, _, _) = plan_and_rows(&ctx, month).await;
    assert!(!plan.contains("BucketedAggregateExec"), "months: {plan}");
    // Unsorted input still gives the right answer, through DataFusion.
    let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, max(bpm) FROM hr \
               GROUP BY subject_id, b";
    compare(sql, rows.partitions(&mut random, 2), false, 8192).await;
}

#[tokio::test]
async fn input_that_is_not_sorted_as_declared_is_an_error() {
    // A time that goes back; another subject inside a block of rows the run search skips
    // on the strength of the block's last row (and `count` would not notice either).
    let inputs = [
        (vec![1, 1, 1], vec![2 * SECOND, SECOND, 3 * SECOND]),
        (
            vec![1, 1, 1, 2, 1, 1, 1, 1, 1, 1],
            (0..10).map(|i| i * SECOND).collect(),
        ),
    ];
    for (subjects, times) in inputs {
        let len = subjects.len();
        let rows = Rows {
            subjects,
            times,
            bpm: vec![Some(1.0); len],
            steps: vec![None; len],
        };
        let all: Vec<usize> = (0..len).collect();
        let ctx = context(true, vec![vec![rows.batch(&all)]], true, 8192);
        let sql = "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, count(*), \
                   first_value(bpm ORDER BY time) FROM hr GROUP BY subject_id, b";
        let error = ctx.sql(sql).await.unwrap().collect().await.unwrap_err();
        assert!(
            error.to_string().contains("not sorted by subject and time"),
            "{error}"
        );
    }
}

#[test]
fn buckets_are_datafusions_date_bin() {
    let bucketing = Bucketing {
        stride: 10,
        origin: 0,
    };
    for (time, bucket) in [(-11, -20), (-10, -10), (-1, -10), (0, 0), (9, 0), (10, 10)] {
        assert_eq!(bucketing.bucket(time), Some(bucket), "{time}");
    }
    let shifted = Bucketing {
        stride: 10,
        origin: 3,
    };
    assert_eq!(shifted.bucket(2), Some(-7));
    assert_eq!(shifted.bucket(13), Some(13));
    assert_eq!(shifted.bucket(i64::MIN), None);
}
