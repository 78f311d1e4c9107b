//! `healthai`: the command line of the HealthAI engine.
//!
//! Every command works on the embedded default (`./healthai-data/`: `catalog.db` and
//! `store/`) unless `--catalog`/`--store` (or `HEALTHAI_CATALOG`/`HEALTHAI_STORE`) say
//! otherwise, and acts on the organization `default` unless `--org` says otherwise. Errors
//! are printed once, as a sentence, with a non-zero exit.

mod access;
mod connectors;
mod demo;
mod ingest_files;
mod logging;
mod output;
mod serve;
mod simulate;
mod streams;

use std::{
    io::{self, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
};

use catalog::{Backend, Catalog, CatalogUrl};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use engine::{Engine, EngineConfig, StoreLocation};

/// Flushes, compactions and queries allocate and free buffers of megabytes. The system
/// allocator hands such blocks back to the OS on free, and faulting fresh pages in again
/// costs more than the work on them (a 1 M-row flush spent a third of its sort doing it);
/// mimalloc keeps freed memory for the next buffer. Its `no_thp` feature keeps it from asking
/// for transparent huge pages: each first touch of one zeroes 2 MiB, which took 45 % of a
/// meals ⋈ foods query's time, and the workload's hourly join (q3) ran 2× faster without.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Simulate a month of data for 100 subjects, ingest it, and serve it with the dashboard:
    /// the whole product with no configuration
    Demo(demo::DemoArgs),
    /// Apply the catalog migrations this binary carries and print what was applied
    Migrate,
    /// Ingest files (CSV, NDJSON, Parquet, Arrow; directories walked) as one cleaned batch,
    /// then print its quality report
    Ingest(ingest_files::IngestArgs),
    /// Write realistic, deterministic health data (subjects, heart rate, steps, sleep, weight,
    /// workouts, meals) as files to ingest
    Simulate(simulate::SimulateArgs),
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
    /// Serve Flight SQL, the gRPC API and the REST API (and run background maintenance)
    Serve(serve::ServeArgs),
    /// Manage the organization's users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups of subjects (cohorts, coaching groups)
    #[command(subcommand)]
    Group(GroupCommand),
    /// Issue access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Pull public HTTP APIs on a schedule: add, list, run, enable, disable connectors
    #[command(subcommand)]
    Connector(connectors::ConnectorCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user: a member is linked to their subject, a coach to the groups they coach
    Add(access::UserAdd),
    /// List users with their roles
    List,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add subjects (by pseudonym) to a group, creating it if new
    Add {
        name: String,
        #[arg(long = "member", required = true)]
        members: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a long-lived access token for a user, typically a service account
    Issue {
        /// The user's email
        #[arg(long)]
        user: String,
        /// Days the token is valid (default 90)
        #[arg(long)]
        days: Option<u64>,
        #[command(flatten)]
        keys: access::KeyArgs,
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
    #[error(transparent)]
    Flight(#[from] flight::Error),
    #[error("{0}")]
    Usage(String),
    /// The command ran and did not achieve what it was for.
    #[error("{0}")]
    Failed(String),
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
            | CliError::Engine(engine::Error::InvalidStore { .. })
            | CliError::Flight(flight::Error::Config(_))),
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
                StreamsCommand::List => {
                    streams::print_streams(out, &catalog.streams().list(org.id).await?)?
                }
                StreamsCommand::Register { definition } => {
                    let stream = streams::read_definition(&definition)?;
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
        Command::Ingest(args) => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            let principal = engine::Principal::operator(engine.organization(org).await?);
            ingest_files::ingest(&engine, &principal, &args, out).await?;
        }
        Command::Simulate(args) => simulate::run(&args, out)?,
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
        Command::Demo(args) => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            demo::demo(engine, args, org, out).await?;
        }
        Command::Serve(args) => {
            let config = EngineConfig {
                query_limits: args.limits(),
                file_cache: args.file_cache_bytes(),
                ..EngineConfig::default()
            };
            let engine = open_engine_with(&catalog_url, &cli.store, config).await?;
            serve::serve(engine, args, None, out).await?;
        }
        Command::User(command) => {
            let catalog = open_catalog(&catalog_url).await?;
            let org = catalog.organizations().get(org).await?.id;
            match command {
                UserCommand::Add(args) => {
                    access::add_user(catalog.as_ref(), org, args, out).await?
                }
                UserCommand::List => access::list_users(catalog.as_ref(), org, out).await?,
            }
        }
        Command::Group(GroupCommand::Add { name, members }) => {
            let catalog = open_catalog(&catalog_url).await?;
            let org = catalog.organizations().get(org).await?.id;
            access::add_to_group(catalog.as_ref(), org, &name, &members, out).await?;
        }
        Command::Connector(command) => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            connectors::run(&engine, org, command, out).await?;
        }
        Command::Token(TokenCommand::Issue { user, days, keys }) => {
            let engine = open_engine(&catalog_url, &cli.store).await?;
            let org = engine.organization(org).await?;
            let user = engine.catalog().users().get_by_email(org.id, &user).await?;
            let auth =
                flight::Authenticator::new(engine, keys.keys()?, flight::AuthConfig::default());
            let (token, expires) = auth.service_token(&user, access::service_token_ttl(days))?;
            writeln!(out, "{token}")?;
            eprintln!("token for {} valid until {expires}", user.email);
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
    open_engine_with(catalog_url, store, EngineConfig::default()).await
}

async fn open_engine_with(
    catalog_url: &CatalogUrl,
    store: &str,
    config: EngineConfig,
) -> Result<Engine, CliError> {
    let catalog = open_catalog(catalog_url).await?;
    let store = store.parse::<StoreLocation>()?.open()?;
    Ok(Engine::open(catalog, store, config)?)
}
