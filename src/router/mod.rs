//! Routing: which subscriptions a published topic reaches, with shared-subscription groups
//! kept apart from ordinary subscribers.
//!
//! Depends on [`crate::mqtt::topic`] only, does no I/O, and is deterministic: matches come
//! out in an order fixed by the subscriptions alone (members of a group sorted by subscriber
//! id), so every node of the cluster that holds the same subscriptions sees the same matches
//! in the same order.

mod node;
mod trie;

pub use trie::{Match, Matches, SharedMatch, SubscriberMatch, TopicTrie};

#[cfg(test)]
mod properties;
