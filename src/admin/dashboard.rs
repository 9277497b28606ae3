//! The operators' dashboard (`--dashboard-listen`, 127.0.0.1:18083 by default): a page
//! of plain HTML, CSS and JavaScript compiled into the binary, so nothing is built or
//! fetched to show it. Its listener also serves every route of the HTTP listener
//! ([`super::app`]), so the page calls `/api/v1/...` and `/metrics` on its own origin
//! with the API token the operator types in; the page itself holds no secret.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;

use super::AdminState;

const INDEX: &str = include_str!("dashboard/index.html");
const STYLE: &str = include_str!("dashboard/dashboard.css");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");

/// The page loads only its own files and calls only its own origin, and no other site may
/// frame it (the token is typed into it).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Binds `addr` and serves the dashboard and the API until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let assets = Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/dashboard.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/dashboard.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        );
    super::spawn(addr, assets.merge(super::app(state)), "dashboard listener").await
}

async fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, kind),
            (CONTENT_SECURITY_POLICY, POLICY),
            (X_FRAME_OPTIONS, "DENY"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
