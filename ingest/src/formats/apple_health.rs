//! Apple Health `export.xml` (the `export.zip` of the Health app), read as a stream: exports
//! reach gigabytes, so the file is parsed event by event and each stream's rows are handed on
//! every [`BATCH_ROWS`] rows and at the end.
//!
//! What is read, per element (everything else, including record types not listed, is
//! skipped):
//!
//! | element, `type` | stream.column |
//! |---|---|
//! | `Record` `HKQuantityTypeIdentifierHeartRate` | heart_rate.bpm at `startDate` |
//! | `Record` `…HeartRateVariabilitySDNN` | hrv.rmssd_ms (Apple gives SDNN only) |
//! | `Record` `…OxygenSaturation` (ratio 0–1) | spo2.pct, ×100 |
//! | `Record` `…StepCount` | steps.count, `startDate`–`endDate` |
//! | `Record` `…ActiveEnergyBurned` | active_energy.kcal, unit per row |
//! | `Record` `…BodyMass` | body.weight_kg, unit per row |
//! | `Record` `…BodyFatPercentage` (ratio 0–1) | body.fat_pct, ×100 |
//! | `Record` `…BodyMassIndex` | body.bmi |
//! | `Record` `…BloodPressureSystolic` / `…Diastolic` | blood_pressure.systolic / diastolic |
//! | `Record` `…BloodGlucose` | glucose.mmol_l, unit per row |
//! | `Record` `HKCategoryTypeIdentifierSleepAnalysis` | sleep.stage, `startDate`–`endDate` |
//! | `Workout` (+ `WorkoutStatistics`) | workouts |
//!
//! Readings that share a row are paired by (`sourceName`, `startDate`): the systolic and
//! diastolic halves of a blood pressure (listed with the other records of their type, and
//! again inside a `Correlation`: "any Records that appear as children of a correlation also
//! appear as top-level records", says the export's DTD), and the weight, fat and BMI a scale measures at once — rows
//! with the same series key and time would otherwise replace each other in cleaning. They are
//! few (measurements taken by hand or on a scale) and their halves lie far apart in the file,
//! so these two streams are handed on at the end.
//!
//! `source` is the record's `sourceName` as written; times are the text given
//! (`2026-03-01 06:00:00 +0100`, an instant); units are the record's `unit`. Records are
//! numbered by `Record` and `Workout` elements in file order (1-based, nested ones included),
//! so quarantine messages point at them. The export names no subject: the pipeline's
//! `--subject` does, unless the `<Me>` element carries a `HealthAIPseudonym` attribute (not
//! Apple's: `healthai simulate --format apple-health` writes it, one export per subject), which
//! then names the subject of every row.

use std::{cell::OnceCell, collections::HashMap, io::BufReader, sync::Arc};

use arrow::{
    array::{RecordBatch, StringArray},
    datatypes::{DataType, Field, Schema},
};
use quick_xml::{Decoder, Reader, events::BytesStart, events::Event};

use super::{Input, Sink, text_rows::Table};
use crate::{
    Error, Result,
    extract::{Extract, SUBJECT},
};

/// The attribute of `<Me>` that names the export's subject by pseudonym.
const PSEUDONYM: &str = "HealthAIPseudonym";
/// Rows per extract of a stream.
const BATCH_ROWS: usize = 64 * 1024;
/// The `source` of rows whose record names none.
const DEFAULT_SOURCE: &str = "apple_health";

const HEART_RATE: &[&str] = &["source", "time", "bpm"];
const HRV: &[&str] = &["source", "time", "rmssd_ms"];
const SPO2: &[&str] = &["source", "time", "pct"];
const STEPS: &[&str] = &["source", "time", "end_time", "count"];
const ACTIVE_ENERGY: &[&str] = &["source", "time", "end_time", "kcal", "kcal_unit"];
const GLUCOSE: &[&str] = &["source", "time", "mmol_l", "mmol_l_unit"];
const SLEEP: &[&str] = &["source", "time", "end_time", "stage"];
const WORKOUTS: &[&str] = &[
    "source",
    "time",
    "end_time",
    "sport",
    "distance_m",
    "distance_m_unit",
    "energy_kcal",
    "energy_kcal_unit",
    "avg_hr",
    "max_hr",
];
const BODY: &[&str] = &[
    "source",
    "time",
    "weight_kg",
    "weight_kg_unit",
    "fat_pct",
    "bmi",
];
const BLOOD_PRESSURE: &[&str] = &["source", "time", "systolic", "diastolic"];

/// Whether the first bytes look like an Apple Health export.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    contains(b"<HealthData") || contains(b"<!DOCTYPE HealthData") || contains(b"HealthKit Export")
}

/// Reads an `export.xml` into extracts of the standard streams.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, sink, BATCH_ROWS)
}

fn read_in_batches(input: Input, sink: &mut Sink, batch_rows: usize) -> Result<()> {
    let file = input.name.clone();
    // `<Me>` comes before any record, so every extract sees the pseudonym it gives.
    let pseudonym: OnceCell<String> = OnceCell::new();
    let mut named = |extract: Extract| match pseudonym.get() {
        Some(subject) => sink(with_subject(extract, subject)?),
        None => sink(extract),
    };
    let sink: &mut Sink = &mut named;
    let mut reader = Reader::from_reader(BufReader::with_capacity(1 << 20, input.open()?));
    let decoder = reader.decoder();
    let mut out = Output::new(file.clone(), batch_rows);
    let mut buf = Vec::with_capacity(4096);
    let mut record = 0u64;
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut workout: Option<WorkoutRow> = None;
    loop {
        let at = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => return Err(malformed(&file, reader.error_position(), e)),
        };
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if e.local_name().as_ref() == b"Workout"
                    && let Some(row) = workout.take()
                {
                    out.workout(row, sink)?;
                }
                buf.clear();
                continue;
            }
            Event::Eof if depth > 0 => {
                return Err(malformed(
                    &file,
                    reader.buffer_position(),
                    "it ends before </HealthData>: the file was cut short",
                ));
            }
            Event::Eof if !root_seen => {
                return Err(Error::file(
                    &file,
                    "not a readable Apple Health export: it has no <HealthData> element",
                ));
            }
            Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        let name = element.local_name();
        if !root_seen {
            if name.as_ref() != b"HealthData" {
                return Err(Error::file(
                    &file,
                    format!(
                        "not an Apple Health export: its root element is <{}>, not <HealthData>",
                        String::from_utf8_lossy(name.as_ref())
                    ),
                ));
            }
            root_seen = true;
        }
        let attributes_error = |e: String| malformed(&file, at, e);
        match name.as_ref() {
            b"Me" => {
                let [subject] = attributes(element, decoder, [PSEUDONYM.as_bytes()])
                    .map_err(attributes_error)?;
                if let Some(subject) = subject.filter(|s| !s.trim().is_empty()) {
                    let _ = pseudonym.set(subject.trim().to_owned());
                }
            }
            b"Record" => {
                record += 1;
                let [kind, source, unit, start, end, value] = attributes(
                    element,
                    decoder,
                    [
                        b"type",
                        b"sourceName",
                        b"unit",
                        b"startDate",
                        b"endDate",
                        b"value",
                    ],
                )
                .map_err(attributes_error)?;
                let reading = Reading {
                    record,
                    source,
                    unit,
                    start,
                    end,
                    value,
                };
                out.record(kind.as_deref().unwrap_or_default(), reading, sink)?;
            }
            b"Workout" => {
                record += 1;
                let row = WorkoutRow::new(record, element, decoder).map_err(attributes_error)?;
                if empty {
                    out.workout(row, sink)?;
                } else {
                    workout = Some(row);
                }
            }
            b"WorkoutStatistics" => {
                if let Some(row) = workout.as_mut() {
                    row.statistics(element, decoder).map_err(attributes_error)?;
                }
            }
            _ => {}
        }
        if !empty {
            depth += 1;
        }
        buf.clear();
    }
    out.finish(sink)
}

/// Adds a `subject` column naming `subject` on every row.
fn with_subject(mut extract: Extract, subject: &str) -> Result<Extract> {
    let schema = extract.batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(SUBJECT, DataType::Utf8, true));
    let mut columns = extract.batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from_iter_values(
        std::iter::repeat_n(subject, extract.batch.num_rows()),
    )));
    extract.batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::file(&extract.file, format!("cannot build rows: {e}")))?;
    Ok(extract)
}

fn malformed(file: &str, position: u64, problem: impl std::fmt::Display) -> Error {
    Error::file(
        file,
        format!("not a readable Apple Health export at byte {position}: {problem}"),
    )
}

/// The values of the attributes named `keys` (by local name), unescaped; `None` where absent.
/// Other attributes (such as the long `device`) are not decoded.
pub(super) fn attributes<const N: usize>(
    element: &BytesStart,
    decoder: Decoder,
    keys: [&[u8]; N],
) -> std::result::Result<[Option<String>; N], String> {
    let mut values = [const { None }; N];
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key.local_name();
        let Some(slot) = keys.iter().position(|k| *k == key.as_ref()) else {
            continue;
        };
        let value = attribute
            .decode_and_unescape_value(decoder)
            .map_err(|e| e.to_string())?;
        values[slot] = Some(value.into_owned());
    }
    Ok(values)
}

/// The attributes of a `Record` element that rows are made of.
struct Reading {
    record: u64,
    source: Option<String>,
    unit: Option<String>,
    start: Option<String>,
    end: Option<String>,
    value: Option<String>,
}

/// A workout, from its `Workout` element and the `WorkoutStatistics` inside it.
struct WorkoutRow {
    record: u64,
    source: Option<String>,
    start: Option<String>,
    end: Option<String>,
    sport: Option<String>,
    /// Value and unit.
    distance: Option<(String, Option<String>)>,
    energy: Option<(String, Option<String>)>,
    avg_hr: Option<String>,
    max_hr: Option<String>,
    /// Whether `distance` already comes from a statistic (not from `totalDistance`).
    distance_from_statistics: bool,
}

impl WorkoutRow {
    /// From the attributes of `Workout`; older exports carry the totals there.
    fn new(
        record: u64,
        element: &BytesStart,
        decoder: Decoder,
    ) -> std::result::Result<Self, String> {
        let [
            activity,
            source,
            start,
            end,
            distance,
            distance_unit,
            energy,
            energy_unit,
        ] = attributes(
            element,
            decoder,
            [
                b"workoutActivityType",
                b"sourceName",
                b"startDate",
                b"endDate",
                b"totalDistance",
                b"totalDistanceUnit",
                b"totalEnergyBurned",
                b"totalEnergyBurnedUnit",
            ],
        )?;
        Ok(WorkoutRow {
            record,
            source,
            start,
            end,
            sport: activity.as_deref().map(sport),
            distance: distance.map(|d| (d, distance_unit)),
            energy: energy.map(|e| (e, energy_unit)),
            avg_hr: None,
            max_hr: None,
            distance_from_statistics: false,
        })
    }

    /// Newer exports give heart rate, distance and energy as `WorkoutStatistics`, which win
    /// over the totals of the `Workout` element.
    fn statistics(
        &mut self,
        element: &BytesStart,
        decoder: Decoder,
    ) -> std::result::Result<(), String> {
        let [kind, average, maximum, sum, unit] = attributes(
            element,
            decoder,
            [b"type", b"average", b"maximum", b"sum", b"unit"],
        )?;
        let Some(kind) = kind else { return Ok(()) };
        let Some(kind) = kind.strip_prefix("HKQuantityTypeIdentifier") else {
            return Ok(());
        };
        match kind {
            "HeartRate" => {
                self.avg_hr = average.or(self.avg_hr.take());
                self.max_hr = maximum.or(self.max_hr.take());
            }
            "ActiveEnergyBurned" => {
                if let Some(sum) = sum {
                    self.energy = Some((sum, unit));
                }
            }
            // DistanceWalkingRunning, DistanceCycling, DistanceSwimming, …: a workout has one;
            // should it have several, the first is kept.
            distance if distance.starts_with("Distance") => {
                if let Some(sum) = sum
                    && !self.distance_from_statistics
                {
                    self.distance = Some((sum, unit));
                    self.distance_from_statistics = true;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The sport of a `workoutActivityType`: common ones by their short names, others
/// lowercased without the prefix (`HKWorkoutActivityTypeYoga` → `yoga`).
fn sport(activity: &str) -> String {
    let name = activity
        .strip_prefix("HKWorkoutActivityType")
        .unwrap_or(activity);
    match name {
        "Running" => "run".to_owned(),
        "Cycling" => "ride".to_owned(),
        "Walking" => "walk".to_owned(),
        "Swimming" => "swim".to_owned(),
        "TraditionalStrengthTraining" | "FunctionalStrengthTraining" => "strength".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// The stage of a sleep category value; an unknown one is passed on (without its prefix) for
/// cleaning to reject with its record number.
fn sleep_stage(value: &str) -> String {
    let name = value
        .strip_prefix("HKCategoryValueSleepAnalysis")
        .unwrap_or(value);
    match name {
        "InBed" => "in_bed",
        "Awake" => "awake",
        "AsleepCore" => "light",
        "AsleepDeep" => "deep",
        "AsleepREM" => "rem",
        "Asleep" | "AsleepUnspecified" => "asleep",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// A ratio (0–1, as Apple stores percentages) as a percentage; text that is not a number is
/// passed on for cleaning to reject.
fn percent(ratio: &str) -> String {
    match ratio.trim().parse::<f64>() {
        Ok(r) if r.is_finite() => {
            let pct = (r * 100.0 * 1e9).round() / 1e9;
            pct.to_string()
        }
        _ => ratio.to_owned(),
    }
}

/// Apple writes glucose in mmol/L with its molar mass: `mmol<180.1558800000541>/L`.
fn glucose_unit(unit: &str) -> &str {
    if unit.starts_with("mmol<") && unit.ends_with(">/L") {
        "mmol/L"
    } else {
        unit
    }
}

/// A row of a [`Paired`] stream.
struct PairedRow {
    /// The first record that gave a value.
    record: u64,
    source: Option<String>,
    time: Option<String>,
    /// The values of the columns after `source` and `time`.
    values: Vec<Option<String>>,
}

/// Rows whose values come from several records with the same source and start time.
struct Paired {
    stream: &'static str,
    names: &'static [&'static str],
    rows: Vec<PairedRow>,
    index: HashMap<(Option<String>, Option<String>), usize>,
}

impl Paired {
    fn new(stream: &'static str, names: &'static [&'static str]) -> Self {
        Paired {
            stream,
            names,
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Sets values (by column position) of the row of the reading's source and start.
    fn set(&mut self, reading: &Reading, values: &[(usize, Option<String>)]) {
        let key = (reading.source.clone(), reading.start.clone());
        let row = *self.index.entry(key).or_insert_with(|| {
            self.rows.push(PairedRow {
                record: reading.record,
                source: reading.source.clone(),
                time: reading.start.clone(),
                values: vec![None; self.names.len() - 2],
            });
            self.rows.len() - 1
        });
        let cells = &mut self.rows[row].values;
        for (position, value) in values {
            cells[position - 2] = value.clone();
        }
    }

    fn finish(self, file: &Arc<str>, sink: &mut Sink, batch_rows: usize) -> Result<()> {
        let mut table = Table::new(self.stream, self.names);
        for paired in &self.rows {
            let mut row = vec![paired.source.as_deref(), paired.time.as_deref()];
            row.extend(paired.values.iter().map(Option::as_deref));
            table.push(paired.record, &row);
            if table.len() >= batch_rows {
                table.flush(file, DEFAULT_SOURCE, sink)?;
            }
        }
        table.flush(file, DEFAULT_SOURCE, sink)
    }
}

/// Every stream's rows on their way out.
struct Output {
    file: Arc<str>,
    batch_rows: usize,
    heart_rate: Table,
    hrv: Table,
    spo2: Table,
    steps: Table,
    active_energy: Table,
    glucose: Table,
    sleep: Table,
    workouts: Table,
    body: Paired,
    blood_pressure: Paired,
}

impl Output {
    fn new(file: Arc<str>, batch_rows: usize) -> Self {
        Output {
            file,
            batch_rows,
            heart_rate: Table::new("heart_rate", HEART_RATE),
            hrv: Table::new("hrv", HRV),
            spo2: Table::new("spo2", SPO2),
            steps: Table::new("steps", STEPS),
            active_energy: Table::new("active_energy", ACTIVE_ENERGY),
            glucose: Table::new("glucose", GLUCOSE),
            sleep: Table::new("sleep", SLEEP),
            workouts: Table::new("workouts", WORKOUTS),
            body: Paired::new("body", BODY),
            blood_pressure: Paired::new("blood_pressure", BLOOD_PRESSURE),
        }
    }

    /// Adds the row of a `Record` of type `kind`; types not read are skipped.
    fn record(&mut self, kind: &str, r: Reading, sink: &mut Sink) -> Result<()> {
        let (source, start, end) = (r.source.as_deref(), r.start.as_deref(), r.end.as_deref());
        let value = r.value.as_deref();
        let unit = r.unit.as_deref();
        let table = if let Some(quantity) = kind.strip_prefix("HKQuantityTypeIdentifier") {
            match quantity {
                "HeartRate" => {
                    self.heart_rate.push(r.record, &[source, start, value]);
                    &mut self.heart_rate
                }
                // Apple measures heart-rate variability as SDNN, not RMSSD; it is the only HRV
                // an export has, so it feeds `hrv.rmssd_ms`.
                "HeartRateVariabilitySDNN" => {
                    self.hrv.push(r.record, &[source, start, value]);
                    &mut self.hrv
                }
                "OxygenSaturation" => {
                    let pct = value.map(percent);
                    self.spo2.push(r.record, &[source, start, pct.as_deref()]);
                    &mut self.spo2
                }
                "StepCount" => {
                    self.steps.push(r.record, &[source, start, end, value]);
                    &mut self.steps
                }
                "ActiveEnergyBurned" => {
                    self.active_energy
                        .push(r.record, &[source, start, end, value, unit]);
                    &mut self.active_energy
                }
                "BloodGlucose" => {
                    let unit = unit.map(glucose_unit);
                    self.glucose.push(r.record, &[source, start, value, unit]);
                    &mut self.glucose
                }
                "BodyMass" => {
                    self.body
                        .set(&r, &[(2, r.value.clone()), (3, r.unit.clone())]);
                    return Ok(());
                }
                "BodyFatPercentage" => {
                    self.body.set(&r, &[(4, value.map(percent))]);
                    return Ok(());
                }
                "BodyMassIndex" => {
                    self.body.set(&r, &[(5, r.value.clone())]);
                    return Ok(());
                }
                "BloodPressureSystolic" => {
                    self.blood_pressure.set(&r, &[(2, r.value.clone())]);
                    return Ok(());
                }
                "BloodPressureDiastolic" => {
                    self.blood_pressure.set(&r, &[(3, r.value.clone())]);
                    return Ok(());
                }
                // Resting heart rate is derived from the heart rate readings; other types
                // have no stream.
                _ => return Ok(()),
            }
        } else if kind == "HKCategoryTypeIdentifierSleepAnalysis" {
            let stage = value.map(sleep_stage);
            self.sleep
                .push(r.record, &[source, start, end, stage.as_deref()]);
            &mut self.sleep
        } else {
            return Ok(());
        };
        if table.len() >= self.batch_rows {
            table.flush(&self.file, DEFAULT_SOURCE, sink)?;
        }
        Ok(())
    }

    fn workout(&mut self, w: WorkoutRow, sink: &mut Sink) -> Result<()> {
        let (distance, distance_unit) = match &w.distance {
            Some((value, unit)) => (Some(value.as_str()), unit.as_deref()),
            None => (None, None),
        };
        let (energy, energy_unit) = match &w.energy {
            Some((value, unit)) => (Some(value.as_str()), unit.as_deref()),
            None => (None, None),
        };
        self.workouts.push(
            w.record,
            &[
                w.source.as_deref(),
                w.start.as_deref(),
                w.end.as_deref(),
                w.sport.as_deref(),
                distance,
                distance_unit,
                energy,
                energy_unit,
                w.avg_hr.as_deref(),
                w.max_hr.as_deref(),
            ],
        );
        if self.workouts.len() >= self.batch_rows {
            self.workouts.flush(&self.file, DEFAULT_SOURCE, sink)?;
        }
        Ok(())
    }

    /// Hands on every row still held.
    fn finish(mut self, sink: &mut Sink) -> Result<()> {
        for table in [
            &mut self.heart_rate,
            &mut self.hrv,
            &mut self.spo2,
            &mut self.steps,
            &mut self.active_energy,
            &mut self.glucose,
            &mut self.sleep,
            &mut self.workouts,
        ] {
            table.flush(&self.file, DEFAULT_SOURCE, sink)?;
        }
        self.body.finish(&self.file, sink, self.batch_rows)?;
        self.blood_pressure
            .finish(&self.file, sink, self.batch_rows)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;

    const NAME: &str = "export.zip!apple_health_export/export.xml";

    /// The start of a real export: the XML declaration and the DTD the Health app writes.
    const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!-- Note: Any Records that appear as children of a correlation also appear as top-level records in this document. -->
<!ELEMENT Correlation ((MetadataEntry|Record)*)>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
]>
<HealthData locale="en_US">
 <ExportDate value="2026-03-10 09:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-01-01" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>
"#;

    /// Records 1–27 and workouts 28–30, in the shapes exports have.
    const EXPORT: &str = r#" <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana’s Apple Watch" sourceVersion="10.3" device="&lt;&lt;HKDevice: 0x283b1c0a0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:10.3&gt;" unit="count/min" creationDate="2026-03-01 06:01:10 +0100" startDate="2026-03-01 06:00:00 +0100" endDate="2026-03-01 06:00:00 +0100" value="58">
  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>
 </Record>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana’s Apple Watch" sourceVersion="10.3" unit="count/min" creationDate="2026-03-01 06:06:10 +0100" startDate="2026-03-01 06:05:00 +0100" endDate="2026-03-01 06:05:00 +0100" value="61"/>
 <Record type="HKQuantityTypeIdentifierRestingHeartRate" sourceName="Ana’s Apple Watch" unit="count/min" startDate="2026-03-01 00:00:00 +0100" endDate="2026-03-01 23:59:00 +0100" value="52"/>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="Ana’s Apple Watch" unit="ms" creationDate="2026-03-01 03:12:00 +0100" startDate="2026-03-01 03:10:58 +0100" endDate="2026-03-01 03:12:00 +0100" value="45.3">
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="57" time="3:10:59.12 AM"/>
   <InstantaneousBeatsPerMinute bpm="58" time="3:11:00.15 AM"/>
  </HeartRateVariabilityMetadataList>
 </Record>
 <Record type="HKQuantityTypeIdentifierOxygenSaturation" sourceName="Ana’s Apple Watch" unit="%" startDate="2026-03-01 03:30:00 +0100" endDate="2026-03-01 03:30:00 +0100" value="0.97"/>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Ana’s iPhone" unit="count" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:10:00 +0100" value="1203"/>
 <Record type="HKQuantityTypeIdentifierActiveEnergyBurned" sourceName="Ana’s Apple Watch" unit="kcal" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:01:00 +0100" value="12.5"/>
 <Record type="HKQuantityTypeIdentifierActiveEnergyBurned" sourceName="Ana’s Apple Watch" unit="kJ" startDate="2026-03-01 08:01:00 +0100" endDate="2026-03-01 08:02:00 +0100" value="50"/>
 <Record type="HKQuantityTypeIdentifierBodyMass" sourceName="Withings" unit="lb" startDate="2026-03-01 07:00:00 +0100" endDate="2026-03-01 07:00:00 +0100" value="154.3"/>
 <Record type="HKQuantityTypeIdentifierBodyMass" sourceName="Withings" unit="kg" startDate="2026-03-02 07:00:00 +0100" endDate="2026-03-02 07:00:00 +0100" value="70.2"/>
 <Record type="HKQuantityTypeIdentifierBodyFatPercentage" sourceName="Withings" unit="%" startDate="2026-03-02 07:00:00 +0100" endDate="2026-03-02 07:00:00 +0100" value="0.215"/>
 <Record type="HKQuantityTypeIdentifierBodyMassIndex" sourceName="Withings" unit="count" startDate="2026-03-02 07:00:00 +0100" endDate="2026-03-02 07:00:00 +0100" value="22.9"/>
 <Record type="HKQuantityTypeIdentifierBloodGlucose" sourceName="OneTouch Reveal" unit="mg/dL" startDate="2026-03-01 07:30:00 +0100" endDate="2026-03-01 07:30:00 +0100" value="95">
  <MetadataEntry key="HKBloodGlucoseMealTime" value="1"/>
 </Record>
 <Record type="HKQuantityTypeIdentifierBloodGlucose" sourceName="OneTouch Reveal" unit="mmol&lt;180.1558800000541&gt;/L" startDate="2026-03-02 07:30:00 +0100" endDate="2026-03-02 07:30:00 +0100" value="5.4"/>
 <Record type="HKQuantityTypeIdentifierDietaryWater" sourceName="WaterMinder" unit="mL" startDate="2026-03-01 10:00:00 +0100" endDate="2026-03-01 10:00:00 +0100" value="250"/>
 <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:00:00 +0100" value="121"/>
 <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Omron" unit="mmHg" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:00:00 +0100" value="79"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana’s iPhone" startDate="2026-03-01 22:40:00 +0100" endDate="2026-03-02 06:50:00 +0100" value="HKCategoryValueSleepAnalysisInBed"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana’s Apple Watch" startDate="2026-03-01 23:00:00 +0100" endDate="2026-03-01 23:40:00 +0100" value="HKCategoryValueSleepAnalysisAsleepCore"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana’s Apple Watch" startDate="2026-03-01 23:40:00 +0100" endDate="2026-03-02 00:30:00 +0100" value="HKCategoryValueSleepAnalysisAsleepDeep"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana’s Apple Watch" startDate="2026-03-02 00:30:00 +0100" endDate="2026-03-02 01:00:00 +0100" value="HKCategoryValueSleepAnalysisAsleepREM"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Ana’s Apple Watch" startDate="2026-03-02 01:00:00 +0100" endDate="2026-03-02 01:05:00 +0100" value="HKCategoryValueSleepAnalysisAwake"/>
 <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="AutoSleep" startDate="2026-03-02 01:05:00 +0100" endDate="2026-03-02 06:30:00 +0100" value="HKCategoryValueSleepAnalysisAsleepUnspecified"/>
 <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" creationDate="2026-03-01 08:00:05 +0100" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:00:00 +0100">
  <MetadataEntry key="HKWasUserEntered" value="0"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Omron" unit="mmHg" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:00:00 +0100" value="79"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" startDate="2026-03-01 08:00:00 +0100" endDate="2026-03-01 08:00:00 +0100" value="121"/>
 </Correlation>
 <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" startDate="2026-03-02 08:00:00 +0100" endDate="2026-03-02 08:00:00 +0100">
  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Omron" unit="mmHg" startDate="2026-03-02 08:00:00 +0100" endDate="2026-03-02 08:00:00 +0100" value="82"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" startDate="2026-03-02 08:00:00 +0100" endDate="2026-03-02 08:00:00 +0100" value="128"/>
 </Correlation>
 <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="45.5" durationUnit="min" sourceName="Ana’s Apple Watch" sourceVersion="10.3" creationDate="2026-03-01 18:46:00 +0100" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100">
  <MetadataEntry key="HKIndoorWorkout" value="0"/>
  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="2026-03-01 18:00:00 +0100" duration="5.1" durationUnit="min"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100" average="148.2" minimum="96" maximum="171" unit="count/min"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100" sum="8.43" unit="km"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100" sum="612" unit="kcal"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierBasalEnergyBurned" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100" sum="75" unit="kcal"/>
  <WorkoutRoute sourceName="Ana’s Apple Watch" startDate="2026-03-01 18:00:00 +0100" endDate="2026-03-01 18:45:30 +0100">
   <FileReference path="/workout-routes/route_2026-03-01_6.45pm.gpx"/>
  </WorkoutRoute>
 </Workout>
 <Workout workoutActivityType="HKWorkoutActivityTypeCycling" duration="60" durationUnit="min" totalDistance="12.4" totalDistanceUnit="mi" totalEnergyBurned="1800" totalEnergyBurnedUnit="kJ" sourceName="Strava" startDate="2026-03-02 17:00:00 +0100" endDate="2026-03-02 18:00:00 +0100"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeYoga" duration="30" durationUnit="min" sourceName="Ana’s Apple Watch" startDate="2026-03-03 07:00:00 +0100" endDate="2026-03-03 07:30:00 +0100">
  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2026-03-03 07:00:00 +0100" endDate="2026-03-03 07:30:00 +0100" sum="95.5" unit="kcal"/>
 </Workout>
 <ActivitySummary dateComponents="2026-03-01" activeEnergyBurned="520" activeEnergyBurnedGoal="500" activeEnergyBurnedUnit="kcal"/>
"#;

    fn export(body: &str) -> String {
        format!("{HEADER}{body}</HealthData>\n")
    }

    fn read_all(xml: &str, batch_rows: usize) -> Result<Vec<Extract>> {
        let input = Input::bytes(NAME, xml.as_bytes().to_vec());
        let mut extracts = Vec::new();
        let mut sink = |extract| {
            extracts.push(extract);
            Ok(())
        };
        if batch_rows == BATCH_ROWS {
            read(input, &mut sink)?;
        } else {
            read_in_batches(input, &mut sink, batch_rows)?;
        }
        Ok(extracts)
    }

    /// A stream's rows across its extracts: column names, rows as text, record numbers.
    type Rows = (Vec<String>, Vec<Vec<Option<String>>>, Vec<u64>);

    fn rows(extracts: &[Extract], stream: &str) -> Rows {
        let mut names = Vec::new();
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for extract in extracts.iter().filter(|e| e.stream == stream) {
            assert_eq!(&*extract.file, NAME);
            assert_eq!(extract.default_source, "apple_health");
            assert!(extract.units.is_empty(), "{:?}", extract.units);
            assert_eq!(extract.records.len(), extract.batch.num_rows());
            let schema = extract.batch.schema();
            names = schema.fields().iter().map(|f| f.name().clone()).collect();
            assert!(
                schema
                    .fields()
                    .iter()
                    .all(|f| f.data_type() == &DataType::Utf8)
            );
            for row in 0..extract.batch.num_rows() {
                rows.push(
                    extract
                        .batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let text = c.as_string::<i32>();
                            (!text.is_null(row)).then(|| text.value(row).to_owned())
                        })
                        .collect(),
                );
            }
            records.extend(&extract.records);
        }
        (names, rows, records)
    }

    fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    const WATCH: Option<&str> = Some("Ana’s Apple Watch");

    #[test]
    fn apple_health_exports_are_sniffed() {
        assert!(sniff(HEADER.as_bytes()));
        // What format detection reads: the first 512 bytes, all DTD.
        let head = &HEADER.as_bytes()[..512];
        assert!(!String::from_utf8_lossy(head).contains("<HealthData"));
        assert!(sniff(head));
        assert!(sniff(
            b"<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">"
        ));
        assert!(!sniff(b"subject,time,bpm\nS1,2026-03-01,60\n"));
        assert!(!sniff(b"<?xml version=\"1.0\"?>\n<gpx version=\"1.1\">"));
    }

    #[test]
    fn apple_health_records_feed_their_streams() {
        let extracts = read_all(&export(EXPORT), BATCH_ROWS).unwrap();
        let mut streams: Vec<&str> = extracts.iter().map(|e| e.stream.as_str()).collect();
        streams.sort_unstable();
        assert_eq!(
            streams,
            [
                "active_energy",
                "blood_pressure",
                "body",
                "glucose",
                "heart_rate",
                "hrv",
                "sleep",
                "spo2",
                "steps",
                "workouts"
            ],
            "one extract per stream; resting heart rate, water and activity summaries have none"
        );

        assert_eq!(
            rows(&extracts, "heart_rate"),
            (
                names(HEART_RATE),
                vec![
                    row(&[WATCH, Some("2026-03-01 06:00:00 +0100"), Some("58")]),
                    row(&[WATCH, Some("2026-03-01 06:05:00 +0100"), Some("61")]),
                ],
                vec![1, 2],
            )
        );
        assert_eq!(
            rows(&extracts, "hrv"),
            (
                names(&["source", "time", "rmssd_ms"]),
                vec![row(&[
                    WATCH,
                    Some("2026-03-01 03:10:58 +0100"),
                    Some("45.3")
                ])],
                vec![4],
            ),
            "record 3 (resting heart rate) is skipped but counted"
        );
        assert_eq!(
            rows(&extracts, "spo2"),
            (
                names(&["source", "time", "pct"]),
                vec![row(&[WATCH, Some("2026-03-01 03:30:00 +0100"), Some("97")])],
                vec![5],
            )
        );
        assert_eq!(
            rows(&extracts, "steps"),
            (
                names(&["source", "time", "end_time", "count"]),
                vec![row(&[
                    Some("Ana’s iPhone"),
                    Some("2026-03-01 08:00:00 +0100"),
                    Some("2026-03-01 08:10:00 +0100"),
                    Some("1203"),
                ])],
                vec![6],
            )
        );
        assert_eq!(
            rows(&extracts, "active_energy"),
            (
                names(&["source", "time", "end_time", "kcal", "kcal_unit"]),
                vec![
                    row(&[
                        WATCH,
                        Some("2026-03-01 08:00:00 +0100"),
                        Some("2026-03-01 08:01:00 +0100"),
                        Some("12.5"),
                        Some("kcal"),
                    ]),
                    row(&[
                        WATCH,
                        Some("2026-03-01 08:01:00 +0100"),
                        Some("2026-03-01 08:02:00 +0100"),
                        Some("50"),
                        Some("kJ"),
                    ]),
                ],
                vec![7, 8],
            )
        );
        assert_eq!(
            rows(&extracts, "glucose"),
            (
                names(&["source", "time", "mmol_l", "mmol_l_unit"]),
                vec![
                    row(&[
                        Some("OneTouch Reveal"),
                        Some("2026-03-01 07:30:00 +0100"),
                        Some("95"),
                        Some("mg/dL"),
                    ]),
                    row(&[
                        Some("OneTouch Reveal"),
                        Some("2026-03-02 07:30:00 +0100"),
                        Some("5.4"),
                        Some("mmol/L"),
                    ]),
                ],
                vec![13, 14],
            )
        );
        let (columns, sleep, records) = rows(&extracts, "sleep");
        assert_eq!(columns, names(&["source", "time", "end_time", "stage"]));
        let stages: Vec<(Option<String>, Option<String>)> = sleep
            .into_iter()
            .map(|r| (r[0].clone(), r[3].clone()))
            .collect();
        let stage = |source: &str, stage: &str| (Some(source.to_owned()), Some(stage.to_owned()));
        assert_eq!(
            stages,
            [
                stage("Ana’s iPhone", "in_bed"),
                stage("Ana’s Apple Watch", "light"),
                stage("Ana’s Apple Watch", "deep"),
                stage("Ana’s Apple Watch", "rem"),
                stage("Ana’s Apple Watch", "awake"),
                stage("AutoSleep", "asleep"),
            ]
        );
        assert_eq!(records, [18, 19, 20, 21, 22, 23]);
        assert_eq!(
            rows(&extracts, "sleep").1[0][1..3],
            [
                Some("2026-03-01 22:40:00 +0100".to_owned()),
                Some("2026-03-02 06:50:00 +0100".to_owned())
            ]
        );
    }

    #[test]
    fn apple_health_body_and_blood_pressure_readings_are_paired() {
        let extracts = read_all(&export(EXPORT), BATCH_ROWS).unwrap();
        let withings = Some("Withings");
        assert_eq!(
            rows(&extracts, "body"),
            (
                names(&[
                    "source",
                    "time",
                    "weight_kg",
                    "weight_kg_unit",
                    "fat_pct",
                    "bmi"
                ]),
                vec![
                    row(&[
                        withings,
                        Some("2026-03-01 07:00:00 +0100"),
                        Some("154.3"),
                        Some("lb"),
                        None,
                        None,
                    ]),
                    row(&[
                        withings,
                        Some("2026-03-02 07:00:00 +0100"),
                        Some("70.2"),
                        Some("kg"),
                        Some("21.5"),
                        Some("22.9"),
                    ]),
                ],
                vec![9, 10],
            ),
            "weight, fat ratio ×100 and BMI of one weighing are one row"
        );
        let omron = Some("Omron");
        assert_eq!(
            rows(&extracts, "blood_pressure"),
            (
                names(&["source", "time", "systolic", "diastolic"]),
                vec![
                    row(&[
                        omron,
                        Some("2026-03-01 08:00:00 +0100"),
                        Some("121"),
                        Some("79")
                    ]),
                    row(&[
                        omron,
                        Some("2026-03-02 08:00:00 +0100"),
                        Some("128"),
                        Some("82")
                    ]),
                ],
                vec![16, 26],
            ),
            "halves are paired, and the copies inside a Correlation (records 24, 25) add no row"
        );
    }

    #[test]
    fn apple_health_workouts_take_statistics_or_totals() {
        let extracts = read_all(&export(EXPORT), BATCH_ROWS).unwrap();
        assert_eq!(
            rows(&extracts, "workouts"),
            (
                names(WORKOUTS),
                vec![
                    row(&[
                        WATCH,
                        Some("2026-03-01 18:00:00 +0100"),
                        Some("2026-03-01 18:45:30 +0100"),
                        Some("run"),
                        Some("8.43"),
                        Some("km"),
                        Some("612"),
                        Some("kcal"),
                        Some("148.2"),
                        Some("171"),
                    ]),
                    row(&[
                        Some("Strava"),
                        Some("2026-03-02 17:00:00 +0100"),
                        Some("2026-03-02 18:00:00 +0100"),
                        Some("ride"),
                        Some("12.4"),
                        Some("mi"),
                        Some("1800"),
                        Some("kJ"),
                        None,
                        None,
                    ]),
                    row(&[
                        WATCH,
                        Some("2026-03-03 07:00:00 +0100"),
                        Some("2026-03-03 07:30:00 +0100"),
                        Some("yoga"),
                        None,
                        None,
                        Some("95.5"),
                        Some("kcal"),
                        None,
                        None,
                    ]),
                ],
                vec![28, 29, 30],
            )
        );
    }

    #[test]
    fn apple_health_me_may_name_the_subject() {
        let extracts = read_all(&export(EXPORT), BATCH_ROWS).unwrap();
        assert!(
            extracts
                .iter()
                .all(|e| e.batch.column_by_name(SUBJECT).is_none()),
            "an export of the Health app names nobody: --subject does"
        );
        let named = export(EXPORT).replacen("<Me ", &format!("<Me {PSEUDONYM}=\" S0042 \" "), 1);
        let extracts = read_all(&named, 2).unwrap();
        assert!(extracts.len() > 10);
        for extract in &extracts {
            let subjects = extract
                .batch
                .column_by_name(SUBJECT)
                .unwrap()
                .as_string::<i32>();
            assert_eq!(subjects.len(), extract.records.len());
            assert!(
                subjects.iter().all(|s| s == Some("S0042")),
                "{}",
                extract.stream
            );
        }
    }

    #[test]
    fn apple_health_vocabularies_map() {
        assert_eq!(sport("HKWorkoutActivityTypeWalking"), "walk");
        assert_eq!(sport("HKWorkoutActivityTypeSwimming"), "swim");
        assert_eq!(
            sport("HKWorkoutActivityTypeTraditionalStrengthTraining"),
            "strength"
        );
        assert_eq!(
            sport("HKWorkoutActivityTypeFunctionalStrengthTraining"),
            "strength"
        );
        assert_eq!(
            sport("HKWorkoutActivityTypeHighIntensityIntervalTraining"),
            "highintensityintervaltraining"
        );
        assert_eq!(sleep_stage("HKCategoryValueSleepAnalysisAsleep"), "asleep");
        assert_eq!(
            sleep_stage("HKCategoryValueSleepAnalysisNapping"),
            "Napping",
            "unknown stages reach cleaning, which rejects them"
        );
        assert_eq!(percent("0.255"), "25.5");
        assert_eq!(percent("1"), "100");
        assert_eq!(percent("n/a"), "n/a");
    }

    #[test]
    fn apple_health_streams_are_handed_on_in_batches() {
        let mut body = String::new();
        for minute in 0..5 {
            body.push_str(&format!(
                r#" <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="2026-03-01 06:0{minute}:00 +0100" endDate="2026-03-01 06:0{minute}:00 +0100" value="6{minute}"/>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Watch" unit="count" startDate="2026-03-01 06:0{minute}:00 +0100" endDate="2026-03-01 06:0{minute}:59 +0100" value="1{minute}"/>
"#
            ));
        }
        let extracts = read_all(&export(&body), 2).unwrap();
        let sizes: Vec<(&str, Vec<u64>)> = extracts
            .iter()
            .map(|e| (e.stream.as_str(), e.records.clone()))
            .collect();
        assert_eq!(
            sizes,
            [
                ("heart_rate", vec![1, 3]),
                ("steps", vec![2, 4]),
                ("heart_rate", vec![5, 7]),
                ("steps", vec![6, 8]),
                ("heart_rate", vec![9]),
                ("steps", vec![10]),
            ]
        );
        assert_eq!(rows(&extracts, "heart_rate").1[4][2].as_deref(), Some("64"));

        // Rows already handed on are not held back until the end of the file.
        let broken = export(&format!("{body} <Record type=\"x\"></Recrd>\n"));
        let mut seen = 0;
        let outcome = read_in_batches(
            Input::bytes(NAME, broken.into_bytes()),
            &mut |_| {
                seen += 1;
                Ok(())
            },
            2,
        );
        assert!(outcome.is_err());
        assert_eq!(seen, 4);
    }

    #[test]
    fn apple_health_malformed_exports_name_the_file_and_position() {
        let xml = export(EXPORT).replacen(r#"value="61"/>"#, r#"value="61"></Recrd>"#, 1);
        let at = xml.find("</Recrd>").unwrap();
        let err = read_all(&xml, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{NAME}: not a readable Apple Health export at byte {at}: "
            )),
            "{err}"
        );
        // A broken attribute: the position is where its element starts.
        let xml = export(EXPORT).replacen(r#"value="0.97"/>"#, r#"value="0.97" value="0.98"/>"#, 1);
        let at = xml[..xml.find(r#"value="0.98""#).unwrap()]
            .rfind('<')
            .unwrap();
        let err = read_all(&xml, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{NAME}: not a readable Apple Health export at byte {at}: "
            )),
            "{err}"
        );
        // Cut short inside a tag: the position is where the tag starts.
        let whole = export(EXPORT);
        let cut = &whole[..whole.find(r#"value="0.97""#).unwrap() + 9];
        let tag = cut.rfind("<Record").unwrap();
        let err = read_all(cut, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{NAME}: not a readable Apple Health export at byte {tag}: "
            )),
            "{err}"
        );
        // Cut short between elements: the position is the end of the file.
        let cut = &whole[..whole.find(" <Workout").unwrap()];
        let err = read_all(cut, BATCH_ROWS).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{NAME}: not a readable Apple Health export at byte {}: it ends before \
                 </HealthData>: the file was cut short",
                cut.len()
            )
        );

        let err = read_all("<?xml version=\"1.0\"?>\n<gpx version=\"1.1\"></gpx>", 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{NAME}: not an Apple Health export: its root element is <gpx>, not <HealthData>"
            )
        );
    }
}
