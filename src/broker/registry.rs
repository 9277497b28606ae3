//! The connections this node holds, by client id and epoch, and the routing of applied
//! outcomes to them.
//!
//! The state machine calls [`Registry::notify`] with every outcome, on every node, in
//! log order. A connection registers itself *before* proposing its `Connect`
//! ([`Registry::expect`]); the `Connected` outcome for this node binds the new epoch to the
//! oldest such connection of that client, inside the same call that applies it, so no
//! delivery to the new epoch can slip past before the connection is found. A `Connected`
//! for this node that no connection waits for (the connection gave up or closed first)
//! is an orphan: the broker proposes its `Disconnect`, so the session does not stay
//! owned by nobody.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::cluster::command::{Delivery, Outcome};
use crate::cluster::types::NodeId;

/// What a connection task is told.
#[derive(Debug)]
pub(crate) enum Event {
    /// Boxed: every connection's channel allocates a block of 32 events up front, at the
    /// size of the largest variant, and most connections are idle.
    Deliver(Box<Delivery>),
    /// A newer connection took the session over.
    TakenOver,
    /// The node is shutting down: close with "server shutting down".
    Shutdown,
    /// An operator closed the connection (or removed its session): close with
    /// "administrative action".
    Kicked,
}

pub(crate) type EventSender = mpsc::UnboundedSender<Event>;

/// The most events a connection handles in one turn: enough to empty its channel in one
/// go under load, few enough that it still reads its client's input between turns.
const EVENT_BATCH: usize = 256;

/// Hands `first`, then the events already waiting behind it (at most [`EVENT_BATCH`] in
/// all), to `handle`. What it does not take stays in the channel for the next turn.
pub(crate) fn for_each_waiting(
    first: Event,
    events: &mut mpsc::UnboundedReceiver<Event>,
    mut handle: impl FnMut(Event),
) {
    handle(first);
    for _ in 1..EVENT_BATCH {
        match events.try_recv() {
            Ok(event) => handle(event),
            Err(_) => return,
        }
    }
}

struct Bound {
    epoch: u64,
    conn: u64,
    tx: EventSender,
}

#[derive(Default)]
struct Inner {
    bound: HashMap<String, Bound>,
    /// Connections waiting for their `Connected`, oldest first.
    pending: HashMap<String, VecDeque<(u64, EventSender)>>,
}

/// See the module documentation.
pub struct Registry {
    node: AtomicU64,
    inner: Mutex<Inner>,
    orphans: mpsc::UnboundedSender<(String, u64)>,
}

impl Registry {
    /// A registry and the receiver of orphaned sessions (client id, epoch).
    pub fn new() -> (Registry, mpsc::UnboundedReceiver<(String, u64)>) {
        let (orphans, rx) = mpsc::unbounded_channel();
        let registry = Registry {
            node: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            orphans,
        };
        (registry, rx)
    }

    /// Set once the node's id is known (before Raft starts applying).
    pub fn set_node(&self, node: NodeId) {
        self.node.store(node, Ordering::Release);
    }

    fn node(&self) -> NodeId {
        self.node.load(Ordering::Acquire)
    }

    // Held only for map operations, never across an await; a panic while holding it is a
    // bug that leaves the maps usable, so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection is about to propose `Connect` for `client_id`.
    pub(crate) fn expect(&self, client_id: &str, conn: u64, tx: EventSender) {
        self.lock()
            .pending
            .entry(client_id.to_owned())
            .or_default()
            .push_back((conn, tx));
    }

    /// A connection is done. Returns the epoch it was bound to, if it was.
    pub(crate) fn forget(&self, client_id: &str, conn: u64) -> Option<u64> {
        let mut inner = self.lock();
        if let Some(queue) = inner.pending.get_mut(client_id) {
            queue.retain(|(c, _)| *c != conn);
            if queue.is_empty() {
                inner.pending.remove(client_id);
            }
        }
        match inner.bound.get(client_id) {
            Some(bound) if bound.conn == conn => inner.bound.remove(client_id).map(|b| b.epoch),
            _ => None,
        }
    }

    /// How many connections are bound to a session.
    pub fn connections(&self) -> usize {
        self.lock().bound.len()
    }

    /// Tells every connection the node is shutting down.
    pub(crate) fn shutdown_all(&self) {
        for bound in self.lock().bound.values() {
            let _ = bound.tx.send(Event::Shutdown);
        }
    }

    /// One applied outcome (see the module documentation).
    pub fn notify(&self, outcome: &Outcome) {
        let me = self.node();
        let deliveries = match outcome {
            Outcome::Connected {
                client_id,
                node,
                epoch,
                taken_over,
                deliveries,
                ..
            } => {
                let mut inner = self.lock();
                if let Some(old) = taken_over
                    && old.node == me
                    && inner
                        .bound
                        .get(client_id)
                        .is_some_and(|b| b.epoch == old.epoch)
                    && let Some(bound) = inner.bound.remove(client_id)
                {
                    let _ = bound.tx.send(Event::TakenOver);
                }
                if *node == me {
                    let waiting = inner
                        .pending
                        .get_mut(client_id)
                        .and_then(VecDeque::pop_front);
                    if inner.pending.get(client_id).is_some_and(VecDeque::is_empty) {
                        inner.pending.remove(client_id);
                    }
                    match waiting {
                        Some((conn, tx)) => {
                            let previous = inner.bound.insert(
                                client_id.clone(),
                                Bound {
                                    epoch: *epoch,
                                    conn,
                                    tx,
                                },
                            );
                            if let Some(previous) = previous {
                                let _ = previous.tx.send(Event::TakenOver);
                            }
                        }
                        None => {
                            let _ = self.orphans.send((client_id.clone(), *epoch));
                        }
                    }
                }
                drop(inner);
                deliveries
            }
            Outcome::Evicted {
                client_id,
                connection,
                deliveries,
                ..
            } => {
                if let Some(connection) = connection
                    && connection.node == me
                    && let Some(bound) = self.lock().bound.get(client_id)
                    && bound.epoch == connection.epoch
                {
                    let _ = bound.tx.send(Event::Kicked);
                }
                deliveries
            }
            Outcome::Disconnected { deliveries, .. }
            | Outcome::HandedOver { deliveries, .. }
            | Outcome::Subscribed { deliveries, .. }
            | Outcome::Unsubscribed { deliveries, .. }
            | Outcome::Published { deliveries, .. }
            | Outcome::Ticked { deliveries, .. }
            | Outcome::NodeDowned { deliveries, .. }
            | Outcome::Acked { deliveries, .. } => deliveries,
            Outcome::Received { .. }
            | Outcome::Released { .. }
            | Outcome::Fenced { .. }
            | Outcome::Rejected { .. }
            | Outcome::UsersChanged { .. }
            | Outcome::AclSet => return,
        };
        for delivery in deliveries {
            self.dispatch(delivery.clone());
        }
    }

    /// Hands a delivery to its connection, if this node holds it under that epoch.
    pub fn dispatch(&self, delivery: Delivery) {
        let target = match &delivery {
            Delivery::Queued { target, .. } | Delivery::Direct { target, .. } => target,
        };
        if target.node != self.node() {
            return;
        }
        let inner = self.lock();
        if let Some(bound) = inner.bound.get(&target.client_id)
            && bound.epoch == target.epoch
        {
            let _ = bound.tx.send(Event::Deliver(Box::new(delivery)));
        }
    }

    /// Where a session is connected on this node, for routing QoS 0.
    pub(crate) fn epoch_of(&self, client_id: &str) -> Option<u64> {
        self.lock().bound.get(client_id).map(|b| b.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::command::{Message, Takeover, Target};
    use std::sync::Arc;

    fn connected(client: &str, node: NodeId, epoch: u64, taken: Option<Takeover>) -> Outcome {
        Outcome::Connected {
            client_id: client.into(),
            node,
            epoch,
            session_present: false,
            taken_over: taken,
            resend: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    fn direct(client: &str, node: NodeId, epoch: u64) -> Delivery {
        Delivery::Direct {
            target: Target {
                node,
                client_id: client.into(),
                epoch,
            },
            qos: 0,
            retain: false,
            subscription_ids: Vec::new(),
            expires_at: None,
            message: Arc::new(Message::new("t", bytes::Bytes::new(), 0, false)),
            share: None,
        }
    }

    #[test]
    fn a_connected_outcome_binds_the_waiting_connection_and_routes_to_it() {
        let (registry, _orphans) = Registry::new();
        registry.set_node(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        registry.expect("c", 10, tx);
        registry.notify(&connected("c", 1, 5, None));
        registry.dispatch(direct("c", 1, 5));
        registry.dispatch(direct("c", 1, 4)); // stale epoch: dropped
        registry.dispatch(direct("c", 2, 5)); // another node's: dropped
        assert!(matches!(rx.try_recv(), Ok(Event::Deliver(_))));
        assert!(rx.try_recv().is_err());
        assert_eq!(registry.forget("c", 10), Some(5));
        assert_eq!(registry.connections(), 0);
    }

    fn queued(client: &str, node: NodeId, epoch: u64, packet_id: u16) -> Delivery {
        Delivery::Queued {
            target: Target {
                node,
                client_id: client.into(),
                epoch,
            },
            entry: crate::cluster::command::OutboundEntry {
                seq: u64::from(packet_id),
                packet_id,
                stage: crate::cluster::command::Stage::AwaitingAck,
                dup: false,
                qos: 1,
                retain: false,
                subscription_ids: Vec::new(),
                message_id: Some(u64::from(packet_id)),
            },
        }
    }

    /// Entries an ack lets into the window reach the connection in log order with the
    /// messages published after the ack (they once came back with the ack's outcome,
    /// which could arrive after a later publish's delivery: out of order).
    #[test]
    fn an_ack_promotes_in_log_order_with_later_publishes() {
        let (registry, _orphans) = Registry::new();
        registry.set_node(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        registry.expect("c", 10, tx);
        registry.notify(&connected("c", 1, 5, None));
        registry.notify(&Outcome::Acked {
            released: vec![1],
            deliveries: vec![queued("c", 1, 5, 3)],
        });
        registry.notify(&Outcome::Published {
            duplicate: false,
            matched: 1,
            deliveries: vec![queued("c", 1, 5, 4)],
        });
        let mut sent = Vec::new();
        while let Ok(Event::Deliver(delivery)) = rx.try_recv() {
            let Delivery::Queued { entry, .. } = *delivery else {
                break;
            };
            sent.push(entry.packet_id);
        }
        assert_eq!(sent, [3, 4]);
    }

    #[test]
    fn a_takeover_closes_the_old_connection_on_this_node() {
        let (registry, _orphans) = Registry::new();
        registry.set_node(1);
        let (old_tx, mut old_rx) = mpsc::unbounded_channel();
        registry.expect("c", 1, old_tx);
        registry.notify(&connected("c", 1, 5, None));
        // Taken over from node 2's connection: the old one here is told.
        registry.notify(&connected("c", 2, 6, Some(Takeover { node: 1, epoch: 5 })));
        assert!(matches!(old_rx.try_recv(), Ok(Event::TakenOver)));
        assert_eq!(registry.forget("c", 1), None);
    }

    #[test]
    fn an_eviction_closes_the_connection_of_that_epoch_on_its_node_only() {
        let (registry, _orphans) = Registry::new();
        registry.set_node(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        registry.expect("c", 10, tx);
        registry.notify(&connected("c", 1, 5, None));
        let evicted = |node, epoch| Outcome::Evicted {
            client_id: "c".into(),
            existed: true,
            connection: Some(Takeover { node, epoch }),
            deliveries: Vec::new(),
        };
        registry.notify(&evicted(2, 5)); // another node's connection
        registry.notify(&evicted(1, 4)); // an older connection of this client
        assert!(rx.try_recv().is_err());
        registry.notify(&evicted(1, 5));
        assert!(matches!(rx.try_recv(), Ok(Event::Kicked)));
    }

    #[test]
    fn a_connected_nobody_waits_for_is_an_orphan() {
        let (registry, mut orphans) = Registry::new();
        registry.set_node(1);
        registry.notify(&connected("c", 1, 9, None));
        registry.notify(&connected("d", 2, 10, None)); // another node's: not ours
        assert_eq!(orphans.try_recv().ok(), Some(("c".to_string(), 9)));
        assert!(orphans.try_recv().is_err());
    }

    /// A connection whose channel backs up (a subscriber that lags behind a fast
    /// publisher) takes its events in turns of at most `EVENT_BATCH`: every one of them,
    /// in order, across the turns (a turn once dropped the event it peeked past its end:
    /// every 257th QoS 1 delivery of a lagging transient subscriber was lost).
    #[tokio::test]
    async fn a_backed_up_channel_hands_over_every_event_in_order() {
        let (registry, _orphans) = Registry::new();
        registry.set_node(1);
        let (tx, mut rx) = mpsc::unbounded_channel();
        registry.expect("c", 10, tx);
        registry.notify(&connected("c", 1, 5, None));
        let sent = 3 * EVENT_BATCH + 17;
        for id in 1..=sent {
            registry.dispatch(queued("c", 1, 5, id as u16));
        }
        let mut seen = Vec::new();
        let mut turns = 0;
        while seen.len() < sent {
            let first = rx.recv().await.expect("the registry holds the sender");
            for_each_waiting(first, &mut rx, |event| match event {
                Event::Deliver(delivery) => match *delivery {
                    Delivery::Queued { entry, .. } => seen.push(entry.packet_id),
                    other => panic!("unexpected {other:?}"),
                },
                other => panic!("unexpected {other:?}"),
            });
            turns += 1;
        }
        assert_eq!(turns, 4, "at most EVENT_BATCH per turn");
        let expected: Vec<u16> = (1..=sent as u16).collect();
        assert_eq!(seen, expected);
        assert!(rx.try_recv().is_err());
    }
}
