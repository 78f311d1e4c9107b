//! A deterministic simulator of health data: subjects with plausible physiology and habits,
//! and their heart rate, steps, sleep, weigh-ins, workouts and meals, written as files in the
//! generic layout the ingester reads. The same options give byte-identical files.
//!
//! Layout of `out/` (`.csv` with a header, or `.ndjson` with one object per line, the same
//! keys, numbers as JSON numbers and missing values omitted):
//!
//! | file | columns |
//! |---|---|
//! | `subjects` | `subject,sex,birth_year,height_cm,max_hr,timezone` |
//! | `foods` | `food_id,name,energy_kcal,protein_g,carbs_g,fat_g,fiber_g,sugars_g,sodium_mg` (per 100 g) |
//! | `heart_rate` | `subject,source,time,bpm` |
//! | `steps` | `subject,source,time,end_time,count` |
//! | `sleep` | `subject,source,time,end_time,stage` |
//! | `body` | `subject,source,time,weight_kg,fat_pct,bmi` (with defects: `weight_kg_unit` after `weight_kg`) |
//! | `workouts` | `subject,source,time,end_time,sport,distance_m,energy_kcal,avg_hr,max_hr` |
//! | `meals` | `subject,source,time,meal,food_id,quantity_g` |
//!
//! `foods` is the table `healthai ingest` loads into `reference.foods` before the meals, whose
//! nutrients it then fills from their food and quantity.
//!
//! Times are RFC 3339 in UTC (`2026-03-01T06:00:00Z`); a time without offset is a local time
//! in the subject's home time zone (only written by the naive-time defect). Each file holds
//! the subjects one after the other, each subject's rows in time order (by instant).
//!
//! Sources: `watch` (heart_rate, steps, workouts), `ring` (sleep), `scale` (body), `app`
//! (meals), `phone` (sleep, defect only). Heart rate: one reading a minute while the watch
//! is worn (it charges 30–60 min a day; some subjects take it off at night). Steps: 15-minute
//! intervals on the UTC quarter hours that contain waking minutes with the watch worn.
//! Sleep: one night per day, the one that ends on that local morning (so the first starts on
//! the eve of `start`), as contiguous intervals from `in_bed` to a final `awake`. Missing
//! values (`fat_pct` of scales without it, `distance_m` of strength workouts, the unit of a
//! weight in kg) are empty in CSV and omitted in NDJSON.
//!
//! With `defects`, the files also carry, at small deterministic rates, the problems real
//! data has; [`SimulationSummary::defects`] counts them.
//!
//! The document formats write, besides `subjects.csv`, one document per subject of the
//! streams they carry instead of a file per stream: `apple_health/<pseudonym>/export.xml`
//! (Apple Health: heart rate, steps, sleep, body, workouts) or `fhir/<pseudonym>.json` (a
//! FHIR R4 Bundle: heart rate, steps, body); neither carries meals, so no foods are written
//! (see `documents.rs`).

mod day;
mod documents;
mod foods;
mod output;
mod rng;
mod subject;
#[cfg(test)]
mod tests;

use std::{
    cell::RefCell,
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
    rc::Rc,
};

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use self::{
    day::Tables,
    documents::Documents,
    output::{Table, Val},
    subject::{Profile, local_to_utc, offset_at},
};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationOptions {
    pub subjects: usize,
    /// The index of the first subject (0-based; its pseudonym is `S{index + 1:04}`). Each
    /// subject depends only on the seed and its index, so a population simulated in chunks of
    /// subjects (e.g. to bound the disk a large one takes) is the population simulated at once.
    pub first_subject: usize,
    pub days: u32,
    pub seed: u64,
    /// The first local day of every subject.
    pub start: NaiveDate,
    /// Whether to add the defects of real data (duplicates, out-of-range and unparseable
    /// values, pounds, wear gaps, naive local times, overlapping sleep).
    pub defects: bool,
    pub format: SimulationFormat,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            subjects: 100,
            first_subject: 0,
            days: 30,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default(),
            defects: false,
            format: SimulationFormat::Csv,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SimulationFormat {
    /// CSV with a header line.
    #[default]
    Csv,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
    /// An Apple Health `export.xml` per subject.
    AppleHealth,
    /// A FHIR R4 Bundle (JSON) per subject.
    Fhir,
}

impl SimulationFormat {
    /// The extension of the files written, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            SimulationFormat::Csv => "csv",
            SimulationFormat::Ndjson => "ndjson",
            SimulationFormat::AppleHealth => "xml",
            SimulationFormat::Fhir => "json",
        }
    }

    /// The directory (under the output) of the per-subject documents, for the formats that
    /// write one per subject.
    pub fn directory(self) -> Option<&'static str> {
        match self {
            SimulationFormat::Csv | SimulationFormat::Ndjson => None,
            SimulationFormat::AppleHealth => Some("apple_health"),
            SimulationFormat::Fhir => Some("fhir"),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulationSummary {
    /// `subjects`, `foods`, `heart_rate`, `steps`, `sleep`, `body`, `workouts`, `meals`, in
    /// that order; for the document formats `subjects.csv` then the subjects' documents.
    pub files: Vec<PathBuf>,
    /// Rows (lines, without the CSV header) written per file, keyed by stream name
    /// (`subjects` and `foods` included); for the document formats, the rows of the streams
    /// they carry, as the CSV would have them (a weigh-in is one row).
    pub rows: BTreeMap<String, u64>,
    /// Defects introduced, by kind; empty without defects. Row-level kinds count the lines
    /// that carry the defect (a duplicated defective row counts twice):
    /// `duplicate_rows` (extra copies of a row), `hr_out_of_range` (`bpm` 0 or 300),
    /// `unparseable_values` (`bpm` = `--`), `weight_in_pounds` (`weight_kg_unit` =
    /// `[lb_av]`), `naive_local_times` (times without offset), `overlapping_sleep` (`phone`
    /// `asleep` intervals over the ring's stages); `wear_gaps` counts the episodes of a few
    /// hours without the watch.
    pub defects: BTreeMap<String, u64>,
}

// Defect rates.
/// Of all time-series rows.
const DUPLICATE_RATE: f64 = 0.005;
/// Of heart-rate rows.
const HR_OUT_OF_RANGE_RATE: f64 = 0.0005;
/// Of heart-rate rows.
const UNPARSEABLE_RATE: f64 = 0.0002;
/// Of weigh-ins.
const POUNDS_RATE: f64 = 0.10;
/// Of subject-days.
const GAP_RATE: f64 = 0.08;
/// Of subjects (besides the first) who also track sleep with their phone...
const PHONE_SUBJECT_RATE: f64 = 0.25;
/// ...on this share of nights.
const PHONE_NIGHT_RATE: f64 = 0.5;
/// Days during which one subject's times are written as naive local times.
const NAIVE_DAYS: u32 = 3;

/// Counts of the defects introduced.
#[derive(Debug, Default)]
struct DefectCounts {
    duplicate_rows: u64,
    hr_out_of_range: u64,
    unparseable_values: u64,
    weight_in_pounds: u64,
    wear_gaps: u64,
    naive_local_times: u64,
    overlapping_sleep: u64,
}

impl DefectCounts {
    fn into_map(self) -> BTreeMap<String, u64> {
        [
            ("duplicate_rows", self.duplicate_rows),
            ("hr_out_of_range", self.hr_out_of_range),
            ("unparseable_values", self.unparseable_values),
            ("weight_in_pounds", self.weight_in_pounds),
            ("wear_gaps", self.wear_gaps),
            ("naive_local_times", self.naive_local_times),
            ("overlapping_sleep", self.overlapping_sleep),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The window during which one subject's times are written as local times without offset,
/// and the (constant) offset of its time zone then.
#[derive(Debug, Clone, Copy)]
struct Naive {
    start: i64,
    end: i64,
    offset: i64,
}

const SUBJECT_COLUMNS: &[&str] = &[
    "subject",
    "sex",
    "birth_year",
    "height_cm",
    "max_hr",
    "timezone",
];
const FOOD_COLUMNS: &[&str] = &[
    "food_id",
    "name",
    "energy_kcal",
    "protein_g",
    "carbs_g",
    "fat_g",
    "fiber_g",
    "sugars_g",
    "sodium_mg",
];
const HEART_RATE_COLUMNS: &[&str] = &["subject", "source", "time", "bpm"];
const STEPS_COLUMNS: &[&str] = &["subject", "source", "time", "end_time", "count"];
const SLEEP_COLUMNS: &[&str] = &["subject", "source", "time", "end_time", "stage"];
const WORKOUT_COLUMNS: &[&str] = &[
    "subject",
    "source",
    "time",
    "end_time",
    "sport",
    "distance_m",
    "energy_kcal",
    "avg_hr",
    "max_hr",
];
const MEAL_COLUMNS: &[&str] = &["subject", "source", "time", "meal", "food_id", "quantity_g"];

fn body_columns(defects: bool) -> Vec<&'static str> {
    if defects {
        vec![
            "subject",
            "source",
            "time",
            "weight_kg",
            "weight_kg_unit",
            "fat_pct",
            "bmi",
        ]
    } else {
        vec!["subject", "source", "time", "weight_kg", "fat_pct", "bmi"]
    }
}

/// Simulates the subjects of `options` and writes their files into `out` (created if
/// needed; existing files of the same names are replaced).
pub fn simulate(options: &SimulationOptions, out: &Path) -> io::Result<SimulationSummary> {
    let in_range = options.start.pred_opt().is_some()
        && options
            .start
            .checked_add_days(Days::new(u64::from(options.days) + 2))
            .is_some();
    if !in_range {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "simulation dates out of range: {} days from {}",
                options.days, options.start
            ),
        ));
    }
    fs::create_dir_all(out)?;
    let format = options.format;
    let profiles: Vec<Profile> = (options.first_subject..options.first_subject + options.subjects)
        .map(|i| Profile::generate(options, i))
        .collect();
    let documents = Documents::new(format, out)?.map(|d| Rc::new(RefCell::new(d)));
    let table = |name: &'static str, columns: &[&'static str]| match &documents {
        Some(documents) => Ok(Table::document(name, columns.to_vec(), documents.clone())),
        None => Table::create(out, name, columns.to_vec(), format),
    };

    let mut subjects = Table::create(out, "subjects", SUBJECT_COLUMNS.to_vec(), format)?;
    for p in &profiles {
        subjects.row(
            &[
                Val::Str(&p.id),
                Val::Str(p.sex()),
                Val::Int(i64::from(p.birth_year)),
                Val::Dec(p.height_cm, 1),
                Val::Int(p.max_hr as i64),
                Val::Str(p.tz_name),
            ],
            None,
            1,
        )?;
    }
    // The foods meals refer to, where meals are written.
    let mut food_table = match documents {
        Some(_) => None,
        None => Some(Table::create(out, "foods", FOOD_COLUMNS.to_vec(), format)?),
    };
    if let Some(food_table) = &mut food_table {
        for f in foods::FOODS {
            food_table.row(
                &[
                    Val::Str(f.id),
                    Val::Str(f.name),
                    Val::Dec(f.energy_kcal, 0),
                    Val::Dec(f.protein_g, 1),
                    Val::Dec(f.carbs_g, 1),
                    Val::Dec(f.fat_g, 1),
                    Val::Dec(f.fiber_g, 1),
                    Val::Dec(f.sugars_g, 1),
                    Val::Dec(f.sodium_mg, 0),
                ],
                None,
                1,
            )?;
        }
    }

    let mut tables = Tables {
        heart_rate: table("heart_rate", HEART_RATE_COLUMNS)?,
        steps: table("steps", STEPS_COLUMNS)?,
        sleep: table("sleep", SLEEP_COLUMNS)?,
        body: table("body", &body_columns(options.defects))?,
        workouts: table("workouts", WORKOUT_COLUMNS)?,
        meals: table("meals", MEAL_COLUMNS)?,
    };
    let naive = if options.defects {
        choose_naive(&profiles, options)
    } else {
        None
    };
    let mut counts = DefectCounts::default();
    for p in &profiles {
        let naive = naive.filter(|(i, _)| *i == p.index).map(|(_, n)| n);
        if let Some(documents) = &documents {
            documents.borrow_mut().begin(p, options)?;
        }
        day::simulate_subject(p, options, naive, &mut tables, &mut counts)?;
    }

    let mut summary = SimulationSummary::default();
    let Tables {
        heart_rate,
        steps,
        sleep,
        body,
        workouts,
        meals,
    } = tables;
    for (name, table) in [
        ("subjects", Some(subjects)),
        ("foods", food_table),
        ("heart_rate", Some(heart_rate)),
        ("steps", Some(steps)),
        ("sleep", Some(sleep)),
        ("body", Some(body)),
        ("workouts", Some(workouts)),
        ("meals", Some(meals)),
    ] {
        let Some(table) = table else { continue };
        let (path, rows) = table.finish()?;
        let carried = match &documents {
            Some(documents) => name == "subjects" || documents.borrow().carries(name),
            None => true,
        };
        if carried {
            summary.rows.insert(name.to_owned(), rows);
        }
        summary.files.extend(path);
    }
    if let Some(documents) = &documents {
        let mut documents = documents.borrow_mut();
        documents.end()?;
        summary.files.extend(documents.take_files());
    }
    if options.defects {
        summary.defects = counts.into_map();
    }
    Ok(summary)
}

/// The subject whose times are written as naive local times for a few days: the first one
/// whose home is not UTC (so that the shift shows), over days when its offset is constant
/// (so that the local times are unambiguous), near the middle of the period.
fn choose_naive(profiles: &[Profile], options: &SimulationOptions) -> Option<(usize, Naive)> {
    let len = options.days.min(NAIVE_DAYS);
    if len == 0 {
        return None;
    }
    let last = options.days - len;
    let candidates = profiles
        .iter()
        .filter(|p| p.tz != Tz::UTC)
        .chain(profiles.iter().filter(|p| p.tz == Tz::UTC));
    for p in candidates {
        for k in (last / 2..=last).chain(0..last / 2) {
            let from = options.start.checked_add_days(Days::new(u64::from(k)))?;
            let to = from.checked_add_days(Days::new(u64::from(len)))?;
            let start = local_to_utc(p.tz, from, 0);
            let end = local_to_utc(p.tz, to, 0);
            let offset = offset_at(p.tz, start);
            // Rows starting in the window may end up to a day later (sleep).
            if (start..=end + 86_400)
                .step_by(3600)
                .all(|t| offset_at(p.tz, t) == offset)
            {
                return Some((p.index, Naive { start, end, offset }));
            }
        }
    }
    None
}
