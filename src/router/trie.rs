//! The subscription trie: subscriptions stored by the levels of their filters, so that a topic
//! is matched by walking its own levels rather than by testing every filter.

use std::collections::BTreeMap;
use std::fmt;

use super::node::{Node, Subscriptions};
use crate::mqtt::topic::SubscriptionFilter;

/// Every subscription of every session, indexed for matching topics.
///
/// `K` identifies a subscriber (a client id or session key) and `V` holds the options of one
/// subscription. A subscriber has at most one subscription per filter and share group:
/// inserting again replaces it, as a repeated SUBSCRIBE does.
pub struct TopicTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

/// One thing a published topic reaches.
#[derive(Debug)]
pub enum Match<'a, K, V> {
    /// An ordinary subscription: its subscriber gets the message.
    Subscriber(SubscriberMatch<'a, K, V>),
    /// A shared subscription: one of its members gets the message.
    Shared(SharedMatch<'a, K, V>),
}

/// An ordinary subscription that matched. A subscriber with several overlapping filters
/// matches once per filter; merging those (MQTT 5.0 §3.3.4) is the broker's choice.
#[derive(Debug)]
pub struct SubscriberMatch<'a, K, V> {
    pub filter: &'a str,
    pub subscriber: &'a K,
    pub value: &'a V,
}

/// A shared subscription that matched: one group on one filter. The same group name on
/// another filter is another shared subscription and matches separately.
#[derive(Debug)]
pub struct SharedMatch<'a, K, V> {
    pub group: &'a str,
    pub filter: &'a str,
    /// Never empty, and ordered by subscriber, so a pick such as "the first member after the
    /// one chosen last time" (`members.range(..)`) is the same on every node.
    pub members: &'a BTreeMap<K, V>,
}

// Written out because derive would require `K: Copy` and `V: Copy` for what are only
// references.
impl<K, V> Clone for Match<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Match<'_, K, V> {}
impl<K, V> Clone for SubscriberMatch<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for SubscriberMatch<'_, K, V> {}
impl<K, V> Clone for SharedMatch<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for SharedMatch<'_, K, V> {}

/// All matches of one topic, collected by [`TopicTrie::matches`].
#[derive(Debug)]
pub struct Matches<'a, K, V> {
    pub subscribers: Vec<SubscriberMatch<'a, K, V>>,
    pub shared: Vec<SharedMatch<'a, K, V>>,
}

impl<K: Ord, V> TopicTrie<K, V> {
    pub fn new() -> Self {
        TopicTrie {
            root: Node::default(),
            len: 0,
        }
    }

    /// The number of subscriptions, ordinary and shared, counting each member of a group.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of trie nodes, the root included: 1 for an empty trie. It shows how much
    /// structure the subscriptions need, and that removals leave nothing behind.
    pub fn node_count(&self) -> usize {
        let mut count = 0;
        let mut unvisited = vec![&self.root];
        while let Some(node) = unvisited.pop() {
            count += 1;
            unvisited.extend(node.children.values());
            unvisited.extend(node.plus.as_deref());
        }
        count
    }

    /// Subscribes `subscriber` to `filter` (in its share group, if it has one) and returns
    /// the options of the subscription this one replaces.
    pub fn insert(
        &mut self,
        filter: &SubscriptionFilter<'_>,
        subscriber: K,
        value: V,
    ) -> Option<V> {
        let slot = self.root.slot_or_insert(filter.filter());
        let subscriptions =
            slot.get_or_insert_with(|| Box::new(Subscriptions::new(filter.filter())));
        let members = match filter.share_group() {
            None => &mut subscriptions.ordinary,
            Some(group) => subscriptions.shared.entry(group.into()).or_default(),
        };
        let previous = members.insert(subscriber, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Unsubscribes `subscriber` from `filter` (in its share group, if it has one) and
    /// returns the options it had.
    pub fn remove(&mut self, filter: &SubscriptionFilter<'_>, subscriber: &K) -> Option<V> {
        let slot = self.root.slot(filter.filter())?;
        let subscriptions = slot.as_deref_mut()?;
        let removed = subscriptions.remove(filter.share_group(), subscriber)?;
        if subscriptions.is_empty() {
            *slot = None;
            self.root.prune(filter.filter());
        }
        self.len -= 1;
        Some(removed)
    }

    /// Calls `f` with every subscription `topic` matches, without allocating unless the
    /// topic branches on `+` at more levels than a small inline stack holds.
    ///
    /// The order depends only on which subscriptions exist, not on the order they were made
    /// in. A topic starting with `$` is not matched by filters starting with `+` or `#`.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(Match<'a, K, V>)) {
        let reserved = topic.starts_with('$');
        let mut branches = Branches::new();
        let mut next = Some((&self.root, Some(topic)));
        let mut at_root = true;
        while let Some((node, rest)) = next.take().or_else(|| branches.pop()) {
            let wildcards = !(at_root && reserved);
            at_root = false;
            let Some(rest) = rest else {
                // Every level is consumed: filters ending here match, and so does `a/#` for
                // topic `a`, since `#` also matches its parent level.
                report(node.exact.as_deref(), &mut f);
                report(node.multi.as_deref(), &mut f);
                continue;
            };
            let (level, after) = match rest.split_once('/') {
                Some((level, after)) => (level, Some(after)),
                None => (rest, None),
            };
            if wildcards {
                report(node.multi.as_deref(), &mut f);
                if let Some(plus) = node.plus.as_deref() {
                    branches.push((plus, after));
                }
            }
            next = node.children.get(level).map(|child| (child, after));
        }
    }

    /// Every subscription `topic` matches, ordinary and shared apart, in the order of
    /// [`for_each_match`](Self::for_each_match).
    pub fn matches(&self, topic: &str) -> Matches<'_, K, V> {
        let mut matches = Matches {
            subscribers: Vec::new(),
            shared: Vec::new(),
        };
        self.for_each_match(topic, |found| match found {
            Match::Subscriber(subscriber) => matches.subscribers.push(subscriber),
            Match::Shared(group) => matches.shared.push(group),
        });
        matches
    }
}

fn report<'a, K, V>(
    subscriptions: Option<&'a Subscriptions<K, V>>,
    f: &mut impl FnMut(Match<'a, K, V>),
) {
    let Some(subscriptions) = subscriptions else {
        return;
    };
    let filter = &*subscriptions.filter;
    for (subscriber, value) in &subscriptions.ordinary {
        f(Match::Subscriber(SubscriberMatch {
            filter,
            subscriber,
            value,
        }));
    }
    for (group, members) in &subscriptions.shared {
        f(Match::Shared(SharedMatch {
            group,
            filter,
            members,
        }));
    }
}

impl<K: Ord, V> Default for TopicTrie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for TopicTrie<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicTrie")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The `+` branches still to walk while matching one topic. The first few live on the stack
/// so the usual topic is matched without allocating; the rest spill to the heap, since a
/// topic may branch at thousands of levels and recursion would overflow the stack.
struct Branches<T> {
    inline: [Option<T>; INLINE_BRANCHES],
    len: usize,
    spilled: Vec<T>,
}

const INLINE_BRANCHES: usize = 16;

impl<T: Copy> Branches<T> {
    fn new() -> Self {
        Branches {
            inline: [None; INLINE_BRANCHES],
            len: 0,
            spilled: Vec::new(),
        }
    }

    fn push(&mut self, branch: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(branch);
                self.len += 1;
            }
            None => self.spilled.push(branch),
        }
    }

    fn pop(&mut self) -> Option<T> {
        if let Some(branch) = self.spilled.pop() {
            return Some(branch);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get_mut(self.len)?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::topic::{matches, parse_subscription_filter};

    type Trie = TopicTrie<&'static str, u8>;
    /// A shared match as plain values: (group, filter, members).
    type SharedSeen = (String, String, Vec<(&'static str, u8)>);

    fn filter(s: &str) -> SubscriptionFilter<'_> {
        parse_subscription_filter(s).expect("test filters are valid")
    }

    /// (filter, subscriber, value) of the ordinary matches, sorted.
    fn subscribers(trie: &Trie, topic: &str) -> Vec<(String, &'static str, u8)> {
        let mut found: Vec<_> = trie
            .matches(topic)
            .subscribers
            .iter()
            .map(|m| (m.filter.to_owned(), *m.subscriber, *m.value))
            .collect();
        found.sort();
        found
    }

    /// The shared matches, sorted.
    fn shared(trie: &Trie, topic: &str) -> Vec<SharedSeen> {
        let mut found: Vec<_> = trie
            .matches(topic)
            .shared
            .iter()
            .map(|m| {
                let members = m.members.iter().map(|(k, v)| (*k, *v)).collect();
                (m.group.to_owned(), m.filter.to_owned(), members)
            })
            .collect();
        found.sort();
        found
    }

    /// Nothing empty is left anywhere: no node without an edge or a subscription below the
    /// root, no empty slot, no empty group.
    fn assert_pruned(trie: &Trie) {
        let mut unvisited = vec![(&trie.root, true)];
        while let Some((node, is_root)) = unvisited.pop() {
            for subscriptions in [&node.exact, &node.multi].into_iter().flatten() {
                assert!(
                    !subscriptions.is_empty(),
                    "empty slot {}",
                    subscriptions.filter
                );
                assert!(subscriptions.shared.values().all(|m| !m.is_empty()));
            }
            let holds = node.exact.is_some() || node.multi.is_some() || node.edges() > 0;
            assert!(is_root || holds, "empty node left behind");
            unvisited.extend(node.children.values().map(|child| (child, false)));
            unvisited.extend(node.plus.as_deref().map(|plus| (plus, false)));
        }
    }

    #[test]
    fn empty_trie() {
        let trie = Trie::default();
        assert!(trie.is_empty());
        assert_eq!(trie.len(), 0);
        assert_eq!(trie.node_count(), 1);
        assert!(subscribers(&trie, "a").is_empty());
        assert_eq!(format!("{trie:?}"), "TopicTrie { len: 0, .. }");
    }

    #[test]
    fn exact_filter_matches_only_its_topic() {
        let mut trie = Trie::new();
        trie.insert(&filter("sport/tennis"), "c1", 1);
        assert_eq!(
            subscribers(&trie, "sport/tennis"),
            [("sport/tennis".to_owned(), "c1", 1)]
        );
        for topic in [
            "sport",
            "sport/tennis/",
            "sport/tennis/x",
            "/sport/tennis",
            "x",
        ] {
            assert!(subscribers(&trie, topic).is_empty(), "{topic}");
        }
    }

    #[test]
    fn agrees_with_the_spec_examples() {
        let filters = [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "+/tennis/#",
            "sport/+",
            "sport/tennis/+",
            "+/+",
            "/+",
            "$SYS/#",
            "$SYS/monitor/+",
            "+/monitor/Clients",
            "sport/tennis/player1",
        ];
        let topics = [
            "sport",
            "sport/",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
            "/finance",
            "$SYS/monitor/Clients",
            "$SYS",
            "finance",
        ];
        let mut trie = Trie::new();
        for f in filters {
            trie.insert(&filter(f), "c", 0);
        }
        for topic in topics {
            let expected: Vec<_> = filters
                .iter()
                .filter(|f| matches(f, topic))
                .map(|f| (f.to_string(), "c", 0))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(subscribers(&trie, topic), expected, "{topic}");
        }
    }

    #[test]
    fn multi_level_wildcard_matches_the_parent_level() {
        let mut trie = Trie::new();
        trie.insert(&filter("sport/#"), "c", 0);
        assert_eq!(subscribers(&trie, "sport").len(), 1);
        assert_eq!(subscribers(&trie, "sport/").len(), 1);
        assert_eq!(subscribers(&trie, "sport/tennis/player1").len(), 1);
        assert!(subscribers(&trie, "sports").is_empty());
    }

    #[test]
    fn single_level_wildcard_matches_one_level_even_empty() {
        let mut trie = Trie::new();
        trie.insert(&filter("sport/+"), "c", 0);
        assert!(subscribers(&trie, "sport").is_empty());
        assert_eq!(subscribers(&trie, "sport/").len(), 1);
        assert_eq!(subscribers(&trie, "sport/tennis").len(), 1);
        assert!(subscribers(&trie, "sport/tennis/x").is_empty());
    }

    #[test]
    fn dollar_topics_skip_leading_wildcards() {
        let mut trie = Trie::new();
        for f in [
            "#",
            "+/monitor/Clients",
            "+/+/+",
            "$share/g/#",
            "$share/g/+/monitor/+",
        ] {
            trie.insert(&filter(f), "wild", 0);
        }
        for f in ["$SYS/#", "$SYS/monitor/+", "$share/h/$SYS/#"] {
            trie.insert(&filter(f), "sys", 1);
        }
        assert_eq!(
            subscribers(&trie, "$SYS/monitor/Clients"),
            [
                ("$SYS/#".to_owned(), "sys", 1),
                ("$SYS/monitor/+".to_owned(), "sys", 1),
            ]
        );
        assert_eq!(
            shared(&trie, "$SYS/monitor/Clients"),
            [("h".to_owned(), "$SYS/#".to_owned(), vec![("sys", 1)])]
        );
        // The rule is about the topic's first character only.
        assert_eq!(subscribers(&trie, "a/monitor/Clients").len(), 3);
        assert_eq!(shared(&trie, "a/monitor/Clients").len(), 2);
    }

    #[test]
    fn insert_replaces_and_returns_the_previous_options() {
        let mut trie = Trie::new();
        assert_eq!(trie.insert(&filter("a/+"), "c1", 1), None);
        assert_eq!(trie.insert(&filter("a/+"), "c1", 2), Some(1));
        assert_eq!(trie.insert(&filter("$share/g/a/+"), "c1", 3), None);
        assert_eq!(trie.insert(&filter("$share/g/a/+"), "c1", 4), Some(3));
        assert_eq!(trie.len(), 2);
        assert_eq!(subscribers(&trie, "a/b"), [("a/+".to_owned(), "c1", 2)]);
        assert_eq!(
            shared(&trie, "a/b"),
            [("g".to_owned(), "a/+".to_owned(), vec![("c1", 4)])]
        );
    }

    #[test]
    fn shared_groups_are_kept_apart() {
        let mut trie = Trie::new();
        trie.insert(&filter("$share/g/a/+"), "c1", 1);
        trie.insert(&filter("$share/g/a/+"), "c2", 2);
        trie.insert(&filter("$share/g/a/#"), "c3", 3);
        trie.insert(&filter("$share/h/a/+"), "c1", 4);
        trie.insert(&filter("a/+"), "c1", 5);
        assert_eq!(trie.len(), 5);
        assert_eq!(subscribers(&trie, "a/b"), [("a/+".to_owned(), "c1", 5)]);
        assert_eq!(
            shared(&trie, "a/b"),
            [
                ("g".to_owned(), "a/#".to_owned(), vec![("c3", 3)]),
                ("g".to_owned(), "a/+".to_owned(), vec![("c1", 1), ("c2", 2)]),
                ("h".to_owned(), "a/+".to_owned(), vec![("c1", 4)]),
            ]
        );
        assert_eq!(
            shared(&trie, "a"),
            [("g".to_owned(), "a/#".to_owned(), vec![("c3", 3)])]
        );
    }

    #[test]
    fn the_last_member_leaving_removes_the_group() {
        let mut trie = Trie::new();
        trie.insert(&filter("$share/g/a"), "c1", 1);
        trie.insert(&filter("$share/g/a"), "c2", 2);
        assert_eq!(trie.remove(&filter("$share/g/a"), &"c1"), Some(1));
        assert_eq!(
            shared(&trie, "a"),
            [("g".to_owned(), "a".to_owned(), vec![("c2", 2)])]
        );
        assert_eq!(trie.remove(&filter("$share/g/a"), &"c2"), Some(2));
        assert!(shared(&trie, "a").is_empty());
        assert_eq!(trie.node_count(), 1);
        assert_pruned(&trie);
    }

    #[test]
    fn removing_what_is_not_there_changes_nothing() {
        let mut trie = Trie::new();
        trie.insert(&filter("a/b"), "c1", 1);
        trie.insert(&filter("$share/g/a/#"), "c1", 2);
        let nodes = trie.node_count();
        for (f, subscriber) in [
            ("a/b", "c2"),
            ("$share/g/a/b", "c1"),
            ("$share/h/a/#", "c1"),
            ("a/#", "c1"),
            ("a/b/c", "c1"),
            ("a/+", "c1"),
            ("a", "c1"),
            ("#", "c1"),
        ] {
            assert_eq!(trie.remove(&filter(f), &subscriber), None, "{f}");
        }
        assert_eq!(trie.len(), 2);
        assert_eq!(trie.node_count(), nodes);
        assert_pruned(&trie);
    }

    #[test]
    fn removing_everything_prunes_back_to_the_root() {
        let filters = [
            "a/b/c",
            "a/b",
            "a/+/c",
            "a/#",
            "#",
            "+",
            "/",
            "//",
            "a//#",
            "+/+/#",
            "$SYS/x",
            "$share/g/a/b/c",
            "$share/g/+/#",
        ];
        let mut trie = Trie::new();
        for (value, f) in (0u8..).zip(filters) {
            trie.insert(&filter(f), "c1", value);
            trie.insert(&filter(f), "c2", value);
        }
        assert_eq!(trie.len(), 2 * filters.len());
        assert_pruned(&trie);
        for (value, f) in (0u8..).zip(filters) {
            assert_eq!(trie.remove(&filter(f), &"c1"), Some(value));
            assert_pruned(&trie);
        }
        for (value, f) in (0u8..13).zip(filters).rev() {
            assert_eq!(trie.remove(&filter(f), &"c2"), Some(value));
            assert_pruned(&trie);
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn pruning_stops_where_another_filter_still_needs_the_path() {
        let mut trie = Trie::new();
        trie.insert(&filter("a/b/c/d"), "c", 0);
        trie.insert(&filter("a/b"), "c", 0);
        trie.insert(&filter("a/+/c"), "c", 0);
        assert_eq!(trie.node_count(), 7);
        trie.remove(&filter("a/b/c/d"), &"c");
        assert_eq!(trie.node_count(), 5);
        trie.remove(&filter("a/+/c"), &"c");
        assert_eq!(trie.node_count(), 3);
        assert_eq!(subscribers(&trie, "a/b"), [("a/b".to_owned(), "c", 0)]);
        assert_pruned(&trie);
    }

    #[test]
    fn many_wildcard_branches_are_all_walked() {
        // Filter i is i literal levels then `+` up to 40 levels: matching `a/a/.../a` must
        // follow a `+` branch at every level, more than the inline stack holds.
        let filters: Vec<String> = (0..=40)
            .map(|i| {
                let mut levels = vec!["a"; i];
                levels.resize(40, "+");
                levels.join("/")
            })
            .collect();
        let mut trie = Trie::new();
        for f in &filters {
            trie.insert(&filter(f), "c", 0);
        }
        let topic = vec!["a"; 40].join("/");
        assert_eq!(subscribers(&trie, &topic).len(), filters.len());
        assert!(subscribers(&trie, &vec!["a"; 39].join("/")).is_empty());
    }

    #[test]
    fn deep_filters_do_not_overflow_the_stack() {
        const LEVELS: usize = 30_000;
        let pluses = vec!["+"; LEVELS].join("/");
        let literals = vec!["a"; LEVELS].join("/");
        let deep_hash = format!("{literals}/#");
        let mut trie = Trie::new();
        for f in [&pluses, &literals, &deep_hash] {
            trie.insert(&filter(f), "c", 0);
        }
        assert_eq!(trie.node_count(), 1 + 2 * LEVELS);
        assert_eq!(subscribers(&trie, &literals).len(), 3);
        assert_eq!(subscribers(&trie, &pluses.replace('+', "b")).len(), 1);
        assert_eq!(trie.remove(&filter(&pluses), &"c"), Some(0));
        assert_eq!(trie.node_count(), 1 + LEVELS);
        assert_eq!(trie.remove(&filter(&literals), &"c"), Some(0));
        assert_eq!(trie.node_count(), 1 + LEVELS);
        trie.insert(&filter(&pluses), "c", 0);
        drop(trie);
    }
}
