//! The subscription trie.

/// A trie of topic filters.
#[derive(Debug, Default)]
pub struct TopicTrie;
