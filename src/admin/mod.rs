//! The node's HTTP listener (8081 by default), for load balancers and operators:
//! `GET /health/live`, `GET /health/ready` (see [`health`]), `GET /clients` (the clients
//! connected to this node, with their real addresses) and `POST /drain`.
//!
//! It reads through the cluster and broker handles and changes nothing but the drain flag.

pub mod client;
pub mod health;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::broker::BrokerHandle;
use crate::cluster::node::ClusterHandle;

/// What the handlers read.
#[derive(Clone)]
pub struct AdminState {
    pub cluster: ClusterHandle,
    pub broker: BrokerHandle,
    /// /health/ready fails while applied trails committed by more than this.
    pub max_lag: u64,
    /// How long a drain reports 503 before it disconnects the clients.
    pub drain_grace: std::time::Duration,
}

/// Binds `addr` and serves the API until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/clients", get(clients))
        .route("/drain", post(drain))
        .with_state(Arc::new(state));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("HTTP listener stopped: {e}");
        }
    });
    tracing::info!(listen = %local, "HTTP listener (health, clients, drain) accepting");
    Ok((local, task))
}

async fn live() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "live" }))
}

async fn ready(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let report = health::readiness(
        &state.cluster.raft_health(),
        &state.broker.status(),
        state.max_lag,
    );
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}

async fn clients(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    Json(state.broker.clients())
}

async fn drain(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let started = state.broker.drain(state.drain_grace);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "draining": true, "started": started })),
    )
}
