//! `healthai`: the command line of the HealthAI engine.
//!
//! Every command works on the embedded default (`./healthai-data/`) unless `--catalog`
//! (or `HEALTHAI_CATALOG`) says otherwise, and acts on the organization `default` unless
//! `--org` says otherwise. Errors are printed once, as a sentence, with a non-zero exit.

use std::{
    io::{self, Write},
    process::ExitCode,
    sync::Arc,
};

use catalog::{Backend, Catalog, CatalogUrl, Stream, StreamColumn};
use clap::{Parser, Subcommand};

const DEFAULT_CATALOG: &str = "sqlite://./healthai-data/catalog.db";

#[derive(Parser)]
#[command(
    name = "healthai",
    version,
    about = "Time-series analytics engine for health data"
)]
struct Cli {
    /// Catalog database: postgres://USER:PASSWORD@HOST:PORT/DB or sqlite://PATH
    // Parsed by `run`, not by clap, whose errors would echo the password.
    #[arg(long, global = true, env = "HEALTHAI_CATALOG", default_value = DEFAULT_CATALOG)]
    catalog: String,

    /// Organization the command acts on
    #[arg(long, global = true, env = "HEALTHAI_ORG", default_value = catalog::DEFAULT_ORG)]
    org: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the catalog migrations this binary carries and print what was applied
    Migrate,
    /// Manage organizations
    #[command(subcommand)]
    Org(OrgCommand),
    /// List the organization's streams with their value columns, units and plausible ranges
    Streams,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization; it gets its own copy of the standard streams
    Create { name: String },
    /// List organizations
    List,
}

/// What a command can fail with; shown to the user once, by `main`.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli, &mut io::stdout().lock()).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`healthai streams | head`): not an error of ours.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        // Like clap's usage errors: the command line itself is wrong.
        Err(e @ CliError::Catalog(catalog::Error::InvalidUrl { .. })) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, out: &mut impl Write) -> Result<(), CliError> {
    let catalog_url: CatalogUrl = cli.catalog.parse()?;
    match cli.command {
        Command::Migrate => {
            let report = catalog::migrate(&catalog_url).await?;
            writeln!(
                out,
                "catalog {} ({})",
                report.location,
                catalog_url.backend()
            )?;
            for m in &report.applied {
                writeln!(out, "applied V{}__{}", m.version, m.name)?;
            }
            if report.applied.is_empty() {
                writeln!(
                    out,
                    "schema version {} is current; nothing to apply",
                    report.version
                )?;
            } else {
                writeln!(out, "schema version {}", report.version)?;
            }
        }
        Command::Org(OrgCommand::Create { name }) => {
            let org = open(&catalog_url)
                .await?
                .organizations()
                .create(&name)
                .await?;
            writeln!(out, "created organization {} (id {})", org.name, org.id)?;
        }
        Command::Org(OrgCommand::List) => {
            for org in open(&catalog_url).await?.organizations().list().await? {
                writeln!(out, "{}", org.name)?;
            }
        }
        Command::Streams => {
            let catalog = open(&catalog_url).await?;
            let org = catalog.organizations().get(&cli.org).await?;
            print_streams(out, &catalog.streams().list(org.id).await?)?;
        }
    }
    Ok(())
}

/// Opens the catalog. The embedded catalog is migrated on the way, so that a first command on
/// a fresh machine needs no setup; a PostgreSQL catalog is migrated by `healthai migrate`,
/// deliberately, since several nodes share it.
async fn open(url: &CatalogUrl) -> catalog::Result<Arc<dyn Catalog>> {
    if url.backend() == Backend::Sqlite {
        catalog::migrate(url).await?;
    }
    catalog::open(url).await
}

fn print_streams(out: &mut impl Write, streams: &[Stream]) -> io::Result<()> {
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
