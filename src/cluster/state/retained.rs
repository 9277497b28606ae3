//! Stored messages and the retained store. A message is stored once, when the first queue
//! entry (or the retained store) needs it, and counted: every entry holding it and the
//! retained store each hold one reference, and the last to let go deletes it.
//!
//! Retained messages are `RETAINED[topic] = message id`; they keep the message's expiry,
//! and an expired one is neither delivered nor kept.

use std::sync::Arc;

use raftmq_storage::StoreError;
use serde::Serialize;

use super::Apply;
use super::publish::Recipient;
use super::tables::{
    BROKER, CorruptState, MESSAGE_EXPIRY, MESSAGE_REFS, MESSAGES, MessageRefs, RETAINED,
    RETAINED_COUNT_KEY, StoredMessage, SubscriptionRecord, decode, time_id_key,
};
use crate::cluster::command::{Delivery, Message, Millis};
use crate::mqtt::topic::matches;

/// A message being delivered by one command: stored under an id only once something in
/// the state refers to it.
pub(super) struct Outgoing {
    pub(super) message: Arc<Message>,
    pub(super) expires_at: Option<Millis>,
    id: Option<u64>,
}

impl Outgoing {
    pub(super) fn new(message: Arc<Message>, expires_at: Option<Millis>) -> Self {
        Outgoing {
            message,
            expires_at,
            id: None,
        }
    }

    /// A message already stored under `id`.
    pub(super) fn stored(message: Arc<Message>, expires_at: Option<Millis>, id: u64) -> Self {
        Outgoing {
            message,
            expires_at,
            id: Some(id),
        }
    }
}

/// A [`StoredMessage`] by reference: encodes to the same bytes without copying the message.
#[derive(Serialize)]
struct StoredMessageRef<'m> {
    message: &'m Message,
    expires_at: Option<Millis>,
}

impl Apply<'_, '_> {
    /// The id of the outgoing message, storing it (with no reference yet) on first use.
    pub(super) fn message_id(&mut self, out: &mut Outgoing) -> Result<u64, StoreError> {
        if let Some(id) = out.id {
            return Ok(id);
        }
        let id = self.next_message_id();
        let key = id.to_be_bytes();
        self.put(
            MESSAGES,
            &key,
            &StoredMessageRef {
                message: &out.message,
                expires_at: out.expires_at,
            },
        )?;
        self.put(
            MESSAGE_REFS,
            &key,
            &MessageRefs {
                count: 0,
                expires_at: out.expires_at,
            },
        )?;
        if let Some(at) = out.expires_at {
            self.mark(MESSAGE_EXPIRY, &time_id_key(at, id));
        }
        out.id = Some(id);
        Ok(id)
    }

    fn refs(&self, id: u64) -> Result<MessageRefs, StoreError> {
        self.get(MESSAGE_REFS, &id.to_be_bytes())?
            .ok_or_else(|| CorruptState::MissingMessage(id).into())
    }

    pub(super) fn add_ref(&mut self, id: u64) -> Result<(), StoreError> {
        let mut refs = self.refs(id)?;
        refs.count = refs.count.saturating_add(1);
        self.put(MESSAGE_REFS, &id.to_be_bytes(), &refs)
    }

    /// Lets go of one reference without deleting the message at zero: for a reference
    /// taken and given back within one routing, which `settle` then cleans up.
    pub(super) fn unref(&mut self, id: u64) -> Result<(), StoreError> {
        let mut refs = self.refs(id)?;
        refs.count = refs.count.saturating_sub(1);
        self.put(MESSAGE_REFS, &id.to_be_bytes(), &refs)
    }

    /// Lets go of one reference; the last one deletes the message.
    pub(super) fn drop_ref(&mut self, id: u64) -> Result<(), StoreError> {
        let mut refs = self.refs(id)?;
        refs.count = refs.count.saturating_sub(1);
        if refs.count == 0 {
            self.delete_message(id, refs.expires_at);
            Ok(())
        } else {
            self.put(MESSAGE_REFS, &id.to_be_bytes(), &refs)
        }
    }

    /// Deletes the outgoing message again if routing left nothing referring to it.
    pub(super) fn settle(&mut self, out: &Outgoing) -> Result<(), StoreError> {
        if let Some(id) = out.id {
            let refs = self.refs(id)?;
            if refs.count == 0 {
                self.delete_message(id, refs.expires_at);
            }
        }
        Ok(())
    }

    fn delete_message(&mut self, id: u64, expires_at: Option<Millis>) {
        let key = id.to_be_bytes();
        self.remove(MESSAGES, &key);
        self.remove(MESSAGE_REFS, &key);
        if let Some(at) = expires_at {
            self.remove(MESSAGE_EXPIRY, &time_id_key(at, id));
        }
    }

    /// Makes the outgoing message the retained one of its topic; an empty payload deletes
    /// the retained message instead (MQTT 5.0 §3.3.1.3).
    pub(super) fn retain(&mut self, out: &mut Outgoing) -> Result<(), StoreError> {
        let topic = out.message.topic.clone();
        let old: Option<u64> = self.get(RETAINED, topic.as_bytes())?;
        if out.message.payload.is_empty() {
            self.remove(RETAINED, topic.as_bytes());
            if old.is_some() {
                self.count_retained(-1)?;
            }
        } else {
            if old.is_none() {
                self.count_retained(1)?;
            }
            let id = self.message_id(out)?;
            self.add_ref(id)?;
            self.put(RETAINED, topic.as_bytes(), &id)?;
        }
        match old {
            Some(old) => self.drop_ref(old),
            None => Ok(()),
        }
    }

    /// Removes the retained message of `topic` if it is message `id`; returns whether it was.
    pub(super) fn unretain(&mut self, topic: &str, id: u64) -> Result<bool, StoreError> {
        let current: Option<u64> = self.get(RETAINED, topic.as_bytes())?;
        if current != Some(id) {
            return Ok(false);
        }
        self.remove(RETAINED, topic.as_bytes());
        self.count_retained(-1)?;
        self.drop_ref(id)?;
        Ok(true)
    }

    /// Moves the retained message count by one.
    fn count_retained(&mut self, step: i8) -> Result<(), StoreError> {
        let count: u64 = self.get(BROKER, RETAINED_COUNT_KEY)?.unwrap_or(0);
        let count = if step > 0 {
            count + 1
        } else {
            count.saturating_sub(1)
        };
        self.put(BROKER, RETAINED_COUNT_KEY, &count)
    }

    /// Sends the retained messages matching a new subscription's filter to its session,
    /// with the RETAIN flag set (MQTT 5.0 §3.3.1.3), removing expired ones on the way.
    pub(super) fn send_retained(
        &mut self,
        client_id: &str,
        filter: &str,
        record: SubscriptionRecord,
        now: Millis,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), StoreError> {
        for (topic, id) in self.retained_matching(filter)? {
            let stored: Option<StoredMessage> = self.get(MESSAGES, &id.to_be_bytes())?;
            let Some(stored) = stored else {
                return Err(CorruptState::MissingMessage(id).into());
            };
            if stored.expires_at.is_some_and(|at| at <= now) {
                self.unretain(&topic, id)?;
                continue;
            }
            let recipient = Recipient {
                client_id: client_id.to_owned(),
                qos: stored.message.qos.min(record.options.qos),
                retain: true,
                subscription_ids: record.subscription_id.into_iter().collect(),
                share: None,
            };
            let mut out = Outgoing::stored(Arc::new(stored.message), stored.expires_at, id);
            self.deliver(&mut out, recipient, deliveries)?;
        }
        Ok(())
    }

    /// (topic, message id) of every retained message `filter` matches, in topic order.
    /// Only the topics sharing the filter's literal start are read.
    fn retained_matching(&self, filter: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let Some(start) = literal_start(filter) else {
            let id: Option<u64> = self.get(RETAINED, filter.as_bytes())?;
            return Ok(id.map(|id| (filter.to_owned(), id)).into_iter().collect());
        };
        let mut found = Vec::new();
        for (key, raw) in self.tx.scan_prefix(RETAINED, start.as_bytes())? {
            let Ok(topic) = String::from_utf8(key) else {
                continue;
            };
            if matches(filter, &topic) {
                found.push((topic, decode(&raw)?));
            }
        }
        Ok(found)
    }
}

/// What every topic a wildcard filter matches starts with: the filter up to its first
/// wildcard, less a trailing separator (`a/#` also matches `a` itself). `None` for a filter
/// without wildcards, which matches only itself.
fn literal_start(filter: &str) -> Option<&str> {
    let start = &filter[..filter.find(['+', '#'])?];
    Some(start.strip_suffix('/').unwrap_or(start))
}

#[cfg(test)]
mod tests {
    use super::literal_start;
    use crate::mqtt::topic::matches;

    #[test]
    fn every_matching_topic_starts_with_the_literal_start() {
        let topics = ["a", "a/b", "a/b/c", "ab", "b/a", "$SYS/x", "/a", "", "/"];
        for filter in [
            "a/#", "a/+", "a/+/c", "+/a", "#", "/+", "$SYS/#", "a/b/#", "+",
        ] {
            let start = literal_start(filter).expect("has a wildcard");
            for topic in topics {
                if matches(filter, topic) {
                    assert!(topic.starts_with(start), "{filter} {topic}");
                }
            }
        }
        assert_eq!(literal_start("a/b/#"), Some("a/b"));
        assert_eq!(literal_start("a/b"), None);
    }
}
