//! [`Densities`]: how many readings a rollup row stands for, per stream and width.
//!
//! A rollup pays only when its rows are much fewer than the raw rows: a rollup row carries
//! a dozen columns and goes through a hash aggregation, where a raw row goes through the
//! aggregation kernel. A heart-rate stream read once a minute has about one reading per
//! minute bucket, so its minute rollup is larger and slower to aggregate than the rows it
//! summarizes, while its hour rollup is 60 times smaller. The rollup rule asks these
//! figures before choosing a width.
//!
//! Compaction records the exact counts of every file it writes. A stream compacted before
//! this process started is measured once, on its first query, from the footers of the
//! rollups of its largest compacted file.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use catalog::{FileFilter, ParquetFile, StreamId};
use futures::future::join_all;
use object_store::{GetOptions, GetRange, ObjectStore, path::Path};
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};

use super::Width;
use crate::{Result, store::rollup_path};

/// Below this many readings per rollup row, aggregating the raw rows is faster. Measured on
/// the workload benchmark (scale s): about one reading per bucket made the minute rollup
/// 2.7× slower than the raw rows; 55 made the hour rollup 2.6× faster. Break-even lies near
/// 2.4; the margin covers streams whose readings cluster unevenly.
const MIN_READINGS_PER_ROW: f64 = 4.0;

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    readings: u64,
    rollup_rows: u64,
}

/// Readings and rollup rows seen so far, per stream and width.
#[derive(Debug, Default)]
pub(crate) struct Densities {
    tallies: Mutex<HashMap<(StreamId, Width), Tally>>,
    /// Streams whose stored files were measured or found to have no rollups.
    measured: Mutex<HashSet<StreamId>>,
}

impl Densities {
    /// Counts a data file of `readings` rows whose rollup at each width has the given rows.
    pub(crate) fn record(&self, stream: StreamId, readings: u64, rollups: &[(Width, u64)]) {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        for &(width, rows) in rollups {
            let tally = tallies.entry((stream, width)).or_default();
            tally.readings += readings;
            tally.rollup_rows += rows;
        }
    }

    /// Readings per rollup row of `stream` at `width`; `None` while nothing is known.
    fn readings_per_row(&self, stream: StreamId, width: Width) -> Option<f64> {
        let tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let tally = tallies.get(&(stream, width))?;
        (tally.rollup_rows > 0).then(|| tally.readings as f64 / tally.rollup_rows as f64)
    }

    /// Whether a rollup of `stream` at `width` is worth reading instead of the raw rows;
    /// taken to be while nothing is known.
    pub(crate) fn worth_reading(&self, stream: StreamId, width: Width) -> bool {
        self.readings_per_row(stream, width)
            .is_none_or(|density| density >= MIN_READINGS_PER_ROW)
    }

    /// Measures each stream not yet known from the rollup footers of its largest compacted
    /// file: a few small reads, once per stream and process.
    pub(crate) async fn measure(
        &self,
        catalog: &dyn catalog::Catalog,
        store: &Arc<dyn ObjectStore>,
        streams: &[StreamId],
    ) -> Result<()> {
        for &stream in streams {
            if !self
                .measured
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(stream)
            {
                continue;
            }
            let already_known = Width::ALL
                .iter()
                .any(|&w| self.readings_per_row(stream, w).is_some());
            if already_known {
                continue;
            }
            let files = match catalog
                .files()
                .live_files(stream, FileFilter::default())
                .await
            {
                Ok(files) => files,
                Err(error) => {
                    // Measured again by the next query.
                    self.measured
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&stream);
                    return Err(error.into());
                }
            };
            let Some(largest) = files
                .iter()
                .filter(|f| f.compaction_level > 0)
                .max_by_key(|f| f.row_count)
            else {
                continue;
            };
            let rollups = rollup_rows(store, largest).await;
            if !rollups.is_empty() {
                self.record(stream, largest.row_count.max(0) as u64, &rollups);
            }
        }
        Ok(())
    }
}

/// The rows of each rollup of `file` whose footer could be read; a file compacted before
/// rollups existed has none.
async fn rollup_rows(store: &Arc<dyn ObjectStore>, file: &ParquetFile) -> Vec<(Width, u64)> {
    let footers = Width::ALL.map(|width| async move {
        let rows = stored_rows(store.as_ref(), &rollup_path(&file.path, width)).await?;
        Some((width, rows))
    });
    join_all(footers).await.into_iter().flatten().collect()
}

/// The row count in the footer of the Parquet file at `path`, read with one ranged request
/// (two when the footer is longer than the first guess).
async fn stored_rows(store: &dyn ObjectStore, path: &Path) -> Option<u64> {
    const FOOTER_GUESS: usize = 64 * 1024;
    const TAIL: usize = 8;
    let mut suffix = FOOTER_GUESS;
    loop {
        let options = GetOptions {
            range: Some(GetRange::Suffix(suffix as u64)),
            ..GetOptions::default()
        };
        let bytes = store
            .get_opts(path, options)
            .await
            .ok()?
            .bytes()
            .await
            .ok()?;
        let tail: &[u8; TAIL] = bytes
            .get(bytes.len().checked_sub(TAIL)?..)?
            .try_into()
            .ok()?;
        let needed = FooterTail::try_new(tail).ok()?.metadata_length() + TAIL;
        if needed <= bytes.len() {
            let metadata = &bytes[bytes.len() - needed..bytes.len() - TAIL];
            let decoded = ParquetMetaDataReader::decode_metadata(metadata).ok()?;
            return u64::try_from(decoded.file_metadata().num_rows()).ok();
        }
        if bytes.len() < suffix {
            return None;
        }
        suffix = needed;
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    #[test]
    fn density_is_readings_over_rollup_rows_summed_over_files() {
        let densities = Densities::default();
        let stream = StreamId(7);
        assert_eq!(densities.readings_per_row(stream, Width::Hour), None);
        assert!(densities.worth_reading(stream, Width::Minute));

        densities.record(stream, 1_000, &[(Width::Minute, 900), (Width::Hour, 20)]);
        densities.record(stream, 3_000, &[(Width::Minute, 2_700), (Width::Hour, 60)]);
        let hour = densities.readings_per_row(stream, Width::Hour);
        assert_eq!(hour, Some(50.0));
        assert!(densities.worth_reading(stream, Width::Hour));
        assert!(!densities.worth_reading(stream, Width::Minute));
        assert_eq!(densities.readings_per_row(stream, Width::Day), None);
        assert_eq!(densities.readings_per_row(StreamId(8), Width::Hour), None);
    }

    fn parquet_of(rows: i64, rows_per_group: usize) -> Vec<u8> {
        use arrow::{array::Int64Array, record_batch::RecordBatch};
        let batch = RecordBatch::try_from_iter([(
            "value",
            Arc::new(Int64Array::from_iter_values(0..rows)) as _,
        )])
        .unwrap();
        let properties = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows_per_group))
            .build();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties))
                .unwrap();
        // The writer recurses once per row group of a batch: hand it one group at a time.
        for start in (0..batch.num_rows()).step_by(rows_per_group) {
            let length = rows_per_group.min(batch.num_rows() - start);
            writer.write(&batch.slice(start, length)).unwrap();
        }
        writer.into_inner().unwrap()
    }

    #[tokio::test]
    async fn row_counts_come_from_footers_short_and_long() {
        let store = object_store::memory::InMemory::new();
        let short = Path::from("short.parquet");
        let long = Path::from("long.parquet");
        let broken = Path::from("broken.parquet");
        store
            .put(&short, parquet_of(10, 1024).into())
            .await
            .unwrap();
        // One row group per row: a footer far longer than the first 64 KiB guess.
        let bytes = parquet_of(1_500, 1);
        let tail = &bytes[bytes.len() - 8..bytes.len() - 4];
        let footer = u32::from_le_bytes(tail.try_into().unwrap());
        assert!(footer > 64 * 1024, "footer of {footer} bytes");
        store.put(&long, bytes.into()).await.unwrap();
        store
            .put(&broken, b"not parquet".to_vec().into())
            .await
            .unwrap();

        assert_eq!(stored_rows(&store, &short).await, Some(10));
        assert_eq!(stored_rows(&store, &long).await, Some(1_500));
        assert_eq!(stored_rows(&store, &broken).await, None);
        assert_eq!(stored_rows(&store, &Path::from("missing")).await, None);
    }

    #[test]
    fn an_empty_rollup_says_nothing() {
        let densities = Densities::default();
        densities.record(StreamId(1), 0, &[(Width::Day, 0)]);
        assert_eq!(densities.readings_per_row(StreamId(1), Width::Day), None);
        assert!(densities.worth_reading(StreamId(1), Width::Day));
    }
}
