//! The node's HTTP API from the tests' side: raw requests with any headers and any status
//! (the crate's `admin::client` sends the right token and takes only 2xx answers), and the
//! `raftmq user ...` / `raftmq acl ...` commands run as processes, the way an operator
//! runs them.

use std::process::{Output, Stdio};

use raftmq::local_cluster::LocalNode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::WAIT;
use crate::broker_support::raftmq_binary;

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

/// `raftmq <args> --http <node> --token-file <node's token file>`, with `stdin` fed to
/// it; its output, whatever its exit status.
pub(crate) async fn cli(node: &LocalNode, args: &[&str], stdin: Option<&str>) -> Output {
    let token_file = raftmq::admin::token::default_file(&node.data_dir);
    let mut child = Command::new(raftmq_binary())
        .args(args)
        .arg("--http")
        .arg(&node.http_addr)
        .arg("--token-file")
        .arg(&token_file)
        // Nothing from the environment running the tests picks another node or token.
        .env_remove("RAFTMQ_HTTP")
        .env_remove("RAFTMQ_API_TOKEN")
        .env_remove("RAFTMQ_API_TOKEN_FILE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start raftmq");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes())
            .await
            .expect("write to raftmq's stdin");
    }
    tokio::time::timeout(WAIT * 2, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("raftmq {args:?} did not finish in time"))
        .expect("wait for raftmq")
}

/// [`cli`] that must succeed; its standard output.
pub(crate) async fn cli_ok(node: &LocalNode, args: &[&str], stdin: Option<&str>) -> String {
    let output = cli(node, args, stdin).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "raftmq {args:?} failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Writes an ACL file (TOML) into `dir` and returns its path.
pub(crate) fn acl_file(dir: &tempfile::TempDir, name: &str, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, toml).expect("write ACL file");
    path
}
