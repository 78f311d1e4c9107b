//! Aggregation benchmarks: the bucketed kernel against DataFusion's own aggregation of the
//! same query over the same in-memory batches, and loops that only sum columns (the
//! memory-bandwidth floors the kernel is measured against).
//!
//! `cargo bench --bench aggregate`. See benches/README.md for the figures.

use std::{hint::black_box, sync::Arc};

use arrow::{
    array::{AsArray, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray},
    datatypes::{
        DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit,
        TimestampNanosecondType,
    },
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::{
    catalog::MemTable,
    execution::SessionStateBuilder,
    physical_plan::{ExecutionPlan, collect, displayable, execution_plan::reset_plan_states},
    prelude::{SessionConfig, SessionContext, col},
};
use tokio::runtime::Runtime;

/// The allocator the `healthai` binary runs with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUBJECTS: i64 = 100;
/// One day at one reading a second.
const SECONDS: i64 = 86_400;
const SECOND: i64 = 1_000_000_000;
/// 2026-03-01T00:00:00Z.
const START: i64 = 1_772_323_200 * SECOND;
const BATCH_ROWS: i64 = 8_192;
const PARTITIONS: i64 = 2;

const QUERIES: [(&str, &str); 2] = [
    (
        "minute_max_avg_count",
        "SELECT subject_id, date_bin(INTERVAL '1 minute', time) AS b, max(bpm), avg(bpm), \
         count(*) FROM heart_rate GROUP BY subject_id, b",
    ),
    (
        "hour_every_function",
        "SELECT subject_id, date_bin(INTERVAL '1 hour', time) AS b, count(bpm), sum(bpm), \
         min(bpm), max(bpm), avg(bpm), stddev(bpm), first_value(bpm ORDER BY time), \
         last_value(bpm ORDER BY time) FROM heart_rate GROUP BY subject_id, b",
    ),
];

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("subject_id", DataType::Int64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("bpm", DataType::Float64, true),
    ]))
}

/// `SUBJECTS` × `SECONDS` readings sorted by (subject, time), as the stream scans return
/// them: the subjects split between `PARTITIONS` partitions, in batches of `BATCH_ROWS`.
fn partitions() -> Vec<Vec<RecordBatch>> {
    let per_partition = SUBJECTS / PARTITIONS;
    (0..PARTITIONS)
        .map(|partition| {
            let rows = per_partition * SECONDS;
            let first_row = partition * rows;
            (0..(rows + BATCH_ROWS - 1) / BATCH_ROWS)
                .map(|batch| {
                    let range = first_row + batch * BATCH_ROWS
                        ..first_row + ((batch + 1) * BATCH_ROWS).min(rows);
                    let subjects = range.clone().map(|row| row / SECONDS);
                    let times = range.clone().map(|row| START + (row % SECONDS) * SECOND);
                    let bpm = range.map(|row| 55.0 + ((row * 7919) % 90) as f64);
                    RecordBatch::try_new(
                        schema(),
                        vec![
                            Arc::new(Int64Array::from_iter_values(subjects)),
                            Arc::new(TimestampNanosecondArray::from_iter_values(times)),
                            Arc::new(Float64Array::from_iter_values(bpm)),
                        ],
                    )
                    .unwrap()
                })
                .collect()
        })
        .collect()
}

fn context(kernel: bool, partitions: Vec<Vec<RecordBatch>>) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(PARTITIONS as usize);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if kernel {
        state = state.with_physical_optimizer_rules(engine::physical_optimizer_rules());
    }
    let ctx = SessionContext::new_with_state(state.build());
    let table = MemTable::try_new(schema(), partitions)
        .unwrap()
        .with_sort_order(vec![vec![
            col("subject_id").sort(true, false),
            col("time").sort(true, false),
        ]]);
    ctx.register_table("heart_rate", Arc::new(table)).unwrap();
    ctx
}

fn plan(rt: &Runtime, ctx: &SessionContext, sql: &str, kernel: bool) -> Arc<dyn ExecutionPlan> {
    let plan = rt
        .block_on(async { ctx.sql(sql).await?.create_physical_plan().await })
        .unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    assert_eq!(text.contains("BucketedAggregateExec"), kernel, "{text}");
    plan
}

fn aggregate(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let partitions = partitions();
    let rows: u64 = partitions
        .iter()
        .flatten()
        .map(|b| b.num_rows() as u64)
        .sum();
    let kernel = context(true, partitions.clone());
    let datafusion = context(false, partitions.clone());

    let mut group = c.benchmark_group("aggregate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    for (name, sql) in QUERIES {
        for (engine, ctx, uses_kernel) in [
            ("kernel", &kernel, true),
            ("datafusion", &datafusion, false),
        ] {
            let plan = plan(&rt, ctx, sql, uses_kernel);
            group.bench_function(format!("{name}/{engine}"), |b| {
                b.iter(|| {
                    // A plan holds run state (repartitioning channels): each run gets a fresh copy.
                    let fresh = reset_plan_states(plan.clone()).unwrap();
                    let batches = rt.block_on(collect(fresh, ctx.task_ctx())).unwrap();
                    black_box(batches)
                })
            });
        }
    }
    // One thread reading the value column once, in independent lanes so that the additions
    // do not wait on each other: bound by memory bandwidth, not by the adder's latency.
    group.bench_function("sum_bpm_loop", |b| {
        b.iter(|| {
            let mut lanes = [0.0; 8];
            for batch in partitions.iter().flatten() {
                let bpm = batch.column(2).as_primitive::<Float64Type>().values();
                for chunk in bpm.chunks_exact(8) {
                    for (lane, value) in lanes.iter_mut().zip(chunk) {
                        *lane += value;
                    }
                }
                lanes[0] += bpm.chunks_exact(8).remainder().iter().sum::<f64>();
            }
            black_box(lanes.iter().sum::<f64>())
        })
    });
    // The bytes the kernel must read (subject, time and value of every row), read by as
    // many threads as the kernel has partitions: the floor for the kernel itself.
    group.bench_function("sum_three_columns_loop", |b| {
        b.iter(|| {
            let totals: Vec<f64> = std::thread::scope(|scope| {
                let threads: Vec<_> = partitions
                    .iter()
                    .map(|batches| scope.spawn(|| sum_columns(batches)))
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            black_box(totals.iter().sum::<f64>())
        })
    });
    group.finish();
}

/// Sums the three columns of the batches in independent lanes (integers wrapping), so that
/// the additions do not wait on each other.
fn sum_columns(batches: &[RecordBatch]) -> f64 {
    let mut float_lanes = [0.0; 8];
    let mut int_lanes = [0i64; 8];
    for batch in batches {
        let subjects = batch.column(0).as_primitive::<Int64Type>().values();
        let times = batch
            .column(1)
            .as_primitive::<TimestampNanosecondType>()
            .values();
        for values in [&subjects[..], &times[..]] {
            for chunk in values.chunks_exact(8) {
                for (lane, value) in int_lanes.iter_mut().zip(chunk) {
                    *lane = lane.wrapping_add(*value);
                }
            }
        }
        let bpm = batch.column(2).as_primitive::<Float64Type>().values();
        for chunk in bpm.chunks_exact(8) {
            for (lane, value) in float_lanes.iter_mut().zip(chunk) {
                *lane += value;
            }
        }
    }
    float_lanes.iter().sum::<f64>() + int_lanes.iter().fold(0i64, |s, x| s.wrapping_add(*x)) as f64
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
