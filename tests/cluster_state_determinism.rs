//! Determinism of the replicated state machine: random command sequences applied to
//! independent stores give the same state bytes and the same outcomes, also across a
//! restart and a snapshot transfer; and the state stays consistent with itself (reference
//! counts, queue counters, the subscription index) whatever the sequence.

mod cluster_state_support;

use std::collections::BTreeMap;

use bytes::Bytes;
use cluster_state_support::*;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;
use proptest::collection::vec;
use proptest::prelude::*;
use raftmq::cluster::command::{
    Command, Connect, Disconnect, Message, Millis, Outcome, Publish, Publisher, RetainHandling,
    Subscribe, SubscriptionOptions, WillMessage,
};
use raftmq::cluster::state::{BrokerReader, QueueEntry, SessionRecord};
use raftmq_storage::Record;
use tokio::io::AsyncWriteExt;

const CLIENTS: [&str; 3] = ["c0", "c1", "c2"];
const TOPICS: [&str; 4] = ["a", "a/b", "b", "$s/a"];
const FILTERS: [&str; 7] = ["a", "a/+", "#", "b", "$share/g/a/#", "$share/g/b", "+/+"];

/// One step of a random history, with the epochs still to be filled in from the outcomes
/// seen so far (so most client commands are current, some deliberately stale).
#[derive(Debug, Clone)]
enum Op {
    Connect {
        client: usize,
        node: u64,
        expiry: u32,
        clean_start: bool,
        receive_maximum: u16,
        max_queue: u32,
        will: Option<(u32, usize)>,
    },
    Disconnect {
        client: usize,
        stale: bool,
        publish_will: bool,
        expiry: Option<u32>,
    },
    Subscribe {
        client: usize,
        stale: bool,
        filters: Vec<(usize, u8, bool, bool, u8)>,
        id: Option<u32>,
    },
    Unsubscribe {
        client: usize,
        filters: Vec<usize>,
    },
    Publish {
        from: Option<usize>,
        packet_id: u16,
        topic: usize,
        qos: u8,
        retain: bool,
        expiry: Option<u32>,
        empty: bool,
    },
    Ack {
        client: usize,
        picks: Vec<usize>,
    },
    Received {
        client: usize,
        pick: usize,
    },
    Release {
        client: usize,
        packet_id: u16,
    },
    Tick {
        jump: Millis,
    },
    NodeDown {
        node: u64,
    },
    /// Time passes between commands.
    Wait(Millis),
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS.len();
    prop_oneof![
        3 => (
            client.clone(),
            1..4u64,
            prop_oneof![Just(0u32), Just(5), Just(u32::MAX)],
            any::<bool>(),
            1..4u16,
            0..4u32,
            prop::option::of((prop_oneof![Just(0u32), Just(3)], 0..TOPICS.len())),
        )
            .prop_map(|(client, node, expiry, clean_start, receive_maximum, max_queue, will)| {
                Op::Connect { client, node, expiry, clean_start, receive_maximum, max_queue, will }
            }),
        1 => (client.clone(), prop::bool::weighted(0.1), any::<bool>(),
              prop::option::of(prop_oneof![Just(0u32), Just(2)]))
            .prop_map(|(client, stale, publish_will, expiry)| {
                Op::Disconnect { client, stale, publish_will, expiry }
            }),
        4 => (client.clone(), prop::bool::weighted(0.1),
              vec((0..FILTERS.len(), 0..3u8, any::<bool>(), any::<bool>(), 0..3u8), 1..3),
              prop::option::of(1..3u32))
            .prop_map(|(client, stale, filters, id)| Op::Subscribe { client, stale, filters, id }),
        1 => (client.clone(), vec(0..FILTERS.len(), 1..3))
            .prop_map(|(client, filters)| Op::Unsubscribe { client, filters }),
        6 => (prop::option::of(client.clone()), 1..4u16, 0..TOPICS.len(), 0..3u8, any::<bool>(),
              prop::option::of(1..8u32), prop::bool::weighted(0.1))
            .prop_map(|(from, packet_id, topic, qos, retain, expiry, empty)| {
                Op::Publish { from, packet_id, topic, qos, retain, expiry, empty }
            }),
        4 => (client.clone(), vec(0..4usize, 1..3))
            .prop_map(|(client, picks)| Op::Ack { client, picks }),
        2 => (client.clone(), 0..4usize)
            .prop_map(|(client, pick)| Op::Received { client, pick }),
        1 => (client.clone(), 1..4u16)
            .prop_map(|(client, packet_id)| Op::Release { client, packet_id }),
        2 => prop_oneof![Just(0u64), Just(3_000), Just(3_600_000)].prop_map(|jump| Op::Tick { jump }),
        1 => (1..6u64).prop_map(|node| Op::NodeDown { node }),
        2 => (0..4_000u64).prop_map(Op::Wait),
    ]
}

/// Ops grouped into log entries of one to four commands.
fn history() -> impl Strategy<Value = Vec<Vec<Op>>> {
    vec(vec(op(), 1..5), 1..40)
}

/// Turns ops into commands, reading epochs and in-flight packet ids from the node's state
/// (equal on every store as long as the state machine is deterministic, which is what is
/// tested), and tracking time.
struct Driver {
    now: Millis,
}

impl Driver {
    fn new() -> Self {
        Driver { now: T0 }
    }

    fn epoch(reader: &BrokerReader, client: usize, stale: bool) -> u64 {
        let session = reader.session(CLIENTS[client]).unwrap();
        let epoch = session.map_or(0, |session| session.epoch);
        if stale {
            epoch.saturating_sub(1)
        } else {
            epoch
        }
    }

    /// The packet ids of a session's in-flight entries picked by index.
    fn in_flight(reader: &BrokerReader, client: usize, picks: &[usize]) -> Vec<u16> {
        let in_flight = reader.in_flight(CLIENTS[client]).unwrap();
        picks
            .iter()
            .map(|pick| match in_flight.len() {
                0 => 1,
                len => in_flight[pick % len].packet_id,
            })
            .collect()
    }

    /// Connects for the ops' clients that are offline, so that most client commands are
    /// current (a few are stale on purpose): c0 and c1 persistent, c2 transient.
    fn connections(reader: &BrokerReader, ops: &[Op]) -> Vec<Command> {
        let mut needed = std::collections::BTreeSet::new();
        for op in ops {
            if let Some(client) = op.acting_client() {
                let online = reader
                    .session(CLIENTS[client])
                    .unwrap()
                    .is_some_and(|session| session.owner.is_some());
                if !online {
                    needed.insert(client);
                }
            }
        }
        needed
            .into_iter()
            .map(|client| {
                let connect = Connect {
                    receive_maximum: 2,
                    max_queue: 3,
                    node: 1 + client as u64 % 3,
                    ..persistent(CLIENTS[client], 1)
                };
                Command::Connect(if client == 2 {
                    Connect {
                        session_expiry: 0,
                        ..connect
                    }
                } else {
                    connect
                })
            })
            .collect()
    }

    fn commands(&mut self, reader: &BrokerReader, ops: &[Op]) -> Vec<Command> {
        ops.iter()
            .filter_map(|op| self.command(reader, op))
            .collect()
    }

    fn command(&mut self, reader: &BrokerReader, op: &Op) -> Option<Command> {
        let now = self.now;
        let client_id = |client: usize| CLIENTS[client].to_owned();
        let epoch = |client: usize, stale: bool| Driver::epoch(reader, client, stale);
        Some(match op.clone() {
            Op::Connect {
                client,
                node,
                expiry,
                clean_start,
                receive_maximum,
                max_queue,
                will,
            } => Command::Connect(Connect {
                client_id: client_id(client),
                node,
                protocol: 5,
                clean_start,
                session_expiry: expiry,
                receive_maximum,
                max_queue,
                // Sometimes a byte limit that binds before the count does.
                max_queue_bytes: u64::from(max_queue % 2) * u64::from(max_queue) * 4,
                will: will.map(|(delay, topic)| WillMessage {
                    delay,
                    message: Message {
                        retain: delay == 0,
                        ..message(TOPICS[topic], "will", 1)
                    },
                }),
                now,
            }),
            Op::Disconnect {
                client,
                stale,
                publish_will,
                expiry,
            } => Command::Disconnect(Disconnect {
                client_id: client_id(client),
                epoch: epoch(client, stale),
                publish_will,
                session_expiry: expiry,
                now,
            }),
            Op::Subscribe {
                client,
                stale,
                filters,
                id,
            } => Command::Subscribe(Subscribe {
                client_id: client_id(client),
                epoch: epoch(client, stale),
                filters: filters
                    .into_iter()
                    .map(|(filter, qos, no_local, rap, handling)| {
                        let retain_handling = match handling {
                            0 => RetainHandling::SendAtSubscribe,
                            1 => RetainHandling::SendIfNewSubscription,
                            _ => RetainHandling::DoNotSend,
                        };
                        let shared = FILTERS[filter].starts_with("$share");
                        let options = SubscriptionOptions {
                            qos,
                            no_local: no_local && !shared,
                            retain_as_published: rap,
                            retain_handling,
                        };
                        (FILTERS[filter].to_owned(), options)
                    })
                    .collect(),
                subscription_id: id,
                now,
            }),
            Op::Unsubscribe { client, filters } => Command::Unsubscribe {
                client_id: client_id(client),
                epoch: epoch(client, false),
                filters: filters.into_iter().map(|f| FILTERS[f].to_owned()).collect(),
            },
            Op::Publish {
                from,
                packet_id,
                topic,
                qos,
                retain,
                expiry,
                empty,
            } => {
                let mut message = message(TOPICS[topic], "payload", qos);
                message.retain = retain;
                message.expiry_interval = expiry;
                if empty {
                    message.payload = Bytes::new();
                }
                Command::Publish(Publish {
                    from: from.map(|client| Publisher {
                        client_id: client_id(client),
                        epoch: epoch(client, false),
                    }),
                    packet_id: Some(packet_id),
                    message,
                    now,
                })
            }
            Op::Ack { client, picks } => Command::Ack {
                client_id: client_id(client),
                epoch: epoch(client, false),
                packet_ids: Driver::in_flight(reader, client, &picks),
            },
            Op::Received { client, pick } => Command::Received {
                client_id: client_id(client),
                epoch: epoch(client, false),
                packet_id: Driver::in_flight(reader, client, &[pick])[0],
            },
            Op::Release { client, packet_id } => Command::Release {
                client_id: client_id(client),
                epoch: epoch(client, false),
                packet_id,
            },
            Op::Tick { jump } => Command::Tick { now: now + jump },
            Op::NodeDown { node } => Command::NodeDown { node, now },
            Op::Wait(ms) => {
                self.now += ms;
                return None;
            }
        })
    }
}

impl Op {
    /// The client whose current connection this op acts through, if any.
    fn acting_client(&self) -> Option<usize> {
        match *self {
            Op::Disconnect {
                client,
                stale: false,
                ..
            }
            | Op::Subscribe {
                client,
                stale: false,
                ..
            }
            | Op::Unsubscribe { client, .. }
            | Op::Ack { client, .. }
            | Op::Received { client, .. }
            | Op::Release { client, .. }
            | Op::Publish {
                from: Some(client), ..
            } => Some(client),
            _ => None,
        }
    }
}

/// Applies every entry of `history` to `node` (with the connections it needs first, as
/// entries of their own), returning the outcomes.
async fn run(node: &mut Node, driver: &mut Driver, history: &[Vec<Op>]) -> Vec<Vec<Outcome>> {
    let mut all = Vec::new();
    for ops in history {
        let connections = Driver::connections(&node.reader(), ops);
        if !connections.is_empty() {
            all.push(node.apply(connections).await);
        }
        let commands = driver.commands(&node.reader(), ops);
        all.push(node.apply(commands).await);
    }
    all
}

fn decode<T: serde::de::DeserializeOwned>(raw: &[u8]) -> T {
    bincode::serde::decode_from_slice(raw, bincode::config::standard())
        .expect("decodes")
        .0
}

/// The state agrees with itself. Table prefixes as laid out in
/// `src/cluster/state/tables.rs`.
fn check_consistency(node: &Node) -> Result<(), TestCaseError> {
    const SESSIONS: u8 = 2;
    const SUBSCRIPTIONS: u8 = 4;
    const QUEUED: u8 = 6;
    const IN_FLIGHT: u8 = 7;
    const MESSAGES: u8 = 9;
    const MESSAGE_REFS: u8 = 10;
    const RETAINED: u8 = 12;
    const OWNERS: u8 = 16;
    let tables: BTreeMap<u8, Vec<Record>> = node.tables().into_iter().collect();
    let table = |prefix: u8| tables.get(&prefix).cloned().unwrap_or_default();

    // Every reference to a message is counted, and a message lives exactly as long as it
    // is referred to.
    let mut expected: BTreeMap<u64, u32> = BTreeMap::new();
    for (_, raw) in table(QUEUED).iter().chain(table(IN_FLIGHT).iter()) {
        let entry: QueueEntry = decode(raw);
        if let Some(id) = entry.message_id {
            *expected.entry(id).or_default() += 1;
        }
    }
    for (_, raw) in table(RETAINED) {
        *expected.entry(decode::<u64>(&raw)).or_default() += 1;
    }
    let reader = node.reader();
    for (id, count) in &expected {
        prop_assert_eq!(
            reader.message_refs(*id).unwrap(),
            Some(*count),
            "message {}",
            id
        );
        prop_assert!(reader.message(*id).unwrap().is_some());
    }
    prop_assert_eq!(table(MESSAGES).len(), expected.len());
    prop_assert_eq!(table(MESSAGE_REFS).len(), expected.len());

    // Queue counters match the entries; sessions, owners and the index match their tables.
    let sessions = reader.sessions().unwrap();
    for (client_id, session) in &sessions {
        let queue = reader.queue(client_id).unwrap().unwrap_or_default();
        prop_assert_eq!(
            queue.in_flight as usize,
            reader.in_flight(client_id).unwrap().len()
        );
        prop_assert_eq!(
            queue.queued as usize,
            reader.queued(client_id).unwrap().len()
        );
        if session.is_transient() {
            prop_assert!(
                session.owner.is_some(),
                "a transient session is never offline"
            );
        }
    }
    let online = sessions
        .iter()
        .filter(|(_, s): &&(String, SessionRecord)| s.owner.is_some());
    prop_assert_eq!(online.count(), table(OWNERS).len());
    prop_assert_eq!(
        table(SESSIONS).len() as u64,
        reader.session_count().unwrap()
    );
    prop_assert_eq!(table(SUBSCRIPTIONS).len(), node.sm.app().index().len());
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn two_stores_reach_the_same_state_and_outcomes(history in history(), restart_at in 0..40usize) {
        runtime().block_on(async {
            let a_dir = tempfile::tempdir().unwrap();
            let b_dir = tempfile::tempdir().unwrap();
            let mut a = Node::open(a_dir.path()).await;
            let mut b = Node::open(b_dir.path()).await;
            let (mut a_driver, mut b_driver) = (Driver::new(), Driver::new());
            let a_outcomes = run(&mut a, &mut a_driver, &history).await;
            // B restarts part-way: the index is rebuilt from the state it reopens.
            let split = restart_at.min(history.len());
            let mut b_outcomes = run(&mut b, &mut b_driver, &history[..split]).await;
            b.close();
            let mut b = Node::open(b_dir.path()).await;
            b_outcomes.extend(run(&mut b, &mut b_driver, &history[split..]).await);
            prop_assert_eq!(a_outcomes, b_outcomes);
            prop_assert_eq!(a.digest(), b.digest());
            check_consistency(&a)?;
            check_consistency(&b)
        })?;
    }

    #[test]
    fn a_snapshot_carries_the_state_to_another_store(history in history(), at in 0..40usize) {
        runtime().block_on(async {
            let a_dir = tempfile::tempdir().unwrap();
            let b_dir = tempfile::tempdir().unwrap();
            let mut a = Node::open(a_dir.path()).await;
            let mut b = Node::open(b_dir.path()).await;
            let mut driver = Driver::new();
            let split = at.min(history.len());
            run(&mut a, &mut driver, &history[..split]).await;

            let snapshot = a.sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
            let path = a_dir.path().join("snapshots").join(format!("{}.snap", snapshot.meta.snapshot_id));
            let bytes = tokio::fs::read(path).await.unwrap();
            let mut incoming = b.sm.begin_receiving_snapshot().await.unwrap();
            incoming.write_all(&bytes).await.unwrap();
            incoming.flush().await.unwrap();
            b.sm.install_snapshot(&snapshot.meta, incoming).await.unwrap();
            b.resume_after(&snapshot.meta).await;
            prop_assert_eq!(a.digest(), b.digest());

            // Both go on from the snapshot with the same commands (the same driver state).
            let mut b_driver = Driver { now: driver.now };
            let a_outcomes = run(&mut a, &mut driver, &history[split..]).await;
            let b_outcomes = run(&mut b, &mut b_driver, &history[split..]).await;
            prop_assert_eq!(a_outcomes, b_outcomes);
            prop_assert_eq!(a.digest(), b.digest());
            check_consistency(&b)
        })?;
    }
}

/// Found by `two_stores_reach_the_same_state_and_outcomes` (shrunk): a transient session
/// resumed by a Connect that gives it an expiry becomes persistent, with a window of one
/// and a queue of one; two publishes in one batch then reach it.
#[test]
fn a_transient_session_made_persistent_queues_what_it_is_sent() {
    let sub = |filter: usize| Op::Subscribe {
        client: 2,
        stale: false,
        filters: vec![(filter, 1, false, false, 0)],
        id: None,
    };
    let publish = |topic: usize| Op::Publish {
        from: None,
        packet_id: 1,
        topic,
        qos: 1,
        retain: false,
        expiry: None,
        empty: false,
    };
    let connect = Op::Connect {
        client: 2,
        node: 1,
        expiry: 5,
        clean_start: false,
        receive_maximum: 1,
        max_queue: 1,
        will: None,
    };
    let history = vec![
        vec![sub(4)],
        vec![sub(1)],
        vec![connect],
        vec![publish(0), publish(1)],
    ];
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node::open(dir.path()).await;
        let mut driver = Driver::new();
        run(&mut node, &mut driver, &history).await;
        check_consistency(&node).unwrap();
    });
}
