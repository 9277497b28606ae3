//! The operator's HTTP API (`/api/v1/...`) end to end, against a 3-node cluster of real
//! node processes on loopback and rumqttc 5.0 clients:
//! - `nodes`: the members with their Raft view, one unreachable node, adding and removing
//!   a node, a snapshot, moving leadership, draining another node (`not_local`).
//! - `clients`: the cluster's clients with their connection details from the node that
//!   holds each, filters and paging, kicking a client connected to another node (it gets
//!   DISCONNECT 0x98, its session stays), sessions online and offline, removing an
//!   offline session on every node and a connected one, subscriptions by client and by
//!   topic.
//! - `messages`: publishing through the API to a subscriber on another node, bad input,
//!   retained messages listed, read and cleared on every node.
//! - `ctl`: the `raftmq ctl ...` commands' tables and `--json`.
//! - `schema`: every GET answer checked against the OpenAPI document by schemathesis.
//!
//! Every new route answers 401 without the token (`nodes`).

#[path = "../broker_support/mod.rs"]
mod broker_support;

mod mqtt;

mod clients;
mod ctl;

mod messages;
mod nodes;
mod schema;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use raftmq::local_cluster::{LocalCluster, LocalNode};
use serde_json::Value;
use tokio::time::Instant;

/// How long any single step may take on a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A client id unique across tests and runs.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "api-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A 3-node cluster, every node serving MQTT.
pub(crate) async fn cluster() -> LocalCluster {
    broker_support::cluster(3).await
}

/// `method path` on `node`'s API with its token (and a JSON body): status and JSON answer.
pub(crate) async fn call(
    node: &LocalNode,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let api = node.api().expect("the node's API client");
    let text = body.map(Value::to_string);
    let body = text.as_deref().map(|b| ("application/json", b));
    // The Api client adds the token to calls it makes itself; `exchange` sends exactly the
    // headers given.
    let token = raftmq::admin::token::default_file(&node.data_dir);
    let token = std::fs::read_to_string(token).expect("the node's token file");
    let bearer = format!("Bearer {}", token.trim());
    let (status, answer) = api
        .exchange(method, path, &[("Authorization", &bearer)], body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
    let value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("{method} {path}: HTTP {status}, not JSON ({e}): {answer:?}"));
    (status, value)
}

/// [`call`] that must answer `status`; the JSON answer.
pub(crate) async fn expect(
    node: &LocalNode,
    method: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let (got, answer) = call(node, method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer
}

/// The error code of an error answer.
pub(crate) fn code(answer: &Value) -> &str {
    answer["code"].as_str().unwrap_or("<no code>")
}

/// Polls `check` until it holds or `WAIT` passes (a change committed through one node
/// reaches the others' state a moment later).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if Instant::now() >= deadline => panic!("{what}: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `GET path` on `node` answers `status` (a change reaching that node's state).
pub(crate) async fn eventually_answers(node: &LocalNode, path: &str, status: u16) {
    eventually(&format!("GET {path} answering {status}"), || async {
        match call(node, "GET", path, None).await {
            (got, _) if got == status => Ok(()),
            (got, answer) => Err(format!("HTTP {got}: {answer}")),
        }
    })
    .await;
}
