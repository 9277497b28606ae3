//! What a session sent and dropped since its connection last looked, and why it closed:
//! plain counts the connection folds into the node's metrics, so the session itself stays
//! free of I/O and shared state.

use crate::mqtt::{Packet, PacketType};

/// Why a message did not reach a client (the `reason` label of
/// `raftmq_messages_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The ACL denied publishing it, or the subscriber receiving it.
    NotAuthorized,
    /// A transient session's waiting line was full: its oldest message went.
    QueueFull,
    /// A QoS 1/2 publish matched no subscription.
    NoSubscribers,
    /// Its message expiry interval ran out before it could be sent.
    Expired,
    /// Larger than the client's maximum packet size (5.0 §3.1.2.11.4).
    TooLarge,
    /// A QoS 0 message for a client that was not taking its output (past
    /// `--max-output-buffer`, or the node past `--max-buffered-bytes`).
    SlowReader,
    /// Published but not retained: past `--max-retained-messages` or
    /// `--max-retained-payload` (the message itself still reached its subscribers).
    NotRetained,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::NotAuthorized,
        DropReason::QueueFull,
        DropReason::NoSubscribers,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::SlowReader,
        DropReason::NotRetained,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::NotAuthorized => "not_authorized",
            DropReason::QueueFull => "queue_full",
            DropReason::NoSubscribers => "no_subscribers",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::SlowReader => "slow_reader",
            DropReason::NotRetained => "not_retained",
        }
    }
}

/// Why a connection with a session ended (the `reason` label of
/// `raftmq_connections_closed_total`, and the disconnect log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// The socket closed or failed without a DISCONNECT.
    ConnectionLost,
    KeepAliveTimeout,
    /// A newer connection took the session over.
    TakenOver,
    /// The node is shutting down or draining.
    ServerShutdown,
    /// The client broke the protocol (a malformed packet, a bad packet id...).
    ProtocolError,
    /// The cluster could not settle one of the session's commands.
    ClusterError,
    /// An operator closed it (the HTTP API's kick or session removal).
    Administrative,
}

impl CloseReason {
    pub const ALL: [CloseReason; 8] = [
        CloseReason::ClientDisconnect,
        CloseReason::ConnectionLost,
        CloseReason::KeepAliveTimeout,
        CloseReason::TakenOver,
        CloseReason::ServerShutdown,
        CloseReason::ProtocolError,
        CloseReason::ClusterError,
        CloseReason::Administrative,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CloseReason::ClientDisconnect => "client_disconnect",
            CloseReason::ConnectionLost => "connection_lost",
            CloseReason::KeepAliveTimeout => "keep_alive_timeout",
            CloseReason::TakenOver => "taken_over",
            CloseReason::ServerShutdown => "server_shutdown",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::ClusterError => "cluster_error",
            CloseReason::Administrative => "administrative",
        }
    }
}

/// A client's request refused for a configured limit (the `limit` label of
/// `raftmq_limit_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// A topic name or filter over `--max-topic-len` / `--max-topic-levels`.
    Topic,
    /// A new subscription past `--max-subscriptions`.
    Subscriptions,
}

impl LimitHit {
    pub const LABELS: [&'static str; 2] = ["topic", "subscriptions"];
}

/// Counts since the connection last took them ([`super::Session::take_traffic`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets written to the outbox, by packet type number (index 0 unused).
    pub packets: [u32; 16],
    /// PUBLISHes written to the outbox, by QoS.
    pub messages: [u32; 3],
    /// Messages dropped, by [`DropReason`] in the order of [`DropReason::ALL`].
    pub dropped: [u32; 7],
    /// Requests refused for a limit, by [`LimitHit`].
    pub limits: [u32; 2],
}

impl Traffic {
    pub(super) fn sent(&mut self, packet: &Packet) {
        self.packets[packet.packet_type() as usize] += 1;
        if let Packet::Publish(publish) = packet {
            self.messages[publish.qos as usize] += 1;
        }
    }

    pub(super) fn dropped(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    pub(super) fn limited(&mut self, hit: LimitHit, count: usize) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.limits[hit as usize] = self.limits[hit as usize].saturating_add(count);
    }

    pub fn is_empty(&self) -> bool {
        *self == Traffic::default()
    }

    /// The number of packets of `kind` counted.
    pub fn packets_of(&self, kind: PacketType) -> u32 {
        self.packets[kind as usize]
    }
}
