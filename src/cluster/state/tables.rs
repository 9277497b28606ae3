//! The state machine's tables: their one-byte prefixes, how their keys are laid out, the
//! records they hold, and how records are encoded.
//!
//! A client id appears in keys as a 4-byte big-endian length then its bytes
//! ([`client_key`]), so that the keys of one client form a prefix no other client's keys
//! start with. Times, sequence numbers and ids are big-endian, so sled's key order is their
//! numeric order: expiry indexes are read oldest first with `scan_range`.
//!
//! | table | key | value |
//! |---|---|---|
//! | `BROKER` | `b"meta"` | [`BrokerMeta`]: clock, epoch / message id counters, session count |
//! | `BROKER` | `b"retained"` | u64: the number of retained messages |
//! | `SESSIONS` | client | [`SessionRecord`] |
//! | `WILLS` | client | [`WillMessage`] of the connection, or its pending delayed will |
//! | `SUBSCRIPTIONS` | client ++ filter text | [`SubscriptionRecord`] |
//! | `QUEUES` | client | [`QueueRecord`]: counters of the outbound queue |
//! | `QUEUED` | client ++ seq | [`QueueEntry`] waiting for the in-flight window |
//! | `IN_FLIGHT` | client ++ packet id | [`QueueEntry`] in flight |
//! | `INBOUND` | client ++ packet id | empty: a QoS 2 publish awaiting PUBREL |
//! | `MESSAGES` | message id | [`StoredMessage`] |
//! | `MESSAGE_REFS` | message id | [`MessageRefs`]: reference count and expiry |
//! | `HOLDERS` | message id ++ client ++ seq | empty: a *queued* entry of an expiring message |
//! | `RETAINED` | topic | message id |
//! | `SESSION_EXPIRY` | time ++ client | empty |
//! | `WILL_DUE` | time ++ client | empty |
//! | `MESSAGE_EXPIRY` | time ++ message id | empty |
//! | `OWNERS` | node ++ client | empty: the sessions a node holds connections for |
//! | `SHARE_CURSORS` | group length ++ group ++ filter | client id chosen last |
//! | `USERS` | username | [`UserRecord`]: the password hash |
//! | `ACL` | `b"rules"` | the cluster's ACL rules, in order |

use raftmq_storage::{StoreError, Table};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cluster::command::{Message, Millis, OutboundEntry, Stage, SubscriptionOptions};
use crate::cluster::types::NodeId;

pub(crate) const BROKER: Table = Table::new(1);
pub(crate) const SESSIONS: Table = Table::new(2);
pub(crate) const WILLS: Table = Table::new(3);
pub(crate) const SUBSCRIPTIONS: Table = Table::new(4);
pub(crate) const QUEUES: Table = Table::new(5);
pub(crate) const QUEUED: Table = Table::new(6);
pub(crate) const IN_FLIGHT: Table = Table::new(7);
pub(crate) const INBOUND: Table = Table::new(8);
pub(crate) const MESSAGES: Table = Table::new(9);
pub(crate) const MESSAGE_REFS: Table = Table::new(10);
pub(crate) const HOLDERS: Table = Table::new(11);
pub(crate) const RETAINED: Table = Table::new(12);
pub(crate) const SESSION_EXPIRY: Table = Table::new(13);
pub(crate) const WILL_DUE: Table = Table::new(14);
pub(crate) const MESSAGE_EXPIRY: Table = Table::new(15);
pub(crate) const OWNERS: Table = Table::new(16);
pub(crate) const SHARE_CURSORS: Table = Table::new(17);
pub(crate) const USERS: Table = Table::new(18);
pub(crate) const ACL: Table = Table::new(19);

/// The key of the rule list in `ACL`.
pub(crate) const ACL_KEY: &[u8] = b"rules";

/// A user: an argon2id PHC string, or an imported Mosquitto hash until the user's next
/// login upgrades it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub hash: String,
}

/// The key of the [`BrokerMeta`] record in `BROKER`.
pub(crate) const META_KEY: &[u8] = b"meta";
/// The key of the retained message count in `BROKER` (beside the meta record, whose
/// encoding it leaves as it was).
pub(crate) const RETAINED_COUNT_KEY: &[u8] = b"retained";

/// State that is not any one session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BrokerMeta {
    /// The state's clock: moved only by `Tick`, by a bounded step, never backwards.
    /// 0 until the first tick.
    pub clock: Millis,
    /// The epoch the next `Connect` gets. Epochs are unique across all sessions and all
    /// time, so a connection of a session that ended never matches a later session.
    pub next_epoch: u64,
    pub next_message_id: u64,
    pub sessions: u64,
}

/// One session (DESIGN §2). Its will, subscriptions and queue live in their own tables,
/// so that the record rewritten on every connect stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The protocol level of the last connection: 4 or 5.
    pub protocol: u8,
    /// The epoch of the last connection; commands must carry it.
    pub epoch: u64,
    /// The node holding the connection; `None` while the session is offline.
    pub owner: Option<NodeId>,
    /// Seconds the session outlives its connection; 0 = transient, `u32::MAX` = never ends.
    pub session_expiry: u32,
    /// When the offline session ends; `None` while online or if it never expires.
    pub expires_at: Option<Millis>,
    /// When the pending delayed will is published; `None` if there is none.
    pub will_due: Option<Millis>,
    /// The client's in-flight window.
    pub receive_maximum: u16,
    /// Entries that may wait beyond the in-flight window.
    pub max_queue: u32,
    /// Payload bytes that may wait beyond the in-flight window (0: no limit).
    pub max_queue_bytes: u64,
}

impl SessionRecord {
    /// A transient session's outbound messages are kept by its owner node, not queued in
    /// the state (DESIGN §4); it ends with its connection.
    pub fn is_transient(&self) -> bool {
        self.session_expiry == 0
    }
}

/// One subscription of a session: its options and the subscription identifier of the
/// SUBSCRIBE that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
}

/// The counters of one session's outbound queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// The sequence number of the next entry.
    pub next_seq: u64,
    /// Where the search for a free packet id starts: ids cycle through 1..=65535.
    pub next_packet_id: u16,
    /// Entries in `IN_FLIGHT`.
    pub in_flight: u32,
    /// Entries in `QUEUED`.
    pub queued: u32,
    /// Their payload bytes.
    pub queued_bytes: u64,
    /// Entries dropped because the queue was full (the oldest queued one each time).
    pub dropped: u64,
    /// Queued entries removed because their message expired.
    pub expired: u64,
}

impl Default for QueueRecord {
    fn default() -> Self {
        QueueRecord {
            next_seq: 0,
            next_packet_id: 1,
            in_flight: 0,
            queued: 0,
            queued_bytes: 0,
            dropped: 0,
            expired: 0,
        }
    }
}

/// A shared subscription a queue entry was delivered through: if its member leaves, the
/// entry goes to another member of the same group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShareRef {
    pub group: String,
    pub filter: String,
}

impl ShareRef {
    /// The filter text the member subscribed with.
    pub fn subscription_text(&self) -> String {
        format!("$share/{}/{}", self.group, self.filter)
    }
}

/// Where an entry is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryStage {
    /// Waiting for room in the in-flight window.
    Queued,
    /// In flight under `packet_id`.
    InFlight { packet_id: u16, stage: Stage },
}

/// One message for one session, stored once per session and referring to the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub seq: u64,
    /// `None` once a QoS 2 entry is PUBREC'd: the payload is no longer needed.
    pub message_id: Option<u64>,
    /// Copied from the message so that expiry checks need not read it.
    pub expires_at: Option<Millis>,
    /// Whether a delivery of this entry went to a connection: a resend after a reconnect
    /// sets DUP only then (MQTT §3.3.1.1).
    pub sent: bool,
    /// The QoS it is delivered at: min(message, subscription).
    pub qos: u8,
    /// The RETAIN flag as delivered.
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    pub share: Option<ShareRef>,
    pub stage: EntryStage,
    /// The message's payload size, counted in [`QueueRecord::queued_bytes`] while waiting.
    pub bytes: u32,
}

impl QueueEntry {
    /// The entry as the owner node sends it, if it is in flight.
    pub fn outbound(&self) -> Option<OutboundEntry> {
        let EntryStage::InFlight { packet_id, stage } = self.stage else {
            return None;
        };
        Some(OutboundEntry {
            seq: self.seq,
            packet_id,
            stage,
            dup: self.sent,
            qos: self.qos,
            retain: self.retain,
            subscription_ids: self.subscription_ids.clone(),
            message_id: self.message_id,
        })
    }
}

/// A message as stored once for every queue holding it (and the retained store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message: Message,
    /// Absolute expiry on the state's clock.
    pub expires_at: Option<Millis>,
}

/// How many queue entries (and the retained store) refer to a message; at 0 it is
/// deleted. Kept apart from the message so that counting never rewrites the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRefs {
    pub count: u32,
    pub expires_at: Option<Millis>,
}

/// The state disagrees with itself: a bug or a damaged store. Reported to the store as a
/// decode error, which stops the node rather than apply commands to a broken state.
#[derive(Debug, Error)]
pub enum CorruptState {
    #[error("key {key:?} of table {table:?} is malformed")]
    Key { table: Table, key: Vec<u8> },
    #[error("stored subscription {filter:?} of {client_id:?} is not a valid filter")]
    Filter { client_id: String, filter: String },
    #[error("message {0} is referred to but not stored")]
    MissingMessage(u64),
    #[error("no free packet id for {client_id:?} with {in_flight} in flight")]
    NoFreePacketId { client_id: String, in_flight: u32 },
}

impl From<CorruptState> for StoreError {
    fn from(corrupt: CorruptState) -> Self {
        StoreError::Corrupt(corrupt.to_string())
    }
}

/// Records are stored as the storage crate stores its own (a record that does not decode
/// is a `StoreError`, never a panic).
pub(crate) use raftmq_storage::encoding::{decode, encode};

/// A client id as it starts keys: 4-byte big-endian length, then the bytes. MQTT client ids
/// are at most 65,535 bytes, so the length always fits.
pub(crate) fn client_key(client_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + client_id.len() + 8);
    push_client(&mut key, client_id);
    key
}

fn push_client(key: &mut Vec<u8>, client_id: &str) {
    let len = u32::try_from(client_id.len()).unwrap_or(u32::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(client_id.as_bytes());
}

/// `client ++ n` for a sequence number.
pub(crate) fn client_seq_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = client_key(client_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `client ++ packet id`.
pub(crate) fn client_packet_key(client_id: &str, packet_id: u16) -> Vec<u8> {
    let mut key = client_key(client_id);
    key.extend_from_slice(&packet_id.to_be_bytes());
    key
}

/// `client ++ filter text`.
pub(crate) fn subscription_key(client_id: &str, filter: &str) -> Vec<u8> {
    let mut key = client_key(client_id);
    key.extend_from_slice(filter.as_bytes());
    key
}

/// `n ++ client`: a time index entry, or a node's ownership entry.
pub(crate) fn u64_client_key(n: u64, client_id: &str) -> Vec<u8> {
    let mut key = n.to_be_bytes().to_vec();
    push_client(&mut key, client_id);
    key
}

/// `message id ++ client ++ seq`.
pub(crate) fn holder_key(message_id: u64, client_id: &str, seq: u64) -> Vec<u8> {
    let mut key = message_id.to_be_bytes().to_vec();
    push_client(&mut key, client_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `time ++ message id`.
pub(crate) fn time_id_key(time: Millis, id: u64) -> Vec<u8> {
    let mut key = time.to_be_bytes().to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// `group length ++ group ++ filter`.
pub(crate) fn cursor_key(share: &ShareRef) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + share.group.len() + share.filter.len());
    push_client(&mut key, &share.group);
    key.extend_from_slice(share.filter.as_bytes());
    key
}

/// Reads keys back: each step takes the next field off the front.
pub(crate) struct KeyReader<'k> {
    table: Table,
    whole: &'k [u8],
    rest: &'k [u8],
}

impl<'k> KeyReader<'k> {
    pub(crate) fn new(table: Table, key: &'k [u8]) -> Self {
        KeyReader {
            table,
            whole: key,
            rest: key,
        }
    }

    fn corrupt(&self) -> CorruptState {
        CorruptState::Key {
            table: self.table,
            key: self.whole.to_vec(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'k [u8], CorruptState> {
        if self.rest.len() < n {
            return Err(self.corrupt());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CorruptState> {
        let bytes = self.take(8)?;
        let array: [u8; 8] = bytes.try_into().map_err(|_| self.corrupt())?;
        Ok(u64::from_be_bytes(array))
    }

    /// A length-prefixed string (a client id or a share group).
    pub(crate) fn client(&mut self) -> Result<String, CorruptState> {
        let len = self.take(4)?;
        let len: [u8; 4] = len.try_into().map_err(|_| self.corrupt())?;
        let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| self.corrupt())?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupt())
    }

    /// Everything left, as text (a filter or a topic).
    pub(crate) fn text(&mut self) -> Result<String, CorruptState> {
        let rest = std::mem::take(&mut self.rest);
        String::from_utf8(rest.to_vec()).map_err(|_| self.corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back() {
        let key = u64_client_key(42, "client/1");
        let mut reader = KeyReader::new(SESSION_EXPIRY, &key);
        assert_eq!(reader.u64().unwrap(), 42);
        assert_eq!(reader.client().unwrap(), "client/1");

        let key = holder_key(7, "c", 9);
        let mut reader = KeyReader::new(HOLDERS, &key);
        assert_eq!(reader.u64().unwrap(), 7);
        assert_eq!(reader.client().unwrap(), "c");
        assert_eq!(reader.u64().unwrap(), 9);

        let key = subscription_key("c", "$share/g/a/#");
        let mut reader = KeyReader::new(SUBSCRIPTIONS, &key);
        assert_eq!(reader.client().unwrap(), "c");
        assert_eq!(reader.text().unwrap(), "$share/g/a/#");
    }

    #[test]
    fn one_clients_keys_are_not_a_prefix_of_anothers() {
        // Without the length, "a" would be a prefix of "ab"'s keys.
        let a = client_key("a");
        let ab = subscription_key("ab", "x");
        assert!(!ab.starts_with(&a));
    }

    #[test]
    fn time_keys_sort_numerically() {
        assert!(u64_client_key(255, "z") < u64_client_key(256, "a"));
        assert!(time_id_key(1, u64::MAX) < time_id_key(2, 0));
    }

    #[test]
    fn a_short_key_is_corrupt_not_a_panic() {
        let mut reader = KeyReader::new(SESSIONS, &[0, 0, 0, 9, b'a']);
        assert!(matches!(reader.client(), Err(CorruptState::Key { .. })));
        let mut reader = KeyReader::new(SESSIONS, &[1, 2]);
        assert!(reader.u64().is_err());
    }
}
