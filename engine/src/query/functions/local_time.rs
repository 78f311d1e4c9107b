//! Local calendar time: `local_day(time, tz)` and `local_time(time, tz)`.
//!
//! `time` is a UTC instant, `tz` an IANA zone name (`'Europe/Paris'`; `meta.subjects.timezone`
//! holds each subject's). `local_time` is the wall-clock time there, as a zone-less timestamp;
//! `local_day` its date. The zone's offset at that instant is used, so days around daylight
//! saving changes last 23 or 25 hours and every instant has exactly one local day.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, AsArray, Date32Array, TimestampNanosecondArray},
    datatypes::{DataType, TimeUnit, TimestampNanosecondType},
};
use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;
use datafusion::{
    common::{Result, exec_err},
    logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility},
};

use super::{check_arity, instant, text};
use crate::sort::NANOS_PER_DAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Day,
    Time,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct LocalTime {
    output: Output,
    signature: Signature,
}

impl LocalTime {
    pub(super) fn day() -> Self {
        LocalTime {
            output: Output::Day,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    pub(super) fn time() -> Self {
        LocalTime {
            output: Output::Time,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Time zones by name, parsed once per run of equal names.
struct Zones {
    function: &'static str,
    last: Option<(String, Tz)>,
}

impl Zones {
    fn get(&mut self, name: &str) -> Result<Tz> {
        match &self.last {
            Some((last, zone)) if last == name => Ok(*zone),
            _ => match name.parse::<Tz>() {
                Ok(zone) => {
                    self.last = Some((name.to_owned(), zone));
                    Ok(zone)
                }
                Err(_) => exec_err!(
                    "{}: unknown time zone '{name}' (expected an IANA name such as \
                     'Europe/Paris' or 'UTC')",
                    self.function
                ),
            },
        }
    }
}

/// The wall-clock time in `zone` at UTC instant `nanos`, as nanoseconds since the local epoch.
fn local_nanos(function: &str, nanos: i64, zone: Tz) -> Result<i64> {
    let utc = DateTime::from_timestamp_nanos(nanos).naive_utc();
    let offset = i64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc());
    match nanos.checked_add(offset * 1_000_000_000) {
        Some(local) => Ok(local),
        None => exec_err!("{function}: {utc} in {zone} is out of the timestamp range"),
    }
}

impl ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        match self.output {
            Output::Day => "local_day",
            Output::Time => "local_time",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        check_arity(&format!("{name}(time, tz)"), args, &[2])?;
        Ok(vec![
            instant(name, "time", &args[0])?,
            text(name, "tz", &args[1])?,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.output {
            Output::Day => DataType::Date32,
            Output::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let function = match self.output {
            Output::Day => "local_day",
            Output::Time => "local_time",
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let times = arrays[0].as_primitive::<TimestampNanosecondType>();
        let names = arrays[1].as_string::<i32>();
        let mut zones = Zones {
            function,
            last: None,
        };
        let local = times
            .iter()
            .zip(names)
            .map(|pair| match pair {
                (Some(time), Some(name)) => local_nanos(function, time, zones.get(name)?).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<Option<i64>>>>()?;
        let array: ArrayRef = match self.output {
            Output::Day => Arc::new(Date32Array::from_iter(
                local
                    .into_iter()
                    .map(|nanos| nanos.map(|n| n.div_euclid(NANOS_PER_DAY) as i32)),
            )),
            Output::Time => Arc::new(TimestampNanosecondArray::from_iter(local)),
        };
        Ok(ColumnarValue::Array(array))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    use chrono::DateTime;

    use super::super::testing::{error, table};

    /// (UTC time in RFC 3339, zone)
    fn instants(rows: &[(&str, Option<&str>)]) -> RecordBatch {
        let nanos = |t: &str| {
            DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        };
        RecordBatch::try_from_iter(vec![
            (
                "time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    rows.iter().map(|r| nanos(r.0)),
                )) as _,
            ),
            (
                "tz",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))) as _,
            ),
        ])
        .unwrap()
    }

    #[tokio::test]
    async fn days_follow_daylight_saving_changes() {
        let paris = Some("Europe/Paris");
        let new_york = Some("America/New_York");
        let batch = instants(&[
            // Paris moves from +01 to +02 at 01:00Z on 2026-03-29.
            ("2026-03-28T22:59:59Z", paris),
            ("2026-03-28T23:00:00Z", paris),
            ("2026-03-29T00:59:59Z", paris),
            ("2026-03-29T01:00:00Z", paris),
            ("2026-03-29T21:59:59Z", paris),
            ("2026-03-29T22:00:00Z", paris),
            // And back at 01:00Z on 2026-10-25.
            ("2026-10-25T00:59:59Z", paris),
            ("2026-10-25T01:00:00Z", paris),
            ("2026-10-25T22:59:59Z", paris),
            ("2026-10-25T23:00:00Z", paris),
            // New York from -05 to -04 at 07:00Z on 2026-03-08.
            ("2026-03-08T04:59:59Z", new_york),
            ("2026-03-08T05:00:00Z", new_york),
            ("2026-03-08T06:59:59Z", new_york),
            ("2026-03-08T07:00:00Z", new_york),
            ("2026-03-09T03:59:59Z", new_york),
            ("2026-03-09T04:00:00Z", new_york),
            ("2026-03-09T04:00:00Z", None),
        ]);
        assert_eq!(
            table(
                "SELECT tz, local_day(time, tz) AS day, local_time(time, tz) AS local FROM t",
                batch,
            )
            .await,
            "\
+------------------+------------+---------------------+
| tz               | day        | local               |
+------------------+------------+---------------------+
| Europe/Paris     | 2026-03-28 | 2026-03-28T23:59:59 |
| Europe/Paris     | 2026-03-29 | 2026-03-29T00:00:00 |
| Europe/Paris     | 2026-03-29 | 2026-03-29T01:59:59 |
| Europe/Paris     | 2026-03-29 | 2026-03-29T03:00:00 |
| Europe/Paris     | 2026-03-29 | 2026-03-29T23:59:59 |
| Europe/Paris     | 2026-03-30 | 2026-03-30T00:00:00 |
| Europe/Paris     | 2026-10-25 | 2026-10-25T02:59:59 |
| Europe/Paris     | 2026-10-25 | 2026-10-25T02:00:00 |
| Europe/Paris     | 2026-10-25 | 2026-10-25T23:59:59 |
| Europe/Paris     | 2026-10-26 | 2026-10-26T00:00:00 |
| America/New_York | 2026-03-07 | 2026-03-07T23:59:59 |
| America/New_York | 2026-03-08 | 2026-03-08T00:00:00 |
| America/New_York | 2026-03-08 | 2026-03-08T01:59:59 |
| America/New_York | 2026-03-08 | 2026-03-08T03:00:00 |
| America/New_York | 2026-03-08 | 2026-03-08T23:59:59 |
| America/New_York | 2026-03-09 | 2026-03-09T00:00:00 |
|                  |            |                     |
+------------------+------------+---------------------+"
        );
    }

    #[tokio::test]
    async fn the_day_of_the_autumn_change_has_25_hours() {
        // From midnight in Paris on 2026-10-24, for three local days.
        let hours: Vec<i64> = (0..73).collect();
        let start = DateTime::parse_from_rfc3339("2026-10-23T22:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let batch = RecordBatch::try_from_iter(vec![(
            "time",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                hours.iter().map(|h| start + h * 3_600_000_000_000),
            )) as _,
        )])
        .unwrap();
        assert_eq!(
            table(
                "SELECT local_day(time, 'Europe/Paris') AS day, count(*) AS hours FROM t \
                 GROUP BY 1 ORDER BY 1",
                batch,
            )
            .await,
            "\
+------------+-------+
| day        | hours |
+------------+-------+
| 2026-10-24 | 24    |
| 2026-10-25 | 25    |
| 2026-10-26 | 24    |
+------------+-------+"
        );
    }

    #[tokio::test]
    async fn other_timestamp_units_and_times_before_1970() {
        let batch = instants(&[("2026-01-01T00:00:00Z", None)]);
        assert_eq!(
            table(
                "SELECT local_day(to_timestamp_seconds(0), 'Asia/Tokyo') AS tokyo, \
                 local_day(to_timestamp_seconds(-1), 'UTC') AS before, \
                 local_time(to_timestamp_millis(1), 'America/New_York') AS ny FROM t",
                batch,
            )
            .await,
            "\
+------------+------------+-------------------------+
| tokyo      | before     | ny                      |
+------------+------------+-------------------------+
| 1970-01-01 | 1969-12-31 | 1969-12-31T19:00:00.001 |
+------------+------------+-------------------------+"
        );
    }

    #[tokio::test]
    async fn refuses_unknown_zones_and_non_timestamps() {
        let batch = instants(&[("2026-01-01T00:00:00Z", Some("Europe/Pariss"))]);
        let unknown = error("SELECT local_day(time, tz) FROM t", batch.clone()).await;
        assert!(
            unknown.contains("local_day: unknown time zone 'Europe/Pariss'"),
            "{unknown}"
        );
        let number = error("SELECT local_time(1, 'UTC') FROM t", batch.clone()).await;
        assert!(
            number.contains("local_time: time must be a timestamp, got Int64"),
            "{number}"
        );
        let arity = error("SELECT local_day(time) FROM t", batch).await;
        assert!(arity.contains("local_day(time, tz)"), "{arity}");
    }

    #[tokio::test]
    async fn each_row_uses_its_own_zone() {
        let subjects = RecordBatch::try_from_iter(vec![
            ("subject_id", Arc::new(Int64Array::from(vec![1, 2])) as _),
            (
                "tz",
                Arc::new(StringArray::from(vec![
                    "Pacific/Auckland",
                    "America/Los_Angeles",
                ])) as _,
            ),
        ])
        .unwrap();
        assert_eq!(
            table(
                "SELECT subject_id, local_day(TIMESTAMP '2026-06-01T12:00:00', tz) AS day \
                 FROM t ORDER BY subject_id",
                subjects,
            )
            .await,
            "\
+------------+------------+
| subject_id | day        |
+------------+------------+
| 1          | 2026-06-02 |
| 2          | 2026-06-01 |
+------------+------------+"
        );
    }
}
