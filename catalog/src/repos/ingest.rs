use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlCatalog;
use crate::{
    Error, Result,
    db::{DbError, Row, Tx, Value},
    interface::IngestRepo,
    model::*,
    validate,
};

/// Quarantined rows per `INSERT`: one statement carries many rows (a failed import can reject
/// tens of thousands), with 8 parameters each well below both backends' limits (SQLite
/// 32 766, PostgreSQL 65 535).
const QUARANTINE_CHUNK: usize = 500;
const QUARANTINE_PARAMS: usize = 8;

macro_rules! batch_columns {
    () => {
        "id, org_id, source, format, status, rows_in, rows_accepted, rows_rejected, \
         rows_corrected, bytes, error, created_by, started_at, finished_at"
    };
}

fn batch(row: &Row) -> Result<IngestBatch> {
    Ok(IngestBatch {
        id: BatchId(row.i64("id")?),
        org: OrgId(row.i64("org_id")?),
        source: row.text("source")?,
        format: row.text("format")?,
        status: row.parsed("status")?,
        counts: BatchCounts {
            rows_in: row.i64("rows_in")?,
            rows_accepted: row.i64("rows_accepted")?,
            rows_rejected: row.i64("rows_rejected")?,
            rows_corrected: row.i64("rows_corrected")?,
        },
        bytes: row.i64("bytes")?,
        error: row.opt_text("error")?,
        created_by: row.opt_i64("created_by")?.map(UserId),
        started_at: row.timestamp("started_at")?,
        finished_at: row.opt_timestamp("finished_at")?,
    })
}

fn quality(row: &Row) -> Result<QualityReport> {
    Ok(QualityReport {
        stream: StreamId(row.i64("stream_id")?),
        column: row.text("column_name")?,
        rule: row.text("rule")?,
        rows_checked: row.i64("rows_checked")?,
        rows_corrected: row.i64("rows_corrected")?,
        rows_rejected: row.i64("rows_rejected")?,
        rows_flagged: row.i64("rows_flagged")?,
        completeness: row.opt_f64("completeness")?,
    })
}

fn quarantined(row: &Row) -> Result<QuarantinedRow> {
    Ok(QuarantinedRow {
        batch: BatchId(row.i64("batch_id")?),
        stream: row.opt_i64("stream_id")?.map(StreamId),
        file: row.text("file")?,
        record: row.opt_i64("record")?,
        column: row.opt_text("column_name")?,
        rule: row.text("rule")?,
        reason: row.text("reason")?,
        value: row.opt_text("value")?,
    })
}

/// `INSERT INTO quarantine … VALUES ($1, …, $8), ($9, …)` for `rows` rows.
fn subject_coverage(row: &Row) -> Result<SubjectCoverage> {
    Ok(SubjectCoverage {
        stream: StreamId(row.i64("stream_id")?),
        subject: SubjectId(row.i64("subject_id")?),
        first: row.timestamp("first_time")?,
        last: row.timestamp("last_time")?,
        rows: row.i64("rows")?,
    })
}

fn insert_quarantine_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO quarantine (batch_id, stream_id, file, record, column_name, rule, reason, \
         value) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..QUARANTINE_PARAMS {
            let separator = if column == 0 { "" } else { ", " };
            let _ = write!(sql, "{separator}${}", row * QUARANTINE_PARAMS + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// Checks, before anything is written, that every batch and stream the rows name exists and
/// that each stream belongs to the organization of its row's batch, naming the first that
/// does not.
async fn check_quarantine_references(tx: &mut dyn Tx, rows: &[QuarantinedRow]) -> Result<()> {
    let refuse = |reason: String| Error::invalid("quarantined row", reason);
    let mut batch_orgs = BTreeMap::new();
    for batch in rows.iter().map(|r| r.batch).collect::<BTreeSet<_>>() {
        let row = tx
            .query_opt(
                "SELECT org_id FROM ingest_batches WHERE id = $1",
                &[batch.0.into()],
            )
            .await?
            .ok_or_else(|| refuse(format!("ingest batch {batch} does not exist")))?;
        batch_orgs.insert(batch, row.i64("org_id")?);
    }
    let mut stream_orgs = BTreeMap::new();
    for stream in rows
        .iter()
        .filter_map(|r| r.stream)
        .collect::<BTreeSet<_>>()
    {
        let row = tx
            .query_opt(
                "SELECT org_id FROM streams WHERE id = $1",
                &[stream.0.into()],
            )
            .await?
            .ok_or_else(|| refuse(format!("stream {stream} does not exist")))?;
        // Templates (no organization) are nobody's stream.
        stream_orgs.insert(stream, row.opt_i64("org_id")?);
    }
    for row in rows {
        if let Some(stream) = row.stream
            && stream_orgs[&stream] != Some(batch_orgs[&row.batch])
        {
            return Err(refuse(format!(
                "stream {stream} is not a stream of the organization of ingest batch {}",
                row.batch
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl IngestRepo for SqlCatalog {
    async fn begin_batch(&self, new: NewBatch, started_at: DateTime<Utc>) -> Result<IngestBatch> {
        validate::non_empty("batch source", &new.source)?;
        validate::non_empty("batch format", &new.format)?;
        if new.bytes < 0 {
            return Err(Error::invalid("batch size", "cannot be negative"));
        }
        let mut tx = self.begin().await?;
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO ingest_batches (org_id, source, format, status, bytes, created_by, \
                     started_at) VALUES ($1, $2, $3, 'running', $4, $5, $6) RETURNING ",
                    batch_columns!()
                ),
                &[
                    new.org.0.into(),
                    new.source.as_str().into(),
                    new.format.into(),
                    new.bytes.into(),
                    new.created_by.map(|u| u.0).into(),
                    started_at.into(),
                ],
            )
            .await
            .map_err(|e| e.on("ingest batch", &new.source))?;
        tx.commit().await?;
        batch(&row)
    }

    async fn finish_batch(
        &self,
        id: BatchId,
        status: BatchStatus,
        counts: BatchCounts,
        error: Option<String>,
        finished_at: DateTime<Utc>,
    ) -> Result<IngestBatch> {
        if status == BatchStatus::Running {
            return Err(Error::invalid(
                "batch status",
                "a batch finishes as committed or failed",
            ));
        }
        validate::batch_counts(&counts)?;
        let mut tx = self.begin().await?;
        let row = tx
            .query_opt(
                concat!(
                    "UPDATE ingest_batches SET status = $2, rows_in = $3, rows_accepted = $4, \
                     rows_rejected = $5, rows_corrected = $6, error = $7, finished_at = $8 \
                     WHERE id = $1 AND status = 'running' RETURNING ",
                    batch_columns!()
                ),
                &[
                    id.0.into(),
                    status.as_str().into(),
                    counts.rows_in.into(),
                    counts.rows_accepted.into(),
                    counts.rows_rejected.into(),
                    counts.rows_corrected.into(),
                    error.into(),
                    finished_at.into(),
                ],
            )
            .await?;
        let Some(row) = row else {
            let current = tx
                .query_opt(
                    "SELECT status FROM ingest_batches WHERE id = $1",
                    &[id.0.into()],
                )
                .await?;
            return Err(match current {
                Some(row) => Error::Conflict(format!(
                    "ingest batch {id} already finished as {}",
                    row.text("status")?
                )),
                None => Error::not_found("ingest batch", id),
            });
        };
        tx.commit().await?;
        batch(&row)
    }

    async fn get_batch(&self, id: BatchId) -> Result<IngestBatch> {
        self.connection()
            .await?
            .query_opt(
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    " FROM ingest_batches WHERE id = $1"
                ),
                &[id.0.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("ingest batch", id))
            .and_then(|row| batch(&row))
    }

    async fn list_batches(&self, org: OrgId, limit: i64) -> Result<Vec<IngestBatch>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    " FROM ingest_batches WHERE org_id = $1 \
                     ORDER BY started_at DESC, id DESC LIMIT $2"
                ),
                &[org.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(batch)
            .collect()
    }

    async fn record_quality(&self, batch: BatchId, reports: Vec<QualityReport>) -> Result<()> {
        for report in &reports {
            validate::quality_report(report)?;
        }
        let mut tx = self.begin().await?;
        for r in reports {
            // Reports for the same rule add up (a batch is cleaned in chunks); completeness
            // is averaged by the rows each report checked.
            tx.execute(
                "INSERT INTO quality_reports (batch_id, stream_id, column_name, rule, rows_checked, \
                 rows_corrected, rows_rejected, rows_flagged, completeness) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (batch_id, stream_id, column_name, rule) DO UPDATE SET \
                 rows_checked = quality_reports.rows_checked + excluded.rows_checked, \
                 rows_corrected = quality_reports.rows_corrected + excluded.rows_corrected, \
                 rows_rejected = quality_reports.rows_rejected + excluded.rows_rejected, \
                 rows_flagged = quality_reports.rows_flagged + excluded.rows_flagged, \
                 completeness = CASE \
                   WHEN quality_reports.completeness IS NULL THEN excluded.completeness \
                   WHEN excluded.completeness IS NULL THEN quality_reports.completeness \
                   WHEN quality_reports.rows_checked + excluded.rows_checked = 0 THEN excluded.completeness \
                   ELSE (quality_reports.completeness * quality_reports.rows_checked \
                         + excluded.completeness * excluded.rows_checked) \
                        / (quality_reports.rows_checked + excluded.rows_checked) END",
                &[
                    batch.0.into(),
                    r.stream.0.into(),
                    r.column.as_str().into(),
                    r.rule.as_str().into(),
                    r.rows_checked.into(),
                    r.rows_corrected.into(),
                    r.rows_rejected.into(),
                    r.rows_flagged.into(),
                    r.completeness.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                DbError::ForeignKey(_) => Error::invalid(
                    "quality report",
                    format!("batch {batch} or stream {} does not exist", r.stream),
                ),
                other => other.on("quality report", format!("{}/{}", r.column, r.rule)),
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn quality_reports(&self, batch: BatchId) -> Result<Vec<QualityReport>> {
        self.connection()
            .await?
            .query(
                "SELECT stream_id, column_name, rule, rows_checked, rows_corrected, rows_rejected, \
                 rows_flagged, completeness FROM quality_reports WHERE batch_id = $1 \
                 ORDER BY stream_id, column_name, rule",
                &[batch.0.into()],
            )
            .await?
            .iter()
            .map(quality)
            .collect()
    }

    async fn org_quality_reports(
        &self,
        org: OrgId,
        limit: i64,
    ) -> Result<Vec<(BatchId, QualityReport)>> {
        self.connection()
            .await?
            .query(
                "SELECT q.batch_id, q.stream_id, q.column_name, q.rule, q.rows_checked, \
                 q.rows_corrected, q.rows_rejected, q.rows_flagged, q.completeness \
                 FROM quality_reports q JOIN ingest_batches b ON b.id = q.batch_id \
                 WHERE b.org_id = $1 \
                 ORDER BY b.started_at DESC, q.batch_id DESC, q.stream_id, q.column_name, q.rule \
                 LIMIT $2",
                &[org.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(|row| Ok((BatchId(row.i64("batch_id")?), quality(row)?)))
            .collect()
    }

    async fn record_coverage(&self, batch: BatchId, coverage: Vec<SubjectCoverage>) -> Result<()> {
        for c in &coverage {
            if c.rows <= 0 || c.first > c.last {
                return Err(Error::invalid(
                    format!("coverage of subject {} in stream {}", c.subject, c.stream),
                    "it needs rows > 0 and first ≤ last",
                ));
            }
        }
        let mut tx = self.begin().await?;
        for c in coverage {
            tx.execute(
                "INSERT INTO ingest_coverage (batch_id, stream_id, subject_id, first_time, \
                 last_time, rows) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (batch_id, stream_id, subject_id) DO UPDATE SET \
                 first_time = CASE WHEN excluded.first_time < ingest_coverage.first_time \
                   THEN excluded.first_time ELSE ingest_coverage.first_time END, \
                 last_time = CASE WHEN excluded.last_time > ingest_coverage.last_time \
                   THEN excluded.last_time ELSE ingest_coverage.last_time END, \
                 rows = ingest_coverage.rows + excluded.rows",
                &[
                    batch.0.into(),
                    c.stream.0.into(),
                    c.subject.0.into(),
                    c.first.into(),
                    c.last.into(),
                    c.rows.into(),
                ],
            )
            .await
            .map_err(|e| match e {
                DbError::ForeignKey(_) => Error::invalid(
                    "coverage",
                    format!(
                        "batch {batch}, stream {} or subject {} does not exist",
                        c.stream, c.subject
                    ),
                ),
                other => other.on("coverage", format!("{}/{}", c.stream, c.subject)),
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn coverage(&self, batch: BatchId) -> Result<Vec<SubjectCoverage>> {
        self.connection()
            .await?
            .query(
                "SELECT stream_id, subject_id, first_time, last_time, rows FROM ingest_coverage \
                 WHERE batch_id = $1 ORDER BY stream_id, subject_id",
                &[batch.0.into()],
            )
            .await?
            .iter()
            .map(subject_coverage)
            .collect()
    }

    async fn org_coverage(
        &self,
        org: OrgId,
        limit: i64,
    ) -> Result<Vec<(BatchId, SubjectCoverage)>> {
        validate::limit(limit)?;
        self.connection()
            .await?
            .query(
                "SELECT c.batch_id, c.stream_id, c.subject_id, c.first_time, c.last_time, c.rows \
                 FROM ingest_coverage c JOIN ingest_batches b ON b.id = c.batch_id \
                 WHERE b.org_id = $1 \
                 ORDER BY b.started_at DESC, c.batch_id DESC, c.stream_id, c.subject_id LIMIT $2",
                &[org.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(|row| Ok((BatchId(row.i64("batch_id")?), subject_coverage(row)?)))
            .collect()
    }

    async fn quarantine(&self, rows: Vec<QuarantinedRow>) -> Result<()> {
        let rows = rows
            .into_iter()
            .map(validate::quarantined_row)
            .collect::<Result<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        check_quarantine_references(tx.as_mut(), &rows).await?;
        let full_chunk = insert_quarantine_sql(QUARANTINE_CHUNK);
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut params = Vec::with_capacity(QUARANTINE_CHUNK * QUARANTINE_PARAMS);
            let mut first = None;
            for r in rows.by_ref().take(QUARANTINE_CHUNK) {
                if first.is_none() {
                    first = Some(match r.record {
                        Some(record) => format!("{}:{record}", r.file),
                        None => r.file.clone(),
                    });
                }
                params.extend([
                    Value::from(r.batch.0),
                    r.stream.map(|s| s.0).into(),
                    r.file.into(),
                    r.record.into(),
                    r.column.into(),
                    r.rule.into(),
                    r.reason.into(),
                    r.value.into(),
                ]);
            }
            let count = params.len() / QUARANTINE_PARAMS;
            let partial;
            let sql = if count == QUARANTINE_CHUNK {
                &full_chunk
            } else {
                partial = insert_quarantine_sql(count);
                &partial
            };
            tx.execute(sql, &params).await.map_err(|e| match e {
                // Checked above; only a batch or stream deleted meanwhile gets here.
                DbError::ForeignKey(_) => Error::invalid(
                    "quarantined row",
                    "its ingest batch or stream no longer exists",
                ),
                other => other.on("quarantined row", first.unwrap_or_default()),
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn quarantined(&self, batch: BatchId, limit: i64) -> Result<Vec<QuarantinedRow>> {
        validate::limit(limit)?;
        self.connection()
            .await?
            .query(
                "SELECT batch_id, stream_id, file, record, column_name, rule, reason, value \
                 FROM quarantine WHERE batch_id = $1 ORDER BY id LIMIT $2",
                &[batch.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(quarantined)
            .collect()
    }

    async fn org_quarantine(&self, org: OrgId, limit: i64) -> Result<Vec<QuarantinedRow>> {
        validate::limit(limit)?;
        self.connection()
            .await?
            .query(
                "SELECT q.batch_id, q.stream_id, q.file, q.record, q.column_name, q.rule, \
                 q.reason, q.value \
                 FROM quarantine q JOIN ingest_batches b ON b.id = q.batch_id \
                 WHERE b.org_id = $1 \
                 ORDER BY b.started_at DESC, q.batch_id DESC, q.id \
                 LIMIT $2",
                &[org.0.into(), limit.into()],
            )
            .await?
            .iter()
            .map(quarantined)
            .collect()
    }
}
