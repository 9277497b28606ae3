//! The command line's side of the HTTP listener (`raftmq node drain`): one request, one
//! answer. Hand-written HTTP/1.1 over a TCP stream — a request line, `Connection: close`
//! and reading to the end — rather than an HTTP client crate for one call to a node
//! we know speaks plain HTTP/1.1.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// `POST path` to the node at `addr` (host:port); the body of a 2xx answer.
pub async fn post(addr: &str, path: &str) -> anyhow::Result<String> {
    request(addr, "POST", path).await
}

/// `GET path` to the node at `addr` (host:port); the body of a 2xx answer.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    request(addr, "GET", path).await
}

async fn request(addr: &str, method: &str, path: &str) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{addr} did not answer within {TIMEOUT:?}"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("{addr} did not answer HTTP: {head:?}"))?;
    if !(200..300).contains(&status) {
        bail!("{method} {path} on {addr}: HTTP {status}: {body}");
    }
    Ok(body.to_owned())
}
