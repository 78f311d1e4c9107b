//! `healthai serve`: the engine on the network until SIGINT or SIGTERM.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::Args;
use engine::{Engine, QueryLimits};
use flight::{AuthConfig, Authenticator, ServerConfig};

use crate::{CliError, access::KeyArgs};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Where Flight SQL and the gRPC API listen
    #[arg(long, env = "HEALTHAI_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
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
    #[command(flatten)]
    keys: KeyArgs,
}

impl ServeArgs {
    pub(crate) fn limits(&self) -> QueryLimits {
        QueryLimits {
            memory: self.query_memory_mib << 20,
            timeout: Duration::from_secs(self.query_timeout_secs.max(1)),
        }
    }
}

pub(crate) async fn serve(
    engine: Engine,
    args: ServeArgs,
    out: &mut impl std::io::Write,
) -> Result<(), CliError> {
    let auth = Arc::new(Authenticator::new(
        engine.clone(),
        args.keys.keys()?,
        AuthConfig::default(),
    ));
    let listener = tokio::net::TcpListener::bind(args.grpc_addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {}: {e}", args.grpc_addr)))?;
    let address = listener.local_addr()?;
    let maintenance =
        engine.spawn_maintenance(Duration::from_secs(args.maintenance_interval.max(1)));
    let connectors = (args.connector_interval > 0).then(|| {
        ingest::connectors::spawn(
            &engine,
            Duration::from_secs(args.connector_interval),
            crate::connectors::RUN_LEASE,
        )
    });
    writeln!(
        out,
        "HealthAI serving Flight SQL and the gRPC API on {address} (catalog {}); Ctrl-C stops it",
        engine.catalog().location()
    )?;
    out.flush()?;
    let config = ServerConfig {
        max_request_bytes: args.max_request_mib << 20,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
    };
    flight::serve(auth, listener, config, stopped()).await?;
    maintenance.abort();
    // A run cut short keeps its previous cursor and lease: another node, or this one after
    // the lease, runs it again, and re-delivered rows are upserts.
    if let Some(connectors) = connectors {
        connectors.abort();
    }
    engine.flush_audit().await;
    writeln!(out, "stopped")?;
    Ok(())
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
