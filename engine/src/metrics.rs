//! Process-wide metrics, kept in atomics where the events happen and rendered in the
//! Prometheus text format on demand: counters and latency histograms, in families labelled
//! by a few values of low cardinality (a stream, an interface, an operation).
//!
//! The engine's own families are here (flushes, compactions, queries, object store errors);
//! the network layer declares its families with the same types and renders them after
//! these.
//!
//! ```
//! use engine::metrics::{Counter, Family};
//!
//! static REQUESTS: Family<Counter> = Family::new("demo_requests_total", "Requests served.", &["route"]);
//! REQUESTS.with(&["/health"]).inc();
//! let mut text = String::new();
//! REQUESTS.render(&mut text);
//! assert!(text.contains("demo_requests_total{route=\"/health\"} 1\n"));
//! ```

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// A count that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds: a millisecond to a minute.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A distribution of durations over [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; rendering sums them).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// What a family's members render as.
pub trait Metric: Default + Send + Sync {
    const TYPE: &'static str;
    /// The sample lines of one member; `labels` is `a="x",b="y"` or empty.
    fn render(&self, name: &str, labels: &str, out: &mut String);
}

impl Metric for Counter {
    const TYPE: &'static str = "counter";

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let _ = writeln!(out, "{name}{} {}", braces(labels), self.get());
    }
}

impl Metric for Histogram {
    const TYPE: &'static str = "histogram";

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

/// Metrics of one name, one per combination of label values.
pub struct Family<M> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    members: Mutex<BTreeMap<Vec<String>, Arc<M>>>,
}

impl<M: Metric> Family<M> {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Family {
            name,
            help,
            labels,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The member with these label values (in the family's label order), created at zero.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.entry(key).or_default().clone()
    }

    /// `# HELP`, `# TYPE` and a sample block per member.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, M::TYPE);
        let members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        for (values, metric) in members.iter() {
            let labels = self
                .labels
                .iter()
                .zip(values)
                .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
                .collect::<Vec<_>>()
                .join(",");
            metric.render(self.name, &labels, out);
        }
    }
}

/// A value that is read when rendered (a pool's size), as a gauge.
pub fn render_gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{} {value}", braces(labels));
    }
}

/// A label value with backslashes, quotes and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Time of each group commit, from gathering its writes to the catalog acknowledging its
/// files, by stream.
pub static FLUSH_SECONDS: Family<Histogram> = Family::new(
    "healthai_flush_duration_seconds",
    "Time of a group commit: sort, encode, upload and register the files.",
    &["stream", "outcome"],
);
/// Rows made durable by group commits, by stream.
pub static FLUSHED_ROWS: Family<Counter> = Family::new(
    "healthai_flushed_rows_total",
    "Rows written through group commits, before de-duplication.",
    &["stream"],
);
/// Time to compact one partition.
pub static COMPACTION_SECONDS: Family<Histogram> = Family::new(
    "healthai_compaction_duration_seconds",
    "Time to compact one partition: merge, encode, upload, swap.",
    &["stream"],
);
/// Queries from planning to their last row, by interface (`flight`, `grpc`, `rest`, `cli`)
/// and outcome.
pub static QUERY_SECONDS: Family<Histogram> = Family::new(
    "healthai_query_duration_seconds",
    "Time of a query from planning to its last row.",
    &["interface", "outcome"],
);
/// Failed object store operations, by operation.
pub static OBJECT_STORE_ERRORS: Family<Counter> = Family::new(
    "healthai_object_store_errors_total",
    "Object store operations that failed.",
    &["operation"],
);
/// Reads of stored Parquet files through the file cache, by outcome: `hit` (kept in
/// memory), `miss` (fetched whole and kept), `full` (no room could be made: read by range
/// for a while) and `large` (too large to keep: read by range).
pub static FILE_CACHE_READS: Family<Counter> = Family::new(
    "healthai_file_cache_reads_total",
    "Reads of stored Parquet files through the file cache, by outcome.",
    &["outcome"],
);

/// The engine's metrics in the Prometheus text format.
pub fn render(out: &mut String) {
    FLUSH_SECONDS.render(out);
    FLUSHED_ROWS.render(out);
    COMPACTION_SECONDS.render(out);
    QUERY_SECONDS.render(out);
    OBJECT_STORE_ERRORS.render(out);
    FILE_CACHE_READS.render(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        static LATENCY: Family<Histogram> = Family::new("t_seconds", "Test.", &["route"]);
        let member = LATENCY.with(&["/a\"b"]);
        member.observe(Duration::from_micros(500));
        member.observe(Duration::from_millis(30));
        member.observe(Duration::from_secs(120));
        let mut out = String::new();
        LATENCY.render(&mut out);
        for line in [
            "# TYPE t_seconds histogram",
            "t_seconds_bucket{route=\"/a\\\"b\",le=\"0.001\"} 1",
            "t_seconds_bucket{route=\"/a\\\"b\",le=\"0.025\"} 1",
            "t_seconds_bucket{route=\"/a\\\"b\",le=\"0.05\"} 2",
            "t_seconds_bucket{route=\"/a\\\"b\",le=\"60\"} 2",
            "t_seconds_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 3",
            "t_seconds_sum{route=\"/a\\\"b\"} 120.0305",
            "t_seconds_count{route=\"/a\\\"b\"} 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
    }

    #[test]
    fn counters_are_kept_per_label_values() {
        static HITS: Family<Counter> = Family::new("t_total", "Test.", &["a", "b"]);
        HITS.with(&["x", "1"]).add(2);
        HITS.with(&["x", "1"]).inc();
        HITS.with(&["y", "2"]).inc();
        let mut out = String::new();
        HITS.render(&mut out);
        assert!(out.contains("t_total{a=\"x\",b=\"1\"} 3\n"), "{out}");
        assert!(out.contains("t_total{a=\"y\",b=\"2\"} 1\n"), "{out}");
        let mut gauges = String::new();
        render_gauge(&mut gauges, "t_pool", "Test.", &[("state=\"idle\"", 4.0)]);
        assert!(gauges.ends_with("# TYPE t_pool gauge\nt_pool{state=\"idle\"} 4\n"));
    }
}
