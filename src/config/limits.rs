//! Limits against hostile or broken clients that are not part of a session's protocol
//! state: how many connections, how long a CONNECT may take, and how long client ids and
//! topics may be. Each has a default an operator can defend and a flag to change it.

use std::time::Duration;

use clap::Args;

use crate::broker::ConnectionLimits;

#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Connections this node holds at most (MQTT listeners together); past it new ones
    /// are closed at once.
    #[arg(long, default_value_t = 100_000, env = "RAFTMQ_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// Connections one source address (the real one, after a PROXY header) may hold; 0:
    /// no limit. Behind a balancer that does not send PROXY headers every client has the
    /// balancer's address: raise it or set 0 there.
    #[arg(
        long,
        default_value_t = 1_000,
        env = "RAFTMQ_MAX_CONNECTIONS_PER_ADDRESS"
    )]
    pub max_connections_per_address: u32,
    /// How long a new connection has to complete its CONNECT, ms (slowloris).
    #[arg(long, default_value_t = 10_000, env = "RAFTMQ_CONNECT_TIMEOUT_MS")]
    pub connect_timeout_ms: u64,
    /// The longest client id accepted, bytes.
    #[arg(long, default_value_t = 256, env = "RAFTMQ_MAX_CLIENT_ID_LEN")]
    pub max_client_id_len: u16,
    /// The longest topic name or filter, bytes.
    #[arg(long, default_value_t = 1024, env = "RAFTMQ_MAX_TOPIC_LEN")]
    pub max_topic_len: u16,
    /// The most levels in a topic name or filter.
    #[arg(long, default_value_t = 32, env = "RAFTMQ_MAX_TOPIC_LEVELS")]
    pub max_topic_levels: u16,
    /// Payload bytes a session keeps waiting beyond its in-flight window (its offline
    /// queue; 0: no limit); past it the oldest waiting messages are dropped and counted.
    #[arg(long, default_value_t = 64 * 1024 * 1024, env = "RAFTMQ_MAX_QUEUED_BYTES")]
    pub max_queued_bytes: u64,
    /// Bytes waiting to be written to one client past which its QoS 0 messages are
    /// dropped (counted) and its own packets are not read until it takes some.
    #[arg(long, default_value_t = 4 * 1024 * 1024, env = "RAFTMQ_MAX_OUTPUT_BUFFER")]
    pub max_output_buffer: u32,
    /// Bytes waiting to be written to all clients of this node together past which every
    /// client's QoS 0 messages are dropped (counted) until the total is back under it.
    #[arg(long, default_value_t = 512 * 1024 * 1024, env = "RAFTMQ_MAX_BUFFERED_BYTES")]
    pub max_buffered_bytes: u64,
    /// Subscriptions one session may hold (0: no limit); a filter past it gets SUBACK
    /// 0x97 quota exceeded (3.1.1: 0x80).
    #[arg(long, default_value_t = 1000, env = "RAFTMQ_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: u32,
    /// Retained messages the cluster keeps (0: no limit); past it a new retained topic's
    /// message is published but not retained, and counted.
    #[arg(
        long,
        default_value_t = 1_000_000,
        env = "RAFTMQ_MAX_RETAINED_MESSAGES"
    )]
    pub max_retained_messages: u64,
    /// The largest payload retained, bytes (0: only --max-packet-size bounds it); a
    /// larger one is published but not retained, and counted.
    #[arg(long, default_value_t = 0, env = "RAFTMQ_MAX_RETAINED_PAYLOAD")]
    pub max_retained_payload: u32,
    /// PUBLISH packets one client may send per second (0: no limit). A faster client is
    /// slowed: its socket is not read until it is back under the rate.
    #[arg(long, default_value_t = 0, env = "RAFTMQ_MAX_PUBLISH_RATE")]
    pub max_publish_rate: u32,
    /// PUBLISH bytes one client may send per second (0: no limit), enforced the same way.
    #[arg(long, default_value_t = 0, env = "RAFTMQ_MAX_PUBLISH_BYTES_RATE")]
    pub max_publish_bytes_rate: u64,
}

impl LimitArgs {
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_per_address: self.max_connections_per_address,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.max(1)),
            publish_messages_per_sec: self.max_publish_rate,
            publish_bytes_per_sec: self.max_publish_bytes_rate,
            max_buffered_bytes: self.max_buffered_bytes,
            max_retained_messages: self.max_retained_messages,
            max_retained_payload: self.max_retained_payload,
        }
    }
}
