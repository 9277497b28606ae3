//! One client's protocol state machine: packets in, actions out, no I/O (DESIGN §7).
//!
//! A connection task feeds a [`Session`] what happens — a decoded packet, the outcome of
//! a command it proposed, a delivery the cluster routed to it, a keep-alive timeout — and
//! carries out what it answers: bytes to write (already encoded, in [`Session::outbox`]),
//! [`Action::Propose`] a command, [`Action::RouteQos0`] a QoS 0 message,
//! [`Action::Close`]. Same inputs, same outputs: the tests drive it
//! without sockets.
//!
//! Split by direction: `connect` (the CONNECT rules and the CONNACK), `inbound` (what the
//! client publishes, subscribes, releases), `outbound` (what the broker delivers and the
//! client acknowledges), `convert` (packets ↔ the log's records).

mod connect;
pub(crate) mod convert;
mod inbound;
mod outbound;
#[cfg(test)]
mod tests;
mod traffic;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;

use crate::auth::ClientAccess;
use crate::auth::acl::Access;
use crate::cluster::command::{Command, Message, Millis, Outcome};
use crate::cluster::proposer::ProposeError;
use crate::mqtt::{Disconnect, Packet, PacketId, Protocol, ReasonCode};

pub use connect::{ConnectPlan, Refusal, accept_connect, connack};
pub use outbound::{DirectMessage, QueuedMessage};
pub use traffic::{CloseReason, DropReason, LimitHit, Traffic};

/// The server's limits, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest packet a client may send (announced in a v5 CONNACK).
    pub max_packet_size: u32,
    /// Unacknowledged QoS 1/2 publishes a client may have towards the server.
    pub receive_maximum: u16,
    /// The outbound in-flight window (a v5 client's own Receive Maximum may lower it).
    pub max_inflight: u16,
    /// Messages a session keeps beyond its window; the oldest waiting one is dropped.
    pub max_queued_messages: u32,
    /// Bytes of payload a session keeps waiting beyond its window (0: no limit); past it
    /// the oldest waiting messages are dropped. A transient session's line is kept here,
    /// a persistent session's queue in the state (`Connect::max_queue_bytes`).
    pub max_queued_bytes: u64,
    /// Bytes encoded for a client and not yet taken by it (its socket is not draining)
    /// past which its QoS 0 messages are dropped, and its own packets are not read
    /// until it takes some: a subscriber that does not read cannot grow the node.
    pub max_output_buffer: u32,
    /// Subscriptions one session may hold (0: no limit); a filter past it gets SUBACK
    /// 0x97 (3.1.1: 0x80).
    pub max_subscriptions: u32,
    /// The longest keep-alive a v5 client is granted.
    pub max_keep_alive: u16,
    /// Topic aliases a client may use towards the server.
    pub topic_alias_maximum: u16,
    /// The longest client id accepted, bytes (longer: CONNACK 0x85 / 3.1.1 code 2).
    pub max_client_id_len: u16,
    /// The longest topic name or filter, bytes, and the most levels in one (a PUBLISH
    /// beyond them: DISCONNECT 0x90; a filter: SUBACK 0x8F).
    pub max_topic_len: u16,
    pub max_topic_levels: u16,
}

impl Limits {
    /// Whether a topic name or filter is within the length and level limits.
    pub fn topic_fits(&self, topic: &str) -> bool {
        topic.len() <= usize::from(self.max_topic_len)
            && topic.split('/').count() <= usize::from(self.max_topic_levels)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: crate::mqtt::DEFAULT_MAX_PACKET_SIZE as u32,
            receive_maximum: 1024,
            max_inflight: 32,
            max_queued_messages: 1000,
            max_queued_bytes: 64 * 1024 * 1024,
            max_output_buffer: 4 * 1024 * 1024,
            max_subscriptions: 1000,
            max_keep_alive: u16::MAX,
            topic_alias_maximum: 64,
            max_client_id_len: 256,
            max_topic_len: 1024,
            max_topic_levels: 32,
        }
    }
}

/// What the connection task must do for the session, besides writing the outbox.
// Not boxed: actions live briefly in a reused Vec, and boxing would cost an allocation
// per publish for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// Propose the command; feed its outcome back with [`Session::outcome`], in the order
    /// the proposals were made.
    Propose(Command, Awaiting),
    /// Route a QoS 0 message to the subscribers' nodes directly (DESIGN §4).
    RouteQos0(Arc<Message>),
    /// Write what is in the outbox, then close the connection.
    Close(SessionEnd),
}

/// How the connection ended, for the session in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Propose `Disconnect` (the session goes offline, or ends).
    Disconnect {
        publish_will: bool,
        session_expiry: Option<u32>,
    },
    /// Another connection holds the session now: nothing to propose.
    TakenOver,
}

/// What a proposed command's outcome answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaiting {
    /// A QoS 1 publish: PUBACK.
    PubAck(PacketId),
    /// A QoS 2 publish: PUBREC.
    PubRec(PacketId),
    /// A `Release`: PUBCOMP.
    PubComp(PacketId),
    /// A subscriber's PUBREC recorded: PUBREL.
    PubRel(PacketId),
    SubAck(PacketId),
    UnsubAck(PacketId),
    /// Acks of delivered messages (the entries they let into the window come as deliveries).
    Acks,
    /// Nothing is sent (a retained QoS 0 message stored).
    Nothing,
}

/// Where an inbound QoS 1/2 publish is, by packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// QoS 1, proposed: PUBACK when applied.
    Qos1,
    /// QoS 2, proposed: PUBREC when applied.
    Qos2Proposed,
    /// QoS 2, PUBREC sent: waiting for PUBREL.
    Qos2Received,
    /// QoS 2, PUBREL received: `Release` proposed, PUBCOMP not yet sent. A PUBLISH with
    /// this id now is a new message (clients reuse ids early), never a resend.
    Qos2Releasing,
    /// QoS 2 refused locally (not authorized): PUBREL is answered without the cluster.
    Qos2Refused,
}

/// An outbound message in flight, by packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InFlight {
    /// A persistent session's queue entry: the cluster assigned the id and tracks it.
    QueuedPublish,
    QueuedRelease,
    /// A transient session's message: only this connection knows it.
    DirectPublish {
        qos: u8,
    },
    DirectRelease,
}

/// One connected client's protocol state.
pub struct Session {
    protocol: Protocol,
    client_id: String,
    epoch: u64,
    limits: Limits,
    keep_alive: u16,
    session_expiry: u32,
    client_max_packet_size: usize,
    client_topic_alias_maximum: u16,
    inbound: BTreeMap<u16, Inbound>,
    inbound_aliases: BTreeMap<u16, String>,
    window: u16,
    in_flight: BTreeMap<u16, InFlight>,
    /// A transient session's QoS 1/2 messages waiting for the window.
    waiting: VecDeque<DirectMessage>,
    /// Of the transient messages in flight, those that came through a shared
    /// subscription, until the client acknowledges them.
    shared_in_flight: BTreeMap<u16, DirectMessage>,
    next_packet_id: u16,
    outbound_aliases: BTreeMap<String, u16>,
    /// Packet ids of delivered queue entries, to propose as one `Ack`.
    acked: Vec<u16>,
    /// Transient messages dropped because the waiting line was full.
    dropped: u64,
    /// Payload bytes in `waiting`.
    waiting_bytes: u64,
    /// QoS 0 messages dropped because the client was not taking what it was sent.
    dropped_qos0: u64,
    /// Set by the connection while the node as a whole holds too much unsent output: QoS 0
    /// messages are dropped whatever this client's own backlog.
    shed_qos0: bool,
    outbox: BytesMut,
    closed: bool,
    /// Why the session closed, once it has.
    close_reason: Option<CloseReason>,
    /// What was sent and dropped since the connection last took the counts.
    traffic: Traffic,
    /// What the client may publish, subscribe to and receive (`None`: anything).
    access: Option<ClientAccess>,
    /// Per SUBSCRIBE in the cluster: the positions of the filters refused here (ACL, size
    /// limits), left out of the command, and the reason each gets in the SUBACK.
    refused_filters: BTreeMap<u16, Vec<(usize, ReasonCode)>>,
    /// The session's filters, kept only under a subscription limit: counted as soon as
    /// they are proposed, forgotten again if the cluster refuses them.
    filters: Option<BTreeSet<String>>,
    /// Per SUBSCRIBE in the cluster under that limit: the filters proposed, in order.
    proposed_filters: BTreeMap<u16, Vec<String>>,
}

impl Session {
    /// The session of a connection whose `Connect` was applied with `epoch`: writes the
    /// CONNACK. The caller then fetches the `resend` entries of the outcome and hands
    /// them to [`Session::deliver_queued`] with `dup` set.
    pub fn start(plan: &ConnectPlan, limits: Limits, epoch: u64, session_present: bool) -> Self {
        let mut session = Session {
            protocol: plan.protocol,
            client_id: plan.command.client_id.clone(),
            epoch,
            limits,
            keep_alive: plan.keep_alive,
            session_expiry: plan.command.session_expiry,
            client_max_packet_size: plan.client_max_packet_size,
            client_topic_alias_maximum: plan.client_topic_alias_maximum,
            inbound: BTreeMap::new(),
            inbound_aliases: BTreeMap::new(),
            window: plan.command.receive_maximum,
            in_flight: BTreeMap::new(),
            waiting: VecDeque::new(),
            shared_in_flight: BTreeMap::new(),
            next_packet_id: 1,
            outbound_aliases: BTreeMap::new(),
            acked: Vec::new(),
            dropped: 0,
            waiting_bytes: 0,
            dropped_qos0: 0,
            shed_qos0: false,
            // Empty until something is encoded: an idle connection holds no output buffer.
            outbox: BytesMut::new(),
            closed: false,
            close_reason: None,
            traffic: Traffic::default(),
            access: None,
            refused_filters: BTreeMap::new(),
            filters: (limits.max_subscriptions > 0).then(BTreeSet::new),
            proposed_filters: BTreeMap::new(),
        };
        let ack = connack(plan, &limits, session_present);
        session.send(&Packet::ConnAck(ack));
        session
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The subscriptions a resumed session already holds in the cluster, counted against
    /// the subscription limit.
    pub fn set_subscriptions(&mut self, filters: impl IntoIterator<Item = String>) {
        if let Some(held) = &mut self.filters {
            held.extend(filters);
        }
    }

    /// Whether the subscription limit applies, so the caller need not read the
    /// subscriptions for [`Session::set_subscriptions`].
    pub fn counts_subscriptions(&self) -> bool {
        self.filters.is_some()
    }

    /// Holds the client to these access rules from now on.
    pub fn set_access(&mut self, access: ClientAccess) {
        self.access = Some(access);
    }

    fn allows(&self, asked: Access<'_>) -> bool {
        self.access
            .as_ref()
            .is_none_or(|access| access.allows(asked))
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Seconds of silence after which the connection is closed: 1.5 × the keep-alive
    /// (MQTT §3.1.2.10), or `None` when keep-alive is off.
    pub fn keep_alive_timeout_ms(&self) -> Option<u64> {
        (self.keep_alive > 0).then(|| u64::from(self.keep_alive) * 1500)
    }

    /// Transient messages dropped because the client was too slow.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// QoS 0 messages dropped because the client was not taking its output.
    pub fn dropped_qos0(&self) -> u64 {
        self.dropped_qos0
    }

    /// Drops QoS 0 deliveries from now on (`true`) or only past this client's own limit.
    pub fn shed_qos0(&mut self, shed: bool) {
        self.shed_qos0 = shed;
    }

    /// Bytes encoded and not yet taken with [`Session::outbox`].
    pub fn output_len(&self) -> usize {
        self.outbox.len()
    }

    /// Whether the client is so far behind on its output that its input should wait:
    /// twice the QoS 0 limit, so what cannot be dropped (acknowledgements, QoS 1/2 within
    /// the window) has room before it.
    pub fn output_backlogged(&self, also_pending: usize) -> bool {
        self.outbox.len() + also_pending >= 2 * self.limits.max_output_buffer as usize
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Why the session closed (`None` while it is open).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// The counts of what was sent and dropped since the last call, taken.
    pub fn take_traffic(&mut self) -> Traffic {
        std::mem::take(&mut self.traffic)
    }

    /// The encoded packets to write, taken.
    pub fn outbox(&mut self) -> BytesMut {
        self.outbox.split()
    }

    /// Whether anything waits to be written.
    pub fn has_output(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// One packet from the client.
    pub fn packet(&mut self, packet: Packet, now: Millis, actions: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        match packet {
            Packet::Publish(publish) => self.publish(publish, actions),
            Packet::PubAck(ack) => self.client_puback(ack.packet_id, now),
            Packet::PubRec(ack) => self.client_pubrec(ack.packet_id, ack.reason, actions, now),
            Packet::PubRel(ack) => self.pubrel(ack.packet_id, actions),
            Packet::PubComp(ack) => self.client_pubcomp(ack.packet_id, now),
            Packet::Subscribe(subscribe) => self.subscribe(subscribe, now, actions),
            Packet::Unsubscribe(unsubscribe) => self.unsubscribe(unsubscribe, actions),
            Packet::PingReq => {
                self.send(&Packet::PingResp);
            }
            Packet::Disconnect(disconnect) => self.client_disconnect(&disconnect, actions),
            // A second CONNECT, AUTH without an authentication method, or a packet only a
            // server sends: protocol errors (5.0 §3.1.0, §4.12, §4.8).
            Packet::Connect(_)
            | Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => self.protocol_error(ReasonCode::ProtocolError, actions),
        }
    }

    /// Call after a run of input: proposes the acks gathered meanwhile as one command.
    pub fn flush(&mut self, actions: &mut Vec<Action>) {
        if !self.closed {
            self.propose_acks(actions);
        }
    }

    /// Proposes the gathered acks, also on the way out: an acknowledgement the client sent
    /// right before DISCONNECT is final, and its message must not be resent.
    fn propose_acks(&mut self, actions: &mut Vec<Action>) {
        if self.acked.is_empty() {
            return;
        }
        let packet_ids = std::mem::take(&mut self.acked);
        actions.push(Action::Propose(
            Command::Ack {
                client_id: self.client_id.clone(),
                epoch: self.epoch,
                packet_ids,
            },
            Awaiting::Acks,
        ));
    }

    /// The outcome of a command this session proposed (in proposal order).
    pub fn outcome(
        &mut self,
        awaiting: Awaiting,
        result: Result<Outcome, ProposeError>,
        actions: &mut Vec<Action>,
    ) {
        if self.closed {
            return;
        }
        let outcome = match result {
            Ok(Outcome::Fenced { .. }) => return self.taken_over(actions),
            Ok(Outcome::Rejected { reason }) => {
                tracing::error!(client = %self.client_id, ?reason, "the cluster rejected a command of this session");
                return self.close(
                    ReasonCode::ImplementationSpecificError,
                    CloseReason::ClusterError,
                    actions,
                );
            }
            Ok(outcome) => outcome,
            // DESIGN §3 rule 1: no answer rather than a wrong one; the client resends
            // through another connection.
            Err(ProposeError::NoLeader) => {
                return self.close(ReasonCode::ServerBusy, CloseReason::ClusterError, actions);
            }
            Err(ProposeError::Stopped) => {
                return self.close(
                    ReasonCode::ServerShuttingDown,
                    CloseReason::ServerShutdown,
                    actions,
                );
            }
            Err(ProposeError::Unknown(e)) => {
                tracing::warn!(client = %self.client_id, "closing: outcome unknown: {e}");
                return self.close(
                    ReasonCode::UnspecifiedError,
                    CloseReason::ClusterError,
                    actions,
                );
            }
        };
        match awaiting {
            Awaiting::PubAck(id) => self.published(id, false, &outcome),
            Awaiting::PubRec(id) => self.published(id, true, &outcome),
            Awaiting::PubComp(id) => self.released(id, &outcome),
            Awaiting::PubRel(id) => self.recorded_pubrec(id, &outcome),
            Awaiting::SubAck(id) => self.subscribed(id, &outcome),
            Awaiting::UnsubAck(id) => self.unsubscribed(id, &outcome),
            // Entries an ack let into the window come as deliveries, in log order.
            Awaiting::Acks | Awaiting::Nothing => {}
        }
    }

    /// The keep-alive timer ran out: close, publishing the will.
    pub fn keep_alive_expired(&mut self, actions: &mut Vec<Action>) {
        self.close(
            ReasonCode::KeepAliveTimeout,
            CloseReason::KeepAliveTimeout,
            actions,
        );
    }

    /// The session was taken over by a newer connection (5.0 DISCONNECT 0x8E).
    pub fn taken_over(&mut self, actions: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.send_disconnect(ReasonCode::SessionTakenOver);
        self.closed = true;
        self.close_reason = Some(CloseReason::TakenOver);
        actions.push(Action::Close(SessionEnd::TakenOver));
    }

    /// The server is shutting down or draining: the client is told to go elsewhere.
    pub fn server_shutdown(&mut self, actions: &mut Vec<Action>) {
        self.close(
            ReasonCode::ServerShuttingDown,
            CloseReason::ServerShutdown,
            actions,
        );
    }

    /// An operator closed the connection (the HTTP API): 5.0 reason 0x98; the will is
    /// published as for any close the client did not ask for.
    pub fn administrative_close(&mut self, actions: &mut Vec<Action>) {
        self.close(
            ReasonCode::AdministrativeAction,
            CloseReason::Administrative,
            actions,
        );
    }

    /// The connection broke (read error, peer closed) without a DISCONNECT.
    pub fn connection_lost(&mut self, actions: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.propose_acks(actions);
        self.closed = true;
        self.close_reason = Some(CloseReason::ConnectionLost);
        actions.push(Action::Close(SessionEnd::Disconnect {
            publish_will: true,
            session_expiry: None,
        }));
    }

    /// A packet the codec refused: `reason` is what 5.0 answers (3.1.1 just closes).
    pub fn protocol_error(&mut self, reason: ReasonCode, actions: &mut Vec<Action>) {
        self.close(reason, CloseReason::ProtocolError, actions);
    }

    fn client_disconnect(&mut self, disconnect: &Disconnect, actions: &mut Vec<Action>) {
        let session_expiry = disconnect.properties.session_expiry_interval;
        // 5.0 §3.14.2.2.2: a session that ends with its connection cannot be made to
        // outlive it at DISCONNECT.
        if self.session_expiry == 0 && session_expiry.is_some_and(|s| s > 0) {
            return self.protocol_error(ReasonCode::ProtocolError, actions);
        }
        self.propose_acks(actions);
        self.closed = true;
        self.close_reason = Some(CloseReason::ClientDisconnect);
        actions.push(Action::Close(SessionEnd::Disconnect {
            publish_will: disconnect.reason == ReasonCode::DisconnectWithWillMessage,
            session_expiry,
        }));
    }

    /// Sends DISCONNECT with `reason` (5.0 only) and closes, publishing the will.
    fn close(&mut self, reason: ReasonCode, why: CloseReason, actions: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.propose_acks(actions);
        self.send_disconnect(reason);
        self.closed = true;
        self.close_reason = Some(why);
        actions.push(Action::Close(SessionEnd::Disconnect {
            publish_will: true,
            session_expiry: None,
        }));
    }

    fn send_disconnect(&mut self, reason: ReasonCode) {
        if self.protocol == Protocol::V5 {
            self.send(&Packet::Disconnect(Disconnect::new(reason)));
        }
    }

    /// Encodes a packet into the outbox; returns false (and sends nothing) if it is larger
    /// than the client accepts.
    fn send(&mut self, packet: &Packet) -> bool {
        let start = self.outbox.len();
        match packet.encode(self.protocol, &mut self.outbox) {
            Ok(size) if size > self.client_max_packet_size => {
                self.outbox.truncate(start);
                if matches!(packet, Packet::Publish(_)) {
                    self.traffic.dropped(DropReason::TooLarge);
                }
                false
            }
            Ok(_) => {
                self.traffic.sent(packet);
                true
            }
            Err(e) => {
                // Only values the protocol cannot carry get here (a property too long for
                // its field): the packet is left out, the connection goes on.
                tracing::warn!(client = %self.client_id, "packet not sent: {e}");
                false
            }
        }
    }
}
