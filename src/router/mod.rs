//! Routing: which subscriptions a published topic reaches.

mod trie;

pub use trie::TopicTrie;
