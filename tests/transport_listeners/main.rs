//! The listeners next to plain MQTT over TCP and the HTTP listener, against real raftmq
//! node processes on 127.0.0.1:
//! - `tls`: MQTT over TLS with a CA-signed certificate (TLS 1.3 and 1.2, a client that does
//!   not trust the CA is refused); mTLS, required and optional, with the certificate's CN
//!   as the client's identity in `GET /clients`; the certificate replaced on disk (and on
//!   SIGHUP) is served to new connections while established ones carry on.
//! - `proxy`: PROXY v1 and v2 headers on the TCP listener give `GET /clients` the client's
//!   real address, the balancer's, and (v2 SSL TLV) the balancer-verified CN; a connection
//!   without a header, or from a peer outside `--proxy-trusted`, is closed without CONNACK.
//! - `health`: `/health/live` and `/health/ready` on a healthy cluster, 503 on a node that
//!   lost its quorum and 200 again once it is back.
//! - `drain`: `raftmq node drain` and SIGTERM: 503 "draining" during the grace period,
//!   CONNECT refused, then DISCONNECT 0x8B; a persistent session resumes on another node
//!   with every message published meanwhile, exactly once.
//! - `handoff`: draining the leader moves Raft leadership to another node, for good.
//!
//! WebSocket is tested elsewhere (with paho-mqtt). `broker_support::certs` makes the PKI with rcgen, `wire`
//! is a bare MQTT client over any byte stream (TLS, after a PROXY header), `rumqtt` drives
//! rumqttc 0.25 over TLS, `http` talks to the HTTP listener.

#[path = "../broker_support/mod.rs"]
mod broker_support;
mod drain;
mod handoff;
mod health;
mod http;
mod proxy;
mod rumqtt;
mod tls;
mod wire;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long any single step (a handshake, a packet, an HTTP answer) may take on a loaded
/// 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A prefix for the client ids and topics of one test, unique across tests and runs.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "listeners-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
