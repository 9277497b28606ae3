//! Sessions: `Connect` (resume, fresh start, takeover), `Disconnect`, the end of a session,
//! `NodeDown`, and the epoch fence every client command passes (DESIGN §3 rule 3).

use raftmq_storage::StoreError;

use super::tables::{
    EntryStage, IN_FLIGHT, INBOUND, KeyReader, OWNERS, QUEUED, QUEUES, QueueEntry, QueueRecord,
    SESSION_EXPIRY, SESSIONS, SUBSCRIPTIONS, SessionRecord, WILL_DUE, WILLS, client_key, decode,
    u64_client_key,
};
use super::{Apply, after, index::share_ref};
use crate::cluster::command::{
    Connect, Delivery, Disconnect, Evict, Millis, Outcome, Rejection, Stage, Takeover, WillMessage,
};
use crate::cluster::types::NodeId;
use crate::mqtt::topic::parse_subscription_filter;

/// Sessions one `NodeDown` handles; the outcome says whether more remain, and the leader
/// proposes it again, so that no single command does unbounded work.
pub const NODE_DOWN_LIMIT: usize = 1000;

impl Apply<'_, '_> {
    /// The session a client command acts on, if the command's epoch is the session's
    /// current one and the session is online; otherwise the `Fenced` answer.
    pub(super) fn session_for(
        &self,
        client_id: &str,
        epoch: u64,
    ) -> Result<Result<SessionRecord, Outcome>, StoreError> {
        let session: Option<SessionRecord> = self.get(SESSIONS, &client_key(client_id))?;
        Ok(match session {
            Some(session) if session.epoch == epoch && session.owner.is_some() => Ok(session),
            other => Err(Outcome::Fenced {
                current_epoch: other.map(|s| s.epoch),
            }),
        })
    }

    pub(super) fn connect(&mut self, connect: &Connect) -> Result<Outcome, StoreError> {
        if let Some(reason) = rejection(connect) {
            return Ok(Outcome::Rejected { reason });
        }
        let now = self.time(connect.now);
        let client_id = connect.client_id.as_str();
        let key = client_key(client_id);
        let existing: Option<SessionRecord> = self.get(SESSIONS, &key)?;
        let taken_over = existing.as_ref().and_then(|old| {
            old.owner.map(|node| Takeover {
                node,
                epoch: old.epoch,
            })
        });
        let mut deliveries = Vec::new();
        let session_present = match existing {
            Some(old) if !connect.clean_start => {
                self.detach(client_id, &old, now, &mut deliveries)?;
                true
            }
            Some(old) => {
                self.end_session(client_id, old, true, now, &mut deliveries)?;
                false
            }
            None => false,
        };
        if !session_present {
            self.meta.sessions += 1;
            self.put(QUEUES, &key, &QueueRecord::default())?;
        }
        let session = SessionRecord {
            protocol: connect.protocol,
            epoch: self.next_epoch(),
            owner: Some(connect.node),
            session_expiry: connect.session_expiry,
            expires_at: None,
            will_due: None,
            receive_maximum: connect.receive_maximum,
            max_queue: connect.max_queue,
            max_queue_bytes: connect.max_queue_bytes,
        };
        self.put(SESSIONS, &key, &session)?;
        self.mark(OWNERS, &u64_client_key(connect.node, client_id));
        match &connect.will {
            Some(will) => self.put(WILLS, &key, will)?,
            None => self.remove(WILLS, &key),
        }
        // The new connection's window may be larger than the last one's.
        let mut queue = self.load_queue(client_id)?;
        self.promote(client_id, &session, &mut queue, now, &mut Vec::new(), false)?;
        self.put(QUEUES, &key, &queue)?;
        let resend = self.in_flight_entries(client_id)?;
        Ok(Outcome::Connected {
            client_id: connect.client_id.clone(),
            node: connect.node,
            epoch: session.epoch,
            session_present,
            taken_over,
            resend,
            deliveries,
        })
    }

    /// Readies an existing session for a connection that resumes it: the old connection
    /// (if any) ends abnormally, and the session stops waiting to expire.
    fn detach(
        &mut self,
        client_id: &str,
        old: &SessionRecord,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let key = client_key(client_id);
        if let Some(owner) = old.owner {
            self.remove(OWNERS, &u64_client_key(owner, client_id));
            // The old connection was closed without DISCONNECT. A delayed will is
            // cancelled by the new connection arriving before its delay (MQTT 5.0
            // §3.1.3.2.2); 3.1.1 wills have no delay and are published.
            if let Some(will) = self.take_will(client_id)?
                && will.delay == 0
            {
                self.publish_will(client_id, will, now, deliveries)?;
            }
        }
        if let Some(due) = old.will_due {
            self.remove(WILL_DUE, &u64_client_key(due, client_id));
            self.remove(WILLS, &key);
        }
        if let Some(at) = old.expires_at {
            self.remove(SESSION_EXPIRY, &u64_client_key(at, client_id));
        }
        Ok(())
    }

    pub(super) fn disconnect(&mut self, disconnect: &Disconnect) -> Result<Outcome, StoreError> {
        let mut session = match self.session_for(&disconnect.client_id, disconnect.epoch)? {
            Ok(session) => session,
            Err(fenced) => return Ok(fenced),
        };
        // MQTT 5.0 §3.14.2.2.2: a session that ends with its connection cannot be given an
        // expiry at DISCONNECT (the broker treats that as a protocol error).
        if let Some(expiry) = disconnect.session_expiry
            && (session.session_expiry != 0 || expiry == 0)
        {
            session.session_expiry = expiry;
        }
        let now = self.time(disconnect.now);
        let mut deliveries = Vec::new();
        let session_ended = self.go_offline(
            &disconnect.client_id,
            session,
            disconnect.publish_will,
            now,
            &mut deliveries,
        )?;
        Ok(Outcome::Disconnected {
            session_ended,
            deliveries,
        })
    }

    /// The session's connection is gone: its will is published, scheduled or dropped, and
    /// the session ends (transient) or waits offline until it expires. Returns whether it
    /// ended.
    fn go_offline(
        &mut self,
        client_id: &str,
        mut session: SessionRecord,
        publish_will: bool,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<bool, StoreError> {
        let key = client_key(client_id);
        if let Some(owner) = session.owner.take() {
            self.remove(OWNERS, &u64_client_key(owner, client_id));
        }
        let will = match self.take_will(client_id)? {
            Some(will) if publish_will => Some(will),
            _ => None,
        };
        if session.is_transient() {
            // Ended before the will goes out, so the will does not reach the session's own
            // subscriptions; a will delay never outlasts the session (§3.1.3.2.2).
            self.end_session(client_id, session, false, now, deliveries)?;
            if let Some(will) = will {
                self.publish_will(client_id, will, now, deliveries)?;
            }
            return Ok(true);
        }
        if session.session_expiry != u32::MAX {
            let at = after(now, session.session_expiry);
            session.expires_at = Some(at);
            self.mark(SESSION_EXPIRY, &u64_client_key(at, client_id));
        }
        let mut publish_now = None;
        if let Some(will) = will {
            if will.delay == 0 {
                publish_now = Some(will);
            } else {
                // Published at the delay or when the session ends, whichever comes first;
                // a tick that reaches both ends the session, which publishes it once.
                let due = after(now, will.delay).min(session.expires_at.unwrap_or(Millis::MAX));
                session.will_due = Some(due);
                self.mark(WILL_DUE, &u64_client_key(due, client_id));
                self.put(WILLS, &key, &will)?;
            }
        }
        self.put(SESSIONS, &key, &session)?;
        if let Some(will) = publish_now {
            self.publish_will(client_id, will, now, deliveries)?;
        }
        Ok(false)
    }

    /// Removes the will of the session's connection (or its pending delayed will).
    pub(super) fn take_will(&mut self, client_id: &str) -> Result<Option<WillMessage>, StoreError> {
        let key = client_key(client_id);
        let will = self.get(WILLS, &key)?;
        if will.is_some() {
            self.remove(WILLS, &key);
        }
        Ok(will)
    }

    /// Ends a session: its subscriptions, queue, inbound QoS 2 ids and indexes go; entries
    /// it held for shared groups go to other members; then its will (the connection's or
    /// the pending delayed one) is published if `publish_will`.
    pub(super) fn end_session(
        &mut self,
        client_id: &str,
        session: SessionRecord,
        publish_will: bool,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        let key = client_key(client_id);
        let mut left = Vec::new();
        for (sub_key, _) in self.tx.scan_prefix(SUBSCRIPTIONS, &key)? {
            let mut reader = KeyReader::new(SUBSCRIPTIONS, &sub_key);
            reader.client()?;
            let text = reader.text()?;
            self.remove(SUBSCRIPTIONS, &sub_key);
            // A stored filter that no longer parses was never indexed: nothing to undo.
            if let Ok(filter) = parse_subscription_filter(&text) {
                self.index.remove(&filter, client_id);
                left.extend(share_ref(&filter));
            }
        }

        // Entries of shared groups go to another member; the rest are dropped. A QoS 2
        // entry already PUBREC'd reached this member and is not sent again.
        let mut moving = Vec::new();
        for (entry_key, raw) in self.tx.scan_prefix(IN_FLIGHT, &key)? {
            self.remove(IN_FLIGHT, &entry_key);
            let mut entry: QueueEntry = decode(&raw)?;
            let unreceived = matches!(
                entry.stage,
                EntryStage::InFlight {
                    stage: Stage::AwaitingAck,
                    ..
                }
            );
            if entry.share.is_some() && unreceived {
                entry.stage = EntryStage::Queued;
                moving.push(entry);
            } else if let Some(message_id) = entry.message_id {
                self.drop_ref(message_id)?;
            }
        }
        for (entry_key, raw) in self.tx.scan_prefix(QUEUED, &key)? {
            self.remove(QUEUED, &entry_key);
            let entry: QueueEntry = decode(&raw)?;
            self.unhold(client_id, &entry);
            if entry.share.is_some() {
                moving.push(entry);
            } else if let Some(message_id) = entry.message_id {
                self.drop_ref(message_id)?;
            }
        }
        moving.sort_by_key(|entry| entry.seq);
        for entry in moving {
            self.hand_over(entry, now, deliveries)?;
        }
        for share in &left {
            self.forget_group_if_empty(share);
        }

        for (inbound_key, _) in self.tx.scan_prefix(INBOUND, &key)? {
            self.remove(INBOUND, &inbound_key);
        }
        self.remove(QUEUES, &key);
        self.remove(SESSIONS, &key);
        if let Some(owner) = session.owner {
            self.remove(OWNERS, &u64_client_key(owner, client_id));
        }
        if let Some(at) = session.expires_at {
            self.remove(SESSION_EXPIRY, &u64_client_key(at, client_id));
        }
        if let Some(due) = session.will_due {
            self.remove(WILL_DUE, &u64_client_key(due, client_id));
        }
        self.meta.sessions = self.meta.sessions.saturating_sub(1);
        if let Some(will) = self.take_will(client_id)?
            && publish_will
        {
            self.publish_will(client_id, will, now, deliveries)?;
        }
        Ok(())
    }

    /// See [`crate::cluster::command::Command::Evict`].
    pub(super) fn evict(&mut self, evict: &Evict) -> Result<Outcome, StoreError> {
        let session: Option<SessionRecord> = self.get(SESSIONS, &client_key(&evict.client_id))?;
        let Some(session) = session else {
            return Ok(Outcome::Evicted {
                client_id: evict.client_id.clone(),
                existed: false,
                connection: None,
                deliveries: Vec::new(),
            });
        };
        let connection = session.owner.map(|node| Takeover {
            node,
            epoch: session.epoch,
        });
        let mut deliveries = Vec::new();
        if evict.remove_session {
            let now = self.time(evict.now);
            self.end_session(&evict.client_id, session, false, now, &mut deliveries)?;
        }
        Ok(Outcome::Evicted {
            client_id: evict.client_id.clone(),
            existed: true,
            connection,
            deliveries,
        })
    }

    /// Every session `node` held goes offline as if its connection dropped, at most
    /// [`NODE_DOWN_LIMIT`] of them per command.
    pub(super) fn node_down(&mut self, node: NodeId, now: Millis) -> Result<Outcome, StoreError> {
        let now = self.time(now);
        let from = node.to_be_bytes();
        // Past every key of this node: the next node's prefix, or for the largest id a
        // key above any client-id length that follows it.
        let to = match node.checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => vec![u8::MAX; 9],
        };
        let owned = self
            .tx
            .scan_range(OWNERS, &from, &to, NODE_DOWN_LIMIT + 1)?;
        let remaining = owned.len() > NODE_DOWN_LIMIT;
        let mut deliveries = Vec::new();
        let mut sessions = 0;
        for (owner_key, _) in owned.into_iter().take(NODE_DOWN_LIMIT) {
            let mut reader = KeyReader::new(OWNERS, &owner_key);
            reader.u64()?;
            let client_id = reader.client()?;
            self.remove(OWNERS, &owner_key);
            let session: Option<SessionRecord> = self.get(SESSIONS, &client_key(&client_id))?;
            // An index entry left behind by an older owner is simply dropped.
            let Some(session) = session.filter(|s| s.owner == Some(node)) else {
                continue;
            };
            self.go_offline(&client_id, session, true, now, &mut deliveries)?;
            sessions += 1;
        }
        Ok(Outcome::NodeDowned {
            sessions,
            remaining,
            deliveries,
        })
    }
}

/// Why a `Connect` cannot be applied, if it cannot.
fn rejection(connect: &Connect) -> Option<Rejection> {
    if !matches!(connect.protocol, 4 | 5) {
        return Some(Rejection::UnknownProtocol);
    }
    if connect.receive_maximum == 0 {
        return Some(Rejection::ZeroReceiveMaximum);
    }
    let will = connect.will.as_ref().map(|will| &will.message);
    if will.is_some_and(|message| message.qos > 2) {
        return Some(Rejection::InvalidQos);
    }
    if will.is_some_and(|message| crate::mqtt::topic::validate_topic_name(&message.topic).is_err())
    {
        return Some(Rejection::InvalidTopic);
    }
    None
}
