//! Property tests of the trie against a model: a `BTreeMap` of subscriptions, matched one by
//! one with the naive `topic::matches`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;

use super::{Match, TopicTrie};
use crate::mqtt::topic::{matches, parse_subscription_filter};

/// (filter, share group, subscriber) → options.
type Model = BTreeMap<(String, Option<String>, u8), u16>;
type Trie = TopicTrie<u8, u16>;
/// One match as plain values: (filter, share group, subscribers with their options).
type Seen = (String, Option<String>, Vec<(u8, u16)>);

/// A few level values, so that random filters and topics often meet.
fn filter() -> impl Strategy<Value = String> {
    let first = prop_oneof![Just("a"), Just("b"), Just(""), Just("+"), Just("$s")];
    let level = prop_oneof![Just("a"), Just("b"), Just(""), Just("+")];
    (prop::option::of(first), vec(level, 0..3), any::<bool>()).prop_map(|(first, rest, hash)| {
        let Some(first) = first else {
            return "#".to_owned();
        };
        let mut levels = vec![first];
        levels.extend(rest);
        if hash {
            levels.push("#");
        }
        // One empty level alone would be the empty filter, which is invalid.
        if levels == [""] {
            levels.push("");
        }
        levels.join("/")
    })
}

fn group() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![Just("g".to_owned()), Just("h".to_owned())])
}

fn topic() -> impl Strategy<Value = String> {
    let first = prop_oneof![Just("a"), Just("b"), Just(""), Just("$s")];
    let level = prop_oneof![Just("a"), Just("b"), Just("")];
    (first, vec(level, 0..4)).prop_map(|(first, rest)| {
        let mut levels = vec![first];
        levels.extend(rest);
        levels.join("/")
    })
}

fn subscription_text(filter: &str, group: Option<&str>) -> String {
    match group {
        Some(group) => format!("$share/{group}/{filter}"),
        None => filter.to_owned(),
    }
}

/// Applies one insert or removal to both the trie and the model, and checks they answer
/// alike.
fn apply(
    trie: &mut Trie,
    model: &mut Model,
    key: (String, Option<String>, u8),
    insert: Option<u16>,
) -> Result<(), TestCaseError> {
    let text = subscription_text(&key.0, key.1.as_deref());
    let parsed = parse_subscription_filter(&text)
        .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
    prop_assert_eq!(parsed.filter(), key.0.as_str());
    prop_assert_eq!(parsed.share_group(), key.1.as_deref());
    let subscriber = key.2;
    match insert {
        Some(value) => {
            prop_assert_eq!(
                trie.insert(&parsed, subscriber, value),
                model.insert(key, value)
            );
        }
        None => {
            prop_assert_eq!(trie.remove(&parsed, &subscriber), model.remove(&key));
        }
    }
    prop_assert_eq!(trie.len(), model.len());
    prop_assert_eq!(trie.node_count(), expected_node_count(model));
    Ok(())
}

/// The root plus one node per distinct path prefix (a trailing `#` needs no node).
fn expected_node_count(model: &Model) -> usize {
    let mut prefixes = BTreeSet::new();
    for (filter, _, _) in model.keys() {
        let path: Vec<&str> = filter.split('/').take_while(|l| *l != "#").collect();
        for end in 1..=path.len() {
            prefixes.insert(path[..end].to_vec());
        }
    }
    1 + prefixes.len()
}

/// The trie's matches for `topic` are exactly the model's subscriptions whose filter
/// matches it, ordinary and shared apart, each once.
fn check_matches(trie: &Trie, model: &Model, topic: &str) -> Result<(), TestCaseError> {
    let mut ordinary = Vec::new();
    let mut shared = Vec::new();
    trie.for_each_match(topic, |found| match found {
        Match::Subscriber(m) => ordinary.push((m.filter.to_owned(), *m.subscriber, *m.value)),
        Match::Shared(m) => {
            let members: Vec<_> = m.members.iter().map(|(k, v)| (*k, *v)).collect();
            shared.push((m.group.to_owned(), m.filter.to_owned(), members));
        }
    });
    ordinary.sort();
    shared.sort();

    let mut expected_ordinary = Vec::new();
    let mut expected_shared: BTreeMap<(String, String), Vec<(u8, u16)>> = BTreeMap::new();
    for ((filter, group, subscriber), value) in model {
        if !matches(filter, topic) {
            continue;
        }
        match group {
            None => expected_ordinary.push((filter.clone(), *subscriber, *value)),
            Some(group) => expected_shared
                .entry((group.clone(), filter.clone()))
                .or_default()
                .push((*subscriber, *value)),
        }
    }
    expected_ordinary.sort();
    let expected_shared: Vec<_> = expected_shared
        .into_iter()
        .map(|((group, filter), members)| (group, filter, members))
        .collect();

    prop_assert_eq!(ordinary, expected_ordinary, "ordinary, topic {:?}", topic);
    prop_assert_eq!(shared, expected_shared, "shared, topic {:?}", topic);
    Ok(())
}

/// The matches of `topic` in visiting order, as plain values.
fn visit_order(trie: &Trie, topic: &str) -> Vec<Seen> {
    let mut seen = Vec::new();
    trie.for_each_match(topic, |found| match found {
        Match::Subscriber(m) => {
            seen.push((m.filter.to_owned(), None, vec![(*m.subscriber, *m.value)]))
        }
        Match::Shared(m) => seen.push((
            m.filter.to_owned(),
            Some(m.group.to_owned()),
            m.members.iter().map(|(k, v)| (*k, *v)).collect(),
        )),
    });
    seen
}

proptest! {
    #[test]
    fn trie_matches_what_the_naive_matcher_matches(
        subscriptions in vec((filter(), group(), 0u8..4, any::<u16>()), 0..40),
        topics in vec(topic(), 1..10),
    ) {
        let mut trie = Trie::new();
        let mut model = Model::new();
        for (filter, group, subscriber, value) in subscriptions {
            apply(&mut trie, &mut model, (filter, group, subscriber), Some(value))?;
        }
        for topic in &topics {
            check_matches(&trie, &model, topic)?;
            let collected = trie.matches(topic);
            let mut visited = (0, 0);
            trie.for_each_match(topic, |found| match found {
                Match::Subscriber(_) => visited.0 += 1,
                Match::Shared(_) => visited.1 += 1,
            });
            prop_assert_eq!((collected.subscribers.len(), collected.shared.len()), visited);
        }
    }

    #[test]
    fn trie_follows_the_model_through_inserts_and_removals(
        operations in vec((filter(), group(), 0u8..3, prop::option::of(any::<u16>())), 0..80),
        topics in vec(topic(), 1..6),
    ) {
        let mut trie = Trie::new();
        let mut model = Model::new();
        for (filter, group, subscriber, insert) in operations {
            apply(&mut trie, &mut model, (filter, group, subscriber), insert)?;
        }
        for topic in &topics {
            check_matches(&trie, &model, topic)?;
        }
        let keys: Vec<_> = model.keys().cloned().collect();
        for key in keys {
            apply(&mut trie, &mut model, key, None)?;
        }
        prop_assert!(trie.is_empty());
        prop_assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn match_order_does_not_depend_on_insertion_order(
        subscriptions in vec((filter(), group(), 0u8..4, any::<u16>()), 0..30),
        topics in vec(topic(), 1..6),
    ) {
        let mut forward = Trie::new();
        let mut forward_model = Model::new();
        for (filter, group, subscriber, value) in subscriptions.iter().cloned() {
            apply(&mut forward, &mut forward_model, (filter, group, subscriber), Some(value))?;
        }
        // Built from the model, so that replacing inserts end with the same values.
        let mut backward = Trie::new();
        let mut backward_model = Model::new();
        for (key, value) in forward_model.iter().rev() {
            apply(&mut backward, &mut backward_model, key.clone(), Some(*value))?;
        }
        for topic in &topics {
            prop_assert_eq!(visit_order(&forward, topic), visit_order(&backward, topic));
        }
    }
}
