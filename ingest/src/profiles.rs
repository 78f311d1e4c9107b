//! Files of subject profiles (`subjects.csv`, `subjects.ndjson`): one row per pseudonym with
//! sex, birth year, height, maximum heart rate and home time zone. They are read before the
//! files of a batch that hold readings, so that local times find their zone.

use std::collections::BTreeMap;

use arrow::{
    array::{Array, AsArray},
    compute::cast,
    datatypes::DataType,
};
use catalog::{OrgId, Sex};
use chrono_tz::Tz;
use engine::Engine;

use crate::{
    Error, Result,
    clean::{Rejection, Stats},
    extract::{Extract, SUBJECT},
};

/// The pseudo-stream profile files are reported under.
pub const PROFILES: &str = "subjects";

/// Updates the profiles an extract holds; rows that cannot be read are rejected one by one.
pub(crate) async fn apply(
    engine: &Engine,
    org: OrgId,
    extract: &Extract,
) -> Result<(Stats, Vec<Rejection>)> {
    let batch = &extract.batch;
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| cast(c, &DataType::Utf8).ok())
    };
    let subjects = text(SUBJECT).ok_or_else(|| {
        Error::file(
            &extract.file,
            format!("a subjects file needs a '{SUBJECT}' column"),
        )
    })?;
    let subjects = subjects.as_string::<i32>();
    let columns: BTreeMap<&str, _> = ["sex", "birth_year", "height_cm", "max_hr", "timezone"]
        .into_iter()
        .filter_map(|name| text(name).map(|c| (name, c)))
        .collect();
    let value = |name: &str, row: usize| -> Option<String> {
        let column = columns.get(name)?.as_string::<i32>();
        (!column.is_null(row))
            .then(|| column.value(row).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut stats = Stats {
        rows_in: batch.num_rows() as u64,
        ..Stats::default()
    };
    let mut rejections = Vec::new();
    let pseudonyms: Vec<String> = (0..batch.num_rows())
        .filter(|row| !subjects.is_null(*row) && !subjects.value(*row).trim().is_empty())
        .map(|row| subjects.value(row).trim().to_owned())
        .collect();
    let known: BTreeMap<String, catalog::Subject> = engine
        .catalog()
        .subjects()
        .ensure(org, &pseudonyms)
        .await
        .map_err(|e| Error::file(&extract.file, e.to_string()))?
        .into_iter()
        .map(|s| (s.pseudonym.clone(), s))
        .collect();
    let mut reject = |row: usize, column: &str, reason: String, value: Option<String>| {
        let rule: &'static str = match column {
            "timezone" => "timezone",
            "subject" => "subject",
            _ => "type",
        };
        stats
            .rules
            .entry((column.to_owned(), rule))
            .or_default()
            .rejected += 1;
        rejections.push(Rejection {
            stream: PROFILES.into(),
            file: extract.file.clone(),
            record: extract.records.get(row).copied().unwrap_or(0),
            column: Some(column.to_owned()),
            rule,
            reason,
            value,
        });
    };
    let mut accepted = 0;
    for row in 0..batch.num_rows() {
        let name = if subjects.is_null(row) {
            ""
        } else {
            subjects.value(row).trim()
        };
        let Some(subject) = known.get(name) else {
            reject(row, "subject", "no subject".into(), None);
            continue;
        };
        let mut profile = subject.profile.clone();
        if let Some(sex) = value("sex", row) {
            profile.sex = Some(match sex.to_ascii_lowercase().as_str() {
                "f" | "female" | "woman" => Sex::Female,
                "m" | "male" | "man" => Sex::Male,
                "other" | "x" => Sex::Other,
                _ => Sex::Unknown,
            });
        }
        let number = |name: &str| value(name, row).map(|v| v.parse::<f64>().map_err(|_| v));
        match (number("birth_year"), number("height_cm"), number("max_hr")) {
            (Some(Err(v)), _, _) => {
                reject(
                    row,
                    "birth_year",
                    format!("birth_year '{v}' is not a year"),
                    Some(v),
                );
                continue;
            }
            (_, Some(Err(v)), _) => {
                reject(
                    row,
                    "height_cm",
                    format!("height_cm '{v}' is not a number"),
                    Some(v),
                );
                continue;
            }
            (_, _, Some(Err(v))) => {
                reject(
                    row,
                    "max_hr",
                    format!("max_hr '{v}' is not a number"),
                    Some(v),
                );
                continue;
            }
            (birth_year, height, max_hr) => {
                if let Some(Ok(year)) = birth_year {
                    profile.birth_year = Some(year as i64);
                }
                if let Some(Ok(height)) = height {
                    profile.height_cm = Some(height);
                }
                if let Some(Ok(max_hr)) = max_hr {
                    profile.max_hr = Some(max_hr.round() as i64);
                }
            }
        }
        if let Some(zone) = value("timezone", row) {
            if zone.parse::<Tz>().is_err() {
                reject(
                    row,
                    "timezone",
                    format!("'{zone}' is not an IANA time zone (e.g. Europe/Paris)"),
                    Some(zone),
                );
                continue;
            }
            profile.timezone = zone;
        }
        if let Err(e) = engine
            .catalog()
            .subjects()
            .update_profile(subject.id, profile)
            .await
        {
            reject(row, "subject", e.to_string(), Some(name.to_owned()));
            continue;
        }
        accepted += 1;
    }
    stats.rows_accepted = accepted;
    Ok((stats, rejections))
}
