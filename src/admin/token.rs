//! The HTTP API's bearer token: given (`--api-token`, `--api-token-file`) or made on a
//! node's first start and kept in `<data-dir>/api_token` (mode 0600), where an operator on
//! the host and `raftmq` commands find it. Every route but `/health/*` (and `/metrics`
//! when configured public) requires `Authorization: Bearer <token>` or `X-API-Key`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AdminState;
use super::error::ApiError;

/// The file a node keeps its generated token in.
pub fn default_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api_token")
}

/// The token: `given`, else the first line of `file`, else `<data_dir>/api_token` made
/// now if it does not exist.
pub fn resolve(
    given: Option<&str>,
    file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(token) = given {
        return checked(token.trim().to_string(), "--api-token");
    }
    if let Some(path) = file {
        return read(path);
    }
    let path = default_file(data_dir);
    if path.exists() {
        return read(&path);
    }
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(out, "{token}")?;
    tracing::info!(file = %path.display(), "HTTP API token made");
    Ok(token)
}

fn read(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the API token from {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    checked(token, &path.display().to_string())
}

fn checked(token: String, from: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        token.len() >= 16,
        "the API token from {from} is shorter than 16 characters"
    );
    Ok(token)
}

/// Lets a request through only with the node's token.
pub async fn require(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if state.metrics_public && path == "/metrics" {
        return next.run(request).await;
    }
    let headers = request.headers();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let ok = given.is_some_and(|g| bool::from(g.trim().as_bytes().ct_eq(state.token.as_bytes())));
    if ok {
        return next.run(request).await;
    }
    tracing::warn!(path, "HTTP API request refused: missing or wrong token");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this endpoint needs the API token: Authorization: Bearer <token>",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let made = resolve(None, None, dir.path()).unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(resolve(None, None, dir.path()).unwrap(), made);
        let mode = std::fs::metadata(default_file(dir.path()))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
        assert_eq!(
            resolve(Some("given-token-0123456"), None, dir.path()).unwrap(),
            "given-token-0123456"
        );
        assert!(resolve(Some("short"), None, dir.path()).is_err());
        let file = dir.path().join("t");
        std::fs::write(&file, "from-a-file-0123456\n").unwrap();
        assert_eq!(
            resolve(None, Some(&file), dir.path()).unwrap(),
            "from-a-file-0123456"
        );
    }
}
