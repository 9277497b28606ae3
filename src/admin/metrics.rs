//! `GET /metrics`: the node's metrics for Prometheus (see [`crate::metrics`]), behind the
//! API token unless the node runs with `--metrics-public`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::AdminState;
use super::error::ApiError;

/// prometheus-client writes the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) async fn scrape(State(state): State<Arc<AdminState>>) -> Response {
    match state.broker.metrics() {
        Ok(text) => ([(CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(e) => ApiError::internal(format!("metrics: {e}")).into_response(),
    }
}
