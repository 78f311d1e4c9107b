//! Log lines of `healthai serve` on stderr, as text for people or JSON for log collectors:
//! every `tracing` event of the engine and the servers (each HTTP request with its request
//! id, background maintenance failures) at the chosen level or above.
//!
//! A subscriber of its own, small on purpose: events with their fields, no spans.

use std::{
    fmt::{self, Write as _},
    io::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn level(self) -> Level {
        match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
        }
    }
}

/// Installs the logger for the process; a second call changes nothing.
pub(crate) fn init(format: LogFormat, level: LogLevel) {
    let logger = Logger {
        format,
        level: level.level(),
        next_span: AtomicU64::new(1),
    };
    let _ = tracing::subscriber::set_global_default(logger);
}

struct Logger {
    format: LogFormat,
    level: Level,
    next_span: AtomicU64,
}

/// The fields of an event, in order, as JSON values.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().into(), value.into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name().into(), format!("{value:?}").into()));
    }
}

impl Logger {
    fn line(&self, level: &Level, target: &str, mut fields: Fields) -> String {
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let message = fields
            .0
            .iter()
            .position(|(name, _)| name == "message")
            .map(|at| fields.0.remove(at).1);
        match self.format {
            LogFormat::Json => {
                let mut object = Map::new();
                object.insert("time".into(), time.into());
                object.insert("level".into(), level.as_str().into());
                object.insert("target".into(), target.into());
                if let Some(message) = message {
                    object.insert("message".into(), message);
                }
                object.extend(fields.0);
                Value::Object(object).to_string()
            }
            LogFormat::Text => {
                let mut line = format!("{time} {level:>5} {target}");
                if let Some(Value::String(message)) = &message {
                    let _ = write!(line, ": {message}");
                }
                for (name, value) in fields.0 {
                    match value {
                        Value::String(text) if !text.contains(char::is_whitespace) => {
                            let _ = write!(line, " {name}={text}");
                        }
                        other => {
                            let _ = write!(line, " {name}={other}");
                        }
                    }
                }
                line
            }
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.level
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let line = self.line(metadata.level(), metadata.target(), fields);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, Value)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn lines_are_text_or_json() {
        let event_fields = || {
            fields(&[
                ("message", "request".into()),
                ("request_id", "abc-1".into()),
                ("status", 200.into()),
                ("path", "/api/v1/query x".into()),
            ])
        };
        let logger = |format| Logger {
            format,
            level: Level::INFO,
            next_span: AtomicU64::new(1),
        };
        let json: Value = serde_json::from_str(&logger(LogFormat::Json).line(
            &Level::INFO,
            "healthai::http",
            event_fields(),
        ))
        .unwrap();
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["target"], "healthai::http");
        assert_eq!(json["message"], "request");
        assert_eq!(json["request_id"], "abc-1");
        assert_eq!(json["status"], 200);
        let text = logger(LogFormat::Text).line(&Level::INFO, "healthai::http", event_fields());
        assert!(
            text.ends_with(
                " INFO healthai::http: request request_id=abc-1 status=200 path=\"/api/v1/query x\""
            ),
            "{text}"
        );
    }
}
