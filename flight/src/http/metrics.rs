//! The metrics counted at the HTTP edge, and `/metrics` rendering them after the engine's.

use std::time::Duration;

use axum::http::Method;
use engine::metrics::{Counter, Family, Histogram, render_gauge};
use ingest::IngestReport;

static REQUESTS: Family<Counter> = Family::new(
    "healthai_http_requests_total",
    "HTTP requests answered, by method, route and status.",
    &["method", "route", "status"],
);
static REQUEST_SECONDS: Family<Histogram> = Family::new(
    "healthai_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a streamed result), by route.",
    &["route"],
);
static INGEST_ROWS: Family<Counter> = Family::new(
    "healthai_ingest_rows_total",
    "Rows received by HTTP writes, by stream and outcome (accepted, rejected, duplicate).",
    &["stream", "outcome"],
);
static INGEST_REJECTIONS: Family<Counter> = Family::new(
    "healthai_ingest_rejections_total",
    "Rows rejected by HTTP writes, by stream and the rule that refused them.",
    &["stream", "rule"],
);

pub(crate) fn request(method: &Method, route: &str, status: u16, elapsed: Duration) {
    REQUESTS
        .with(&[method.as_str(), route, &status.to_string()])
        .inc();
    REQUEST_SECONDS.with(&[route]).observe(elapsed);
}

pub(crate) fn ingested(report: &IngestReport) {
    for (stream, stats) in &report.streams {
        for (outcome, rows) in [
            ("accepted", stats.rows_accepted),
            ("rejected", stats.rejected()),
            ("duplicate", stats.duplicates()),
        ] {
            INGEST_ROWS.with(&[stream, outcome]).add(rows);
        }
        for ((_, rule), count) in &stats.rules {
            if count.rejected > 0 {
                INGEST_REJECTIONS.with(&[stream, rule]).add(count.rejected);
            }
        }
    }
}

/// Everything, in the Prometheus text format.
pub(crate) fn render(catalog: &dyn catalog::Catalog) -> String {
    let mut out = String::new();
    engine::metrics::render(&mut out);
    INGEST_ROWS.render(&mut out);
    INGEST_REJECTIONS.render(&mut out);
    REQUESTS.render(&mut out);
    REQUEST_SECONDS.render(&mut out);
    let backend = format!(
        "backend=\"{}\"",
        catalog.backend().to_string().to_ascii_lowercase()
    );
    if let Some(pool) = catalog.pool_status() {
        let mut samples = vec![
            (format!("{backend},state=\"max\""), pool.max_size as f64),
            (format!("{backend},state=\"open\""), pool.size as f64),
            (
                format!("{backend},state=\"available\""),
                pool.available as f64,
            ),
        ];
        if let Some(waiting) = pool.waiting {
            samples.push((format!("{backend},state=\"waiting\""), waiting as f64));
        }
        let samples: Vec<(&str, f64)> = samples.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        render_gauge(
            &mut out,
            "healthai_catalog_pool_connections",
            "Catalog connections: the pool's maximum, open, available (idle) and callers waiting.",
            &samples,
        );
    }
    out
}
