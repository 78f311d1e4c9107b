//! HL7 FHIR R4 JSON: a `Bundle` (any type: `collection`, `transaction`, `searchset`, …; the
//! `resource` of each entry), a single `Observation`, or bulk-data NDJSON (one resource per
//! line, as `$export` writes `Observation.ndjson`). Observations are read by their LOINC
//! code (a `code.coding` of system `http://loinc.org`; the first of them in this table
//! decides):
//!
//! | LOINC | stream.column |
//! |---|---|
//! | 8867-4 heart rate | heart_rate.bpm |
//! | 80404-7 R-R interval SDNN | hrv.rmssd_ms (SDNN, as the only HRV such exports carry) |
//! | 59408-5, 2708-6 SpO2 | spo2.pct |
//! | 55423-8 step count | steps.count, `effectivePeriod` |
//! | 41981-2 calories burned | active_energy.kcal, `effectivePeriod` |
//! | 29463-7 body weight | body.weight_kg |
//! | 41982-0 body fat | body.fat_pct |
//! | 39156-5 BMI | body.bmi |
//! | 85354-9 (or 55284-4) blood pressure panel, `component` 8480-6 / 8462-4 | blood_pressure.systolic / diastolic |
//! | 8480-6 / 8462-4 alone | blood_pressure.systolic / diastolic |
//! | 2339-0, 15074-8, 41653-7 glucose | glucose.mmol_l |
//!
//! Everything else is skipped without a trace (the batch report has no place for it): other
//! codes (93832-4 sleep duration among them: it has no stages), resources other than
//! Observations (a `Patient` of a Bundle only resolves the references to it), and
//! Observations whose `status` is `entered-in-error` or `cancelled` (withdrawn by their
//! author).
//!
//! Values are `valueQuantity.value` as written (a blood pressure panel's from its
//! `component`s), with the quantity's unit per row in `<column>_unit`: its UCUM `code` when
//! `system` is UCUM, else its `unit` text (a step count has none: a count is converted from
//! nothing). Times are `effectiveDateTime` or `effectiveInstant`, else `effectivePeriod.start`
//! (and `.end` for the interval streams), as text: with an offset an instant, a date or a time
//! without offset a wall-clock time in the subject's zone. The subject is the id of the
//! `Patient` that `subject.reference` names (`Patient/abc`, an absolute URL ending so, or the
//! `fullUrl` of a Patient entry of the Bundle, which must then have an `id`), else
//! `subject.identifier.value`; a `Group` or other non-Patient subject names nobody. Rows are
//! handed on without a `subject` column when none of them names one, so that the pipeline's
//! `--subject` applies; a row without a subject among rows with one is refused by cleaning.
//! `source` is `device.display`, else `meta.source`, else `fhir`.
//!
//! Readings that make one row (weight, body fat and BMI of one weighing; the halves of a
//! blood pressure given as separate Observations) are paired by subject, source and time, as
//! the Apple Health reader pairs them, and handed on at the end; the other streams every
//! [`BATCH_ROWS`] rows. An Observation missing its value or time is still handed on, for
//! cleaning to reject with its record number: the 1-based index of its entry in the Bundle,
//! its line in NDJSON, 1 for a lone Observation.
//!
//! A Bundle is one JSON document and is read whole into memory (a few times its size):
//! exports per patient stay in the megabytes; bulk data, which grows large, is NDJSON and is
//! read line by line. A file whose first line is a complete JSON value is read as NDJSON.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read},
    sync::Arc,
};

use arrow::{
    array::{Array, ArrayRef, RecordBatch, StringBuilder},
    datatypes::{DataType, Field, Schema},
};
use serde_json::Value;

use super::{Input, Sink};
use crate::{Error, Result, extract::Extract};

/// Rows per extract of a stream.
const BATCH_ROWS: usize = 64 * 1024;
/// The `source` of rows whose Observation names no device.
const DEFAULT_SOURCE: &str = "fhir";
const UCUM: &str = "http://unitsofmeasure.org";
/// The system of LOINC codes, as FHIR names it (and as some servers misspell it).
const LOINC: [&str; 2] = ["http://loinc.org", "https://loinc.org"];

// The first three columns of every stream are the subject, source and time.
const HEART_RATE: &[&str] = &["subject", "source", "time", "bpm", "bpm_unit"];
const HRV: &[&str] = &["subject", "source", "time", "rmssd_ms", "rmssd_ms_unit"];
const SPO2: &[&str] = &["subject", "source", "time", "pct", "pct_unit"];
const STEPS: &[&str] = &["subject", "source", "time", "end_time", "count"];
const ACTIVE_ENERGY: &[&str] = &["subject", "source", "time", "end_time", "kcal", "kcal_unit"];
const GLUCOSE: &[&str] = &["subject", "source", "time", "mmol_l", "mmol_l_unit"];
const BODY: &[&str] = &[
    "subject",
    "source",
    "time",
    "weight_kg",
    "weight_kg_unit",
    "fat_pct",
    "fat_pct_unit",
    "bmi",
    "bmi_unit",
];
const BLOOD_PRESSURE: &[&str] = &[
    "subject",
    "source",
    "time",
    "systolic",
    "systolic_unit",
    "diastolic",
    "diastolic_unit",
];

/// Whether the first bytes are a JSON object with a `resourceType`: a FHIR resource (or the
/// first line of bulk data).
pub(crate) fn sniff(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if !text.starts_with('{') {
        return false;
    }
    const KEY: &str = "\"resourceType\"";
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        rest = &rest[at + KEY.len()..];
        if let Some(value) = rest.trim_start().strip_prefix(':')
            && value.trim_start().starts_with('"')
        {
            return true;
        }
    }
    false
}

/// Whether a file's name says it is FHIR (`*.fhir.json`, `*.fhir.ndjson`), for files whose
/// first bytes do not show a `resourceType`.
pub(crate) fn named(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".fhir.json") || name.ends_with(".fhir.ndjson")
}

/// Reads a Bundle, an Observation or bulk NDJSON into extracts of the standard streams.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, sink, BATCH_ROWS)
}

fn read_in_batches(input: Input, sink: &mut Sink, batch_rows: usize) -> Result<()> {
    let file = input.name.clone();
    let mut reader = BufReader::with_capacity(1 << 20, input.open()?);
    let mut out = Output::new(file.clone(), batch_rows);
    let mut line = Vec::new();
    let mut number = 0u64;
    // The first line that is not blank tells NDJSON (a whole value) from a document.
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::file(&file, format!("cannot read: {e}")))?;
        if read == 0 {
            return Err(Error::file(&file, "is empty: it holds no FHIR resource"));
        }
        number += 1;
        if !line.trim_ascii().is_empty() {
            break;
        }
    }
    let first = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
    match serde_json::from_slice::<Value>(first) {
        Ok(value) => {
            out.resource(&value, number, true, sink)?;
            drop(value);
            loop {
                line.clear();
                let read = reader.read_until(b'\n', &mut line).map_err(|e| {
                    Error::file(&file, format!("cannot read line {}: {e}", number + 1))
                })?;
                if read == 0 {
                    break;
                }
                number += 1;
                if line.trim_ascii().is_empty() {
                    continue;
                }
                let value = serde_json::from_slice::<Value>(&line)
                    .map_err(|e| malformed(&file, &e, number))?;
                out.resource(&value, number, true, sink)?;
            }
        }
        Err(e) if e.is_eof() => {
            let mut document = first.to_vec();
            drop(line);
            reader
                .read_to_end(&mut document)
                .map_err(|e| Error::file(&file, format!("cannot read: {e}")))?;
            let value = serde_json::from_slice::<Value>(&document)
                .map_err(|e| malformed(&file, &e, number - 1 + e.line() as u64))?;
            drop(document);
            out.resource(&value, 1, false, sink)?;
        }
        Err(e) => return Err(malformed(&file, &e, number)),
    }
    out.finish(sink)
}

/// A JSON syntax error, at `line` of the file.
fn malformed(file: &str, error: &serde_json::Error, line: u64) -> Error {
    let text = error.to_string();
    let problem = text
        .strip_suffix(&format!(
            " at line {} column {}",
            error.line(),
            error.column()
        ))
        .unwrap_or(&text);
    Error::file(
        file,
        format!(
            "not readable as FHIR JSON at line {line}, column {}: {problem}",
            error.column()
        ),
    )
}

/// The text of a JSON scalar as the source wrote it; `None` for null or absent.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn text<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The LOINC codes of a `CodeableConcept`, in order.
fn loinc_codes(concept: Option<&Value>) -> impl Iterator<Item = &str> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|coding| {
            coding
                .get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| LOINC.contains(&s.trim().trim_end_matches('/')))
        })
        .filter_map(|coding| coding.get("code").and_then(Value::as_str))
        .map(str::trim)
}

/// What an Observation's LOINC code measures, among what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    HeartRate,
    Hrv,
    Spo2,
    Steps,
    ActiveEnergy,
    Weight,
    BodyFat,
    Bmi,
    BloodPressurePanel,
    Systolic,
    Diastolic,
    Glucose,
}

fn measure(loinc: &str) -> Option<Measure> {
    Some(match loinc {
        "8867-4" => Measure::HeartRate,
        "80404-7" => Measure::Hrv,
        "59408-5" | "2708-6" => Measure::Spo2,
        "55423-8" => Measure::Steps,
        "41981-2" => Measure::ActiveEnergy,
        "29463-7" => Measure::Weight,
        "41982-0" => Measure::BodyFat,
        "39156-5" => Measure::Bmi,
        "85354-9" | "55284-4" => Measure::BloodPressurePanel,
        "8480-6" => Measure::Systolic,
        "8462-4" => Measure::Diastolic,
        "2339-0" | "15074-8" | "41653-7" => Measure::Glucose,
        _ => return None,
    })
}

/// A `Quantity`'s value as written and its unit: the UCUM code when coded so, else the text.
fn quantity(quantity: Option<&Value>) -> (Option<String>, Option<String>) {
    let Some(quantity) = quantity else {
        return (None, None);
    };
    let value = scalar(quantity.get("value"));
    let code = quantity.get("code").and_then(Value::as_str);
    let unit = quantity.get("unit").and_then(Value::as_str);
    let is_ucum = quantity.get("system").and_then(Value::as_str) == Some(UCUM);
    let unit = match (is_ucum, code, unit) {
        (true, Some(code), _) => Some(code),
        (_, _, Some(unit)) => Some(unit),
        (_, code, None) => code,
    };
    (value, unit.map(str::to_owned))
}

/// The subject's pseudonym: the id of the Patient referenced, else the identifier's value.
fn pseudonym(subject: &Value, patients: &HashMap<String, String>) -> Option<String> {
    if let Some(reference) = subject.get("reference").and_then(Value::as_str) {
        let reference = reference.trim();
        if let Some(id) = patients.get(reference) {
            return Some(id.clone());
        }
        let path = reference
            .split(['?', '#'])
            .next()
            .unwrap_or(reference)
            .trim_end_matches('/');
        let path = path.split("/_history/").next().unwrap_or(path);
        return match path.rsplit_once('/') {
            Some((kind, id))
                if !id.is_empty() && (kind == "Patient" || kind.ends_with("/Patient")) =>
            {
                Some(id.to_owned())
            }
            _ => None,
        };
    }
    text(subject, "/identifier/value").map(str::to_owned)
}

/// Rows of one stream, as text columns, until they are handed on.
struct Table {
    stream: &'static str,
    names: &'static [&'static str],
    columns: Vec<StringBuilder>,
    records: Vec<u64>,
}

impl Table {
    fn new(stream: &'static str, names: &'static [&'static str]) -> Self {
        Table {
            stream,
            names,
            columns: names.iter().map(|_| StringBuilder::new()).collect(),
            records: Vec::new(),
        }
    }

    fn push(&mut self, record: u64, row: &[Option<&str>]) {
        debug_assert_eq!(row.len(), self.names.len(), "{}", self.stream);
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.append_option(*value);
        }
        self.records.push(record);
    }

    /// Hands the rows gathered so far to `sink` as one extract. A `subject` column that names
    /// nobody is left out, so that the pipeline's `--subject` applies.
    fn flush(&mut self, file: &Arc<str>, sink: &mut Sink) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let mut fields = Vec::with_capacity(self.names.len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.names.len());
        for (name, column) in self.names.iter().zip(&mut self.columns) {
            let array = column.finish();
            if *name == "subject" && array.null_count() == array.len() {
                continue;
            }
            fields.push(Field::new(*name, DataType::Utf8, true));
            columns.push(Arc::new(array));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::file(file, format!("cannot build rows: {e}")))?;
        sink(Extract {
            stream: self.stream.to_owned(),
            batch,
            units: HashMap::new(),
            records: std::mem::take(&mut self.records),
            file: file.clone(),
            default_source: DEFAULT_SOURCE.to_owned(),
        })
    }
}

/// The subject, source and time shared by the readings of one row.
type Key = [Option<String>; 3];

/// A row of a [`Paired`] stream.
struct PairedRow {
    /// The first record that gave a value.
    record: u64,
    key: Key,
    /// The values of the columns after the key.
    values: Vec<Option<String>>,
}

/// Rows whose values come from several Observations with the same subject, source and time.
struct Paired {
    stream: &'static str,
    names: &'static [&'static str],
    rows: Vec<PairedRow>,
    index: HashMap<Key, usize>,
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

    /// Sets values (by column name) of the row of `key`. Readings without a time are not
    /// paired: each keeps its record number for the rejection.
    fn set(&mut self, record: u64, key: Key, values: &[(&str, Option<String>)]) {
        let width = self.names.len() - key.len();
        let row = match self.index.get(&key) {
            Some(row) => *row,
            None => {
                self.rows.push(PairedRow {
                    record,
                    key: key.clone(),
                    values: vec![None; width],
                });
                if key[2].is_some() {
                    self.index.insert(key, self.rows.len() - 1);
                }
                self.rows.len() - 1
            }
        };
        let cells = &mut self.rows[row].values;
        for (name, value) in values {
            if let Some(position) = self.names.iter().position(|n| n == name) {
                cells[position - 3] = value.clone();
            }
        }
    }

    fn finish(self, file: &Arc<str>, sink: &mut Sink, batch_rows: usize) -> Result<()> {
        let mut table = Table::new(self.stream, self.names);
        for paired in &self.rows {
            let mut row: Vec<Option<&str>> = paired.key.iter().map(Option::as_deref).collect();
            row.extend(paired.values.iter().map(Option::as_deref));
            table.push(paired.record, &row);
            if table.records.len() >= batch_rows {
                table.flush(file, sink)?;
            }
        }
        table.flush(file, sink)
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
            body: Paired::new("body", BODY),
            blood_pressure: Paired::new("blood_pressure", BLOOD_PRESSURE),
        }
    }

    /// A top-level resource: a Bundle's entries are numbered from 1, a lone Observation
    /// is record `record`; other resources are skipped. `line` says whether `record` is a
    /// line of NDJSON, for messages.
    fn resource(
        &mut self,
        resource: &Value,
        record: u64,
        line: bool,
        sink: &mut Sink,
    ) -> Result<()> {
        let Some(kind) = resource.get("resourceType").and_then(Value::as_str) else {
            let place = if line {
                format!("line {record}")
            } else {
                "the document".to_owned()
            };
            return Err(Error::file(
                &self.file,
                format!("not a FHIR resource: {place} has no resourceType"),
            ));
        };
        match kind {
            "Observation" => self.observation(resource, record, &HashMap::new(), sink),
            "Bundle" => {
                let entries = resource
                    .get("entry")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                let patients = patients(entries);
                for (index, entry) in entries.iter().enumerate() {
                    if let Some(resource) = entry.get("resource")
                        && resource.get("resourceType").and_then(Value::as_str)
                            == Some("Observation")
                    {
                        self.observation(resource, index as u64 + 1, &patients, sink)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Adds the rows of an Observation; those not read are skipped.
    fn observation(
        &mut self,
        observation: &Value,
        record: u64,
        patients: &HashMap<String, String>,
        sink: &mut Sink,
    ) -> Result<()> {
        if matches!(
            observation.get("status").and_then(Value::as_str),
            Some("entered-in-error" | "cancelled")
        ) {
            return Ok(());
        }
        let Some(measure) = loinc_codes(observation.get("code")).find_map(measure) else {
            return Ok(());
        };
        let subject = observation
            .get("subject")
            .and_then(|s| pseudonym(s, patients));
        let source = text(observation, "/device/display")
            .or_else(|| text(observation, "/meta/source"))
            .map(str::to_owned);
        let start = scalar(observation.get("effectiveDateTime"))
            .or_else(|| scalar(observation.get("effectiveInstant")))
            .or_else(|| scalar(observation.pointer("/effectivePeriod/start")));
        let end = scalar(observation.pointer("/effectivePeriod/end"));
        let (value, unit) = quantity(observation.get("valueQuantity"));
        let (subject_text, source_text) = (subject.as_deref(), source.as_deref());
        let (start_text, end_text) = (start.as_deref(), end.as_deref());
        let (value_text, unit_text) = (value.as_deref(), unit.as_deref());
        let point = [subject_text, source_text, start_text, value_text, unit_text];
        let table = match measure {
            Measure::HeartRate => {
                self.heart_rate.push(record, &point);
                &mut self.heart_rate
            }
            // A watch's heart-rate variability is SDNN, not RMSSD; it is the only HRV such
            // data has, so it feeds `hrv.rmssd_ms` (as Apple Health's does).
            Measure::Hrv => {
                self.hrv.push(record, &point);
                &mut self.hrv
            }
            Measure::Spo2 => {
                self.spo2.push(record, &point);
                &mut self.spo2
            }
            Measure::Glucose => {
                self.glucose.push(record, &point);
                &mut self.glucose
            }
            Measure::Steps => {
                self.steps.push(
                    record,
                    &[subject_text, source_text, start_text, end_text, value_text],
                );
                &mut self.steps
            }
            Measure::ActiveEnergy => {
                self.active_energy.push(
                    record,
                    &[
                        subject_text,
                        source_text,
                        start_text,
                        end_text,
                        value_text,
                        unit_text,
                    ],
                );
                &mut self.active_energy
            }
            Measure::Weight | Measure::BodyFat | Measure::Bmi => {
                let (column, unit_column) = match measure {
                    Measure::Weight => ("weight_kg", "weight_kg_unit"),
                    Measure::BodyFat => ("fat_pct", "fat_pct_unit"),
                    _ => ("bmi", "bmi_unit"),
                };
                self.body.set(
                    record,
                    [subject, source, start],
                    &[(column, value), (unit_column, unit)],
                );
                return Ok(());
            }
            Measure::Systolic | Measure::Diastolic => {
                let (column, unit_column) = match measure {
                    Measure::Systolic => ("systolic", "systolic_unit"),
                    _ => ("diastolic", "diastolic_unit"),
                };
                self.blood_pressure.set(
                    record,
                    [subject, source, start],
                    &[(column, value), (unit_column, unit)],
                );
                return Ok(());
            }
            Measure::BloodPressurePanel => {
                let mut values = Vec::with_capacity(4);
                for component in observation
                    .get("component")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let half = loinc_codes(component.get("code")).find_map(|code| match code {
                        "8480-6" => Some(("systolic", "systolic_unit")),
                        "8462-4" => Some(("diastolic", "diastolic_unit")),
                        _ => None,
                    });
                    if let Some((column, unit_column)) = half {
                        let (value, unit) = quantity(component.get("valueQuantity"));
                        values.push((column, value));
                        values.push((unit_column, unit));
                    }
                }
                self.blood_pressure
                    .set(record, [subject, source, start], &values);
                return Ok(());
            }
        };
        if table.records.len() >= self.batch_rows {
            table.flush(&self.file, sink)?;
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
        ] {
            table.flush(&self.file, sink)?;
        }
        self.body.finish(&self.file, sink, self.batch_rows)?;
        self.blood_pressure
            .finish(&self.file, sink, self.batch_rows)
    }
}

/// The Patient entries of a Bundle by `fullUrl`, to their `id`.
fn patients(entries: &[Value]) -> HashMap<String, String> {
    entries
        .iter()
        .filter(|e| text(e, "/resource/resourceType") == Some("Patient"))
        .filter_map(|e| {
            let url = e.get("fullUrl").and_then(Value::as_str)?;
            let id = text(e, "/resource/id")?;
            Some((url.trim().to_owned(), id.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;

    use super::*;

    const NAME: &str = "exports/patient-ana.json";

    /// A Bundle as a FHIR server's `$everything` or a device gateway writes it.
    const BUNDLE: &str = r##"{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {
      "fullUrl": "urn:uuid:4c1f3c2a-0000-4000-8000-000000000001",
      "resource": {"resourceType": "Patient", "id": "ana", "gender": "female", "birthDate": "1990-04-02"}
    },
    {
      "resource": {
        "resourceType": "Observation", "id": "hr-1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": "Patient/ana"},
        "effectiveDateTime": "2026-03-01T06:00:00+01:00",
        "valueQuantity": {"value": 58, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
        "device": {"display": "Polar H10"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "id": "bp-1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "urn:uuid:4c1f3c2a-0000-4000-8000-000000000001"},
        "effectiveDateTime": "2026-03-01T08:00:00+01:00",
        "component": [
          {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
           "valueQuantity": {"value": 121, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
          {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
           "valueQuantity": {"value": 79, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "27113001"}, {"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "https://fhir.example.org/r4/Patient/ana/_history/3"},
        "effectiveDateTime": "2026-03-01T07:00:00+01:00",
        "valueQuantity": {"value": 154.3, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
        "meta": {"source": "#withings"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "41982-0"}]},
        "subject": {"reference": "Patient/ana"},
        "effectiveDateTime": "2026-03-01T07:00:00+01:00",
        "valueQuantity": {"value": 21.5, "unit": "%"},
        "meta": {"source": "#withings"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "amended",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": {"reference": "Patient/ana"},
        "effectivePeriod": {"start": "2026-03-01T07:30:00+01:00"},
        "valueQuantity": {"value": 95, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "entered-in-error",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/ana"},
        "effectiveDateTime": "2026-03-01T06:01:00+01:00",
        "valueQuantity": {"value": 180, "unit": "/min"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "93832-4", "display": "Sleep duration"}]},
        "subject": {"reference": "Patient/ana"},
        "effectivePeriod": {"start": "2026-02-28T23:00:00+01:00", "end": "2026-03-01T06:30:00+01:00"},
        "valueQuantity": {"value": 7.5, "unit": "h"}
      }
    },
    {
      "resource": {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/ana"},
        "effectiveDateTime": "2026-03-01T06:02:00+01:00"
      }
    },
    {"request": {"method": "DELETE", "url": "Observation/old"}}
  ]
}
"##;

    fn read_all(text: &str, batch_rows: usize) -> Result<Vec<Extract>> {
        let input = Input::bytes(NAME, text.as_bytes().to_vec());
        let mut extracts = Vec::new();
        read_in_batches(
            input,
            &mut |extract| {
                extracts.push(extract);
                Ok(())
            },
            batch_rows,
        )?;
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
            assert_eq!(extract.default_source, "fhir");
            assert_eq!(extract.records.len(), extract.batch.num_rows());
            let schema = extract.batch.schema();
            names = schema.fields().iter().map(|f| f.name().clone()).collect();
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

    const ANA: Option<&str> = Some("ana");

    #[test]
    fn fhir_resources_are_sniffed() {
        assert!(sniff(BUNDLE.as_bytes()));
        assert!(sniff(&BUNDLE.as_bytes()[..64]));
        assert!(sniff(
            b"\xEF\xBB\xBF{\"resourceType\":\"Observation\",\"id\":\"1\"}\n"
        ));
        assert!(sniff(b"{\"id\":\"x\",\"resourceType\" :\n \"Patient\"}"));
        assert!(!sniff(b"{\"subject\":\"S1\",\"bpm\":60}\n"));
        assert!(!sniff(b"{\"note\":\"\\\"resourceType\\\" is a key\"}"));
        assert!(!sniff(b"subject,time,bpm\n"));
        assert!(named("data/ana.FHIR.json"));
        assert!(named("Observation.fhir.ndjson"));
        assert!(!named("ana.json"));
    }

    #[test]
    fn fhir_bundle_observations_feed_their_streams() {
        let extracts = read_all(BUNDLE, BATCH_ROWS).unwrap();
        let mut streams: Vec<&str> = extracts.iter().map(|e| e.stream.as_str()).collect();
        streams.sort_unstable();
        assert_eq!(
            streams,
            ["blood_pressure", "body", "glucose", "heart_rate"],
            "sleep duration, the Patient and the withdrawn reading give no rows"
        );
        assert_eq!(
            rows(&extracts, "heart_rate"),
            (
                names(HEART_RATE),
                vec![
                    row(&[
                        ANA,
                        Some("Polar H10"),
                        Some("2026-03-01T06:00:00+01:00"),
                        Some("58"),
                        Some("/min"),
                    ]),
                    row(&[ANA, None, Some("2026-03-01T06:02:00+01:00"), None, None]),
                ],
                vec![2, 9],
            ),
            "entry 7 is entered-in-error; entry 9 has no value and is passed on for cleaning"
        );
        assert_eq!(
            rows(&extracts, "blood_pressure"),
            (
                names(BLOOD_PRESSURE),
                vec![row(&[
                    ANA,
                    None,
                    Some("2026-03-01T08:00:00+01:00"),
                    Some("121"),
                    Some("mm[Hg]"),
                    Some("79"),
                    Some("mm[Hg]"),
                ])],
                vec![3],
            ),
            "the panel's components, its subject by the Patient entry's fullUrl"
        );
        assert_eq!(
            rows(&extracts, "body"),
            (
                names(BODY),
                vec![row(&[
                    ANA,
                    Some("#withings"),
                    Some("2026-03-01T07:00:00+01:00"),
                    Some("154.3"),
                    Some("[lb_av]"),
                    Some("21.5"),
                    Some("%"),
                    None,
                    None,
                ])],
                vec![4],
            ),
            "weight (UCUM code over unit text) and fat of one weighing are one row"
        );
        assert_eq!(
            rows(&extracts, "glucose"),
            (
                names(GLUCOSE),
                vec![row(&[
                    ANA,
                    None,
                    Some("2026-03-01T07:30:00+01:00"),
                    Some("95"),
                    Some("mg/dL"),
                ])],
                vec![6],
            )
        );
    }

    #[test]
    fn fhir_bulk_ndjson_is_read_by_line() {
        let ndjson = [
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"55423-8"}]},"subject":{"reference":"Patient/S1"},"effectivePeriod":{"start":"2026-03-01T08:00:00Z","end":"2026-03-01T08:15:00Z"},"valueQuantity":{"value":1203,"unit":"steps","system":"http://unitsofmeasure.org","code":"{steps}"},"device":{"display":"watch"}}"#,
            "",
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/S1"},"effectiveDateTime":"2026-03-01T09:00:00Z","valueQuantity":{"value":130,"unit":"mmHg"}}"#,
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"80404-7"}]},"subject":{"reference":"Patient/S2"},"effectiveDateTime":"2026-03-01T03:00:00Z","valueQuantity":{"value":45.3,"unit":"ms","system":"http://unitsofmeasure.org","code":"ms"}}"#,
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"subject":{"reference":"Patient/S1"},"effectiveDateTime":"2026-03-01T09:00:00Z","valueQuantity":{"value":85,"unit":"mmHg"}}"#,
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"41981-2"}]},"subject":{"reference":"Patient/S1"},"effectivePeriod":{"start":"2026-03-01T08:00:00Z","end":"2026-03-01T08:15:00Z"},"valueQuantity":{"value":50,"unit":"kJ"}}"#,
            r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2708-6"},{"system":"http://loinc.org","code":"59408-5"}]},"subject":{"reference":"Group/cohort-1"},"effectiveDateTime":"2026-03-01","valueQuantity":{"value":97,"unit":"%"}}"#,
            r#"{"resourceType":"Patient","id":"S1"}"#,
        ]
        .join("\n");
        let extracts = read_all(&ndjson, BATCH_ROWS).unwrap();
        assert_eq!(
            rows(&extracts, "steps"),
            (
                names(STEPS),
                vec![row(&[
                    Some("S1"),
                    Some("watch"),
                    Some("2026-03-01T08:00:00Z"),
                    Some("2026-03-01T08:15:00Z"),
                    Some("1203"),
                ])],
                vec![1],
            ),
            "a count has no unit"
        );
        assert_eq!(
            rows(&extracts, "blood_pressure"),
            (
                names(BLOOD_PRESSURE),
                vec![row(&[
                    Some("S1"),
                    None,
                    Some("2026-03-01T09:00:00Z"),
                    Some("130"),
                    Some("mmHg"),
                    Some("85"),
                    Some("mmHg"),
                ])],
                vec![3],
            ),
            "separate halves are paired; line 2 is blank"
        );
        assert_eq!(rows(&extracts, "hrv").2, [4]);
        assert_eq!(
            rows(&extracts, "active_energy").1,
            [row(&[
                Some("S1"),
                None,
                Some("2026-03-01T08:00:00Z"),
                Some("2026-03-01T08:15:00Z"),
                Some("50"),
                Some("kJ"),
            ])]
        );
        let (columns, spo2, records) = rows(&extracts, "spo2");
        assert_eq!(
            (columns, spo2, records),
            (
                names(&["source", "time", "pct", "pct_unit"]),
                vec![row(&[None, Some("2026-03-01"), Some("97"), Some("%")])],
                vec![7],
            ),
            "a Group is no subject: the column is left out so that --subject applies"
        );
    }

    #[test]
    fn fhir_streams_are_handed_on_in_batches() {
        let lines: Vec<String> = (0..5)
            .map(|minute| {
                format!(
                    r#"{{"resourceType":"Observation","code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4"}}]}},"effectiveDateTime":"2026-03-01T06:0{minute}:00Z","valueQuantity":{{"value":6{minute}}}}}"#
                )
            })
            .collect();
        let extracts = read_all(&lines.join("\n"), 2).unwrap();
        let sizes: Vec<Vec<u64>> = extracts.iter().map(|e| e.records.clone()).collect();
        assert_eq!(sizes, [vec![1, 2], vec![3, 4], vec![5]]);
        let (columns, rows, _) = rows(&extracts, "heart_rate");
        assert_eq!(columns, ["source", "time", "bpm", "bpm_unit"]);
        assert_eq!(rows[4][2].as_deref(), Some("64"));
    }

    #[test]
    fn fhir_single_observation_is_record_one() {
        let observation = r#"{
  "resourceType": "Observation",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},
  "subject": {"identifier": {"system": "urn:example:study", "value": "P-17"}},
  "effectiveDateTime": "2026-03-01T07:00:00Z",
  "valueQuantity": {"value": 22.9, "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"}
}"#;
        let extracts = read_all(observation, BATCH_ROWS).unwrap();
        let (_, body, records) = rows(&extracts, "body");
        assert_eq!(records, [1]);
        assert_eq!(body[0][0].as_deref(), Some("P-17"));
        assert_eq!(
            body[0][7..],
            [Some("22.9".to_owned()), Some("kg/m2".to_owned())]
        );
    }

    #[test]
    fn fhir_references_name_patients() {
        let patients: HashMap<String, String> = [("urn:uuid:1".to_owned(), "p1".to_owned())].into();
        let of = |subject: Value| pseudonym(&subject, &patients);
        assert_eq!(
            of(serde_json::json!({"reference": "Patient/abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(
            of(serde_json::json!({"reference": "http://x.org/fhir/Patient/abc/_history/2"}))
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            of(serde_json::json!({"reference": "urn:uuid:1"})).as_deref(),
            Some("p1")
        );
        assert_eq!(of(serde_json::json!({"reference": "urn:uuid:2"})), None);
        assert_eq!(of(serde_json::json!({"reference": "Group/abc"})), None);
        assert_eq!(of(serde_json::json!({"reference": "Patient/"})), None);
        assert_eq!(
            of(serde_json::json!({"identifier": {"value": "P-17"}})).as_deref(),
            Some("P-17")
        );
        assert_eq!(
            quantity(Some(
                &serde_json::json!({"value": 1.5, "unit": "lbs", "code": "[lb_av]"})
            )),
            (Some("1.5".to_owned()), Some("lbs".to_owned())),
            "a code of no stated system is not trusted over the text"
        );
        assert_eq!(
            quantity(Some(&serde_json::json!({"value": "--", "code": "/min"}))),
            (Some("--".to_owned()), Some("/min".to_owned())),
            "text is passed on for cleaning to reject"
        );
    }

    #[test]
    fn fhir_malformed_files_name_the_line_and_column() {
        let broken = BUNDLE.replacen(
            r#""valueQuantity": {"value": 58,"#,
            r#""valueQuantity": {"value": 58,,"#,
            1,
        );
        let line = broken.lines().position(|l| l.contains("58,,")).unwrap() + 1;
        let err = read_all(&broken, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{NAME}: not readable as FHIR JSON at line {line}, column "
            )),
            "{err}"
        );
        assert!(err.ends_with(": key must be a string"), "{err}");

        let ndjson = "\n{\"resourceType\":\"Observation\"}\n{\"resourceType\":\"Observation\",}\n";
        let err = read_all(ndjson, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{NAME}: not readable as FHIR JSON at line 3, column 31: "
            )),
            "{err}"
        );

        let cut = &BUNDLE[..BUNDLE.find("\"bp-1\"").unwrap()];
        let err = read_all(cut, BATCH_ROWS).unwrap_err().to_string();
        assert!(err.contains("EOF while parsing"), "{err}");

        let err = read_all("{\"id\":\"x\"}\n", BATCH_ROWS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("{NAME}: not a FHIR resource: line 1 has no resourceType")
        );
        let err = read_all("\n  \n", BATCH_ROWS).unwrap_err().to_string();
        assert_eq!(err, format!("{NAME}: is empty: it holds no FHIR resource"));
    }
}
