//! How bytes reach the broker: TCP, TLS (rustls), WebSocket and WebSocket over TLS, each
//! optionally behind the PROXY protocol, all ending in one stream type the broker reads
//! MQTT from, with who is on the other end. Nothing here knows MQTT.
//!
//! A listener accepts TCP connections in its loop and hands each one out at once; the
//! handshakes (PROXY header, then TLS, then the WebSocket upgrade) run in the
//! connection's own task, bounded in time, so a slow or silent peer never holds up the
//! accept loop.

pub mod proxy;
pub mod tls;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use self::proxy::{Prefixed, ProxyConfig};
use self::tls::Tls;
use self::ws::WsConfig;

/// A connection's byte stream, whatever it came through.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The stream the broker reads MQTT from.
pub type Stream = Box<dyn Io>;

/// The kinds of listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Tls => "tls",
            Kind::Ws => "ws",
            Kind::Wss => "wss",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, Kind::Tls | Kind::Wss)
    }

    fn uses_ws(self) -> bool {
        matches!(self, Kind::Ws | Kind::Wss)
    }
}

/// One listener as configured.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub kind: Kind,
    pub bind: SocketAddr,
    /// Every connection starts with a PROXY header from a trusted balancer.
    pub proxy: Option<ProxyConfig>,
    /// For `Ws` and `Wss`.
    pub ws: WsConfig,
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The client's address: from the PROXY header when there is one.
    pub addr: SocketAddr,
    /// The balancer's address, for a connection that came with a PROXY header.
    pub via: Option<SocketAddr>,
    pub listener: Kind,
    /// A verified client certificate's name: from this node's TLS (mTLS), or from the
    /// balancer's PROXY v2 TLVs when it ended TLS and verified the certificate.
    pub identity: Option<String>,
}

#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error("PROXY header: {0}")]
    Proxy(#[from] proxy::ProxyError),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("WebSocket handshake: {0}")]
    Ws(#[from] ws::WsError),
    #[error("handshake not done within {0:?}")]
    Timeout(Duration),
}

/// How long the TLS and WebSocket handshakes may take together.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener.
pub struct Listener {
    tcp: TcpListener,
    setup: Arc<Setup>,
}

struct Setup {
    spec: ListenerSpec,
    tls: Option<Arc<Tls>>,
}

impl Listener {
    /// Binds `spec`; `tls` is required for the TLS kinds.
    pub async fn bind(spec: ListenerSpec, tls: Option<Arc<Tls>>) -> std::io::Result<Listener> {
        if spec.kind.uses_tls() && tls.is_none() {
            return Err(std::io::Error::other(format!(
                "the {} listener needs a certificate and key",
                spec.kind.name()
            )));
        }
        let tcp = TcpListener::bind(spec.bind).await?;
        Ok(Listener {
            tcp,
            setup: Arc::new(Setup { spec, tls }),
        })
    }

    pub fn kind(&self) -> Kind {
        self.setup.spec.kind
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next TCP connection; its handshakes are still to do ([`Incoming::handshake`]).
    pub async fn accept(&self) -> std::io::Result<Incoming> {
        let (stream, peer) = self.tcp.accept().await?;
        // Packets are coalesced into one write per flush by the connection.
        let _ = stream.set_nodelay(true);
        Ok(Incoming {
            stream,
            peer,
            setup: self.setup.clone(),
        })
    }
}

/// An accepted TCP connection before its handshakes.
pub struct Incoming {
    stream: TcpStream,
    peer: SocketAddr,
    setup: Arc<Setup>,
}

impl Incoming {
    /// The address the socket sees (the balancer's, behind one).
    pub fn socket_peer(&self) -> SocketAddr {
        self.peer
    }

    /// Reads the PROXY header (if the listener expects one), then runs the TLS and
    /// WebSocket handshakes (if the listener has them).
    pub async fn handshake(self) -> Result<(Stream, Peer), HandshakeError> {
        let Incoming {
            stream,
            peer: socket_peer,
            setup,
        } = self;
        let spec = &setup.spec;
        let mut peer = Peer {
            addr: socket_peer,
            via: None,
            listener: spec.kind,
            identity: None,
        };
        let base = match &spec.proxy {
            Some(config) => {
                let (stream, proxied) = proxy::accept(stream, socket_peer, config).await?;
                peer.addr = proxied.source;
                peer.via = Some(socket_peer);
                peer.identity = proxied
                    .tls
                    .filter(|tls| tls.ssl && tls.client_cert_verified)
                    .and_then(|tls| tls.client_cn);
                stream
            }
            None => Prefixed::new(bytes::Bytes::new(), stream),
        };
        let rest = async {
            let stream: Stream = match (&setup.tls, spec.kind.uses_tls()) {
                (Some(tls), true) => {
                    let stream = tls
                        .acceptor()
                        .accept(base)
                        .await
                        .map_err(HandshakeError::Tls)?;
                    if let Some(cert) = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                    {
                        peer.identity = tls::certificate_identity(cert);
                    }
                    if spec.kind.uses_ws() {
                        Box::new(ws::accept(stream, &spec.ws).await?)
                    } else {
                        Box::new(stream)
                    }
                }
                _ if spec.kind.uses_ws() => Box::new(ws::accept(base, &spec.ws).await?),
                _ => Box::new(base),
            };
            Ok::<_, HandshakeError>(stream)
        };
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, rest)
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))??;
        Ok((stream, peer))
    }
}
