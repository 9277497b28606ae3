//! The broker as a 3-node cluster of real raftmq processes, driven by rumqttc 0.25 clients
//! in MQTT 3.1.1 (`rumqttc`) and 5.0 (`rumqttc::v5`) connected to different nodes:
//! - `routing`: QoS 0, 1 and 2 messages cross nodes in publish order per publisher; a
//!   message published on any node right after the SUBACK is delivered; QoS 0 travels
//!   between nodes.
//! - `sessions`: a persistent session left on one node is resumed on another with session
//!   present and every message published meanwhile; a CONNECT with the same client id on
//!   another node takes the session over (5.0: DISCONNECT 0x8E to the old connection).
//! - `failover`: SIGKILL of the node that holds a QoS 2 publisher and a QoS 2 subscriber
//!   in mid-flow; both resume on other nodes and every message arrives exactly once. A node
//!   that has lost its quorum refuses CONNECT with "server unavailable".
//!
//! `client` wraps rumqttc (and fills in the receiving side of QoS 2 it lacks); `raw` is a
//! bare 5.0 connection for the one packet rumqttc cannot read.

#[path = "../broker_support/mod.rs"]
mod broker_support;
mod client;
mod failover;
mod raw;
mod routing;
mod sessions;

use std::sync::atomic::{AtomicU32, Ordering};

use client::{Client, Ev};
use raftmq::local_cluster::LocalCluster;

/// A 3-node cluster whose every node has answered a CONNECT (`broker_support` waits).
pub(crate) async fn serving_cluster() -> LocalCluster {
    broker_support::cluster(3).await
}

/// A prefix for the client ids and topics of one test, unique across tests and runs.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "cluster-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for `count` successful PUBACKs / PUBCOMPs at a publisher.
pub(crate) async fn expect_acks(publisher: &mut Client, count: usize) {
    for done in 0..count {
        match publisher.next().await {
            Ev::PubAck { ok: true, .. } | Ev::PubComp { ok: true, .. } => {}
            other => panic!(
                "{}: expected acknowledgement {} of {count}, got {other:?}",
                publisher.id,
                done + 1
            ),
        }
    }
}

/// A QoS 1 message from `publisher` that each of `subscribers` receives. Once the publisher
/// has its PUBACK, its node has applied every command committed before that PUBLISH, the
/// subscriptions included (DESIGN §3 rule 1): from then on, QoS 0 (routed by the publishing
/// node's own copy of the subscription index, not through the log) reaches them too.
pub(crate) async fn barrier(publisher: &mut Client, subscribers: &mut [&mut Client], topic: &str) {
    publisher.publish(topic, 1, "barrier").await;
    expect_acks(publisher, 1).await;
    for subscriber in subscribers {
        let msg = subscriber.message().await;
        assert_eq!(
            (msg.topic.as_str(), msg.text().as_str()),
            (topic, "barrier"),
            "{}: the barrier message",
            subscriber.id
        );
    }
}
