//! The listeners' settings: MQTT over TLS, WebSocket and WebSocket over TLS next to the
//! plain TCP listener, the PROXY protocol on any of them, the HTTP listener of the health
//! checks and the API, and the dashboard's. Each is enabled, bound and configured on its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use super::ConfigError;
use crate::transport::proxy::{IpNet, ProxyConfig};
use crate::transport::tls::TlsFiles;
use crate::transport::ws::WsConfig;
use crate::transport::{Kind, ListenerSpec};

/// A listener's address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse()
            .map(Listen::At)
            .map_err(|_| format!("`{s}` is neither host:port (an IP address) nor `off`"))
    }
}

impl Listen {
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(addr) => Some(addr),
        }
    }
}

/// Listener flags (flattened into the node's settings).
#[derive(Args, Debug, Clone)]
pub struct ListenerArgs {
    /// Expect a PROXY protocol (v1 or v2) header on every connection to --mqtt-listen.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_MQTT_PROXY_PROTOCOL")]
    pub mqtt_proxy_protocol: bool,
    /// Address of the MQTT over TLS listener, or `off`; it runs only with --tls-cert and
    /// --tls-key.
    #[arg(long, default_value = "0.0.0.0:8883", env = "RAFTMQ_TLS_LISTEN")]
    pub tls_listen: Listen,
    /// PEM certificate chain (leaf first) of the TLS and WSS listeners. Reloaded on SIGHUP
    /// and when the file changes; established connections keep theirs.
    #[arg(long, env = "RAFTMQ_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "RAFTMQ_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate that chains to one of them
    /// (mTLS); its common name (else first DNS/email alternative name) is the client's
    /// identity.
    #[arg(long, env = "RAFTMQ_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: also accept clients that present no certificate.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_TLS_CLIENT_CERT_OPTIONAL")]
    pub tls_client_cert_optional: bool,
    /// Expect a PROXY protocol header on every connection to --tls-listen (before TLS).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_TLS_PROXY_PROTOCOL")]
    pub tls_proxy_protocol: bool,
    /// Address of the MQTT over WebSocket listener, or `off`.
    #[arg(long, default_value = "0.0.0.0:8083", env = "RAFTMQ_WS_LISTEN")]
    pub ws_listen: Listen,
    /// Address of the MQTT over WebSocket over TLS listener, or `off`; it runs only with
    /// --tls-cert and --tls-key.
    #[arg(long, default_value = "0.0.0.0:8084", env = "RAFTMQ_WSS_LISTEN")]
    pub wss_listen: Listen,
    /// HTTP path of the WebSocket listeners.
    #[arg(long, default_value = "/mqtt", env = "RAFTMQ_WS_PATH")]
    pub ws_path: String,
    /// Expect a PROXY protocol header on every connection to --ws-listen.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_WS_PROXY_PROTOCOL")]
    pub ws_proxy_protocol: bool,
    /// Expect a PROXY protocol header on every connection to --wss-listen (before TLS).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "RAFTMQ_WSS_PROXY_PROTOCOL")]
    pub wss_proxy_protocol: bool,
    /// Networks (CIDR or address, comma-separated) whose connections may send a PROXY
    /// header: the load balancers. A connection from elsewhere to a PROXY listener is
    /// closed.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128",
        env = "RAFTMQ_PROXY_TRUSTED"
    )]
    pub proxy_trusted: Vec<IpNet>,
    /// How long a PROXY header may take to arrive, ms; past it the connection is closed.
    #[arg(long, default_value_t = 5000, env = "RAFTMQ_PROXY_TIMEOUT_MS")]
    pub proxy_timeout_ms: u64,
    /// Address of the HTTP listener (health checks for load balancers, client listing,
    /// drain), or `off`.
    #[arg(long, default_value = "127.0.0.1:8081", env = "RAFTMQ_HTTP_LISTEN")]
    pub http_listen: Listen,
    /// Address of the operators' dashboard (a web page over the HTTP API, which this
    /// listener serves too, with the same token), or `off`.
    #[arg(
        long,
        default_value = "127.0.0.1:18083",
        env = "RAFTMQ_DASHBOARD_LISTEN"
    )]
    pub dashboard_listen: Listen,
    /// /health/ready answers 503 while this node's applied index trails the committed
    /// index by more than this many entries.
    #[arg(long, default_value_t = 1000, env = "RAFTMQ_READY_MAX_LAG")]
    pub ready_max_lag: u64,
    /// On drain (SIGTERM, `raftmq node drain`), how long the node keeps reporting 503 to
    /// the balancer before it disconnects its clients (v5 reason 0x8B), ms.
    #[arg(long, default_value_t = 5000, env = "RAFTMQ_DRAIN_GRACE_MS")]
    pub drain_grace_ms: u64,
}

impl ListenerArgs {
    /// The TLS files, if TLS is configured; a key without a certificate (or the reverse)
    /// is an error.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) if self.tls_client_ca.is_some() => Err(ConfigError::TlsIncomplete),
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
                client_cert_optional: self.tls_client_cert_optional,
            })),
            _ => Err(ConfigError::TlsIncomplete),
        }
    }

    /// Every MQTT listener to run, the TCP one (at `mqtt_listen`) first. The TLS kinds
    /// are left out when no certificate is configured.
    pub fn specs(&self, mqtt_listen: SocketAddr) -> Result<Vec<ListenerSpec>, ConfigError> {
        let has_tls = self.tls_files()?.is_some();
        let proxy = ProxyConfig {
            trusted: self.proxy_trusted.clone(),
            timeout: Duration::from_millis(self.proxy_timeout_ms),
        };
        let ws = WsConfig {
            path: self.ws_path.clone(),
        };
        if !self.ws_path.starts_with('/') {
            return Err(ConfigError::WsPath(self.ws_path.clone()));
        }
        let candidates = [
            (Kind::Tcp, Some(mqtt_listen), self.mqtt_proxy_protocol),
            (
                Kind::Tls,
                self.tls_listen.addr().filter(|_| has_tls),
                self.tls_proxy_protocol,
            ),
            (Kind::Ws, self.ws_listen.addr(), self.ws_proxy_protocol),
            (
                Kind::Wss,
                self.wss_listen.addr().filter(|_| has_tls),
                self.wss_proxy_protocol,
            ),
        ];
        Ok(candidates
            .into_iter()
            .filter_map(|(kind, bind, with_proxy)| {
                Some(ListenerSpec {
                    kind,
                    bind: bind?,
                    proxy: with_proxy.then(|| proxy.clone()),
                    ws: ws.clone(),
                })
            })
            .collect())
    }

    pub fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_grace_ms)
    }
}
