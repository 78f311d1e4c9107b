//! Fitabase CSV files (the Kaggle "Fitbit Fitness Tracker Data" set): one reading per line,
//! subjects by `Id`, wall-clock times like `4/12/2016 7:21:00 AM`. Files reach millions of
//! lines (2.5 M heart rates), so they are read in batches by Arrow's CSV reader; the time
//! and value columns are handed on as read, and only the subject, the interval ends and the
//! sleep stages are built, straight into their column builders.

use std::{
    io::{BufReader, Seek},
    sync::Arc,
};

use arrow::{
    array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, StringBuilder},
    datatypes::{DataType, Field, Schema},
};

use super::{BATCH_ROWS, SOURCE, Survey};
use crate::{
    Error, Result,
    extract::{Extract, SUBJECT},
    formats::{Input, Sink},
    times,
};

/// Pseudonyms of Fitabase subjects: `fitbit-<Id>`.
const SUBJECT_PREFIX: &str = "fitbit-";

/// The names (lowercase, without `.csv`) of Fitabase's files, read or not.
pub(super) const FILES: &[&str] = &[
    "heartrate_seconds_merged",
    "minutestepsnarrow_merged",
    "hourlysteps_merged",
    "minutesleep_merged",
    "weightloginfo_merged",
    "dailyactivity_merged",
    "dailycalories_merged",
    "dailyintensities_merged",
    "dailysteps_merged",
    "hourlycalories_merged",
    "hourlyintensities_merged",
    "minutecaloriesnarrow_merged",
    "minutecalorieswide_merged",
    "minuteintensitiesnarrow_merged",
    "minuteintensitieswide_merged",
    "minutemetsnarrow_merged",
    "minutestepswide_merged",
    "sleepday_merged",
];

/// What a Fitabase file holds and where it goes.
struct Layout {
    stream: &'static str,
    /// The column of the reading's (or interval's) start.
    time: &'static str,
    /// How long an interval lasts, in seconds; `None` for readings at an instant.
    seconds: Option<i64>,
    /// File column, stream column, and whether it holds Fitabase's sleep codes.
    values: &'static [(&'static str, &'static str, bool)],
}

/// The layout of a file by its lowercase name; `None` for the files not read.
fn layout(name: &str, input: &Input, survey: &Survey) -> Option<Layout> {
    Some(match name {
        "heartrate_seconds_merged" => Layout {
            stream: "heart_rate",
            time: "Time",
            seconds: None,
            values: &[("Value", "bpm", false)],
        },
        "minutestepsnarrow_merged" => Layout {
            stream: "steps",
            time: "ActivityMinute",
            seconds: Some(60),
            values: &[("Steps", "count", false)],
        },
        // The hourly totals of the minute steps: read only where those are not.
        "hourlysteps_merged" if !survey.has_minute_steps(&input.name) => Layout {
            stream: "steps",
            time: "ActivityHour",
            seconds: Some(3600),
            values: &[("StepTotal", "count", false)],
        },
        "minutesleep_merged" => Layout {
            stream: "sleep",
            time: "date",
            seconds: Some(60),
            values: &[("value", "stage", true)],
        },
        "weightloginfo_merged" => Layout {
            stream: "body",
            time: "Date",
            seconds: None,
            values: &[
                ("WeightKg", "weight_kg", false),
                ("Fat", "fat_pct", false),
                ("BMI", "bmi", false),
            ],
        },
        _ => return None,
    })
}

/// Reads a Fitabase file; the files without a stream (daily summaries, calories,
/// intensities, METs, wide layouts) are not read.
pub(super) fn read(input: &Input, name: &str, survey: &Survey, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, name, survey, sink, BATCH_ROWS)
}

fn read_in_batches(
    input: &Input,
    name: &str,
    survey: &Survey,
    sink: &mut Sink,
    batch_rows: usize,
) -> Result<()> {
    let Some(layout) = layout(name, input, survey) else {
        return Ok(());
    };
    let file = &input.name;
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (header, _) = format
        .clone()
        .infer_schema(&mut reader, Some(0))
        .map_err(|e| Error::file(file, format!("cannot read the header: {e}")))?;
    let column = |wanted: &str| {
        header
            .fields()
            .iter()
            .position(|f| f.name().trim().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                let columns: Vec<&str> = std::iter::once("Id")
                    .chain([layout.time])
                    .chain(layout.values.iter().map(|(c, _, _)| *c))
                    .collect();
                Error::file(
                    file,
                    format!(
                        "no column '{wanted}': a Fitabase {name} file has {}",
                        columns.join(", ")
                    ),
                )
            })
    };
    let id = column("Id")?;
    let time = column(layout.time)?;
    let values = layout
        .values
        .iter()
        .map(|(from, to, stages)| Ok((column(from)?, *to, *stages)))
        .collect::<Result<Vec<_>>>()?;
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
    // Line 1 is the header.
    let mut next_record = 2u64;
    for batch in csv {
        let batch = batch.map_err(|e| {
            Error::file(
                file,
                format!("after line {}: not readable as CSV: {e}", next_record - 1),
            )
        })?;
        let rows = batch.num_rows();
        let text = |index: usize| batch.column(index).as_string::<i32>();
        let mut fields = vec![
            Field::new(SUBJECT, DataType::Utf8, true),
            Field::new("time", DataType::Utf8, true),
        ];
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(subjects(text(id))), batch.column(time).clone()];
        if let Some(seconds) = layout.seconds {
            fields.push(Field::new("end_time", DataType::Utf8, true));
            columns.push(Arc::new(ends(text(time), seconds)));
        }
        for (index, to, stages) in &values {
            fields.push(Field::new(*to, DataType::Utf8, true));
            columns.push(match stages {
                true => Arc::new(sleep_stages(text(*index))),
                false => batch.column(*index).clone(),
            });
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::file(file, format!("cannot build rows: {e}")))?;
        sink(Extract {
            stream: layout.stream.to_owned(),
            batch,
            units: Default::default(),
            records: (next_record..next_record + rows as u64).collect(),
            file: file.clone(),
            default_source: SOURCE.to_owned(),
        })?;
        next_record += rows as u64;
    }
    Ok(())
}

/// `fitbit-<Id>` of each row; missing where the `Id` is, for cleaning to refuse.
fn subjects(ids: &StringArray) -> StringArray {
    let mut out = StringBuilder::with_capacity(ids.len(), ids.len() * 18);
    let mut pseudonym = String::with_capacity(32);
    for id in ids {
        match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                pseudonym.clear();
                pseudonym.push_str(SUBJECT_PREFIX);
                pseudonym.push_str(id);
                out.append_value(&pseudonym);
            }
            None => out.append_null(),
        }
    }
    out.finish()
}

/// The end of each row's interval, `seconds` after its start; missing where the start is
/// not a time (cleaning rejects the row for its start).
fn ends(starts: &StringArray, seconds: i64) -> StringArray {
    let mut out = StringBuilder::with_capacity(starts.len(), starts.len() * 19);
    for start in starts {
        let end = start
            .and_then(times::parse)
            .and_then(|when| when.plus(seconds * 1_000_000_000));
        match end {
            Some(end) if times::write(end, &mut out).is_ok() => out.append_value(""),
            _ => out.append_null(),
        }
    }
    out.finish()
}

/// Fitabase's sleep codes as stages: 1 asleep, 2 restless (counted awake), 3 awake; other
/// values are passed on for cleaning to reject.
fn sleep_stages(codes: &StringArray) -> StringArray {
    codes
        .iter()
        .map(|code| {
            code.map(|code| match code.trim() {
                "1" => "asleep",
                "2" | "3" => "awake",
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file(
        name: &str,
        csv: &str,
        survey: &Survey,
        batch_rows: usize,
    ) -> Result<Vec<Extract>> {
        let input = Input::bytes(name, csv.as_bytes().to_vec());
        let stem = input.stem();
        let mut extracts = Vec::new();
        read_in_batches(
            &input,
            &stem,
            survey,
            &mut |e| {
                extracts.push(e);
                Ok(())
            },
            batch_rows,
        )?;
        Ok(extracts)
    }

    /// Column names and rows as text of a file's extracts.
    fn rows(extracts: &[Extract]) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        let mut names = Vec::new();
        let mut rows = Vec::new();
        for extract in extracts {
            assert_eq!(extract.default_source, "fitbit");
            assert!(extract.units.is_empty());
            names = extract
                .batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for row in 0..extract.batch.num_rows() {
                rows.push(
                    extract
                        .batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            (!c.is_null(row)).then(|| c.value(row).to_owned())
                        })
                        .collect(),
                );
            }
        }
        (names, rows)
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn fitabase_heart_rates_name_their_subjects() {
        let csv = "Id,Time,Value\r\n\
                   2022484408,4/12/2016 7:21:00 AM,97\r\n\
                   2022484408,4/12/2016 7:21:05 AM,102\r\n\
                   ,4/12/2016 7:21:10 AM,105\r\n\
                   2026352035,4/12/2016 7:21:00 AM,abc\r\n";
        let extracts =
            read_file("a/heartrate_seconds_merged.csv", csv, &Survey::default(), 3).unwrap();
        assert_eq!(extracts.len(), 2, "handed on in batches");
        assert_eq!(extracts[0].stream, "heart_rate");
        assert_eq!(extracts[0].records, [2, 3, 4]);
        assert_eq!(extracts[1].records, [5], "records are CSV lines");
        assert_eq!(
            rows(&extracts),
            (
                names(&["subject", "time", "bpm"]),
                vec![
                    row(&[
                        Some("fitbit-2022484408"),
                        Some("4/12/2016 7:21:00 AM"),
                        Some("97")
                    ]),
                    row(&[
                        Some("fitbit-2022484408"),
                        Some("4/12/2016 7:21:05 AM"),
                        Some("102")
                    ]),
                    row(&[None, Some("4/12/2016 7:21:10 AM"), Some("105")]),
                    row(&[
                        Some("fitbit-2026352035"),
                        Some("4/12/2016 7:21:00 AM"),
                        Some("abc")
                    ]),
                ]
            ),
            "values as written, for cleaning to check"
        );
    }

    #[test]
    fn fitabase_steps_and_sleep_are_intervals() {
        let csv = "Id,ActivityMinute,Steps\n\
                   1503960366,4/12/2016 11:59:00 PM,12\n\
                   1503960366,4/13/2016 12:00:00 AM,0\n\
                   1503960366,not a time,5\n";
        let extracts = read_file(
            "minuteStepsNarrow_merged.csv",
            csv,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        assert_eq!(extracts[0].stream, "steps");
        assert_eq!(
            rows(&extracts),
            (
                names(&["subject", "time", "end_time", "count"]),
                vec![
                    row(&[
                        Some("fitbit-1503960366"),
                        Some("4/12/2016 11:59:00 PM"),
                        Some("2016-04-13T00:00:00"),
                        Some("12")
                    ]),
                    row(&[
                        Some("fitbit-1503960366"),
                        Some("4/13/2016 12:00:00 AM"),
                        Some("2016-04-13T00:01:00"),
                        Some("0")
                    ]),
                    row(&[
                        Some("fitbit-1503960366"),
                        Some("not a time"),
                        None,
                        Some("5")
                    ]),
                ]
            )
        );

        let csv = "Id,date,value,logId\n\
                   1503960366,4/12/2016 2:47:30 AM,3,11380564589\n\
                   1503960366,4/12/2016 2:48:30 AM,2,11380564589\n\
                   1503960366,4/12/2016 2:49:30 AM,1,11380564589\n\
                   1503960366,4/12/2016 2:50:30 AM,4,11380564589\n";
        let extracts = read_file(
            "minuteSleep_merged.csv",
            csv,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        let (columns, sleep) = rows(&extracts);
        assert_eq!(columns, names(&["subject", "time", "end_time", "stage"]));
        let stages: Vec<_> = sleep.iter().map(|r| r[3].as_deref()).collect();
        assert_eq!(
            stages,
            [Some("awake"), Some("awake"), Some("asleep"), Some("4")],
            "restless counts as awake; unknown codes reach cleaning"
        );
        assert_eq!(sleep[0][2].as_deref(), Some("2016-04-12T02:48:30"));
    }

    #[test]
    fn fitabase_hourly_steps_are_read_only_without_minute_steps() {
        let csv = "Id,ActivityHour,StepTotal\n1503960366,4/12/2016 12:00:00 AM,373\n";
        let extracts = read_file(
            "a/hourlySteps_merged.csv",
            csv,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        assert_eq!(
            rows(&extracts).1,
            [row(&[
                Some("fitbit-1503960366"),
                Some("4/12/2016 12:00:00 AM"),
                Some("2016-04-12T01:00:00"),
                Some("373")
            ])]
        );
        let survey = super::super::survey(&[
            Input::bytes("a/minuteStepsNarrow_merged.csv", Vec::new()),
            Input::bytes("a/hourlySteps_merged.csv", csv.as_bytes().to_vec()),
        ]);
        let extracts = read_file("a/hourlySteps_merged.csv", csv, &survey, BATCH_ROWS).unwrap();
        assert!(
            extracts.is_empty(),
            "the minute steps of its folder count them"
        );
        let extracts = read_file("b/hourlySteps_merged.csv", csv, &survey, BATCH_ROWS).unwrap();
        assert_eq!(extracts.len(), 1, "minute steps of another folder do not");
    }

    #[test]
    fn fitabase_weights_and_files_not_read() {
        let csv = "Id,Date,WeightKg,WeightPounds,Fat,BMI,IsManualReport,LogId\n\
                   1503960366,5/2/2016 11:59:59 PM,52.599998474121,115.963147231642,22,22.6499996185303,True,1462233599000\n\
                   1927972279,4/13/2016 1:08:52 AM,133.5,294.31712,,47.5400009155273,False,1460509732000\n";
        let extracts = read_file(
            "weightLogInfo_merged.csv",
            csv,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        assert_eq!(extracts[0].stream, "body");
        assert_eq!(
            rows(&extracts),
            (
                names(&["subject", "time", "weight_kg", "fat_pct", "bmi"]),
                vec![
                    row(&[
                        Some("fitbit-1503960366"),
                        Some("5/2/2016 11:59:59 PM"),
                        Some("52.599998474121"),
                        Some("22"),
                        Some("22.6499996185303")
                    ]),
                    row(&[
                        Some("fitbit-1927972279"),
                        Some("4/13/2016 1:08:52 AM"),
                        Some("133.5"),
                        None,
                        Some("47.5400009155273")
                    ]),
                ]
            )
        );
        for name in [
            "dailyActivity_merged.csv",
            "minuteCaloriesNarrow_merged.csv",
            "sleepDay_merged.csv",
        ] {
            let extracts = read_file(
                name,
                "Id,ActivityDay,Calories\n1,4/12/2016,1985\n",
                &Survey::default(),
                BATCH_ROWS,
            )
            .unwrap();
            assert!(extracts.is_empty(), "{name}");
        }
    }

    #[test]
    fn fitabase_files_missing_a_column_or_broken_are_named() {
        let err = read_file(
            "x/heartrate_seconds_merged.csv",
            "Id,Timestamp,Value\n1,4/12/2016 7:21:00 AM,97\n",
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "x/heartrate_seconds_merged.csv: no column 'Time': a Fitabase \
             heartrate_seconds_merged file has Id, Time, Value"
        );
        let err = read_file(
            "x/heartrate_seconds_merged.csv",
            "Id,Time,Value\n1,4/12/2016 7:21:00 AM,97\n1,4/12/2016 7:21:05 AM,98,99\n",
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("x/heartrate_seconds_merged.csv: after line 1: not readable as CSV"),
            "{err}"
        );
    }
}
