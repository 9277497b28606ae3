//! The node's HTTP listener (8081 by default), for load balancers and operators:
//! `GET /health/live`, `GET /health/ready` (see [`health`]) and `GET /api/v1/openapi.json`
//! (`openapi`: the document of everything here) without a token; with the API token
//! ([`token`]): `GET /clients` (the clients connected to this node, with their real
//! addresses), `POST /drain`, and under `/api/v1`: `users` and `acl`, `nodes` (members,
//! membership, snapshot, leadership, drain), `clients` (the cluster's connected clients,
//! kick), `sessions` (sessions online and offline, subscriptions), `retained` and
//! `publish`; `GET /metrics` ([`metrics`]; without the token with `--metrics-public`).
//! `paging` reads queries and bodies and pages listings, `error` answers. [`dashboard`]
//! serves a web page for operators on its own listener, over these same routes.
//! [`cli`] and [`ctl`] are the command line's side, through [`client`].
//!
//! It reads through the cluster and broker handles; its changes (users, rules, kicks,
//! removed sessions, cleared retained messages, published messages) are commands proposed
//! to the log like any other.

mod acl;
pub mod cli;
pub mod client;
mod clients;
pub mod ctl;
pub mod dashboard;
mod error;
pub mod health;
mod metrics;
mod nodes;
mod openapi;
mod paging;
mod publish;
mod retained;
mod sessions;
pub mod token;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::acl::AclHandle;
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
    /// The bearer token every route but `/health/*` requires.
    pub token: String,
    /// `/metrics` is served without the token.
    pub metrics_public: bool,
    pub acl: AclHandle,
}

/// Binds `addr` and serves the API until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    spawn(
        addr,
        app(state),
        "HTTP listener (health; API with its token)",
    )
    .await
}

/// Every route of the HTTP listener; the dashboard's listener serves them too, so its page
/// calls the API on its own origin.
fn app(state: AdminState) -> Router {
    let state = Arc::new(state);
    let guarded = Router::new()
        .route("/clients", get(clients))
        .route("/drain", post(drain))
        .route("/api/v1/users", get(users::list).post(users::add))
        .route("/api/v1/users/import", post(users::import))
        .route(
            "/api/v1/users/{username}",
            put(users::set_password).delete(users::remove),
        )
        .route("/api/v1/acl", get(acl::show).put(acl::replace))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/nodes", get(nodes::list).post(nodes::add))
        .route("/api/v1/nodes/{id}", get(nodes::get).delete(nodes::remove))
        .route("/api/v1/nodes/{id}/drain", post(nodes::drain))
        .route("/api/v1/cluster/snapshot", post(nodes::snapshot))
        .route("/api/v1/cluster/leader", post(nodes::leader))
        .route("/api/v1/clients", get(clients::list))
        .route(
            "/api/v1/clients/{client_id}",
            get(clients::get).delete(clients::kick),
        )
        .route("/api/v1/sessions", get(sessions::list))
        .route(
            "/api/v1/sessions/{client_id}",
            get(sessions::get).delete(sessions::remove),
        )
        .route("/api/v1/subscriptions", get(sessions::subscriptions))
        .route("/api/v1/retained", get(retained::list))
        .route(
            "/api/v1/retained/message",
            get(retained::get).delete(retained::remove),
        )
        .route("/api/v1/publish", post(publish::publish))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            token::require,
        ));
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(guarded)
        .fallback(no_route)
        .with_state(state)
}

/// Binds `addr` and serves `app` on it until the returned task is aborted; `what` names
/// the listener in the logs.
async fn spawn(
    addr: SocketAddr,
    app: Router,
    what: &'static str,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("{what} stopped: {e}");
        }
    });
    tracing::info!(listen = %local, "{what} accepting");
    Ok((local, task))
}

/// Unknown paths answer as every other error does (axum's own 404 has no body).
async fn no_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found("not_found", format!("no route {}", uri.path()))
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
