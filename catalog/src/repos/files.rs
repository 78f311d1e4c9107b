use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::SqlCatalog;
use crate::{
    Backend, Error, Result,
    db::{DbError, Row, Tx, Value},
    interface::FileRepo,
    model::*,
    validate::{self, day_of},
};

macro_rules! file_columns {
    () => {
        "f.id, f.partition_id, p.stream_id, p.day, f.object_store_id, f.path, f.sequence, \
         f.min_time, f.max_time, f.min_subject, f.max_subject, f.row_count, f.size_bytes, \
         f.compaction_level, f.ingest_batch_id, f.created_at, f.to_delete_at"
    };
}

macro_rules! partition_query {
    ($filter:literal) => {
        concat!(
            "SELECT p.id, p.stream_id, p.day, p.last_sequence, p.created_at, \
             COUNT(f.id) AS live_files, \
             CAST(COALESCE(SUM(f.row_count), 0) AS BIGINT) AS live_rows, \
             CAST(COALESCE(SUM(f.size_bytes), 0) AS BIGINT) AS live_bytes \
             FROM partitions p \
             LEFT JOIN parquet_files f ON f.partition_id = p.id AND f.to_delete_at IS NULL \
             WHERE ",
            $filter,
            " GROUP BY p.id, p.stream_id, p.day, p.last_sequence, p.created_at ORDER BY p.day"
        )
    };
}

fn file(row: &Row) -> Result<ParquetFile> {
    Ok(ParquetFile {
        id: ParquetFileId(row.i64("id")?),
        partition: PartitionId(row.i64("partition_id")?),
        stream: StreamId(row.i64("stream_id")?),
        day: row.date("day")?,
        object_store_id: row.uuid("object_store_id")?,
        path: row.text("path")?,
        sequence: row.i64("sequence")?,
        min_time: row.i64("min_time")?,
        max_time: row.i64("max_time")?,
        min_subject: SubjectId(row.i64("min_subject")?),
        max_subject: SubjectId(row.i64("max_subject")?),
        row_count: row.i64("row_count")?,
        size_bytes: row.i64("size_bytes")?,
        compaction_level: row.i64("compaction_level")?,
        ingest_batch: row.opt_i64("ingest_batch_id")?.map(BatchId),
        created_at: row.timestamp("created_at")?,
        to_delete_at: row.opt_timestamp("to_delete_at")?,
    })
}

fn partition(row: &Row) -> Result<Partition> {
    Ok(Partition {
        id: PartitionId(row.i64("id")?),
        stream: StreamId(row.i64("stream_id")?),
        day: row.date("day")?,
        last_sequence: row.i64("last_sequence")?,
        live_files: row.i64("live_files")?,
        live_rows: row.i64("live_rows")?,
        live_bytes: row.i64("live_bytes")?,
        created_at: row.timestamp("created_at")?,
    })
}

async fn insert_file(
    tx: &mut dyn Tx,
    partition: PartitionId,
    sequence: i64,
    new: NewParquetFile,
) -> Result<ParquetFile> {
    let row = tx
        .query_one(
            "INSERT INTO parquet_files (partition_id, object_store_id, path, sequence, min_time, \
             max_time, min_subject, max_subject, row_count, size_bytes, compaction_level, \
             ingest_batch_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             RETURNING id, created_at",
            &[
                partition.0.into(),
                new.object_store_id.into(),
                new.path.as_str().into(),
                sequence.into(),
                new.min_time.into(),
                new.max_time.into(),
                new.min_subject.0.into(),
                new.max_subject.0.into(),
                new.row_count.into(),
                new.size_bytes.into(),
                new.compaction_level.into(),
                new.ingest_batch.map(|b| b.0).into(),
            ],
        )
        .await
        .map_err(|e| match (e, new.ingest_batch) {
            (DbError::ForeignKey(_), Some(batch)) => Error::not_found("ingest batch", batch),
            (e, _) => e.on("parquet file", &new.path),
        })?;
    Ok(ParquetFile {
        id: ParquetFileId(row.i64("id")?),
        partition,
        stream: new.stream,
        day: new.day,
        object_store_id: new.object_store_id,
        path: new.path,
        sequence,
        min_time: new.min_time,
        max_time: new.max_time,
        min_subject: new.min_subject,
        max_subject: new.max_subject,
        row_count: new.row_count,
        size_bytes: new.size_bytes,
        compaction_level: new.compaction_level,
        ingest_batch: new.ingest_batch,
        created_at: row.timestamp("created_at")?,
        to_delete_at: None,
    })
}

/// A JSON array parameter, expanded to rows by each dialect's own function.
fn json_list(items: &[String]) -> Value {
    Value::Json(items.iter().cloned().map(serde_json::Value::from).collect())
}

#[async_trait]
impl FileRepo for SqlCatalog {
    async fn commit(&self, files: Vec<NewParquetFile>) -> Result<Vec<ParquetFile>> {
        for f in &files {
            validate::parquet_file(f)?;
        }
        // Partitions are locked in (stream, day) order, so concurrent flushes that touch
        // several partitions cannot deadlock.
        let mut by_partition: BTreeMap<(StreamId, NaiveDate), Vec<NewParquetFile>> =
            BTreeMap::new();
        for f in files {
            by_partition.entry((f.stream, f.day)).or_default().push(f);
        }
        let mut tx = self.begin().await?;
        let mut committed = Vec::new();
        for ((stream, day), group) in by_partition {
            let count = group.len() as i64;
            let row = tx
                .query_one(
                    "INSERT INTO partitions (stream_id, day, last_sequence) VALUES ($1, $2, $3) \
                     ON CONFLICT (stream_id, day) \
                     DO UPDATE SET last_sequence = partitions.last_sequence + $3 \
                     RETURNING id, last_sequence",
                    &[stream.0.into(), day.into(), count.into()],
                )
                .await
                .map_err(|e| match e {
                    DbError::ForeignKey(_) => Error::not_found("stream", stream),
                    other => other.into(),
                })?;
            let partition = PartitionId(row.i64("id")?);
            let first_sequence = row.i64("last_sequence")? - count + 1;
            for (offset, f) in group.into_iter().enumerate() {
                committed.push(
                    insert_file(&mut *tx, partition, first_sequence + offset as i64, f).await?,
                );
            }
        }
        tx.commit().await?;
        Ok(committed)
    }

    async fn swap(
        &self,
        partition_id: PartitionId,
        replaced: &[ParquetFileId],
        new_files: Vec<NewParquetFile>,
        delete_at: DateTime<Utc>,
    ) -> Result<Vec<ParquetFile>> {
        if replaced.is_empty() {
            return Err(Error::invalid(
                "swap",
                "no files to replace; use commit to add files",
            ));
        }
        if replaced.iter().collect::<HashSet<_>>().len() != replaced.len() {
            return Err(Error::invalid("swap", "a file is listed twice"));
        }
        for f in &new_files {
            validate::parquet_file(f)?;
        }
        let mut tx = self.begin().await?;
        // Takes the partition's row lock: swaps and commits on this partition wait for us.
        let row = tx
            .query_opt(
                "UPDATE partitions SET last_sequence = last_sequence WHERE id = $1 \
                 RETURNING stream_id, day",
                &[partition_id.0.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("partition", partition_id))?;
        let (stream, day) = (StreamId(row.i64("stream_id")?), row.date("day")?);
        if let Some(stray) = new_files
            .iter()
            .find(|f| f.stream != stream || f.day != day)
        {
            return Err(Error::invalid(
                format!("parquet file {}", stray.path),
                format!(
                    "belongs to stream {} on {}, not to partition {partition_id}",
                    stray.stream, stray.day
                ),
            ));
        }
        let mut sequence = 0;
        for id in replaced {
            let row = tx
                .query_opt(
                    "UPDATE parquet_files SET to_delete_at = $2 \
                     WHERE id = $1 AND partition_id = $3 AND to_delete_at IS NULL \
                     RETURNING sequence",
                    &[id.0.into(), delete_at.into(), partition_id.0.into()],
                )
                .await?
                .ok_or_else(|| {
                    Error::Conflict(format!(
                        "parquet file {id} is no longer a live file of partition {partition_id}"
                    ))
                })?;
            sequence = sequence.max(row.i64("sequence")?);
        }
        let mut swapped_in = Vec::with_capacity(new_files.len());
        for f in new_files {
            swapped_in.push(insert_file(&mut *tx, partition_id, sequence, f).await?);
        }
        tx.commit().await?;
        Ok(swapped_in)
    }

    async fn live_files(&self, stream: StreamId, filter: FileFilter) -> Result<Vec<ParquetFile>> {
        let (start, end) = filter.time.unwrap_or((i64::MIN, i64::MAX));
        if start >= end {
            return Ok(Vec::new());
        }
        let (low, high) = filter
            .subjects
            .unwrap_or((SubjectId(i64::MIN), SubjectId(i64::MAX)));
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    file_columns!(),
                    " FROM parquet_files f JOIN partitions p ON p.id = f.partition_id \
                     WHERE p.stream_id = $1 AND f.to_delete_at IS NULL \
                     AND p.day >= $2 AND p.day <= $3 AND f.max_time >= $4 AND f.min_time < $5 \
                     AND f.max_subject >= $6 AND f.min_subject <= $7 \
                     ORDER BY p.day, f.sequence, f.id"
                ),
                &[
                    stream.0.into(),
                    day_of(start).into(),
                    day_of(end - 1).into(),
                    start.into(),
                    end.into(),
                    low.0.into(),
                    high.0.into(),
                ],
            )
            .await?
            .iter()
            .map(file)
            .collect()
    }

    async fn partitions(&self, stream: StreamId) -> Result<Vec<Partition>> {
        self.connection()
            .await?
            .query(partition_query!("p.stream_id = $1"), &[stream.0.into()])
            .await?
            .iter()
            .map(partition)
            .collect()
    }

    async fn partition(&self, stream: StreamId, day: NaiveDate) -> Result<Partition> {
        self.connection()
            .await?
            .query_opt(
                partition_query!("p.stream_id = $1 AND p.day = $2"),
                &[stream.0.into(), day.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found("partition", format!("{stream}/{day}")))
            .and_then(|row| partition(&row))
    }

    async fn due_for_deletion(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<ParquetFile>> {
        self.connection()
            .await?
            .query(
                concat!(
                    "SELECT ",
                    file_columns!(),
                    " FROM parquet_files f JOIN partitions p ON p.id = f.partition_id \
                     WHERE f.to_delete_at IS NOT NULL AND f.to_delete_at <= $1 \
                     ORDER BY f.to_delete_at, f.id LIMIT $2"
                ),
                &[now.into(), limit.into()],
            )
            .await?
            .iter()
            .map(file)
            .collect()
    }

    async fn forget(&self, files: &[ParquetFileId]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut forgotten = 0;
        for id in files {
            forgotten += tx
                .execute(
                    "DELETE FROM parquet_files WHERE id = $1 AND to_delete_at IS NOT NULL",
                    &[id.0.into()],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(forgotten)
    }

    async fn known_paths(&self, paths: &[String]) -> Result<Vec<String>> {
        let mut conn = self.connection().await?;
        let sql = match conn.backend() {
            Backend::Postgres => {
                "SELECT path FROM parquet_files \
                 WHERE path IN (SELECT jsonb_array_elements_text($1)) ORDER BY path"
            }
            Backend::Sqlite => {
                "SELECT path FROM parquet_files \
                 WHERE path IN (SELECT value FROM json_each($1)) ORDER BY path"
            }
        };
        conn.query(sql, &[json_list(paths)])
            .await?
            .iter()
            .map(|row| row.text("path"))
            .collect()
    }
}
