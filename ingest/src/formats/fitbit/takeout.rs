//! The per-day JSON files of a Fitbit account export (see the parent module for what maps
//! where). Each is one JSON array, a few megabytes at most, parsed whole with values
//! borrowed from the file's bytes.

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Deserializer, de};

use super::{BATCH_ROWS, SOURCE, Survey};
use crate::{
    Error, Result,
    formats::{
        Input, Sink,
        text_rows::{Cell, TextRows},
    },
    times,
};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Reads a `<kind>-YYYY-MM-DD.json` file; kinds without a stream are not read.
pub(super) fn read(input: &Input, kind: &str, survey: &Survey, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, kind, survey, sink, BATCH_ROWS)
}

fn read_in_batches(
    input: &Input,
    kind: &str,
    survey: &Survey,
    sink: &mut Sink,
    batch_rows: usize,
) -> Result<()> {
    let rows = |stream: &'static str, names: &'static [&'static str]| {
        TextRows::new(stream, names, input.name.clone(), SOURCE, batch_rows)
    };
    match kind {
        "heart_rate" => {
            let mut out = rows("heart_rate", &["time", "bpm"]);
            let bytes = input.read_all()?;
            for (record, reading) in (1..).zip(parse::<Reading<HeartValue>>(input, &bytes)?) {
                let bpm = reading.value.as_ref().and_then(|v| v.bpm.as_ref());
                out.push(record, &[text(&reading.date_time), scalar(bpm)], sink)?;
            }
            out.flush(sink)
        }
        "steps" => {
            let mut out = rows("steps", &["time", "end_time", "count"]);
            let bytes = input.read_all()?;
            for (record, reading) in (1..).zip(parse::<Reading<Scalar>>(input, &bytes)?) {
                let end = later(&reading.date_time, Some(60 * NANOS_PER_SECOND));
                let cells = [
                    text(&reading.date_time),
                    end,
                    scalar(reading.value.as_ref()),
                ];
                out.push(record, &cells, sink)?;
            }
            out.flush(sink)
        }
        "sleep" => {
            let mut out = rows("sleep", &["time", "end_time", "stage"]);
            let bytes = input.read_all()?;
            let mut record = 0;
            for log in parse::<SleepLog>(input, &bytes)? {
                for stage in log.levels.map(|l| l.data).unwrap_or_default() {
                    record += 1;
                    let seconds = stage.seconds.as_ref().and_then(Scalar::whole);
                    let nanos = seconds.and_then(|s| s.checked_mul(NANOS_PER_SECOND));
                    let end = later(&stage.date_time, nanos);
                    let level = stage.level.as_deref().map(sleep_stage);
                    let level = level.map_or(Cell::Missing, Cell::Text);
                    out.push(record, &[text(&stage.date_time), end, level], sink)?;
                }
            }
            out.flush(sink)
        }
        "weight" => {
            let unit = survey
                .weight_unit(&input.name)
                .map_err(|problem| Error::file(&input.name, problem))?;
            let names = &["time", "weight_kg", "fat_pct", "bmi"];
            let mut out = rows("body", names).with_unit("weight_kg", unit);
            let bytes = input.read_all()?;
            for (record, weighing) in (1..).zip(parse::<Weighing>(input, &bytes)?) {
                let time = match (&weighing.date, &weighing.time) {
                    (Some(date), Some(time)) => Some(Joined(date, time)),
                    _ => None,
                };
                let time = time.as_ref().map_or(Cell::Missing, |t| Cell::Display(t));
                let cells = [
                    time,
                    scalar(weighing.weight.as_ref()),
                    scalar(weighing.fat.as_ref()),
                    scalar(weighing.bmi.as_ref()),
                ];
                out.push(record, &cells, sink)?;
            }
            out.flush(sink)
        }
        // Calories count the basal metabolic rate too; the other kinds have no stream.
        _ => Ok(()),
    }
}

/// The elements of a file's JSON array.
fn parse<'a, T: Deserialize<'a>>(input: &Input, bytes: &'a [u8]) -> Result<Vec<T>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| {
        Error::file(
            &input.name,
            format!("not a readable file of a Fitbit export: {e}"),
        )
    })
}

fn text<'a>(value: &'a Option<Cow<'_, str>>) -> Cell<'a> {
    value.as_deref().map_or(Cell::Missing, Cell::Text)
}

fn scalar<'a>(value: Option<&'a Scalar>) -> Cell<'a> {
    match value {
        None | Some(Scalar::Null) => Cell::Missing,
        Some(value) => Cell::Display(value),
    }
}

/// The end of an interval that starts at `start` and lasts `nanos`; missing (for cleaning
/// to reject) when either is unreadable.
fn later(start: &Option<Cow<'_, str>>, nanos: Option<i64>) -> Cell<'static> {
    let end = start
        .as_deref()
        .and_then(times::parse)
        .zip(nanos)
        .and_then(|(start, nanos)| start.plus(nanos));
    end.map_or(Cell::Missing, Cell::Time)
}

/// A weighing's `date` and `time` (`01/01/20`, `07:00:00`) as one wall-clock time.
struct Joined<'a>(&'a str, &'a str);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The stage of a sleep level; an unknown one is passed on for cleaning to reject.
fn sleep_stage(level: &str) -> &str {
    match level {
        "wake" | "awake" | "restless" => "awake",
        other => other,
    }
}

/// An element of a series file: `{"dateTime": "01/01/20 00:00:05", "value": …}`.
#[derive(Deserialize)]
struct Reading<'a, V> {
    #[serde(rename = "dateTime", borrow)]
    date_time: Option<Cow<'a, str>>,
    value: Option<V>,
}

/// The `value` of a heart-rate reading: `{"bpm": 62, "confidence": 2}`.
#[derive(Deserialize)]
struct HeartValue<'a> {
    #[serde(borrow)]
    bpm: Option<Scalar<'a>>,
}

/// A sleep log; its `levels.data` are the stage intervals.
#[derive(Deserialize)]
struct SleepLog<'a> {
    #[serde(borrow)]
    levels: Option<Levels<'a>>,
}

#[derive(Deserialize)]
struct Levels<'a> {
    #[serde(borrow, default)]
    data: Vec<Stage<'a>>,
}

#[derive(Deserialize)]
struct Stage<'a> {
    #[serde(rename = "dateTime", borrow)]
    date_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    seconds: Option<Scalar<'a>>,
}

/// An element of a weight file.
#[derive(Deserialize)]
struct Weighing<'a> {
    #[serde(borrow)]
    weight: Option<Scalar<'a>>,
    #[serde(borrow)]
    fat: Option<Scalar<'a>>,
    #[serde(borrow)]
    bmi: Option<Scalar<'a>>,
    #[serde(borrow)]
    date: Option<Cow<'a, str>>,
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
}

/// A number or text as the file wrote it (steps are `"0"`, heart rates `62`), passed on
/// for cleaning to type.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Null,
    Text(Cow<'a, str>),
    Integer(i64),
    Unsigned(u64),
    Float(f64),
    Boolean(bool),
}

impl Scalar<'_> {
    /// A whole number of it, if it is one (durations in seconds).
    fn whole(&self) -> Option<i64> {
        match self {
            Scalar::Integer(n) => Some(*n),
            Scalar::Unsigned(n) => i64::try_from(*n).ok(),
            Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(*f as i64),
            Scalar::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => Ok(()),
            Scalar::Text(t) => f.write_str(t),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Unsigned(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Scalar<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Integer(v))
            }

            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Unsigned(v))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }

            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Boolean(v))
            }

            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::extract::Extract;

    fn read_file(
        name: &str,
        json: &str,
        survey: &Survey,
        batch_rows: usize,
    ) -> Result<Vec<Extract>> {
        let input = Input::bytes(name, json.as_bytes().to_vec());
        let stem = input.stem();
        let kind = super::super::dated(&stem).unwrap();
        let mut extracts = Vec::new();
        read_in_batches(
            &input,
            kind,
            survey,
            &mut |e| {
                extracts.push(e);
                Ok(())
            },
            batch_rows,
        )?;
        Ok(extracts)
    }

    /// Every row of the extracts, as text.
    fn rows(extracts: &[Extract]) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        for extract in extracts {
            assert_eq!(extract.default_source, "fitbit");
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
        rows
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn fitbit_heart_rates_and_steps_are_read_as_written() {
        let heart = r#"[{
  "dateTime" : "01/01/20 00:00:05",
  "value" : {
    "bpm" : 62,
    "confidence" : 2
  }
},{
  "dateTime" : "01/01/20 00:00:10",
  "value" : {
    "bpm" : 63.5,
    "confidence" : 3
  }
},{
  "dateTime" : "01/01/20 00:00:15",
  "value" : {
    "confidence" : 0
  }
}]"#;
        let extracts =
            read_file("heart_rate-2020-01-01.json", heart, &Survey::default(), 2).unwrap();
        assert_eq!(extracts.len(), 2, "handed on in batches");
        assert_eq!(extracts[0].stream, "heart_rate");
        assert_eq!(
            rows(&extracts),
            [
                row(&[Some("01/01/20 00:00:05"), Some("62")]),
                row(&[Some("01/01/20 00:00:10"), Some("63.5")]),
                row(&[Some("01/01/20 00:00:15"), None]),
            ]
        );
        assert_eq!(extracts[1].records, [3]);

        let steps = r#"[{"dateTime":"01/01/20 23:59:00","value":"12"},{"dateTime":"01/01/20 24:00:00","value":"3"},{"value":"4"}]"#;
        let extracts = read_file(
            "steps-2020-01-01.json",
            steps,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        assert_eq!(extracts[0].stream, "steps");
        assert_eq!(
            rows(&extracts),
            [
                row(&[
                    Some("01/01/20 23:59:00"),
                    Some("2020-01-02T00:00:00"),
                    Some("12")
                ]),
                row(&[Some("01/01/20 24:00:00"), None, Some("3")]),
                row(&[None, None, Some("4")]),
            ],
            "a minute each; unreadable times are left for cleaning to reject"
        );
    }

    #[test]
    fn fitbit_sleep_stages_are_intervals() {
        let sleep = r#"[{
  "logId" : 25459879000,
  "dateOfSleep" : "2020-01-02",
  "startTime" : "2020-01-01T23:10:30.000",
  "endTime" : "2020-01-02T00:40:30.000",
  "type" : "stages",
  "levels" : {
    "summary" : { "deep" : { "count" : 1, "minutes" : 30 } },
    "data" : [{
      "dateTime" : "2020-01-01T23:10:30.000",
      "level" : "wake",
      "seconds" : 600
    },{
      "dateTime" : "2020-01-01T23:20:30.000",
      "level" : "light",
      "seconds" : 1800
    },{
      "dateTime" : "2020-01-01T23:50:30.000",
      "level" : "deep",
      "seconds" : 1800
    },{
      "dateTime" : "2020-01-02T00:20:30.000",
      "level" : "rem",
      "seconds" : 1200
    }],
    "shortData" : [{
      "dateTime" : "2020-01-01T23:30:00.000",
      "level" : "wake",
      "seconds" : 60
    }]
  },
  "mainSleep" : true
},{
  "logId" : 25459879001,
  "startTime" : "2020-01-02T14:00:00.000",
  "type" : "classic",
  "levels" : {
    "data" : [{
      "dateTime" : "2020-01-02T14:00:00.000",
      "level" : "asleep",
      "seconds" : 1200
    },{
      "dateTime" : "2020-01-02T14:20:00.000",
      "level" : "restless",
      "seconds" : 120.0
    },{
      "dateTime" : "2020-01-02T14:22:00.000",
      "level" : "awake",
      "seconds" : 60
    },{
      "dateTime" : "2020-01-02T14:23:00.000",
      "level" : "dozing",
      "seconds" : "oops"
    }]
  }
}]"#;
        let extracts = read_file(
            "sleep-2020-01-01.json",
            sleep,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap();
        assert_eq!(extracts[0].stream, "sleep");
        assert_eq!(
            rows(&extracts),
            [
                row(&[
                    Some("2020-01-01T23:10:30.000"),
                    Some("2020-01-01T23:20:30"),
                    Some("awake")
                ]),
                row(&[
                    Some("2020-01-01T23:20:30.000"),
                    Some("2020-01-01T23:50:30"),
                    Some("light")
                ]),
                row(&[
                    Some("2020-01-01T23:50:30.000"),
                    Some("2020-01-02T00:20:30"),
                    Some("deep")
                ]),
                row(&[
                    Some("2020-01-02T00:20:30.000"),
                    Some("2020-01-02T00:40:30"),
                    Some("rem")
                ]),
                row(&[
                    Some("2020-01-02T14:00:00.000"),
                    Some("2020-01-02T14:20:00"),
                    Some("asleep")
                ]),
                row(&[
                    Some("2020-01-02T14:20:00.000"),
                    Some("2020-01-02T14:22:00"),
                    Some("awake")
                ]),
                row(&[
                    Some("2020-01-02T14:22:00.000"),
                    Some("2020-01-02T14:23:00"),
                    Some("awake")
                ]),
                row(&[Some("2020-01-02T14:23:00.000"), None, Some("dozing")]),
            ],
            "shortData is not read"
        );
        assert_eq!(extracts[0].records, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    const WEIGHTS: &str = r#"[{
  "logId" : 1577862000000,
  "weight" : 165.2,
  "bmi" : 24.4,
  "fat" : 22.125,
  "date" : "01/01/20",
  "time" : "07:00:00",
  "source" : "Aria"
},{
  "logId" : 1577948400000,
  "weight" : 165.0,
  "bmi" : 24.37,
  "date" : "01/02/20",
  "time" : "07:00:00",
  "source" : "API"
}]"#;

    #[test]
    fn fitbit_weights_take_the_unit_of_the_account() {
        let name = "t.zip!Takeout/Fitbit/Global Export Data/weight-2020-01-01.json";
        let extracts = read_file(name, WEIGHTS, &Survey::default(), BATCH_ROWS).unwrap();
        assert_eq!(extracts[0].stream, "body");
        assert_eq!(
            extracts[0].units["weight_kg"], "kg",
            "kilograms without a profile"
        );
        assert_eq!(
            rows(&extracts),
            [
                row(&[
                    Some("01/01/20 07:00:00"),
                    Some("165.2"),
                    Some("22.125"),
                    Some("24.4")
                ]),
                row(&[Some("01/02/20 07:00:00"), Some("165"), None, Some("24.37")]),
            ]
        );
        let profile = Input::bytes(
            "t.zip!Takeout/Fitbit/Your Profile/Profile.csv",
            b"id,full_name,weight_unit\nA1,Ana,POUND\n".to_vec(),
        );
        let survey = super::super::survey(&[profile]);
        let extracts = read_file(name, WEIGHTS, &survey, BATCH_ROWS).unwrap();
        assert_eq!(extracts[0].units["weight_kg"], "lb");

        let profile = Input::bytes(
            "t.zip!Takeout/Fitbit/Your Profile/Profile.csv",
            b"id,full_name,weight_unit\nA1,Ana,FURLONG\n".to_vec(),
        );
        let survey = super::super::survey(&[profile]);
        let err = read_file(name, WEIGHTS, &survey, BATCH_ROWS)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{name}: the unit of its weights is unknown")),
            "{err}"
        );
    }

    #[test]
    fn fitbit_kinds_without_a_stream_are_not_read() {
        let calories = r#"[{"dateTime":"01/01/20 00:00:00","value":"1.19"}]"#;
        for name in ["calories-2020-01-01.json", "altitude-2020-01-01.json"] {
            assert!(
                read_file(name, calories, &Survey::default(), BATCH_ROWS)
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn fitbit_malformed_files_name_the_place() {
        let err = read_file(
            "heart_rate-2020-01-01.json",
            "[{\n  \"dateTime\" : \"01/01/20 00:00:05\",\n  \"value\" : {\n    \"bpm\" : 62,\n",
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("heart_rate-2020-01-01.json: not a readable file of a Fitbit export: EOF while parsing"),
            "{err}"
        );
        assert!(err.contains("line 5"), "{err}");
        let err = read_file(
            "heart_rate-2020-01-01.json",
            r#"[{"dateTime":"01/01/20 00:00:05","value":{"bpm":[62]}}]"#,
            &Survey::default(),
            BATCH_ROWS,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected a number or a string"), "{err}");
    }

    #[test]
    fn fitbit_scalars_keep_what_was_written() {
        let parsed: Vec<Scalar> =
            serde_json::from_str(r#"["12", 12, -3, 1.5, 1e2, true, null, "a\"b"]"#).unwrap();
        let written: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(
            written,
            ["12", "12", "-3", "1.5", "100", "true", "", "a\"b"]
        );
        assert_eq!(parsed[0].whole(), Some(12));
        assert_eq!(parsed[3].whole(), None);
        assert_eq!(parsed[4].whole(), Some(100));
    }
}
