//! Garmin FIT files (`.fit`: activities, daily monitoring, weigh-ins), decoded by this
//! module's own reader of the FIT protocol ([`decode`]) and the few messages of the FIT
//! profile that feed streams. The file is read whole and checked (header, header CRC, data
//! size, file CRC) before anything is decoded, so a damaged or cut file yields no row; its
//! error names the byte where the damage shows.
//!
//! | message (global number) | field (profile scale, offset) | stream.column |
//! |---|---|---|
//! | `file_id` (0) | `manufacturer`, `product`, `product_name` | the rows' source (`garmin fenix 7`) |
//! | `record` (20) | `timestamp` | activity_samples.time |
//! | | `position_lat`, `position_long` (semicircles × 180 / 2³¹) | lat, lon (degrees) |
//! | | `enhanced_altitude`, else `altitude` (5, 500) | altitude_m |
//! | | `enhanced_speed`, else `speed` (1000) | speed_m_s |
//! | | `cadence` + `fractional_cadence` (128) | cadence (rpm, as the device counts) |
//! | | `power` | power_w |
//! | | `heart_rate` | heart_rate |
//! | | `distance` (100) | distance_m |
//! | `session` (18) | `start_time` | workouts.time |
//! | | `start_time` + `total_elapsed_time` (1000, s) | end_time |
//! | | `sport`, `sub_sport` | sport (`run`, `ride`, `swim`, `walk`, `strength`, else the profile's name) |
//! | | `total_distance` (100) | distance_m |
//! | | `total_calories` | energy_kcal |
//! | | `avg_heart_rate`, `max_heart_rate` | avg_hr, max_hr |
//! | `monitoring` (55) | `timestamp`, else `timestamp_16` | heart_rate.time, steps.end_time |
//! | | `heart_rate` | heart_rate.bpm |
//! | | `cycles` of `activity_type` walking or running (the `steps` sub-field) | steps.count, per interval |
//! | `weight_scale` (30) | `timestamp` | body.time |
//! | | `weight` (100; 0xFFFE "calculating" is missing) | weight_kg |
//! | | `percent_fat` (100) | fat_pct |
//! | | `bmi` (10) | bmi |
//!
//! Every other message (`device_info`, `event`, `lap`, `activity`, developer data, …) is
//! skipped; developer fields are skipped by the sizes their definitions give.
//!
//! Values: a field holding its base type's invalid value (0xFF, 0x7FFF, 0xFFFFFFFF, …) is
//! missing, never zero. Scale and offset are the profile's, applied to whatever base type the
//! file defines the field with, as the FIT SDK does. A weight is therefore always hundredths
//! of a kilogram: a writer that stored kilograms unscaled yields a weight a hundred times too
//! small, which cleaning's plausible range (20–400 kg) quarantines with its value rather
//! than a guess repairing it. Rows whose mapped values are all missing (a `record` with only
//! a timestamp) are not made.
//!
//! Times: FIT timestamps are UTC seconds since 1989-12-31T00:00:00Z, handed on as UTC
//! instants. A compressed-timestamp record header gives a 5-bit offset after the last full
//! timestamp and `timestamp_16` the low 16 bits of a time after it; both roll over. A time
//! below 0x10000000 counts seconds since the device powered on: it names no instant, so the
//! row goes on without a time, for cleaning to reject.
//!
//! Steps: a monitoring message carries, per activity type, the day's cumulative count. A
//! walking or running reading after an earlier one of the same type becomes a row counting
//! the difference, over the interval from the earlier reading to this one. A count lower
//! than the previous one means the counter was reset (at midnight, or by the device): the
//! row counts the new value, every step of which was taken since the earlier reading. The
//! first reading of a type, and intervals without steps, make no row; rows of several
//! types that would start at the same time (same series key) are one row counting both,
//! ending at the later end.
//!
//! The source of a file's rows is its first `file_id`'s device; `fit` without one. Records
//! are numbered from 1 over every definition and data record of the file, so quarantine
//! messages point at a record a FIT dump shows. A FIT file names no subject: the pipeline's
//! `--subject` does.

mod decode;
#[cfg(test)]
mod encode;
mod names;

use std::{collections::HashMap, sync::Arc};

use arrow::{
    array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    },
    datatypes::{DataType, Field, Schema, TimeUnit},
};

use self::decode::{Message, Value};
use super::{Input, Sink};
use crate::{Error, Result, extract::Extract};

/// Rows per extract of a stream.
const BATCH_ROWS: usize = 64 * 1024;
/// The `source` of rows of a file without a `file_id`.
const DEFAULT_SOURCE: &str = "fit";

/// Global message numbers of the FIT profile.
mod message {
    pub const FILE_ID: u16 = 0;
    pub const SESSION: u16 = 18;
    pub const RECORD: u16 = 20;
    pub const WEIGHT_SCALE: u16 = 30;
    pub const MONITORING: u16 = 55;
}

/// Field numbers and scales of the FIT profile, per message.
mod field {
    pub mod file_id {
        pub const MANUFACTURER: u8 = 1;
        pub const PRODUCT: u8 = 2;
        pub const PRODUCT_NAME: u8 = 8;
    }
    pub mod record {
        pub const POSITION_LAT: u8 = 0;
        pub const POSITION_LONG: u8 = 1;
        pub const ALTITUDE: u8 = 2;
        pub const HEART_RATE: u8 = 3;
        pub const CADENCE: u8 = 4;
        pub const DISTANCE: u8 = 5;
        pub const SPEED: u8 = 6;
        pub const POWER: u8 = 7;
        pub const FRACTIONAL_CADENCE: u8 = 53;
        pub const ENHANCED_SPEED: u8 = 73;
        pub const ENHANCED_ALTITUDE: u8 = 78;
        pub const ALTITUDE_SCALE: f64 = 5.0;
        pub const ALTITUDE_OFFSET: f64 = 500.0;
        pub const SPEED_SCALE: f64 = 1000.0;
        pub const DISTANCE_SCALE: f64 = 100.0;
        pub const FRACTIONAL_CADENCE_SCALE: f64 = 128.0;
    }
    pub mod session {
        pub const START_TIME: u8 = 2;
        pub const SPORT: u8 = 5;
        pub const SUB_SPORT: u8 = 6;
        pub const TOTAL_ELAPSED_TIME: u8 = 7;
        pub const TOTAL_DISTANCE: u8 = 9;
        pub const TOTAL_CALORIES: u8 = 11;
        pub const AVG_HEART_RATE: u8 = 16;
        pub const MAX_HEART_RATE: u8 = 17;
        pub const TOTAL_ELAPSED_TIME_SCALE: f64 = 1000.0;
        pub const TOTAL_DISTANCE_SCALE: f64 = 100.0;
    }
    pub mod monitoring {
        pub const CYCLES: u8 = 3;
        pub const ACTIVITY_TYPE: u8 = 5;
        pub const CURRENT_ACTIVITY_TYPE_INTENSITY: u8 = 24;
        pub const TIMESTAMP_16: u8 = 26;
        pub const HEART_RATE: u8 = 27;
        /// `activity_type` values whose `cycles` count steps.
        pub const RUNNING: i64 = 1;
        pub const WALKING: i64 = 6;
    }
    pub mod weight_scale {
        pub const WEIGHT: u8 = 0;
        pub const PERCENT_FAT: u8 = 1;
        pub const BMI: u8 = 13;
        pub const WEIGHT_SCALE: f64 = 100.0;
        pub const PERCENT_FAT_SCALE: f64 = 100.0;
        pub const BMI_SCALE: f64 = 10.0;
        /// `weight` while the scale is still measuring.
        pub const WEIGHT_CALCULATING: i64 = 0xFFFE;
    }
}

/// Whether the first bytes are a FIT file header.
pub(crate) fn sniff(head: &[u8]) -> bool {
    head.len() >= 12 && head[0] >= 12 && &head[8..12] == b".FIT"
}

/// Reads a FIT file into extracts of the standard streams.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    let bytes = input.read_all()?;
    let mut reader = Reader::default();
    decode::decode(&input.name, &bytes, |message| {
        reader.message(&message);
        Ok(())
    })?;
    reader.finish(&input.name, sink, BATCH_ROWS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A UTC instant.
    Time,
    Number,
    Count,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Time(Option<i64>),
    Number(Option<f64>),
    Count(Option<i64>),
    Text(Option<String>),
}

impl Cell {
    fn is_value(&self) -> bool {
        match self {
            Cell::Number(v) => v.is_some(),
            Cell::Count(v) => v.is_some(),
            Cell::Text(v) => v.is_some(),
            Cell::Time(_) => false,
        }
    }
}

const ACTIVITY_SAMPLES_COLUMNS: &[(&str, Kind)] = &[
    ("time", Kind::Time),
    ("lat", Kind::Number),
    ("lon", Kind::Number),
    ("altitude_m", Kind::Number),
    ("speed_m_s", Kind::Number),
    ("cadence", Kind::Number),
    ("power_w", Kind::Number),
    ("heart_rate", Kind::Number),
    ("distance_m", Kind::Number),
];
const WORKOUTS_COLUMNS: &[(&str, Kind)] = &[
    ("time", Kind::Time),
    ("end_time", Kind::Time),
    ("sport", Kind::Text),
    ("distance_m", Kind::Number),
    ("energy_kcal", Kind::Number),
    ("avg_hr", Kind::Number),
    ("max_hr", Kind::Number),
];
const HEART_RATE_COLUMNS: &[(&str, Kind)] = &[("time", Kind::Time), ("bpm", Kind::Number)];
const STEPS_COLUMNS: &[(&str, Kind)] = &[
    ("time", Kind::Time),
    ("end_time", Kind::Time),
    ("count", Kind::Count),
];
const BODY_COLUMNS: &[(&str, Kind)] = &[
    ("time", Kind::Time),
    ("weight_kg", Kind::Number),
    ("fat_pct", Kind::Number),
    ("bmi", Kind::Number),
];

/// Rows of one stream, held until the file is read.
struct Table {
    stream: &'static str,
    columns: &'static [(&'static str, Kind)],
    rows: Vec<(u64, Vec<Cell>)>,
}

impl Table {
    fn new(stream: &'static str, columns: &'static [(&'static str, Kind)]) -> Self {
        Table {
            stream,
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row, unless none of its values is present.
    fn push(&mut self, record: u64, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}", self.stream);
        if cells.iter().any(Cell::is_value) {
            self.rows.push((record, cells));
        }
    }

    /// Hands the rows on, `batch_rows` at a time.
    fn finish(
        self,
        file: &Arc<str>,
        source: &str,
        sink: &mut Sink,
        batch_rows: usize,
    ) -> Result<()> {
        let schema = Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(name, kind)| Field::new(*name, data_type(*kind), true))
                .collect::<Vec<_>>(),
        ));
        for rows in self.rows.chunks(batch_rows.max(1)) {
            let columns: Vec<ArrayRef> = self
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| column(*kind, rows.iter().map(|(_, cells)| &cells[i])))
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| Error::file(file, format!("cannot build rows: {e}")))?;
            sink(Extract {
                stream: self.stream.to_owned(),
                batch,
                units: HashMap::new(),
                records: rows.iter().map(|(record, _)| *record).collect(),
                file: file.clone(),
                default_source: source.to_owned(),
            })?;
        }
        Ok(())
    }
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        Kind::Number => DataType::Float64,
        Kind::Count => DataType::Int64,
        Kind::Text => DataType::Utf8,
    }
}

fn column<'a>(kind: Kind, cells: impl Iterator<Item = &'a Cell>) -> ArrayRef {
    match kind {
        Kind::Time => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Time(t) => *t,
                    _ => None,
                })
                .collect::<TimestampNanosecondArray>()
                .with_timezone("UTC"),
        ),
        Kind::Number => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Number(n) => *n,
                    _ => None,
                })
                .collect::<Float64Array>(),
        ),
        Kind::Count => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Count(n) => *n,
                    _ => None,
                })
                .collect::<Int64Array>(),
        ),
        Kind::Text => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Text(t) => t.as_deref(),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
    }
}

/// A field's value under the profile's scale and offset: `raw / scale - offset`.
fn scaled(message: &Message, field: u8, scale: f64, offset: f64) -> Option<f64> {
    message.number(field).map(|raw| raw / scale - offset)
}

fn time_of(timestamp: Option<u32>) -> Option<i64> {
    timestamp.and_then(decode::instant)
}

/// Step intervals from cumulative monitoring counts.
#[derive(Default)]
struct Steps {
    /// Per activity type, the last reading: time and cumulative count.
    last: HashMap<i64, (u32, i64)>,
    /// Record, start, end, count.
    rows: Vec<(u64, u32, u32, i64)>,
    /// The row starting at each start time.
    by_start: HashMap<u32, usize>,
}

impl Steps {
    fn reading(&mut self, record: u64, activity: i64, time: u32, count: i64) {
        if count < 0 {
            // Only a field of a signed type can hold this, and it counts nothing.
            return;
        }
        let previous = self.last.insert(activity, (time, count));
        let Some((start, before)) = previous else {
            return;
        };
        if time <= start {
            // Out of order or repeated: the reading only becomes the new baseline.
            return;
        }
        let steps = if count >= before {
            count - before
        } else {
            count
        };
        if steps == 0 {
            return;
        }
        match self.by_start.get(&start) {
            Some(&row) => {
                let (_, _, end, total) = &mut self.rows[row];
                *end = (*end).max(time);
                *total = total.saturating_add(steps);
            }
            None => {
                self.by_start.insert(start, self.rows.len());
                self.rows.push((record, start, time, steps));
            }
        }
    }

    fn into_table(self) -> Table {
        let mut table = Table::new("steps", STEPS_COLUMNS);
        for (record, start, end, count) in self.rows {
            table.push(
                record,
                vec![
                    Cell::Time(time_of(Some(start))),
                    Cell::Time(time_of(Some(end))),
                    Cell::Count(Some(count)),
                ],
            );
        }
        table
    }
}

/// A file's rows, stream by stream, as its messages are decoded.
struct Reader {
    source: Option<String>,
    /// The last full time of any message, for `timestamp_16`.
    last_timestamp: Option<u32>,
    samples: Table,
    workouts: Table,
    heart_rate: Table,
    body: Table,
    steps: Steps,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            source: None,
            last_timestamp: None,
            samples: Table::new("activity_samples", ACTIVITY_SAMPLES_COLUMNS),
            workouts: Table::new("workouts", WORKOUTS_COLUMNS),
            heart_rate: Table::new("heart_rate", HEART_RATE_COLUMNS),
            body: Table::new("body", BODY_COLUMNS),
            steps: Steps::default(),
        }
    }
}

impl Reader {
    fn message(&mut self, m: &Message) {
        match m.global {
            message::FILE_ID if self.source.is_none() => {
                use field::file_id::*;
                self.source = names::source(
                    m.integer(MANUFACTURER),
                    m.integer(PRODUCT),
                    m.text(PRODUCT_NAME),
                );
            }
            message::RECORD => self.record(m),
            message::SESSION => self.session(m),
            message::MONITORING => {
                self.monitoring(m);
                return;
            }
            message::WEIGHT_SCALE => self.weight(m),
            _ => {}
        }
        if m.timestamp.is_some() {
            self.last_timestamp = m.timestamp;
        }
    }

    fn record(&mut self, m: &Message) {
        use field::record::*;
        let degrees = |field| {
            m.number(field)
                .map(|semicircles| semicircles * 180.0 / 2f64.powi(31))
        };
        let altitude = scaled(m, ENHANCED_ALTITUDE, ALTITUDE_SCALE, ALTITUDE_OFFSET).or(scaled(
            m,
            ALTITUDE,
            ALTITUDE_SCALE,
            ALTITUDE_OFFSET,
        ));
        let speed =
            scaled(m, ENHANCED_SPEED, SPEED_SCALE, 0.0).or(scaled(m, SPEED, SPEED_SCALE, 0.0));
        let cadence = m.number(CADENCE).map(|whole| {
            whole + scaled(m, FRACTIONAL_CADENCE, FRACTIONAL_CADENCE_SCALE, 0.0).unwrap_or(0.0)
        });
        self.samples.push(
            m.record,
            vec![
                Cell::Time(time_of(m.timestamp)),
                Cell::Number(degrees(POSITION_LAT)),
                Cell::Number(degrees(POSITION_LONG)),
                Cell::Number(altitude),
                Cell::Number(speed),
                Cell::Number(cadence),
                Cell::Number(m.number(POWER)),
                Cell::Number(m.number(HEART_RATE)),
                Cell::Number(scaled(m, DISTANCE, DISTANCE_SCALE, 0.0)),
            ],
        );
    }

    fn session(&mut self, m: &Message) {
        use field::session::*;
        let elapsed_ns = scaled(m, TOTAL_ELAPSED_TIME, TOTAL_ELAPSED_TIME_SCALE, 0.0)
            .map(|seconds| (seconds * 1e9).round() as i64);
        let start_time = m.integer(START_TIME).and_then(|t| u32::try_from(t).ok());
        let (start, end) = match (time_of(start_time), elapsed_ns) {
            (Some(start), Some(elapsed)) => (Some(start), start.checked_add(elapsed)),
            (Some(start), None) => (Some(start), time_of(m.timestamp)),
            // The session's timestamp is when it ended.
            (None, elapsed) => {
                let end = time_of(m.timestamp);
                let start = end
                    .zip(elapsed)
                    .and_then(|(end, elapsed)| end.checked_sub(elapsed));
                (start, end)
            }
        };
        self.workouts.push(
            m.record,
            vec![
                Cell::Time(start),
                Cell::Time(end),
                Cell::Text(names::sport(m.integer(SPORT), m.integer(SUB_SPORT))),
                Cell::Number(scaled(m, TOTAL_DISTANCE, TOTAL_DISTANCE_SCALE, 0.0)),
                Cell::Number(m.number(TOTAL_CALORIES)),
                Cell::Number(m.number(AVG_HEART_RATE)),
                Cell::Number(m.number(MAX_HEART_RATE)),
            ],
        );
    }

    fn monitoring(&mut self, m: &Message) {
        use field::monitoring::*;
        let timestamp = m.timestamp.or_else(|| {
            let low = u16::try_from(m.integer(TIMESTAMP_16)?).ok()?;
            Some(decode::time_from_16(self.last_timestamp?, low))
        });
        if timestamp.is_some() {
            self.last_timestamp = timestamp;
        }
        if let Some(bpm) = m.number(HEART_RATE) {
            self.heart_rate.push(
                m.record,
                vec![Cell::Time(time_of(timestamp)), Cell::Number(Some(bpm))],
            );
        }
        // The activity type is its own field, or the low 5 bits of
        // `current_activity_type_intensity`.
        let activity = m
            .integer(ACTIVITY_TYPE)
            .or_else(|| m.integer(CURRENT_ACTIVITY_TYPE_INTENSITY).map(|b| b & 0x1F));
        if let (Some(activity @ (RUNNING | WALKING)), Some(count), Some(time)) =
            (activity, m.integer(CYCLES), timestamp)
        {
            self.steps.reading(m.record, activity, time, count);
        }
    }

    fn weight(&mut self, m: &Message) {
        use field::weight_scale::*;
        let weight = match m.get(WEIGHT) {
            Some(Value::Integer(WEIGHT_CALCULATING)) => None,
            _ => scaled(m, WEIGHT, WEIGHT_SCALE, 0.0),
        };
        self.body.push(
            m.record,
            vec![
                Cell::Time(time_of(m.timestamp)),
                Cell::Number(weight),
                Cell::Number(scaled(m, PERCENT_FAT, PERCENT_FAT_SCALE, 0.0)),
                Cell::Number(scaled(m, BMI, BMI_SCALE, 0.0)),
            ],
        );
    }

    fn finish(self, file: &Arc<str>, sink: &mut Sink, batch_rows: usize) -> Result<()> {
        let source = self.source.as_deref().unwrap_or(DEFAULT_SOURCE);
        for table in [
            self.samples,
            self.workouts,
            self.heart_rate,
            self.steps.into_table(),
            self.body,
        ] {
            table.finish(file, source, sink, batch_rows)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
