//! Reads of the broker state for everything outside `apply`: the session handler (resend
//! after failover, the message of a queued delivery), the admin API and tests. Each reads
//! the state as last applied on this node.

use raftmq_storage::{StateReader, StoreError, Table};
use serde::de::DeserializeOwned;

use super::tables::{
    BROKER, BrokerMeta, IN_FLIGHT, INBOUND, KeyReader, MESSAGE_REFS, MESSAGES, META_KEY,
    MessageRefs, QUEUED, QUEUES, QueueEntry, QueueRecord, RETAINED, RETAINED_COUNT_KEY, SESSIONS,
    SUBSCRIPTIONS, SessionRecord, StoredMessage, SubscriptionRecord, USERS, UserRecord, WILLS,
    client_key, client_packet_key, decode,
};
use crate::cluster::command::{Millis, OutboundEntry, WillMessage};
use crate::mqtt::topic::matches;

/// Entries in the queues of all sessions (see [`BrokerReader::queue_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueTotals {
    /// Waiting for their session's in-flight window.
    pub queued: u64,
    /// Their payload bytes.
    pub queued_bytes: u64,
    /// Sent and not yet acknowledged.
    pub in_flight: u64,
    /// Dropped by the sessions' queue limits so far (sessions that still exist).
    pub dropped: u64,
}

/// Typed reads of the broker's tables. Cheap to clone; follows the state across snapshot
/// installs, as the `StateReader` it wraps does.
#[derive(Clone)]
pub struct BrokerReader {
    state: StateReader,
}

impl BrokerReader {
    pub fn new(state: StateReader) -> Self {
        BrokerReader { state }
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.state
            .get(table, key)?
            .map(|raw| decode(&raw))
            .transpose()
    }

    /// The broker-wide record: clock, counters, session count.
    pub fn meta(&self) -> Result<BrokerMeta, StoreError> {
        Ok(self.get(BROKER, META_KEY)?.unwrap_or_default())
    }

    /// The state's clock, against which message expiry times count: a delivery's
    /// remaining expiry interval is `expires_at - clock`.
    pub fn clock(&self) -> Result<Millis, StoreError> {
        Ok(self.meta()?.clock)
    }

    /// Whether `topic` has a retained message (expired or not), from one key.
    pub fn is_retained(&self, topic: &str) -> Result<bool, StoreError> {
        Ok(self.state.get(RETAINED, topic.as_bytes())?.is_some())
    }

    /// The number of retained messages, from one record.
    pub fn retained_count(&self) -> Result<u64, StoreError> {
        Ok(self.get(BROKER, RETAINED_COUNT_KEY)?.unwrap_or(0))
    }

    /// The number of sessions, online and offline, from one record.
    pub fn session_count(&self) -> Result<u64, StoreError> {
        Ok(self.meta()?.sessions)
    }

    pub fn session(&self, client_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(SESSIONS, &client_key(client_id))
    }

    /// Every session with its client id, in client-id length then byte order (the key
    /// order). Reads the whole table: for the admin API's listing and for tests.
    pub fn sessions(&self) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let mut sessions = Vec::new();
        for (key, raw) in self.state.scan_prefix(SESSIONS, b"")? {
            let client_id = KeyReader::new(SESSIONS, &key).client()?;
            sessions.push((client_id, decode(&raw)?));
        }
        Ok(sessions)
    }

    /// The will of the session's connection, or its pending delayed will.
    pub fn will(&self, client_id: &str) -> Result<Option<WillMessage>, StoreError> {
        self.get(WILLS, &client_key(client_id))
    }

    /// The session's subscriptions: (filter as subscribed, record), in filter order.
    pub fn subscriptions(
        &self,
        client_id: &str,
    ) -> Result<Vec<(String, SubscriptionRecord)>, StoreError> {
        let mut subscriptions = Vec::new();
        for (key, raw) in self
            .state
            .scan_prefix(SUBSCRIPTIONS, &client_key(client_id))?
        {
            let mut reader = KeyReader::new(SUBSCRIPTIONS, &key);
            reader.client()?;
            subscriptions.push((reader.text()?, decode(&raw)?));
        }
        Ok(subscriptions)
    }

    /// The counters of the session's queue, overflow drops included.
    pub fn queue(&self, client_id: &str) -> Result<Option<QueueRecord>, StoreError> {
        self.get(QUEUES, &client_key(client_id))
    }

    /// The queue entries of every session, summed from one small record per session with
    /// a queue (never the entries themselves): for `/metrics`.
    pub fn queue_totals(&self) -> Result<QueueTotals, StoreError> {
        let mut totals = QueueTotals::default();
        for (_, raw) in self.state.scan_prefix(QUEUES, b"")? {
            let queue: QueueRecord = decode(&raw)?;
            totals.queued += u64::from(queue.queued);
            totals.queued_bytes += queue.queued_bytes;
            totals.dropped += queue.dropped;
            totals.in_flight += u64::from(queue.in_flight);
        }
        Ok(totals)
    }

    /// The session's in-flight entries in queue order: what a new owner resends.
    pub fn in_flight(&self, client_id: &str) -> Result<Vec<OutboundEntry>, StoreError> {
        let mut entries = Vec::new();
        for (_, raw) in self.state.scan_prefix(IN_FLIGHT, &client_key(client_id))? {
            let entry: QueueEntry = decode(&raw)?;
            entries.extend(entry.outbound());
        }
        entries.sort_by_key(|entry| entry.seq);
        Ok(entries)
    }

    /// The session's entries waiting for the in-flight window, oldest first.
    pub fn queued(&self, client_id: &str) -> Result<Vec<QueueEntry>, StoreError> {
        self.state
            .scan_prefix(QUEUED, &client_key(client_id))?
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }

    /// Whether the client's QoS 2 publish with `packet_id` awaits PUBREL.
    pub fn awaiting_release(&self, client_id: &str, packet_id: u16) -> Result<bool, StoreError> {
        Ok(self
            .state
            .get(INBOUND, &client_packet_key(client_id, packet_id))?
            .is_some())
    }

    pub fn message(&self, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        self.get(MESSAGES, &id.to_be_bytes())
    }

    /// How many queue entries (and the retained store) refer to message `id`.
    pub fn message_refs(&self, id: u64) -> Result<Option<u32>, StoreError> {
        let refs: Option<MessageRefs> = self.get(MESSAGE_REFS, &id.to_be_bytes())?;
        Ok(refs.map(|refs| refs.count))
    }

    /// The number of stored messages. Reads the whole table: for status pages and tests.
    pub fn stored_messages(&self) -> Result<usize, StoreError> {
        Ok(self.state.scan_prefix(MESSAGES, b"")?.len())
    }

    /// The retained messages `filter` (an ordinary filter, no `$share/`) matches and that
    /// have not expired by the state's clock, in topic order.
    pub fn retained(&self, filter: &str) -> Result<Vec<(String, StoredMessage)>, StoreError> {
        let clock = self.clock()?;
        let mut found = Vec::new();
        for (key, raw) in self.state.scan_prefix(RETAINED, b"")? {
            let Ok(topic) = String::from_utf8(key) else {
                continue;
            };
            if !matches(filter, &topic) {
                continue;
            }
            let id: u64 = decode(&raw)?;
            if let Some(stored) = self.message(id)?
                && stored.expires_at.is_none_or(|at| at > clock)
            {
                found.push((topic, stored));
            }
        }
        Ok(found)
    }

    /// The stored password hash of `username`.
    pub fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(USERS, username.as_bytes())
    }

    /// Every user, in name order.
    pub fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let mut users = Vec::new();
        for (key, raw) in self.state.scan_prefix(USERS, b"")? {
            let name = String::from_utf8(key).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            users.push((name, decode(&raw)?));
        }
        Ok(users)
    }

    /// The cluster's ACL rules, in order.
    pub fn acl_rules(&self) -> Result<Vec<crate::auth::acl::AclRule>, StoreError> {
        super::access::stored_rules(&self.state)
    }
}
