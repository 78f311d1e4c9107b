//! InfluxDB line protocol, as Telegraf, InfluxDB client libraries and many gateways write it:
//!
//! ```text
//! heart_rate,subject=S0001,source=polar bpm=72i 1772352000000000000
//! body,subject=S0001 weight_kg=71.5,fat_pct=18.2 1772352000
//! ```
//!
//! | line protocol | stream.column |
//! |---|---|
//! | measurement | the stream (`heart_rate`, `body`, …); one extract per measurement |
//! | tag `subject` | `subject` (pseudonym; created when new) |
//! | tag `source` | `source` (else `line-protocol`) |
//! | other tags | the column of that name (a stream key such as `meals.meal`), ignored when the stream has none |
//! | field `name=value` | the value column `name`; `72` and `72.5` floats, `72i` integers, `72u` unsigned, `t`/`true`/`F`/`false` booleans, `"text"` strings |
//! | timestamp | `time`, in the precision of the request (`ns` by default, `us`, `ms`, `s`); a line without one gets the time it was received |
//!
//! Escaping follows the specification: a backslash escapes a comma or space in measurements,
//! and a comma, space or equals sign in tag keys, tag values and field keys; in string field
//! values it escapes a double quote or a backslash. Lines starting with `#` are comments.
//!
//! Values are passed on as written (as text); cleaning types them, converts units and checks
//! ranges like any other format's. A line that does not parse is handed on as a row carrying
//! only the reason, in the [`MALFORMED`] column, so that cleaning quarantines it with its line
//! number while the other lines still land. A malformed line whose measurement cannot be read
//! joins the previous line's measurement (or the next one's).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    sync::Arc,
};

use arrow::{
    array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray},
    datatypes::{DataType, Field, Schema, TimeUnit},
};

use super::{Input, Sink};
use crate::{
    Error, Result,
    extract::{Extract, MALFORMED},
};

/// Rows per extract of a measurement.
const BATCH_ROWS: usize = 64 * 1024;
/// The `source` of lines without a `source` tag.
const DEFAULT_SOURCE: &str = "line-protocol";
/// Characters of a malformed line quoted in its reason.
const QUOTED_CHARS: usize = 80;

/// The unit of line-protocol timestamps (`precision=` of the InfluxDB write API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }

    fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            other => return Err(format!("unknown precision '{other}': ns, us, ms or s")),
        })
    }
}

/// Whether the first bytes look like line protocol: the first line that is not a comment is
/// `measurement[,tags] field=value…`.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let Some(line) = text
        .lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    // A line cut by the end of the head still shows its measurement and first field.
    match parse(line.as_bytes(), 0, Precision::Nanoseconds) {
        Ok(_) => true,
        Err(failure) => {
            failure.measurement.is_some() && line.len() + 1 >= head.len() && line.contains('=')
        }
    }
}

/// Reads line protocol; lines without a timestamp get the time the reading started.
pub(crate) fn read(input: Input, precision: Precision, sink: &mut Sink) -> Result<()> {
    let received = chrono::Utc::now()
        .timestamp_nanos_opt()
        .ok_or_else(|| Error::file(&input.name, "the clock is out of range"))?;
    let mut lines = BufReader::with_capacity(1 << 20, input.open()?);
    let mut reader = Reader {
        file: input.name.clone(),
        tables: HashMap::new(),
        order: Vec::new(),
        last: None,
        orphans: Vec::new(),
    };
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = lines.read_until(b'\n', &mut line).map_err(|e| {
            Error::file(&input.name, format!("cannot read after line {number}: {e}"))
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let trimmed = trim_start(content);
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        match parse(trimmed, received, precision) {
            Ok(point) => reader.point(number, point, sink)?,
            Err(failure) => reader.malformed(number, trimmed, failure, sink)?,
        }
    }
    reader.finish(sink)
}

fn trim_start(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    &line[start..]
}

/// One parsed line.
#[derive(Debug, PartialEq)]
struct Point {
    measurement: String,
    /// Tags then fields, values as text.
    columns: Vec<(String, String)>,
    time: i64,
}

/// Why a line does not parse, and its measurement when that much was readable.
#[derive(Debug)]
struct Failure {
    measurement: Option<String>,
    reason: String,
}

struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.line.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.line.len()
    }

    /// Text up to the first unescaped byte of `stops`, unescaping the bytes of `escapable`.
    fn token(&mut self, stops: &[u8], escapable: &[u8]) -> Result<String, String> {
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            if stops.contains(&byte) {
                break;
            }
            if byte == b'\\'
                && let Some(next) = self.line.get(self.at + 1)
                && escapable.contains(next)
            {
                out.push(*next);
                self.at += 2;
                continue;
            }
            out.push(byte);
            self.at += 1;
        }
        String::from_utf8(out).map_err(|_| format!("byte {}: not UTF-8", self.at + 1))
    }

    /// A double-quoted string field value, the cursor on its opening quote.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            match byte {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(out).map_err(|_| "a string is not UTF-8".to_owned());
                }
                b'\\' if matches!(self.line.get(self.at + 1), Some(b'"' | b'\\')) => {
                    out.push(self.line[self.at + 1]);
                    self.at += 2;
                }
                _ => {
                    out.push(byte);
                    self.at += 1;
                }
            }
        }
        Err(format!(
            "the string starting at byte {} is not closed",
            start + 1
        ))
    }
}

/// Parses one line (without its end of line and leading whitespace).
fn parse(line: &[u8], received: i64, precision: Precision) -> Result<Point, Failure> {
    let mut cursor = Cursor { line, at: 0 };
    let fail = |measurement: Option<&str>, reason: String| Failure {
        measurement: measurement.map(str::to_owned),
        reason,
    };
    let measurement = cursor
        .token(b", ", b", ")
        .map_err(|reason| fail(None, reason))?;
    if measurement.is_empty() {
        return Err(fail(None, "no measurement".into()));
    }
    let m = Some(measurement.as_str());
    let mut columns: Vec<(String, String)> = Vec::new();
    let add = |columns: &mut Vec<(String, String)>, key: String, value: String| {
        if key == "time" {
            return Err(fail(m, "'time' cannot be a tag or field key".into()));
        }
        if columns.iter().any(|(k, _)| *k == key) {
            return Err(fail(m, format!("'{key}' is given twice")));
        }
        columns.push((key, value));
        Ok(())
    };
    while cursor.peek() == Some(b',') {
        cursor.at += 1;
        let key = cursor
            .token(b"=, ", b",= ")
            .map_err(|reason| fail(m, reason))?;
        if key.is_empty() || cursor.peek() != Some(b'=') {
            return Err(fail(
                m,
                format!("tag '{key}' has no value (expected key=value)"),
            ));
        }
        cursor.at += 1;
        let value = cursor
            .token(b", ", b",= ")
            .map_err(|reason| fail(m, reason))?;
        if value.is_empty() {
            return Err(fail(m, format!("tag '{key}' has an empty value")));
        }
        add(&mut columns, key, value)?;
    }
    if cursor.peek() != Some(b' ') {
        return Err(fail(
            m,
            "no field set (expected a space, then key=value)".into(),
        ));
    }
    while cursor.peek() == Some(b' ') {
        cursor.at += 1;
    }
    loop {
        let key = cursor
            .token(b"=, ", b",= ")
            .map_err(|reason| fail(m, reason))?;
        if key.is_empty() || cursor.peek() != Some(b'=') {
            return Err(fail(
                m,
                format!("field '{key}' has no value (expected key=value)"),
            ));
        }
        cursor.at += 1;
        let value = if cursor.peek() == Some(b'"') {
            cursor.quoted().map_err(|reason| fail(m, reason))?
        } else {
            let raw = cursor.token(b", ", b"").map_err(|reason| fail(m, reason))?;
            field_value(&raw).map_err(|reason| fail(m, format!("field '{key}': {reason}")))?
        };
        add(&mut columns, key, value)?;
        if cursor.peek() == Some(b',') {
            cursor.at += 1;
            continue;
        }
        break;
    }
    while cursor.peek() == Some(b' ') {
        cursor.at += 1;
    }
    let time = if cursor.done() {
        received
    } else {
        let raw = cursor.token(b" ", b"").map_err(|reason| fail(m, reason))?;
        while cursor.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            cursor.at += 1;
        }
        if !cursor.done() {
            return Err(fail(
                m,
                format!(
                    "unexpected text after the timestamp at byte {}",
                    cursor.at + 1
                ),
            ));
        }
        let value: i64 = raw
            .parse()
            .map_err(|_| fail(m, format!("timestamp '{raw}' is not an integer")))?;
        value.checked_mul(precision.nanos()).ok_or_else(|| {
            fail(
                m,
                format!(
                    "timestamp {raw} is out of range for precision {}",
                    precision.name()
                ),
            )
        })?
    };
    Ok(Point {
        measurement,
        columns,
        time,
    })
}

/// A field value other than a string, as text cleaning understands.
fn field_value(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("no value".into());
    }
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok("true".into()),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok("false".into()),
        _ => {}
    }
    if let Some(integer) = raw.strip_suffix('i') {
        return integer
            .parse::<i64>()
            .map(|v| v.to_string())
            .map_err(|_| format!("'{raw}' is not an integer"));
    }
    if let Some(unsigned) = raw.strip_suffix('u') {
        return unsigned
            .parse::<u64>()
            .map(|v| v.to_string())
            .map_err(|_| format!("'{raw}' is not an unsigned integer"));
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(raw.to_owned()),
        _ => Err(format!("'{raw}' is not a number, boolean or quoted string")),
    }
}

/// The rows of one measurement until they are handed on; columns are added as lines name
/// them, earlier rows missing them.
#[derive(Default)]
struct Table {
    names: Vec<String>,
    index: HashMap<String, usize>,
    values: Vec<Vec<Option<String>>>,
    times: Vec<Option<i64>>,
    malformed: Vec<Option<String>>,
    records: Vec<u64>,
}

impl Table {
    fn push(&mut self, record: u64, point: Point) {
        let row = self.records.len();
        for (name, value) in point.columns {
            let column = match self.index.get(&name) {
                Some(column) => *column,
                None => {
                    self.index.insert(name.clone(), self.names.len());
                    self.names.push(name);
                    self.values.push(vec![None; row]);
                    self.names.len() - 1
                }
            };
            self.values[column].push(Some(value));
        }
        self.end_row(record, Some(point.time), None);
    }

    fn push_malformed(&mut self, record: u64, reason: String) {
        self.end_row(record, None, Some(reason));
    }

    /// Pads the columns this row did not name.
    fn end_row(&mut self, record: u64, time: Option<i64>, malformed: Option<String>) {
        let rows = self.records.len() + 1;
        for column in &mut self.values {
            if column.len() < rows {
                column.push(None);
            }
        }
        self.times.push(time);
        self.malformed.push(malformed);
        self.records.push(record);
    }

    fn flush(&mut self, measurement: &str, file: &Arc<str>, sink: &mut Sink) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let mut fields = vec![Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        )];
        let mut columns: Vec<ArrayRef> = vec![Arc::new(
            TimestampNanosecondArray::from(std::mem::take(&mut self.times)).with_timezone("UTC"),
        )];
        for (name, values) in self.names.iter().zip(&mut self.values) {
            fields.push(Field::new(name, DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(std::mem::take(values))));
        }
        let malformed = std::mem::take(&mut self.malformed);
        if malformed.iter().any(Option::is_some) {
            fields.push(Field::new(MALFORMED, DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(malformed)));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::file(file, format!("cannot build rows: {e}")))?;
        let records = std::mem::take(&mut self.records);
        *self = Table::default();
        sink(Extract {
            stream: measurement.to_owned(),
            batch,
            units: HashMap::new(),
            records,
            file: file.clone(),
            default_source: DEFAULT_SOURCE.to_owned(),
        })
    }
}

struct Reader {
    file: Arc<str>,
    tables: HashMap<String, Table>,
    /// Measurements in the order first met, so extracts come out in a stable order.
    order: Vec<String>,
    /// The measurement of the last line that named one.
    last: Option<String>,
    /// Malformed lines met before any measurement: (line, reason).
    orphans: Vec<(u64, String)>,
}

impl Reader {
    fn table(&mut self, measurement: &str) -> &mut Table {
        if !self.tables.contains_key(measurement) {
            self.order.push(measurement.to_owned());
        }
        self.tables.entry(measurement.to_owned()).or_default()
    }

    fn point(&mut self, record: u64, point: Point, sink: &mut Sink) -> Result<()> {
        let measurement = point.measurement.clone();
        self.adopt_orphans(&measurement);
        self.table(&measurement).push(record, point);
        self.last = Some(measurement.clone());
        self.flush_if_full(&measurement, sink)
    }

    fn malformed(
        &mut self,
        record: u64,
        line: &[u8],
        failure: Failure,
        sink: &mut Sink,
    ) -> Result<()> {
        let quoted: String = String::from_utf8_lossy(line)
            .chars()
            .take(QUOTED_CHARS)
            .collect();
        let reason = format!("line {record}: {} (`{quoted}`)", failure.reason);
        let Some(measurement) = failure.measurement.or_else(|| self.last.clone()) else {
            self.orphans.push((record, reason));
            return Ok(());
        };
        self.adopt_orphans(&measurement);
        self.table(&measurement).push_malformed(record, reason);
        self.last = Some(measurement.clone());
        self.flush_if_full(&measurement, sink)
    }

    fn adopt_orphans(&mut self, measurement: &str) {
        for (record, reason) in std::mem::take(&mut self.orphans) {
            self.table(measurement).push_malformed(record, reason);
        }
    }

    fn flush_if_full(&mut self, measurement: &str, sink: &mut Sink) -> Result<()> {
        let file = self.file.clone();
        let table = self.table(measurement);
        if table.records.len() >= BATCH_ROWS {
            table.flush(measurement, &file, sink)?;
        }
        Ok(())
    }

    fn finish(mut self, sink: &mut Sink) -> Result<()> {
        if let Some((_, reason)) = self.orphans.first() {
            return Err(Error::file(
                &self.file,
                format!("no line is valid line protocol; {reason}"),
            ));
        }
        for measurement in std::mem::take(&mut self.order) {
            if let Some(table) = self.tables.get_mut(&measurement) {
                table.flush(&measurement, &self.file, sink)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::TimestampNanosecondType;

    use super::*;

    const RECEIVED: i64 = 1_000;

    fn point(line: &str) -> Point {
        parse(line.as_bytes(), RECEIVED, Precision::Nanoseconds)
            .unwrap_or_else(|f| panic!("{line}: {}", f.reason))
    }

    fn failure(line: &str) -> Failure {
        match parse(line.as_bytes(), RECEIVED, Precision::Nanoseconds) {
            Ok(p) => panic!("{line} parsed as {p:?}"),
            Err(f) => f,
        }
    }

    fn columns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lines_give_tags_fields_and_time() {
        let p = point("heart_rate,subject=S1,source=polar bpm=72i 1772352000000000000");
        assert_eq!(p.measurement, "heart_rate");
        assert_eq!(
            p.columns,
            columns(&[("subject", "S1"), ("source", "polar"), ("bpm", "72")])
        );
        assert_eq!(p.time, 1_772_352_000_000_000_000);

        let p = point("body weight_kg=71.5,fat_pct=1.8e1,note=\"after \\\"run\\\", c:\\\\x\",ok=t");
        assert_eq!(
            p.columns,
            columns(&[
                ("weight_kg", "71.5"),
                ("fat_pct", "1.8e1"),
                ("note", "after \"run\", c:\\x"),
                ("ok", "true")
            ])
        );
        assert_eq!(p.time, RECEIVED, "no timestamp: the time received");
        assert_eq!(point("m f=7u -5").columns, columns(&[("f", "7")]));
        assert_eq!(point("m f=FALSE  -5  ").time, -5);
    }

    #[test]
    fn escapes_follow_the_specification() {
        let p = point(r"my\ stream\,x,tag\ key\=a=va\,l\ ue field\=k=1 5");
        assert_eq!(p.measurement, "my stream,x");
        assert_eq!(
            p.columns,
            columns(&[("tag key=a", "va,l ue"), ("field=k", "1")])
        );
        // An equals sign needs no escape in a measurement; a backslash before anything else
        // is kept.
        assert_eq!(point(r"a=b\x f=1").measurement, r"a=b\x");
    }

    #[test]
    fn precision_scales_timestamps() {
        let at = |precision| {
            parse(b"m f=1 1772352000", RECEIVED, precision)
                .unwrap()
                .time
        };
        assert_eq!(at(Precision::Seconds), 1_772_352_000_000_000_000);
        assert_eq!(at(Precision::Milliseconds), 1_772_352_000_000_000);
        assert_eq!(at(Precision::Microseconds), 1_772_352_000_000);
        assert_eq!(at(Precision::Nanoseconds), 1_772_352_000);
        let overflow = parse(b"m f=1 9223372036854775", RECEIVED, Precision::Seconds).unwrap_err();
        assert!(
            overflow.reason.contains("out of range"),
            "{}",
            overflow.reason
        );
        assert_eq!("ms".parse::<Precision>(), Ok(Precision::Milliseconds));
        assert!("hours".parse::<Precision>().is_err());
    }

    #[test]
    fn malformed_lines_say_why() {
        let cases = [
            ("heart_rate,subject=S1", "no field set"),
            ("heart_rate bpm", "has no value"),
            ("heart_rate bpm=", "no value"),
            ("heart_rate bpm=abc", "'abc' is not a number"),
            ("heart_rate bpm=7.5i", "not an integer"),
            ("heart_rate bpm=72 12:00", "not an integer"),
            ("heart_rate bpm=72 1 2", "unexpected text"),
            ("heart_rate,subject bpm=72", "tag 'subject' has no value"),
            ("heart_rate,subject= bpm=72", "empty value"),
            ("heart_rate note=\"open", "not closed"),
            ("heart_rate bpm=1,bpm=2", "given twice"),
            ("heart_rate time=1", "'time' cannot be"),
            ("heart_rate bpm=NaN", "not a number"),
        ];
        for (line, expected) in cases {
            let f = failure(line);
            assert!(f.reason.contains(expected), "{line}: {}", f.reason);
            assert_eq!(f.measurement.as_deref(), Some("heart_rate"), "{line}");
        }
        assert!(failure(",a=b f=1").measurement.is_none());
        assert!(failure(" f=1").measurement.is_none());
    }

    #[test]
    fn the_format_is_recognized_from_content() {
        assert!(sniff(
            b"# comment\nheart_rate,subject=S1 bpm=72i 1772352000000000000\n"
        ));
        assert!(sniff(b"steps count=10"));
        assert!(!sniff(b"subject,time,bpm\nS1,2026-03-01T00:00:00Z,72\n"));
        assert!(!sniff(b"{\"subject\": \"S1\"}\n"));
        assert!(!sniff(b""));
        // The head ends inside a long line.
        let mut long = b"heart_rate,subject=S1 note=\"".to_vec();
        long.extend(std::iter::repeat_n(b'x', 600));
        assert!(sniff(&long[..512]));
    }

    fn read_all(text: &str) -> Result<Vec<Extract>> {
        let mut extracts = Vec::new();
        read(
            Input::bytes("body.lp", text.as_bytes().to_vec()),
            Precision::Seconds,
            &mut |e| {
                extracts.push(e);
                Ok(())
            },
        )?;
        Ok(extracts)
    }

    fn text(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"))
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_body_becomes_one_extract_per_measurement_with_bad_lines_marked() {
        let extracts = read_all(
            "# from the gateway\r\n\
             heart_rate,subject=S1,source=polar bpm=72i 1772352000\r\n\
             \n\
             ,broken\n\
             heart_rate,subject=S2 bpm=oops 1772352060\n\
             body,subject=S1 weight_kg=71.5 1772352000\n\
             heart_rate,subject=S2 bpm=64.5 1772352120\n",
        )
        .unwrap();
        assert_eq!(extracts.len(), 2);
        let hr = &extracts[0];
        assert_eq!(hr.stream, "heart_rate");
        assert_eq!(
            hr.records,
            [2, 4, 5, 7],
            "line numbers, comments and blanks counted"
        );
        assert_eq!(hr.default_source, "line-protocol");
        assert_eq!(
            text(&hr.batch, "subject"),
            [Some("S1".into()), None, None, Some("S2".into())]
        );
        assert_eq!(
            text(&hr.batch, "source"),
            [Some("polar".into()), None, None, None]
        );
        assert_eq!(
            text(&hr.batch, "bpm"),
            [Some("72".into()), None, None, Some("64.5".into())]
        );
        let malformed = text(&hr.batch, MALFORMED);
        assert!(malformed[0].is_none() && malformed[3].is_none());
        let orphan = malformed[1].as_deref().unwrap();
        assert!(orphan.starts_with("line 4: no measurement"), "{orphan}");
        let bad_value = malformed[2].as_deref().unwrap();
        assert!(
            bad_value.starts_with("line 5: field 'bpm': 'oops' is not a number")
                && bad_value.contains("`heart_rate,subject=S2 bpm=oops 1772352060`"),
            "{bad_value}"
        );
        let times = hr
            .batch
            .column_by_name("time")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        assert_eq!(times.value(0), 1_772_352_000_000_000_000);
        assert!(times.is_null(1) && times.is_null(2));
        assert_eq!(
            hr.batch
                .schema()
                .field_with_name("time")
                .unwrap()
                .data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        let body = &extracts[1];
        assert_eq!(
            (body.stream.as_str(), body.records.as_slice()),
            ("body", &[6][..])
        );
        assert!(body.batch.column_by_name(MALFORMED).is_none());
    }

    #[test]
    fn a_malformed_line_before_any_measurement_joins_the_next() {
        let extracts = read_all(",bad\nsteps,subject=S1 count=5i 1772352000\n").unwrap();
        assert_eq!(extracts.len(), 1);
        assert_eq!(extracts[0].records, [1, 2]);
        assert!(text(&extracts[0].batch, MALFORMED)[0].is_some());
    }

    #[test]
    fn a_body_without_one_readable_line_is_refused() {
        let err = read_all(",bad\n,worse\n").unwrap_err().to_string();
        assert!(
            err.starts_with("body.lp: no line is valid line protocol; line 1: no measurement"),
            "{err}"
        );
        assert!(read_all("# only a comment\n\n").unwrap().is_empty());
    }
}
