//! Garmin Training Center (TCX) activities: every `Trackpoint` becomes a row of
//! `activity_samples`, every `Activity` a row of `workouts`.
//!
//! | TCX | stream.column |
//! |---|---|
//! | `Trackpoint/Time` | activity_samples.time |
//! | `Position/LatitudeDegrees`, `LongitudeDegrees` | activity_samples.lat, lon |
//! | `AltitudeMeters` | activity_samples.altitude_m |
//! | `Trackpoint/DistanceMeters` | activity_samples.distance_m |
//! | `HeartRateBpm/Value` | activity_samples.heart_rate |
//! | `Cadence`, else extension `RunCadence` | activity_samples.cadence |
//! | extension `TPX/Speed` (m/s) | activity_samples.speed_m_s |
//! | extension `TPX/Watts` | activity_samples.power_w |
//! | `Activity` `Sport` (`Running` → `run`, `Biking` → `ride`, `Other` → `other`) | workouts.sport |
//! | `Id`, else the first `Lap` `StartTime` | workouts.time |
//! | start + the laps' `TotalTimeSeconds` | workouts.end_time |
//! | the laps' `DistanceMeters`, `Calories`, summed | workouts.distance_m, energy_kcal |
//! | the laps' `AverageHeartRateBpm` weighted by lap time; the highest `MaximumHeartRateBpm` | workouts.avg_hr, max_hr |
//!
//! Extension elements are matched by local name, whatever prefix (`ns3:`, `ax:`, …) the
//! file binds. `RunCadence` is written as Garmin counts it (strides of one foot per minute,
//! half the steps). `TotalTimeSeconds` is timer time: a workout paused on the watch ends
//! earlier than its last trackpoint. Without any readable lap time, the end is the latest
//! trackpoint time. A lap value that is not a number is passed on as the workout's value, so
//! that cleaning rejects the workout naming it; heart rates outside 25–250 /min do not count.
//!
//! Only the trackpoints of activities are read: those of `Courses` are planned routes. A
//! trackpoint without a time is passed on without one, for cleaning to reject with its
//! record number. Samples are numbered by `Trackpoint` elements (1-based, in file order,
//! those of courses included), workouts by `Activity` elements. `source` is the activity's
//! `Creator/Name` (the device), else `tcx`.

use quick_xml::{Decoder, events::BytesStart};

use super::{
    Input, Sink,
    apple_health::attributes,
    track::{
        BATCH_ROWS, Fault, HeartRates, Path, Rows, Sample, Span, Step, Workout, decimal, later,
        number, sport, value, walk,
    },
};
use crate::Result;

const DEFAULT_SOURCE: &str = "tcx";
/// The sport of an activity that names none.
const UNKNOWN_SPORT: &str = "other";

/// Whether the first bytes hold a `<TrainingCenterDatabase>` root element.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let needle = b"<TrainingCenterDatabase";
    head.windows(needle.len()).any(|w| w == needle)
}

/// Reads a TCX file into extracts of `activity_samples` and `workouts`.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, sink, BATCH_ROWS)
}

fn read_in_batches(input: Input, sink: &mut Sink, batch_rows: usize) -> Result<()> {
    let mut tcx = Tcx {
        rows: Rows::new(input.name.clone(), batch_rows),
        trackpoints: 0,
        activities: 0,
        activity: None,
        lap: None,
        point: None,
    };
    walk(
        &input,
        "TCX file",
        "TrainingCenterDatabase",
        |path, step| match step {
            Step::Open(element, decoder) => tcx.open(path, element, decoder),
            Step::Close(text) => tcx.close(path, text),
        },
    )?;
    tcx.rows.close_part(DEFAULT_SOURCE)?;
    tcx.rows.hand_on(sink)
}

struct Tcx {
    rows: Rows,
    /// `Trackpoint` elements met.
    trackpoints: u64,
    /// `Activity` elements met.
    activities: u64,
    activity: Option<Activity>,
    lap: Option<Lap>,
    point: Option<Point>,
}

/// An `Activity` being read, its laps summed up.
#[derive(Default)]
struct Activity {
    depth: usize,
    record: u64,
    sport: Option<String>,
    id: Option<String>,
    first_lap_start: Option<String>,
    creator: Option<String>,
    seconds: Total,
    distance: Total,
    calories: Total,
    heart: HeartRates,
    /// A lap's heart rate that is not a number, passed on as the workout's.
    unreadable_avg_hr: Option<String>,
    unreadable_max_hr: Option<String>,
    points: Span,
}

/// A `Lap` being read, its values as written.
#[derive(Default)]
struct Lap {
    depth: usize,
    seconds: Option<String>,
    distance: Option<String>,
    calories: Option<String>,
    avg_hr: Option<String>,
    max_hr: Option<String>,
}

/// A `Trackpoint` being read.
struct Point {
    depth: usize,
    sample: Sample,
    run_cadence: Option<String>,
}

/// The sum of a lap value over an activity, or the first text that is not a number.
#[derive(Debug, Default)]
struct Total {
    sum: f64,
    seen: bool,
    unreadable: Option<String>,
}

impl Total {
    fn add(&mut self, text: Option<&str>) {
        let Some(text) = text else { return };
        match number(text) {
            Some(v) => {
                self.sum += v;
                self.seen = true;
            }
            None => {
                self.unreadable.get_or_insert_with(|| text.to_owned());
            }
        }
    }

    /// The sum when every value was a number.
    fn readable(&self) -> Option<f64> {
        (self.seen && self.unreadable.is_none()).then_some(self.sum)
    }

    /// What the workout row holds: the sum, or the text cleaning will reject.
    fn text(&self) -> Option<String> {
        self.unreadable
            .clone()
            .or_else(|| self.seen.then(|| decimal(self.sum, 2)))
    }
}

impl Tcx {
    fn open(&mut self, path: Path, element: &BytesStart, decoder: Decoder) -> Result<(), Fault> {
        match path.name() {
            b"Activity" => {
                self.activities += 1;
                let [sport] = attributes(element, decoder, [b"Sport"]).map_err(Fault::Malformed)?;
                self.activity = Some(Activity {
                    depth: path.depth(),
                    record: self.activities,
                    sport,
                    ..Activity::default()
                });
            }
            b"Lap" => {
                if let Some(activity) = &mut self.activity {
                    let [start] =
                        attributes(element, decoder, [b"StartTime"]).map_err(Fault::Malformed)?;
                    if activity.first_lap_start.is_none() {
                        activity.first_lap_start = start.filter(|s| !s.trim().is_empty());
                    }
                    self.lap = Some(Lap {
                        depth: path.depth(),
                        ..Lap::default()
                    });
                }
            }
            b"Trackpoint" => {
                self.trackpoints += 1;
                if self.activity.is_some() {
                    self.point = Some(Point {
                        depth: path.depth(),
                        sample: Sample {
                            record: self.trackpoints,
                            ..Sample::default()
                        },
                        run_cadence: None,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, path: Path, text: &str) -> Result<(), Fault> {
        if let Some(point) = &mut self.point {
            if path.depth() == point.depth {
                if let Some(point) = self.point.take() {
                    self.point_read(point)?;
                }
                return Ok(());
            }
            let child = path.depth() == point.depth + 1;
            let sample = &mut point.sample;
            let slot = match (path.name(), path.parent()) {
                (b"Time", _) if child => &mut sample.time,
                (b"LatitudeDegrees", b"Position") => &mut sample.lat,
                (b"LongitudeDegrees", b"Position") => &mut sample.lon,
                (b"AltitudeMeters", _) if child => &mut sample.altitude,
                (b"DistanceMeters", _) if child => &mut sample.distance,
                (b"Value", b"HeartRateBpm") => &mut sample.heart_rate,
                (b"Cadence", _) if child => &mut sample.cadence,
                (b"RunCadence", _) => &mut point.run_cadence,
                (b"Speed", _) => &mut sample.speed,
                (b"Watts", _) => &mut sample.power,
                _ => return Ok(()),
            };
            *slot = value(text);
            return Ok(());
        }
        if let Some(lap) = &mut self.lap {
            if path.depth() == lap.depth {
                if let (Some(lap), Some(activity)) = (self.lap.take(), &mut self.activity) {
                    activity.add_lap(&lap);
                }
                return Ok(());
            }
            let Some(level) = path.depth().checked_sub(lap.depth) else {
                return Ok(());
            };
            let slot = match (level, path.name(), path.parent()) {
                (1, b"TotalTimeSeconds", _) => &mut lap.seconds,
                (1, b"DistanceMeters", _) => &mut lap.distance,
                (1, b"Calories", _) => &mut lap.calories,
                (2, b"Value", b"AverageHeartRateBpm") => &mut lap.avg_hr,
                (2, b"Value", b"MaximumHeartRateBpm") => &mut lap.max_hr,
                _ => return Ok(()),
            };
            *slot = value(text);
            return Ok(());
        }
        let Some(activity) = &mut self.activity else {
            return Ok(());
        };
        let Some(level) = path.depth().checked_sub(activity.depth) else {
            return Ok(());
        };
        match (level, path.name(), path.parent()) {
            (0, ..) => {
                if let Some(activity) = self.activity.take() {
                    self.activity_read(activity)?;
                }
            }
            (1, b"Id", _) => activity.id = value(text),
            (2, b"Name", b"Creator") => activity.creator = value(text),
            _ => {}
        }
        Ok(())
    }

    fn point_read(&mut self, point: Point) -> Result<()> {
        let mut sample = point.sample;
        if sample.cadence.is_none() {
            sample.cadence = point.run_cadence;
        }
        if let (Some(activity), Some(time)) = (&mut self.activity, &sample.time) {
            activity.points.add(time);
        }
        self.rows.sample(&sample)
    }

    fn activity_read(&mut self, activity: Activity) -> Result<()> {
        let start = match &activity.id {
            Some(id) if crate::times::parse(id).is_some() => Some(id.clone()),
            id => activity.first_lap_start.clone().or_else(|| id.clone()),
        };
        let end = start
            .as_deref()
            .zip(activity.seconds.readable())
            .and_then(|(start, seconds)| later(start, seconds))
            .or_else(|| activity.points.latest());
        self.rows.workout(&Workout {
            record: activity.record,
            time: start,
            end_time: end,
            sport: Some(
                activity
                    .sport
                    .as_deref()
                    .map_or_else(|| UNKNOWN_SPORT.to_owned(), sport),
            ),
            distance: activity.distance.text(),
            energy: activity.calories.text(),
            avg_hr: activity
                .unreadable_avg_hr
                .clone()
                .or_else(|| activity.heart.mean()),
            max_hr: activity
                .unreadable_max_hr
                .clone()
                .or_else(|| activity.heart.max()),
        })?;
        let source = activity.creator.as_deref().unwrap_or(DEFAULT_SOURCE);
        self.rows.close_part(source)?;
        Ok(())
    }
}

impl Activity {
    fn add_lap(&mut self, lap: &Lap) {
        self.seconds.add(lap.seconds.as_deref());
        self.distance.add(lap.distance.as_deref());
        self.calories.add(lap.calories.as_deref());
        let seconds = lap.seconds.as_deref().and_then(number).unwrap_or(0.0);
        if let Some(avg) = &lap.avg_hr {
            if number(avg).is_none() {
                self.unreadable_avg_hr.get_or_insert_with(|| avg.clone());
            }
            self.heart.add_to_mean(avg, seconds);
        }
        if let Some(max) = &lap.max_hr {
            if number(max).is_none() {
                self.unreadable_max_hr.get_or_insert_with(|| max.clone());
            }
            self.heart.add_to_max(max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        extract::Extract,
        formats::track::testing::{Found, found},
    };

    const NAME: &str = "activities/run.tcx";
    const RUN: &str = include_str!("../../tests/fixtures/tcx/garmin_run_laps.tcx");
    const MALFORMED: &str = include_str!("../../tests/fixtures/tcx/malformed.tcx");

    fn read_all(xml: &str, batch_rows: usize) -> Result<Vec<Extract>> {
        let mut extracts = Vec::new();
        read_in_batches(
            Input::bytes(NAME, xml.as_bytes().to_vec()),
            &mut |extract| {
                extracts.push(extract);
                Ok(())
            },
            batch_rows,
        )?;
        Ok(extracts)
    }

    fn stream(xml: &str, stream: &str, source: &str) -> Found {
        found(&read_all(xml, BATCH_ROWS).unwrap(), stream, source)
    }

    /// A TCX document around `activities`, with the namespaces Garmin Connect binds.
    fn tcx(activities: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2" xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2">
{activities}
</TrainingCenterDatabase>"#
        )
    }

    #[test]
    fn tcx_files_are_sniffed() {
        assert!(sniff(RUN.as_bytes()));
        assert!(sniff(MALFORMED.as_bytes()));
        assert!(!sniff(b"<?xml version=\"1.0\"?><gpx version=\"1.1\">"));
    }

    #[test]
    fn trackpoints_carry_their_extensions() {
        let found = stream(RUN, "activity_samples", "Forerunner 965");
        assert_eq!(found.records, (1..=12).collect::<Vec<u64>>());
        let row = |i: usize, name: &str| found.rows[i][name].clone();
        assert_eq!(row(0, "time").as_deref(), Some("2026-03-03T07:15:00.000Z"));
        assert_eq!(row(0, "lat").as_deref(), Some("51.5007292"));
        assert_eq!(row(0, "lon").as_deref(), Some("-0.1246254"));
        assert_eq!(row(0, "altitude_m").as_deref(), Some("11.4"));
        assert_eq!(row(0, "distance_m").as_deref(), Some("0.0"));
        assert_eq!(row(0, "heart_rate").as_deref(), Some("128"));
        assert_eq!(row(0, "speed_m_s").as_deref(), Some("3.12"));
        assert_eq!(row(0, "cadence").as_deref(), Some("84"), "RunCadence");
        assert_eq!(row(0, "power_w").as_deref(), Some("241"));
        assert_eq!(row(11, "time").as_deref(), Some("2026-03-03T07:16:50.000Z"));
        assert_eq!(row(11, "distance_m").as_deref(), Some("379.8"));
        assert_eq!(row(11, "power_w").as_deref(), Some("289"));
    }

    #[test]
    fn an_activity_is_a_workout_summed_over_its_laps() {
        let found = stream(RUN, "workouts", "Forerunner 965");
        assert_eq!(found.records, [1]);
        let workout = &found.rows[0];
        let text = |name: &str| workout[name].as_deref();
        assert_eq!(text("time"), Some("2026-03-03T07:15:00.000Z"));
        assert_eq!(
            text("end_time"),
            Some("2026-03-03T07:16:50Z"),
            "60 s + 50 s"
        );
        assert_eq!(text("sport"), Some("run"));
        assert_eq!(text("distance_m"), Some("380"));
        assert_eq!(text("energy_kcal"), Some("26"));
        // (142 × 60 + 155 × 50) / 110
        assert_eq!(text("avg_hr"), Some("147.9"));
        assert_eq!(text("max_hr"), Some("163"));
    }

    #[test]
    fn activities_without_id_or_creator_and_with_bike_cadence() {
        let xml = tcx(r#"<Activities>
  <Activity Sport="Biking">
   <Lap StartTime="2026-03-06T10:00:00Z">
    <TotalTimeSeconds>3600</TotalTimeSeconds><DistanceMeters>30000</DistanceMeters>
    <Track><Trackpoint><Time>2026-03-06T10:00:00Z</Time><Cadence>91</Cadence><Extensions><ns3:TPX><ns3:Speed>8.3</ns3:Speed></ns3:TPX></Extensions></Trackpoint>
     <Trackpoint><HeartRateBpm><Value>120</Value></HeartRateBpm></Trackpoint></Track>
   </Lap>
  </Activity>
  <Activity Sport="Other"><Id>2026-03-07T10:00:00Z</Id><Lap StartTime="2026-03-07T10:00:00Z"><TotalTimeSeconds>n/a</TotalTimeSeconds><Calories>x</Calories>
   <AverageHeartRateBpm><Value>high</Value></AverageHeartRateBpm>
   <Track><Trackpoint><Time>2026-03-07T10:20:00Z</Time></Trackpoint></Track></Lap>
   <Creator><Name>Wahoo &amp; co</Name></Creator></Activity>
 </Activities>
 <Courses><Course><Track><Trackpoint><Time>2026-03-08T10:00:00Z</Time></Trackpoint></Track></Course></Courses>"#);
        let extracts = read_all(&xml, BATCH_ROWS).unwrap();
        let ride = found(&extracts[..2], "activity_samples", "tcx");
        assert_eq!(ride.records, [1, 2]);
        assert_eq!(ride.column("cadence"), [Some("91"), None]);
        assert_eq!(ride.column("speed_m_s"), [Some("8.3"), None]);
        assert_eq!(ride.column("time"), [Some("2026-03-06T10:00:00Z"), None]);
        let workouts = found(&extracts[..2], "workouts", "tcx");
        assert_eq!(workouts.records, [1]);
        assert_eq!(
            workouts.rows[0]["time"].as_deref(),
            Some("2026-03-06T10:00:00Z")
        );
        assert_eq!(
            workouts.rows[0]["end_time"].as_deref(),
            Some("2026-03-06T11:00:00Z")
        );
        assert_eq!(workouts.rows[0]["sport"].as_deref(), Some("ride"));
        assert_eq!(workouts.rows[0]["distance_m"].as_deref(), Some("30000"));
        assert_eq!(workouts.rows[0]["energy_kcal"], None);

        let other = found(&extracts[2..], "workouts", "Wahoo & co");
        assert_eq!(other.records, [2]);
        let row = &other.rows[0];
        assert_eq!(row["sport"].as_deref(), Some("other"));
        assert_eq!(
            row["end_time"].as_deref(),
            Some("2026-03-07T10:20:00Z"),
            "without a lap time, the last trackpoint"
        );
        assert_eq!(
            row["energy_kcal"].as_deref(),
            Some("x"),
            "for cleaning to reject"
        );
        assert_eq!(row["avg_hr"].as_deref(), Some("high"));
        let samples = found(&extracts[2..], "activity_samples", "Wahoo & co");
        assert_eq!(
            samples.records,
            [3],
            "course trackpoints are counted, not read"
        );
    }

    #[test]
    fn rows_come_in_batches_named_after_their_activity() {
        let points: String = (0..3)
            .map(|i| format!("<Trackpoint><Time>2026-03-06T10:00:0{i}Z</Time></Trackpoint>"))
            .collect();
        let activity = |creator: &str| {
            format!(
                r#"<Activity Sport="Running"><Id>2026-03-06T10:00:00Z</Id><Lap><Track>{points}</Track></Lap><Creator><Name>{creator}</Name></Creator></Activity>"#
            )
        };
        let xml = tcx(&format!(
            "<Activities>{}{}</Activities>",
            activity("A"),
            activity("B")
        ));
        let extracts = read_all(&xml, 2).unwrap();
        let shape: Vec<(&str, &str, Vec<u64>)> = extracts
            .iter()
            .map(|e| {
                (
                    e.stream.as_str(),
                    e.default_source.as_str(),
                    e.records.clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("activity_samples", "A", vec![1, 2]),
                ("activity_samples", "A", vec![3]),
                ("workouts", "A", vec![1]),
                ("activity_samples", "B", vec![4, 5]),
                ("activity_samples", "B", vec![6]),
                ("workouts", "B", vec![2]),
            ]
        );
    }

    #[test]
    fn malformed_files_give_nothing_and_say_where() {
        let mut handed = 0;
        let err = read_in_batches(
            Input::bytes(NAME, MALFORMED.as_bytes().to_vec()),
            &mut |_| {
                handed += 1;
                Ok(())
            },
            1,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(handed, 0);
        let at = MALFORMED.rfind("</Trackpoint>").unwrap();
        assert!(
            err.starts_with(&format!("{NAME}: not a readable TCX file at byte {at}: ")),
            "{err}"
        );

        let cut = &RUN[..RUN.find("<Creator").unwrap()];
        let err = read_all(cut, BATCH_ROWS).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{NAME}: not a readable TCX file at byte {}: it ends before \
                 </TrainingCenterDatabase>: the file was cut short",
                cut.len()
            )
        );
    }
}
