//! How the engine lays out a Parquet file: rows sorted by the stream's sort key; zstd;
//! dictionary-encoded keys and values, delta-encoded times; page-level statistics and the
//! page index, so a query for one subject and one hour reads a few pages; a bloom filter on
//! `subject_id`; and key-value metadata recording the stream, its schema version and the
//! sort order.

use arrow::{
    array::{AsArray, RecordBatch},
    compute::{max, min},
    datatypes::{Int64Type, TimestampNanosecondType},
};
use catalog::{BatchId, NewParquetFile, SubjectId};
use chrono::NaiveDate;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, Encoding, ZstdLevel},
    file::{
        metadata::{KeyValue, SortingColumn},
        properties::{EnabledStatistics, WriterProperties, WriterVersion},
    },
    schema::types::ColumnPath,
};

use crate::{
    Error, Result,
    rollup::{EncodedRollup, FileRollups},
    schema::{END_TIME, SUBJECT_ID, StreamSchema, TIME},
    sort, store,
};

pub(crate) const STREAM_KEY: &str = "healthai.stream";
pub(crate) const SCHEMA_VERSION_KEY: &str = "healthai.schema_version";
pub(crate) const SORT_ORDER_KEY: &str = "healthai.sort_order";

/// Rows per row group: large enough for fast scans, small enough that row-group statistics
/// prune.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page: the page index then narrows a single-subject read to a few pages.
const PAGE_ROWS: usize = 8 * 1024;

/// A file being encoded: rows arrive sorted and de-duplicated, in one or many batches, and
/// the writer keeps the ranges the catalog records. Fresh files (level 0) favour write speed,
/// compacted ones (level 1) size.
pub(crate) struct FileWriter {
    writer: ArrowWriter<Vec<u8>>,
    stream: String,
    time: usize,
    subject: usize,
    rows: usize,
    min_time: i64,
    max_time: i64,
    first_subject: Option<i64>,
    last_subject: Option<i64>,
    /// Compacted files carry their rollups.
    rollups: Option<FileRollups>,
}

/// An encoded file and what the catalog records of it.
pub(crate) struct EncodedFile {
    pub day: NaiveDate,
    pub bytes: Vec<u8>,
    pub rows: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub min_subject: i64,
    pub max_subject: i64,
    /// The file's rollups, encoded, for a compacted file.
    pub rollups: Vec<EncodedRollup>,
}

impl FileWriter {
    pub(crate) fn new(
        schema: &StreamSchema,
        compaction_level: i64,
        rows_hint: usize,
    ) -> Result<Self> {
        let zstd = if compaction_level == 0 { 1 } else { 3 };
        let writer = ArrowWriter::try_new(
            Vec::new(),
            schema.arrow_schema().clone(),
            Some(properties(schema, zstd, rows_hint)),
        )
        .map_err(|source| encode_error(schema.name(), source))?;
        Ok(FileWriter {
            writer,
            stream: schema.name().to_owned(),
            time: schema.index_of(TIME),
            subject: schema.index_of(SUBJECT_ID),
            rows: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
            first_subject: None,
            last_subject: None,
            rollups: (compaction_level > 0).then(|| FileRollups::new(schema)),
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = batch
            .column(self.time)
            .as_primitive::<TimestampNanosecondType>();
        self.min_time = self.min_time.min(min(times).unwrap_or(i64::MAX));
        self.max_time = self.max_time.max(max(times).unwrap_or(i64::MIN));
        let subjects = batch.column(self.subject).as_primitive::<Int64Type>();
        // Rows are sorted by subject first: the first and last rows bound the file.
        self.first_subject.get_or_insert(subjects.value(0));
        self.last_subject = Some(subjects.value(subjects.len() - 1));
        self.rows += batch.num_rows();
        if let Some(rollups) = &mut self.rollups {
            rollups.push(batch)?;
        }
        self.writer
            .write(batch)
            .map_err(|source| encode_error(&self.stream, source))
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn last_subject(&self) -> Option<i64> {
        self.last_subject
    }

    pub(crate) fn finish(self) -> Result<EncodedFile> {
        let bytes = self
            .writer
            .into_inner()
            .map_err(|source| encode_error(&self.stream, source))?;
        Ok(EncodedFile {
            day: sort::day_date(sort::day_number(self.min_time)),
            bytes,
            rows: self.rows as i64,
            min_time: self.min_time,
            max_time: self.max_time,
            min_subject: self.first_subject.unwrap_or_default(),
            max_subject: self.last_subject.unwrap_or_default(),
            rollups: self
                .rollups
                .map(FileRollups::finish)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

fn encode_error(stream: &str, source: parquet::errors::ParquetError) -> Error {
    Error::Parquet {
        path: format!("(new file of stream {stream})"),
        source,
    }
}

/// Puts an encoded file in the store, at its place in the layout, with its rollups beside it,
/// and describes it for the catalog.
pub(crate) async fn put(
    store: &dyn ObjectStore,
    schema: &StreamSchema,
    file: EncodedFile,
    compaction_level: i64,
    ingest_batch: Option<BatchId>,
) -> Result<NewParquetFile> {
    let object_store_id = uuid::Uuid::new_v4();
    let path = store::file_path(&schema.org_name, schema.name(), file.day, object_store_id);
    let size = file.bytes.len() as i64;
    for rollup in file.rollups {
        let bytes = rollup.bytes;
        let rollup = store::rollup_path(path.as_ref(), rollup.width);
        store
            .put(&rollup, bytes.into())
            .await
            .map_err(|e| Error::store("put", &rollup, e))?;
    }
    store
        .put(&path, file.bytes.into())
        .await
        .map_err(|e| Error::store("put", &path, e))?;
    Ok(NewParquetFile {
        stream: schema.id(),
        day: file.day,
        object_store_id,
        path: path.to_string(),
        min_time: file.min_time,
        max_time: file.max_time,
        min_subject: SubjectId(file.min_subject),
        max_subject: SubjectId(file.max_subject),
        row_count: file.rows,
        size_bytes: size,
        compaction_level,
        ingest_batch,
    })
}

fn properties(schema: &StreamSchema, zstd_level: i32, rows: usize) -> WriterProperties {
    let sorting = schema
        .sort_key()
        .iter()
        .map(|&i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let metadata = vec![
        KeyValue::new(STREAM_KEY.to_owned(), schema.name().to_owned()),
        KeyValue::new(
            SCHEMA_VERSION_KEY.to_owned(),
            schema.stream.schema_version.to_string(),
        ),
        KeyValue::new(SORT_ORDER_KEY.to_owned(), schema.sort_key_names().join(",")),
    ];
    let mut builder = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).expect("1 and 3 are valid zstd levels"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(metadata))
        .set_column_bloom_filter_fpp(ColumnPath::from(SUBJECT_ID), 0.01)
        .set_column_bloom_filter_max_ndv(
            ColumnPath::from(SUBJECT_ID),
            rows.clamp(1, 100_000) as u64,
        );
    for time in [TIME, END_TIME] {
        if schema.arrow_schema().column_with_name(time).is_some() {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(time), false)
                .set_column_encoding(ColumnPath::from(time), Encoding::DELTA_BINARY_PACKED);
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use bytes::Bytes;
    use parquet::{
        arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder},
        file::metadata::PageIndexPolicy,
    };

    use super::*;

    #[test]
    fn files_record_the_stream_and_their_order_and_read_back() {
        let schema = crate::schema::testing::heart_rate();
        let n = 20_000;
        let batch = RecordBatch::try_new(
            schema.arrow_schema().clone(),
            vec![
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i / 1000))),
                Arc::new(StringArray::from_iter_values((0..n).map(|_| "watch"))),
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    (0..n).map(|i| i * 1_000_000_000),
                )),
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| 60.0 + (i % 40) as f64),
                )),
            ],
        )
        .unwrap();
        let mut writer = FileWriter::new(&schema, 0, batch.num_rows()).unwrap();
        writer.write(&batch.slice(0, 5_000)).unwrap();
        writer.write(&batch.slice(5_000, 15_000)).unwrap();
        let file = writer.finish().unwrap();
        assert_eq!(
            (file.rows, file.min_subject, file.max_subject),
            (20_000, 0, 19)
        );
        assert_eq!((file.min_time, file.max_time), (0, 19_999_000_000_000));
        let bytes = Bytes::from(file.bytes);

        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let metadata = reader.metadata().clone();
        let kv: Vec<_> = metadata
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .filter(|kv| kv.key.starts_with("healthai."))
            .map(|kv| (kv.key.as_str(), kv.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(
            kv,
            [
                ("healthai.stream", "heart_rate"),
                ("healthai.schema_version", "1"),
                ("healthai.sort_order", "subject_id,time,source")
            ]
        );
        let row_group = metadata.row_group(0);
        assert_eq!(row_group.sorting_columns().unwrap().len(), 3);
        let time = row_group.column(2);
        assert!(time.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED));
        assert!(row_group.column(0).bloom_filter_offset().is_some());
        let indexed = ParquetRecordBatchReaderBuilder::try_new_with_options(
            bytes.clone(),
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
        )
        .unwrap();
        let time_pages = indexed.metadata().offset_index().unwrap()[0][2]
            .page_locations()
            .len();
        assert!(time_pages >= 3, "{time_pages} pages for 20 000 rows");
        let read: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &read).unwrap(),
            batch
        );
    }
}
