//! The command line's side of the HTTP listener (`raftmq node drain`, `raftmq user ...`,
//! `raftmq acl ...`): one request, one answer. Hand-written HTTP/1.1 over a TCP stream — a
//! request line, the token, `Connection: close` and reading to the end — rather than an
//! HTTP client crate for a few calls to a node we know speaks plain HTTP/1.1.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A node's HTTP API at `addr` (host:port), called with `token` when there is one.
#[derive(Debug, Clone)]
pub struct Api {
    addr: String,
    token: Option<String>,
}

impl Api {
    pub fn new(addr: impl Into<String>, token: Option<String>) -> Self {
        Api {
            addr: addr.into(),
            token,
        }
    }

    /// `GET path`; the body of a 2xx answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<String> {
        self.request("GET", path, None).await
    }

    /// `POST path` without a body.
    pub async fn post(&self, path: &str) -> anyhow::Result<String> {
        self.request("POST", path, None).await
    }

    /// `method path` with a JSON body.
    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<String> {
        self.request(method, path, Some(("application/json", body.to_string())))
            .await
    }

    /// `method path` with a plain-text body.
    pub async fn send_text(
        &self,
        method: &str,
        path: &str,
        body: String,
    ) -> anyhow::Result<String> {
        self.request(method, path, Some(("text/plain; charset=utf-8", body)))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<String> {
        self.request("DELETE", path, None).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
    ) -> anyhow::Result<String> {
        let mut headers = Vec::new();
        let authorization = self.token.as_ref().map(|t| format!("Bearer {t}"));
        if let Some(value) = &authorization {
            headers.push(("Authorization", value.as_str()));
        }
        let body = body.as_ref().map(|(kind, text)| (*kind, text.as_str()));
        let (status, answer) = self.exchange(method, path, &headers, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} on {}: HTTP {status}: {answer}", self.addr);
        }
        Ok(answer)
    }

    /// `method path` with exactly these `headers` and `(content type, body)`, whatever the
    /// status: the status and the body (for tests of refusals and error answers).
    pub async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> anyhow::Result<(u16, String)> {
        let addr = &self.addr;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = match body {
            Some((content_type, body)) => {
                head.push_str(&format!("Content-Type: {content_type}\r\n"));
                body
            }
            None => "",
        };
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connecting to {addr}"))?;
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            anyhow::Ok(answer)
        };
        let answer = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .with_context(|| {
                format!("{addr} did not answer {method} {path} within {TIMEOUT:?}")
            })??;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .with_context(|| format!("{addr} did not answer HTTP: {head:?}"))?;
        Ok((status, body.to_owned()))
    }
}
