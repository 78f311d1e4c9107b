//! GPX 1.0 and 1.1 tracks (Garmin Connect, Strava, Apple Health routes, phone loggers): every
//! track point becomes a row of `activity_samples`, every track a row of `workouts`.
//!
//! | GPX | stream.column |
//! |---|---|
//! | `trkpt` `lat`, `lon` attributes | activity_samples.lat, lon (as written) |
//! | `trkpt/time` | activity_samples.time |
//! | `trkpt/ele` | activity_samples.altitude_m |
//! | `speed` (GPX 1.0, Garmin TrackPointExtension v2, Apple routes; m/s) | activity_samples.speed_m_s |
//! | `hr`, `heartrate` (TrackPointExtension, plain `<extensions><hr>`) | activity_samples.heart_rate |
//! | `cad`, `cadence` | activity_samples.cadence |
//! | `power` (Strava), `PowerInWatts` (Garmin PowerExtension) | activity_samples.power_w |
//! | (computed) the track's length up to the point | activity_samples.distance_m |
//! | `rtept` with a `time` | activity_samples, like a `trkpt` |
//! | `trk` | workouts: `time` and `end_time` its earliest and latest point times, `sport` from `<type>`, `distance_m` its length, `avg_hr` and `max_hr` of its points |
//!
//! Extension elements are matched by local name anywhere inside the point, whatever prefix
//! (`gpxtpx:`, `ns3:`, none) the file binds; those not listed (`atemp`, `course`, `hAcc`, …)
//! are skipped. Speed is only what the file gives: none is derived from positions and times.
//!
//! Distances are great-circle (haversine) distances on a sphere of the Earth's mean radius
//! (6 371 008.8 m), between consecutive points with readable coordinates, in two dimensions
//! (as Strava and Garmin count; climbing is not distance). Segments (`trkseg`) are not
//! joined: a new segment starts where the receiver lost its fix or the recording paused, and
//! the gap was not necessarily travelled. Over a workout the sphere differs from the WGS 84
//! ellipsoid by less than 0.5%.
//!
//! A point without a time cannot be placed: it is passed on with no time, so that cleaning
//! rejects it ("time is missing") with its record number and it shows in the quality report;
//! its position still counts in the track's length. A route point without a time is a plan,
//! not a recording, and is skipped. A track without `<type>` is sport `other`.
//!
//! Samples are numbered by `trkpt` and `rtept` elements (1-based, in file order), workouts by
//! `trk` elements. `source` is the `creator` of `<gpx>` (else `gpx`). Apple Health routes
//! (`creator="Apple Health Export"`, the `workout-routes/` of `export.zip`) give samples
//! only: the export's `Workout` element already gives their workout, with its sport and
//! statistics, and a second row would count it twice.

use quick_xml::{Decoder, events::BytesStart};

use super::{
    Input, Sink,
    apple_health::attributes,
    track::{
        BATCH_ROWS, Fault, HeartRates, Path, Rows, Sample, Span, Step, Workout, decimal, number,
        sport, value, walk,
    },
};
use crate::Result;

const DEFAULT_SOURCE: &str = "gpx";
/// The `creator` of the routes in an Apple Health export.
const APPLE_HEALTH_ROUTES: &str = "Apple Health Export";
/// The sport of a track that names none.
const UNKNOWN_SPORT: &str = "other";
/// The Earth's mean radius (IUGG), in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Whether the first bytes hold a `<gpx>` root element.
pub(crate) fn sniff(head: &[u8]) -> bool {
    head.windows(5).any(|w| {
        w.starts_with(b"<gpx") && matches!(w[4], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
    })
}

/// Reads a GPX file into extracts of `activity_samples` and `workouts`.
pub(crate) fn read(input: Input, sink: &mut Sink) -> Result<()> {
    read_in_batches(input, sink, BATCH_ROWS)
}

fn read_in_batches(input: Input, sink: &mut Sink, batch_rows: usize) -> Result<()> {
    let mut gpx = Gpx {
        rows: Rows::new(input.name.clone(), batch_rows),
        source: DEFAULT_SOURCE.to_owned(),
        apple_health_routes: false,
        points: 0,
        tracks: 0,
        track: None,
        point: None,
    };
    walk(&input, "GPX file", "gpx", |path, step| match step {
        Step::Open(element, decoder) => gpx.open(path, element, decoder),
        Step::Close(text) => gpx.close(path, text),
    })?;
    gpx.rows.close_part(&gpx.source)?;
    gpx.rows.hand_on(sink)
}

struct Gpx {
    rows: Rows,
    source: String,
    apple_health_routes: bool,
    /// `trkpt` and `rtept` elements met.
    points: u64,
    /// `trk` elements met.
    tracks: u64,
    track: Option<Track>,
    point: Option<Point>,
}

/// A `trk` or `rte` being read.
struct Track {
    /// The workout's record; `None` for a route, which has no workout.
    record: Option<u64>,
    sport: Option<String>,
    length: Length,
    span: Span,
    heart: HeartRates,
}

/// A `trkpt` or `rtept` being read.
struct Point {
    depth: usize,
    in_route: bool,
    sample: Sample,
}

impl Gpx {
    fn open(&mut self, path: Path, element: &BytesStart, decoder: Decoder) -> Result<(), Fault> {
        match path.name() {
            b"gpx" if path.depth() == 1 => {
                let [creator] =
                    attributes(element, decoder, [b"creator"]).map_err(Fault::Malformed)?;
                if let Some(creator) = creator.filter(|c| !c.trim().is_empty()) {
                    self.apple_health_routes = creator.starts_with(APPLE_HEALTH_ROUTES);
                    self.source = creator;
                }
            }
            name @ (b"trk" | b"rte") if path.depth() == 2 => {
                let record = (name == b"trk").then(|| {
                    self.tracks += 1;
                    self.tracks
                });
                self.track = Some(Track {
                    record,
                    sport: None,
                    length: Length::default(),
                    span: Span::default(),
                    heart: HeartRates::default(),
                });
            }
            b"trkseg" => {
                if let Some(track) = &mut self.track {
                    track.length.new_segment();
                }
            }
            name @ (b"trkpt" | b"rtept") => {
                self.points += 1;
                if self.track.is_some() {
                    let [lat, lon] =
                        attributes(element, decoder, [b"lat", b"lon"]).map_err(Fault::Malformed)?;
                    self.point = Some(Point {
                        depth: path.depth(),
                        in_route: name == b"rtept",
                        sample: Sample {
                            record: self.points,
                            lat,
                            lon,
                            ..Sample::default()
                        },
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
            let slot = match path.name() {
                b"time" if child => &mut sample.time,
                b"ele" if child => &mut sample.altitude,
                b"speed" => &mut sample.speed,
                b"hr" | b"heartrate" => &mut sample.heart_rate,
                b"cad" | b"cadence" => &mut sample.cadence,
                b"power" | b"PowerInWatts" => &mut sample.power,
                _ => return Ok(()),
            };
            *slot = value(text);
            return Ok(());
        }
        match path.name() {
            b"type" if path.depth() == 3 && path.parent() == b"trk" => {
                if let Some(track) = &mut self.track
                    && !text.is_empty()
                {
                    track.sport = Some(sport(text));
                }
            }
            b"trk" | b"rte" if path.depth() == 2 => {
                if let Some(track) = self.track.take() {
                    self.track_read(track)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn point_read(&mut self, point: Point) -> Result<()> {
        let Some(track) = &mut self.track else {
            return Ok(());
        };
        let mut sample = point.sample;
        if point.in_route && sample.time.is_none() {
            return Ok(());
        }
        sample.distance = track
            .length
            .reach(sample.lat.as_deref(), sample.lon.as_deref())
            .map(|metres| decimal(metres, 2));
        if let Some(time) = &sample.time {
            track.span.add(time);
        }
        if let Some(bpm) = &sample.heart_rate {
            track.heart.add_to_mean(bpm, 1.0);
            track.heart.add_to_max(bpm);
        }
        self.rows.sample(&sample)
    }

    fn track_read(&mut self, track: Track) -> Result<()> {
        let Some(record) = track.record else {
            return Ok(());
        };
        if self.apple_health_routes {
            return Ok(());
        }
        self.rows.workout(&Workout {
            record,
            time: track.span.earliest(),
            end_time: track.span.latest(),
            sport: Some(track.sport.unwrap_or_else(|| UNKNOWN_SPORT.to_owned())),
            distance: track.length.total(),
            energy: None,
            avg_hr: track.heart.mean(),
            max_hr: track.heart.max(),
        })
    }
}

/// A track's length so far.
#[derive(Debug, Default)]
struct Length {
    metres: f64,
    /// Whether any point had readable coordinates.
    measured: bool,
    /// The last point with readable coordinates in the current segment.
    previous: Option<(f64, f64)>,
}

impl Length {
    fn new_segment(&mut self) {
        self.previous = None;
    }

    /// Moves on to a point: the length up to it, or `None` when its coordinates are not
    /// readable (cleaning rejects them; the next point is measured from the last good one).
    fn reach(&mut self, lat: Option<&str>, lon: Option<&str>) -> Option<f64> {
        let lat = lat
            .and_then(number)
            .filter(|v| (-90.0..=90.0).contains(v))?;
        let lon = lon
            .and_then(number)
            .filter(|v| (-180.0..=180.0).contains(v))?;
        if let Some(previous) = self.previous {
            self.metres += haversine(previous, (lat, lon));
        }
        self.previous = Some((lat, lon));
        self.measured = true;
        Some(self.metres)
    }

    fn total(&self) -> Option<String> {
        self.measured.then(|| decimal(self.metres, 2))
    }
}

/// The great-circle distance in metres between two (latitude, longitude) points in degrees.
fn haversine(from: (f64, f64), to: (f64, f64)) -> f64 {
    let (lat1, lat2) = (from.0.to_radians(), to.0.to_radians());
    let half_dlat = (lat2 - lat1) / 2.0;
    let half_dlon = (to.1 - from.1).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat1.cos() * lat2.cos() * half_dlon.sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        extract::Extract,
        formats::track::testing::{Found, found},
    };

    const NAME: &str = "tracks/activity.gpx";

    const GARMIN: &str = include_str!("../../tests/fixtures/gpx/garmin_connect_run.gpx");
    const STRAVA: &str = include_str!("../../tests/fixtures/gpx/strava_ride.gpx");
    const MISSING_TIME: &str = include_str!("../../tests/fixtures/gpx/missing_time.gpx");
    const TRUNCATED: &str = include_str!("../../tests/fixtures/gpx/truncated.gpx");

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

    fn samples(xml: &str, source: &str) -> Found {
        found(
            &read_all(xml, BATCH_ROWS).unwrap(),
            "activity_samples",
            source,
        )
    }

    fn workouts(xml: &str, source: &str) -> Found {
        found(&read_all(xml, BATCH_ROWS).unwrap(), "workouts", source)
    }

    /// A GPX 1.1 document around `body`.
    fn gpx(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Test" xmlns="http://www.topografix.com/GPX/1/1">
{body}
</gpx>
"#
        )
    }

    #[test]
    fn gpx_files_are_sniffed() {
        assert!(sniff(GARMIN.as_bytes()));
        assert!(sniff(STRAVA.as_bytes()));
        assert!(sniff(MISSING_TIME.as_bytes()));
        assert!(sniff(b"<gpx>"));
        assert!(!sniff(b"<gpxtpx:hr>120</gpxtpx:hr>"));
        assert!(!sniff(b"<?xml version=\"1.0\"?><TrainingCenterDatabase>"));
        assert!(!sniff(b"time,lat,lon\n"));
    }

    #[test]
    fn garmin_track_points_carry_their_extensions() {
        let found = samples(GARMIN, "Garmin Connect");
        assert_eq!(found.records, (1..=20).collect::<Vec<u64>>());
        let first = &found.rows[0];
        let text = |name: &str| first[name].as_deref();
        assert_eq!(text("time"), Some("2026-03-01T06:30:00.000Z"));
        assert_eq!(text("lat"), Some("48.84622997604310512542724609375"));
        assert_eq!(text("lon"), Some("2.3371200263500213623046875"));
        assert_eq!(text("altitude_m"), Some("46.200000762939453125"));
        assert_eq!(text("heart_rate"), Some("124"));
        assert_eq!(text("cadence"), Some("82"));
        assert_eq!(text("power_w"), None);
        assert_eq!(text("speed_m_s"), None, "speed only when the file gives it");
        assert_eq!(text("distance_m"), Some("0"));
        assert_eq!(
            found.column("heart_rate")[..5],
            [
                Some("124"),
                Some("127"),
                Some("130"),
                Some("132"),
                Some("135")
            ]
        );
        // Distances grow along the track.
        let distances: Vec<f64> = found
            .column("distance_m")
            .iter()
            .map(|d| d.and_then(number).unwrap())
            .collect();
        assert!(distances.windows(2).all(|w| w[1] > w[0]), "{distances:?}");
    }

    #[test]
    fn a_track_is_a_workout() {
        let found = workouts(GARMIN, "Garmin Connect");
        assert_eq!(found.records, [1]);
        let workout = &found.rows[0];
        let text = |name: &str| workout[name].as_deref();
        assert_eq!(text("time"), Some("2026-03-01T06:30:00.000Z"));
        assert_eq!(text("end_time"), Some("2026-03-01T06:31:35.000Z"));
        assert_eq!(text("sport"), Some("run"));
        assert_eq!(text("energy_kcal"), None);
        let samples = samples(GARMIN, "Garmin Connect");
        assert_eq!(
            text("distance_m"),
            *samples.column("distance_m").last().unwrap(),
            "the workout's distance is the track's length"
        );
        let rates: Vec<f64> = samples
            .column("heart_rate")
            .iter()
            .map(|r| r.and_then(number).unwrap())
            .collect();
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        assert_eq!(text("avg_hr"), Some(decimal(mean, 1).as_str()));
        assert_eq!(text("max_hr"), Some("152"));
    }

    #[test]
    fn strava_power_is_read() {
        let found = samples(STRAVA, "StravaGPX");
        assert_eq!(found.rows.len(), 15);
        assert_eq!(
            found.column("power_w")[..4],
            [Some("0"), Some("186"), Some("214"), Some("238")]
        );
        assert_eq!(found.rows[3]["heart_rate"].as_deref(), Some("121"));
        assert_eq!(found.rows[3]["cadence"].as_deref(), Some("84"));
        assert_eq!(found.rows[3]["lat"].as_deref(), Some("45.1886233"));
        let ride = workouts(STRAVA, "StravaGPX");
        assert_eq!(ride.rows[0]["sport"].as_deref(), Some("ride"));
    }

    #[test]
    fn points_without_time_reach_cleaning_with_their_record() {
        let found = samples(
            MISSING_TIME,
            "GPSLogger 131 - http://gpslogger.mendhak.com/",
        );
        assert_eq!(found.records, (1..=8).collect::<Vec<u64>>());
        assert_eq!(found.rows[3]["time"], None);
        assert_eq!(found.rows[3]["lat"].as_deref(), Some("52.373388"));
        assert_eq!(
            found.column("speed_m_s")[..2],
            [Some("1.4"), Some("1.38")],
            "GPX 1.0 speed"
        );
        let workout = workouts(
            MISSING_TIME,
            "GPSLogger 131 - http://gpslogger.mendhak.com/",
        );
        let workout = &workout.rows[0];
        assert_eq!(workout["time"].as_deref(), Some("2026-03-04T08:00:00.000Z"));
        assert_eq!(
            workout["end_time"].as_deref(),
            Some("2026-03-04T08:01:10.000Z")
        );
        assert_eq!(workout["sport"].as_deref(), Some("other"));
        assert_eq!(workout["avg_hr"], None);
    }

    #[test]
    fn segments_are_not_joined_and_routes_need_times() {
        // 0.001° of latitude is 111.195 m on the sphere.
        let xml = gpx(r#"
 <wpt lat="1" lon="1"><time>2026-03-01T05:00:00Z</time></wpt>
 <rte><name>Plan</name>
  <rtept lat="10.000" lon="5"/>
  <rtept lat="10.001" lon="5"><time>2026-03-01T05:59:00Z</time></rtept>
 </rte>
 <trk><type>Hiking</type>
  <trkseg>
   <trkpt lat="10.000" lon="5"><time>2026-03-01T06:00:00Z</time><extensions><hr>90</hr></extensions></trkpt>
   <trkpt lat="10.001" lon="5"><time>2026-03-01T06:01:00Z</time><extensions><hr>0</hr></extensions></trkpt>
  </trkseg>
  <trkseg>
   <trkpt lat="10.005" lon="5"><time>2026-03-01T06:10:00Z</time><extensions><heartrate>110</heartrate></extensions></trkpt>
   <trkpt lat="north" lon="5"><time>2026-03-01T06:11:00Z</time></trkpt>
   <trkpt lat="10.006" lon="5"><time>2026-03-01T06:12:00Z</time></trkpt>
  </trkseg>
 </trk>
 <trk><trkseg><trkpt lat="0" lon="0"><time>2026-03-02T06:00:00Z</time></trkpt></trkseg></trk>"#);
        let found = samples(&xml, "Test");
        assert_eq!(
            found.records,
            [2, 3, 4, 5, 6, 7, 8],
            "the untimed route point is skipped but counted"
        );
        assert_eq!(
            found.column("distance_m"),
            [
                Some("0"),
                Some("0"),
                Some("111.2"),
                Some("111.2"),
                None,
                Some("222.39"),
                Some("0")
            ]
        );
        let found = workouts(&xml, "Test");
        assert_eq!(found.records, [1, 2]);
        let hike = &found.rows[0];
        assert_eq!(hike["sport"].as_deref(), Some("walk"));
        assert_eq!(hike["time"].as_deref(), Some("2026-03-01T06:00:00Z"));
        assert_eq!(hike["end_time"].as_deref(), Some("2026-03-01T06:12:00Z"));
        assert_eq!(hike["distance_m"].as_deref(), Some("222.39"));
        assert_eq!(
            hike["avg_hr"].as_deref(),
            Some("100"),
            "a strap's 0 does not count"
        );
        assert_eq!(hike["max_hr"].as_deref(), Some("110"));
        assert_eq!(found.rows[1]["distance_m"].as_deref(), Some("0"));
    }

    #[test]
    fn apple_health_routes_give_samples_only() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Apple Health Export" xmlns="http://www.topografix.com/GPX/1/1">
  <metadata><time>2026-03-01T18:50:00Z</time></metadata>
  <trk>
    <name>Route 2026-03-01 6:00pm</name>
    <trkseg>
      <trkpt lon="2.352222" lat="48.856614"><ele>35.2</ele><time>2026-03-01T17:00:00Z</time><extensions><speed>2.91</speed><course>84.2</course><hAcc>4.9</hAcc><vAcc>3.1</vAcc></extensions></trkpt>
    </trkseg>
  </trk>
</gpx>"#;
        let extracts = read_all(xml, BATCH_ROWS).unwrap();
        assert!(extracts.iter().all(|e| e.stream == "activity_samples"));
        let found = found(&extracts, "activity_samples", "Apple Health Export");
        assert_eq!(found.rows[0]["speed_m_s"].as_deref(), Some("2.91"));
        assert_eq!(found.rows[0]["lon"].as_deref(), Some("2.352222"));
    }

    #[test]
    fn files_without_creator_are_from_gpx_and_rows_come_in_batches() {
        let points: String = (0..5)
            .map(|i| {
                format!(
                    r#"<trkpt lat="0" lon="0.00{i}"><time>2026-03-01T06:00:0{i}Z</time></trkpt>"#
                )
            })
            .collect();
        let xml = format!(
            r#"<gpx version="1.1"><trk><type>swimming</type><trkseg>{points}</trkseg></trk></gpx>"#
        );
        let extracts = read_all(&xml, 2).unwrap();
        let shape: Vec<(&str, Vec<u64>)> = extracts
            .iter()
            .map(|e| (e.stream.as_str(), e.records.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                ("activity_samples", vec![1, 2]),
                ("activity_samples", vec![3, 4]),
                ("activity_samples", vec![5]),
                ("workouts", vec![1]),
            ]
        );
        assert!(extracts.iter().all(|e| e.default_source == "gpx"));
        assert_eq!(
            found(&extracts, "workouts", "gpx").rows[0]["sport"].as_deref(),
            Some("swim")
        );
    }

    #[test]
    fn malformed_files_give_nothing_and_say_where() {
        let mut handed = 0;
        let err = read_in_batches(
            Input::bytes(NAME, TRUNCATED.as_bytes().to_vec()),
            &mut |_| {
                handed += 1;
                Ok(())
            },
            1,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(handed, 0, "rows read before the break are not handed on");
        let tag = TRUNCATED.rfind('<').unwrap();
        assert!(
            err.starts_with(&format!("{NAME}: not a readable GPX file at byte {tag}: ")),
            "{err}"
        );

        let xml = GARMIN.replacen("</ele>", "</elevation>", 1);
        let at = xml.find("</elevation>").unwrap();
        let err = read_all(&xml, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{NAME}: not a readable GPX file at byte {at}: ")),
            "{err}"
        );

        let xml = gpx(r#"<trk><trkseg><trkpt lat="1" lat="2" lon="3"/></trkseg></trk>"#);
        let at = xml.find("<trkpt").unwrap();
        let err = read_all(&xml, BATCH_ROWS).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{NAME}: not a readable GPX file at byte {at}: ")),
            "{err}"
        );

        let err = read_all("<HealthData locale=\"en_US\"/>", BATCH_ROWS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("{NAME}: not a GPX file: its root element is <HealthData>, not <gpx>")
        );
    }

    #[test]
    fn haversine_matches_known_distances() {
        // Paris–London, 343.5 km on the sphere.
        let d = haversine((48.8566, 2.3522), (51.5074, -0.1278));
        assert!((d - 343_556.0).abs() < 100.0, "{d}");
        assert_eq!(haversine((10.0, 5.0), (10.0, 5.0)), 0.0);
        assert!(
            (haversine((0.0, 0.0), (0.0, 180.0)) - EARTH_RADIUS_M * std::f64::consts::PI).abs()
                < 1e-6
        );
    }
}
