//! Publishing: `Publish` (inbound QoS 2 deduplication, the retained store, fan-out),
//! `Release`, wills, and the delivery of one message to one session: queued for a
//! persistent session, handed to the owner node for a transient one.

use std::sync::Arc;

use raftmq_storage::StoreError;

use super::Apply;
use super::after;
use super::retained::Outgoing;
use super::tables::{
    EntryStage, INBOUND, QueueEntry, SESSIONS, SHARE_CURSORS, SessionRecord, ShareRef, client_key,
    client_packet_key, cursor_key,
};
use crate::cluster::command::{Delivery, Millis, Outcome, Publish, Rejection, Target, WillMessage};
use crate::mqtt::topic::validate_topic_name;

/// One session a message goes to, with what it is delivered as.
pub(super) struct Recipient {
    pub(super) client_id: String,
    pub(super) qos: u8,
    pub(super) retain: bool,
    pub(super) subscription_ids: Vec<u32>,
    pub(super) share: Option<ShareRef>,
}

impl Apply<'_, '_> {
    pub(super) fn publish(&mut self, publish: &Publish) -> Result<Outcome, StoreError> {
        if let Some(from) = &publish.from
            && let Err(fenced) = self.session_for(&from.client_id, from.epoch)?
        {
            return Ok(fenced);
        }
        let message = &publish.message;
        let rejected = if message.qos > 2 {
            Some(Rejection::InvalidQos)
        } else if validate_topic_name(&message.topic).is_err() {
            Some(Rejection::InvalidTopic)
        } else if message.qos == 0 && !message.retain {
            Some(Rejection::Qos0Publish)
        } else {
            None
        };
        if let Some(reason) = rejected {
            return Ok(Outcome::Rejected { reason });
        }
        // DESIGN §3 rule 4: the dedup is in the state, so a resend to another node after a
        // reconnect is still recognised.
        if message.qos == 2
            && let (Some(from), Some(packet_id)) = (&publish.from, publish.packet_id)
        {
            let key = client_packet_key(&from.client_id, packet_id);
            if self.tx.get(INBOUND, &key)?.is_some() {
                return Ok(Outcome::Published {
                    duplicate: true,
                    matched: 0,
                    deliveries: Vec::new(),
                });
            }
            self.mark(INBOUND, &key);
        }
        let now = self.time(publish.now);
        let mut out = Outgoing::new(
            Arc::new(message.clone()),
            message.expiry_interval.map(|seconds| after(now, seconds)),
        );
        if message.retain {
            self.retain(&mut out)?;
        }
        let mut deliveries = Vec::new();
        // A retained QoS 0 publish is here only for the retained store: its node forwards
        // it to subscribers directly, as every QoS 0 publish (DESIGN §4).
        let matched = if message.qos == 0 {
            0
        } else {
            let publisher = publish.from.as_ref().map(|from| from.client_id.as_str());
            self.route(&mut out, publisher, &mut deliveries)?
        };
        self.settle(&out)?;
        Ok(Outcome::Published {
            duplicate: false,
            matched,
            deliveries,
        })
    }

    pub(super) fn release(
        &mut self,
        client_id: &str,
        epoch: u64,
        packet_id: u16,
    ) -> Result<Outcome, StoreError> {
        if let Err(fenced) = self.session_for(client_id, epoch)? {
            return Ok(fenced);
        }
        let key = client_packet_key(client_id, packet_id);
        let known = self.tx.get(INBOUND, &key)?.is_some();
        self.remove(INBOUND, &key);
        Ok(Outcome::Released { known })
    }

    /// Publishes a will on behalf of `client_id` (whose no-local subscriptions skip it). A
    /// will may be QoS 0: it then reaches online sessions only.
    pub(super) fn publish_will(
        &mut self,
        client_id: &str,
        will: WillMessage,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let expires_at = will.message.expiry_interval.map(|s| after(now, s));
        let retain = will.message.retain;
        let mut out = Outgoing::new(Arc::new(will.message), expires_at);
        if retain {
            self.retain(&mut out)?;
        }
        self.route(&mut out, Some(client_id), deliveries)?;
        self.settle(&out)
    }

    /// Delivers `out` to every subscription its topic matches: once per session for
    /// ordinary subscriptions (overlaps merged), once per shared group to one member.
    /// Returns how many recipients were chosen.
    pub(super) fn route(
        &mut self,
        out: &mut Outgoing,
        publisher: Option<&str>,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<u32, StoreError> {
        let message = out.message.clone();
        let mut recipients = Vec::new();
        let mut chosen = Vec::new();
        {
            let routes = self.index.route(&message.topic, publisher);
            for (client_id, merged) in routes.subscribers {
                recipients.push(Recipient {
                    client_id: client_id.to_owned(),
                    qos: message.qos.min(merged.qos),
                    retain: message.retain && merged.retain_as_published,
                    subscription_ids: merged.subscription_ids,
                    share: None,
                });
            }
            for group in &routes.shared {
                let share = ShareRef {
                    group: group.group.to_owned(),
                    filter: group.filter.to_owned(),
                };
                let cursor: Option<String> = self.get(SHARE_CURSORS, &cursor_key(&share))?;
                let Some((client_id, record)) =
                    self.pick_member(group.members, cursor.as_deref(), None)?
                else {
                    continue;
                };
                recipients.push(Recipient {
                    client_id: client_id.clone(),
                    qos: message.qos.min(record.options.qos),
                    retain: message.retain && record.options.retain_as_published,
                    subscription_ids: record.subscription_id.into_iter().collect(),
                    share: Some(share.clone()),
                });
                chosen.push((share, client_id.clone()));
            }
        }
        for (share, client_id) in chosen {
            self.put(SHARE_CURSORS, &cursor_key(&share), &client_id)?;
        }
        let matched = u32::try_from(recipients.len()).unwrap_or(u32::MAX);
        for recipient in recipients {
            self.deliver(out, recipient, deliveries)?;
        }
        Ok(matched)
    }

    /// Delivers one message to one session: to its owner node directly if the session is
    /// transient or the QoS is 0 (dropped if the session is offline: MQTT lets QoS 0 go),
    /// into its queue otherwise.
    pub(super) fn deliver(
        &mut self,
        out: &mut Outgoing,
        recipient: Recipient,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let session: Option<SessionRecord> =
            self.get(SESSIONS, &client_key(&recipient.client_id))?;
        // A subscription is removed with its session in the same command, so this is only
        // reached for an index built from a damaged state; skipping keeps the others going.
        let Some(session) = session else {
            return Ok(());
        };
        if session.is_transient() || recipient.qos == 0 {
            if let Some(node) = session.owner {
                deliveries.push(Delivery::Direct {
                    target: Target {
                        node,
                        client_id: recipient.client_id,
                        epoch: session.epoch,
                    },
                    qos: recipient.qos,
                    retain: recipient.retain,
                    subscription_ids: recipient.subscription_ids,
                    expires_at: out.expires_at,
                    message: out.message.clone(),
                    share: recipient.share,
                });
            }
            return Ok(());
        }
        let message_id = self.message_id(out)?;
        let entry = QueueEntry {
            seq: 0,
            message_id: Some(message_id),
            expires_at: out.expires_at,
            qos: recipient.qos,
            retain: recipient.retain,
            subscription_ids: recipient.subscription_ids,
            share: recipient.share,
            stage: EntryStage::Queued,
            sent: false,
            bytes: u32::try_from(out.message.payload.len()).unwrap_or(u32::MAX),
        };
        let in_flight = self.enqueue(&recipient.client_id, &session, entry)?;
        if let (Some(entry), Some(node)) = (in_flight, session.owner) {
            deliveries.push(Delivery::Queued {
                target: Target {
                    node,
                    client_id: recipient.client_id,
                    epoch: session.epoch,
                },
                entry,
            });
        }
        Ok(())
    }
}
