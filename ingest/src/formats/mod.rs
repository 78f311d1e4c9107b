//! File formats: which one a file is, and the readers that turn each into [`Extract`]s.

mod apple_health;
mod blocks;
mod fhir;
mod fit;
mod fitbit;
mod generic;
mod google_fit;
mod gpx;
mod line_protocol;
mod tcx;
mod text_rows;
mod track;
mod zip_archive;

use std::{
    fs::File,
    io::{Cursor, Read, Seek},
    path::{Path, PathBuf},
    sync::Arc,
};

pub use generic::ColumnMap;
pub use line_protocol::Precision;

use crate::{Error, Result, extract::Extract};

/// Where the extracts of a file go, one by one, as the reader produces them.
pub(crate) type Sink<'a> = dyn FnMut(Extract) -> Result<()> + 'a;

/// The formats `--format` accepts besides `auto`, for messages.
const FORMAT_NAMES: &str = "csv, ndjson, parquet, arrow, apple-health, fit, gpx, tcx, fitbit, google-fit, foods, \
     open-food-facts, usda-fdc, ciqual, fhir or line-protocol[:ns|us|ms|s]";

/// The formats `healthai ingest --format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decided per file from its name and first bytes.
    Auto,
    Csv,
    Ndjson,
    Parquet,
    Arrow,
    /// Apple Health `export.xml` (also inside `export.zip`).
    AppleHealth,
    /// GPX 1.0/1.1 tracks: activity samples and workouts.
    Gpx,
    /// Garmin Training Center (TCX) activities: activity samples and workouts.
    Tcx,
    /// Fitbit account exports (per-day JSON) and Fitabase CSV files.
    Fitbit,
    /// Google Fit's daily activity CSV files (Google Takeout).
    GoogleFit,
    /// Garmin FIT files: activities, monitoring, weigh-ins.
    Fit,
    /// A food-composition table in the project's layout (`foods.csv`, `foods.ndjson`).
    Foods,
    /// The Open Food Facts CSV export (tab-separated).
    OpenFoodFacts,
    /// USDA FoodData Central CSV: `food.csv` with `food_nutrient.csv` beside it.
    UsdaFdc,
    /// The ANSES CIQUAL table exported as CSV.
    Ciqual,
    /// HL7 FHIR R4 JSON: a Bundle, an Observation, or bulk-data NDJSON.
    Fhir,
    /// InfluxDB line protocol, timestamps in the given precision.
    LineProtocol(Precision),
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Format::Auto,
            "csv" | "tsv" => Format::Csv,
            "ndjson" | "jsonl" | "json" => Format::Ndjson,
            "parquet" => Format::Parquet,
            "arrow" | "ipc" | "feather" => Format::Arrow,
            "apple-health" | "apple_health" => Format::AppleHealth,
            "gpx" => Format::Gpx,
            "tcx" => Format::Tcx,
            "fitbit" => Format::Fitbit,
            "google-fit" | "google_fit" => Format::GoogleFit,
            "fit" => Format::Fit,
            "foods" => Format::Foods,
            "open-food-facts" | "open_food_facts" | "off" => Format::OpenFoodFacts,
            "usda-fdc" | "usda_fdc" | "fdc" => Format::UsdaFdc,
            "ciqual" => Format::Ciqual,
            "fhir" => Format::Fhir,
            "line-protocol" | "line_protocol" | "lp" | "influx" => {
                Format::LineProtocol(Precision::default())
            }
            other => match other.split_once(':') {
                Some(("line-protocol" | "lp", precision)) => {
                    Format::LineProtocol(precision.parse()?)
                }
                _ => {
                    return Err(format!("unknown format '{other}': auto, {FORMAT_NAMES}"));
                }
            },
        })
    }
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
            Format::AppleHealth => "apple-health",
            Format::Gpx => "gpx",
            Format::Tcx => "tcx",
            Format::Fitbit => "fitbit",
            Format::GoogleFit => "google-fit",
            Format::Fit => "fit",
            Format::Foods => "foods",
            Format::OpenFoodFacts => "open-food-facts",
            Format::UsdaFdc => "usda-fdc",
            Format::Ciqual => "ciqual",
            Format::Fhir => "fhir",
            Format::LineProtocol(_) => "line-protocol",
        }
    }

    /// Formats of food-composition tables, loaded into `reference.foods` rather than a stream.
    pub fn is_food(self) -> bool {
        matches!(
            self,
            Format::Foods | Format::OpenFoodFacts | Format::UsdaFdc | Format::Ciqual
        )
    }

    /// Formats whose files hold one stream, named by `--stream` or the file name.
    pub fn is_generic(self) -> bool {
        matches!(
            self,
            Format::Csv | Format::Ndjson | Format::Parquet | Format::Arrow
        )
    }
}

pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// A file to read: on disk, or an entry of an archive already in memory.
#[derive(Debug, Clone)]
pub struct Input {
    /// How messages name it (`export.zip!export.xml` for an archive entry).
    pub name: Arc<str>,
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

impl Input {
    pub fn file(path: &Path) -> Self {
        Input {
            name: path.display().to_string().into(),
            content: Content::Path(path.to_owned()),
        }
    }

    pub fn bytes(name: &str, bytes: Vec<u8>) -> Self {
        Input {
            name: name.into(),
            content: Content::Bytes(Arc::new(bytes)),
        }
    }

    pub(crate) fn open(&self) -> Result<Box<dyn ReadSeek>> {
        match &self.content {
            Content::Path(path) => File::open(path)
                .map(|f| Box::new(f) as Box<dyn ReadSeek>)
                .map_err(|e| Error::file(&self.name, format!("cannot open: {e}"))),
            Content::Bytes(bytes) => Ok(Box::new(Cursor::new(ArcBytes(bytes.clone())))),
        }
    }

    /// Its size in bytes; 0 when it cannot be known (reading it will say why).
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::Path(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    pub(crate) fn read_all(&self) -> Result<Vec<u8>> {
        match &self.content {
            Content::Path(path) => std::fs::read(path)
                .map_err(|e| Error::file(&self.name, format!("cannot read: {e}"))),
            Content::Bytes(bytes) => Ok(bytes.as_ref().clone()),
        }
    }

    /// The first bytes, to recognize the format.
    fn head(&self) -> Result<Vec<u8>> {
        let mut head = vec![0; 512];
        let mut reader = self.open()?;
        let mut filled = 0;
        while filled < head.len() {
            match reader.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(Error::file(&self.name, format!("cannot read: {e}"))),
            }
        }
        head.truncate(filled);
        Ok(head)
    }

    /// The file name without directories and extensions, lowercase.
    pub(crate) fn stem(&self) -> String {
        let base = self
            .name
            .rsplit(['/', '\\', '!'])
            .next()
            .unwrap_or(&self.name);
        base.split('.').next().unwrap_or(base).to_ascii_lowercase()
    }

    fn extension(&self) -> String {
        let base = self
            .name
            .rsplit(['/', '\\', '!'])
            .next()
            .unwrap_or(&self.name);
        base.rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

/// Shared bytes that a `Cursor` can read.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// The format of a file, from its extension and first bytes.
pub fn detect(input: &Input) -> Result<Format> {
    let head = input.head()?;
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    if head.starts_with(b"ARROW1") {
        return Ok(Format::Arrow);
    }
    if apple_health::sniff(&head) {
        return Ok(Format::AppleHealth);
    }
    if matches!(input.extension().as_str(), "lp" | "line" | "influx") {
        return Ok(Format::LineProtocol(Precision::default()));
    }
    if let Some(format) = crate::foods::sniff(&input.stem(), &head) {
        return Ok(format);
    }
    if gpx::sniff(&head) {
        return Ok(Format::Gpx);
    }
    if tcx::sniff(&head) {
        return Ok(Format::Tcx);
    }
    // Before the generic CSV and JSON guesses, which would claim these files too.
    if fitbit::recognizes(input, &head) {
        return Ok(Format::Fitbit);
    }
    if google_fit::sniff(&head) {
        return Ok(Format::GoogleFit);
    }
    if fit::sniff(&head) {
        return Ok(Format::Fit);
    }
    if fhir::sniff(&head) || fhir::named(&input.name) {
        return Ok(Format::Fhir);
    }
    let text = String::from_utf8_lossy(&head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    match input.extension().as_str() {
        "csv" | "tsv" | "txt" => return Ok(Format::Csv),
        "ndjson" | "jsonl" => return Ok(Format::Ndjson),
        "parquet" => return Ok(Format::Parquet),
        "arrow" | "arrows" | "ipc" | "feather" => return Ok(Format::Arrow),
        "gpx" => return Ok(Format::Gpx),
        "tcx" => return Ok(Format::Tcx),
        "fit" => return Ok(Format::Fit),
        _ => {}
    }
    if trimmed.starts_with('{') && !trimmed.contains("\"resourceType\"") {
        return Ok(Format::Ndjson);
    }
    if line_protocol::sniff(&head) {
        return Ok(Format::LineProtocol(Precision::default()));
    }
    let first_line = trimmed.lines().next().unwrap_or_default();
    if first_line.contains(',') || first_line.contains('\t') || first_line.contains(';') {
        return Ok(Format::Csv);
    }
    Err(Error::file(
        &input.name,
        format!("cannot tell its format: use --format {FORMAT_NAMES}"),
    ))
}

/// The stream a generic file feeds: the one given, else the one its name starts with.
pub fn stream_of(input: &Input, given: Option<&str>, streams: &[String]) -> Result<String> {
    if let Some(given) = given {
        return Ok(given.to_owned());
    }
    let stem = input.stem();
    let mut candidates: Vec<&String> = streams
        .iter()
        .filter(|s| {
            stem == **s
                || stem
                    .strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.starts_with(['-', '_', ' ']))
        })
        .collect();
    candidates.sort_by_key(|s| std::cmp::Reverse(s.len()));
    candidates.first().map(|s| (*s).clone()).ok_or_else(|| {
        Error::file(
            &input.name,
            format!(
                "cannot tell which stream it feeds: name the file after a stream ({}) or pass --stream",
                streams.join(", ")
            ),
        )
    })
}

/// Whether a file is a zip archive, whose entries are ingested one by one.
pub fn is_archive(input: &Input) -> Result<bool> {
    Ok(input.extension() == "zip" || input.head()?.starts_with(b"PK\x03\x04"))
}

/// The files of a zip archive, in archive order.
pub fn archive_entries(input: &Input) -> Result<Vec<Input>> {
    zip_archive::entries(input)
}

/// What the files of a batch tell the readers about each other, learned before any is
/// read: the unit of a Fitbit export's weights (its profile), the Fitabase folders with
/// minute steps.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    fitbit: fitbit::Survey,
}

/// Looks at the files of a batch (archive entries included) before they are read.
pub fn survey(inputs: &[Input]) -> Survey {
    Survey {
        fitbit: fitbit::survey(inputs),
    }
}

/// Reads a file into extracts; generic formats feed `stream`, the others name theirs.
pub fn read(
    input: Input,
    format: Format,
    stream: Option<&str>,
    map: &ColumnMap,
    survey: &Survey,
    sink: &mut Sink,
) -> Result<()> {
    let generic = |input: &Input| {
        stream
            .ok_or_else(|| Error::file(&input.name, "a generic file needs a stream: pass --stream"))
    };
    match format {
        Format::Csv => generic::csv(input.clone(), generic(&input)?, map, sink),
        Format::Ndjson => generic::ndjson(input.clone(), generic(&input)?, map, sink),
        Format::Parquet => generic::columnar(input.clone(), generic(&input)?, map, sink, true),
        Format::Arrow => generic::columnar(input.clone(), generic(&input)?, map, sink, false),
        Format::AppleHealth => apple_health::read(input, sink),
        Format::Gpx => gpx::read(input, sink),
        Format::Tcx => tcx::read(input, sink),
        Format::Fitbit => fitbit::read(input, &survey.fitbit, sink),
        Format::GoogleFit => google_fit::read(input, sink),
        Format::Fit => fit::read(input, sink),
        Format::Foods | Format::OpenFoodFacts | Format::UsdaFdc | Format::Ciqual => {
            Err(Error::file(
                &input.name,
                "a food-composition table feeds reference.foods, not a stream",
            ))
        }
        Format::Fhir => fhir::read(input, sink),
        Format::LineProtocol(precision) => line_protocol::read(input, precision, sink),
        Format::Auto => {
            let format = detect(&input)?;
            read(input, format, stream, map, survey, sink)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognized_from_names_and_content() {
        let cases = [
            ("a.csv", &b"subject,time,bpm\n"[..], Format::Csv),
            ("a.data", b"subject;time;bpm\n", Format::Csv),
            ("a.jsonl", b"{\"subject\":\"S1\"}\n", Format::Ndjson),
            ("a.data", b"{\"subject\":\"S1\"}\n", Format::Ndjson),
            ("a.bin", b"PAR1\x15\x04", Format::Parquet),
            ("a.bin", b"ARROW1\0\0", Format::Arrow),
            (
                "a.xml",
                b"<?xml version=\"1.0\"?>\n<gpx version=\"1.1\">",
                Format::Gpx,
            ),
            (
                "a.GPX",
                b"<?xml version=\"1.0\"?>\n<!-- long comment -->",
                Format::Gpx,
            ),
            (
                "a.xml",
                b"<?xml version=\"1.0\"?>\n<TrainingCenterDatabase xmlns=\"x\">",
                Format::Tcx,
            ),
            ("a.tcx", b"<?xml version=\"1.0\"?>\n", Format::Tcx),
            (
                "Takeout/Fitbit/Global Export Data/steps-2020-01-01.json",
                b"[{\"dateTime\":\"01/01/20 00:00:00\",\"value\":\"0\"}]",
                Format::Fitbit,
            ),
            (
                "heartrate_seconds_merged.csv",
                b"Id,Time,Value\n2022484408,4/12/2016 7:21:00 AM,97\n",
                Format::Fitbit,
            ),
            (
                "Takeout/Fit/Daily activity metrics/2020-01-01.csv",
                b"Start time,End time,Move Minutes count,Calories (kcal)\n",
                Format::GoogleFit,
            ),
            (
                "Observation.ndjson",
                b"{\"resourceType\":\"Observation\",\"id\":\"1\"}\n",
                Format::Fhir,
            ),
            (
                "a.json",
                b"{\n  \"resourceType\" : \"Bundle\",",
                Format::Fhir,
            ),
            ("b.fhir.json", b"{\"id\":\"x\"}", Format::Fhir),
            (
                "a.data",
                b"heart_rate,subject=S1 bpm=72i 1772352000000000000\n",
                Format::LineProtocol(Precision::Nanoseconds),
            ),
            (
                "a.lp",
                b"heart_rate bpm=72",
                Format::LineProtocol(Precision::Nanoseconds),
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(
                detect(&Input::bytes(name, bytes.to_vec())).unwrap(),
                expected,
                "{name}"
            );
        }
        for name in [
            "gpx",
            "tcx",
            "apple-health",
            "fitbit",
            "google-fit",
            "fit",
            "fhir",
        ] {
            assert_eq!(name.parse::<Format>().unwrap().name(), name);
        }
        assert_eq!(
            "line-protocol:ms".parse::<Format>(),
            Ok(Format::LineProtocol(Precision::Milliseconds))
        );
        assert!("line-protocol:hours".parse::<Format>().is_err());
        let err = detect(&Input::bytes("mystery.bin", b"\x00\x01\x02".to_vec())).unwrap_err();
        assert!(
            err.to_string()
                .contains("mystery.bin: cannot tell its format"),
            "{err}"
        );
    }

    #[test]
    fn streams_are_named_by_files() {
        let streams = vec![
            "heart_rate".to_owned(),
            "steps".to_owned(),
            "body".to_owned(),
        ];
        let stream = |name: &str| stream_of(&Input::bytes(name, vec![]), None, &streams);
        assert_eq!(stream("data/heart_rate.csv").unwrap(), "heart_rate");
        assert_eq!(stream("heart_rate-2026-03.csv").unwrap(), "heart_rate");
        assert_eq!(stream("export.zip!Steps.csv").unwrap(), "steps");
        assert!(stream("heart_rates.csv").is_err());
        assert_eq!(
            stream_of(&Input::bytes("x.csv", vec![]), Some("body"), &streams).unwrap(),
            "body"
        );
    }
}
