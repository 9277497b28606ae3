//! The nodes the clients pick from, shared by every workload task and kept up to date by
//! the harness as the `membership` nemesis changes the cluster: a node joins the view once
//! it is a voter (so clients never wait on a node still catching up), and leaves it before
//! it is asked to leave the cluster (so no new operation goes to a node on its way out).
//! With a list fixed at the start, a removed node keeps drawing a share of the
//! operations (all failing to connect) and an added one never sees a client.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use rand::Rng;

/// One node as the clients see it: its number (as in `n4`) and the MQTT address they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub number: usize,
    pub addr: SocketAddr,
}

impl Target {
    /// `n<number>`, as the history names nodes.
    pub fn name(&self) -> String {
        format!("n{}", self.number)
    }
}

/// The current client view (cheap to clone; every clone sees every change). Never empty:
/// the harness keeps at least 3 voters, and a view that refuses to lose its last node lets
/// every pick succeed.
#[derive(Debug, Clone)]
pub struct NodeView {
    targets: Arc<RwLock<Vec<Target>>>,
}

impl NodeView {
    /// A view of `targets`, in order; `None` if there are none.
    pub fn new(targets: Vec<Target>) -> Option<NodeView> {
        if targets.is_empty() {
            return None;
        }
        Some(NodeView {
            targets: Arc::new(RwLock::new(targets)),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Target>> {
        self.targets.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Target>> {
        self.targets.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `target` (or updates the address of the node with its number).
    pub fn add(&self, target: Target) {
        let mut targets = self.write();
        match targets.iter_mut().find(|t| t.number == target.number) {
            Some(known) => *known = target,
            None => targets.push(target),
        }
    }

    /// Removes node `number`; `false` if it was not there or is the last one.
    pub fn remove(&self, number: usize) -> bool {
        let mut targets = self.write();
        match targets.iter().position(|t| t.number == number) {
            Some(i) if targets.len() > 1 => {
                targets.remove(i);
                true
            }
            _ => false,
        }
    }

    /// A node at random.
    pub fn random(&self) -> Target {
        let targets = self.read();
        targets[rand::rng().random_range(0..targets.len())]
    }

    /// The `k`-th node, wrapping around: spreads long-lived clients over the nodes.
    pub fn nth(&self, k: usize) -> Target {
        let targets = self.read();
        targets[k % targets.len()]
    }

    /// Every node now in the view.
    pub fn all(&self) -> Vec<Target> {
        self.read().clone()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Always `false` (the view is never empty); for symmetry with [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn target(number: usize) -> Target {
        Target {
            number,
            addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + number as u16)),
        }
    }

    fn picked(view: &NodeView) -> HashSet<usize> {
        (0..500).map(|_| view.random().number).collect()
    }

    #[test]
    fn clones_follow_additions_and_removals() {
        assert!(NodeView::new(Vec::new()).is_none());
        let view = NodeView::new(vec![target(1), target(2), target(3)]).unwrap();
        let workload = view.clone();
        assert_eq!(picked(&workload), HashSet::from([1, 2, 3]));

        view.add(target(4));
        assert_eq!(picked(&workload), HashSet::from([1, 2, 3, 4]));
        assert!(view.remove(2));
        assert!(!view.remove(2), "already gone");
        assert_eq!(picked(&workload), HashSet::from([1, 3, 4]));
        assert_eq!(
            workload.all().iter().map(|t| t.number).collect::<Vec<_>>(),
            vec![1, 3, 4]
        );
        assert_eq!(workload.nth(0).number, 1);
        assert_eq!(workload.nth(4).number, 3);
    }

    #[test]
    fn a_node_is_listed_once_and_the_last_one_stays() {
        let view = NodeView::new(vec![target(1)]).unwrap();
        let moved = Target {
            number: 1,
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        view.add(moved);
        assert_eq!(view.all(), vec![moved]);
        assert!(!view.remove(1), "the last node stays");
        assert_eq!(view.len(), 1);
        assert!(!view.is_empty());
        assert_eq!(view.random(), moved);
    }
}
