use std::sync::Arc;

use catalog::{Catalog, DEFAULT_ORG, NewParquetFile, OrgId, StreamId, SubjectId, SubjectProfile};
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub const HOUR_NS: i64 = 3_600_000_000_000;

/// A fixed instant: catalog times are stored to the microsecond, so tests avoid `now()`.
pub fn t0() -> DateTime<Utc> {
    "2026-03-01T08:00:00Z".parse().unwrap()
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

/// 2026-03-01 plus `n` days.
pub fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + Duration::days(n)
}

/// Nanoseconds since the epoch at `hour` on `day(d)`.
pub fn at(d: i64, hour: i64) -> i64 {
    let midnight = day(d).and_hms_opt(0, 0, 0).unwrap().and_utc();
    midnight.timestamp_nanos_opt().unwrap() + hour * HOUR_NS
}

/// A file of `rows` rows in day `d`, covering `[from_hour, to_hour)` and the subject range.
pub fn parquet_file(
    stream: StreamId,
    d: i64,
    hours: (i64, i64),
    subjects: (i64, i64),
    rows: i64,
) -> NewParquetFile {
    let id = uuid::Uuid::new_v4();
    NewParquetFile {
        stream,
        day: day(d),
        object_store_id: id,
        path: format!("default/s{stream}/{}/{id}.parquet", day(d)),
        min_time: at(d, hours.0),
        max_time: at(d, hours.1) - 1,
        min_subject: SubjectId(subjects.0),
        max_subject: SubjectId(subjects.1),
        row_count: rows,
        size_bytes: rows * 12 + 400,
        compaction_level: 0,
        ingest_batch: None,
    }
}

pub async fn default_org(catalog: &Arc<dyn Catalog>) -> OrgId {
    catalog.organizations().get(DEFAULT_ORG).await.unwrap().id
}

pub async fn stream_id(catalog: &Arc<dyn Catalog>, org: OrgId, name: &str) -> StreamId {
    catalog.streams().get(org, name).await.unwrap().id
}

pub async fn subject(catalog: &Arc<dyn Catalog>, org: OrgId, pseudonym: &str) -> SubjectId {
    catalog
        .subjects()
        .create(org, pseudonym, SubjectProfile::default())
        .await
        .unwrap()
        .id
}

/// Asserts that a result is the error described by the pattern, showing it otherwise.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err(e @ $pattern) => e,
            other => panic!(
                "expected {} but got {:?}",
                stringify!($pattern),
                other.map(|_| "a success")
            ),
        }
    };
}
pub(crate) use assert_err;
