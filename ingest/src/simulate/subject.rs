//! The simulated subjects: a profile drawn once per subject from the seed (sex, age, heart
//! rates, time zone, chronotype, weight and its trend, activity), and local-time helpers.

use chrono::{Datelike, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

use super::{
    SimulationOptions,
    rng::{Purpose, Rng},
};

/// Home time zones and how often subjects live there.
pub(super) const TIMEZONES: &[(&str, Tz, f64)] = &[
    ("Europe/Paris", Tz::Europe__Paris, 0.30),
    ("America/New_York", Tz::America__New_York, 0.25),
    ("UTC", Tz::UTC, 0.15),
    ("Asia/Tokyo", Tz::Asia__Tokyo, 0.15),
    ("Australia/Sydney", Tz::Australia__Sydney, 0.15),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sport {
    Run,
    Ride,
    Walk,
    Strength,
    Swim,
}

impl Sport {
    pub(super) const ALL: [Sport; 5] = [
        Sport::Run,
        Sport::Ride,
        Sport::Walk,
        Sport::Strength,
        Sport::Swim,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Sport::Run => "run",
            Sport::Ride => "ride",
            Sport::Walk => "walk",
            Sport::Strength => "strength",
            Sport::Swim => "swim",
        }
    }

    /// Duration range in minutes.
    pub(super) fn minutes(self) -> (i64, i64) {
        match self {
            Sport::Run => (25, 70),
            Sport::Ride => (40, 90),
            Sport::Walk => (30, 80),
            Sport::Strength => (30, 60),
            Sport::Swim => (20, 50),
        }
    }

    /// Steady intensity as a fraction of the heart-rate reserve.
    pub(super) fn intensity(self) -> (f64, f64) {
        match self {
            Sport::Run => (0.65, 0.80),
            Sport::Ride => (0.55, 0.75),
            Sport::Walk => (0.30, 0.45),
            Sport::Strength => (0.40, 0.55),
            Sport::Swim => (0.55, 0.72),
        }
    }

    /// Metabolic equivalent, for the energy.
    pub(super) fn met(self) -> f64 {
        match self {
            Sport::Run => 9.8,
            Sport::Ride => 7.5,
            Sport::Walk => 3.8,
            Sport::Strength => 5.0,
            Sport::Swim => 7.0,
        }
    }

    /// Steps per minute.
    pub(super) fn cadence(self) -> (i64, i64) {
        match self {
            Sport::Run => (155, 182),
            Sport::Walk => (100, 125),
            Sport::Strength => (0, 12),
            Sport::Ride | Sport::Swim => (0, 0),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Profile {
    pub index: usize,
    /// Pseudonym, `S0001`…
    pub id: String,
    pub female: bool,
    pub birth_year: i32,
    pub height_cm: f64,
    pub rest_hr: f64,
    pub max_hr: f64,
    pub tz_name: &'static str,
    pub tz: Tz,
    /// Usual bedtime, minutes after the local midnight of the evening's day (may pass 1440).
    pub bed_min: i64,
    /// Usual wake time, minutes after local midnight.
    pub wake_min: i64,
    pub weight_kg: f64,
    /// kg per day (negative: losing weight).
    pub weight_trend: f64,
    /// Body fat at the start, when the scale measures it.
    pub fat_pct: Option<f64>,
    /// Probability of a workout on a given day.
    pub workout_prob: f64,
    pub sport_weights: [f64; 5],
    /// Speeds in m/s.
    pub run_speed: f64,
    pub ride_speed: f64,
    pub walk_speed: f64,
    pub swim_speed: f64,
    pub weigh_prob: f64,
    pub snack_prob: f64,
    /// Probability that an idle waking minute has a few steps.
    pub potter_prob: f64,
    /// Walks per day (range).
    pub walks: (i64, i64),
    pub watch_at_night: bool,
    pub vegetarian: bool,
}

impl Profile {
    pub(super) fn generate(options: &SimulationOptions, index: usize) -> Profile {
        let mut r = Rng::derive(options.seed, index, Purpose::Profile);
        let female = r.chance(0.5);
        let age = r.int(20, 75);
        let birth_year = options.start.year() - age as i32;
        let height_cm = if female {
            r.normal(164.0, 6.5)
        } else {
            r.normal(177.5, 7.0)
        }
        .clamp(148.0, 202.0);
        let height_cm = (height_cm * 10.0).round() / 10.0;
        // 0 (sedentary) to 1 (very active).
        let activity = r.unit();
        let rest_hr = (72.0 - 14.0 * activity + r.normal(0.0, 4.0)).clamp(48.0, 75.0);
        let max_hr = (208.0 - 0.7 * age as f64 + r.normal(0.0, 3.0)).round();
        let weights: Vec<f64> = TIMEZONES.iter().map(|t| t.2).collect();
        let (tz_name, tz, _) = TIMEZONES[r.weighted(&weights)];
        let bed_min = r.int(1350, 1470);
        let need = r.int(420, 510);
        let wake_min = (bed_min - 1440 + need).clamp(390, 480);
        let bmi = r.normal(25.0, 3.5).clamp(19.0, 34.0);
        let h = height_cm / 100.0;
        let weight_kg = (bmi * h * h).clamp(50.0, 110.0);
        let u = r.unit();
        let weight_trend = if u < 0.3 {
            -r.range(0.4, 0.6) / 7.0
        } else if u < 0.4 {
            r.range(0.1, 0.25) / 7.0
        } else {
            r.normal(0.0, 0.03) / 7.0
        };
        let bmi = weight_kg / (h * h);
        // Deurenberg's estimate from BMI, age and sex.
        let fat = 1.2 * bmi + 0.23 * age as f64 - if female { 5.4 } else { 16.2 };
        let fat = (fat + r.normal(0.0, 2.0)).clamp(8.0, 45.0);
        let fat_pct = r.chance(0.7).then_some(fat);
        let workout_prob = ((1.5 + 3.0 * activity + r.range(-0.5, 0.5)) / 7.0).clamp(0.1, 0.8);
        let mut sport_weights = [0.0; 5];
        for w in &mut sport_weights {
            *w = r.range(0.2, 1.0);
        }
        sport_weights[r.int(0, 4) as usize] *= 3.0;
        let run_speed = 2.4 + 1.3 * activity + r.range(-0.2, 0.2);
        let ride_speed = 5.0 + 2.5 * activity + r.range(-0.5, 0.5);
        let walk_speed = r.range(1.25, 1.6);
        let swim_speed = 0.5 + 0.35 * activity + r.range(-0.05, 0.05);
        let weigh_prob = r.range(0.6, 0.95);
        let snack_prob = r.range(0.3, 0.8);
        let potter_prob = 0.12 + 0.15 * activity;
        let walks = if activity < 0.3 { (1, 2) } else { (2, 4) };
        let watch_at_night = r.chance(0.8);
        let vegetarian = r.chance(0.1);
        Profile {
            index,
            id: format!("S{:04}", index + 1),
            female,
            birth_year,
            height_cm,
            rest_hr,
            max_hr,
            tz_name,
            tz,
            bed_min,
            wake_min,
            weight_kg,
            weight_trend,
            fat_pct,
            workout_prob,
            sport_weights,
            run_speed,
            ride_speed,
            walk_speed,
            swim_speed,
            weigh_prob,
            snack_prob,
            potter_prob,
            walks,
            watch_at_night,
            vegetarian,
        }
    }

    pub(super) fn sex(&self) -> &'static str {
        if self.female { "female" } else { "male" }
    }
}

/// The instant (seconds since the epoch) of a local wall time: `minutes` after the local
/// midnight of `date` (may be negative or pass 1440). A wall time skipped by a daylight-saving
/// change is taken one hour later; a repeated one at its first occurrence.
pub(super) fn local_to_utc(tz: Tz, date: NaiveDate, minutes: i64) -> i64 {
    let naive = date.and_time(NaiveTime::MIN) + TimeDelta::minutes(minutes);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + TimeDelta::hours(1)))
                .earliest()
        })
        .map_or_else(|| naive.and_utc().timestamp(), |t| t.timestamp())
}

/// Seconds east of UTC of a time zone at an instant.
pub(super) fn offset_at(tz: Tz, t: i64) -> i64 {
    let utc = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_local_times_follow_daylight_saving() {
        let paris = Tz::Europe__Paris;
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let midnight = local_to_utc(paris, d, 0);
        let next = local_to_utc(paris, d, 1440);
        assert_eq!(
            next - midnight,
            23 * 3600,
            "the day of the change lasts 23 h"
        );
        // 02:30 does not exist that night: taken as 03:30 CEST = 01:30 UTC, 150 min after
        // midnight CET (23:00 UTC), like 04:00 (240 min of wall clock, 180 elapsed).
        assert_eq!(local_to_utc(paris, d, 150) - midnight, 150 * 60);
        assert_eq!(local_to_utc(paris, d, 90) - midnight, 90 * 60);
        assert_eq!(local_to_utc(paris, d, 240) - midnight, 180 * 60);
        assert_eq!(offset_at(paris, midnight), 3600);
        assert_eq!(offset_at(paris, next), 7200);
        assert_eq!(offset_at(Tz::Asia__Tokyo, next), 9 * 3600);
    }

    #[test]
    fn simulate_profiles_are_plausible() {
        let options = SimulationOptions::default();
        for i in 0..300 {
            let p = Profile::generate(&options, i);
            let age = 2026 - p.birth_year;
            assert!((20..=75).contains(&age), "{age}");
            assert!((48.0..=75.0).contains(&p.rest_hr), "{}", p.rest_hr);
            assert!((p.max_hr - (208.0 - 0.7 * age as f64)).abs() <= 12.0);
            assert!((50.0..=110.0).contains(&p.weight_kg), "{}", p.weight_kg);
            assert!((1350..=1470).contains(&p.bed_min) && (390..=480).contains(&p.wake_min));
            assert_eq!(p.id, format!("S{:04}", i + 1));
        }
    }
}
