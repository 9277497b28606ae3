//! The node's HTTP listener from the tests' side: any status with its body (the crate's
//! `admin::client` takes only 2xx answers, and a 503 is what the health tests look for),
//! and waits on `/health/ready` and `/clients` with time limits.

use std::time::Duration;

use anyhow::Context;
use raftmq::local_cluster::LocalNode;
use serde_json::Value;
use tokio::time::Instant;

use crate::WAIT;

/// `method path` on the node at `addr`: the status code and the body.
pub(crate) async fn request(addr: &str, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    raftmq::admin::client::Api::new(addr, None)
        .exchange(method, path, &[], None)
        .await
}

/// `GET path` as JSON, with its status.
pub(crate) async fn get_json(addr: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let (status, body) = request(addr, "GET", path).await?;
    let json = serde_json::from_str(&body).with_context(|| format!("{path}: {body:?}"))?;
    Ok((status, json))
}

/// `/health/ready`: its status and report; panics if the node does not answer.
pub(crate) async fn ready(addr: &str) -> (u16, Value) {
    get_json(addr, "/health/ready")
        .await
        .unwrap_or_else(|e| panic!("/health/ready on {addr}: {e:#}"))
}

/// Polls `/health/ready` until its status is `status`; the report at that point. A node
/// that does not answer counts as not there yet.
pub(crate) async fn wait_ready_status(addr: &str, status: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let last = match get_json(addr, "/health/ready").await {
            Ok((got, report)) if got == status => return report,
            other => other,
        };
        assert!(
            Instant::now() < deadline,
            "/health/ready on {addr} not {status} within {within:?}; last: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The entry of `client_id` in the node's `/clients`, once it is there.
pub(crate) async fn wait_client(node: &LocalNode, client_id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    let addr = &node.http_addr;
    let api = node.api().expect("the node's API token");
    loop {
        let body = api
            .get("/clients")
            .await
            .unwrap_or_else(|e| panic!("/clients on {addr}: {e:#}"));
        let clients: Vec<Value> = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/clients on {addr} is not a JSON array: {e}: {body}"));
        if let Some(client) = clients.into_iter().find(|c| c["client_id"] == client_id) {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "{client_id} not listed by /clients on {addr} within {WAIT:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a readiness report gives `reason` (in part) among its reasons.
pub(crate) fn has_reason(report: &Value, reason: &str) -> bool {
    report["reasons"].as_array().is_some_and(|all| {
        all.iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains(reason)))
    })
}
