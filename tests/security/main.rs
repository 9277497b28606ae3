//! Authentication and authorization end to end, against real raftmq node processes on
//! loopback and real clients (rumqttc 5.0 and 3.1.1, `mosquitto_pub` / `mosquitto_passwd`,
//! a paho-mqtt script, and a bare client for what those cannot do: connect from
//! 127.0.0.2, drop the socket under a will):
//! - `login`: anonymous and bad-password CONNECTs refused (5.0 0x87 / 0x86, 3.1.1 codes 5
//!   / 4), a good password accepted, paho too; the failed-login throttle (0x9F / code 3)
//!   that spares other source addresses.
//! - `users`: users replicated through the log (added on one node, used on another,
//!   password changed on a third; an ACL rule set on one node holding a client of
//!   another); a Mosquitto password file imported and its hashes upgraded to argon2id at
//!   first login.
//! - `api`: the HTTP API's token (`Authorization: Bearer`, any case, and `X-API-Key`),
//!   health without one, and the JSON error codes.
//! - `acl`: `--acl-file` and `raftmq acl set` rules: SUBACK 0x80 per denied filter, PUBACK
//!   0x87 and no delivery for a denied publish (QoS 1 and 2), receive checks under `#`
//!   and for retained messages, `%u`, networks.
//! - `live`: a cluster rule change reaching connected clients; wills on denied topics.
//! - `certificate`: a verified client certificate's CN as the username, under `%u` rules.
//!
//! Every "not received" check first waits for a control message published after the one
//! that must not arrive, then for [`QUIET`] more: the absence then means something.

#[path = "../broker_support/mod.rs"]
mod broker_support;

mod client;
mod http;
mod wire;

mod acl;
mod api;
mod certificate;
mod live;
mod login;
mod users;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use raftmq::local_cluster::LocalCluster;
use tokio::time::Instant;

use broker_support::SERVING_DEADLINE;

/// How long any single step (a CONNACK, an ack, a message, an HTTP answer) may take on a
/// loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// How long a client must then stay silent for a message to count as not delivered.
pub(crate) const QUIET: Duration = Duration::from_millis(800);

/// How long a follower may take to apply a change committed through another node.
pub(crate) const APPLY_WAIT: Duration = Duration::from_secs(5);

/// A prefix for the client ids of one test, unique across tests and runs.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "sec-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cluster of `size` nodes with `extra` arguments, once every node's `/health/ready`
/// says 200. (`broker_support::cluster_with` probes with an anonymous CONNECT, which a
/// node without anonymous access refuses, and which would count as a failed login.)
pub(crate) async fn start_cluster(size: usize, extra: &[&str]) -> LocalCluster {
    let cluster = crate::broker_support::start_nodes(size, extra).await;
    for node in &cluster.nodes {
        let deadline = Instant::now() + SERVING_DEADLINE;
        loop {
            let last = http::request(&node.http_addr, "GET", "/health/ready", &[], None).await;
            if matches!(last, Ok((200, _))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {SERVING_DEADLINE:?}: {last:?}",
                node.http_addr
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    cluster
}

/// One node with `extra` arguments.
pub(crate) async fn start_node(extra: &[&str]) -> LocalCluster {
    start_cluster(1, extra).await
}
