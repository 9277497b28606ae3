//! QoS 0 messages without the log (DESIGN §4): the publishing node looks the topic up in
//! its subscription index, reads each subscriber's owner node from the state, delivers to
//! its own connections directly and sends the rest, batched per node, over the cluster
//! gRPC service. No durability and no retry: a QoS 0 message to a node that is down, or a
//! batch that finds a full queue, is dropped, as MQTT allows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::command::{Delivery, Message, Millis, Target};
use crate::cluster::node::ClusterHandle;
use crate::cluster::proto;
use crate::cluster::state::{BrokerReader, SubscriptionIndex};
use crate::cluster::types::NodeId;
use crate::metrics::Metrics;
use crate::session::DropReason;

use super::registry::Registry;

/// Deliveries waiting for one peer; beyond this they are dropped.
const PEER_QUEUE: usize = 8192;
/// The most deliveries in one forwarded batch.
const PEER_BATCH: usize = 512;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes QoS 0 messages published on this node.
pub(crate) struct Qos0Router {
    cluster: ClusterHandle,
    index: SubscriptionIndex,
    reader: BrokerReader,
    registry: Arc<Registry>,
    peers: Mutex<HashMap<NodeId, mpsc::Sender<Delivery>>>,
    /// Spreads a shared group's QoS 0 messages over its online members.
    turn: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl Qos0Router {
    pub(crate) fn new(
        cluster: ClusterHandle,
        index: SubscriptionIndex,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Qos0Router {
            metrics,
            reader: BrokerReader::new(cluster.state()),
            cluster,
            index,
            registry,
            peers: Mutex::new(HashMap::new()),
            turn: AtomicUsize::new(0),
        }
    }

    /// Delivers `message` to every online subscriber its topic reaches (no-local
    /// subscriptions of `publisher` excepted), once per session, once per shared group.
    pub(crate) fn route(&self, message: Arc<Message>, publisher: &str, now: Millis) {
        let subscribers = self.index.subscribers(&message.topic, Some(publisher));
        let expires_at = message
            .expiry_interval
            .map(|s| now.saturating_add(u64::from(s) * 1000));
        let send = |client_id: String, node: NodeId, epoch: u64, retain: bool, ids| {
            let delivery = Delivery::Direct {
                target: Target {
                    node,
                    client_id,
                    epoch,
                },
                qos: 0,
                retain,
                subscription_ids: ids,
                expires_at,
                message: message.clone(),
                // QoS 0 is never handed over: at most once.
                share: None,
            };
            self.send(node, delivery);
        };
        for (client_id, merged) in subscribers.ordinary {
            if let Some((node, epoch)) = self.owner(&client_id) {
                let retain = message.retain && merged.retain_as_published;
                send(client_id, node, epoch, retain, merged.subscription_ids);
            }
        }
        for (_, members) in subscribers.shared {
            let online: Vec<_> = members
                .into_iter()
                .filter_map(|(client_id, record)| {
                    self.owner(&client_id)
                        .map(|owner| (client_id, record, owner))
                })
                .collect();
            if online.is_empty() {
                continue;
            }
            let pick = self.turn.fetch_add(1, Ordering::Relaxed) % online.len();
            if let Some((client_id, record, (node, epoch))) = online.into_iter().nth(pick) {
                let retain = message.retain && record.options.retain_as_published;
                send(
                    client_id,
                    node,
                    epoch,
                    retain,
                    record.subscription_id.into_iter().collect(),
                );
            }
        }
    }

    /// The subscriptions in the cluster, as this node's index holds them.
    pub(crate) fn subscription_count(&self) -> usize {
        self.index.len()
    }

    /// The node and epoch of a session's connection, if it is online.
    fn owner(&self, client_id: &str) -> Option<(NodeId, u64)> {
        if let Some(epoch) = self.registry.epoch_of(client_id) {
            return Some((self.cluster.id(), epoch));
        }
        match self.reader.session(client_id) {
            Ok(Some(session)) => session.owner.map(|node| (node, session.epoch)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(client = client_id, "cannot read the session: {e}");
                None
            }
        }
    }

    fn send(&self, node: NodeId, delivery: Delivery) {
        if node == self.cluster.id() {
            self.registry.dispatch(delivery);
            return;
        }
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let queue = peers.entry(node).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            tokio::spawn(forward(self.cluster.clone(), node, rx));
            tx
        });
        if queue.try_send(delivery).is_err() {
            self.metrics.broker.dropped(DropReason::QueueFull);
            tracing::debug!(node, "QoS 0 queue to the node is full: message dropped");
        }
    }
}

/// Sends one peer's deliveries in batches, in order.
async fn forward(cluster: ClusterHandle, node: NodeId, mut rx: mpsc::Receiver<Delivery>) {
    let mut batch = Vec::with_capacity(PEER_BATCH);
    while rx.recv_many(&mut batch, PEER_BATCH).await > 0 {
        let Some(addr) = cluster.peer_addr(node) else {
            batch.clear();
            continue;
        };
        match proto::encode("qos0 deliveries", &batch) {
            Ok(bytes) => {
                if let Err(status) = cluster
                    .forward_qos0(&addr, bytes.into(), FORWARD_TIMEOUT)
                    .await
                {
                    tracing::debug!(node, "QoS 0 batch not forwarded: {}", status.message());
                }
            }
            Err(e) => tracing::warn!("QoS 0 batch not encoded: {e}"),
        }
        batch.clear();
    }
}

/// Hands QoS 0 deliveries forwarded by other nodes to this node's connections.
pub(crate) async fn receive(cluster: ClusterHandle, registry: Arc<Registry>) {
    let mut rx = cluster.qos0_messages();
    loop {
        match rx.recv().await {
            Ok(bytes) => match proto::decode::<Vec<Delivery>>("qos0 deliveries", &bytes) {
                Ok(deliveries) => deliveries.into_iter().for_each(|d| registry.dispatch(d)),
                Err(e) => tracing::warn!("a peer sent QoS 0 deliveries that do not decode: {e}"),
            },
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!("{n} forwarded QoS 0 batches dropped: too slow");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
