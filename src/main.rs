//! `healthai`: the command line of the HealthAI engine.
//!
//! Every command works on the embedded default (`./healthai-data/`: `catalog.db` and
//! `store/`) unless `--catalog`/`--store` (or `HEALTHAI_CATALOG`/`HEALTHAI_STORE`) say
//! otherwise, and acts on the organization `default` unless `--org` says otherwise. Errors
//! are printed once, as a sentence, with a non-zero exit.

mod output;

use std::{
    io::{self, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
};

use catalog::{
    Backend, Catalog, CatalogUrl, ColumnRole, ColumnType, NewStream, Stream, StreamColumn,
    StreamKind,
};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use engine::{Engine, EngineConfig, StoreLocation};
use serde::Deserialize;

const DEFAULT_CATALOG: &str = "sqlite://./healthai-data/catalog.db";
const DEFAULT_STORE: &str = "./healthai-data/store";

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

    /// Object store for the Parquet files: a directory, file:///PATH or s3://BUCKET/PREFIX
    #[arg(long, global = true, env = "HEALTHAI_STORE", default_value = DEFAULT_STORE)]
    store: String,

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
    /// List the organization's streams, or register a custom one
    Streams {
        #[command(subcommand)]
        action: Option<StreamsCommand>,
    },
    /// Store files whose columns are named like the stream's (CSV with a header, Parquet,
    /// Arrow IPC); name subjects by `subject` (pseudonym) or `subject_id`
    Write {
        stream: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a read-only SQL query on the organization's data
    Query {
        sql: String,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Merge each partition's small files into sorted, de-duplicated larger ones, then delete
    /// replaced files whose grace period is over
    Compact {
        /// Compact partitions where at least this many files need merging
        #[arg(long, default_value_t = 2)]
        min_files: usize,
    },
    /// Drop days older than each stream's retention period; optionally change one first
    Retention(RetentionArgs),
    /// Erase a subject (GDPR): hidden from queries at once, then removed from every file
    Erase {
        /// The subject's pseudonym
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization; it gets its own copy of the standard streams
    Create { name: String },
    /// List organizations
    List,
}

#[derive(Subcommand)]
enum StreamsCommand {
    /// List streams with their value columns, units and plausible ranges
    List,
    /// Register a custom stream from a JSON definition (see the README)
    Register { definition: PathBuf },
}

#[derive(Args)]
struct RetentionArgs {
    /// The stream whose retention to change
    #[arg(long, requires = "period")]
    stream: Option<String>,
    /// Keep this many days
    #[arg(long, group = "period")]
    days: Option<i64>,
    /// Keep everything
    #[arg(long, group = "period")]
    keep_all: bool,
}

/// What a command can fail with; shown to the user once, by `main`.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    #[error("{0}")]
    Usage(String),
    #[error("cannot format the result: {0}")]
    Format(#[from] arrow::error::ArrowError),
    #[error("cannot write the result as Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
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
        Err(
            e @ (CliError::Usage(_)
            | CliError::Catalog(catalog::Error::InvalidUrl { .. })
            | CliError::Engine(engine::Error::InvalidStore { .. })),
        ) => {
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
    let org = cli.org.as_str();
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
            let org = open_catalog(&catalog_url)
                .await?
                .organizations()
                .create(&name)
                .await?;
            writeln!(out, "created organization {} (id {})", org.name, org.id)?;
        }
        Command::Org(OrgCommand::List) => {
            for org in open_catalog(&catalog_url)
                .await?
                .organizations()
                .list()
                .await?
            {
                writeln!(out, "{}", org.name)?;
            }
        }
        Command::Streams { action } => {
            let catalog = open_catalog(&catalog_url).await?;
            let org = catalog.organizations().get(org).await?;
            match action.unwrap_or(StreamsCommand::List) {
                StreamsCommand::List => print_streams(out, &catalog.streams().list(org.id).await?)?,
                StreamsCommand::Register { definition } => {
                    let stream = read_definition(&definition)?;
                    let registered = catalog.streams().register(org.id, stream).await?;
                    writeln!(
                        out,
                        "registered stream {} ({} columns)",
                        registered.name,
                        registered.columns.len()
                    )?;
                }
            }
        }
        Command::Write { stream, files } => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            for file in files {
                let report = ingest::load_file(&engine, org, &stream, &file).await?;
                writeln!(
                    out,
                    "{}: {} rows written to {stream}",
                    file.display(),
                    report.rows
                )?;
            }
        }
        Command::Query { sql, format } => {
            if format.is_binary() && io::stdout().is_terminal() {
                return Err(CliError::Usage(
                    "Parquet output is binary: redirect it to a file (`> result.parquet`)".into(),
                ));
            }
            let engine = open_engine(&catalog_url, &cli.store).await?;
            let result = engine.query(org, &sql).await?;
            output::write(out, format, &result)?;
        }
        Command::Compact { min_files } => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            let report = engine.compact(min_files).await?;
            let garbage = engine.collect_garbage(Utc::now()).await?;
            writeln!(
                out,
                "compacted {} partitions: {} files into {}, {} rows into {}{}",
                report.partitions,
                report.files_in,
                report.files_out,
                report.rows_in,
                report.rows_out,
                if report.conflicts > 0 {
                    format!(" ({} changed meanwhile; next time)", report.conflicts)
                } else {
                    String::new()
                }
            )?;
            writeln!(
                out,
                "deleted {} replaced files and {} unregistered files",
                garbage.replaced, garbage.orphans
            )?;
        }
        Command::Retention(args) => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            if let Some(stream) = &args.stream {
                let days = if args.keep_all { None } else { args.days };
                let id = engine.stream(org, stream).await?.id();
                engine.catalog().streams().set_retention(id, days).await?;
                match days {
                    Some(days) => writeln!(out, "{stream} keeps {days} days")?,
                    None => writeln!(out, "{stream} keeps everything")?,
                }
            }
            let report = engine.apply_retention(Utc::now()).await?;
            writeln!(
                out,
                "dropped {} expired days ({} files, {} rows); their files are deleted after the grace period",
                report.partitions, report.files, report.rows
            )?;
        }
        Command::Erase { subject } => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            let request = engine.erase(org, &subject, None).await?;
            writeln!(
                out,
                "erased subject {subject}: {} files rewritten, {} rows removed; the replaced files \
                 are deleted after the grace period",
                request.files_rewritten.unwrap_or(0),
                request.rows_removed.unwrap_or(0)
            )?;
        }
    }
    Ok(())
}

/// Opens the catalog. The embedded catalog is migrated on the way, so that a first command on
/// a fresh machine needs no setup; a PostgreSQL catalog is migrated by `healthai migrate`,
/// deliberately, since several nodes share it.
async fn open_catalog(url: &CatalogUrl) -> catalog::Result<Arc<dyn Catalog>> {
    if url.backend() == Backend::Sqlite {
        catalog::migrate(url).await?;
    }
    catalog::open(url).await
}

async fn open_engine(catalog_url: &CatalogUrl, store: &str) -> Result<Engine, CliError> {
    let catalog = open_catalog(catalog_url).await?;
    let store = store.parse::<StoreLocation>()?.open()?;
    Ok(Engine::open(catalog, store, EngineConfig::default())?)
}

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

fn read_definition(path: &PathBuf) -> Result<NewStream, CliError> {
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
