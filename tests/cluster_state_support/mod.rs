//! Shared by the `cluster_state_*` tests: a broker state machine on the real storage crate
//! in a temporary directory, and builders for the commands.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use raftmq::cluster::command::{
    Command, CommandBatch, Connect, Disconnect, Message, Millis, Outcome, Publish, Publisher,
    RetainHandling, Subscribe, SubscriptionOptions, WillMessage,
};
use raftmq::cluster::state::{BrokerReader, BrokerState};
use raftmq::cluster::types::TypeConfig;
use raftmq_storage::{Record, StateMachineStore, Storage, Table};

/// The time the tests start at: a plausible wall clock, far from 0.
pub const T0: Millis = 1_700_000_000_000;

/// One node's state machine.
pub struct Node {
    pub sm: StateMachineStore<TypeConfig, BrokerState>,
    storage: Storage,
    next_index: u64,
}

impl Node {
    pub async fn open(dir: &Path) -> Node {
        Node::open_with(dir, BrokerState::new()).await
    }

    pub async fn open_with(dir: &Path, state: BrokerState) -> Node {
        let storage = open_storage(dir);
        let mut sm = storage
            .state_machine::<TypeConfig, _>(state)
            .expect("state machine opens");
        let applied = sm.applied_state().await.expect("applied state").0;
        Node {
            sm,
            storage,
            next_index: applied.map_or(1, |log_id| log_id.index + 1),
        }
    }

    /// Applies `commands` as one log entry.
    pub async fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        self.apply_batches(vec![commands]).await.concat()
    }

    /// Applies each batch as one log entry, all in one `apply` call.
    pub async fn apply_batches(&mut self, batches: Vec<Vec<Command>>) -> Vec<Vec<Outcome>> {
        let entries: Vec<_> = batches
            .into_iter()
            .map(|commands| {
                let index = self.next_index;
                self.next_index += 1;
                Entry {
                    log_id: log_id(index),
                    payload: EntryPayload::Normal(CommandBatch(commands)),
                }
            })
            .collect();
        self.sm
            .apply(entries)
            .await
            .expect("apply succeeds")
            .into_iter()
            .map(|batch| batch.0)
            .collect()
    }

    pub async fn one(&mut self, command: Command) -> Outcome {
        let mut outcomes = self.apply(vec![command]).await;
        assert_eq!(outcomes.len(), 1);
        outcomes.remove(0)
    }

    pub fn reader(&self) -> BrokerReader {
        BrokerReader::new(self.sm.reader())
    }

    pub fn digest(&self) -> u32 {
        self.sm.reader().digest().expect("digest")
    }

    /// Every record of the application's tables (all but the store's own, which changes
    /// with every applied entry).
    pub fn tables(&self) -> Vec<(u8, Vec<Record>)> {
        let reader = self.sm.reader();
        (1..=u8::MAX)
            .map(|prefix| {
                let records = reader.scan_prefix(Table::new(prefix), b"").expect("scan");
                (prefix, records)
            })
            .filter(|(_, records)| !records.is_empty())
            .collect()
    }

    /// Continues the log after an installed snapshot.
    pub async fn resume_after(&mut self, meta: &openraft::SnapshotMeta<u64, openraft::BasicNode>) {
        let applied = self.sm.applied_state().await.expect("applied state").0;
        assert_eq!(applied, meta.last_log_id);
        self.next_index = applied.map_or(1, |log_id| log_id.index + 1);
    }

    /// Closes the node, so its directory can be opened again.
    pub fn close(self) {
        drop(self.sm);
        drop(self.storage);
    }
}

pub fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

/// Opens a data directory, waiting for sled to let go of it if this process had it open a
/// moment ago.
pub fn open_storage(dir: &Path) -> Storage {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Storage::open(dir) {
            Ok(storage) => return storage,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    }
}

/// A persistent v5 session that never expires: window 10, queue limit 100.
pub fn persistent(client_id: &str, node: u64) -> Connect {
    Connect {
        client_id: client_id.into(),
        node,
        protocol: 5,
        clean_start: false,
        session_expiry: u32::MAX,
        receive_maximum: 10,
        max_queue: 100,
        max_queue_bytes: 0,
        will: None,
        now: T0,
    }
}

/// A 3.1.1 clean session: transient.
pub fn transient(client_id: &str, node: u64) -> Connect {
    Connect {
        protocol: 4,
        clean_start: true,
        session_expiry: 0,
        ..persistent(client_id, node)
    }
}

pub fn message(topic: &str, payload: &str, qos: u8) -> Message {
    Message {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
        expiry_interval: None,
        payload_format_utf8: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    }
}

pub fn will(topic: &str, delay: u32) -> WillMessage {
    WillMessage {
        delay,
        message: message(topic, "gone", 1),
    }
}

/// A publish by the broker itself (no publisher to fence or deduplicate).
pub fn broker_publish(message: Message) -> Command {
    Command::Publish(Publish {
        from: None,
        packet_id: None,
        message,
        now: T0,
    })
}

pub fn client_publish(client_id: &str, epoch: u64, packet_id: u16, message: Message) -> Command {
    Command::Publish(Publish {
        from: Some(Publisher {
            client_id: client_id.into(),
            epoch,
        }),
        packet_id: Some(packet_id),
        message,
        now: T0,
    })
}

pub fn options(qos: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

pub fn subscribe(client_id: &str, epoch: u64, filters: &[(&str, SubscriptionOptions)]) -> Command {
    subscribe_with_id(client_id, epoch, filters, None)
}

pub fn subscribe_with_id(
    client_id: &str,
    epoch: u64,
    filters: &[(&str, SubscriptionOptions)],
    subscription_id: Option<u32>,
) -> Command {
    Command::Subscribe(Subscribe {
        client_id: client_id.into(),
        epoch,
        filters: filters
            .iter()
            .map(|(filter, options)| (filter.to_string(), *options))
            .collect(),
        subscription_id,
        now: T0,
    })
}

pub fn retain_handling(qos: u8, handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling: handling,
        ..options(qos)
    }
}

pub fn unsubscribe(client_id: &str, epoch: u64, filters: &[&str]) -> Command {
    Command::Unsubscribe {
        client_id: client_id.into(),
        epoch,
        filters: filters.iter().map(|f| f.to_string()).collect(),
    }
}

pub fn disconnect(client_id: &str, epoch: u64, publish_will: bool, now: Millis) -> Command {
    Command::Disconnect(Disconnect {
        client_id: client_id.into(),
        epoch,
        publish_will,
        session_expiry: None,
        now,
    })
}

pub fn ack(client_id: &str, epoch: u64, packet_ids: &[u16]) -> Command {
    Command::Ack {
        client_id: client_id.into(),
        epoch,
        packet_ids: packet_ids.to_vec(),
    }
}

/// The epoch of a `Connected` outcome.
pub fn epoch(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Connected { epoch, .. } => *epoch,
        other => panic!("expected Connected, got {other:?}"),
    }
}

/// Connects and returns the new epoch.
pub async fn connect(node: &mut Node, connect: Connect) -> u64 {
    epoch(&node.one(Command::Connect(connect)).await)
}

// Helpers of the delivery and routing tests.

/// A persistent session `client` on `node`, subscribed to `filters`; returns its epoch.
pub async fn subscriber(
    node: &mut Node,
    connect: Connect,
    filters: &[(&str, SubscriptionOptions)],
) -> u64 {
    let client_id = connect.client_id.clone();
    let epoch = self::connect(node, connect).await;
    let outcome = node.one(subscribe(&client_id, epoch, filters)).await;
    assert!(matches!(outcome, Outcome::Subscribed { .. }), "{outcome:?}");
    epoch
}

pub fn published(outcome: Outcome) -> (bool, u32, Vec<raftmq::cluster::command::Delivery>) {
    match outcome {
        Outcome::Published {
            duplicate,
            matched,
            deliveries,
        } => (duplicate, matched, deliveries),
        other => panic!("expected Published, got {other:?}"),
    }
}

pub fn packet_ids(entries: &[raftmq::cluster::command::OutboundEntry]) -> Vec<u16> {
    entries.iter().map(|entry| entry.packet_id).collect()
}

/// The queue entries an ack let into the window, from its deliveries (all to `owner`).
pub fn promoted_entries(
    deliveries: &[raftmq::cluster::command::Delivery],
) -> Vec<raftmq::cluster::command::OutboundEntry> {
    deliveries
        .iter()
        .map(|delivery| match delivery {
            raftmq::cluster::command::Delivery::Queued { entry, .. } => entry.clone(),
            other => panic!("an ack promotes queued entries only: {other:?}"),
        })
        .collect()
}

pub fn payload(node: &Node, entry: &raftmq::cluster::command::OutboundEntry) -> String {
    let id = entry.message_id.expect("entry holds its message");
    let stored = node.reader().message(id).unwrap().expect("message stored");
    String::from_utf8(stored.message.payload.to_vec()).unwrap()
}

/// The payloads of a session's waiting (not in-flight) queue entries, oldest first.
pub fn waiting_payloads(node: &Node, client_id: &str) -> Vec<String> {
    node.reader()
        .queued(client_id)
        .unwrap()
        .iter()
        .map(|entry| {
            let id = entry.message_id.expect("a waiting entry holds its message");
            let stored = node.reader().message(id).unwrap().expect("message stored");
            String::from_utf8(stored.message.payload.to_vec()).unwrap()
        })
        .collect()
}

pub fn with_window(client_id: &str, receive_maximum: u16, max_queue: u32) -> Connect {
    Connect {
        receive_maximum,
        max_queue,
        ..persistent(client_id, 1)
    }
}
