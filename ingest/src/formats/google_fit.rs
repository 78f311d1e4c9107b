//! Google Fit's daily activity files from Google Takeout
//! (`Takeout/Fit/Daily activity metrics/2020-01-01.csv`): one file per day, named after it,
//! one row per 15 minutes, with a header such as `Start time,End time,Move Minutes count,
//! Calories (kcal),Distance (m),…` (a column only when the account has such data).
//!
//! | column | stream.column |
//! |---|---|
//! | `Step count` | steps.count, `Start time` to `End time` |
//! | `Average heart rate (bpm)` | heart_rate.bpm at `Start time` |
//! | `Average weight (kg)` | body.weight_kg at `Start time` |
//!
//! The average heart rate of a quarter-hour is placed at its start, so that it falls in
//! the quarter it describes; the minimum and maximum are not read. `Calories (kcal)` is not
//! read: Google Fit counts the basal metabolic rate in it, so it is no `active_energy`, and
//! there is no stream of total energy. Distances, move minutes, heart points, speeds,
//! locations and activity durations have no stream. The summary `Daily activity
//! metrics.csv` (a row per day, `Date,…`) repeats the daily files' totals: it is recognized
//! and not read.
//!
//! A cell holds the time of day with its UTC offset (`00:15:00.000+01:00`); with the date of
//! the file's name it is an instant, so clock changes need no time zone. An end at or
//! before its start (the `00:00` that ends the last quarter) is on the next day. A row
//! feeds only the streams whose cells it fills: an empty cell is no reading (never zero).
//! Only the English headers are understood. The file names no subject (the pipeline's
//! `--subject` does); the `source` is `google_fit`; records are CSV lines.

use std::{
    io::{BufReader, Seek},
    sync::Arc,
};

use arrow::{
    array::{Array, AsArray, StringArray},
    datatypes::{DataType, Field, Schema},
};

use super::{
    Input, Sink,
    text_rows::{Cell, TextRows},
};
use crate::{
    Error, Result,
    times::{self, When},
};

/// The `source` of every row.
const SOURCE: &str = "google_fit";
/// Rows per extract.
const BATCH_ROWS: usize = 64 * 1024;
const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

fn header_line(head: &[u8]) -> String {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_owned()
}

/// Whether the first bytes are those of a Google Fit daily file, or of its summary.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let header = header_line(head);
    header.starts_with("Start time,End time,") || is_summary(&header)
}

fn is_summary(header: &str) -> bool {
    header.starts_with("Date,")
        && (header.contains(",Move Minutes count") || header.contains(",Step count"))
}

/// Reads a daily file into steps, heart rate and body extracts.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    read_in_batches(&input, sink, BATCH_ROWS)
}

fn read_in_batches(input: &Input, sink: &mut Sink, batch_rows: usize) -> Result<()> {
    let file = &input.name;
    if is_summary(&header_line(&input.head()?)) {
        return Ok(());
    }
    let day = input.stem();
    if day.len() != 10 || !matches!(times::parse(&day), Some(When::Local(_))) {
        return Err(Error::file(
            file,
            format!(
                "a Google Fit daily file is named after its day (2020-01-01.csv); '{day}' is no date"
            ),
        ));
    }
    let mut reader = BufReader::with_capacity(1 << 16, input.open()?);
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (header, _) = format
        .clone()
        .infer_schema(&mut reader, Some(0))
        .map_err(|e| Error::file(file, format!("cannot read the header: {e}")))?;
    let column = |name: &str| header.index_of(name).ok();
    let (Some(start), Some(end)) = (column("Start time"), column("End time")) else {
        return Err(Error::file(
            file,
            "not a Google Fit daily file: its header has no 'Start time' and 'End time'",
        ));
    };
    let step_count = column("Step count");
    let heart_rate = column("Average heart rate (bpm)");
    let weight = column("Average weight (kg)");
    let text_schema = Schema::new(
        header
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    reader
        .rewind()
        .map_err(|e| Error::file(file, format!("cannot read: {e}")))?;
    let csv = arrow::csv::ReaderBuilder::new(Arc::new(text_schema))
        .with_format(format)
        .with_batch_size(batch_rows)
        .build(reader)
        .map_err(|e| Error::file(file, e.to_string()))?;
    let rows = |stream: &'static str, names: &'static [&'static str]| {
        TextRows::new(stream, names, file.clone(), SOURCE, batch_rows)
    };
    let mut steps = rows("steps", &["time", "end_time", "count"]);
    let mut heart = rows("heart_rate", &["time", "bpm"]);
    let mut body = rows("body", &["time", "weight_kg"]);
    let (mut start_text, mut end_text) = (String::new(), String::new());
    // Line 1 is the header.
    let mut record = 1u64;
    for batch in csv {
        let batch = batch.map_err(|e| {
            Error::file(
                file,
                format!("after line {record}: not readable as CSV: {e}"),
            )
        })?;
        let text = |index: Option<usize>| index.map(|i| batch.column(i).as_string::<i32>());
        let (starts, ends) = (text(Some(start)), text(Some(end)));
        let (step_counts, heart_rates, weights) =
            (text(step_count), text(heart_rate), text(weight));
        for row in 0..batch.num_rows() {
            record += 1;
            let start = match on_day(&day, cell(starts, row), &mut start_text) {
                true => Cell::Text(&start_text),
                false => Cell::Missing,
            };
            let end = match on_day(&day, cell(ends, row), &mut end_text) {
                true => next_day(&start_text, &end_text).map_or(Cell::Text(&end_text), Cell::Time),
                false => Cell::Missing,
            };
            if let Some(count) = cell(step_counts, row) {
                steps.push(record, &[start, end, Cell::Text(count)], sink)?;
            }
            if let Some(bpm) = cell(heart_rates, row) {
                heart.push(record, &[start, Cell::Text(bpm)], sink)?;
            }
            if let Some(kg) = cell(weights, row) {
                body.push(record, &[start, Cell::Text(kg)], sink)?;
            }
        }
    }
    steps.flush(sink)?;
    heart.flush(sink)?;
    body.flush(sink)
}

/// A cell's text, if it holds any.
fn cell(column: Option<&StringArray>, row: usize) -> Option<&str> {
    let column = column?;
    (!column.is_null(row))
        .then(|| column.value(row).trim())
        .filter(|text| !text.is_empty())
}

/// Writes the time of day `time` on `day` into `out` (`2020-01-01T00:15:00.000+01:00`);
/// whether there was one.
fn on_day(day: &str, time: Option<&str>, out: &mut String) -> bool {
    out.clear();
    let Some(time) = time else { return false };
    out.push_str(day);
    out.push('T');
    out.push_str(time);
    true
}

/// The end of an interval on the next day, when on the file's day it would not come after
/// the start: the `00:00` ending the last quarter of the day.
fn next_day(start: &str, end: &str) -> Option<When> {
    match (times::parse(start)?, times::parse(end)?) {
        (When::Instant(s), When::Instant(e)) | (When::Local(s), When::Local(e)) if e <= s => {
            times::parse(end)?.plus(NANOS_PER_DAY)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::*;
    use crate::extract::Extract;

    const HEADER: &str = "Start time,End time,Move Minutes count,Calories (kcal),Distance (m),\
Heart Points,Heart Minutes,Average heart rate (bpm),Max heart rate (bpm),Min heart rate (bpm),\
Low latitude (deg),Low longitude (deg),High latitude (deg),High longitude (deg),\
Average speed (m/s),Max speed (m/s),Min speed (m/s),Step count,Average weight (kg),\
Max weight (kg),Min weight (kg),Walking duration (ms)\n";

    fn read_file(name: &str, csv: &str, batch_rows: usize) -> Result<Vec<Extract>> {
        let mut extracts = Vec::new();
        read_in_batches(
            &Input::bytes(name, csv.as_bytes().to_vec()),
            &mut |e| {
                extracts.push(e);
                Ok(())
            },
            batch_rows,
        )?;
        Ok(extracts)
    }

    /// A stream's rows as text, with their records.
    fn rows(extracts: &[Extract], stream: &str) -> Vec<(u64, Vec<String>)> {
        let mut rows = Vec::new();
        for extract in extracts.iter().filter(|e| e.stream == stream) {
            assert_eq!(extract.default_source, "google_fit");
            for row in 0..extract.batch.num_rows() {
                let values = extract
                    .batch
                    .columns()
                    .iter()
                    .map(|c| c.as_string::<i32>().value(row).to_owned())
                    .collect();
                rows.push((extract.records[row], values));
            }
        }
        rows
    }

    fn row(record: u64, values: &[&str]) -> (u64, Vec<String>) {
        (record, values.iter().map(|v| (*v).to_owned()).collect())
    }

    #[test]
    fn google_fit_files_are_sniffed() {
        assert!(sniff(HEADER.as_bytes()));
        assert!(sniff(format!("\u{feff}{HEADER}").as_bytes()));
        assert!(sniff(
            b"Date,Move Minutes count,Calories (kcal),Distance (m)\n2020-01-01,30,2000,1500\n"
        ));
        assert!(!sniff(b"Start time,bpm\n"));
        assert!(!sniff(b"Date,weight_kg\n"));
    }

    #[test]
    fn google_fit_quarters_feed_the_streams_their_cells_fill() {
        let csv = format!(
            "{HEADER}\
00:00:00.000+01:00,00:15:00.000+01:00,,20.5,,,,,,,,,,,,,,,,,,\n\
00:15:00.000+01:00,00:30:00.000+01:00,1,21.0,80.5,,,62.5,70,55,,,,,1.2,1.5,0.9,105,,,,600000\n\
07:00:00.000+01:00,07:15:00.000+01:00,,20.1,,,,,,,,,,,,,,0,70.2,70.2,70.2,\n\
23:45:00.000+01:00,00:00:00.000+01:00,,19.8,,,,,,,,,,,,,,12,,,,\n"
        );
        let extracts =
            read_file("Takeout/Fit/Daily activity metrics/2020-01-01.csv", &csv, 2).unwrap();
        assert_eq!(
            rows(&extracts, "steps"),
            [
                row(
                    3,
                    &[
                        "2020-01-01T00:15:00.000+01:00",
                        "2020-01-01T00:30:00.000+01:00",
                        "105"
                    ]
                ),
                row(
                    4,
                    &[
                        "2020-01-01T07:00:00.000+01:00",
                        "2020-01-01T07:15:00.000+01:00",
                        "0"
                    ]
                ),
                row(
                    5,
                    &[
                        "2020-01-01T23:45:00.000+01:00",
                        "2020-01-01T23:00:00Z",
                        "12"
                    ]
                ),
            ],
            "a written zero is a reading; the last quarter ends at midnight, on the next day"
        );
        assert_eq!(
            rows(&extracts, "heart_rate"),
            [row(3, &["2020-01-01T00:15:00.000+01:00", "62.5"])]
        );
        assert_eq!(
            rows(&extracts, "body"),
            [row(4, &["2020-01-01T07:00:00.000+01:00", "70.2"])]
        );
        let steps: Vec<usize> = extracts
            .iter()
            .filter(|e| e.stream == "steps")
            .map(|e| e.batch.num_rows())
            .collect();
        assert_eq!(steps, [2, 1], "handed on in batches");
    }

    #[test]
    fn google_fit_clock_changes_keep_their_offsets() {
        // 2020-10-25 in Paris: 02:00–03:00 happens twice, first at +02:00, then at +01:00.
        let csv = "Start time,End time,Step count\n\
                   02:45:00.000+02:00,02:00:00.000+01:00,40\n\
                   02:00:00.000+01:00,02:15:00.000+01:00,50\n";
        let extracts = read_file("2020-10-25.csv", csv, BATCH_ROWS).unwrap();
        assert_eq!(
            rows(&extracts, "steps"),
            [
                row(
                    2,
                    &[
                        "2020-10-25T02:45:00.000+02:00",
                        "2020-10-25T02:00:00.000+01:00",
                        "40"
                    ]
                ),
                row(
                    3,
                    &[
                        "2020-10-25T02:00:00.000+01:00",
                        "2020-10-25T02:15:00.000+01:00",
                        "50"
                    ]
                ),
            ],
            "an end that is earlier on the clock but later in time stays on its day"
        );
    }

    #[test]
    fn google_fit_summaries_are_not_read_and_odd_files_are_named() {
        let summary =
            "Date,Move Minutes count,Calories (kcal),Step count\n2020-01-01,30,2000,9000\n";
        let extracts = read_file(
            "Takeout/Fit/Daily activity metrics/Daily activity metrics.csv",
            summary,
            BATCH_ROWS,
        )
        .unwrap();
        assert!(extracts.is_empty());
        let err = read_file("Takeout/Fit/steps.csv", HEADER, BATCH_ROWS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Takeout/Fit/steps.csv: a Google Fit daily file is named after its day \
             (2020-01-01.csv); 'steps' is no date"
        );
        let err = read_file("2020-01-01.csv", "Start,End time,Step count\n", BATCH_ROWS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no 'Start time' and 'End time'"), "{err}");
    }
}
