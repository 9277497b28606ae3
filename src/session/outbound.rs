//! What the broker delivers to the client and how the client acknowledges it.
//!
//! A persistent session's messages come from its queue in the cluster, which assigns
//! packet ids and keeps the in-flight window (DESIGN §3 rule 5): they arrive here as
//! [`QueuedMessage`]s and their PUBACK/PUBCOMP go back as one batched `Ack`. A transient
//! session's messages ([`DirectMessage`]) live only in this connection: it assigns their
//! packet ids and keeps their window, with a bounded waiting line behind it. Either way a
//! message goes out with the remaining expiry interval, the client's topic aliases, and
//! never larger than the client's maximum packet size (too large: dropped, 5.0 §3.1.2.11.4),
//! and only on topics the ACL lets the client receive.

use std::num::NonZeroU16;
use std::sync::Arc;

use crate::auth::acl::Access;
use crate::cluster::command::{
    Command, Message, Millis, OutboundEntry, Outcome, ShareRef, Stage, Unfinished,
};
use crate::mqtt::{Ack, Packet, PacketId, QoS, ReasonCode};

use super::convert::{Delivered, publish_packet, remaining_expiry};
use super::{Action, Awaiting, DropReason, InFlight, Session};

/// A queue entry of a persistent session with its stored message (`None` when the state no
/// longer holds it: it expired or the entry only awaits PUBCOMP).
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub entry: OutboundEntry,
    pub message: Option<Arc<Message>>,
    pub expires_at: Option<Millis>,
}

/// A message the cluster does not keep for this session: QoS 0, or any QoS for a transient
/// session.
#[derive(Debug, Clone)]
pub struct DirectMessage {
    pub qos: u8,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    pub expires_at: Option<Millis>,
    pub message: Arc<Message>,
    /// The shared subscription it came through: if the connection ends before the client
    /// acknowledges it, it goes to another member of the group.
    pub share: Option<ShareRef>,
}

impl Session {
    /// Sends a persistent session's in-flight entry: PUBLISH under its packet id, or
    /// PUBREL for an entry the client already PUBREC'd.
    pub fn deliver_queued(&mut self, queued: QueuedMessage, now: Millis) {
        if self.closed {
            return;
        }
        let entry = &queued.entry;
        let Some(id) = NonZeroU16::new(entry.packet_id) else {
            return;
        };
        if entry.stage == Stage::AwaitingComp {
            self.in_flight.insert(id.get(), InFlight::QueuedRelease);
            self.send(&Packet::PubRel(Ack::new(id)));
            return;
        }
        let expiry = match (queued.expires_at, &queued.message) {
            (_, None) => None,
            (None, Some(_)) => Some(None),
            (Some(at), Some(_)) => remaining_expiry(at, now).map(Some),
        };
        let (Some(message), Some(expiry)) = (&queued.message, expiry) else {
            // Gone or expired: done as far as the client is concerned.
            if queued.message.is_some() {
                self.traffic.dropped(DropReason::Expired);
            }
            self.acked.push(id.get());
            return;
        };
        let qos = QoS::from_bits(entry.qos).unwrap_or(QoS::AtLeastOnce);
        let delivered = Delivered {
            message,
            qos,
            retain: entry.retain,
            dup: entry.dup,
            packet_id: Some(id),
            subscription_ids: &entry.subscription_ids,
            expiry,
        };
        if self.send_publish(&delivered) {
            self.in_flight.insert(id.get(), InFlight::QueuedPublish);
        } else {
            self.acked.push(id.get());
        }
    }

    /// Sends (or lines up) a message the cluster handed this connection directly.
    pub fn deliver_direct(&mut self, direct: DirectMessage, now: Millis) {
        if self.closed {
            return;
        }
        if direct.qos == 0 {
            // MQTT lets a server drop QoS 0 messages; keeping them for a client that does
            // not read would let one subscriber grow the node without bound.
            if self.shed_qos0 || self.outbox.len() >= self.limits.max_output_buffer as usize {
                self.dropped_qos0 += 1;
                self.traffic.dropped(DropReason::SlowReader);
            } else {
                self.send_direct(&direct, None, now);
            }
            return;
        }
        if self.waiting.is_empty() && self.in_flight.len() < usize::from(self.window) {
            self.send_direct_in_window(direct, now);
            return;
        }
        let size = direct.message.payload.len() as u64;
        let max_bytes = self.limits.max_queued_bytes;
        if self.limits.max_queued_messages == 0 || (max_bytes > 0 && size > max_bytes) {
            self.dropped += 1;
            self.traffic.dropped(DropReason::QueueFull);
            return;
        }
        // The oldest waiting messages make room.
        while self.waiting.len() >= self.limits.max_queued_messages as usize
            || (max_bytes > 0 && self.waiting_bytes + size > max_bytes)
        {
            if self.pop_waiting().is_none() {
                break;
            }
            self.dropped += 1;
            self.traffic.dropped(DropReason::QueueFull);
        }
        self.waiting_bytes += size;
        self.waiting.push_back(direct);
    }

    fn pop_waiting(&mut self) -> Option<DirectMessage> {
        let direct = self.waiting.pop_front()?;
        self.waiting_bytes = self
            .waiting_bytes
            .saturating_sub(direct.message.payload.len() as u64);
        Some(direct)
    }

    fn send_direct_in_window(&mut self, direct: DirectMessage, now: Millis) {
        let Some(id) = self.free_packet_id() else {
            self.waiting_bytes += direct.message.payload.len() as u64;
            self.waiting.push_front(direct);
            return;
        };
        if self.send_direct(&direct, Some(id), now) {
            self.in_flight
                .insert(id.get(), InFlight::DirectPublish { qos: direct.qos });
            if direct.share.is_some() {
                self.shared_in_flight.insert(id.get(), direct);
            }
        }
    }

    /// Messages of shared subscriptions this transient session holds and the client has
    /// not acknowledged (PUBACK, or PUBREC for QoS 2), in flight first, then waiting: what
    /// another member of each group is to get when this connection ends.
    pub fn unfinished_shared(&self) -> Vec<Unfinished> {
        self.shared_in_flight
            .values()
            .chain(self.waiting.iter())
            .filter_map(|direct| {
                Some(Unfinished {
                    share: direct.share.clone()?,
                    message: direct.message.clone(),
                    expires_at: direct.expires_at,
                })
            })
            .collect()
    }

    /// Returns whether the message went out (it may have expired or be too large).
    fn send_direct(&mut self, direct: &DirectMessage, id: Option<PacketId>, now: Millis) -> bool {
        let expiry = match direct.expires_at {
            None => None,
            Some(at) => match remaining_expiry(at, now) {
                Some(left) => Some(left),
                None => {
                    self.traffic.dropped(DropReason::Expired);
                    return false;
                }
            },
        };
        let delivered = Delivered {
            message: &direct.message,
            qos: QoS::from_bits(direct.qos).unwrap_or(QoS::AtMostOnce),
            retain: direct.retain,
            dup: false,
            packet_id: id,
            subscription_ids: &direct.subscription_ids,
            expiry,
        };
        self.send_publish(&delivered)
    }

    /// A transient message left the window: the next waiting one takes its place.
    fn fill_window(&mut self, now: Millis) {
        while self.in_flight.len() < usize::from(self.window) {
            let Some(next) = self.pop_waiting() else {
                return;
            };
            self.send_direct_in_window(next, now);
        }
    }

    /// A packet id no in-flight message uses, after the last one given.
    fn free_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let candidate = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Some(id) = NonZeroU16::new(candidate)
                && !self.in_flight.contains_key(&candidate)
            {
                return Some(id);
            }
        }
        None
    }

    /// Encodes a PUBLISH with the client's topic aliases; false if it was too large.
    fn send_publish(&mut self, delivered: &Delivered<'_>) -> bool {
        let topic = &delivered.message.topic;
        // Checked at each delivery, so an ACL change reaches subscriptions made before it;
        // a message the client may not receive is done with, as if delivered.
        if !self.allows(Access::Receive(topic)) {
            self.traffic.dropped(DropReason::NotAuthorized);
            return false;
        }
        let (name, alias, new_alias) = match self.outbound_aliases.get(topic) {
            Some(alias) => (String::new(), Some(*alias), None),
            None if self.outbound_aliases.len() < usize::from(self.client_topic_alias_maximum) => {
                let alias = self.outbound_aliases.len() as u16 + 1;
                (topic.clone(), Some(alias), Some(alias))
            }
            None => (topic.clone(), None, None),
        };
        let packet = publish_packet(delivered, name, alias);
        let sent = self.send(&Packet::Publish(packet));
        // The alias exists for the client only once a packet carrying it was sent.
        if let (true, Some(alias)) = (sent, new_alias) {
            self.outbound_aliases.insert(topic.clone(), alias);
        }
        sent
    }

    pub(super) fn client_puback(&mut self, id: PacketId, now: Millis) {
        match self.in_flight.get(&id.get()) {
            Some(InFlight::QueuedPublish) => {
                self.in_flight.remove(&id.get());
                self.acked.push(id.get());
            }
            Some(InFlight::DirectPublish { qos: 1 }) => {
                self.in_flight.remove(&id.get());
                self.shared_in_flight.remove(&id.get());
                self.fill_window(now);
            }
            // An id this connection did not send (or a PUBACK for a QoS 2 message): the
            // cluster's queue may still know it from an earlier connection.
            None if self.session_expiry > 0 => self.acked.push(id.get()),
            _ => {}
        }
    }

    pub(super) fn client_pubrec(
        &mut self,
        id: PacketId,
        reason: ReasonCode,
        actions: &mut Vec<Action>,
        now: Millis,
    ) {
        let state = self.in_flight.get(&id.get()).copied();
        match state {
            // 5.0 §4.3.3: a PUBREC with an error code ends the flow.
            Some(InFlight::QueuedPublish) if reason.is_error() => {
                self.in_flight.remove(&id.get());
                self.acked.push(id.get());
            }
            Some(InFlight::QueuedPublish) | None if self.session_expiry > 0 => {
                // PUBREL only once the cluster knows, so a new owner resends PUBREL, not
                // the message (DESIGN §3 rule 5).
                actions.push(Action::Propose(
                    Command::Received {
                        client_id: self.client_id.clone(),
                        epoch: self.epoch,
                        packet_id: id.get(),
                    },
                    Awaiting::PubRel(id),
                ));
            }
            // The client has the message, or refused it: either way the flow is its own
            // (an error PUBREC ends it, 5.0 §4.3.3), and it is not handed over.
            Some(InFlight::DirectPublish { qos: 2 }) if reason.is_error() => {
                self.in_flight.remove(&id.get());
                self.shared_in_flight.remove(&id.get());
                self.fill_window(now);
            }
            Some(InFlight::DirectPublish { qos: 2 }) | Some(InFlight::DirectRelease) => {
                self.shared_in_flight.remove(&id.get());
                self.in_flight.insert(id.get(), InFlight::DirectRelease);
                self.send(&Packet::PubRel(Ack::new(id)));
            }
            Some(InFlight::QueuedRelease) => {
                self.send(&Packet::PubRel(Ack::new(id)));
            }
            _ => {
                self.send(&Packet::PubRel(Ack {
                    packet_id: id,
                    reason: ReasonCode::PacketIdentifierNotFound,
                    properties: Default::default(),
                }));
            }
        }
    }

    /// The cluster recorded the client's PUBREC: PUBREL.
    pub(super) fn recorded_pubrec(&mut self, id: PacketId, outcome: &Outcome) {
        let Outcome::Received { known } = outcome else {
            return self.unexpected(outcome);
        };
        let reason = if *known {
            self.in_flight.insert(id.get(), InFlight::QueuedRelease);
            ReasonCode::Success
        } else {
            self.in_flight.remove(&id.get());
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubRel(Ack {
            packet_id: id,
            reason,
            properties: Default::default(),
        }));
    }

    pub(super) fn client_pubcomp(&mut self, id: PacketId, now: Millis) {
        match self.in_flight.get(&id.get()) {
            Some(InFlight::QueuedRelease) => {
                self.in_flight.remove(&id.get());
                self.acked.push(id.get());
            }
            Some(InFlight::DirectRelease) => {
                self.in_flight.remove(&id.get());
                self.fill_window(now);
            }
            None if self.session_expiry > 0 => self.acked.push(id.get()),
            _ => {}
        }
    }
}
