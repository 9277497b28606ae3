//! One level of the subscription trie: its edges, its subscription slots, and the pruning
//! that keeps no empty level behind.

use std::collections::{BTreeMap, HashMap};

/// One level of filters. Only the subscription slots and the edges that lead to some
/// subscription exist: removal prunes the rest, so a trie that held a million filters
/// does not keep their nodes once they are unsubscribed.
pub(super) struct Node<K, V> {
    pub(super) children: HashMap<Box<str>, Node<K, V>>,
    pub(super) plus: Option<Box<Node<K, V>>>,
    /// Subscriptions whose filter ends at this node.
    pub(super) exact: Slot<K, V>,
    /// Subscriptions whose filter is this node's path followed by `#`. `#` is always the last
    /// level, so it needs no node of its own.
    pub(super) multi: Slot<K, V>,
}

/// The subscriptions to one filter. The filter text is kept because matches report it and
/// rebuilding it from the path would allocate on every match.
pub(super) struct Subscriptions<K, V> {
    pub(super) filter: Box<str>,
    pub(super) ordinary: BTreeMap<K, V>,
    pub(super) shared: BTreeMap<Box<str>, BTreeMap<K, V>>,
}

/// Where the subscriptions to one filter live; `None` once the last one is removed.
pub(super) type Slot<K, V> = Option<Box<Subscriptions<K, V>>>;

/// The levels of a filter that are nodes: all but a final `#`.
fn path(filter: &str) -> impl Iterator<Item = &str> {
    filter.split('/').take_while(|level| *level != "#")
}

impl<K, V> Node<K, V> {
    pub(super) fn slot_or_insert(&mut self, filter: &str) -> &mut Slot<K, V> {
        let mut node = self;
        for level in filter.split('/') {
            node = match level {
                "#" => return &mut node.multi,
                "+" => &mut **node.plus.get_or_insert_with(Box::default),
                literal => node.children.entry(literal.into()).or_default(),
            };
        }
        &mut node.exact
    }

    pub(super) fn slot(&mut self, filter: &str) -> Option<&mut Slot<K, V>> {
        let mut node = self;
        for level in filter.split('/') {
            node = match level {
                "#" => return Some(&mut node.multi),
                "+" => node.plus.as_deref_mut()?,
                literal => node.children.get_mut(literal)?,
            };
        }
        Some(&mut node.exact)
    }

    fn child(&self, level: &str) -> Option<&Node<K, V>> {
        match level {
            "+" => self.plus.as_deref(),
            literal => self.children.get(literal),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        match level {
            "+" => self.plus.as_deref_mut(),
            literal => self.children.get_mut(literal),
        }
    }

    pub(super) fn edges(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    /// After the last subscription to `filter` is gone, cuts off the longest tail of its
    /// path that holds nothing else. Two walks down instead of recursion, because a filter
    /// can have tens of thousands of levels.
    pub(super) fn prune(&mut self, filter: &str) {
        let mut node: &Node<K, V> = self;
        let mut top_of_tail = None;
        for (depth, level) in path(filter).enumerate() {
            let Some(child) = node.child(level) else {
                return;
            };
            node = child;
            if node.exact.is_none() && node.multi.is_none() && node.edges() <= 1 {
                top_of_tail.get_or_insert(depth);
            } else {
                top_of_tail = None;
            }
        }
        let Some(depth) = top_of_tail.filter(|_| node.edges() == 0) else {
            return;
        };
        let mut parent = self;
        let mut levels = path(filter);
        for level in levels.by_ref().take(depth) {
            let Some(child) = parent.child_mut(level) else {
                return;
            };
            parent = child;
        }
        match levels.next() {
            Some("+") => parent.plus = None,
            Some(literal) => {
                parent.children.remove(literal);
            }
            None => {}
        }
    }

    fn detach_children(&mut self, into: &mut Vec<Node<K, V>>) {
        into.extend(self.children.drain().map(|(_, child)| child));
        into.extend(self.plus.take().map(|plus| *plus));
    }
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            exact: None,
            multi: None,
        }
    }
}

/// The default drop would recurse once per level and overflow the stack on a filter with
/// tens of thousands of levels, which any client may subscribe to.
impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        let mut orphans = Vec::new();
        self.detach_children(&mut orphans);
        while let Some(mut orphan) = orphans.pop() {
            orphan.detach_children(&mut orphans);
        }
    }
}

impl<K: Ord, V> Subscriptions<K, V> {
    pub(super) fn new(filter: &str) -> Self {
        Subscriptions {
            filter: filter.into(),
            ordinary: BTreeMap::new(),
            shared: BTreeMap::new(),
        }
    }

    pub(super) fn remove(&mut self, group: Option<&str>, subscriber: &K) -> Option<V> {
        let Some(group) = group else {
            return self.ordinary.remove(subscriber);
        };
        let members = self.shared.get_mut(group)?;
        let removed = members.remove(subscriber)?;
        if members.is_empty() {
            self.shared.remove(group);
        }
        Some(removed)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ordinary.is_empty() && self.shared.is_empty()
    }
}
