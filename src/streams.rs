//! Streams at the command line: listing them, and custom stream definitions in JSON.

use std::{io, io::Write, path::Path};

use catalog::{ColumnRole, ColumnType, NewStream, Stream, StreamColumn, StreamKind};
use serde::Deserialize;

use crate::CliError;

/// A custom stream as written in a JSON file: the series key and time columns are added.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamDefinition {
    name: String,
    kind: StreamKind,
    #[serde(default)]
    description: String,
    retention_days: Option<i64>,
    max_duration_seconds: Option<i64>,
    columns: Vec<ColumnDefinition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnDefinition {
    name: String,
    #[serde(rename = "type")]
    arrow_type: ColumnType,
    unit: Option<String>,
    #[serde(default = "value_role")]
    role: ColumnRole,
    #[serde(default = "yes")]
    nullable: bool,
    min: Option<f64>,
    max: Option<f64>,
    allowed_values: Option<Vec<String>>,
    #[serde(default)]
    description: String,
}

fn value_role() -> ColumnRole {
    ColumnRole::Value
}

fn yes() -> bool {
    true
}

pub(crate) fn read_definition(path: &Path) -> Result<NewStream, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let definition: StreamDefinition = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!("{}: not a stream definition: {e}", path.display()))
    })?;
    let columns = definition
        .columns
        .into_iter()
        .map(|c| StreamColumn {
            name: c.name,
            arrow_type: c.arrow_type,
            unit: c.unit,
            role: c.role,
            nullable: c.nullable,
            plausible_min: c.min,
            plausible_max: c.max,
            allowed_values: c.allowed_values,
            description: c.description,
        })
        .collect();
    let mut stream = NewStream::new(&definition.name, definition.kind, columns);
    stream.description = definition.description;
    stream.retention_days = definition.retention_days;
    stream.max_duration_seconds = definition.max_duration_seconds;
    Ok(stream)
}

pub(crate) fn print_streams(out: &mut impl Write, streams: &[Stream]) -> io::Result<()> {
    writeln!(out, "{:<18} {:<9} {:<9} VALUES", "STREAM", "KIND", "ORIGIN")?;
    for s in streams {
        let values: Vec<_> = s
            .columns
            .iter()
            .filter(|c| {
                !matches!(
                    c.name.as_str(),
                    "subject_id" | "source" | "time" | "end_time"
                )
            })
            .map(describe)
            .collect();
        let origin = if s.standard { "standard" } else { "custom" };
        writeln!(
            out,
            "{:<18} {:<9} {:<9} {}",
            s.name,
            s.kind,
            origin,
            values.join(", ")
        )?;
    }
    Ok(())
}

fn describe(column: &StreamColumn) -> String {
    let mut details = Vec::new();
    if let Some(unit) = &column.unit {
        details.push(unit.clone());
    }
    match (column.plausible_min, column.plausible_max) {
        (Some(min), Some(max)) => details.push(format!("{min}..{max}")),
        (Some(min), None) => details.push(format!(">= {min}")),
        (None, Some(max)) => details.push(format!("<= {max}")),
        (None, None) => {}
    }
    if let Some(values) = &column.allowed_values {
        details.push(values.join("|"));
    }
    if details.is_empty() {
        column.name.clone()
    } else {
        format!("{} ({})", column.name, details.join(", "))
    }
}
