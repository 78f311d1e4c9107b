//! Fitbit exports, in their two common shapes:
//!
//! - the **account export** (Google Takeout's `Takeout/Fitbit/Global Export Data/`, or the
//!   older `<Name>/Physical Activity/`, `Sleep/` and `Personal & Account/` folders): one JSON
//!   array per kind and day (or month), named `<kind>-YYYY-MM-DD.json`, read by `takeout`;
//! - **Fitabase** CSV files, such as the Kaggle "Fitbit Fitness Tracker Data" set
//!   (`heartrate_seconds_merged.csv`, …), many subjects per file, read by `fitabase`.
//!
//! | file | stream.column |
//! |---|---|
//! | `heart_rate-….json`: `value.bpm` | heart_rate.bpm at `dateTime` |
//! | `steps-….json`: `value` | steps.count, `dateTime` to 1 min later |
//! | `sleep-….json`: `levels.data[]` `level` | sleep.stage, `dateTime` to `seconds` later |
//! | `weight-….json`: `weight`, `fat`, `bmi` | body.weight_kg, fat_pct, bmi at `date` `time` |
//! | `heartrate_seconds_merged.csv`: `Value` | heart_rate.bpm at `Time` |
//! | `minuteStepsNarrow_merged.csv`: `Steps` | steps.count, `ActivityMinute` to 1 min later |
//! | `hourlySteps_merged.csv`: `StepTotal` | steps.count, `ActivityHour` to 1 h later (see below) |
//! | `minuteSleep_merged.csv`: `value` | sleep.stage, `date` to 1 min later |
//! | `weightLogInfo_merged.csv`: `WeightKg`, `Fat`, `BMI` | body.weight_kg, fat_pct, bmi at `Date` |
//!
//! Sleep stages: `deep`, `light`, `rem` as they are, `wake` → `awake`; the classic levels
//! `asleep` → `asleep`, `restless` and `awake` → `awake` (Fitabase: 1 asleep, 2 restless,
//! 3 awake). The `shortData` of a stages log (awakenings of up to 3 minutes, which overlap
//! the `data` intervals they interrupt) is not read: the stages are those of `data`, so the
//! time awake is the one of the long awakenings only.
//!
//! Everything else is recognized and not read: `calories` (and Fitabase calories) count
//! the basal metabolic rate with the activity, so they are no `active_energy` and there is
//! no stream of total energy; daily summaries (`dailyActivity_merged.csv`, `sleepDay_…`)
//! and scores are derived from the readings above; intensities, METs, distances and the
//! other kinds of the account export have no stream. A file of the export is recognized by
//! its name and first bytes (`<kind>-YYYY-MM-DD.json` holding a JSON array; the
//! `…_merged.csv` names of Fitabase starting with `Id,`), so a whole export can be ingested
//! without one failure per file.
//!
//! Times are the wall-clock times the exports write (`01/01/20 00:00:05`,
//! `2020-01-01T23:10:30.000`, `4/12/2016 7:21:00 AM`): they are placed in the subject's home
//! time zone by cleaning, so give the subject one (a `subjects.csv` with a `timezone`)
//! before ingesting; the zone the account's `Profile.csv` names is not applied.
//!
//! Weights of an account export carry no unit: they are in the account's unit, which its
//! `Profile.csv` (`Your Profile/` or `Personal & Account/`) gives as `weight_unit`. The
//! profile of the nearest export folder above a weight file, in the same batch, decides
//! (pounds, stones or kilograms); without one they are kilograms. Nothing else of the
//! profile (names, e-mail) is read. Fitabase files give kilograms.
//!
//! Fitabase's `hourlySteps_merged.csv` totals the minutes of `minuteStepsNarrow_merged.csv`:
//! it is read only when the batch has no `minuteStepsNarrow_merged.csv` in the same folder,
//! so the same steps are not counted twice. (Ingesting the hourly file in one batch and the
//! minute file in another would count them twice: ingest an export's folder as a whole.)
//!
//! Subjects: an account export names none (the pipeline's `--subject` does); Fitabase rows
//! are subject `fitbit-<Id>`. The `source` is `fitbit`. Records are the 1-based element of
//! the JSON array (for sleep, the stage interval, counted through the file) or the CSV line.

mod fitabase;
mod takeout;

use std::collections::HashSet;

use arrow::{array::AsArray, datatypes::DataType};

use super::{Input, Sink};
use crate::{Error, Result};

/// The `source` of every row.
const SOURCE: &str = "fitbit";
/// Rows per extract.
const BATCH_ROWS: usize = 64 * 1024;

/// What a file of a Fitbit export is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'n> {
    /// A file of the account export: the kind of readings (`heart_rate`, `steps`, …).
    Day(&'n str),
    /// The account's `Profile.csv`: read for the unit of weights only, by [`survey`].
    Profile,
    /// A Fitabase file, by its name without extension, lowercase.
    Fitabase(&'n str),
}

fn kind<'n>(stem: &'n str, extension: &str) -> Option<Kind<'n>> {
    match extension {
        "json" => dated(stem).map(Kind::Day),
        "csv" if stem == "profile" => Some(Kind::Profile),
        "csv" if fitabase::FILES.contains(&stem) => Some(Kind::Fitabase(stem)),
        _ => None,
    }
}

/// The kind of a `<kind>-YYYY-MM-DD` name.
fn dated(stem: &str) -> Option<&str> {
    let (kind, date) = stem.split_at_checked(stem.len().checked_sub(11)?)?;
    let date = date.strip_prefix('-')?.as_bytes();
    let is_date = date.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        _ => b.is_ascii_digit(),
    });
    let is_kind = !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (is_date && is_kind).then_some(kind)
}

/// The text of a file's first bytes, without a byte-order mark or leading blanks.
fn head_text(head: &[u8]) -> std::borrow::Cow<'_, str> {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    String::from_utf8_lossy(&head[start..])
}

/// Whether a file is one of a Fitbit export, from its name and first bytes.
pub(crate) fn recognizes(input: &Input, head: &[u8]) -> bool {
    let stem = input.stem();
    let text = head_text(head);
    let header = text.lines().next().unwrap_or_default();
    match kind(&stem, &input.extension()) {
        Some(Kind::Day(_)) => text.starts_with('['),
        Some(Kind::Profile) => header.contains("full_name") || header.contains("weight_unit"),
        Some(Kind::Fitabase(_)) => header.starts_with("Id,"),
        None => false,
    }
}

/// Reads a file of a Fitbit export into extracts.
pub(crate) fn read(input: Input, survey: &Survey, sink: &mut Sink) -> Result<()> {
    let stem = input.stem();
    match kind(&stem, &input.extension()) {
        Some(Kind::Day(kind)) => takeout::read(&input, kind, survey, sink),
        // Its weight unit was read by the survey; the rest is personal and stays out.
        Some(Kind::Profile) => Ok(()),
        Some(Kind::Fitabase(name)) => fitabase::read(&input, name, survey, sink),
        None => Err(Error::file(
            &input.name,
            "not a file of a Fitbit export: expected <kind>-YYYY-MM-DD.json or Profile.csv of an \
             account export, or a Fitabase …_merged.csv",
        )),
    }
}

/// What the files of a batch tell the Fitbit readers about each other.
#[derive(Debug, Clone, Default)]
pub(crate) struct Survey {
    /// Export folders (with their trailing separator) and the unit of their weights, or why
    /// it is unknown.
    weight_units: Vec<(String, Result<&'static str, String>)>,
    /// Folders with a Fitabase `minuteStepsNarrow_merged.csv`.
    minute_steps: HashSet<String>,
}

impl Survey {
    /// The unit of the weights of an account export file: its profile's, else kilograms.
    fn weight_unit(&self, name: &str) -> Result<&'static str, String> {
        self.weight_units
            .iter()
            .filter(|(root, _)| name.starts_with(root.as_str()))
            .max_by_key(|(root, _)| root.len())
            .map_or(Ok("kg"), |(_, unit)| unit.clone())
    }

    /// Whether the folder of a Fitabase file has minute steps too.
    fn has_minute_steps(&self, name: &str) -> bool {
        self.minute_steps.contains(folder(name))
    }
}

/// Looks at the files of a batch before any is read: the account profiles (for the unit
/// of weights) and the folders with Fitabase minute steps.
pub(crate) fn survey(inputs: &[Input]) -> Survey {
    let mut survey = Survey::default();
    for input in inputs {
        let stem = input.stem();
        match kind(&stem, &input.extension()) {
            Some(Kind::Profile) => {
                let parent = folder(&input.name);
                let root = folder(&parent[..parent.len().saturating_sub(1)]);
                survey
                    .weight_units
                    .push((root.to_owned(), profile_weight_unit(input)));
            }
            Some(Kind::Fitabase("minutestepsnarrow_merged")) => {
                survey.minute_steps.insert(folder(&input.name).to_owned());
            }
            _ => {}
        }
    }
    survey
}

/// The folder part of a file's name, with its trailing separator (`a.zip!b/` of
/// `a.zip!b/c.csv`); empty for a bare name.
fn folder(name: &str) -> &str {
    name.rfind(['/', '\\', '!'])
        .map_or("", |separator| &name[..=separator])
}

/// The unit of weights a `Profile.csv` gives, or why it cannot be known.
fn profile_weight_unit(input: &Input) -> Result<&'static str, String> {
    let unreadable = |e: &dyn std::fmt::Display| {
        format!(
            "the unit of its weights is unknown: the export's profile {} cannot be read: {e}",
            input.name
        )
    };
    let bytes = input.read_all().map_err(|e| unreadable(&e))?;
    let mut reader = std::io::Cursor::new(bytes.as_slice());
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (header, _) = format
        .clone()
        .infer_schema(&mut reader, Some(0))
        .map_err(|e| unreadable(&e))?;
    let Ok(column) = header.index_of("weight_unit") else {
        return Ok("kg");
    };
    let text_schema = arrow::datatypes::Schema::new(
        header
            .fields()
            .iter()
            .map(|f| arrow::datatypes::Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let first = arrow::csv::ReaderBuilder::new(std::sync::Arc::new(text_schema))
        .with_format(format)
        .with_batch_size(1)
        .build(std::io::Cursor::new(bytes.as_slice()))
        .map_err(|e| unreadable(&e))?
        .next()
        .transpose()
        .map_err(|e| unreadable(&e))?;
    let setting = first
        .as_ref()
        .filter(|batch| batch.num_rows() > 0)
        .map(|batch| batch.column(column).as_string::<i32>().value(0).to_owned())
        .unwrap_or_default();
    weight_unit(&setting).map_err(|problem| {
        format!(
            "the unit of its weights is unknown: the export's profile {} says {problem}",
            input.name
        )
    })
}

/// The unit of a profile's `weight_unit` setting.
fn weight_unit(setting: &str) -> Result<&'static str, String> {
    match setting.trim().to_ascii_uppercase().as_str() {
        "" | "METRIC" | "KG" | "KILOGRAM" | "KILOGRAMS" => Ok("kg"),
        "POUND" | "POUNDS" | "LB" | "LBS" | "EN_US" => Ok("lb"),
        "STONE" | "STONES" | "ST" | "EN_GB" => Ok("st"),
        _ => Err(format!(
            "weight_unit '{setting}', which is none of kilograms, pounds or stones"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "id,full_name,first_name,last_name,display_name_setting,display_name,\
username,email_address,date_of_birth,child,country,state,city,timezone,locale,member_since,\
about_me,start_of_week,sleep_tracking,time_display_format,gender,height,weight,\
stride_length_walking,stride_length_running,weight_unit,distance_unit,height_unit,\
water_unit,glucose_unit,swim_unit\n\
ABC123,Ana Lopez,Ana,Lopez,name,Ana L.,null,ana@example.org,1990-01-01,false,FR,null,Paris,\
Europe/Paris,fr_FR,2015-03-01,\"Runs, \"\"mostly\"\"\",MONDAY,Normal,24hour,FEMALE,165.0,\
70.0,70.0,90.0,POUND,METRIC,METRIC,METRIC,METRIC,METRIC\n";

    #[test]
    fn fitbit_files_are_recognized_by_name_and_content() {
        let recognized =
            |name: &str, bytes: &[u8]| recognizes(&Input::bytes(name, bytes.to_vec()), bytes);
        let day = b"[{\n  \"dateTime\" : \"01/01/20 00:00:05\",\n  \"value\" : {\n";
        assert!(recognized(
            "t.zip!Takeout/Fitbit/Global Export Data/heart_rate-2020-01-01.json",
            day
        ));
        assert!(recognized("Physical Activity/steps-2020-01-01.json", b"[]"));
        assert!(recognized("x/demographic_vo2_max-2020-01-01.json", day));
        assert!(recognized("x/sleep-2020-01-01.json", b"\xef\xbb\xbf [{"));
        assert!(!recognized(
            "heart_rate-2020-01-01.json",
            b"{\"subject\":\"S1\"}"
        ));
        assert!(!recognized("heart_rate-2020-01.json", day));
        assert!(!recognized("heart_rate-2020-01-01.csv", day));
        assert!(!recognized("-2020-01-01.json", day));
        assert!(recognized("Your Profile/Profile.csv", PROFILE.as_bytes()));
        assert!(!recognized("profile.csv", b"subject,timezone\n"));
        let fitabase = b"Id,Time,Value\n2022484408,4/12/2016 7:21:00 AM,97\n";
        assert!(recognized("a/heartrate_seconds_merged.csv", fitabase));
        assert!(recognized(
            "a/dailyActivity_merged.csv",
            b"Id,ActivityDate,TotalSteps\n"
        ));
        assert!(!recognized(
            "a/heartrate_seconds_merged.csv",
            b"subject,time,bpm\n"
        ));
        assert!(!recognized("heart_rate.csv", fitabase));
    }

    #[test]
    fn fitbit_weight_units_come_from_the_nearest_profile() {
        let inputs = [
            Input::bytes(
                "t.zip!Takeout/Fitbit/Your Profile/Profile.csv",
                PROFILE.as_bytes().to_vec(),
            ),
            Input::bytes(
                "old/Ana/Personal & Account/Profile.csv",
                PROFILE.replace("POUND", "METRIC").into_bytes(),
            ),
            Input::bytes(
                "odd/Personal & Account/Profile.csv",
                PROFILE.replace("POUND", "FURLONG").into_bytes(),
            ),
            Input::bytes("fitabase/a/minuteStepsNarrow_merged.csv", Vec::new()),
            Input::bytes("fitabase/b/hourlySteps_merged.csv", Vec::new()),
        ];
        let survey = survey(&inputs);
        let unit = |name: &str| survey.weight_unit(name);
        assert_eq!(
            unit("t.zip!Takeout/Fitbit/Global Export Data/weight-2020-01-01.json"),
            Ok("lb")
        );
        assert_eq!(
            unit("old/Ana/Personal & Account/weight-2020-01-01.json"),
            Ok("kg")
        );
        assert_eq!(unit("elsewhere/weight-2020-01-01.json"), Ok("kg"));
        let odd = unit("odd/Personal & Account/weight-2020-01-01.json").unwrap_err();
        assert!(
            odd.contains("odd/Personal & Account/Profile.csv says weight_unit 'FURLONG'"),
            "{odd}"
        );
        assert!(survey.has_minute_steps("fitabase/a/hourlySteps_merged.csv"));
        assert!(!survey.has_minute_steps("fitabase/b/hourlySteps_merged.csv"));

        let no_unit = survey_of("Profile.csv", "id,full_name\nA,B\n");
        assert_eq!(no_unit.weight_unit("weight-2020-01-01.json"), Ok("kg"));
        let broken = survey_of("Profile.csv", "id,weight_unit\nA,POUND,x\n");
        assert!(
            broken
                .weight_unit("weight-2020-01-01.json")
                .unwrap_err()
                .contains("Profile.csv cannot be read")
        );
    }

    fn survey_of(name: &str, text: &str) -> Survey {
        survey(&[Input::bytes(name, text.as_bytes().to_vec())])
    }

    #[test]
    fn fitbit_weight_unit_settings() {
        assert_eq!(weight_unit("POUND"), Ok("lb"));
        assert_eq!(weight_unit("en_US"), Ok("lb"));
        assert_eq!(weight_unit("METRIC"), Ok("kg"));
        assert_eq!(weight_unit(""), Ok("kg"));
        assert_eq!(weight_unit("STONE"), Ok("st"));
        assert!(weight_unit("FURLONG").is_err());
    }

    #[test]
    fn fitbit_names_outside_an_export_are_refused() {
        let err = read(
            Input::bytes("notes.txt", b"hello".to_vec()),
            &Survey::default(),
            &mut |_| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("notes.txt: not a file of a Fitbit export"),
            "{err}"
        );
        let mut extracts = 0;
        read(
            Input::bytes("Profile.csv", PROFILE.as_bytes().to_vec()),
            &Survey::default(),
            &mut |_| {
                extracts += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(extracts, 0, "nothing of a profile is ingested");
    }
}
