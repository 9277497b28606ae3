//! The subscription index: every session's subscriptions in a [`TopicTrie`], and the
//! members of each shared group, derived from the `SUBSCRIPTIONS` table. Rebuilt from the
//! state at start and after a snapshot install; updated by `apply` as it goes, so later
//! commands of the same batch route through it.
//!
//! Shared behind a lock with the rest of the node ([`SubscriptionIndex`]), which routes
//! QoS 0 publishes with it without going through the log (DESIGN §4).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raftmq_storage::{StateReader, StoreError};

use super::tables::{CorruptState, KeyReader, SUBSCRIPTIONS, ShareRef, SubscriptionRecord, decode};
use crate::mqtt::topic::{SubscriptionFilter, parse_subscription_filter};
use crate::router::{SharedMatch, TopicTrie};

/// The members of each shared group: (group, filter) → member → its subscription.
type Groups = BTreeMap<ShareRef, BTreeMap<String, SubscriptionRecord>>;

/// The index itself, as `apply` holds it for one log entry.
#[derive(Default)]
pub(crate) struct RouteTable {
    pub(crate) trie: TopicTrie<String, SubscriptionRecord>,
    pub(crate) groups: Groups,
}

impl RouteTable {
    pub(crate) fn insert(
        &mut self,
        filter: &SubscriptionFilter<'_>,
        client_id: &str,
        record: SubscriptionRecord,
    ) -> Option<SubscriptionRecord> {
        if let Some(share) = share_ref(filter) {
            self.groups
                .entry(share)
                .or_default()
                .insert(client_id.to_owned(), record);
        }
        self.trie.insert(filter, client_id.to_owned(), record)
    }

    pub(crate) fn remove(
        &mut self,
        filter: &SubscriptionFilter<'_>,
        client_id: &str,
    ) -> Option<SubscriptionRecord> {
        if let Some(share) = share_ref(filter)
            && let Some(members) = self.groups.get_mut(&share)
        {
            members.remove(client_id);
            if members.is_empty() {
                self.groups.remove(&share);
            }
        }
        self.trie.remove(filter, &client_id.to_owned())
    }

    /// Rebuilds the index from the stored subscriptions.
    pub(crate) fn load(state: &StateReader) -> Result<RouteTable, StoreError> {
        let mut table = RouteTable::default();
        for (key, value) in state.scan_prefix(SUBSCRIPTIONS, b"")? {
            let mut reader = KeyReader::new(SUBSCRIPTIONS, &key);
            let client_id = reader.client()?;
            let text = reader.text()?;
            let record: SubscriptionRecord = decode(&value)?;
            let filter = parse_subscription_filter(&text).map_err(|_| CorruptState::Filter {
                client_id: client_id.clone(),
                filter: text.clone(),
            })?;
            table.insert(&filter, &client_id, record);
        }
        Ok(table)
    }

    /// The subscriptions `topic` reaches, with one session's overlapping ordinary
    /// subscriptions merged into one (MQTT 5.0 §3.3.4), skipping `publisher`'s own
    /// no-local subscriptions.
    pub(crate) fn route<'a>(&'a self, topic: &str, publisher: Option<&str>) -> Routes<'a> {
        let matches = self.trie.matches(topic);
        let mut subscribers: BTreeMap<&'a str, Merged> = BTreeMap::new();
        for found in matches.subscribers {
            let record = found.value;
            if record.options.no_local && publisher == Some(found.subscriber.as_str()) {
                continue;
            }
            let merged = subscribers
                .entry(found.subscriber.as_str())
                .or_insert(Merged {
                    qos: 0,
                    retain_as_published: false,
                    subscription_ids: Vec::new(),
                });
            merged.qos = merged.qos.max(record.options.qos);
            merged.retain_as_published |= record.options.retain_as_published;
            if let Some(id) = record.subscription_id
                && !merged.subscription_ids.contains(&id)
            {
                merged.subscription_ids.push(id);
            }
        }
        for merged in subscribers.values_mut() {
            merged.subscription_ids.sort_unstable();
        }
        Routes {
            subscribers,
            shared: matches.shared,
        }
    }
}

/// The group of a shared filter.
pub(crate) fn share_ref(filter: &SubscriptionFilter<'_>) -> Option<ShareRef> {
    filter.share_group().map(|group| ShareRef {
        group: group.to_owned(),
        filter: filter.filter().to_owned(),
    })
}

/// What one topic reaches: ordinary subscribers merged per session, and each shared
/// group with all its members (one of whom gets the message).
pub(crate) struct Routes<'a> {
    pub(crate) subscribers: BTreeMap<&'a str, Merged>,
    pub(crate) shared: Vec<SharedMatch<'a, String, SubscriptionRecord>>,
}

/// One session's matching ordinary subscriptions, merged: the highest QoS, the RETAIN flag
/// kept if any of them keeps it, and every subscription identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub qos: u8,
    pub retain_as_published: bool,
    pub subscription_ids: Vec<u32>,
}

/// The node's handle on the subscription index, for routing QoS 0 publishes straight to
/// the owners of matching online sessions (DESIGN §4). Cheap to clone.
#[derive(Clone, Default)]
pub struct SubscriptionIndex {
    table: Arc<RwLock<RouteTable>>,
}

/// Who a topic reaches, as owned values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribers {
    /// Client id → its merged ordinary subscriptions.
    pub ordinary: BTreeMap<String, Merged>,
    /// Each shared group that matched, with its members: the caller picks one.
    pub shared: Vec<(ShareRef, Vec<(String, SubscriptionRecord)>)>,
}

impl SubscriptionIndex {
    /// The subscriptions `topic` reaches, as `apply` would route a publish from
    /// `publisher`.
    pub fn subscribers(&self, topic: &str, publisher: Option<&str>) -> Subscribers {
        let table = self.read();
        let routes = table.route(topic, publisher);
        Subscribers {
            ordinary: routes
                .subscribers
                .into_iter()
                .map(|(client, merged)| (client.to_owned(), merged))
                .collect(),
            shared: routes
                .shared
                .iter()
                .map(|group| {
                    let share = ShareRef {
                        group: group.group.to_owned(),
                        filter: group.filter.to_owned(),
                    };
                    let members = group
                        .members
                        .iter()
                        .map(|(client, record)| (client.clone(), *record))
                        .collect();
                    (share, members)
                })
                .collect(),
        }
    }

    /// The number of subscriptions, each shared member counted once.
    pub fn len(&self) -> usize {
        self.read().trie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A poisoned lock means a panic while applying; the node stops on that error anyway,
    // and the index is rebuilt from the state when it starts again.
    fn read(&self) -> RwLockReadGuard<'_, RouteTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, RouteTable> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::command::SubscriptionOptions;

    fn record(qos: u8, no_local: bool, rap: bool, id: Option<u32>) -> SubscriptionRecord {
        SubscriptionRecord {
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                ..SubscriptionOptions::default()
            },
            subscription_id: id,
        }
    }

    fn subscribe(table: &mut RouteTable, filter: &str, client: &str, record: SubscriptionRecord) {
        let parsed = parse_subscription_filter(filter).expect("valid test filter");
        table.insert(&parsed, client, record);
    }

    #[test]
    fn overlapping_subscriptions_merge_into_one() {
        let mut table = RouteTable::default();
        subscribe(&mut table, "a/+", "c", record(1, false, false, Some(2)));
        subscribe(&mut table, "a/#", "c", record(2, false, true, Some(1)));
        subscribe(&mut table, "a/b", "d", record(0, false, false, None));
        let routes = table.route("a/b", None);
        assert_eq!(
            routes.subscribers.get("c"),
            Some(&Merged {
                qos: 2,
                retain_as_published: true,
                subscription_ids: vec![1, 2],
            })
        );
        assert_eq!(routes.subscribers.len(), 2);
    }

    #[test]
    fn no_local_skips_only_the_publisher() {
        let mut table = RouteTable::default();
        subscribe(&mut table, "a", "c", record(1, true, false, None));
        subscribe(&mut table, "a", "d", record(1, true, false, None));
        let routes = table.route("a", Some("c"));
        assert_eq!(
            routes.subscribers.keys().copied().collect::<Vec<_>>(),
            ["d"]
        );
    }

    #[test]
    fn groups_follow_inserts_and_removals() {
        let mut table = RouteTable::default();
        subscribe(&mut table, "$share/g/a", "c", record(1, false, false, None));
        subscribe(&mut table, "$share/g/a", "d", record(1, false, false, None));
        let share = ShareRef {
            group: "g".into(),
            filter: "a".into(),
        };
        assert_eq!(table.groups[&share].len(), 2);
        let parsed = parse_subscription_filter("$share/g/a").expect("valid");
        table.remove(&parsed, "c");
        table.remove(&parsed, "d");
        assert!(table.groups.is_empty());
        assert!(table.trie.is_empty());
    }
}
