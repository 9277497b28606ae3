//! Hostile clients against real raftmq node processes (issue 8, "Security and limits"):
//! each test attacks one node while a well-behaved pair of rumqttc clients (`witness`)
//! publishes QoS 1 messages to each other the whole time, and checks both the attacker's
//! answer (the spec's reason code, or a close) and that every witness publish was PUBACKed
//! and delivered exactly once.
//!
//! - `oversize`: a 256 MiB remaining length followed by junk, in 1 MiB writes, for as long
//!   as the node takes it: refused from the header without the node's memory growing.
//! - `properties`: 38,000 user properties filling the maximum packet size, property
//!   lengths past the end of their packet, properties that may appear once appearing twice.
//! - `utf8`: ill-formed UTF-8 and U+0000 in the client id, user name, will topic, user
//!   properties and topic filters.
//! - `packet_ids`: QoS 1 packet ids reused before their PUBACK; PUBACK, PUBREC and PUBCOMP
//!   for ids the broker never sent.
//! - `pubrel_storm`: hundreds of thousands of PUBRELs for unknown ids, as fast as the
//!   connection takes them.
//! - `half_open`: TCP connections that never send CONNECT, until a node whose open-file
//!   limit is 1,024 can accept no more.
//! - `extremes`: 10,000 filters in one SUBSCRIBE; topics and filters of 32,000 levels.
//! - `slow_consumer`: a subscriber that never reads its socket.
//!
//! Garbage bytes, truncated packets, over-long remaining lengths, ill-formed topics and
//! QoS 2 packet id reuse are in the `broker_malformed` target; protocol violations and the
//! configured limits in `broker_features`.
//!
//! Support: `raw` (a bare client over TCP, and packets built byte by byte), `witness` (the
//! well-behaved clients), `node` (the node process seen from `/proc`, its HTTP listener).

#[path = "../broker_support/mod.rs"]
mod broker_support;
mod node;
mod raw;
mod witness;

mod extremes;
mod half_open;
mod oversize;
mod packet_ids;
mod properties;
mod pubrel_storm;
mod slow_consumer;
mod utf8;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long any single step (a handshake, an answer, a delivery) may take on a loaded
/// 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// How much a node's resident memory may grow during an attack that must not be buffered.
pub(crate) const RSS_GROWTH_LIMIT_KIB: u64 = 64 * 1024;

/// A prefix for the client ids and topics of one test, unique across tests and runs.
pub(crate) fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "hostile-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
