//! The per-subject documents of `--format apple-health` and `--format fhir`: the rows the
//! day simulation produces, written as they come into the current subject's document.
//!
//! Apple Health: `apple_health/<pseudonym>/export.xml`, laid out as the Health app writes it
//! (XML declaration, the `HealthData` DTD, `ExportDate`, `Me`, then `Record` and `Workout`
//! elements), times with the subject's UTC offset (`2026-03-01 06:00:00 +0100`). An export
//! names no one, so `<Me>` carries the pseudonym in a `HealthAIPseudonym` attribute (declared
//! in the DTD), which the Apple Health reader honours. Heart rate, steps and sleep are
//! `Record`s (sleep stages as `HKCategoryValueSleepAnalysis…`: light is `AsleepCore`), a
//! weigh-in is a `BodyMass` (`kg` or `lb`), a `BodyFatPercentage` (a ratio) and a
//! `BodyMassIndex` of the same `startDate`, a workout a `Workout` with its
//! `WorkoutStatistics` (heart rate, distance in km, active energy).
//!
//! FHIR R4: `fhir/<pseudonym>.json`, a `collection` Bundle of the subject's `Patient` (id =
//! pseudonym) and one Observation per reading, one entry per line: heart rate (LOINC 8867-4),
//! steps (55423-8, `effectivePeriod`), and a weigh-in's weight, body fat and BMI (29463-7,
//! 41982-0, 39156-5), each referencing `Patient/<pseudonym>`, times with the subject's offset
//! (`2026-03-01T06:00:00+01:00`), the device as `device.display`.
//!
//! Neither carries meals (nor the foods they refer to); FHIR carries no sleep stages and no
//! workouts either (LOINC has no code for them that the FHIR reader maps). The defects are
//! written as the format allows: a duplicate is the element written twice, a naive local time
//! lacks its offset, an unparseable heart rate is the text `--`, a weight in pounds is in `lb`
//! (Apple) or `[lb_av]` (FHIR).

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use chrono::Days;
use chrono_tz::Tz;

use super::{
    SimulationFormat, SimulationOptions,
    output::{Val, civil_from_days, push_dec, push_int, push_json_string, push_two},
    subject::{Profile, local_to_utc, offset_at},
};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AppleHealth,
    Fhir,
}

/// The documents of one simulation, one subject at a time.
pub(super) struct Documents {
    kind: Kind,
    /// `out/apple_health` or `out/fhir`.
    dir: PathBuf,
    files: Vec<PathBuf>,
    current: Option<Current>,
    line: Vec<u8>,
}

/// The document of the subject being simulated.
struct Current {
    path: PathBuf,
    out: BufWriter<File>,
    pseudonym: String,
    /// `"Patient/<pseudonym>"`, as JSON.
    reference: Vec<u8>,
    zone: Zone,
    /// Resources written so far, for FHIR ids.
    resources: u64,
}

/// A subject's time zone, its offset remembered for the current UTC hour: the simulator's
/// zones change offset on whole UTC hours only.
struct Zone {
    tz: Tz,
    hour: i64,
    offset: i64,
}

impl Zone {
    fn new(tz: Tz) -> Self {
        Zone {
            tz,
            hour: i64::MIN,
            offset: 0,
        }
    }

    fn offset(&mut self, t: i64) -> i64 {
        let hour = t.div_euclid(3600);
        if hour != self.hour {
            self.hour = hour;
            self.offset = offset_at(self.tz, t);
        }
        self.offset
    }
}

impl Documents {
    /// The documents of `format` under `out`; `None` for the formats of one file per stream.
    pub(super) fn new(format: SimulationFormat, out: &Path) -> io::Result<Option<Self>> {
        let kind = match format {
            SimulationFormat::Csv | SimulationFormat::Ndjson => return Ok(None),
            SimulationFormat::AppleHealth => Kind::AppleHealth,
            SimulationFormat::Fhir => Kind::Fhir,
        };
        let dir = out.join(format.directory().unwrap_or_default());
        fs::create_dir_all(&dir)?;
        Ok(Some(Documents {
            kind,
            dir,
            files: Vec::new(),
            current: None,
            line: Vec::with_capacity(1024),
        }))
    }

    /// Whether the documents carry the rows of a stream.
    pub(super) fn carries(&self, stream: &str) -> bool {
        match self.kind {
            Kind::AppleHealth => {
                ["heart_rate", "steps", "sleep", "body", "workouts"].contains(&stream)
            }
            Kind::Fhir => ["heart_rate", "steps", "body"].contains(&stream),
        }
    }

    /// The files written, in subject order.
    pub(super) fn take_files(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.files)
    }

    /// Starts the document of a subject, closing the previous one.
    pub(super) fn begin(&mut self, p: &Profile, options: &SimulationOptions) -> io::Result<()> {
        self.end()?;
        let path = match self.kind {
            Kind::AppleHealth => {
                let dir = self.dir.join(&p.id);
                fs::create_dir_all(&dir)?;
                dir.join("export.xml")
            }
            Kind::Fhir => self.dir.join(format!("{}.json", p.id)),
        };
        let mut reference = Vec::new();
        push_json_string(&mut reference, &format!("Patient/{}", p.id));
        let mut current = Current {
            out: BufWriter::with_capacity(1 << 20, File::create(&path)?),
            path,
            pseudonym: p.id.clone(),
            reference,
            zone: Zone::new(p.tz),
            resources: 0,
        };
        // Exported at local midnight after the last day.
        let last = options
            .start
            .checked_add_days(Days::new(u64::from(options.days)))
            .unwrap_or(options.start);
        let exported = local_to_utc(p.tz, last, 0);
        let line = &mut self.line;
        line.clear();
        match self.kind {
            Kind::AppleHealth => {
                line.extend_from_slice(APPLE_HEADER.as_bytes());
                line.extend_from_slice(b" <ExportDate value=\"");
                push_time(line, exported, &mut current.zone, None, Kind::AppleHealth);
                line.extend_from_slice(b"\"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=\"");
                push_int(line, i64::from(p.birth_year));
                line.extend_from_slice(b"-01-01\" HKCharacteristicTypeIdentifierBiologicalSex=\"");
                line.extend_from_slice(if p.female {
                    b"HKBiologicalSexFemale"
                } else {
                    b"HKBiologicalSexMale"
                });
                line.extend_from_slice(
                    b"\" HKCharacteristicTypeIdentifierBloodType=\"HKBloodTypeNotSet\" \
                      HKCharacteristicTypeIdentifierFitzpatrickSkinType=\"HKFitzpatrickSkinTypeNotSet\" \
                      HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse=\"None\" \
                      HealthAIPseudonym=\"",
                );
                push_xml(line, &p.id);
                line.extend_from_slice(b"\"/>\n");
            }
            Kind::Fhir => {
                line.extend_from_slice(
                    b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\"",
                );
                push_time(line, exported, &mut current.zone, None, Kind::Fhir);
                line.extend_from_slice(
                    b"\",\"entry\":[\n{\"resource\":{\"resourceType\":\"Patient\",\"id\":",
                );
                push_json_string(line, &p.id);
                line.extend_from_slice(b",\"gender\":");
                push_json_string(line, p.sex());
                line.extend_from_slice(b",\"birthDate\":\"");
                push_int(line, i64::from(p.birth_year));
                line.extend_from_slice(b"\"}}");
            }
        }
        current.out.write_all(line)?;
        self.current = Some(current);
        Ok(())
    }

    /// Closes the current subject's document.
    pub(super) fn end(&mut self) -> io::Result<()> {
        let Some(mut current) = self.current.take() else {
            return Ok(());
        };
        current.out.write_all(match self.kind {
            Kind::AppleHealth => b"</HealthData>\n",
            Kind::Fhir => b"\n]}\n",
        })?;
        current.out.flush()?;
        self.files.push(current.path);
        Ok(())
    }

    /// Writes a row of `stream` (`vals` in the order of `columns`) `copies` times; with
    /// `naive_offset`, times are local without offset. Returns whether the documents carry
    /// the stream.
    pub(super) fn row(
        &mut self,
        stream: &str,
        columns: &[&str],
        vals: &[Val<'_>],
        naive_offset: Option<i64>,
        copies: u32,
    ) -> io::Result<bool> {
        if !self.carries(stream) {
            return Ok(false);
        }
        let current = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("a row was simulated outside of a subject"))?;
        let row = Row {
            columns,
            vals,
            naive_offset,
        };
        match self.kind {
            Kind::AppleHealth => {
                self.line.clear();
                apple_row(&mut self.line, current, stream, &row)?;
                for _ in 0..copies {
                    current.out.write_all(&self.line)?;
                }
            }
            Kind::Fhir => {
                // Each copy is a resource of its own id.
                for _ in 0..copies {
                    self.line.clear();
                    fhir_row(&mut self.line, current, stream, &row)?;
                    current.out.write_all(&self.line)?;
                }
            }
        }
        Ok(true)
    }
}

/// A simulated row, its values by column name.
struct Row<'r, 'v> {
    columns: &'r [&'r str],
    vals: &'r [Val<'v>],
    naive_offset: Option<i64>,
}

impl<'v> Row<'_, 'v> {
    fn get(&self, name: &str) -> Val<'v> {
        self.columns
            .iter()
            .position(|c| *c == name)
            .and_then(|i| self.vals.get(i).copied())
            .unwrap_or(Val::Missing)
    }

    fn time(&self, name: &str) -> io::Result<i64> {
        match self.get(name) {
            Val::Time(t) => Ok(t),
            _ => Err(io::Error::other(format!("a simulated row has no {name}"))),
        }
    }
}

/// A local time, then (unless naive) the offset: `2026-03-01 06:00:00 +0100` for Apple,
/// `2026-03-01T06:00:00+01:00` for FHIR. Formatted by hand: it runs three times a record.
fn push_time(line: &mut Vec<u8>, t: i64, zone: &mut Zone, naive_offset: Option<i64>, kind: Kind) {
    let offset = naive_offset.unwrap_or_else(|| zone.offset(t));
    let local = t + offset;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    push_two(line, y.div_euclid(100).rem_euclid(100));
    push_two(line, y.rem_euclid(100));
    line.push(b'-');
    push_two(line, i64::from(m));
    line.push(b'-');
    push_two(line, i64::from(d));
    line.push(match kind {
        Kind::AppleHealth => b' ',
        Kind::Fhir => b'T',
    });
    push_two(line, s / 3600);
    line.push(b':');
    push_two(line, s / 60 % 60);
    line.push(b':');
    push_two(line, s % 60);
    if naive_offset.is_none() {
        if kind == Kind::AppleHealth {
            line.push(b' ');
        }
        line.push(if offset < 0 { b'-' } else { b'+' });
        push_two(line, offset.abs() / 3600);
        if kind == Kind::Fhir {
            line.push(b':');
        }
        push_two(line, offset.abs() / 60 % 60);
    }
}

/// Text escaped for an XML attribute value.
fn push_xml(line: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '&' => line.extend_from_slice(b"&amp;"),
            '<' => line.extend_from_slice(b"&lt;"),
            '>' => line.extend_from_slice(b"&gt;"),
            '"' => line.extend_from_slice(b"&quot;"),
            c => {
                let mut buf = [0u8; 4];
                line.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// A value as an XML attribute's text.
fn push_xml_val(line: &mut Vec<u8>, val: Val<'_>) {
    match val {
        Val::Str(s) => push_xml(line, s),
        Val::Int(n) => push_int(line, n),
        Val::Dec(x, decimals) => push_dec(line, x, decimals),
        Val::Time(_) | Val::Missing => {}
    }
}

/// A number as written with `decimals` decimals, divided by `divisor`, with enough decimals
/// to lose nothing: a percentage as Apple's ratio, metres as kilometres.
fn push_scaled(line: &mut Vec<u8>, x: f64, decimals: usize, divisor: f64, more: usize) {
    let shown: f64 = format!("{x:.decimals$}").parse().unwrap_or(x);
    push_dec(line, shown / divisor, decimals + more);
}

/// ` <Record type=… sourceName=… unit=… creationDate=… startDate=… endDate=… value=…/>`
fn apple_record(
    line: &mut Vec<u8>,
    current: &mut Current,
    row: &Row<'_, '_>,
    kind: &str,
    unit: Option<&str>,
    (start, end): (i64, i64),
    value: impl FnOnce(&mut Vec<u8>),
) {
    line.extend_from_slice(b" <Record type=\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\" sourceName=\"");
    push_xml_val(line, row.get("source"));
    if let Some(unit) = unit {
        line.extend_from_slice(b"\" unit=\"");
        push_xml(line, unit);
    }
    let zone = &mut current.zone;
    line.extend_from_slice(b"\" creationDate=\"");
    push_time(line, end, zone, row.naive_offset, Kind::AppleHealth);
    line.extend_from_slice(b"\" startDate=\"");
    push_time(line, start, zone, row.naive_offset, Kind::AppleHealth);
    line.extend_from_slice(b"\" endDate=\"");
    push_time(line, end, zone, row.naive_offset, Kind::AppleHealth);
    line.extend_from_slice(b"\" value=\"");
    value(line);
    line.extend_from_slice(b"\"/>\n");
}

fn apple_row(
    line: &mut Vec<u8>,
    current: &mut Current,
    stream: &str,
    row: &Row<'_, '_>,
) -> io::Result<()> {
    match stream {
        "heart_rate" => {
            let t = row.time("time")?;
            apple_record(
                line,
                current,
                row,
                "HKQuantityTypeIdentifierHeartRate",
                Some("count/min"),
                (t, t),
                |line| push_xml_val(line, row.get("bpm")),
            );
        }
        "steps" => {
            let interval = (row.time("time")?, row.time("end_time")?);
            apple_record(
                line,
                current,
                row,
                "HKQuantityTypeIdentifierStepCount",
                Some("count"),
                interval,
                |line| push_xml_val(line, row.get("count")),
            );
        }
        "sleep" => {
            let interval = (row.time("time")?, row.time("end_time")?);
            let stage = match row.get("stage") {
                Val::Str("in_bed") => "InBed",
                Val::Str("awake") => "Awake",
                Val::Str("light") => "AsleepCore",
                Val::Str("deep") => "AsleepDeep",
                Val::Str("rem") => "AsleepREM",
                _ => "AsleepUnspecified",
            };
            apple_record(
                line,
                current,
                row,
                "HKCategoryTypeIdentifierSleepAnalysis",
                None,
                interval,
                |line| {
                    line.extend_from_slice(b"HKCategoryValueSleepAnalysis");
                    line.extend_from_slice(stage.as_bytes());
                },
            );
        }
        "body" => {
            let t = row.time("time")?;
            let unit = match row.get("weight_kg_unit") {
                Val::Str("[lb_av]") => "lb",
                _ => "kg",
            };
            let weight = row.get("weight_kg");
            apple_record(
                line,
                current,
                row,
                "HKQuantityTypeIdentifierBodyMass",
                Some(unit),
                (t, t),
                |line| push_xml_val(line, weight),
            );
            if let Val::Dec(fat, decimals) = row.get("fat_pct") {
                apple_record(
                    line,
                    current,
                    row,
                    "HKQuantityTypeIdentifierBodyFatPercentage",
                    Some("%"),
                    (t, t),
                    |line| push_scaled(line, fat, decimals, 100.0, 2),
                );
            }
            let bmi = row.get("bmi");
            if !matches!(bmi, Val::Missing) {
                apple_record(
                    line,
                    current,
                    row,
                    "HKQuantityTypeIdentifierBodyMassIndex",
                    Some("count"),
                    (t, t),
                    |line| push_xml_val(line, bmi),
                );
            }
        }
        "workouts" => apple_workout(line, current, row)?,
        _ => {}
    }
    Ok(())
}

fn apple_workout(line: &mut Vec<u8>, current: &mut Current, row: &Row<'_, '_>) -> io::Result<()> {
    let (start, end) = (row.time("time")?, row.time("end_time")?);
    let (activity, distance) = match row.get("sport") {
        Val::Str("run") => ("Running", "DistanceWalkingRunning"),
        Val::Str("walk") => ("Walking", "DistanceWalkingRunning"),
        Val::Str("ride") => ("Cycling", "DistanceCycling"),
        Val::Str("swim") => ("Swimming", "DistanceSwimming"),
        _ => ("TraditionalStrengthTraining", "DistanceWalkingRunning"),
    };
    let naive = row.naive_offset;
    let zone = &mut current.zone;
    let mut dates = Vec::with_capacity(96);
    dates.extend_from_slice(b" startDate=\"");
    push_time(&mut dates, start, zone, naive, Kind::AppleHealth);
    dates.extend_from_slice(b"\" endDate=\"");
    push_time(&mut dates, end, zone, naive, Kind::AppleHealth);
    dates.push(b'"');

    line.extend_from_slice(b" <Workout workoutActivityType=\"HKWorkoutActivityType");
    line.extend_from_slice(activity.as_bytes());
    line.extend_from_slice(b"\" duration=\"");
    let seconds = end - start;
    if seconds % 60 == 0 {
        push_int(line, seconds / 60);
    } else {
        push_dec(line, seconds as f64 / 60.0, 2);
    }
    line.extend_from_slice(b"\" durationUnit=\"min\" sourceName=\"");
    push_xml_val(line, row.get("source"));
    line.extend_from_slice(b"\" creationDate=\"");
    push_time(line, end, zone, naive, Kind::AppleHealth);
    line.extend_from_slice(b"\"");
    line.extend_from_slice(&dates);
    line.extend_from_slice(b">\n");
    let statistic = |line: &mut Vec<u8>, kind: &str| {
        line.extend_from_slice(b"  <WorkoutStatistics type=\"HKQuantityTypeIdentifier");
        line.extend_from_slice(kind.as_bytes());
        line.push(b'"');
        line.extend_from_slice(&dates);
    };
    let (average, maximum) = (row.get("avg_hr"), row.get("max_hr"));
    if !matches!(average, Val::Missing) || !matches!(maximum, Val::Missing) {
        statistic(line, "HeartRate");
        for (name, val) in [(&b" average=\""[..], average), (b" maximum=\"", maximum)] {
            if !matches!(val, Val::Missing) {
                line.extend_from_slice(name);
                push_xml_val(line, val);
                line.push(b'"');
            }
        }
        line.extend_from_slice(b" unit=\"count/min\"/>\n");
    }
    if let Val::Dec(metres, decimals) = row.get("distance_m") {
        statistic(line, distance);
        line.extend_from_slice(b" sum=\"");
        push_scaled(line, metres, decimals, 1000.0, 3);
        line.extend_from_slice(b"\" unit=\"km\"/>\n");
    }
    let energy = row.get("energy_kcal");
    if !matches!(energy, Val::Missing) {
        statistic(line, "ActiveEnergyBurned");
        line.extend_from_slice(b" sum=\"");
        push_xml_val(line, energy);
        line.extend_from_slice(b"\" unit=\"kcal\"/>\n");
    }
    line.extend_from_slice(b" </Workout>\n");
    Ok(())
}

/// When an Observation was made.
enum Effective {
    At(i64),
    Period(i64, i64),
}

/// What an Observation measures and in which unit.
struct Coded {
    category: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
}

const HEART_RATE: Coded = Coded {
    category: "vital-signs",
    loinc: "8867-4",
    display: "Heart rate",
    unit: "beats/minute",
    ucum: "/min",
};
const STEPS: Coded = Coded {
    category: "activity",
    loinc: "55423-8",
    display: "Number of steps in unspecified time Pedometer",
    unit: "steps",
    ucum: "{steps}",
};
const WEIGHT: Coded = Coded {
    category: "vital-signs",
    loinc: "29463-7",
    display: "Body weight",
    unit: "kg",
    ucum: "kg",
};
const WEIGHT_IN_POUNDS: Coded = Coded {
    unit: "lb",
    ucum: "[lb_av]",
    ..WEIGHT
};
const BODY_FAT: Coded = Coded {
    category: "vital-signs",
    loinc: "41982-0",
    display: "Percentage of body fat Measured",
    unit: "%",
    ucum: "%",
};
const BMI: Coded = Coded {
    category: "vital-signs",
    loinc: "39156-5",
    display: "Body mass index (BMI) [Ratio]",
    unit: "kg/m2",
    ucum: "kg/m2",
};

/// `,\n{"resource":{"resourceType":"Observation",…}}`: an entry of the subject's Bundle.
fn fhir_observation(
    line: &mut Vec<u8>,
    current: &mut Current,
    row: &Row<'_, '_>,
    coded: &Coded,
    effective: Effective,
    value: Val<'_>,
) {
    current.resources += 1;
    line.extend_from_slice(b",\n{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"");
    line.extend_from_slice(current.pseudonym.as_bytes());
    line.push(b'-');
    push_int(line, current.resources as i64);
    line.extend_from_slice(b"\",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"");
    line.extend_from_slice(coded.category.as_bytes());
    line.extend_from_slice(b"\"}]}],\"code\":{\"coding\":[{\"system\":\"");
    line.extend_from_slice(LOINC.as_bytes());
    line.extend_from_slice(b"\",\"code\":\"");
    line.extend_from_slice(coded.loinc.as_bytes());
    line.extend_from_slice(b"\",\"display\":");
    push_json_string(line, coded.display);
    line.extend_from_slice(b"}]},\"subject\":{\"reference\":");
    line.extend_from_slice(&current.reference);
    let (zone, naive) = (&mut current.zone, row.naive_offset);
    match effective {
        Effective::At(t) => {
            line.extend_from_slice(b"},\"effectiveDateTime\":\"");
            push_time(line, t, zone, naive, Kind::Fhir);
            line.push(b'"');
        }
        Effective::Period(start, end) => {
            line.extend_from_slice(b"},\"effectivePeriod\":{\"start\":\"");
            push_time(line, start, zone, naive, Kind::Fhir);
            line.extend_from_slice(b"\",\"end\":\"");
            push_time(line, end, zone, naive, Kind::Fhir);
            line.extend_from_slice(b"\"}");
        }
    }
    line.extend_from_slice(b",\"valueQuantity\":{\"value\":");
    match value {
        Val::Str(s) => push_json_string(line, s),
        Val::Int(n) => push_int(line, n),
        Val::Dec(x, decimals) => push_dec(line, x, decimals),
        Val::Time(_) | Val::Missing => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"unit\":");
    push_json_string(line, coded.unit);
    line.extend_from_slice(b",\"system\":\"");
    line.extend_from_slice(UCUM.as_bytes());
    line.extend_from_slice(b"\",\"code\":");
    push_json_string(line, coded.ucum);
    line.extend_from_slice(b"},\"device\":{\"display\":");
    match row.get("source") {
        Val::Str(source) => push_json_string(line, source),
        _ => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b"}}}");
}

fn fhir_row(
    line: &mut Vec<u8>,
    current: &mut Current,
    stream: &str,
    row: &Row<'_, '_>,
) -> io::Result<()> {
    match stream {
        "heart_rate" => {
            let at = Effective::At(row.time("time")?);
            fhir_observation(line, current, row, &HEART_RATE, at, row.get("bpm"));
        }
        "steps" => {
            let period = Effective::Period(row.time("time")?, row.time("end_time")?);
            fhir_observation(line, current, row, &STEPS, period, row.get("count"));
        }
        "body" => {
            let t = row.time("time")?;
            let weight = match row.get("weight_kg_unit") {
                Val::Str("[lb_av]") => &WEIGHT_IN_POUNDS,
                _ => &WEIGHT,
            };
            fhir_observation(
                line,
                current,
                row,
                weight,
                Effective::At(t),
                row.get("weight_kg"),
            );
            for (coded, column) in [(&BODY_FAT, "fat_pct"), (&BMI, "bmi")] {
                let value = row.get(column);
                if !matches!(value, Val::Missing) {
                    fhir_observation(line, current, row, coded, Effective::At(t), value);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The start of an export of the Health app (HealthKit Export Version 13), with `Me`
/// declaring the pseudonym attribute.
const APPLE_HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
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
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth                 CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex               CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType                   CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType         CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse CDATA #REQUIRED
  HealthAIPseudonym                                         CDATA #IMPLIED
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
<!ATTLIST Correlation
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  totalDistance         CDATA #IMPLIED
  totalDistanceUnit     CDATA #IMPLIED
  totalEnergyBurned     CDATA #IMPLIED
  totalEnergyBurnedUnit CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT WorkoutStatistics EMPTY>
<!ATTLIST WorkoutStatistics
  type      CDATA #REQUIRED
  startDate CDATA #REQUIRED
  endDate   CDATA #REQUIRED
  average   CDATA #IMPLIED
  minimum   CDATA #IMPLIED
  maximum   CDATA #IMPLIED
  sum       CDATA #IMPLIED
  unit      CDATA #IMPLIED
>
]>
<HealthData locale="en_US">
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_documents_write_times_with_the_offset_of_the_day() {
        let time = |tz: Tz, t: i64, naive: Option<i64>, kind: Kind| {
            let mut line = Vec::new();
            push_time(&mut line, t, &mut Zone::new(tz), naive, kind);
            String::from_utf8(line).unwrap()
        };
        // 2026-03-29T00:30:00Z, before and after Paris springs forward at 01:00 UTC.
        let before = 1_774_744_200;
        let after = before + 3600;
        let paris = Tz::Europe__Paris;
        assert_eq!(
            time(paris, before, None, Kind::AppleHealth),
            "2026-03-29 01:30:00 +0100"
        );
        assert_eq!(
            time(paris, after, None, Kind::AppleHealth),
            "2026-03-29 03:30:00 +0200"
        );
        assert_eq!(
            time(Tz::America__New_York, before, None, Kind::Fhir),
            "2026-03-28T20:30:00-04:00"
        );
        assert_eq!(
            time(paris, before, Some(3600), Kind::Fhir),
            "2026-03-29T01:30:00",
            "a naive local time has no offset"
        );
        // The remembered offset is that of the hour asked.
        let mut zone = Zone::new(paris);
        let mut line = Vec::new();
        push_time(&mut line, before, &mut zone, None, Kind::Fhir);
        line.push(b' ');
        push_time(&mut line, after, &mut zone, None, Kind::Fhir);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2026-03-29T01:30:00+01:00 2026-03-29T03:30:00+02:00"
        );
    }

    #[test]
    fn simulate_documents_scale_as_shown() {
        let mut line = Vec::new();
        // As the CSV shows it (21.5), then as a ratio.
        push_scaled(&mut line, 21.46, 1, 100.0, 2);
        line.push(b' ');
        push_scaled(&mut line, 8429.6, 0, 1000.0, 3);
        line.push(b' ');
        push_xml(&mut line, "Ana's \"watch\" <3 & more");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "0.215 8.430 Ana's &quot;watch&quot; &lt;3 &amp; more"
        );
    }
}
