//! `healthai connector`: add, list, run, enable and disable the connectors that pull public
//! HTTP APIs (see `ingest::connectors`).

use std::{io::Write, path::Path, time::Duration};

use catalog::{Connector, NewConnector};
use chrono::Utc;
use clap::{Args, Subcommand};
use engine::Engine;
use ingest::connectors::{self, RunReport};

use crate::CliError;

/// How long a run by hand holds its connector before another node may take it over.
pub(crate) const RUN_LEASE: Duration = Duration::from_secs(30 * 60);

#[derive(Subcommand)]
pub(crate) enum ConnectorCommand {
    /// Add a connector; its configuration is checked first, naming any bad key
    Add(AddArgs),
    /// List the organization's connectors with their schedule, cursor and last outcome
    List,
    /// Run a connector now, whatever its schedule, and print what it did
    Run { name: String },
    /// Let the scheduler of `healthai serve` run a connector again
    Enable { name: String },
    /// Stop the scheduler from running a connector (`connector run` still can)
    Disable { name: String },
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Lowercase letters, digits, - and _
    name: String,
    /// json_api or open_food_facts
    #[arg(long)]
    kind: String,
    /// The configuration: a JSON file, or the JSON itself (see the README)
    #[arg(long)]
    config: String,
    /// How often it runs: seconds, or a number with s, m, h or d (30s, 15m, 6h, 1d)
    #[arg(long, default_value = "1h", value_parser = parse_every)]
    every: i64,
}

/// A schedule such as `15m` in seconds.
fn parse_every(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "'{text}' is not a period such as 30s, 15m, 6h or 1d"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|seconds| *seconds > 0)
        .ok_or_else(|| format!("'{text}' is not a period such as 30s, 15m, 6h or 1d"))
}

/// The configuration as given: JSON text, or the path of a JSON file.
fn read_config(given: &str) -> Result<serde_json::Value, CliError> {
    let trimmed = given.trim_start();
    let (text, origin) = if trimmed.starts_with('{') {
        (given.to_owned(), "--config".to_owned())
    } else {
        let path = Path::new(given);
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        (text, path.display().to_string())
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{origin} is not valid JSON: {e}")))
}

pub(crate) async fn run(
    engine: &Engine,
    org: &str,
    command: ConnectorCommand,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let org = engine.organization(org).await?;
    let repo = engine.catalog().connectors();
    match command {
        ConnectorCommand::Add(args) => {
            let config = read_config(&args.config)?;
            let variables = connectors::environment_variables(&config);
            let connector = connectors::create(
                engine,
                NewConnector {
                    org: org.id,
                    name: args.name,
                    kind: args.kind,
                    config,
                    schedule_seconds: args.every,
                    first_run_at: Utc::now(),
                },
            )
            .await?;
            writeln!(
                out,
                "added connector {} ({}), every {}; `healthai serve` runs it, \
                 `healthai connector run {}` runs it now",
                connector.name,
                connector.kind,
                period(connector.schedule_seconds),
                connector.name
            )?;
            for name in variables {
                if std::env::var_os(&name).is_none() {
                    writeln!(
                        out,
                        "note: {name} is not set here; the nodes that run it need it"
                    )?;
                }
            }
        }
        ConnectorCommand::List => print_list(out, &repo.list(org.id).await?)?,
        ConnectorCommand::Run { name } => {
            let report = connectors::run_now(engine, &org, &name, RUN_LEASE).await?;
            engine.flush_audit().await;
            print_report(out, &report)?;
            if let Some(error) = report.error {
                return Err(CliError::Failed(format!(
                    "connector {name} failed: {error}"
                )));
            }
        }
        ConnectorCommand::Enable { name } => {
            let connector = repo.get_by_name(org.id, &name).await?;
            repo.set_enabled(connector.id, true).await?;
            writeln!(
                out,
                "enabled connector {name}; next run at {}",
                connector.next_run_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
        ConnectorCommand::Disable { name } => {
            let connector = repo.get_by_name(org.id, &name).await?;
            repo.set_enabled(connector.id, false).await?;
            writeln!(out, "disabled connector {name}")?;
        }
    }
    Ok(())
}

/// Seconds as the largest whole unit: `15m`, `1d`, `90s`.
fn period(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

fn print_list(out: &mut impl Write, connectors: &[Connector]) -> std::io::Result<()> {
    if connectors.is_empty() {
        return writeln!(
            out,
            "no connectors; add one with `healthai connector add NAME --kind KIND --config JSON`"
        );
    }
    writeln!(
        out,
        "{:<20} {:<16} {:<8} {:<6} {:<8} {:<20} {:<20} CURSOR / LAST ERROR",
        "NAME", "KIND", "ENABLED", "EVERY", "STATUS", "LAST RUN", "NEXT RUN"
    )?;
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    for c in connectors {
        let detail = match (&c.last_error, &c.cursor) {
            (Some(error), _) => format!("error: {error}"),
            (None, Some(cursor)) => cursor.clone(),
            (None, None) => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<20} {:<16} {:<8} {:<6} {:<8} {:<20} {:<20} {detail}",
            c.name,
            c.kind,
            if c.enabled { "yes" } else { "no" },
            period(c.schedule_seconds),
            c.status.as_str(),
            time(c.last_run_at),
            time(Some(c.next_run_at)),
        )?;
    }
    Ok(())
}

fn print_report(out: &mut impl Write, report: &RunReport) -> std::io::Result<()> {
    let seconds = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    writeln!(
        out,
        "connector {} ({}): {} request(s), {} retried, in {seconds:.1} s",
        report.connector, report.kind, report.requests, report.retries
    )?;
    if let Some(batch) = &report.ingest {
        let totals = batch.totals();
        writeln!(
            out,
            "  batch {}: {} page(s), {} rows read, {} accepted, {} rejected, {} corrected, {} duplicates merged",
            batch.batch,
            report.pages,
            totals.rows_in,
            totals.rows_accepted,
            totals.rejected(),
            totals.corrected(),
            totals.duplicates()
        )?;
        if batch.rejections_total > 0 {
            writeln!(
                out,
                "  quarantine: see healthai query \"SELECT * FROM system.quarantine WHERE batch_id = {}\"",
                batch.batch
            )?;
            for r in batch.rejections.iter().take(5) {
                writeln!(out, "    {} record {}: {}", r.file, r.record, r.reason)?;
            }
        }
    }
    if let Some(foods) = &report.foods {
        writeln!(
            out,
            "  foods: {} product(s) found, {} written",
            foods.fetched, foods.written
        )?;
        if !foods.not_found.is_empty() {
            writeln!(
                out,
                "  not in Open Food Facts: {}",
                foods.not_found.join(", ")
            )?;
        }
        if !foods.not_barcodes.is_empty() {
            writeln!(
                out,
                "  meals' food ids that are not barcodes: {}",
                foods.not_barcodes.join(", ")
            )?;
        }
        if foods.values_dropped > 0 {
            writeln!(
                out,
                "  {} impossible nutrient value(s) left out",
                foods.values_dropped
            )?;
        }
    }
    writeln!(
        out,
        "  cursor {}; next run at {}",
        report.cursor.as_deref().unwrap_or("(none)"),
        report.next_run_at.format("%Y-%m-%d %H:%M:%S UTC")
    )?;
    if let Some(error) = &report.error {
        writeln!(out, "  failed: {error}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_and_print() {
        assert_eq!(parse_every("15m"), Ok(900));
        assert_eq!(parse_every("1d"), Ok(86_400));
        assert_eq!(parse_every("90"), Ok(90));
        assert!(parse_every("0m").is_err());
        assert!(parse_every("15 minutes").is_err());
        assert!(parse_every("99999999999999999d").is_err());
        assert_eq!(period(900), "15m");
        assert_eq!(period(90), "90s");
        assert_eq!(period(86_400), "1d");
    }
}
