//! Mutual TLS on the cluster port: every node presents a certificate signed by the
//! cluster's CA and accepts only peers that present one too, in both directions.
//!
//! Built on rustls through tokio-rustls, with the PEM loading and the crypto provider of
//! the MQTT listeners (`transport::tls`), rather than on tonic's own TLS features: those
//! would bring a second way of loading the same files, and tonic's server drops a failed
//! handshake with a debug line that does not name the peer. Here the server accepts and
//! shakes hands itself, each handshake in its own task and bounded in time, hands
//! tonic only connections that passed (`serve_with_incoming`), and says in the log who was
//! refused and why; the client side is a connector for tonic's `Endpoint`.
//!
//! A peer that speaks plaintext HTTP/2 to a port that requires TLS is answered with an
//! HTTP/2 GOAWAY (INADEQUATE_SECURITY) saying so before the connection closes: the
//! misconfigured node then reads why in its own log instead of a bare "connection closed".

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::codegen::http::Uri;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::transport::tls::{self as pem, TlsError};

/// How long a peer has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The same refusal of the same address is logged at most this often: a misconfigured
/// node retries several times a second.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// What a peer that does not speak TLS is told, in plaintext HTTP/2.
const PLAINTEXT_REFUSAL: &str = "this node requires mutual TLS on the cluster port: set --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca";

/// Where a node's cluster TLS material is, and whom it checks peers against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTlsFiles {
    /// PEM certificate chain, leaf first: presented as a server and as a client, so it
    /// must allow both uses (extended key usage serverAuth and clientAuth).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM CA certificates that peers' certificates must chain to.
    pub ca: PathBuf,
    /// The name every peer's certificate must carry; None: the host part of the address
    /// the peer is reached at (a DNS name or an IP address).
    pub server_name: Option<String>,
}

/// The node's TLS configurations for the cluster port, both sides.
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    refusals: LogThrottle,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(files: &ClusterTlsFiles) -> Result<ClusterTls, TlsError> {
        let server = pem::server_config(&pem::TlsFiles {
            cert: files.cert.clone(),
            key: files.key.clone(),
            client_ca: Some(files.ca.clone()),
            client_cert_optional: false,
        })?;
        let client = rustls::ClientConfig::builder_with_provider(pem::provider())
            .with_protocol_versions(pem::VERSIONS)
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(pem::trust_anchors(&files.ca)?)
            .with_client_auth_cert(
                pem::certificates(&files.cert)?,
                pem::private_key(&files.key)?,
            )
            .map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?;
        let server_name = files
            .server_name
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_string())
                    .map_err(|e| TlsError::Config(format!("server name `{name}`: {e}")))
            })
            .transpose()?;
        Ok(ClusterTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
            refusals: LogThrottle::default(),
        })
    }

    /// The same, but dialling with `client` (its trust anchors and the certificate it
    /// presents, if any): a client that is not a node, such as an operator's tool or a
    /// test of what the port refuses.
    pub fn with_client_config(self, client: Arc<rustls::ClientConfig>) -> ClusterTls {
        ClusterTls {
            connector: TlsConnector::from(client),
            ..self
        }
    }

    /// The name the peer at `addr` (`host:port`) must prove.
    fn server_name_for(&self, addr: &str) -> std::io::Result<ServerName<'static>> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = host_of(addr);
        ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{host}` is no name to verify a certificate against ({e}): set --cluster-tls-server-name"),
            )
        })
    }
}

/// The host part of `host:port` (an IPv6 address without its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Remembers when each refusal (address and reason) was last logged.
#[derive(Default)]
struct LogThrottle(Mutex<HashMap<(IpAddr, String), Instant>>);

impl LogThrottle {
    fn allow(&self, ip: IpAddr, why: &str) -> bool {
        let mut last = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        // A flood from many addresses must not grow the map without bound.
        if last.len() >= 4096 {
            last.retain(|_, at| now.duration_since(*at) < LOG_EVERY);
        }
        let key = (ip, why.to_string());
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < LOG_EVERY => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }
}

/// A connection that passed the TLS handshake, as tonic's server reads it.
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    info: TcpConnectInfo,
}

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The connections accepted on `listener` that completed a mutual TLS handshake, for
/// tonic's `serve_with_incoming`. The accept loop ends when the stream is dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Arc<ClusterTls>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsConnection>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to be freed.
                    tracing::warn!("cluster port: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let why = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(&tls, stream, peer))
                    .await
                {
                    Ok(Ok(connection)) => {
                        let _ = tx.send(Ok(connection)).await;
                        return;
                    }
                    Ok(Err(why)) => why,
                    Err(_) => format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
                };
                if tls.refusals.allow(peer.ip(), &why) {
                    tracing::warn!(%peer, "cluster connection refused: {why}");
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

async fn accept(
    tls: &ClusterTls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<TlsConnection, String> {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => return Err("closed before the TLS handshake".into()),
        Ok(_) if first[0] != TLS_HANDSHAKE => {
            let http2 = first[0] == b'P';
            refuse_plaintext(stream, http2).await;
            return Err(format!(
                "not TLS ({}): this port requires mutual TLS",
                if http2 {
                    "plaintext gRPC, a node or client without --cluster-tls-*"
                } else {
                    "not even gRPC"
                }
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let local = stream.local_addr().ok();
    let stream = tls
        .acceptor
        .accept(stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    Ok(TlsConnection {
        stream,
        info: TcpConnectInfo {
            local_addr: local,
            remote_addr: Some(peer),
        },
    })
}

/// Answers a plaintext HTTP/2 client with its server preface and a GOAWAY that says TLS
/// is required (the client's gRPC status then reads why); anything else is just closed.
async fn refuse_plaintext(mut stream: TcpStream, http2: bool) {
    if !http2 {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), first_request(&mut stream)).await;
    let _ = stream.write_all(&goaway(PLAINTEXT_REFUSAL)).await;
    let _ = stream.shutdown().await;
    // Read what else the client sends before closing: closing with unread bytes resets
    // the connection, and the client could lose the GOAWAY to the reset.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Reads a plaintext HTTP/2 client's preface and frames until its first request (a
/// HEADERS frame) is in: a GOAWAY that comes before the request makes the client drop
/// it as merely cancelled, one that comes after fails it with the GOAWAY's reason.
async fn first_request(stream: &mut TcpStream) {
    const PREFACE_LEN: usize = 24;
    const HEADERS: u8 = 0x1;
    let mut seen = Vec::new();
    let mut next_frame = PREFACE_LEN;
    let mut chunk = [0u8; 4096];
    while seen.len() < 64 * 1024 {
        while let Some(header) = seen.get(next_frame..next_frame + 9) {
            if header[3] == HEADERS {
                return;
            }
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            next_frame += 9 + len;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An empty SETTINGS frame (the server preface) and a GOAWAY frame, INADEQUATE_SECURITY,
/// with `why` as its debug data (RFC 9113 §4.1, §6.5, §6.8).
fn goaway(why: &str) -> Vec<u8> {
    let frame = |kind: u8, payload: &[u8]| {
        let len = payload.len() as u32;
        let mut frame = len.to_be_bytes()[1..].to_vec();
        frame.extend([kind, 0, 0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        frame
    };
    const SETTINGS: u8 = 0x4;
    const GOAWAY: u8 = 0x7;
    const INADEQUATE_SECURITY: u32 = 0xc;
    let mut payload = 0u32.to_be_bytes().to_vec();
    payload.extend(INADEQUATE_SECURITY.to_be_bytes());
    payload.extend_from_slice(why.as_bytes());
    let mut out = frame(SETTINGS, &[]);
    out.extend(frame(GOAWAY, &payload));
    out
}

/// Opens TLS connections to one peer for tonic's `Endpoint::connect_with_connector_lazy`:
/// TCP (from `source` if set), then the handshake, which verifies the peer against the
/// cluster's CA and presents this node's certificate.
#[derive(Clone)]
pub(crate) struct TlsConnect {
    pub(crate) tls: Arc<ClusterTls>,
    /// `host:port`
    pub(crate) addr: String,
    pub(crate) source: Option<IpAddr>,
}

type Connecting = Pin<
    Box<
        dyn Future<Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>>
            + Send,
    >,
>;

impl tonic::codegen::Service<Uri> for TlsConnect {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Connecting {
        let this = self.clone();
        Box::pin(async move {
            let name = this.tls.server_name_for(&this.addr)?;
            let stream = tcp_connect(&this.addr, this.source).await?;
            match this.tls.connector.connect(name, stream).await {
                Ok(stream) => Ok(TokioIo::new(stream)),
                Err(e) => {
                    let why = format!("TLS handshake with {} failed: {e}", this.addr);
                    if let Ok(Some(peer)) = tokio::net::lookup_host(&this.addr)
                        .await
                        .map(|mut a| a.next())
                        && this.tls.refusals.allow(peer.ip(), &why)
                    {
                        tracing::warn!("{why}");
                    }
                    Err(std::io::Error::new(e.kind(), why))
                }
            }
        })
    }
}

/// A TCP connection to the first address of `addr` that answers, with Nagle off.
async fn tcp_connect(addr: &str, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        match socket.connect(target).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_frames_are_well_formed() {
        let bytes = goaway("why");
        // SETTINGS: empty, stream 0.
        assert_eq!(&bytes[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // GOAWAY: 8 + 3 bytes, last stream 0, INADEQUATE_SECURITY, then the reason.
        assert_eq!(&bytes[9..18], &[0, 0, 11, 7, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[18..26], &[0, 0, 0, 0, 0, 0, 0, 12]);
        assert_eq!(&bytes[26..], b"why");
    }

    #[test]
    fn peers_are_verified_against_the_host_of_their_address() {
        assert_eq!(host_of("10.1.2.3:5370"), "10.1.2.3");
        assert_eq!(host_of("[fd00::7]:5370"), "fd00::7");
        assert_eq!(
            host_of("node-2.cluster.internal:5370"),
            "node-2.cluster.internal"
        );
        assert!(matches!(
            ServerName::try_from(host_of("10.1.2.3:5370").to_string()),
            Ok(ServerName::IpAddress(_))
        ));
    }

    #[test]
    fn a_refusal_is_logged_once_per_interval() {
        let throttle = LogThrottle::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(throttle.allow(a, "no certificate"));
        assert!(!throttle.allow(a, "no certificate"));
        assert!(
            throttle.allow(a, "unknown issuer"),
            "another reason is news"
        );
        assert!(throttle.allow(b, "no certificate"));
    }
}
