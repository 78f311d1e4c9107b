//! `healthai serve`: the engine on the network until SIGINT or SIGTERM.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::Args;
use engine::{Engine, QueryLimits};
use flight::{AuthConfig, Authenticator, ServerConfig, http::HttpConfig};
use tokio::sync::watch;

use crate::{
    CliError,
    access::KeyArgs,
    logging::{self, LogFormat, LogLevel},
};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Where Flight SQL and the gRPC API listen
    #[arg(long, env = "HEALTHAI_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Where the REST API, /metrics, /health, /ready and the dashboard listen; `none` turns
    /// HTTP off
    #[arg(long, env = "HEALTHAI_HTTP_ADDR", default_value = "127.0.0.1:8080", value_parser = http_addr)]
    http_addr: HttpAddr,
    /// An origin whose pages may call the REST API from a browser (CORS), e.g.
    /// https://dashboard.example.org; repeat for several, `*` for any. None by default.
    #[arg(
        long = "cors-origin",
        env = "HEALTHAI_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// The largest HTTP request body, in MiB (writes, queries)
    #[arg(long, default_value_t = 64)]
    max_body_mib: usize,
    /// Log lines on stderr as text or JSON
    #[arg(long, value_enum, env = "HEALTHAI_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// The least severe log lines shown
    #[arg(long, value_enum, env = "HEALTHAI_LOG_LEVEL", default_value = "info")]
    log_level: LogLevel,
    /// The largest request a client may send, in MiB (Flight DoPut batches, ingest calls)
    #[arg(long, default_value_t = 64)]
    max_request_mib: usize,
    /// Seconds calls in progress may finish in after SIGINT or SIGTERM
    #[arg(long, default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// Seconds between rounds of background maintenance (compaction, retention, erasure,
    /// garbage collection)
    #[arg(long, default_value_t = 60)]
    maintenance_interval: u64,
    /// Seconds between looks for due connectors (0: this node runs none)
    #[arg(long, default_value_t = 5)]
    connector_interval: u64,
    /// Memory one query may use, in MiB
    #[arg(long, env = "HEALTHAI_QUERY_MEMORY_MIB", default_value_t = 1024)]
    query_memory_mib: usize,
    /// Seconds one query may run
    #[arg(long, env = "HEALTHAI_QUERY_TIMEOUT_SECS", default_value_t = 60)]
    query_timeout_secs: u64,
    /// Memory for stored Parquet files kept after a first read, in MiB (0: none)
    #[arg(long, env = "HEALTHAI_FILE_CACHE_MIB", default_value_t = 1024)]
    file_cache_mib: u64,
    #[command(flatten)]
    keys: KeyArgs,
}

/// `--http-addr`: an address, or none.
#[derive(Debug, Clone, Copy)]
struct HttpAddr(Option<SocketAddr>);

fn http_addr(text: &str) -> Result<HttpAddr, String> {
    match text {
        "none" | "off" => Ok(HttpAddr(None)),
        address => address
            .parse()
            .map(|a| HttpAddr(Some(a)))
            .map_err(|e| format!("{e}: give HOST:PORT, or none")),
    }
}

impl ServeArgs {
    pub(crate) fn limits(&self) -> QueryLimits {
        QueryLimits {
            memory: self.query_memory_mib << 20,
            timeout: Duration::from_secs(self.query_timeout_secs.max(1)),
        }
    }

    pub(crate) fn file_cache_bytes(&self) -> u64 {
        self.file_cache_mib << 20
    }
}

/// What to tell the user once the servers listen, given the gRPC and HTTP addresses.
pub(crate) type Welcome<'a> = &'a dyn Fn(SocketAddr, Option<SocketAddr>) -> String;

pub(crate) async fn serve(
    engine: Engine,
    args: ServeArgs,
    welcome: Option<Welcome<'_>>,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let auth = Arc::new(Authenticator::new(
        engine.clone(),
        args.keys.keys()?,
        AuthConfig::default(),
    ));
    logging::init(args.log_format, args.log_level);
    let listener = bind(args.grpc_addr).await?;
    let address = listener.local_addr()?;
    let http_listener = match args.http_addr.0 {
        Some(address) => {
            let config = HttpConfig {
                max_body_bytes: args.max_body_mib << 20,
                cors_origins: args.cors_origins.clone(),
            };
            let app = flight::http::router(auth.clone(), config)?;
            Some((bind(address).await?, app))
        }
        None => None,
    };
    let maintenance =
        engine.spawn_maintenance(Duration::from_secs(args.maintenance_interval.max(1)));
    let connectors = (args.connector_interval > 0).then(|| {
        ingest::connectors::spawn(
            &engine,
            Duration::from_secs(args.connector_interval),
            crate::connectors::RUN_LEASE,
        )
    });
    let http_address = match &http_listener {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
    let http = match http_address {
        Some(http) => format!(", the REST API on http://{http}"),
        None => String::new(),
    };
    writeln!(
        out,
        "HealthAI serving Flight SQL and the gRPC API on {address}{http} (catalog {}); Ctrl-C stops it",
        engine.catalog().location()
    )?;
    if let Some(welcome) = welcome {
        writeln!(out, "{}", welcome(address, http_address))?;
    }
    out.flush()?;
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let config = ServerConfig {
        max_request_bytes: args.max_request_mib << 20,
        shutdown_grace: grace,
    };
    // One signal stops both servers.
    let (stop, stopping) = watch::channel(false);
    let signals = tokio::spawn(async move {
        stopped().await;
        let _ = stop.send(true);
    });
    let grpc = flight::serve(auth.clone(), listener, config, until(stopping.clone()));
    let http = async {
        match http_listener {
            Some((listener, app)) => {
                flight::http::serve(app, listener, grace, until(stopping.clone())).await
            }
            None => Ok(()),
        }
    };
    let served = tokio::try_join!(grpc, http);
    signals.abort();
    maintenance.abort();
    // A run cut short keeps its previous cursor and lease: another node, or this one after
    // the lease, runs it again, and re-delivered rows are upserts.
    if let Some(connectors) = connectors {
        connectors.abort();
    }
    engine.flush_audit().await;
    served?;
    writeln!(out, "stopped")?;
    Ok(())
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, CliError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {address}: {e}")))
}

/// Completes once the stop signal is given.
async fn until(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Completes on SIGINT or SIGTERM.
async fn stopped() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
