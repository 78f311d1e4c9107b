//! What the GPX and TCX readers share: a walk over an XML document that knows the path of
//! every element and the text inside it, the `activity_samples` and `workouts` rows both
//! make, sport names, and a workout's heart rates and time span.
//!
//! Both readers read the whole document before handing anything on, so a file that turns out
//! malformed half-way gives no extract at all, whatever the sink does with extracts. Track
//! files are small (tens of MB at most): their rows, held as Arrow text columns cut every
//! [`BATCH_ROWS`] rows, cost about what the file does.

use std::{fmt::Display, io::BufReader, sync::Arc};

use quick_xml::{
    Decoder, Reader,
    escape::resolve_predefined_entity,
    events::{BytesStart, Event},
};

use super::{Input, Sink, text_rows::Table};
use crate::{
    Error, Result,
    extract::Extract,
    times::{self, When},
};

/// Rows per extract.
pub(super) const BATCH_ROWS: usize = 64 * 1024;

/// Heart rates cleaning accepts (the range of `activity_samples.heart_rate` and of
/// `workouts.avg_hr`/`max_hr`): a reading outside it (a strap's 0 or 255 when it loses
/// contact) would drag a workout's mean or, as its maximum, get the whole workout rejected.
const PLAUSIBLE_HEART_RATE: std::ops::RangeInclusive<f64> = 25.0..=250.0;

const SAMPLES: &[&str] = &[
    "time",
    "lat",
    "lon",
    "altitude_m",
    "speed_m_s",
    "cadence",
    "power_w",
    "heart_rate",
    "distance_m",
];

const WORKOUTS: &[&str] = &[
    "time",
    "end_time",
    "sport",
    "distance_m",
    "energy_kcal",
    "avg_hr",
    "max_hr",
];

/// A row of `activity_samples`, values as the file wrote them.
#[derive(Debug, Default)]
pub(super) struct Sample {
    pub record: u64,
    pub time: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
    pub altitude: Option<String>,
    pub speed: Option<String>,
    pub cadence: Option<String>,
    pub power: Option<String>,
    pub heart_rate: Option<String>,
    pub distance: Option<String>,
}

/// A row of `workouts`.
#[derive(Debug, Default)]
pub(super) struct Workout {
    pub record: u64,
    pub time: Option<String>,
    pub end_time: Option<String>,
    pub sport: Option<String>,
    pub distance: Option<String>,
    pub energy: Option<String>,
    pub avg_hr: Option<String>,
    pub max_hr: Option<String>,
}

/// The rows of a file, cut into extracts, held until the whole file was read.
pub(super) struct Rows {
    file: Arc<str>,
    batch_rows: usize,
    samples: Table,
    workouts: Table,
    ready: Vec<Extract>,
    /// The first extract of the part whose source is not known yet.
    part_start: usize,
}

impl Rows {
    pub(super) fn new(file: Arc<str>, batch_rows: usize) -> Self {
        Rows {
            file,
            batch_rows,
            samples: Table::new("activity_samples", SAMPLES),
            workouts: Table::new("workouts", WORKOUTS),
            ready: Vec::new(),
            part_start: 0,
        }
    }

    pub(super) fn sample(&mut self, s: &Sample) -> Result<()> {
        let row = [
            &s.time,
            &s.lat,
            &s.lon,
            &s.altitude,
            &s.speed,
            &s.cadence,
            &s.power,
            &s.heart_rate,
            &s.distance,
        ];
        self.samples.push(s.record, &row.map(Option::as_deref));
        if self.samples.len() >= self.batch_rows {
            self.ready.extend(self.samples.finish(&self.file, "")?);
        }
        Ok(())
    }

    pub(super) fn workout(&mut self, w: &Workout) -> Result<()> {
        let row = [
            &w.time,
            &w.end_time,
            &w.sport,
            &w.distance,
            &w.energy,
            &w.avg_hr,
            &w.max_hr,
        ];
        self.workouts.push(w.record, &row.map(Option::as_deref));
        if self.workouts.len() >= self.batch_rows {
            self.ready.extend(self.workouts.finish(&self.file, "")?);
        }
        Ok(())
    }

    /// Closes the rows gathered since the last part: their extracts name `source` as the
    /// `source` of their rows (a TCX file names it at the end of each activity).
    pub(super) fn close_part(&mut self, source: &str) -> Result<()> {
        self.ready.extend(self.samples.finish(&self.file, "")?);
        self.ready.extend(self.workouts.finish(&self.file, "")?);
        for extract in &mut self.ready[self.part_start..] {
            source.clone_into(&mut extract.default_source);
        }
        self.part_start = self.ready.len();
        Ok(())
    }

    /// Hands every extract on, once the file was read to its end.
    pub(super) fn hand_on(self, sink: &mut Sink) -> Result<()> {
        self.ready.into_iter().try_for_each(sink)
    }
}

/// The local names of the elements from the root to the current one, included.
#[derive(Clone, Copy)]
pub(super) struct Path<'a>(&'a [Box<[u8]>]);

impl Path<'_> {
    pub(super) fn depth(&self) -> usize {
        self.0.len()
    }

    pub(super) fn name(&self) -> &[u8] {
        self.0.last().map_or(&[], |n| n)
    }

    pub(super) fn parent(&self) -> &[u8] {
        self.0.len().checked_sub(2).map_or(&[], |i| &self.0[i])
    }
}

/// What the walk meets.
pub(super) enum Step<'a> {
    /// An element opens (an empty one opens, then closes).
    Open(&'a BytesStart<'a>, Decoder),
    /// An element closes: the text directly inside it, unescaped and trimmed.
    Close(&'a str),
}

/// Why a visit stopped the walk.
#[derive(Debug)]
pub(super) enum Fault {
    /// The element at hand is not well-formed (a broken attribute); the walk says where.
    Malformed(String),
    Failed(Error),
}

impl From<Error> for Fault {
    fn from(error: Error) -> Self {
        Fault::Failed(error)
    }
}

/// Walks an XML document whose root element is `root`, calling `visit` as elements open and
/// close. A document that is not well-formed, is cut short, or has another root is an error
/// that names the byte where it goes wrong; `format` names the kind of file in messages.
pub(super) fn walk(
    input: &Input,
    format: &str,
    root: &str,
    mut visit: impl FnMut(Path<'_>, Step<'_>) -> std::result::Result<(), Fault>,
) -> Result<()> {
    let file = &*input.name;
    let malformed = |position: u64, problem: &dyn Display| {
        Error::file(
            file,
            format!("not a readable {format} at byte {position}: {problem}"),
        )
    };
    let fault = |at: u64| {
        move |fault: Fault| match fault {
            Fault::Malformed(problem) => malformed(at, &problem),
            Fault::Failed(error) => error,
        }
    };
    let mut reader = Reader::from_reader(BufReader::with_capacity(1 << 16, input.open()?));
    let mut buf = Vec::with_capacity(4096);
    let mut path: Vec<Box<[u8]>> = Vec::new();
    let mut text = String::new();
    let mut root_seen = false;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(reader.error_position(), &e))?;
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                let name = element.local_name();
                if !root_seen {
                    if name.as_ref() != root.as_bytes() {
                        return Err(Error::file(
                            file,
                            format!(
                                "not a {format}: its root element is <{}>, not <{root}>",
                                String::from_utf8_lossy(name.as_ref())
                            ),
                        ));
                    }
                    root_seen = true;
                } else if path.is_empty() {
                    return Err(malformed(at, &format!("an element after </{root}>")));
                }
                path.push(name.as_ref().into());
                text.clear();
                visit(Path(&path), Step::Open(element, reader.decoder())).map_err(fault(at))?;
                if matches!(event, Event::Empty(_)) {
                    visit(Path(&path), Step::Close("")).map_err(fault(at))?;
                    path.pop();
                }
            }
            Event::End(_) => {
                visit(Path(&path), Step::Close(text.trim())).map_err(fault(at))?;
                text.clear();
                path.pop();
            }
            Event::Text(content) => {
                text.push_str(&content.decode().map_err(|e| malformed(at, &e))?);
            }
            Event::CData(content) => {
                text.push_str(&content.decode().map_err(|e| malformed(at, &e))?);
            }
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                Ok(None) => {
                    let entity = reference.decode().map_err(|e| malformed(at, &e))?;
                    let resolved = resolve_predefined_entity(&entity)
                        .ok_or_else(|| malformed(at, &format!("unknown entity &{entity};")))?;
                    text.push_str(resolved);
                }
                Err(e) => return Err(malformed(at, &e)),
            },
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err(malformed(
            reader.buffer_position(),
            &format!("it ends before </{root}>: the file was cut short"),
        ));
    }
    if !root_seen {
        return Err(Error::file(
            file,
            format!("not a readable {format}: it has no <{root}> element"),
        ));
    }
    Ok(())
}

/// The text of an element, or `None` when it is empty.
pub(super) fn value(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// A number as a file writes it; `None` for anything else.
pub(super) fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A computed value as text, rounded to `places` decimals: sums and means carry float noise.
pub(super) fn decimal(value: f64, places: i32) -> String {
    let scale = 10f64.powi(places);
    ((value * scale).round() / scale + 0.0).to_string()
}

/// The sport of a GPX `<type>` or a TCX `Sport`, by the short names the workouts stream uses
/// for the common ones (`running`, `trail_running`, `Running` → `run`; cycling and biking →
/// `ride`; walking and hiking → `walk`; swimming → `swim`); others lowercased.
pub(super) fn sport(kind: &str) -> String {
    let kind = kind.trim().to_lowercase();
    let has = |word: &str| kind.contains(word);
    let short = match kind.as_str() {
        // Strava's GPX exports named the type by number before they used words.
        "9" => "run",
        "1" => "ride",
        _ if has("run") => "run",
        _ if has("cycling") || has("biking") || has("bike") || has("ride") => "ride",
        _ if has("walk") || has("hiking") || has("hike") => "walk",
        _ if has("swim") => "swim",
        _ => return kind,
    };
    short.to_owned()
}

/// The earliest and latest readable times of a workout's points, as written.
#[derive(Debug, Default)]
pub(super) struct Span {
    earliest: Option<(i64, String)>,
    latest: Option<(i64, String)>,
}

impl Span {
    /// Adds a point's time; text that is not a time is left for cleaning to reject.
    pub(super) fn add(&mut self, time: &str) {
        let at = match times::parse(time) {
            Some(When::Instant(nanos) | When::Local(nanos)) => nanos,
            None => return,
        };
        if self.earliest.as_ref().is_none_or(|(t, _)| at < *t) {
            self.earliest = Some((at, time.to_owned()));
        }
        if self.latest.as_ref().is_none_or(|(t, _)| at > *t) {
            self.latest = Some((at, time.to_owned()));
        }
    }

    pub(super) fn earliest(&self) -> Option<String> {
        self.earliest.as_ref().map(|(_, text)| text.clone())
    }

    pub(super) fn latest(&self) -> Option<String> {
        self.latest.as_ref().map(|(_, text)| text.clone())
    }
}

/// A time moved on by `seconds`, written as it was: an instant in UTC, or a wall-clock time
/// without offset. `None` when `start` is not a time or the result is out of range.
pub(super) fn later(start: &str, seconds: f64) -> Option<String> {
    let nanos = (seconds * 1e9).round();
    if !(i64::MIN as f64..=i64::MAX as f64).contains(&nanos) {
        return None;
    }
    let shift = |from: i64| {
        from.checked_add(nanos as i64)
            .map(chrono::DateTime::from_timestamp_nanos)
    };
    match times::parse(start)? {
        When::Instant(from) => {
            Some(shift(from)?.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        When::Local(from) => Some(
            shift(from)?
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S%.f")
                .to_string(),
        ),
    }
}

/// A workout's heart rate: the (weighted) mean and the maximum of the readings cleaning
/// accepts.
#[derive(Debug, Default)]
pub(super) struct HeartRates {
    weighted_sum: f64,
    weight: f64,
    max: Option<f64>,
}

impl HeartRates {
    /// A reading (or a lap's mean) counted with `weight` in the mean; a text that is not a
    /// plausible heart rate counts for nothing.
    pub(super) fn add_to_mean(&mut self, text: &str, weight: f64) {
        if let Some(bpm) = number(text).filter(|v| PLAUSIBLE_HEART_RATE.contains(v))
            && weight > 0.0
        {
            self.weighted_sum += bpm * weight;
            self.weight += weight;
        }
    }

    pub(super) fn add_to_max(&mut self, text: &str) {
        if let Some(bpm) = number(text).filter(|v| PLAUSIBLE_HEART_RATE.contains(v)) {
            self.max = Some(self.max.map_or(bpm, |m| m.max(bpm)));
        }
    }

    /// The mean, to a tenth of a beat per minute.
    pub(super) fn mean(&self) -> Option<String> {
        (self.weight > 0.0).then(|| decimal(self.weighted_sum / self.weight, 1))
    }

    pub(super) fn max(&self) -> Option<String> {
        self.max.map(|m| decimal(m, 1))
    }
}

#[cfg(test)]
pub(super) mod testing {
    use std::collections::HashMap;

    use arrow::array::{Array, AsArray};

    use super::*;

    /// A stream's rows across its extracts as text (by column name), with their records; the
    /// extracts must all come from `file` and name `source`.
    pub(crate) struct Found {
        pub rows: Vec<HashMap<String, Option<String>>>,
        pub records: Vec<u64>,
    }

    impl Found {
        /// The values of one column, row by row.
        pub(crate) fn column(&self, name: &str) -> Vec<Option<&str>> {
            self.rows
                .iter()
                .map(|r| r.get(name).and_then(|v| v.as_deref()))
                .collect()
        }
    }

    pub(crate) fn found(extracts: &[Extract], stream: &str, source: &str) -> Found {
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for extract in extracts.iter().filter(|e| e.stream == stream) {
            assert_eq!(extract.default_source, source);
            assert!(extract.units.is_empty());
            assert_eq!(extract.records.len(), extract.batch.num_rows());
            let schema = extract.batch.schema();
            for row in 0..extract.batch.num_rows() {
                let mut values = HashMap::new();
                for (field, column) in schema.fields().iter().zip(extract.batch.columns()) {
                    let text = column.as_string::<i32>();
                    values.insert(
                        field.name().clone(),
                        (!text.is_null(row)).then(|| text.value(row).to_owned()),
                    );
                }
                rows.push(values);
            }
            records.extend(&extract.records);
        }
        Found { rows, records }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of a walk, as text.
    fn steps(xml: &str) -> Result<Vec<String>> {
        let mut seen = Vec::new();
        walk(
            &Input::bytes("t.xml", xml.into()),
            "test file",
            "a",
            |path, step| {
                let name = String::from_utf8_lossy(path.name()).into_owned();
                let parent = String::from_utf8_lossy(path.parent()).into_owned();
                seen.push(match step {
                    Step::Open(..) => format!("open {name} in {parent} at {}", path.depth()),
                    Step::Close(text) => format!("close {name} '{text}'"),
                });
                Ok(())
            },
        )?;
        Ok(seen)
    }

    #[test]
    fn walks_know_paths_and_unescaped_text() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- c --><x:a xmlns:x=\"u\"><b> 1 &amp; &#50;<![CDATA[<3>]]> </b><x:c/></x:a>\n";
        assert_eq!(
            steps(xml).unwrap(),
            [
                "open a in  at 1",
                "open b in a at 2",
                "close b '1 & 2<3>'",
                "open c in a at 2",
                "close c ''",
                "close a ''",
            ]
        );
    }

    #[test]
    fn broken_documents_say_where() {
        let err = |xml: &str| steps(xml).unwrap_err().to_string();
        let xml = "<a><b></c></a>";
        assert!(
            err(xml).starts_with(&format!(
                "t.xml: not a readable test file at byte {}: ",
                xml.find("</c>").unwrap()
            )),
            "{}",
            err(xml)
        );
        assert_eq!(
            err("<a><b>1</b>"),
            "t.xml: not a readable test file at byte 11: it ends before </a>: the file was cut short"
        );
        assert_eq!(
            err("<a>&nbsp;</a>"),
            "t.xml: not a readable test file at byte 3: unknown entity &nbsp;"
        );
        assert_eq!(
            err("<a/><a/>"),
            "t.xml: not a readable test file at byte 4: an element after </a>"
        );
        assert_eq!(
            err("<z/>"),
            "t.xml: not a test file: its root element is <z>, not <a>"
        );
        assert_eq!(
            err("<!-- nothing -->"),
            "t.xml: not a readable test file: it has no <a> element"
        );
    }

    #[test]
    fn sports_have_short_names() {
        for (kind, expected) in [
            ("running", "run"),
            ("trail_running", "run"),
            ("Running", "run"),
            ("9", "run"),
            ("cycling", "ride"),
            ("road_biking", "ride"),
            ("Biking", "ride"),
            ("1", "ride"),
            ("walking", "walk"),
            ("hiking", "walk"),
            ("lap_swimming", "swim"),
            ("Other", "other"),
            (" Strength_Training ", "strength_training"),
        ] {
            assert_eq!(sport(kind), expected, "{kind}");
        }
    }

    #[test]
    fn times_move_on_in_their_own_kind() {
        assert_eq!(
            later("2026-03-03T07:15:00.000Z", 110.0).as_deref(),
            Some("2026-03-03T07:16:50Z")
        );
        assert_eq!(
            later("2026-03-03T08:15:00+01:00", 0.25).as_deref(),
            Some("2026-03-03T07:15:00.250Z")
        );
        assert_eq!(
            later("2026-03-03T23:59:30", 45.0).as_deref(),
            Some("2026-03-04T00:00:15"),
            "a wall-clock time stays one"
        );
        assert_eq!(later("yesterday", 1.0), None);
        assert_eq!(later("2026-03-03T07:15:00Z", 1e300), None);
    }

    #[test]
    fn spans_and_heart_rates_keep_what_counts() {
        let mut span = Span::default();
        for time in ["2026-03-01T06:00:05Z", "not a time", "2026-03-01T06:00:00Z"] {
            span.add(time);
        }
        assert_eq!(span.earliest().as_deref(), Some("2026-03-01T06:00:00Z"));
        assert_eq!(span.latest().as_deref(), Some("2026-03-01T06:00:05Z"));

        let mut heart = HeartRates::default();
        for bpm in ["140", "0", "255", "n/a", "143"] {
            heart.add_to_mean(bpm, 1.0);
            heart.add_to_max(bpm);
        }
        assert_eq!(heart.mean().as_deref(), Some("141.5"));
        assert_eq!(heart.max().as_deref(), Some("143"));
        assert_eq!(HeartRates::default().mean(), None);
        assert_eq!(decimal(147.909_090_9, 1), "147.9");
        assert_eq!(decimal(-0.0001, 2), "0");
    }
}
