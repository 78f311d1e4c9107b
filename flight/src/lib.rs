//! The network surface of HealthAI: one gRPC port serving Arrow Flight SQL (BI tools, ADBC,
//! pyarrow), the typed gRPC API of `proto/healthai/v1` (services), gRPC health checking and
//! reflection (standard tooling); and one HTTP port ([`http`]) serving the REST API, the
//! InfluxDB write endpoint and the observability endpoints. Every call but health,
//! reflection, metrics and the login calls authenticates; the engine then applies the
//! caller's access policy.
//!
//! ```no_run
//! # async fn example(engine: engine::Engine, keys: flight::SigningKeys) -> flight::Result<()> {
//! let auth = std::sync::Arc::new(flight::Authenticator::new(engine, keys, flight::AuthConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await.unwrap();
//! flight::serve(auth, listener, flight::ServerConfig::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod auth;
mod error;
mod flight_sql;
mod grpc;
pub mod http;
mod metadata;

use std::{future::Future, sync::Arc, time::Duration};

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;

pub use auth::{AuthConfig, Authenticator, SigningKeys, Tokens};
pub use error::{Error, Kind, Result};

/// The typed API, generated from `proto/healthai/v1`.
pub mod pb {
    tonic::include_proto!("healthai.v1");

    /// The encoded descriptors of the typed API, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("healthai_descriptor");
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest message a client may send (DoPut batches, ingest requests), in bytes.
    pub max_request_bytes: usize,
    /// How long calls in progress may run on after shutdown begins; then they are cut off,
    /// so a client that never reads its stream cannot keep the server alive.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_request_bytes: 64 << 20,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves every gRPC service on `listener` until `shutdown` completes, then finishes the
/// calls in progress for at most `config.shutdown_grace`.
pub async fn serve(
    auth: Arc<Authenticator>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    use pb::{
        admin_service_server::AdminServiceServer, auth_service_server::AuthServiceServer,
        catalog_service_server::CatalogServiceServer, ingest_service_server::IngestServiceServer,
        query_service_server::QueryServiceServer,
    };
    let limit = config.max_request_bytes;
    let flight = FlightServiceServer::new(flight_sql::FlightEndpoints(Arc::new(
        flight_sql::FlightSql::new(auth.clone())?,
    )))
    .max_decoding_message_size(limit);
    let services = grpc::Services::new(auth);
    let query = QueryServiceServer::new(services.clone()).max_decoding_message_size(limit);
    let ingest = IngestServiceServer::new(services.clone()).max_decoding_message_size(limit);
    let catalog = CatalogServiceServer::new(services.clone()).max_decoding_message_size(limit);
    let admin = AdminServiceServer::new(services.clone()).max_decoding_message_size(limit);
    let sessions = AuthServiceServer::new(services);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<QueryServiceServer<grpc::Services>>()
        .await;
    health
        .set_serving::<IngestServiceServer<grpc::Services>>()
        .await;
    health
        .set_serving::<CatalogServiceServer<grpc::Services>>()
        .await;
    health
        .set_serving::<AdminServiceServer<grpc::Services>>()
        .await;
    health
        .set_serving::<AuthServiceServer<grpc::Services>>()
        .await;
    health
        .set_service_status(
            "arrow.flight.protocol.FlightService",
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let reflection = |builder: tonic_reflection::server::Builder<'static>| {
        builder
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;

    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(flight)
        .add_service(query)
        .add_service(ingest)
        .add_service(catalog)
        .add_service(admin)
        .add_service(sessions)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        );
    let grace_over = async move {
        match stopped.await {
            Ok(()) => tokio::time::sleep(config.shutdown_grace).await,
            // The server finished on its own and dropped the signal; the other branch wins.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result.map_err(|e| Error::Internal(format!("the gRPC server stopped: {e}"))),
        () = grace_over => Ok(()),
    }
}
