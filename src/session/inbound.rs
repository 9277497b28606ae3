//! What the client sends the broker: PUBLISH (topic aliases, the receive maximum, QoS 1
//! and 2 flows), PUBREL, SUBSCRIBE and UNSUBSCRIBE, and the answers once the cluster has
//! applied them (DESIGN §3 rules 1, 4, 6).

use std::sync::Arc;

use crate::cluster::command::{self, Command, Outcome, Publisher};
use crate::mqtt::topic::parse_subscription_filter;
use crate::mqtt::{
    Ack, Packet, PacketId, Protocol, Publish, QoS, ReasonCode, SubAck, Subscribe, UnsubAck,
    Unsubscribe,
};

use crate::auth::acl::Access;

use super::convert::message_from_publish;
use super::{Action, Awaiting, DropReason, Inbound, LimitHit, Session};

impl Session {
    pub(super) fn publish(&mut self, publish: Publish, actions: &mut Vec<Action>) {
        // 5.0 §3.3.4: a client may not send subscription identifiers.
        if !publish.properties.subscription_identifiers.is_empty() {
            return self.protocol_error(ReasonCode::ProtocolError, actions);
        }
        let Some(topic) = self.resolve_alias(&publish, actions) else {
            return;
        };
        if !self.limits.topic_fits(&topic) {
            self.traffic.limited(LimitHit::Topic, 1);
            return self.protocol_error(ReasonCode::TopicNameInvalid, actions);
        }
        let id = publish.packet_id;
        if let Some(id) = id {
            let known = self.inbound.get(&id.get()).copied();
            let conflict = match (publish.qos, known) {
                (QoS::AtLeastOnce, Some(state)) => {
                    !matches!(state, Inbound::Qos1 | Inbound::Qos2Releasing)
                }
                (QoS::ExactlyOnce, Some(Inbound::Qos1)) => true,
                _ => false,
            };
            // A packet id still in use by a flow of the other QoS: the client lies about
            // its ids (§2.2.1).
            if conflict {
                return self.protocol_error(ReasonCode::ProtocolError, actions);
            }
            if known.is_none() && self.inbound.len() >= usize::from(self.limits.receive_maximum) {
                return self.protocol_error(ReasonCode::ReceiveMaximumExceeded, actions);
            }
        }
        // `$SYS/` belongs to the broker: a client's publish there is refused and dropped,
        // as is one the ACL denies (5.0: PUBACK / PUBREC 0x87; 3.1.1 cannot say so).
        let refused = topic.starts_with("$SYS") || !self.allows(Access::Publish(&topic));
        match (publish.qos, id) {
            (QoS::AtMostOnce, _) => {
                if refused {
                    self.traffic.dropped(DropReason::NotAuthorized);
                    return;
                }
                let message = Arc::new(message_from_publish(&publish, topic));
                if message.retain {
                    // The retained store is in the log; the subscribers get it directly.
                    actions.push(Action::Propose(
                        self.publish_command(None, (*message).clone()),
                        Awaiting::Nothing,
                    ));
                }
                actions.push(Action::RouteQos0(message));
            }
            (QoS::AtLeastOnce, Some(id)) => {
                if refused {
                    self.traffic.dropped(DropReason::NotAuthorized);
                    self.send(&Packet::PubAck(refusal(id)));
                    return;
                }
                self.inbound.insert(id.get(), Inbound::Qos1);
                let message = message_from_publish(&publish, topic);
                let command = self.publish_command(Some(id.get()), message);
                actions.push(Action::Propose(command, Awaiting::PubAck(id)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                match self.inbound.get(&id.get()) {
                    // Already recorded in the log under this connection: a resend.
                    Some(Inbound::Qos2Received) => {
                        self.send(&Packet::PubRec(Ack::new(id)));
                        return;
                    }
                    Some(Inbound::Qos2Refused) => {
                        self.send(&Packet::PubRec(refusal(id)));
                        return;
                    }
                    _ => {}
                }
                if refused {
                    self.traffic.dropped(DropReason::NotAuthorized);
                    // 5.0: a PUBREC with an error ends the flow; 3.1.1 has no error here
                    // and the client will send PUBREL, answered locally.
                    if self.protocol == Protocol::V311 {
                        self.inbound.insert(id.get(), Inbound::Qos2Refused);
                    }
                    self.send(&Packet::PubRec(refusal(id)));
                    return;
                }
                self.inbound.insert(id.get(), Inbound::Qos2Proposed);
                let message = message_from_publish(&publish, topic);
                let command = self.publish_command(Some(id.get()), message);
                actions.push(Action::Propose(command, Awaiting::PubRec(id)));
            }
            // The codec never yields a QoS 1/2 publish without a packet id.
            (_, None) => self.protocol_error(ReasonCode::MalformedPacket, actions),
        }
    }

    /// The topic of an inbound PUBLISH, through its topic alias (5.0 §3.3.2.3.4).
    fn resolve_alias(&mut self, publish: &Publish, actions: &mut Vec<Action>) -> Option<String> {
        let Some(alias) = publish.properties.topic_alias else {
            return Some(publish.topic.clone());
        };
        if alias == 0 || alias > self.limits.topic_alias_maximum {
            self.protocol_error(ReasonCode::TopicAliasInvalid, actions);
            return None;
        }
        if publish.topic.is_empty() {
            let topic = self.inbound_aliases.get(&alias).cloned();
            if topic.is_none() {
                self.protocol_error(ReasonCode::ProtocolError, actions);
            }
            topic
        } else {
            self.inbound_aliases.insert(alias, publish.topic.clone());
            Some(publish.topic.clone())
        }
    }

    fn publish_command(&self, packet_id: Option<u16>, message: command::Message) -> Command {
        Command::Publish(command::Publish {
            from: Some(Publisher {
                client_id: self.client_id.clone(),
                epoch: self.epoch,
            }),
            packet_id,
            message,
            now: crate::cluster::clock::now(),
        })
    }

    pub(super) fn pubrel(&mut self, id: PacketId, actions: &mut Vec<Action>) {
        if self.inbound.get(&id.get()) == Some(&Inbound::Qos2Refused) {
            self.inbound.remove(&id.get());
            self.send(&Packet::PubComp(Ack::new(id)));
            return;
        }
        // Sent to the cluster even when this connection does not know the id: the PUBREC
        // may have come from a connection on another node (DESIGN §3 rule 4).
        self.inbound.insert(id.get(), Inbound::Qos2Releasing);
        actions.push(Action::Propose(
            Command::Release {
                client_id: self.client_id.clone(),
                epoch: self.epoch,
                packet_id: id.get(),
            },
            Awaiting::PubComp(id),
        ));
    }

    pub(super) fn subscribe(
        &mut self,
        subscribe: Subscribe,
        now: crate::cluster::command::Millis,
        actions: &mut Vec<Action>,
    ) {
        // 5.0 §3.8.3.1: No Local on a shared subscription is a protocol error.
        let shared_no_local = subscribe.filters.iter().any(|(filter, options)| {
            options.no_local
                && parse_subscription_filter(filter).is_ok_and(|f| f.share_group().is_some())
        });
        if shared_no_local {
            return self.protocol_error(ReasonCode::ProtocolError, actions);
        }
        // Filters over the size limits (0x8F) or that the ACL denies (0x80) are answered
        // here and left out of the command.
        let too_long = subscribe
            .filters
            .iter()
            .filter(|(filter, _)| !self.limits.topic_fits(filter))
            .count();
        self.traffic.limited(LimitHit::Topic, too_long);
        let verdict = |filter: &str| {
            if !self.limits.topic_fits(filter) {
                // 3.1.1 knows only 0x80 for a refused filter.
                Some(match self.protocol {
                    Protocol::V5 => ReasonCode::TopicFilterInvalid,
                    Protocol::V311 => ReasonCode::UnspecifiedError,
                })
            } else if !self.allows(Access::Subscribe(filter)) {
                Some(ReasonCode::UnspecifiedError)
            } else {
                None
            }
        };
        let mut refused = Vec::new();
        let mut allowed = Vec::new();
        for (i, (filter, options)) in subscribe.filters.iter().enumerate() {
            match verdict(filter) {
                Some(reason) => refused.push((i, reason)),
                None => allowed.push((i, filter, options)),
            }
        }
        // New filters past the subscription limit: quota exceeded.
        let mut over_quota = 0;
        if let Some(held) = &mut self.filters {
            let max = self.limits.max_subscriptions as usize;
            let mut proposed = Vec::new();
            let mut kept = Vec::new();
            let offered = allowed.len();
            for (i, filter, options) in allowed {
                if held.contains(filter.as_str()) || held.len() < max {
                    held.insert(filter.clone());
                    proposed.push(filter.clone());
                    kept.push((i, filter, options));
                } else {
                    refused.push((
                        i,
                        match self.protocol {
                            Protocol::V5 => ReasonCode::QuotaExceeded,
                            Protocol::V311 => ReasonCode::UnspecifiedError,
                        },
                    ));
                }
            }
            over_quota = offered - kept.len();
            refused.sort_by_key(|(i, _)| *i);
            allowed = kept;
            if !proposed.is_empty() {
                self.proposed_filters
                    .insert(subscribe.packet_id.get(), proposed);
            }
        }
        self.traffic.limited(LimitHit::Subscriptions, over_quota);
        if allowed.is_empty() {
            self.send(&Packet::SubAck(SubAck {
                packet_id: subscribe.packet_id,
                reasons: refused.into_iter().map(|(_, reason)| reason).collect(),
                properties: Default::default(),
            }));
            return;
        }
        if !refused.is_empty() {
            self.refused_filters
                .insert(subscribe.packet_id.get(), refused);
        }
        let command = Command::Subscribe(command::Subscribe {
            client_id: self.client_id.clone(),
            epoch: self.epoch,
            filters: allowed
                .into_iter()
                .map(|(_, filter, options)| (filter.clone(), (*options).into()))
                .collect(),
            subscription_id: subscribe
                .properties
                .subscription_identifiers
                .first()
                .copied(),
            now,
        });
        actions.push(Action::Propose(
            command,
            Awaiting::SubAck(subscribe.packet_id),
        ));
    }

    pub(super) fn unsubscribe(&mut self, unsubscribe: Unsubscribe, actions: &mut Vec<Action>) {
        if let Some(held) = &mut self.filters {
            for filter in &unsubscribe.filters {
                held.remove(filter);
            }
        }
        let command = Command::Unsubscribe {
            client_id: self.client_id.clone(),
            epoch: self.epoch,
            filters: unsubscribe.filters,
        };
        actions.push(Action::Propose(
            command,
            Awaiting::UnsubAck(unsubscribe.packet_id),
        ));
    }

    /// A publish of this client is in the log: PUBACK or PUBREC.
    pub(super) fn published(&mut self, id: PacketId, qos2: bool, outcome: &Outcome) {
        let Outcome::Published {
            matched, duplicate, ..
        } = outcome
        else {
            return self.unexpected(outcome);
        };
        let reason = if *matched == 0 && !*duplicate {
            self.traffic.dropped(DropReason::NoSubscribers);
            ReasonCode::NoMatchingSubscribers
        } else {
            ReasonCode::Success
        };
        let ack = Ack {
            packet_id: id,
            reason,
            properties: Default::default(),
        };
        if qos2 {
            self.inbound.insert(id.get(), Inbound::Qos2Received);
            self.send(&Packet::PubRec(ack));
        } else {
            self.inbound.remove(&id.get());
            self.send(&Packet::PubAck(ack));
        }
    }

    pub(super) fn released(&mut self, id: PacketId, outcome: &Outcome) {
        let Outcome::Released { known } = outcome else {
            return self.unexpected(outcome);
        };
        if self.inbound.get(&id.get()) == Some(&Inbound::Qos2Releasing) {
            self.inbound.remove(&id.get());
        }
        let reason = if *known {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubComp(Ack {
            packet_id: id,
            reason,
            properties: Default::default(),
        }));
    }

    pub(super) fn subscribed(&mut self, id: PacketId, outcome: &Outcome) {
        let Outcome::Subscribed { reasons, .. } = outcome else {
            return self.unexpected(outcome);
        };
        // Filters the cluster refused do not count against the subscription limit.
        if let (Some(held), Some(proposed)) =
            (&mut self.filters, self.proposed_filters.remove(&id.get()))
        {
            for (filter, code) in proposed.iter().zip(reasons) {
                if *code >= 0x80 {
                    held.remove(filter);
                }
            }
        }
        let mut reasons: Vec<ReasonCode> = reasons
            .iter()
            .map(|code| ReasonCode::from_u8(*code).unwrap_or(ReasonCode::UnspecifiedError))
            .collect();
        for (position, reason) in self.refused_filters.remove(&id.get()).unwrap_or_default() {
            reasons.insert(position.min(reasons.len()), reason);
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: id,
            reasons,
            properties: Default::default(),
        }));
    }

    pub(super) fn unsubscribed(&mut self, id: PacketId, outcome: &Outcome) {
        let Outcome::Unsubscribed { reasons, .. } = outcome else {
            return self.unexpected(outcome);
        };
        let reasons = reasons
            .iter()
            .map(|code| ReasonCode::from_u8(*code).unwrap_or(ReasonCode::UnspecifiedError))
            .collect();
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: id,
            reasons,
            properties: Default::default(),
        }));
    }

    pub(super) fn unexpected(&mut self, outcome: &Outcome) {
        tracing::error!(client = %self.client_id, ?outcome, "an outcome that does not answer the command");
    }
}

/// The acknowledgement that refuses a publish (5.0 0x87; 3.1.1 cannot say so).
fn refusal(id: PacketId) -> Ack {
    Ack {
        packet_id: id,
        reason: ReasonCode::NotAuthorized,
        properties: Default::default(),
    }
}
