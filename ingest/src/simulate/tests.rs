//! Tests of the simulator: they read the files back as an ingester would.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs,
    path::Path,
    time::Instant,
};

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::*;

/// 10 subjects over 9 days around the daylight-saving changes of Paris (29 March) and
/// Sydney (5 April).
fn small(defects: bool, format: SimulationFormat) -> SimulationOptions {
    SimulationOptions {
        subjects: 10,
        first_subject: 0,
        days: 9,
        seed: 42,
        start: NaiveDate::from_ymd_opt(2026, 3, 28).unwrap(),
        defects,
        format,
    }
}

fn run(options: &SimulationOptions) -> (tempfile::TempDir, SimulationSummary) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let summary = simulate(options, dir.path()).unwrap();
    eprintln!(
        "simulated {} subjects x {} days (defects {}, {:?}) in {:?}: {:?}",
        options.subjects,
        options.days,
        options.defects,
        options.format,
        started.elapsed(),
        summary.rows
    );
    (dir, summary)
}

/// A CSV file: its header and its records (quoted fields handled).
struct Csv {
    header: Vec<String>,
    records: Vec<Vec<String>>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let text = fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        let header = split_csv(lines.next().unwrap());
        let records: Vec<Vec<String>> = lines.map(split_csv).collect();
        for r in &records {
            assert_eq!(r.len(), header.len(), "{}: {r:?}", path.display());
        }
        Csv { header, records }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// Home time zone per subject, from subjects.csv.
fn zones(dir: &Path) -> HashMap<String, Tz> {
    let subjects = Csv::read(&dir.join("subjects.csv"));
    let (s, z) = (subjects.col("subject"), subjects.col("timezone"));
    subjects
        .records
        .iter()
        .map(|r| (r[s].clone(), r[z].parse::<Tz>().unwrap()))
        .collect()
}

/// Seconds since the epoch of a time written `…Z` (UTC) or without offset (local in `tz`).
fn parse_time(s: &str, tz: Tz) -> i64 {
    match s.strip_suffix('Z') {
        Some(utc) => NaiveDateTime::parse_from_str(utc, "%Y-%m-%dT%H:%M:%S")
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .and_utc()
            .timestamp(),
        None => {
            let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .unwrap_or_else(|e| panic!("{s}: {e}"));
            tz.from_local_datetime(&local)
                .single()
                .unwrap_or_else(|| panic!("{s} is ambiguous or skipped in {tz}"))
                .timestamp()
        }
    }
}

const STREAMS: [&str; 6] = ["heart_rate", "steps", "sleep", "body", "workouts", "meals"];

fn expected_headers(defects: bool) -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "subjects",
            "subject,sex,birth_year,height_cm,max_hr,timezone",
        ),
        (
            "foods",
            "food_id,name,energy_kcal,protein_g,carbs_g,fat_g,fiber_g,sugars_g,sodium_mg",
        ),
        ("heart_rate", "subject,source,time,bpm"),
        ("steps", "subject,source,time,end_time,count"),
        ("sleep", "subject,source,time,end_time,stage"),
        (
            "body",
            if defects {
                "subject,source,time,weight_kg,weight_kg_unit,fat_pct,bmi"
            } else {
                "subject,source,time,weight_kg,fat_pct,bmi"
            },
        ),
        (
            "workouts",
            "subject,source,time,end_time,sport,distance_m,energy_kcal,avg_hr,max_hr",
        ),
        ("meals", "subject,source,time,meal,food_id,quantity_g"),
    ]
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        files.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            fs::read(&path).unwrap(),
        );
    }
    files
}

#[test]
fn simulate_same_seed_gives_identical_bytes() {
    for (defects, format) in [
        (false, SimulationFormat::Csv),
        (true, SimulationFormat::Csv),
        (true, SimulationFormat::Ndjson),
    ] {
        let mut options = small(defects, format);
        options.subjects = 4;
        let (a, sa) = run(&options);
        let (b, sb) = run(&options);
        let (fa, fb) = (read_all(a.path()), read_all(b.path()));
        assert_eq!(fa.len(), 8, "{:?}", fa.keys());
        assert_eq!(fa, fb, "same options, same bytes");
        assert_eq!(sa.rows, sb.rows);
        assert_eq!(sa.defects, sb.defects);

        options.seed = 43;
        let (c, _) = run(&options);
        let fc = read_all(c.path());
        for stream in ["heart_rate", "steps", "sleep", "meals", "subjects"] {
            let name = format!("{stream}.{}", format.extension());
            assert_ne!(fa[&name], fc[&name], "{name}: another seed, other data");
        }
        // The food table is reference data: the same for every seed.
        let foods = format!("foods.{}", format.extension());
        assert_eq!(fa[&foods], fc[&foods]);
    }
}

#[test]
fn simulate_in_chunks_of_subjects_gives_the_whole_population() {
    let mut whole = small(false, SimulationFormat::Csv);
    whole.subjects = 5;
    let (all, _) = run(&whole);
    let all = read_all(all.path());
    let mut chunked: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (first_subject, subjects) in [(0, 2), (2, 3)] {
        let (dir, summary) = run(&SimulationOptions {
            first_subject,
            subjects,
            ..whole.clone()
        });
        assert_eq!(summary.rows["subjects"], subjects as u64);
        for (name, bytes) in read_all(dir.path()) {
            match chunked.get_mut(&name) {
                // Every file but the food table holds the chunk's subjects after a header.
                Some(so_far) if name != "foods.csv" => {
                    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
                    so_far.extend_from_slice(&bytes[header..]);
                }
                Some(so_far) => assert_eq!(so_far, &bytes, "{name}"),
                None => {
                    chunked.insert(name, bytes);
                }
            }
        }
    }
    assert_eq!(
        chunked.keys().collect::<Vec<_>>(),
        all.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &all {
        assert!(
            chunked[name] == *bytes,
            "{name}: the chunks differ from the whole"
        );
    }
    let subjects = String::from_utf8(chunked["subjects.csv"].clone()).unwrap();
    assert!(subjects.contains("\nS0003,"), "{subjects}");
}

#[test]
fn simulate_writes_the_files_and_headers() {
    for defects in [false, true] {
        let (dir, summary) = run(&small(defects, SimulationFormat::Csv));
        let expected = expected_headers(defects);
        let names: Vec<String> = summary
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let expected_names: Vec<String> =
            expected.iter().map(|(s, _)| format!("{s}.csv")).collect();
        assert_eq!(names, expected_names);
        for (stream, header) in expected {
            let text = fs::read_to_string(dir.path().join(format!("{stream}.csv"))).unwrap();
            assert_eq!(text.lines().next(), Some(header), "{stream}");
            let lines = text.lines().count() as u64 - 1;
            assert_eq!(summary.rows[stream], lines, "{stream}: rows counted");
            assert!(lines > 0, "{stream} is empty");
        }
        assert_eq!(summary.rows["subjects"], 10);
        assert_eq!(summary.rows["foods"], foods::FOODS.len() as u64);
    }
}

#[test]
fn simulate_row_counts_are_plausible() {
    let options = small(false, SimulationFormat::Csv);
    let (dir, summary) = run(&options);
    let subject_days = (options.subjects as u64) * u64::from(options.days);
    let rows = &summary.rows;
    // Worn all day but while charging (30–60 min), or only awake (≥ ~15 h) by those who
    // take the watch off at night.
    let hr = rows["heart_rate"];
    assert!(
        (900 * subject_days..=1440 * subject_days).contains(&hr),
        "heart_rate {hr} for {subject_days} subject-days"
    );
    let steps = rows["steps"];
    assert!(
        (50 * subject_days..=80 * subject_days).contains(&steps),
        "steps {steps}: 15-minute intervals of ~16 waking hours"
    );
    let body = rows["body"];
    assert!(
        (subject_days / 2..=subject_days).contains(&body),
        "body {body}: most mornings"
    );
    let workouts = rows["workouts"];
    assert!(
        (subject_days / 10..=subject_days * 4 / 5).contains(&workouts),
        "workouts {workouts}: about 3 a week"
    );

    let sleep = Csv::read(&dir.path().join("sleep.csv"));
    let stage = sleep.col("stage");
    let nights = sleep
        .records
        .iter()
        .filter(|r| r[stage] == "in_bed")
        .count() as u64;
    assert_eq!(nights, subject_days, "one night per subject-day");

    let meals = Csv::read(&dir.path().join("meals.csv"));
    let (s, t, m) = (meals.col("subject"), meals.col("time"), meals.col("meal"));
    let mut per_meal: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in &meals.records {
        *per_meal
            .entry((r[s].clone(), r[t].clone(), r[m].clone()))
            .or_default() += 1;
    }
    let count = per_meal.len() as u64;
    assert!(
        (3 * subject_days..=4 * subject_days).contains(&count),
        "{count} meals for {subject_days} subject-days"
    );
    assert!(
        per_meal.values().all(|n| (1..=4).contains(n)),
        "1–4 foods a meal"
    );
}

#[test]
fn simulate_values_are_plausible() {
    let (dir, _) = run(&small(false, SimulationFormat::Csv));
    let dir = dir.path();
    let zones = zones(dir);
    let subjects = Csv::read(&dir.join("subjects.csv"));
    let max_hr: HashMap<String, f64> = subjects
        .records
        .iter()
        .map(|r| (r[0].clone(), r[subjects.col("max_hr")].parse().unwrap()))
        .collect();
    let height: HashMap<String, f64> = subjects
        .records
        .iter()
        .map(|r| (r[0].clone(), r[subjects.col("height_cm")].parse().unwrap()))
        .collect();

    // Heart rate: integers in the plausible range; lower asleep than awake.
    let hr = Csv::read(&dir.join("heart_rate.csv"));
    let mut bpm: HashMap<(String, i64), f64> = HashMap::new();
    for r in &hr.records {
        let v: f64 = r[3].parse().unwrap();
        assert!((30.0..=250.0).contains(&v) && v.fract() == 0.0, "{r:?}");
        assert!(v <= max_hr[&r[0]], "{r:?} above the subject's max HR");
        assert_eq!(r[1], "watch");
        bpm.insert((r[0].clone(), parse_time(&r[2], zones[&r[0]])), v);
    }
    let sleep = Csv::read(&dir.join("sleep.csv"));
    let mut asleep: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for r in &sleep.records {
        let tz = zones[&r[0]];
        asleep
            .entry(r[0].clone())
            .or_default()
            .push((parse_time(&r[2], tz), parse_time(&r[3], tz)));
    }
    for (subject, intervals) in &asleep {
        let (mut night, mut day) = (Vec::new(), Vec::new());
        for ((s, t), v) in &bpm {
            if s == subject {
                if intervals.iter().any(|(a, b)| a <= t && t < b) {
                    night.push(*v);
                } else {
                    day.push(*v);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        if !night.is_empty() {
            assert!(
                mean(&night) + 5.0 < mean(&day),
                "{subject}: {} asleep, {} awake",
                mean(&night),
                mean(&day)
            );
        }
    }

    // Steps: never above 300 a minute; 15-minute intervals (shorter only never).
    let steps = Csv::read(&dir.join("steps.csv"));
    let mut daily: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in &steps.records {
        let tz = zones[&r[0]];
        let (s, e) = (parse_time(&r[2], tz), parse_time(&r[3], tz));
        assert_eq!(e - s, 900, "{r:?}");
        let count: i64 = r[4].parse().unwrap();
        assert!((0..=300 * (e - s) / 60).contains(&count), "{r:?}");
        *daily
            .entry((r[0].clone(), r[2][..10].to_owned()))
            .or_default() += count;
    }
    let mean_daily = daily.values().sum::<i64>() / daily.len() as i64;
    assert!(
        (3000..=20_000).contains(&mean_daily),
        "{mean_daily} steps a day"
    );

    // Workouts: sports, durations, distances, and heart rates that are those of the
    // heart_rate rows of their minutes.
    let workouts = Csv::read(&dir.join("workouts.csv"));
    let mut sports = BTreeSet::new();
    let mut highest: f64 = 0.0;
    for r in &workouts.records {
        let tz = zones[&r[0]];
        let (s, e) = (parse_time(&r[2], tz), parse_time(&r[3], tz));
        assert!((20 * 60..=90 * 60).contains(&(e - s)), "{r:?}");
        sports.insert(r[4].clone());
        assert!(
            ["run", "ride", "walk", "strength", "swim"].contains(&r[4].as_str()),
            "{r:?}"
        );
        assert_eq!(r[5].is_empty(), r[4] == "strength", "distance: {r:?}");
        if r[4] != "strength" {
            let speed = r[5].parse::<f64>().unwrap() / (e - s) as f64;
            assert!((0.3..=10.0).contains(&speed), "{r:?}: {speed} m/s");
        }
        let kcal: f64 = r[6].parse().unwrap();
        assert!((50.0..=1500.0).contains(&kcal), "{r:?}");
        let minutes: Vec<f64> = (s..e)
            .step_by(60)
            .map(|t| bpm[&(r[0].clone(), t)])
            .collect();
        let avg = (minutes.iter().sum::<f64>() / minutes.len() as f64).round();
        let max = minutes.iter().copied().fold(0.0, f64::max);
        assert_eq!(r[7].parse::<f64>().unwrap(), avg, "avg_hr {r:?}");
        assert_eq!(r[8].parse::<f64>().unwrap(), max, "max_hr {r:?}");
        highest = highest.max(max / max_hr[&r[0]]);
    }
    assert!(sports.len() >= 4, "{sports:?}");
    assert!(
        (0.8..=0.95).contains(&highest),
        "workouts peak at 85–90% of max HR: {highest}"
    );

    // Body: weights, BMI from the height, fat.
    let body = Csv::read(&dir.join("body.csv"));
    for r in &body.records {
        let w: f64 = r[3].parse().unwrap();
        assert!((45.0..=115.0).contains(&w), "{r:?}");
        if !r[4].is_empty() {
            let fat: f64 = r[4].parse().unwrap();
            assert!((5.0..=50.0).contains(&fat), "{r:?}");
        }
        let h = height[&r[0]] / 100.0;
        let bmi: f64 = r[5].parse().unwrap();
        assert!((bmi - w / (h * h)).abs() < 0.2, "{r:?}");
    }

    // Meals: known foods, quantities, meal names, local times of day.
    let food_ids: BTreeSet<&str> = foods::FOODS.iter().map(|f| f.id).collect();
    let meals = Csv::read(&dir.join("meals.csv"));
    for r in &meals.records {
        assert!(food_ids.contains(r[4].as_str()), "{r:?}");
        let q: f64 = r[5].parse().unwrap();
        assert!((30.0..=400.0).contains(&q), "{r:?}");
        let tz = zones[&r[0]];
        let t = parse_time(&r[2], tz);
        let hour = tz
            .timestamp_opt(t, 0)
            .unwrap()
            .format("%H")
            .to_string()
            .parse::<u32>()
            .unwrap();
        let ok = match r[3].as_str() {
            "breakfast" => (5..=11).contains(&hour),
            "lunch" => (12..=13).contains(&hour),
            "snack" => (15..=17).contains(&hour),
            "dinner" => (18..=21).contains(&hour),
            _ => false,
        };
        assert!(ok, "{r:?} at {hour} h local");
    }
}

#[test]
fn simulate_sleep_nights_are_contiguous_and_local() {
    let (dir, _) = run(&small(false, SimulationFormat::Csv));
    let zones = zones(dir.path());
    let sleep = Csv::read(&dir.path().join("sleep.csv"));
    let stages = ["in_bed", "awake", "light", "deep", "rem", "asleep"];
    // (subject, start of the night, end of the last interval)
    let mut night: Option<(String, i64, i64)> = None;
    let mut nights = 0;
    let mut close = |night: &Option<(String, i64, i64)>| {
        if let Some((subject, start, end)) = night {
            let tz = zones[subject];
            assert!(
                end - start <= 24 * 3600,
                "{subject}: night of {} s",
                end - start
            );
            assert!(
                end - start >= 4 * 3600,
                "{subject}: night of {} s",
                end - start
            );
            let local = |t: i64| tz.timestamp_opt(t, 0).unwrap().naive_local();
            let bed = local(*start).format("%H").to_string();
            let up = local(*end).format("%H:%M").to_string();
            assert!(
                ["21", "22", "23", "00", "01", "02"].contains(&bed.as_str()),
                "{subject}: in bed at {bed} h local"
            );
            assert!(
                ("05:00".."10:30").contains(&up.as_str()),
                "{subject}: up at {up}"
            );
            nights += 1;
        }
    };
    for r in &sleep.records {
        assert_eq!(r[1], "ring", "{r:?}");
        assert!(stages.contains(&r[4].as_str()), "{r:?}");
        let tz = zones[&r[0]];
        let (s, e) = (parse_time(&r[2], tz), parse_time(&r[3], tz));
        assert!(s < e && e - s <= 24 * 3600, "{r:?}");
        if r[4] == "in_bed" {
            close(&night);
            night = Some((r[0].clone(), s, e));
        } else {
            let current = night.as_mut().expect("a night starts in bed");
            assert_eq!(current.0, r[0], "{r:?}");
            assert_eq!(current.2, s, "contiguous: {r:?}");
            current.2 = e;
        }
    }
    close(&night);
    assert_eq!(nights, 90);
}

/// Each subject's rows form one block per file, in time order.
fn assert_sorted(dir: &Path) {
    let zones = zones(dir);
    for stream in STREAMS {
        let csv = Csv::read(&dir.join(format!("{stream}.csv")));
        let mut seen = BTreeSet::new();
        let mut last: Option<(String, i64)> = None;
        for r in &csv.records {
            let t = parse_time(&r[2], zones[&r[0]]);
            match &last {
                Some((s, previous)) if *s == r[0] => {
                    assert!(*previous <= t, "{stream}: {r:?} after {previous}");
                }
                _ => assert!(seen.insert(r[0].clone()), "{stream}: {} twice", r[0]),
            }
            last = Some((r[0].clone(), t));
        }
        if !["body", "workouts"].contains(&stream) {
            assert_eq!(seen.len(), zones.len(), "{stream}: every subject");
        }
    }
}

#[test]
fn simulate_times_are_sorted_per_subject() {
    for defects in [false, true] {
        let (dir, _) = run(&small(defects, SimulationFormat::Csv));
        assert_sorted(dir.path());
    }
}

#[test]
fn simulate_ndjson_has_the_rows_of_the_csv() {
    let (csv_dir, csv_summary) = run(&small(true, SimulationFormat::Csv));
    let (json_dir, json_summary) = run(&small(true, SimulationFormat::Ndjson));
    assert_eq!(csv_summary.rows, json_summary.rows);
    assert_eq!(csv_summary.defects, json_summary.defects);
    for (stream, _) in expected_headers(true) {
        let csv = Csv::read(&csv_dir.path().join(format!("{stream}.csv")));
        let text = fs::read_to_string(json_dir.path().join(format!("{stream}.ndjson"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), csv.records.len(), "{stream}");
        for (line, record) in lines.iter().zip(&csv.records) {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{stream}: {line}: {e}"));
            let object = value.as_object().unwrap();
            // Keys in the order of the CSV columns; those missing are the empty fields.
            let keys: Vec<&str> = line_keys(line);
            let present: Vec<&str> = csv
                .header
                .iter()
                .zip(record)
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, _)| h.as_str())
                .collect();
            assert_eq!(keys, present, "{stream}: {line}");
            for (column, field) in csv.header.iter().zip(record) {
                let Some(v) = object.get(column) else {
                    continue;
                };
                let text = match v {
                    serde_json::Value::String(s) => {
                        let numeric = field.parse::<f64>().is_ok()
                            && !["subject", "food_id", "name"].contains(&column.as_str());
                        assert!(!numeric, "{stream}.{column}: number {field} as a string");
                        s.clone()
                    }
                    serde_json::Value::Number(n) => n.to_string(),
                    other => panic!("{stream}.{column}: {other}"),
                };
                assert_eq!(&text, field, "{stream}.{column}: {line}");
            }
        }
    }
}

/// The keys of a JSON object line, in order.
fn line_keys(line: &str) -> Vec<&str> {
    let mut keys = Vec::new();
    let mut rest = line.strip_prefix('{').unwrap();
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let end = after.find('"').unwrap();
        keys.push(&after[..end]);
        // Skip the value: up to the next `,"` at the top level (values have no `,"`).
        match after[end..].find(",\"") {
            Some(next) => rest = &after[end + next + 1..],
            None => break,
        }
    }
    keys
}

#[test]
fn simulate_without_defects_is_clean() {
    let (dir, summary) = run(&small(false, SimulationFormat::Csv));
    assert!(summary.defects.is_empty(), "{:?}", summary.defects);
    let zones = zones(dir.path());
    for stream in STREAMS {
        let csv = Csv::read(&dir.path().join(format!("{stream}.csv")));
        assert!(
            !csv.header.iter().any(|h| h.ends_with("_unit")),
            "{stream}: {:?}",
            csv.header
        );
        let mut keys = BTreeSet::new();
        for r in &csv.records {
            assert!(r[2].ends_with('Z'), "{stream}: {r:?}");
            if stream == "steps" || stream == "sleep" || stream == "workouts" {
                assert!(r[3].ends_with('Z'), "{stream}: {r:?}");
            }
            assert_ne!(r[1], "phone", "{stream}: {r:?}");
            // The series key and time of a row are unique: no duplicates.
            let mut key = vec![r[0].clone(), r[1].clone(), r[2].clone()];
            if stream == "meals" {
                key.extend([r[3].clone(), r[4].clone()]);
            }
            assert!(keys.insert(key), "{stream}: {r:?} twice");
            let _ = parse_time(&r[2], zones[&r[0]]);
        }
        if stream == "heart_rate" {
            for r in &csv.records {
                let bpm: f64 = r[3].parse().unwrap_or_else(|_| panic!("unparseable {r:?}"));
                assert!((25.0..=250.0).contains(&bpm), "{r:?}");
            }
        }
    }
}

#[test]
fn simulate_with_defects_has_each_defect() {
    let (dir, summary) = run(&small(true, SimulationFormat::Csv));
    let (clean_dir, clean) = run(&small(false, SimulationFormat::Csv));
    let dir = dir.path();
    let defects = &summary.defects;
    let kinds = [
        "duplicate_rows",
        "hr_out_of_range",
        "unparseable_values",
        "weight_in_pounds",
        "wear_gaps",
        "naive_local_times",
        "overlapping_sleep",
    ];
    assert_eq!(defects.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut k = kinds.to_vec();
        k.sort();
        k
    });
    for kind in kinds {
        assert!(defects[kind] > 0, "no {kind}: {defects:?}");
    }

    // What the files show matches what was counted.
    let (mut duplicates, mut naive, mut hr_duplicates) = (0, 0, 0);
    for stream in STREAMS {
        let text = fs::read_to_string(dir.join(format!("{stream}.csv"))).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        let repeated = lines.windows(2).filter(|w| w[0] == w[1]).count() as u64;
        duplicates += repeated;
        if stream == "heart_rate" {
            hr_duplicates = repeated;
        }
        naive += lines.iter().filter(|l| split_csv(l)[2].len() == 19).count() as u64;
    }
    assert_eq!(duplicates, defects["duplicate_rows"]);
    assert_eq!(naive, defects["naive_local_times"]);
    assert!(
        defects["naive_local_times"] > 100,
        "a few days of one subject"
    );

    let hr = Csv::read(&dir.join("heart_rate.csv"));
    let unparseable = hr.records.iter().filter(|r| r[3] == "--").count() as u64;
    let out_of_range = hr
        .records
        .iter()
        .filter(|r| r[3] == "0" || r[3] == "300")
        .count() as u64;
    assert_eq!(unparseable, defects["unparseable_values"]);
    assert_eq!(out_of_range, defects["hr_out_of_range"]);
    // The watch off for hours (at least 60 min besides its charging) removes readings.
    assert!(
        summary.rows["heart_rate"] - hr_duplicates + 60 * defects["wear_gaps"]
            <= clean.rows["heart_rate"],
        "{} rows with gaps, {} without",
        summary.rows["heart_rate"],
        clean.rows["heart_rate"]
    );

    let body = Csv::read(&dir.join("body.csv"));
    let (w, unit) = (body.col("weight_kg"), body.col("weight_kg_unit"));
    let mut pounds = 0;
    for r in &body.records {
        match r[unit].as_str() {
            "" => assert!((45.0..=115.0).contains(&r[w].parse::<f64>().unwrap())),
            "[lb_av]" => {
                pounds += 1;
                let kg = r[w].parse::<f64>().unwrap() * 0.453_592_37;
                assert!((45.0..=115.0).contains(&kg), "{r:?}");
            }
            other => panic!("unit {other}"),
        }
    }
    assert_eq!(pounds, defects["weight_in_pounds"]);

    // The phone's `asleep` intervals overlap the ring's stages of the same subject.
    let zones = zones(dir);
    let sleep = Csv::read(&dir.join("sleep.csv"));
    let interval = |r: &Vec<String>| {
        let tz = zones[&r[0]];
        (parse_time(&r[2], tz), parse_time(&r[3], tz))
    };
    let phone: Vec<&Vec<String>> = sleep.records.iter().filter(|r| r[1] == "phone").collect();
    assert_eq!(phone.len() as u64, defects["overlapping_sleep"]);
    for p in phone {
        assert_eq!(p[4], "asleep");
        let (s, e) = interval(p);
        let overlapping = sleep
            .records
            .iter()
            .filter(|r| r[1] == "ring" && r[0] == p[0])
            .filter(|r| {
                let (a, b) = interval(r);
                a < e && s < b
            })
            .count();
        assert!(overlapping >= 5, "{p:?} overlaps {overlapping} ring stages");
    }
    drop(clean_dir);
}

/// Every file under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(name, fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn simulate_documents_are_deterministic_and_laid_out_per_subject() {
    for (format, document) in [
        (
            SimulationFormat::AppleHealth,
            "apple_health/S0002/export.xml",
        ),
        (SimulationFormat::Fhir, "fhir/S0002.json"),
    ] {
        let mut options = small(true, format);
        options.subjects = 2;
        options.days = 3;
        let (a, sa) = run(&options);
        let (b, sb) = run(&options);
        let (fa, fb) = (read_tree(a.path()), read_tree(b.path()));
        assert_eq!(
            fa.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                document.replace("S0002", "S0001").as_str(),
                document,
                "subjects.csv"
            ],
            "no foods: the documents carry no meals"
        );
        assert_eq!(fa, fb, "same options, same bytes");
        assert_eq!((&sa.rows, &sa.defects), (&sb.rows, &sb.defects));
        assert_eq!(
            sa.files,
            [
                a.path().join("subjects.csv"),
                a.path().join(document.replace("S0002", "S0001")),
                a.path().join(document),
            ]
        );
        options.seed = 43;
        let (c, _) = run(&options);
        assert_ne!(fa[document], read_tree(c.path())[document]);

        let text = String::from_utf8(fa[document].clone()).unwrap();
        match format {
            SimulationFormat::AppleHealth => {
                assert!(text.starts_with(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData ["
                ));
                assert!(
                    text.contains("HealthAIPseudonym=\"S0002\"/>"),
                    "the pseudonym in <Me>"
                );
                assert!(text.ends_with("</HealthData>\n"));
                let workouts: usize = fa
                    .values()
                    .map(|f| String::from_utf8_lossy(f).matches("<Workout ").count())
                    .sum();
                assert_eq!(workouts as u64, sa.rows["workouts"]);
            }
            _ => {
                let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(bundle["resourceType"], "Bundle");
                assert_eq!(bundle["entry"][0]["resource"]["id"], "S0002");
                assert_eq!(
                    bundle["entry"][1]["resource"]["subject"]["reference"],
                    "Patient/S0002"
                );
                assert!(text.lines().count() > 100, "an entry per line");
            }
        }
    }
}

/// A row as compared across formats: subject, source, then the values of `columns` with times
/// as instants and numbers in the stream's unit, 3 decimals.
fn normalized(
    subject: &str,
    source: &str,
    columns: &[&str],
    value: impl Fn(&str) -> (Option<String>, Option<String>),
) -> Vec<String> {
    let mut row = vec![subject.to_owned(), source.to_owned()];
    for column in columns {
        let (text, unit) = value(column);
        let text = text.unwrap_or_default();
        let cell = if column.ends_with("time") {
            match crate::times::parse(&text) {
                Some(crate::times::When::Instant(n)) => (n / 1_000_000_000).to_string(),
                other => panic!("{column} '{text}' is no instant: {other:?}"),
            }
        } else {
            match text.parse::<f64>() {
                Ok(number) => {
                    let factor = if unit.as_deref() == Some("km") {
                        1000.0
                    } else {
                        1.0
                    };
                    format!("{:.3}", number * factor)
                }
                Err(_) => text,
            }
        };
        row.push(cell);
    }
    row
}

const COMPARED: [(&str, &[&str]); 5] = [
    ("heart_rate", &["time", "bpm"]),
    ("steps", &["time", "end_time", "count"]),
    ("sleep", &["time", "end_time", "stage"]),
    ("body", &["time", "weight_kg", "fat_pct", "bmi"]),
    (
        "workouts",
        &[
            "time",
            "end_time",
            "sport",
            "distance_m",
            "energy_kcal",
            "avg_hr",
            "max_hr",
        ],
    ),
];

#[test]
fn simulate_documents_read_back_as_the_csv_rows() {
    use arrow::array::{Array, AsArray};

    let mut options = small(false, SimulationFormat::Csv);
    options.subjects = 4;
    let (csv_dir, csv_summary) = run(&options);
    let mut expected: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
    for (stream, columns) in COMPARED {
        let csv = Csv::read(&csv_dir.path().join(format!("{stream}.csv")));
        let mut rows: Vec<Vec<String>> = csv
            .records
            .iter()
            .map(|r| {
                normalized(&r[0], &r[1], columns, |c| {
                    (Some(r[csv.col(c)].clone()), None)
                })
            })
            .collect();
        rows.sort();
        expected.insert(stream, rows);
    }

    for format in [SimulationFormat::AppleHealth, SimulationFormat::Fhir] {
        options.format = format;
        let (_dir, summary) = run(&options);
        let mut read: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for path in &summary.files[1..] {
            crate::formats::read(
                crate::formats::Input::file(path),
                crate::formats::Format::Auto,
                None,
                &crate::formats::ColumnMap::default(),
                &crate::formats::Survey::default(),
                &mut |extract| {
                    let batch = &extract.batch;
                    let text = |name: &str, row: usize| {
                        batch
                            .column_by_name(name)
                            .map(|c| c.as_string::<i32>())
                            .filter(|c| !c.is_null(row))
                            .map(|c| c.value(row).to_owned())
                    };
                    let columns = COMPARED
                        .iter()
                        .find(|(s, _)| *s == extract.stream)
                        .map(|(_, c)| *c)
                        .unwrap_or_else(|| panic!("{}: no such stream simulated", extract.stream));
                    for row in 0..batch.num_rows() {
                        let subject = text("subject", row).expect("every row names its subject");
                        let source = text("source", row).unwrap_or_default();
                        read.entry(extract.stream.clone())
                            .or_default()
                            .push(normalized(&subject, &source, columns, |c| {
                                (text(c, row), text(&format!("{c}_unit"), row))
                            }));
                    }
                    Ok(())
                },
            )
            .unwrap();
        }
        let carried: &[&str] = match format {
            SimulationFormat::AppleHealth => &["body", "heart_rate", "sleep", "steps", "workouts"],
            _ => &["body", "heart_rate", "steps"],
        };
        assert_eq!(
            read.keys().map(String::as_str).collect::<Vec<_>>(),
            carried,
            "{format:?}"
        );
        for stream in carried {
            let rows = read.get_mut(*stream).unwrap();
            rows.sort();
            assert_eq!(
                rows.len() as u64,
                csv_summary.rows[*stream],
                "{format:?} {stream}"
            );
            assert_eq!(
                summary.rows[*stream], csv_summary.rows[*stream],
                "{format:?} {stream}"
            );
            assert!(
                *rows == expected[stream],
                "{format:?} {stream}: the rows read back differ from the CSV's, e.g. {:?} vs {:?}",
                rows.iter().zip(&expected[stream]).find(|(a, b)| a != b),
                rows.len()
            );
        }
        assert!(!summary.rows.contains_key("meals"), "{format:?}");
    }
}

/// The full default size; prints rows, bytes and time. Run in release with
/// `cargo test --release -p ingest simulate_full -- --ignored --nocapture`.
#[test]
#[ignore]
fn simulate_full_size() {
    for (defects, format) in [
        (false, SimulationFormat::Csv),
        (true, SimulationFormat::Csv),
        (false, SimulationFormat::Ndjson),
    ] {
        let options = SimulationOptions {
            defects,
            format,
            ..SimulationOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let summary = simulate(&options, dir.path()).unwrap();
        let elapsed = started.elapsed();
        println!("100 subjects x 30 days, defects {defects}, {format:?}: {elapsed:?}");
        for path in &summary.files {
            let stem = path.file_stem().unwrap().to_string_lossy();
            println!(
                "  {:<22} {:>10} rows {:>12} bytes",
                path.file_name().unwrap().to_string_lossy(),
                summary.rows[stem.as_ref()],
                fs::metadata(path).unwrap().len()
            );
        }
        if defects {
            println!("  defects: {:?}", summary.defects);
        }
    }
}
