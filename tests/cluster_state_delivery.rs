//! The replicated state machine's delivery rules on the real store: inbound QoS 2
//! deduplication, outbound queues and packet ids, the queue limit, messages stored once,
//! shared subscriptions, message expiry. Routing and retained messages are in
//! `cluster_state_routing.rs`.

mod cluster_state_support;

use cluster_state_support::*;
use raftmq::cluster::command::{
    Command, Connect, Delivery, Disconnect, HandOver, Message, Outcome, ShareRef, Stage, Subscribe,
    Unfinished,
};

#[tokio::test]
async fn a_qos2_resend_after_reconnecting_to_another_node_is_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    subscriber(&mut node, persistent("s", 1), &[("a", options(2))]).await;
    let first = connect(&mut node, persistent("p", 1)).await;
    let (duplicate, matched, _) = published(
        node.one(client_publish("p", first, 7, message("a", "x", 2)))
            .await,
    );
    assert_eq!((duplicate, matched), (false, 1));

    // The publisher lost its connection before PUBREC and resends to another node.
    let second = connect(&mut node, persistent("p", 2)).await;
    let (duplicate, matched, deliveries) = published(
        node.one(client_publish("p", second, 7, message("a", "x", 2)))
            .await,
    );
    assert_eq!((duplicate, matched), (true, 0));
    assert!(deliveries.is_empty());
    assert_eq!(node.reader().in_flight("s").unwrap().len(), 1);
    assert!(node.reader().awaiting_release("p", 7).unwrap());

    let release = Command::Release {
        client_id: "p".into(),
        epoch: second,
        packet_id: 7,
    };
    assert_eq!(
        node.one(release.clone()).await,
        Outcome::Released { known: true }
    );
    assert_eq!(node.one(release).await, Outcome::Released { known: false });
    let (duplicate, _, _) = published(
        node.one(client_publish("p", second, 7, message("a", "y", 2)))
            .await,
    );
    assert!(!duplicate, "the id is free again after PUBREL");
    assert_eq!(node.reader().in_flight("s").unwrap().len(), 2);
}

#[tokio::test]
async fn qos1_publishes_are_not_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    subscriber(&mut node, persistent("s", 1), &[("a", options(2))]).await;
    let epoch = connect(&mut node, persistent("p", 1)).await;
    for _ in 0..2 {
        let (duplicate, _, _) = published(
            node.one(client_publish("p", epoch, 7, message("a", "x", 1)))
                .await,
        );
        assert!(!duplicate);
    }
    assert_eq!(node.reader().in_flight("s").unwrap().len(), 2);
}

#[tokio::test]
async fn packet_ids_are_assigned_in_order_and_the_same_after_a_reopen() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let mut a = Node::open(a_dir.path()).await;
    let mut b = Node::open(b_dir.path()).await;
    let mut epoch = 0;
    for node in [&mut a, &mut b] {
        epoch = subscriber(node, with_window("s", 3, 100), &[("a", options(1))]).await;
        let publishes = (0..5)
            .map(|i| broker_publish(message("a", &i.to_string(), 1)))
            .collect();
        node.apply(publishes).await;
        assert_eq!(
            packet_ids(&node.reader().in_flight("s").unwrap()),
            [1, 2, 3]
        );
    }
    a.close();
    let mut a = Node::open(a_dir.path()).await;
    let from_a = a.one(ack("s", epoch, &[2])).await;
    let from_b = b.one(ack("s", epoch, &[2])).await;
    assert_eq!(from_a, from_b);
    let Outcome::Acked {
        released,
        deliveries,
    } = from_a
    else {
        panic!("{from_a:?}")
    };
    let promoted = promoted_entries(&deliveries);
    assert_eq!(released, [2]);
    assert_eq!(
        packet_ids(&promoted),
        [4],
        "the cursor goes on; 2 is not reused at once"
    );
    assert_eq!(payload(&a, &promoted[0]), "3");
    assert_eq!(a.digest(), b.digest());
}

#[tokio::test]
async fn packet_ids_wrap_around_and_skip_ids_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = subscriber(&mut node, with_window("s", 2, 100), &[("a", options(1))]).await;
    // Id 1 stays in flight while the other slot cycles through every other id.
    node.one(broker_publish(message("a", "held", 1))).await;
    let mut next = 2u32;
    while next <= u32::from(u16::MAX) {
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        while batch.len() < 1000 && next <= u32::from(u16::MAX) {
            batch.push(broker_publish(message("a", "x", 1)));
            batch.push(ack("s", epoch, &[next as u16]));
            expected.push(next as u16);
            next += 1;
        }
        let outcomes = node.apply(batch).await;
        let released: Vec<u16> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Acked { released, .. } => Some(released[0]),
                _ => None,
            })
            .collect();
        assert_eq!(released, expected);
    }
    node.one(broker_publish(message("a", "after wrap", 1)))
        .await;
    let in_flight = node.reader().in_flight("s").unwrap();
    assert_eq!(packet_ids(&in_flight), [1, 2], "1 is skipped, 2 is reused");
    assert_eq!(payload(&node, &in_flight[1]), "after wrap");
}

#[tokio::test]
async fn acks_let_queued_entries_into_the_window_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = subscriber(&mut node, with_window("s", 2, 100), &[("a", options(1))]).await;
    let outcomes = node
        .apply(
            (0..5)
                .map(|i| broker_publish(message("a", &i.to_string(), 1)))
                .collect(),
        )
        .await;
    let queued_now: Vec<usize> = outcomes
        .into_iter()
        .map(|outcome| published(outcome).2.len())
        .collect();
    assert_eq!(
        queued_now,
        [1, 1, 0, 0, 0],
        "two fit the window, three wait"
    );
    assert_eq!(node.reader().queue("s").unwrap().unwrap().queued, 3);

    let Outcome::Acked { deliveries, .. } = node.one(ack("s", epoch, &[1])).await else {
        panic!()
    };
    let promoted = promoted_entries(&deliveries);
    assert_eq!(packet_ids(&promoted), [3]);
    assert_eq!(payload(&node, &promoted[0]), "2");
    let Outcome::Acked {
        released,
        deliveries,
    } = node.one(ack("s", epoch, &[2, 3, 99])).await
    else {
        panic!()
    };
    let promoted = promoted_entries(&deliveries);
    assert_eq!(released, [2, 3], "unknown ids are not released");
    assert_eq!(packet_ids(&promoted), [4, 5]);
    let payloads: Vec<_> = promoted.iter().map(|e| payload(&node, e)).collect();
    assert_eq!(payloads, ["3", "4"]);
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!((queue.in_flight, queue.queued), (2, 0));
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_waiting_entry_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = subscriber(&mut node, with_window("s", 1, 2), &[("a", options(1))]).await;
    node.one(disconnect("s", epoch, false, T0)).await;
    node.apply(
        (0..5)
            .map(|i| broker_publish(message("a", &i.to_string(), 1)))
            .collect(),
    )
    .await;
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!((queue.in_flight, queue.queued, queue.dropped), (1, 2, 2));
    let in_flight = node.reader().in_flight("s").unwrap();
    assert_eq!(
        payload(&node, &in_flight[0]),
        "0",
        "in flight is never dropped"
    );
    let waiting = waiting_payloads(&node, "s");
    assert_eq!(waiting, ["3", "4"]);
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        3,
        "dropped messages are deleted"
    );
}

#[tokio::test]
async fn a_queue_is_bounded_in_payload_bytes_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let connect = Connect {
        max_queue_bytes: 10,
        ..with_window("s", 1, 100)
    };
    let epoch = subscriber(&mut node, connect, &[("a", options(1))]).await;
    node.one(disconnect("s", epoch, false, T0)).await;
    // One in flight (not counted), then 4-byte payloads: two fit in 10 bytes, each later
    // one drops the oldest waiting; 11 bytes never fit and are dropped themselves.
    let payloads = ["w000", "q001", "q002", "q003", "q004", "elevenbytes"];
    node.apply(
        payloads
            .iter()
            .map(|p| broker_publish(message("a", p, 1)))
            .collect(),
    )
    .await;
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!(
        (
            queue.in_flight,
            queue.queued,
            queue.queued_bytes,
            queue.dropped
        ),
        (1, 2, 8, 3)
    );
    let totals = node.reader().queue_totals().unwrap();
    assert_eq!(
        (totals.queued, totals.queued_bytes, totals.dropped),
        (2, 8, 3),
        "what /metrics reports"
    );
    let waiting = waiting_payloads(&node, "s");
    assert_eq!(waiting, ["q003", "q004"]);
    // Acknowledging the one in flight promotes the oldest waiting: its bytes leave the count.
    let in_flight = node.reader().in_flight("s").unwrap();
    let epoch = subscriber(&mut node, with_window("s", 1, 100), &[]).await;
    node.one(ack("s", epoch, &[in_flight[0].packet_id])).await;
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!((queue.queued, queue.queued_bytes), (1, 4));
}

#[tokio::test]
async fn a_zero_queue_limit_keeps_only_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    subscriber(&mut node, with_window("s", 1, 0), &[("a", options(1))]).await;
    node.apply(
        (0..3)
            .map(|i| broker_publish(message("a", &i.to_string(), 1)))
            .collect(),
    )
    .await;
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!((queue.in_flight, queue.queued, queue.dropped), (1, 0, 2));
}

#[tokio::test]
async fn a_message_is_stored_once_and_deleted_with_its_last_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let mut epochs = Vec::new();
    for client in ["s1", "s2", "s3"] {
        epochs.push(subscriber(&mut node, persistent(client, 1), &[("a", options(1))]).await);
    }
    node.one(broker_publish(message("a", "x", 1))).await;
    assert_eq!(node.reader().stored_messages().unwrap(), 1);
    let id = node.reader().in_flight("s1").unwrap()[0]
        .message_id
        .unwrap();
    for client in ["s2", "s3"] {
        assert_eq!(
            node.reader().in_flight(client).unwrap()[0].message_id,
            Some(id)
        );
    }
    assert_eq!(node.reader().message_refs(id).unwrap(), Some(3));
    for (client, epoch) in ["s1", "s2"].into_iter().zip(&epochs) {
        node.one(ack(client, *epoch, &[1])).await;
    }
    assert_eq!(node.reader().message_refs(id).unwrap(), Some(1));
    node.one(ack("s3", epochs[2], &[1])).await;
    assert_eq!(node.reader().message(id).unwrap(), None);
    assert_eq!(node.reader().stored_messages().unwrap(), 0);
}

#[tokio::test]
async fn a_qos2_delivery_keeps_its_id_through_pubrec_and_is_resent_as_pubrel() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = subscriber(&mut node, persistent("s", 1), &[("a", options(2))]).await;
    node.apply(vec![
        broker_publish(message("a", "one", 2)),
        broker_publish(message("a", "two", 2)),
    ])
    .await;
    let received = Command::Received {
        client_id: "s".into(),
        epoch,
        packet_id: 1,
    };
    assert_eq!(node.one(received).await, Outcome::Received { known: true });
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        1,
        "PUBREC'd payload released"
    );

    // Failover: the session is resumed on another node, which resends both under the
    // same ids: PUBREL for the first, PUBLISH (DUP) for the second.
    let outcome = node.one(Command::Connect(persistent("s", 2))).await;
    let Outcome::Connected { resend, epoch, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let stages: Vec<_> = resend.iter().map(|e| (e.packet_id, e.stage)).collect();
    assert_eq!(stages, [(1, Stage::AwaitingComp), (2, Stage::AwaitingAck)]);
    assert_eq!(resend[0].message_id, None);
    assert_eq!(payload(&node, &resend[1]), "two");
    let Outcome::Acked { released, .. } = node.one(ack("s", epoch, &[1])).await else {
        panic!()
    };
    assert_eq!(released, [1]);
}

#[tokio::test]
async fn a_shared_group_delivers_each_message_to_one_online_member_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let group = [("$share/g/jobs", options(1))];
    subscriber(&mut node, persistent("m1", 1), &group).await;
    let away = subscriber(&mut node, persistent("m2", 1), &group).await;
    subscriber(&mut node, persistent("m3", 2), &group).await;
    node.one(disconnect("m2", away, false, T0)).await;

    let mut chosen = Vec::new();
    for i in 0..4 {
        let (_, matched, deliveries) = published(
            node.one(broker_publish(message("jobs", &i.to_string(), 1)))
                .await,
        );
        assert_eq!(matched, 1);
        let [Delivery::Queued { target, .. }] = deliveries.as_slice() else {
            panic!("{deliveries:?}")
        };
        chosen.push(target.client_id.clone());
    }
    assert_eq!(
        chosen,
        ["m1", "m3", "m1", "m3"],
        "the offline member is passed over"
    );
    assert!(node.reader().queued("m2").unwrap().is_empty());
    assert!(node.reader().in_flight("m2").unwrap().is_empty());
}

/// A transient member's unfinished messages (only its connection held them) go to
/// another member when that connection ends: never back to the member that left, never
/// once expired, and nowhere when no other member is left.
#[tokio::test]
async fn a_transient_members_unfinished_messages_go_to_another_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let group = [("$share/g/jobs", options(1))];
    let leaving = subscriber(&mut node, transient("leaving", 1), &group).await;
    subscriber(&mut node, transient("online", 2), &group).await;
    subscriber(&mut node, persistent("stored", 3), &group).await;
    let share = ShareRef {
        group: "g".into(),
        filter: "jobs".into(),
    };
    let unfinished = |payload: &str, expires_at| Unfinished {
        share: share.clone(),
        message: std::sync::Arc::new(message("jobs", payload, 1)),
        expires_at,
    };
    node.one(disconnect("leaving", leaving, false, T0)).await;
    let outcome = node
        .one(Command::HandOver(HandOver {
            client_id: "leaving".into(),
            messages: vec![
                unfinished("a", None),
                unfinished("b", None),
                unfinished("late", Some(T0 - 1)),
            ],
            now: T0,
        }))
        .await;
    let Outcome::HandedOver { handed, deliveries } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(handed, 2, "the expired one is dropped");
    // One to each remaining member in turn: directly to the transient one, into the
    // queue of the persistent one.
    let mut got: Vec<(String, String)> = deliveries
        .iter()
        .map(|d| match d {
            Delivery::Direct {
                target, message, ..
            } => (
                target.client_id.clone(),
                String::from_utf8(message.payload.to_vec()).unwrap(),
            ),
            Delivery::Queued { target, entry } => (target.client_id.clone(), payload(&node, entry)),
        })
        .collect();
    got.sort();
    let clients: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(clients, ["online", "stored"], "{got:?}");
    let mut payloads: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    payloads.sort();
    assert_eq!(payloads, ["a", "b"], "{got:?}");
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        1,
        "stored once, for the persistent member only"
    );

    // The group has no member but the one handing over: nothing is delivered.
    let dir2 = tempfile::tempdir().unwrap();
    let mut alone = Node::open(dir2.path()).await;
    subscriber(&mut alone, transient("leaving", 1), &group).await;
    let outcome = alone
        .one(Command::HandOver(HandOver {
            client_id: "leaving".into(),
            messages: vec![unfinished("a", None)],
            now: T0,
        }))
        .await;
    assert_eq!(
        outcome,
        Outcome::HandedOver {
            handed: 0,
            deliveries: Vec::new()
        }
    );
    assert_eq!(alone.reader().stored_messages().unwrap(), 0);
}

#[tokio::test]
async fn a_shared_group_with_no_member_online_queues_for_one_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let group = [("$share/g/jobs", options(1))];
    for client in ["m1", "m2"] {
        let epoch = subscriber(&mut node, persistent(client, 1), &group).await;
        node.one(disconnect(client, epoch, false, T0)).await;
    }
    node.apply(
        (0..4)
            .map(|i| broker_publish(message("jobs", &i.to_string(), 1)))
            .collect(),
    )
    .await;
    let held = |client| node.reader().in_flight(client).unwrap().len();
    assert_eq!((held("m1"), held("m2")), (2, 2));
}

#[tokio::test]
async fn a_member_leaving_hands_its_group_messages_to_another_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let group = [("$share/g/jobs", options(1))];
    // m1's window holds one message; the others wait in its queue.
    let m1 = subscriber(&mut node, with_window("m1", 1, 100), &group).await;
    node.one(broker_publish(message("jobs", "0", 1))).await;
    node.one(broker_publish(message("jobs", "1", 1))).await;
    assert_eq!(node.reader().queued("m1").unwrap().len(), 1);
    subscriber(&mut node, persistent("m2", 2), &group).await;

    // Unsubscribing moves the waiting entry; the in-flight one stays to be acknowledged.
    let outcome = node.one(unsubscribe("m1", m1, &["$share/g/jobs"])).await;
    let Outcome::Unsubscribed {
        reasons,
        deliveries,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(reasons, [0x00]);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(node.reader().in_flight("m1").unwrap().len(), 1);
    assert!(node.reader().queued("m1").unwrap().is_empty());
    let moved = node.reader().in_flight("m2").unwrap();
    assert_eq!(payload(&node, &moved[0]), "1");

    // A session that ends hands over its in-flight group entries too, here to a
    // transient member, which gets the message directly.
    let m3 = subscriber(&mut node, transient("m3", 3), &group).await;
    let outcome = node
        .one(Command::Connect(Connect {
            clean_start: true,
            ..persistent("m2", 2)
        }))
        .await;
    let Outcome::Connected { deliveries, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let [
        Delivery::Direct {
            target, message, ..
        },
    ] = deliveries.as_slice()
    else {
        panic!("{deliveries:?}")
    };
    assert_eq!((target.client_id.as_str(), target.epoch), ("m3", m3));
    assert_eq!(message.payload.as_ref(), b"1");
    assert!(node.reader().in_flight("m2").unwrap().is_empty());
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        1,
        "m1 still holds message 0"
    );
    assert_eq!(
        node.one(unsubscribe("m1", m1, &["$share/g/jobs"])).await,
        Outcome::Unsubscribed {
            reasons: vec![0x11],
            deliveries: Vec::new()
        }
    );
}

#[tokio::test]
async fn an_ended_members_entries_go_to_the_remaining_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let group = [("$share/g/jobs", options(1))];
    let m1 = subscriber(&mut node, persistent("m1", 1), &group).await;
    node.one(broker_publish(message("jobs", "x", 1))).await;
    subscriber(&mut node, persistent("m2", 2), &group).await;
    let outcome = node
        .one(Command::Disconnect(Disconnect {
            client_id: "m1".into(),
            epoch: m1,
            publish_will: false,
            session_expiry: Some(0),
            now: T0,
        }))
        .await;
    let Outcome::Disconnected { deliveries, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let [Delivery::Queued { target, entry }] = deliveries.as_slice() else {
        panic!("{deliveries:?}")
    };
    assert_eq!(target.client_id, "m2");
    assert_eq!(payload(&node, entry), "x");
    assert_eq!(node.reader().stored_messages().unwrap(), 1);
}

#[tokio::test]
async fn expired_messages_leave_queues_and_the_retained_store_on_a_tick() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let epoch = subscriber(&mut node, with_window("s", 1, 100), &[("a", options(1))]).await;
    node.one(disconnect("s", epoch, false, T0)).await;
    let expiring = |payload: &str, retain| Message {
        expiry_interval: Some(10),
        retain,
        ..message("a", payload, 1)
    };
    node.apply(vec![
        broker_publish(expiring("in flight", false)),
        broker_publish(expiring("waiting", false)),
        broker_publish(message("a", "lasting", 1)),
        broker_publish(expiring("retained", true)),
    ])
    .await;
    assert_eq!(node.reader().queue("s").unwrap().unwrap().queued, 3);
    let outcome = node.one(Command::Tick { now: T0 + 9_999 }).await;
    assert!(matches!(
        outcome,
        Outcome::Ticked {
            expired_messages: 0,
            ..
        }
    ));

    let outcome = node.one(Command::Tick { now: T0 + 10_000 }).await;
    let Outcome::Ticked {
        expired_messages, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        expired_messages, 3,
        "two waiting entries and one retained message"
    );
    let queue = node.reader().queue("s").unwrap().unwrap();
    assert_eq!((queue.in_flight, queue.queued, queue.expired), (1, 1, 2));
    assert!(node.reader().retained("#").unwrap().is_empty());
    let in_flight = node.reader().in_flight("s").unwrap();
    assert_eq!(
        payload(&node, &in_flight[0]),
        "in flight",
        "delivery had started"
    );
    assert_eq!(node.reader().stored_messages().unwrap(), 2);

    // A retained message that expired since the last tick is neither sent on subscribe
    // nor kept.
    node.one(broker_publish(Message {
        expiry_interval: Some(1),
        retain: true,
        ..message("b", "short", 1)
    }))
    .await;
    let short = node.reader().retained("b").unwrap();
    assert_eq!(
        short[0].1.expires_at,
        Some(T0 + 11_000),
        "absolute, from the clock"
    );
    let watcher = connect(&mut node, transient("w", 1)).await;
    node.one(Command::Tick { now: T0 + 10_500 }).await;
    assert_eq!(node.reader().stored_messages().unwrap(), 3);
    let outcome = node
        .one(Command::Subscribe(Subscribe {
            now: T0 + 11_500,
            ..match subscribe("w", watcher, &[("b", options(1))]) {
                Command::Subscribe(subscribe) => subscribe,
                _ => unreachable!(),
            }
        }))
        .await;
    assert!(matches!(outcome, Outcome::Subscribed { ref deliveries, .. } if deliveries.is_empty()));
    assert_eq!(node.reader().stored_messages().unwrap(), 2);
}

#[tokio::test]
async fn an_expired_waiting_entry_is_not_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let epoch = subscriber(&mut node, with_window("s", 1, 100), &[("a", options(1))]).await;
    node.one(disconnect("s", epoch, false, T0)).await;
    node.apply(vec![
        broker_publish(message("a", "first", 1)),
        broker_publish(Message {
            expiry_interval: Some(5),
            ..message("a", "short", 1)
        }),
        broker_publish(message("a", "last", 1)),
    ])
    .await;
    // No tick has swept it yet: the reconnect's larger window promotes past it.
    let outcome = node
        .one(Command::Connect(Connect {
            receive_maximum: 10,
            now: T0 + 6_000,
            ..persistent("s", 1)
        }))
        .await;
    let Outcome::Connected { resend, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let payloads: Vec<_> = resend.iter().map(|entry| payload(&node, entry)).collect();
    assert_eq!(payloads, ["first", "last"]);
    assert_eq!(node.reader().queue("s").unwrap().unwrap().expired, 1);
    assert_eq!(node.reader().stored_messages().unwrap(), 2);
}
