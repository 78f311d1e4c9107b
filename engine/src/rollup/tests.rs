use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};

use super::*;
use crate::schema::testing::heart_rate;

const MINUTE: i64 = 60_000_000_000;

fn readings(rows: &[(i64, i64, Option<f64>)]) -> RecordBatch {
    let schema = heart_rate();
    RecordBatch::try_new(
        schema.arrow_schema().clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "watch"))),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch.column(batch.schema().index_of(name).unwrap())
}

#[test]
fn rows_roll_up_per_subject_and_bucket_across_batches() {
    let schema = heart_rate();
    let mut builder = RollupBuilder::new(&schema, Width::Minute);
    builder
        .push(&readings(&[
            (1, 0, Some(60.0)),
            (1, 20 * 1_000_000_000, None),
            (1, 40 * 1_000_000_000, Some(70.0)),
        ]))
        .unwrap();
    // The open group goes on in the next batch.
    builder
        .push(&readings(&[
            (1, 50 * 1_000_000_000, Some(65.0)),
            (1, MINUTE, Some(80.0)),
            (2, 0, None),
        ]))
        .unwrap();
    let batch = builder.take(true).unwrap();
    assert_eq!(batch.num_rows(), 3);
    let ints = |name| {
        column(&batch, name)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    };
    let floats = |name: &str| {
        column(&batch, name)
            .as_primitive::<Float64Type>()
            .iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(ints("subject_id"), [1, 1, 2]);
    assert_eq!(ints("rows"), [4, 1, 1]);
    assert_eq!(ints("bpm__count"), [3, 1, 0]);
    assert_eq!(floats("bpm__sum"), [Some(195.0), Some(80.0), None]);
    assert_eq!(floats("bpm__min"), [Some(60.0), Some(80.0), None]);
    assert_eq!(floats("bpm__max"), [Some(70.0), Some(80.0), None]);
    assert_eq!(floats("bpm__first"), [Some(60.0), Some(80.0), None]);
    assert_eq!(floats("bpm__last"), [Some(65.0), Some(80.0), None]);
    assert_eq!(
        floats("bpm__sumsq"),
        [Some(3600.0 + 4900.0 + 4225.0), Some(6400.0), None]
    );
    let times = column(&batch, "time").as_primitive::<TimestampNanosecondType>();
    assert_eq!(times.values().to_vec(), [0, MINUTE, 0]);
    let last = column(&batch, "last_time").as_primitive::<TimestampNanosecondType>();
    assert_eq!(last.value(0), 50 * 1_000_000_000);
    let sketches = column(&batch, "bpm__sketch").as_binary::<i32>();
    let sketch = Sketch::decode(sketches.value(0)).unwrap();
    assert_eq!(sketch.count(), 3);
    assert!(sketches.is_null(2));
}

#[test]
fn unsorted_input_gives_partial_rows_that_add_up() {
    let schema = heart_rate();
    let mut builder = RollupBuilder::new(&schema, Width::Hour);
    builder
        .push(&readings(&[
            (1, 3 * MINUTE, Some(61.0)),
            (2, 0, Some(50.0)),
            (1, MINUTE, Some(59.0)),
        ]))
        .unwrap();
    let batch = builder.take(true).unwrap();
    let subjects = column(&batch, "subject_id").as_primitive::<Int64Type>();
    assert_eq!(subjects.values().to_vec(), [1, 2, 1]);
    let rows = column(&batch, "rows").as_primitive::<Int64Type>();
    assert_eq!(rows.values().iter().sum::<i64>(), 3);
}

#[test]
fn buckets_are_aligned_on_the_epoch_also_before_it() {
    assert_eq!(Width::Hour.bucket(-1), -Width::Hour.nanos());
    assert_eq!(
        Width::Day.bucket(Width::Day.nanos() + 5),
        Width::Day.nanos()
    );
    assert_eq!(Width::Minute.bucket(0), 0);
}

#[test]
fn every_width_is_encoded_as_parquet() {
    let schema = heart_rate();
    let mut rollups = FileRollups::new(&schema);
    rollups
        .push(&readings(&[
            (1, 0, Some(60.0)),
            (1, 2 * MINUTE, Some(62.0)),
        ]))
        .unwrap();
    let files = rollups.finish().unwrap();
    assert_eq!(
        files.iter().map(|f| (f.width, f.rows)).collect::<Vec<_>>(),
        [(Width::Minute, 2), (Width::Hour, 1), (Width::Day, 1)]
    );
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(files[0].bytes.clone()),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);
}
