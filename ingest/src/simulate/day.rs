//! One subject, day after day: the night's sleep stages, the day's plan (device charging,
//! workouts, walks, meals, weigh-in), a heart rate and a step count for every minute, and the
//! rows of every stream, written as they are produced.
//!
//! The clean values are drawn from the subject's `Days` generator and the defects from its
//! `Defects` generator, so that turning defects on leaves every clean value as it was.

use std::{f64::consts::TAU, io};

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::{
    DUPLICATE_RATE, DefectCounts, GAP_RATE, HR_OUT_OF_RANGE_RATE, Naive, PHONE_NIGHT_RATE,
    PHONE_SUBJECT_RATE, POUNDS_RATE, SimulationOptions, UNPARSEABLE_RATE, foods,
    output::{Table, Val},
    rng::{Purpose, Rng},
    subject::{Profile, Sport, local_to_utc},
};

const LB_PER_KG: f64 = 1.0 / 0.453_592_37;

/// The files of the time-series streams.
pub(super) struct Tables {
    pub heart_rate: Table,
    pub steps: Table,
    pub sleep: Table,
    pub body: Table,
    pub workouts: Table,
    pub meals: Table,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    InBed,
    Awake,
    Light,
    Deep,
    Rem,
    Asleep,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::InBed => "in_bed",
            Stage::Awake => "awake",
            Stage::Light => "light",
            Stage::Deep => "deep",
            Stage::Rem => "rem",
            Stage::Asleep => "asleep",
        }
    }

    /// Heart rate in this stage relative to the resting heart rate.
    fn hr_factor(self) -> f64 {
        match self {
            Stage::InBed => 1.02,
            Stage::Awake => 1.05,
            Stage::Light | Stage::Asleep => 0.93,
            Stage::Deep => 0.87,
            Stage::Rem => 0.98,
        }
    }
}

/// One night in bed: from bedtime to getting up, as contiguous stages.
struct Night {
    start: i64,
    end: i64,
    stages: Vec<(i64, i64, Stage)>,
}

impl Night {
    fn stage_at(&self, cursor: &mut usize, t: i64) -> Option<Stage> {
        if t < self.start || t >= self.end {
            return None;
        }
        while *cursor < self.stages.len() && self.stages[*cursor].1 <= t {
            *cursor += 1;
        }
        self.stages.get(*cursor).filter(|s| s.0 <= t).map(|s| s.2)
    }
}

struct Workout {
    start: i64,
    end: i64,
    sport: Sport,
    /// Steady intensity and interval peaks, as fractions of the heart-rate reserve.
    intensity: f64,
    intervals: bool,
    peak: f64,
    cadence: i64,
    distance_m: Option<f64>,
    energy_kcal: f64,
}

struct Walk {
    start: i64,
    end: i64,
    cadence: i64,
    intensity: f64,
}

/// Writes rows, applying the defects that concern any row: duplicates and naive local times.
struct Rows<'a> {
    enabled: bool,
    counts: &'a mut DefectCounts,
    rng: Rng,
    naive: Option<Naive>,
}

impl Rows<'_> {
    /// Writes a row whose `time` is `time`; returns how many copies were written.
    fn emit(&mut self, table: &mut Table, time: i64, vals: &[Val<'_>]) -> io::Result<u32> {
        let copies = if self.enabled && self.rng.chance(DUPLICATE_RATE) {
            self.counts.duplicate_rows += 1;
            2
        } else {
            1
        };
        let offset = self
            .naive
            .filter(|n| n.start <= time && time < n.end)
            .map(|n| n.offset);
        if offset.is_some() {
            self.counts.naive_local_times += u64::from(copies);
        }
        table.row(vals, offset, copies)?;
        Ok(copies)
    }
}

struct Sim<'a> {
    p: &'a Profile,
    rng: Rng,
    rows: Rows<'a>,
    defects_in_body: bool,
    phone_sleeper: bool,
    /// Heart rate carried from minute to minute.
    hr: f64,
    workouts: Vec<Workout>,
    walks: Vec<Walk>,
    meals: Vec<(i64, &'static str)>,
    items: Vec<(&'static foods::Food, f64)>,
    hr_min: Vec<u16>,
    steps_min: Vec<u16>,
    awake_min: Vec<bool>,
    worn_min: Vec<bool>,
}

/// Simulates one subject over the days of the options and writes its rows.
pub(super) fn simulate_subject(
    p: &Profile,
    options: &SimulationOptions,
    naive: Option<Naive>,
    tables: &mut Tables,
    counts: &mut DefectCounts,
) -> io::Result<()> {
    if options.days == 0 {
        return Ok(());
    }
    let mut rows = Rows {
        enabled: options.defects,
        counts,
        rng: Rng::derive(options.seed, p.index, Purpose::Defects),
        naive,
    };
    let phone_sleeper = options.defects && (p.index == 0 || rows.rng.chance(PHONE_SUBJECT_RATE));
    let mut sim = Sim {
        p,
        rng: Rng::derive(options.seed, p.index, Purpose::Days),
        rows,
        defects_in_body: options.defects,
        phone_sleeper,
        hr: p.rest_hr,
        workouts: Vec::new(),
        walks: Vec::new(),
        meals: Vec::new(),
        items: Vec::new(),
        hr_min: Vec::new(),
        steps_min: Vec::new(),
        awake_min: Vec::new(),
        worn_min: Vec::new(),
    };
    let out_of_range = || io::Error::new(io::ErrorKind::InvalidInput, "dates out of range");
    let eve = options.start.pred_opt().ok_or_else(out_of_range)?;
    let mut prev = sim.plan_night(eve);
    for d in 0..options.days {
        let date = options
            .start
            .checked_add_days(Days::new(u64::from(d)))
            .ok_or_else(out_of_range)?;
        let tonight = sim.plan_night(date);
        sim.write_night(&prev, &mut tables.sleep)?;
        sim.day(d, date, &prev, &tonight, tables)?;
        prev = tonight;
    }
    Ok(())
}

fn overlaps(busy: &[(i64, i64)], start: i64, end: i64) -> bool {
    busy.iter().any(|&(s, e)| s < end && start < e)
}

impl Sim<'_> {
    /// The night that starts on the evening of `date`, computed in local time.
    fn plan_night(&mut self, date: NaiveDate) -> Night {
        let p = self.p;
        let r = &mut self.rng;
        let next = date.succ_opt().unwrap_or(date);
        let mut bed = p.bed_min + r.normal(0.0, 15.0).round() as i64;
        if matches!(date.weekday(), Weekday::Fri | Weekday::Sat) {
            bed += r.int(15, 60);
        }
        let mut wake = p.wake_min + r.normal(0.0, 12.0).round() as i64;
        if matches!(next.weekday(), Weekday::Sat | Weekday::Sun) {
            wake += r.int(10, 45);
        }
        let start = local_to_utc(p.tz, date, bed);
        let end = local_to_utc(p.tz, next, wake).max(start + 5 * 3600);

        let mut stages: Vec<(i64, i64, Stage)> = Vec::with_capacity(32);
        let mut push = |s: i64, e: i64, stage: Stage| {
            if e <= s {
                return;
            }
            if let Some(last) = stages.last_mut()
                && last.2 == stage
                && last.1 == s
            {
                last.1 = e;
            } else {
                stages.push((s, e, stage));
            }
        };
        let latency = r.int(5, 25) * 60;
        push(start, start + latency, Stage::InBed);
        let asleep_end = end - r.int(2, 10) * 60;
        let mut t = start + latency;
        let mut cycle: f64 = 0.0;
        while t < asleep_end {
            let minutes = r.range(80.0, 110.0);
            let deep = (0.35 - 0.09 * cycle).max(0.03);
            let rem = (0.10 + 0.07 * cycle).min(0.40);
            let light = 1.0 - deep - rem;
            let parts = [
                (Stage::Light, light * 0.6),
                (Stage::Deep, deep),
                (Stage::Light, light * 0.4),
                (Stage::Rem, rem),
            ];
            for (stage, fraction) in parts {
                let m = (minutes * fraction).round() as i64;
                let e = (t + m * 60).min(asleep_end);
                push(t, e, stage);
                t = e;
            }
            if t < asleep_end && r.chance(0.35) {
                let e = (t + r.int(1, 5) * 60).min(asleep_end);
                push(t, e, Stage::Awake);
                t = e;
            }
            cycle += 1.0;
        }
        push(asleep_end, end, Stage::Awake);
        Night { start, end, stages }
    }

    /// The ring's stages of a night, and on some nights of some subjects (defect) the phone's
    /// `asleep` interval over them.
    fn write_night(&mut self, night: &Night, table: &mut Table) -> io::Result<()> {
        let p = self.p;
        let id = p.id.as_str();
        let rows = &mut self.rows;
        let mut phone = None;
        if self.phone_sleeper && rows.rng.chance(PHONE_NIGHT_RATE) {
            let start = night.start + rows.rng.int(3, 25) * 60;
            let end = night.end - rows.rng.int(0, 20) * 60;
            phone = Some((start, end));
        }
        let write_phone = |rows: &mut Rows<'_>, table: &mut Table, (s, e): (i64, i64)| {
            let copies = rows.emit(
                table,
                s,
                &[
                    Val::Str(id),
                    Val::Str("phone"),
                    Val::Time(s),
                    Val::Time(e),
                    Val::Str(Stage::Asleep.name()),
                ],
            )?;
            rows.counts.overlapping_sleep += u64::from(copies);
            io::Result::Ok(())
        };
        for &(s, e, stage) in &night.stages {
            if let Some(interval) = phone
                && interval.0 < s
            {
                write_phone(rows, table, interval)?;
                phone = None;
            }
            rows.emit(
                table,
                s,
                &[
                    Val::Str(id),
                    Val::Str("ring"),
                    Val::Time(s),
                    Val::Time(e),
                    Val::Str(stage.name()),
                ],
            )?;
        }
        if let Some(interval) = phone {
            write_phone(rows, table, interval)?;
        }
        Ok(())
    }

    /// Day `d` (local calendar `date`), between the night before and the night after.
    fn day(
        &mut self,
        d: u32,
        date: NaiveDate,
        prev: &Night,
        tonight: &Night,
        tables: &mut Tables,
    ) -> io::Result<()> {
        let p = self.p;
        let tz = p.tz;
        let day_start = local_to_utc(tz, date, 0);
        let day_end = local_to_utc(tz, date, 1440);
        let n = ((day_end - day_start) / 60).max(0) as usize;
        let wake = prev.end;
        let bed = tonight.start;
        let at = |t: i64| ((t - day_start).div_euclid(60)).clamp(0, n as i64) as usize;
        let r = &mut self.rng;

        // The watch charges once a day, after getting up or in the evening.
        let charge_len = r.int(30, 60) * 60;
        let charge = if r.chance(0.5) {
            let s = wake + r.int(5, 30) * 60;
            (s, s + charge_len)
        } else {
            let e = bed - r.int(45, 150) * 60;
            (e - charge_len, e)
        };
        let mut busy = vec![charge];

        self.workouts.clear();
        let count = if r.chance(p.workout_prob) {
            if r.chance(0.12) { 2 } else { 1 }
        } else {
            0
        };
        for _ in 0..count {
            let sport = Sport::ALL[r.weighted(&p.sport_weights)];
            let (lo, hi) = sport.minutes();
            let duration = r.int(lo, hi) * 60;
            let slots = [
                wake + r.int(20, 60) * 60,
                local_to_utc(tz, date, r.int(720, 765)),
                local_to_utc(tz, date, r.int(1050, 1170)),
            ];
            let first = r.int(0, 2) as usize;
            let (lo, hi) = sport.intensity();
            let intensity = r.range(lo, hi);
            let intervals = match sport {
                Sport::Run => r.chance(0.3),
                Sport::Ride => r.chance(0.2),
                Sport::Strength => true,
                Sport::Walk | Sport::Swim => false,
            };
            let peak = match sport {
                Sport::Strength => r.range(0.6, 0.7),
                _ => r.range(0.85, 0.9),
            };
            let (lo, hi) = sport.cadence();
            let cadence = r.int(lo, hi);
            let speed = match sport {
                Sport::Run => Some(p.run_speed),
                Sport::Ride => Some(p.ride_speed),
                Sport::Walk => Some(p.walk_speed),
                Sport::Swim => Some(p.swim_speed),
                Sport::Strength => None,
            };
            let distance_m = speed.map(|v| (v * duration as f64 * r.range(0.92, 1.05)).round());
            let weight = p.weight_kg + p.weight_trend * f64::from(d);
            let energy_kcal = (sport.met() * weight * duration as f64 / 3600.0).round();
            for k in 0..3 {
                let start = slots[(first + k) % 3];
                let end = start + duration;
                if start >= wake + 10 * 60 && end <= bed - 90 * 60 && !overlaps(&busy, start, end) {
                    busy.push((start, end));
                    self.workouts.push(Workout {
                        start,
                        end,
                        sport,
                        intensity,
                        intervals,
                        peak,
                        cadence,
                        distance_m,
                        energy_kcal,
                    });
                    break;
                }
            }
        }
        self.workouts.sort_by_key(|w| w.start);

        self.walks.clear();
        let awake_minutes = (bed - wake) / 60;
        for _ in 0..r.int(p.walks.0, p.walks.1) {
            let minutes = r.int(8, 25);
            let start = wake + r.int(30, (awake_minutes - 60 - minutes).max(30)) * 60;
            let end = start + minutes * 60;
            let cadence = r.int(95, 120);
            let intensity = r.range(0.22, 0.35);
            if end <= bed - 30 * 60 && !overlaps(&busy, start, end) {
                busy.push((start, end));
                self.walks.push(Walk {
                    start,
                    end,
                    cadence,
                    intensity,
                });
            }
        }
        self.walks.sort_by_key(|w| w.start);

        self.meals.clear();
        self.meals.push((wake + r.int(15, 50) * 60, "breakfast"));
        self.meals
            .push((local_to_utc(tz, date, r.int(720, 810)), "lunch"));
        if r.chance(p.snack_prob) {
            self.meals
                .push((local_to_utc(tz, date, r.int(930, 1020)), "snack"));
        }
        let dinner = local_to_utc(tz, date, r.int(1140, 1245)).min(bed - 45 * 60);
        self.meals.push((dinner, "dinner"));
        self.meals.sort_by_key(|m| m.0);

        let weigh_in = if r.chance(p.weigh_prob) {
            let weight = p.weight_kg + p.weight_trend * f64::from(d) + r.normal(0.0, 0.35);
            let fat = p
                .fat_pct
                .map(|f| f + 0.3 * p.weight_trend * f64::from(d) + r.normal(0.0, 0.5));
            Some((wake + r.int(5, 14) * 60, weight, fat))
        } else {
            None
        };

        // Defect: the watch is not worn for a few hours.
        let mut gap = None;
        if self.rows.enabled && self.rows.rng.chance(GAP_RATE) {
            let dr = &mut self.rows.rng;
            let len = dr.int(120, 360) * 60;
            let earliest = wake + 60 * 60;
            let latest = bed - 30 * 60 - len;
            if latest > earliest {
                let start = earliest + dr.int(0, (latest - earliest) / 60) * 60;
                let end = start + len;
                if !self.workouts.iter().any(|w| w.start < end && start < w.end) {
                    gap = Some((start, end));
                    self.rows.counts.wear_gaps += 1;
                }
            }
        }

        // Minute by minute.
        self.hr_min.clear();
        self.hr_min.resize(n, 0);
        self.steps_min.clear();
        self.steps_min.resize(n, 0);
        self.awake_min.clear();
        self.awake_min.resize(n, false);
        self.worn_min.clear();
        self.worn_min.resize(n, false);
        let (mut prev_cursor, mut tonight_cursor, mut workout_i, mut walk_i, mut meal_i) =
            (0, 0, 0, 0, 0);
        let reserve = p.max_hr - p.rest_hr;
        for i in 0..n {
            let t = day_start + 60 * i as i64;
            let stage = prev
                .stage_at(&mut prev_cursor, t)
                .or_else(|| tonight.stage_at(&mut tonight_cursor, t));
            let (target, k, sd, steps) = match stage {
                Some(stage) => (p.rest_hr * stage.hr_factor(), 0.2, 0.5, 0),
                None => {
                    let hour = i as f64 / 60.0;
                    let mut base = p.rest_hr + 7.0 + 5.0 * ((hour - 9.0) / 24.0 * TAU).sin();
                    while meal_i < self.meals.len() && self.meals[meal_i].0 <= t {
                        meal_i += 1;
                    }
                    if meal_i > 0 && t - self.meals[meal_i - 1].0 < 3600 {
                        base += 4.0;
                    }
                    while workout_i < self.workouts.len() && self.workouts[workout_i].end <= t {
                        workout_i += 1;
                    }
                    while walk_i < self.walks.len() && self.walks[walk_i].end <= t {
                        walk_i += 1;
                    }
                    if let Some(w) = self.workouts.get(workout_i).filter(|w| w.start <= t) {
                        let m = (t - w.start) / 60;
                        let duration = (w.end - w.start) / 60;
                        let mut f = w.intensity;
                        if w.intervals && m >= 8 && m < duration - 6 && m % 7 < 3 {
                            f = w.peak;
                        }
                        if m >= duration - 4 {
                            f *= 0.75;
                        }
                        let target = (p.rest_hr + f * reserve).min(0.9 * p.max_hr);
                        let steps = match w.sport {
                            Sport::Strength => r.int(0, w.cadence),
                            _ if w.cadence > 0 => w.cadence + r.int(-4, 4),
                            _ => 0,
                        };
                        (target, 0.3, 1.0, steps)
                    } else if let Some(w) = self.walks.get(walk_i).filter(|w| w.start <= t) {
                        let target = p.rest_hr + w.intensity * reserve;
                        (target, 0.3, 1.0, w.cadence + r.int(-4, 4))
                    } else if r.chance(p.potter_prob) {
                        let steps = r.int(5, 60);
                        (base + steps as f64 / 5.0, 0.25, 1.0, steps)
                    } else {
                        (base, 0.25, 1.0, 0)
                    }
                }
            };
            self.hr += k * (target - self.hr) + r.normal(0.0, sd);
            let bpm = (self.hr + r.normal(0.0, 0.6)).round().clamp(35.0, p.max_hr);
            self.hr_min[i] = bpm as u16;
            self.steps_min[i] = steps.clamp(0, 250) as u16;
            self.awake_min[i] = stage.is_none();
            let off = (charge.0 <= t && t < charge.1)
                || gap.is_some_and(|(s, e)| s <= t && t < e)
                || (stage.is_some() && !p.watch_at_night);
            self.worn_min[i] = !off;
        }

        let id = p.id.as_str();

        // heart_rate: one reading per minute worn.
        for i in 0..n {
            if !self.worn_min[i] {
                continue;
            }
            let t = day_start + 60 * i as i64;
            let mut bpm = Val::Int(i64::from(self.hr_min[i]));
            let mut kind = 0;
            if self.rows.enabled {
                let u = self.rows.rng.unit();
                if u < HR_OUT_OF_RANGE_RATE {
                    kind = 1;
                    bpm = Val::Int(if self.rows.rng.chance(0.5) { 0 } else { 300 });
                } else if u < HR_OUT_OF_RANGE_RATE + UNPARSEABLE_RATE {
                    kind = 2;
                    bpm = Val::Str("--");
                }
            }
            let copies = self.rows.emit(
                &mut tables.heart_rate,
                t,
                &[Val::Str(id), Val::Str("watch"), Val::Time(t), bpm],
            )?;
            match kind {
                1 => self.rows.counts.hr_out_of_range += u64::from(copies),
                2 => self.rows.counts.unparseable_values += u64::from(copies),
                _ => {}
            }
        }

        // steps: 15-minute intervals with waking minutes while the watch is worn.
        for j in 0..n.div_ceil(15) {
            let chunk = 15 * j..(15 * j + 15).min(n);
            if !chunk.clone().any(|i| self.awake_min[i] && self.worn_min[i]) {
                continue;
            }
            let count: i64 = chunk
                .clone()
                .filter(|&i| self.worn_min[i])
                .map(|i| i64::from(self.steps_min[i]))
                .sum();
            let s = day_start + 900 * j as i64;
            let e = s + 60 * chunk.len() as i64;
            self.rows.emit(
                &mut tables.steps,
                s,
                &[
                    Val::Str(id),
                    Val::Str("watch"),
                    Val::Time(s),
                    Val::Time(e),
                    Val::Int(count),
                ],
            )?;
        }

        // body: the morning weigh-in.
        if let Some((t, weight, fat)) = weigh_in {
            let h = p.height_cm / 100.0;
            let bmi = Val::Dec(weight / (h * h), 1);
            let fat = fat.map_or(Val::Missing, |f| Val::Dec(f, 1));
            if self.defects_in_body {
                let (value, unit) = if self.rows.rng.chance(POUNDS_RATE) {
                    (Val::Dec(weight * LB_PER_KG, 1), Val::Str("[lb_av]"))
                } else {
                    (Val::Dec(weight, 1), Val::Missing)
                };
                let copies = self.rows.emit(
                    &mut tables.body,
                    t,
                    &[
                        Val::Str(id),
                        Val::Str("scale"),
                        Val::Time(t),
                        value,
                        unit,
                        fat,
                        bmi,
                    ],
                )?;
                if matches!(unit, Val::Str(_)) {
                    self.rows.counts.weight_in_pounds += u64::from(copies);
                }
            } else {
                self.rows.emit(
                    &mut tables.body,
                    t,
                    &[
                        Val::Str(id),
                        Val::Str("scale"),
                        Val::Time(t),
                        Val::Dec(weight, 1),
                        fat,
                        bmi,
                    ],
                )?;
            }
        }

        // workouts, with the heart rate of their minutes.
        for w in &self.workouts {
            let minutes = &self.hr_min[at(w.start)..at(w.end)];
            let (avg, max) = if minutes.is_empty() {
                (Val::Missing, Val::Missing)
            } else {
                let sum: u64 = minutes.iter().map(|&v| u64::from(v)).sum();
                let avg = (sum as f64 / minutes.len() as f64).round() as i64;
                let max = minutes.iter().copied().max().unwrap_or(0);
                (Val::Int(avg), Val::Int(i64::from(max)))
            };
            self.rows.emit(
                &mut tables.workouts,
                w.start,
                &[
                    Val::Str(id),
                    Val::Str("watch"),
                    Val::Time(w.start),
                    Val::Time(w.end),
                    Val::Str(w.sport.name()),
                    w.distance_m.map_or(Val::Missing, |m| Val::Dec(m, 0)),
                    Val::Dec(w.energy_kcal, 0),
                    avg,
                    max,
                ],
            )?;
        }

        // meals: one row per food.
        for &(t, meal) in &self.meals {
            foods::compose(r, meal, p.vegetarian, &mut self.items);
            for &(food, grams) in &self.items {
                self.rows.emit(
                    &mut tables.meals,
                    t,
                    &[
                        Val::Str(id),
                        Val::Str("app"),
                        Val::Time(t),
                        Val::Str(meal),
                        Val::Str(food.id),
                        Val::Dec(grams, 0),
                    ],
                )?;
            }
        }
        Ok(())
    }
}
