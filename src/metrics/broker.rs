//! The broker's metrics: connections, packets, bytes and messages, counted where they
//! happen by the connection tasks.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::auth::LoginCounts;
use crate::mqtt::{Packet, PacketType};
use crate::session::{CloseReason, DropReason, LimitHit, Traffic};

use super::family::CounterSet;

/// The label values of `type`, by packet type number less one.
const PACKET_TYPES: [&str; 15] = [
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
    "auth",
];

const QOS: [&str; 3] = ["0", "1", "2"];

/// Why a connection got no session (the `reason` label of
/// `raftmq_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong password or unknown user.
    BadCredentials,
    /// No credentials where they are required.
    NotAuthorized,
    /// Too many failed logins from the address lately.
    Throttled,
    /// The node holds its maximum number of connections.
    NodeLimit,
    /// The address holds its maximum number of connections.
    AddressLimit,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// The first packet was not a valid CONNECT.
    BadProtocol,
    /// A CONNECT the broker refuses (client id, keep-alive, will...).
    InvalidConnect,
    /// The node was not ready (recovering, draining, no leader) or the CONNECT did not commit.
    Unavailable,
}

impl Refused {
    const LABELS: [&'static str; 9] = [
        "bad_credentials",
        "not_authorized",
        "throttled",
        "node_limit",
        "address_limit",
        "connect_timeout",
        "bad_protocol",
        "invalid_connect",
        "unavailable",
    ];
}

/// The broker's counters, all made at start-up (see [`CounterSet`]).
#[derive(Debug, Clone)]
pub struct BrokerMetrics {
    /// Connections bound to a session now.
    pub connections: Gauge,
    pub accepted: Counter,
    closed: CounterSet<8>,
    refused: CounterSet<9>,
    logins: CounterSet<2>,
    packets_received: CounterSet<15>,
    packets_sent: CounterSet<15>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    messages_received: CounterSet<3>,
    messages_sent: CounterSet<3>,
    dropped: CounterSet<7>,
    limits: CounterSet<2>,
    /// Times a client was held back by its publish rate limit.
    pub rate_limited: Counter,
    /// Bytes encoded for clients and not yet written (set at scrape time).
    pub output_buffered: Gauge,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics {
            connections: Gauge::default(),
            accepted: Counter::default(),
            closed: CounterSet::new("reason", CloseReason::ALL.map(CloseReason::label)),
            refused: CounterSet::new("reason", Refused::LABELS),
            logins: CounterSet::new("result", ["accepted", "anonymous"]),
            packets_received: CounterSet::new("type", PACKET_TYPES),
            packets_sent: CounterSet::new("type", PACKET_TYPES),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            messages_received: CounterSet::new("qos", QOS),
            messages_sent: CounterSet::new("qos", QOS),
            dropped: CounterSet::new("reason", DropReason::ALL.map(DropReason::label)),
            limits: CounterSet::new("limit", LimitHit::LABELS),
            rate_limited: Counter::default(),
            output_buffered: Gauge::default(),
        }
    }
}

impl BrokerMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "raftmq_connections",
            "Client connections bound to a session on this node",
            self.connections.clone(),
        );
        registry.register(
            "raftmq_connections_accepted",
            "CONNECTs accepted (CONNACK success)",
            self.accepted.clone(),
        );
        self.closed.register(
            registry,
            "raftmq_connections_closed",
            "Connections with a session that ended, by reason",
        );
        self.refused.register(
            registry,
            "raftmq_connections_refused",
            "Connections closed or CONNECTs refused before a session, by reason",
        );
        self.logins.register(
            registry,
            "raftmq_logins",
            "Logins accepted, with credentials or anonymously",
        );
        self.packets_received.register(
            registry,
            "raftmq_packets_received",
            "MQTT packets received from clients, by type",
        );
        self.packets_sent.register(
            registry,
            "raftmq_packets_sent",
            "MQTT packets sent to clients, by type",
        );
        registry.register(
            "raftmq_bytes_received",
            "Bytes read from client connections",
            self.bytes_received.clone(),
        );
        registry.register(
            "raftmq_bytes_sent",
            "Bytes written to client connections",
            self.bytes_sent.clone(),
        );
        self.messages_received.register(
            registry,
            "raftmq_messages_received",
            "PUBLISHes received from clients, by QoS",
        );
        self.messages_sent.register(
            registry,
            "raftmq_messages_sent",
            "PUBLISHes sent to clients, by QoS",
        );
        self.dropped.register(
            registry,
            "raftmq_messages_dropped",
            "Messages not delivered or not accepted, by reason",
        );
        self.limits.register(
            registry,
            "raftmq_limit_refusals",
            "Client requests refused for a configured limit (topic size, subscriptions), by limit",
        );
        registry.register(
            "raftmq_output_buffered_bytes",
            "Bytes encoded for clients and not yet taken by them, all connections of the node",
            self.output_buffered.clone(),
        );
        registry.register(
            "raftmq_publish_rate_limited",
            "Times a client was held back by its publish rate limit",
            self.rate_limited.clone(),
        );
    }

    pub fn refused(&self, why: Refused) {
        self.refused.at(why as usize).inc();
    }

    pub fn closed(&self, why: CloseReason) {
        self.closed.at(why as usize).inc();
    }

    /// One packet from a client.
    pub fn received(&self, packet: &Packet) {
        self.packets_received(packet.packet_type());
        if let Packet::Publish(publish) = packet {
            self.messages_received.at(publish.qos as usize).inc();
        }
    }

    /// One packet the broker wrote itself, outside a session (a refusing CONNACK).
    pub fn sent_packet(&self, kind: PacketType) {
        self.packets_sent.at(kind as usize - 1).inc();
    }

    /// One packet read outside a session (the CONNECT).
    pub fn packets_received(&self, kind: PacketType) {
        self.packets_received.at(kind as usize - 1).inc();
    }

    /// What a session sent and dropped since it was last asked.
    pub fn record(&self, traffic: &Traffic) {
        fold(&self.packets_sent, &traffic.packets[1..]);
        fold(&self.messages_sent, &traffic.messages);
        fold(&self.dropped, &traffic.dropped);
        fold(&self.limits, &traffic.limits);
    }

    /// A message dropped outside any session.
    pub fn dropped(&self, why: DropReason) {
        self.dropped.at(why as usize).inc();
    }

    /// The authenticator's counters, backed by these families.
    pub fn login_counts(&self) -> LoginCounts {
        LoginCounts {
            accepted: self.logins.at(0).clone(),
            anonymous: self.logins.at(1).clone(),
            bad_credentials: self.refused.at(Refused::BadCredentials as usize).clone(),
            not_authorized: self.refused.at(Refused::NotAuthorized as usize).clone(),
            throttled: self.refused.at(Refused::Throttled as usize).clone(),
        }
    }

    /// Totals for `$SYS`: messages received and sent (all QoS) and bytes.
    pub fn totals(&self) -> Totals {
        let sum = |set: &CounterSet<3>| (0..3).map(|i| set.at(i).get()).sum();
        Totals {
            messages_received: sum(&self.messages_received),
            messages_sent: sum(&self.messages_sent),
            bytes_received: self.bytes_received.get(),
            bytes_sent: self.bytes_sent.get(),
        }
    }
}

/// See [`BrokerMetrics::totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

fn fold<const N: usize>(set: &CounterSet<N>, counts: &[u32]) {
    for (index, &count) in counts.iter().enumerate() {
        if count > 0 {
            set.at(index).inc_by(u64::from(count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(metrics: &BrokerMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text
    }

    #[test]
    fn a_sessions_traffic_lands_in_the_counters_of_its_labels() {
        let metrics = BrokerMetrics::default();
        let mut traffic = Traffic::default();
        traffic.packets[PacketType::Publish as usize] = 3;
        traffic.packets[PacketType::PubAck as usize] = 1;
        traffic.messages = [1, 2, 0];
        traffic.dropped[DropReason::TooLarge as usize] = 4;
        metrics.record(&traffic);
        metrics.record(&traffic);
        metrics.refused(Refused::ConnectTimeout);
        let text = exposition(&metrics);
        for line in [
            r#"raftmq_packets_sent_total{type="publish"} 6"#,
            r#"raftmq_packets_sent_total{type="puback"} 2"#,
            r#"raftmq_packets_sent_total{type="connect"} 0"#,
            r#"raftmq_messages_sent_total{qos="0"} 2"#,
            r#"raftmq_messages_sent_total{qos="1"} 4"#,
            r#"raftmq_messages_dropped_total{reason="too_large"} 8"#,
            r#"raftmq_connections_refused_total{reason="connect_timeout"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(metrics.totals().messages_sent, 6);
    }

    #[test]
    fn login_counts_are_members_of_the_families() {
        let metrics = BrokerMetrics::default();
        let counts = metrics.login_counts();
        counts.throttled.inc();
        counts.anonymous.inc();
        let text = exposition(&metrics);
        assert!(text.contains(r#"raftmq_connections_refused_total{reason="throttled"} 1"#));
        assert!(text.contains(r#"raftmq_logins_total{result="anonymous"} 1"#));
    }
}
