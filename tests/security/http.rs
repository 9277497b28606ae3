//! The node's HTTP API from the tests' side: raw requests with any headers and any status
//! (the crate's `admin::client` sends the right token and takes only 2xx answers), and the
//! `raftmq user ...` / `raftmq acl ...` commands run as processes, the way an operator
//! runs them.

use raftmq::local_cluster::LocalNode;
use serde_json::Value;

pub(crate) use crate::broker_support::{cli, cli_ok};

/// `method path` on `addr` with `headers` and a `(content type, body)`: the status and
/// the body.
pub(crate) async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> anyhow::Result<(u16, String)> {
    raftmq::admin::client::Api::new(addr, None)
        .exchange(method, path, headers, body)
        .await
}

/// [`request`] whose answer must be JSON; panics otherwise.
pub(crate) async fn json(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let body = body.map(|b| ("application/json", b));
    let (status, text) = request(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:#}"));
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: HTTP {status}, not JSON ({e}): {text:?}"));
    (status, value)
}

/// The node's API token, as it made it in its data directory.
pub(crate) fn token(node: &LocalNode) -> String {
    let path = raftmq::admin::token::default_file(&node.data_dir);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Adds a user through the API (the way the tests that are not about the API do it).
pub(crate) async fn add_user(node: &LocalNode, username: &str, password: &str) {
    let token = token(node);
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let (status, answer) = json(
        &node.http_addr,
        "POST",
        "/api/v1/users",
        &[("Authorization", &format!("Bearer {token}"))],
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "adding user {username}: {answer}");
}

/// Writes an ACL file (TOML) into `dir` and returns its path.
pub(crate) fn acl_file(dir: &tempfile::TempDir, name: &str, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, toml).expect("write ACL file");
    path
}
