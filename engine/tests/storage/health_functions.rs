//! The health SQL functions through the real engine: readings written, then aggregated per
//! subject and local day with each subject's own zone and maximum heart rate from
//! `meta.subjects`.

use std::sync::Arc;

use arrow::{
    array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray},
    datatypes::Float64Type,
    util::pretty::pretty_format_batches,
};
use catalog::{Sex, SubjectId, SubjectProfile, testing::TestDatabase};
use engine::Engine;

use crate::support::{HOUR, Harness, MARCH_1, Reading, SECOND};

const MINUTE: i64 = 60 * SECOND;

async fn table(engine: &Engine, sql: &str) -> String {
    let output = engine.query("default", sql).await.unwrap();
    pretty_format_batches(&output.batches).unwrap().to_string()
}

pub async fn daily_health_metrics_by_local_day(db: TestDatabase) {
    let h = Harness::new(db).await;
    let s = h.subjects(2).await;
    let profiles = [
        SubjectProfile {
            sex: Some(Sex::Female),
            max_hr: Some(200),
            timezone: "Europe/Paris".into(),
            ..SubjectProfile::default()
        },
        SubjectProfile {
            birth_year: Some(1986),
            timezone: "America/New_York".into(),
            ..SubjectProfile::default()
        },
    ];
    for (&id, profile) in s.iter().zip(profiles) {
        h.catalog
            .subjects()
            .update_profile(SubjectId(id), profile)
            .await
            .unwrap();
    }

    // S1, in Paris (UTC+1 in March): half an hour at 50 bpm from local midnight starting
    // 2026-03-01, half an hour at 150 bpm (zone 3 of 200) before the next local midnight,
    // then half an hour at 60 bpm on 2026-03-02. By UTC days the 50 bpm would be February's.
    let mut rows: Vec<Reading> = Vec::new();
    let half_hour = |start: i64, bpm: f64| (0..30).map(move |m| (start + m * MINUTE, bpm));
    let s1 = half_hour(MARCH_1 - HOUR, 50.0)
        .chain(half_hour(MARCH_1 + 22 * HOUR + 30 * MINUTE, 150.0))
        .chain(half_hour(MARCH_1 + 23 * HOUR, 60.0));
    rows.extend(s1.map(|(time, bpm)| (s[0], "watch", time, bpm)));
    // S2, in New York: three readings at 22:00 local on 2026-02-28.
    rows.extend((0..3).map(|m| (s[1], "watch", MARCH_1 + 3 * HOUR + m * MINUTE, 70.0)));
    h.write(&rows).await.unwrap();

    let daily = "\
        SELECT s.pseudonym, local_day(h.time, s.timezone) AS day, \
               resting_heart_rate(h.bpm, h.time) AS rest, \
               round(time_weighted_avg(h.bpm, h.time), 3) AS avg, \
               time_in_zone(h.bpm, h.time, coalesce(s.max_hr, max_hr(2026 - s.birth_year)), 3) \
                   AS zone_3_minutes, \
               max(hr_zone(h.bpm, coalesce(s.max_hr, max_hr(2026 - s.birth_year)))) AS top_zone \
        FROM heart_rate h JOIN meta.subjects s USING (subject_id) \
        GROUP BY 1, 2 ORDER BY 1, 2";
    // 2026-03-01 of S1: 50 bpm for 29 minutes and then 23 h 01 min until the 150 bpm, 150 for
    // 29 minutes (the last reading of the day holds for nothing): (50 × 1410 + 150 × 29) / 1439.
    assert_eq!(
        table(&h.engine, daily).await,
        "\
+-----------+------------+------+--------+----------------+----------+
| pseudonym | day        | rest | avg    | zone_3_minutes | top_zone |
+-----------+------------+------+--------+----------------+----------+
| S1        | 2026-03-01 | 50.0 | 52.015 | 29.0           | 3        |
| S1        | 2026-03-02 | 60.0 | 60.0   | 0.0            | 0        |
| S2        | 2026-02-28 | 70.0 | 70.0   | 0.0            | 0        |
+-----------+------------+------+--------+----------------+----------+"
    );

    // Training impulse per local day, with that day's resting heart rate: on 2026-03-01 S1
    // (female, resting 50, max 200) spent 29 minutes at 150 bpm, two thirds of her reserve.
    let impulse = "\
        WITH rest AS ( \
            SELECT subject_id, local_day(h.time, s.timezone) AS day, \
                   resting_heart_rate(h.bpm, h.time) AS rest_hr \
            FROM heart_rate h JOIN meta.subjects s USING (subject_id) GROUP BY 1, 2) \
        SELECT r.day, trimp(h.bpm, h.time, r.rest_hr, s.max_hr, s.sex) AS trimp \
        FROM heart_rate h JOIN meta.subjects s USING (subject_id) \
        JOIN rest r ON r.subject_id = h.subject_id AND r.day = local_day(h.time, s.timezone) \
        WHERE s.pseudonym = 'S1' GROUP BY 1 ORDER BY 1";
    let output = h.engine.query("default", impulse).await.unwrap();
    let trimps: Vec<f64> = output
        .batches
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Float64Type>().values().to_vec())
        .collect();
    let reserve: f64 = 2.0 / 3.0;
    let expected = [29.0 * reserve * 0.64 * (1.67 * reserve).exp(), 0.0];
    assert_eq!(trimps.len(), 2);
    for (got, want) in trimps.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{trimps:?} != {expected:?}");
    }

    // A night recorded by two devices: the watch's session and the ring's stages overlap by an
    // hour, which counts once; the ring's awake stage is left out.
    let night = [
        ("watch", 22 * HOUR, 30 * HOUR, "asleep"),
        ("ring", 29 * HOUR, 31 * HOUR, "light"),
        ("ring", 31 * HOUR, 31 * HOUR + 30 * MINUTE, "awake"),
    ];
    let sleep = RecordBatch::try_from_iter(vec![
        (
            "subject_id",
            Arc::new(Int64Array::from(vec![s[0]; night.len()])) as _,
        ),
        (
            "source",
            Arc::new(StringArray::from_iter_values(night.iter().map(|n| n.0))) as _,
        ),
        (
            "time",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                night.iter().map(|n| MARCH_1 + n.1),
            )) as _,
        ),
        (
            "end_time",
            Arc::new(TimestampNanosecondArray::from_iter_values(
                night.iter().map(|n| MARCH_1 + n.2),
            )) as _,
        ),
        (
            "stage",
            Arc::new(StringArray::from_iter_values(night.iter().map(|n| n.3))) as _,
        ),
    ])
    .unwrap();
    h.engine
        .write("default", "sleep", sleep, None)
        .await
        .unwrap();
    let nights = "\
        SELECT local_day(z.end_time, s.timezone) AS night_ending, \
               asleep_minutes(z.time, z.end_time) AS asleep \
        FROM sleep z JOIN meta.subjects s USING (subject_id) \
        WHERE z.stage NOT IN ('awake', 'in_bed') GROUP BY 1";
    assert_eq!(
        table(&h.engine, nights).await,
        "\
+--------------+--------+
| night_ending | asleep |
+--------------+--------+
| 2026-03-02   | 540.0  |
+--------------+--------+"
    );
}
