//! Shared subscriptions (`$share/{group}/{filter}`): which member gets a message, and
//! where a leaving member's messages go.
//!
//! The choice is a rotation by a per-group cursor kept in the state (`SHARE_CURSORS`: the
//! member chosen last): the next member after the cursor, in client-id order, that is
//! online; if no member is online, simply the next member, whose queue keeps the message
//! until it returns. A rotation rather than a hash of the message: it spreads a group's
//! messages evenly over its online members whatever the message ids, and the cursor costs
//! one small write per shared delivery.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use raftmq_storage::StoreError;

use super::Apply;
use super::publish::Recipient;
use super::retained::Outgoing;
use super::tables::{
    MESSAGES, QUEUED, QueueEntry, SESSIONS, SHARE_CURSORS, SessionRecord, ShareRef, StoredMessage,
    SubscriptionRecord, client_key, cursor_key, decode,
};
use crate::cluster::command::{Delivery, HandOver, Millis, Outcome};

impl Apply<'_, '_> {
    /// The member of a group the next message goes to (see the module doc), never
    /// `excluded`.
    pub(super) fn pick_member<'m>(
        &self,
        members: &'m BTreeMap<String, SubscriptionRecord>,
        cursor: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Option<(&'m String, &'m SubscriptionRecord)>, StoreError> {
        let (after_cursor, up_to_cursor) = match cursor {
            Some(cursor) => (
                members.range::<str, _>((Bound::Excluded(cursor), Bound::Unbounded)),
                members.range::<str, _>((Bound::Unbounded, Bound::Included(cursor))),
            ),
            None => (
                members.range::<str, _>((Bound::Unbounded, Bound::Unbounded)),
                members.range::<str, _>((Bound::Unbounded, Bound::Excluded(""))),
            ),
        };
        let mut first = None;
        for (client_id, record) in after_cursor.chain(up_to_cursor) {
            if excluded == Some(client_id.as_str()) {
                continue;
            }
            first.get_or_insert((client_id, record));
            let session: Option<SessionRecord> = self.get(SESSIONS, &client_key(client_id))?;
            if session.is_some_and(|s| s.owner.is_some()) {
                return Ok(Some((client_id, record)));
            }
        }
        Ok(first)
    }

    /// Gives an entry a member of a shared group no longer holds to another member of the
    /// group, chosen as for a new message; with no member left, the message is dropped.
    /// The entry holds a reference to its message, which moves with it.
    pub(super) fn hand_over(
        &mut self,
        entry: QueueEntry,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let (Some(share), Some(message_id)) = (entry.share, entry.message_id) else {
            return Ok(());
        };
        let expired = entry.expires_at.is_some_and(|at| at <= now);
        let stored: Option<StoredMessage> = self.get(MESSAGES, &message_id.to_be_bytes())?;
        if let Some(stored) = stored.filter(|_| !expired) {
            let mut out = Outgoing::stored(Arc::new(stored.message), stored.expires_at, message_id);
            self.deliver_to_group(share, &mut out, None, deliveries)?;
        }
        self.drop_ref(message_id)
    }

    /// Gives `out` to the next member of `share` other than `excluded`, as for a new
    /// message; returns whether a member took it.
    fn deliver_to_group(
        &mut self,
        share: ShareRef,
        out: &mut Outgoing,
        excluded: Option<&str>,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<bool, StoreError> {
        let Some(members) = self.index.groups.get(&share) else {
            return Ok(false);
        };
        let cursor: Option<String> = self.get(SHARE_CURSORS, &cursor_key(&share))?;
        let Some((client_id, record)) = self
            .pick_member(members, cursor.as_deref(), excluded)?
            .map(|(client_id, record)| (client_id.clone(), *record))
        else {
            return Ok(false);
        };
        self.put(SHARE_CURSORS, &cursor_key(&share), &client_id)?;
        let message = &out.message;
        let recipient = Recipient {
            client_id,
            qos: message.qos.min(record.options.qos),
            retain: message.retain && record.options.retain_as_published,
            subscription_ids: record.subscription_id.into_iter().collect(),
            share: Some(share),
        };
        self.deliver(out, recipient, deliveries)?;
        Ok(true)
    }

    /// `HandOver`: a transient member's unfinished messages, each to another member of its
    /// group; expired ones and those whose group has no other member are dropped.
    pub(super) fn hand_over_unfinished(
        &mut self,
        hand_over: &HandOver,
    ) -> Result<Outcome, StoreError> {
        let now = self.time(hand_over.now);
        let mut deliveries = Vec::new();
        let mut handed = 0;
        for unfinished in &hand_over.messages {
            if unfinished.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            let mut out = Outgoing::new(unfinished.message.clone(), unfinished.expires_at);
            if self.deliver_to_group(
                unfinished.share.clone(),
                &mut out,
                Some(&hand_over.client_id),
                &mut deliveries,
            )? {
                handed += 1;
            }
            // A persistent member's queue entry holds the message now; nothing else may.
            self.settle(&out)?;
        }
        Ok(Outcome::HandedOver { handed, deliveries })
    }

    /// A member unsubscribed from a shared group: the entries it has queued for the group
    /// go to other members. Its in-flight ones stay: the connection is still there and
    /// finishes them (MQTT 5.0 §3.10.4).
    pub(super) fn leave_group(
        &mut self,
        client_id: &str,
        share: &ShareRef,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let mut leaving = Vec::new();
        for (key, raw) in self.tx.scan_prefix(QUEUED, &client_key(client_id))? {
            let entry: QueueEntry = decode(&raw)?;
            if entry.share.as_ref() == Some(share) {
                self.remove(QUEUED, &key);
                self.unhold(client_id, &entry);
                leaving.push(entry);
            }
        }
        if !leaving.is_empty() {
            let mut queue = self.load_queue(client_id)?;
            queue.queued = queue
                .queued
                .saturating_sub(u32::try_from(leaving.len()).unwrap_or(u32::MAX));
            let bytes: u64 = leaving.iter().map(|entry| u64::from(entry.bytes)).sum();
            queue.queued_bytes = queue.queued_bytes.saturating_sub(bytes);
            self.save_queue(client_id, &queue)?;
        }
        for entry in leaving {
            self.hand_over(entry, now, deliveries)?;
        }
        self.forget_group_if_empty(share);
        Ok(())
    }

    /// Drops the cursor of a group that has no member left.
    pub(super) fn forget_group_if_empty(&mut self, share: &ShareRef) {
        if !self.index.groups.contains_key(share) {
            self.remove(SHARE_CURSORS, &cursor_key(share));
        }
    }
}
