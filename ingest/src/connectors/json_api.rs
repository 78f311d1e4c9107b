//! `json_api`: any JSON API that lists readings of one stream, mapped by JSON pointers.
//!
//! | key | meaning |
//! |---|---|
//! | `url` | `http(s)://…`, with `{cursor}` (the cursor, URL-encoded), `{page}` (the page number) and `${VAR}` (an environment variable, for keys in the query) |
//! | `stream` | the stream the items feed |
//! | `items` | JSON pointer to the array of items in a page (`""`: the page is the array) |
//! | `fields` | stream column → JSON pointer inside an item; `subject` (pseudonym), `source`, `<column>_unit` too |
//! | `units` | column → unit of its values, where not the canonical one |
//! | `cursor` | `{"field": pointer in an item, "initial": first value}`: the next run asks from the largest value received |
//! | `next_page` | JSON pointer to the next page's URL in a page; else page numbers until an empty page |
//! | `first_page`, `max_pages` | page numbering start (1) and the most pages a run reads (100) |
//! | `subject`, `source` | the subject and source of items that name none |
//! | `headers`, `rate_limit_per_second`, `max_attempts`, `timeout_seconds`, `backoff_ms` | HTTP, see `http.rs` |
//!
//! Each page becomes an [`Extract`] (values as the API wrote them, record = position in the
//! page, file = the page's URL) and is cleaned and written like a file before the next page
//! is fetched. The cursor is stored only when the run succeeds, after every page was written:
//! a run that fails is repeated from the previous cursor, and the rows it re-delivers are
//! upserts.

use std::{collections::HashMap, sync::Arc};

use arrow::{
    array::{ArrayRef, RecordBatch, StringArray},
    datatypes::{DataType, Field, Schema},
};
use catalog::Stream;
use reqwest::Url;
use serde_json::Value;

use super::{
    config::{ConfigError, Keys, check_pointer},
    http::{Client, HTTP_KEYS, HttpSettings, expand_env},
    percent_encode,
};
use crate::{
    extract::{Extract, SUBJECT, UNIT_SUFFIX},
    pipeline::Run,
};

const KEYS: [&str; 11] = [
    "url",
    "stream",
    "items",
    "fields",
    "units",
    "cursor",
    "next_page",
    "first_page",
    "max_pages",
    "subject",
    "source",
];

/// Requests per second when the configuration does not say.
const DEFAULT_RATE: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
struct CursorField {
    pointer: String,
    initial: String,
}

/// A validated `json_api` configuration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonApi {
    pub(crate) url: String,
    pub(crate) stream: String,
    items: String,
    /// Column and pointer, in the configuration's order.
    fields: Vec<(String, String)>,
    units: HashMap<String, String>,
    cursor: Option<CursorField>,
    next_page: Option<String>,
    first_page: i64,
    max_pages: u64,
    pub(crate) subject: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) http: HttpSettings,
}

/// The placeholders `{name}` of a URL template, `${VAR}` left aside.
fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let is_variable = rest[..open].ends_with('$');
        let Some(close) = rest[open..].find('}') else {
            return Err("has a { without its closing }".to_owned());
        };
        if !is_variable {
            found.push(&rest[open + 1..open + close]);
        }
        rest = &rest[open + close + 1..];
    }
    Ok(found)
}

/// The template with its placeholders replaced.
fn fill(template: &str, cursor: &str, page: i64) -> String {
    template
        .replace("{cursor}", &percent_encode(cursor))
        .replace("{page}", &page.to_string())
}

impl JsonApi {
    pub(crate) fn parse(config: &Value) -> Result<Self, ConfigError> {
        let known: Vec<&str> = KEYS.iter().chain(HTTP_KEYS.iter()).copied().collect();
        let keys = Keys::new(config, "json_api", &known)?;
        let url = keys.required_string("url")?.trim().to_owned();
        let names = placeholders(&url).map_err(|e| ConfigError::new("url", e))?;
        if let Some(unknown) = names.iter().find(|n| !["cursor", "page"].contains(n)) {
            return Err(ConfigError::new(
                "url",
                format!("{{{unknown}}} is not a placeholder; use {{cursor}} and {{page}}"),
            ));
        }
        super::http::env_references(&url).map_err(|e| ConfigError::new("url", e))?;
        let sample = Url::parse(&fill(&url, "0", 1))
            .map_err(|e| ConfigError::new("url", format!("is not a URL: {e}")))?;
        if !matches!(sample.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "url",
                "must start with http:// or https://",
            ));
        }
        for (name, value) in sample.query_pairs() {
            if super::http::is_credential(&name) && !value.contains("${") {
                return Err(ConfigError::new(
                    "url",
                    format!(
                        "the query parameter {name} is a credential: take it from an \
                         environment variable ({name}=${{API_KEY}}); the catalog does not \
                         store secrets"
                    ),
                ));
            }
        }
        let stream = keys.required_string("stream")?.to_owned();
        let items = keys.pointer("items")?.unwrap_or("").to_owned();
        let Some(field_map) = keys.object("fields")? else {
            return Err(ConfigError::new(
                "fields",
                "is required: stream column → JSON pointer in an item, such as \
                 {\"time\": \"/timestamp\", \"bpm\": \"/value\"}",
            ));
        };
        let mut fields = Vec::new();
        for (column, pointer) in field_map {
            let key = format!("fields.{column}");
            let Some(pointer) = pointer.as_str() else {
                return Err(ConfigError::new(
                    &key,
                    "must be a JSON pointer such as \"/value\"",
                ));
            };
            check_pointer(&key, pointer)?;
            fields.push((column.clone(), pointer.to_owned()));
        }
        if !field_map.contains_key("time") {
            return Err(ConfigError::new(
                "fields",
                "must map time (the instant of each reading)",
            ));
        }
        let subject = keys.string("subject")?.map(str::to_owned);
        if subject.is_none()
            && !field_map.contains_key(SUBJECT)
            && !field_map.contains_key("subject_id")
        {
            return Err(ConfigError::new(
                "fields",
                "must map subject (a pseudonym in each item), or the key subject must name \
                 the subject of every item",
            ));
        }
        let mut units = HashMap::new();
        for (column, unit) in keys.object("units")?.into_iter().flatten() {
            let key = format!("units.{column}");
            let Some(unit) = unit.as_str().filter(|u| !u.trim().is_empty()) else {
                return Err(ConfigError::new(
                    &key,
                    "must be a unit such as \"/min\" or \"lb\"",
                ));
            };
            if !field_map.contains_key(column) {
                return Err(ConfigError::new(&key, "is not a column of fields"));
            }
            units.insert(column.clone(), unit.to_owned());
        }
        let cursor = match keys.object("cursor")? {
            None => None,
            Some(cursor) => {
                let sub = Value::Object(cursor.clone());
                let cursor_keys = Keys::new(&sub, "cursor", &["field", "initial"])
                    .map_err(|e| ConfigError::new(&format!("cursor.{}", e.key), e.problem))?;
                let pointer = cursor_keys
                    .pointer("field")
                    .map_err(|e| ConfigError::new("cursor.field", e.problem))?
                    .ok_or_else(|| {
                        ConfigError::new("cursor.field", "is required: the pointer in an item")
                    })?;
                let initial = cursor_keys
                    .required_string("initial")
                    .map_err(|e| ConfigError::new("cursor.initial", e.problem))?;
                Some(CursorField {
                    pointer: pointer.to_owned(),
                    initial: initial.to_owned(),
                })
            }
        };
        match (cursor.is_some(), names.contains(&"cursor")) {
            (true, false) => {
                return Err(ConfigError::new(
                    "url",
                    "must pass the cursor to the API with {cursor}, such as ?since={cursor}",
                ));
            }
            (false, true) => {
                return Err(ConfigError::new(
                    "cursor",
                    "is required when the url has {cursor}: {\"field\": \"/timestamp\", \
                     \"initial\": \"2026-01-01T00:00:00Z\"}",
                ));
            }
            _ => {}
        }
        let next_page = keys.pointer("next_page")?.map(str::to_owned);
        let first_page = keys
            .integer("first_page", 0, i64::from(u32::MAX))?
            .unwrap_or(1);
        let max_pages = keys.integer("max_pages", 1, 100_000)?.unwrap_or(100) as u64;
        Ok(JsonApi {
            url,
            stream,
            items,
            fields,
            units,
            cursor,
            next_page,
            first_page,
            max_pages,
            subject,
            source: keys.string("source")?.map(str::to_owned),
            http: HttpSettings::parse(&keys, DEFAULT_RATE)?,
        })
    }

    /// Checks the mapping against the stream it feeds.
    pub(crate) fn check_stream(&self, stream: &Stream) -> Result<(), ConfigError> {
        let columns: Vec<&str> = stream.columns.iter().map(|c| c.name.as_str()).collect();
        for (column, _) in &self.fields {
            let target = column.strip_suffix(UNIT_SUFFIX).unwrap_or(column);
            if column != SUBJECT && !columns.contains(&target) {
                return Err(ConfigError::new(
                    &format!("fields.{column}"),
                    format!(
                        "{} has no column {target}; its columns are subject, {}",
                        stream.name,
                        columns.join(", ")
                    ),
                ));
            }
        }
        for column in self.units.keys() {
            if !stream
                .columns
                .iter()
                .any(|c| &c.name == column && c.unit.is_some())
            {
                return Err(ConfigError::new(
                    &format!("units.{column}"),
                    format!("{column} of {} has no unit to convert to", stream.name),
                ));
            }
        }
        Ok(())
    }

    /// Reads the pages from `cursor` on into the batch. Answers the largest cursor value
    /// received, if any.
    pub(crate) async fn pages(
        &self,
        connector: &str,
        run: &mut Run<'_>,
        client: &mut Client,
        cursor: Option<&str>,
        pages: &mut u64,
    ) -> Result<Option<String>, String> {
        let template = expand_env(&self.url, "url")?;
        let cursor = cursor
            .or(self.cursor.as_ref().map(|c| c.initial.as_str()))
            .unwrap_or("");
        let by_number = template.contains("{page}");
        let mut page = self.first_page;
        let mut link = None;
        let mut newest: Option<String> = None;
        while *pages < self.max_pages {
            let target = match link.take() {
                Some(target) => target,
                None => client.target(&fill(&template, cursor, page))?,
            };
            let response = client.get(&target).await?;
            if !response.status.is_success() {
                return Err(super::status_problem(response.status, &target));
            }
            let body = response.json(&target)?;
            *pages += 1;
            let items = match body.pointer(&self.items) {
                Some(Value::Array(items)) => items.as_slice(),
                Some(Value::Null) => &[],
                Some(other) => {
                    return Err(format!(
                        "{}: items at \"{}\" are not an array but {}",
                        target.shown,
                        self.items,
                        short(other)
                    ));
                }
                None => {
                    return Err(format!(
                        "{}: the page has nothing at \"{}\" (config key items)",
                        target.shown, self.items
                    ));
                }
            };
            if items.is_empty() {
                break;
            }
            let extract = self
                .extract(connector, items, &target.shown)
                .map_err(|e| format!("{}: {e}", target.shown))?;
            run.extracts(vec![extract])
                .await
                .map_err(|e| e.to_string())?;
            if let Some(field) = &self.cursor {
                for value in items.iter().filter_map(|i| text(i.pointer(&field.pointer))) {
                    if newest.as_deref().is_none_or(|n| later(&value, n)) {
                        newest = Some(value);
                    }
                }
            }
            if let Some(pointer) = &self.next_page {
                let next = body
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|l| !l.is_empty());
                let Some(next) = next else { break };
                link = Some(client.link(&target, next)?);
            } else if by_number {
                page += 1;
            } else {
                break;
            }
        }
        Ok(newest.filter(|n| cursor.is_empty() || later(n, cursor)))
    }

    /// A page's items as rows of the stream, values as the API wrote them.
    fn extract(
        &self,
        connector: &str,
        items: &[Value],
        shown: &str,
    ) -> Result<Extract, arrow::error::ArrowError> {
        let mut fields = Vec::with_capacity(self.fields.len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.fields.len());
        for (column, pointer) in &self.fields {
            fields.push(Field::new(column, DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from_iter(
                items.iter().map(|item| text(item.pointer(pointer))),
            )));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(Extract {
            stream: self.stream.clone(),
            batch,
            units: self.units.clone(),
            records: (1..=items.len() as u64).collect(),
            file: shown.into(),
            default_source: connector.to_owned(),
        })
    }
}

/// A value as text, as cleaning reads it; structures as their JSON.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// A value for a message: its JSON, shortened.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Whether cursor value `a` comes after `b`: as numbers when both are, as instants when
/// both are RFC 3339 times (offsets may differ), else as text.
pub(crate) fn later(a: &str, b: &str) -> bool {
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        return x > y;
    }
    if let (Ok(x), Ok(y)) = (
        chrono::DateTime::parse_from_rfc3339(a.trim()),
        chrono::DateTime::parse_from_rfc3339(b.trim()),
    ) {
        return x > y;
    }
    a > b
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> Value {
        json!({
            "url": "https://api.example.com/v1/readings?since={cursor}&page={page}",
            "stream": "heart_rate",
            "items": "/data",
            "fields": {"time": "/timestamp", "bpm": "/value", "subject": "/user/id"},
            "cursor": {"field": "/timestamp", "initial": "2026-01-01T00:00:00Z"},
            "headers": {"Authorization": "Bearer ${API_TOKEN}"},
        })
    }

    fn refusal(change: impl FnOnce(&mut Value)) -> ConfigError {
        let mut config = config();
        change(&mut config);
        JsonApi::parse(&config).expect_err("refused")
    }

    #[test]
    fn a_complete_configuration_is_read_with_defaults() {
        let api = JsonApi::parse(&config()).unwrap();
        assert_eq!(api.stream, "heart_rate");
        assert_eq!(api.fields.len(), 3);
        assert_eq!(api.max_pages, 100);
        assert_eq!(api.first_page, 1);
        assert_eq!(api.http.max_attempts, 5);
        assert_eq!(api.http.rate_limit_per_second, DEFAULT_RATE);
        assert_eq!(
            api.http.headers,
            [("Authorization".to_owned(), "Bearer ${API_TOKEN}".to_owned())]
        );
    }

    #[test]
    fn bad_keys_are_named() {
        let cases: Vec<(ConfigError, &str, &str)> = vec![
            (
                refusal(|c| c["fields"]["bpm"] = json!("value")),
                "fields.bpm",
                "JSON pointer",
            ),
            (
                refusal(|c| {
                    c["fields"]
                        .as_object_mut()
                        .unwrap()
                        .remove("time")
                        .map(|_| ())
                        .unwrap()
                }),
                "fields",
                "time",
            ),
            (
                refusal(|c| c["url"] = json!("ftp://x/{cursor}")),
                "url",
                "http",
            ),
            (
                refusal(|c| c["url"] = json!("https://x/?since={since}")),
                "url",
                "{since}",
            ),
            (
                refusal(|c| c["url"] = json!("https://x/?page={page}")),
                "url",
                "{cursor}",
            ),
            (
                refusal(|c| c["url"] = json!("https://x/?since={cursor}&api_key=abc")),
                "url",
                "api_key",
            ),
            (
                refusal(|c| c["headers"]["Authorization"] = json!("Bearer abc123")),
                "headers.Authorization",
                "environment variable",
            ),
            (
                refusal(|c| c["headers"]["X-Token"] = json!("${BAD NAME}")),
                "headers.X-Token",
                "BAD NAME",
            ),
            (
                refusal(|c| c["cursor"] = json!({"field": "/t"})),
                "cursor.initial",
                "required",
            ),
            (
                refusal(|c| c["units"] = json!({"weight": "lb"})),
                "units.weight",
                "not a column",
            ),
            (refusal(|c| c["max_pages"] = json!(0)), "max_pages", "1 to"),
            (
                refusal(|c| c["rate_limit_per_second"] = json!(-1)),
                "rate_limit_per_second",
                "above 0",
            ),
            (
                refusal(|c| c["pages"] = json!(3)),
                "pages",
                "not a key of json_api",
            ),
        ];
        for (error, key, words) in cases {
            assert_eq!(error.key, key, "{error}");
            assert!(
                error.to_string().contains(words),
                "'{words}' not in {error}"
            );
        }
    }

    #[test]
    fn placeholders_are_found_beside_environment_variables() {
        assert_eq!(
            placeholders("https://x/${HOST}/a?since={cursor}&p={page}&k=${KEY}"),
            Ok(vec!["cursor", "page"])
        );
        assert_eq!(
            fill(
                "https://x/?since={cursor}&p={page}",
                "2026-01-01T00:00:00+01:00",
                3
            ),
            "https://x/?since=2026-01-01T00%3A00%3A00%2B01%3A00&p=3"
        );
    }

    #[test]
    fn cursors_compare_as_numbers_times_or_text() {
        assert!(later("10", "9"));
        assert!(later(
            "2026-01-01T01:00:00+00:00",
            "2026-01-01T01:30:00+01:00"
        ));
        assert!(!later("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert!(later("b", "a"));
    }

    #[test]
    fn items_become_text_columns_with_their_record_numbers() {
        let api = JsonApi::parse(&config()).unwrap();
        let items = [
            json!({"timestamp": "2026-01-01T00:00:00Z", "value": 61, "user": {"id": "S1"}}),
            json!({"timestamp": "2026-01-01T00:01:00Z", "value": null, "user": {"id": "S1"}}),
        ];
        let extract = api.extract("hr", &items, "https://x/1").unwrap();
        assert_eq!(extract.records, [1, 2]);
        assert_eq!(extract.default_source, "hr");
        let bpm = extract.batch.column_by_name("bpm").unwrap();
        let bpm = bpm.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            (bpm.value(0), arrow::array::Array::is_null(bpm, 1)),
            ("61", true)
        );
    }
}
