//! The replicated state machine's routing rules on the real store: retained messages
//! (set, replaced, deleted, retain handling, retain-as-published), no-local, overlapping
//! subscriptions, invalid filters and `$` topics.

mod cluster_state_support;

use cluster_state_support::*;
use raftmq::cluster::command::{Delivery, Message, Outcome, RetainHandling, SubscriptionOptions};

#[tokio::test]
async fn retained_messages_are_set_replaced_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let retained = |payload: &str| Message {
        retain: true,
        ..message("r/1", payload, 1)
    };
    node.one(broker_publish(retained("first"))).await;
    node.one(broker_publish(retained("second"))).await;
    let found = node.reader().retained("r/#").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.message.payload.as_ref(), b"second");
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        1,
        "the replaced one is gone"
    );

    // QoS 0 retained publishes reach the log for the retained store only.
    let outcome = node
        .one(broker_publish(Message {
            qos: 0,
            ..retained("zero")
        }))
        .await;
    assert_eq!(published(outcome).1, 0);
    assert_eq!(
        node.reader().retained("r/1").unwrap()[0]
            .1
            .message
            .payload
            .as_ref(),
        b"zero"
    );

    node.one(broker_publish(retained(""))).await;
    assert!(node.reader().retained("#").unwrap().is_empty());
    assert_eq!(node.reader().stored_messages().unwrap(), 0);
}

#[tokio::test]
async fn retained_messages_follow_retain_handling_max_qos_and_never_reach_shared() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    for topic in ["r/1", "r/2", "other"] {
        node.one(broker_publish(Message {
            retain: true,
            ..message(topic, topic, 2)
        }))
        .await;
    }
    let epoch = connect(&mut node, persistent("s", 1)).await;
    let retained_count = |outcome: Outcome| match outcome {
        Outcome::Subscribed { deliveries, .. } => deliveries.len(),
        other => panic!("{other:?}"),
    };
    let send_always = retain_handling(1, RetainHandling::SendAtSubscribe);
    let if_new = retain_handling(1, RetainHandling::SendIfNewSubscription);
    let never = retain_handling(1, RetainHandling::DoNotSend);
    assert_eq!(
        retained_count(
            node.one(subscribe("s", epoch, &[("r/+", send_always)]))
                .await
        ),
        2
    );
    assert_eq!(
        retained_count(
            node.one(subscribe("s", epoch, &[("r/+", send_always)]))
                .await
        ),
        2
    );
    assert_eq!(
        retained_count(node.one(subscribe("s", epoch, &[("r/#", if_new)])).await),
        2
    );
    assert_eq!(
        retained_count(node.one(subscribe("s", epoch, &[("r/#", if_new)])).await),
        0
    );
    assert_eq!(
        retained_count(node.one(subscribe("s", epoch, &[("#", never)])).await),
        0
    );
    assert_eq!(
        retained_count(
            node.one(subscribe("s", epoch, &[("$share/g/r/+", send_always)]))
                .await
        ),
        0
    );
    let entries = node.reader().in_flight("s").unwrap();
    assert_eq!(entries.len(), 6);
    assert!(entries.iter().all(|entry| entry.retain && entry.qos == 1));
}

#[tokio::test]
async fn no_local_subscriptions_skip_the_publishers_own_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let no_local = SubscriptionOptions {
        no_local: true,
        ..options(1)
    };
    let me = subscriber(&mut node, persistent("me", 1), &[("chat", no_local)]).await;
    subscriber(&mut node, persistent("you", 1), &[("chat", no_local)]).await;
    let (_, matched, deliveries) = published(
        node.one(client_publish("me", me, 1, message("chat", "hi", 1)))
            .await,
    );
    assert_eq!(matched, 1);
    let [Delivery::Queued { target, .. }] = deliveries.as_slice() else {
        panic!("{deliveries:?}")
    };
    assert_eq!(target.client_id, "you");
    assert!(node.reader().in_flight("me").unwrap().is_empty());
}

#[tokio::test]
async fn overlapping_subscriptions_give_one_delivery_with_the_highest_qos_and_all_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = connect(&mut node, persistent("s", 1)).await;
    node.one(subscribe_with_id(
        "s",
        epoch,
        &[("a/+", options(1))],
        Some(11),
    ))
    .await;
    node.one(subscribe_with_id(
        "s",
        epoch,
        &[("a/#", options(2))],
        Some(22),
    ))
    .await;
    node.one(subscribe("s", epoch, &[("#", options(0))])).await;
    let (_, matched, _) = published(node.one(broker_publish(message("a/b", "x", 2))).await);
    assert_eq!(matched, 1);
    let entries = node.reader().in_flight("s").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].qos, 2);
    assert_eq!(entries[0].subscription_ids, [11, 22]);
}

#[tokio::test]
async fn an_invalid_filter_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let filters = [
        ("a", options(1)),
        ("a/#/b", options(1)),
        ("$share/g", options(1)),
        ("b", options(2)),
    ];
    let v5 = connect(&mut node, persistent("v5", 1)).await;
    let v311 = connect(&mut node, transient("v311", 1)).await;
    for (client, epoch, failure) in [("v5", v5, 0x8F), ("v311", v311, 0x80)] {
        let outcome = node.one(subscribe(client, epoch, &filters)).await;
        let Outcome::Subscribed { reasons, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(reasons, [1, failure, failure, 2], "{client}");
        let subscribed: Vec<_> = node
            .reader()
            .subscriptions(client)
            .unwrap()
            .into_iter()
            .map(|(filter, _)| filter)
            .collect();
        assert_eq!(subscribed, ["a", "b"]);
    }
}

#[tokio::test]
async fn leading_wildcards_do_not_match_dollar_topics() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    subscriber(
        &mut node,
        persistent("wild", 1),
        &[("#", options(1)), ("+/x", options(1))],
    )
    .await;
    subscriber(&mut node, persistent("sys", 1), &[("$SYS/#", options(1))]).await;
    let (_, matched, deliveries) =
        published(node.one(broker_publish(message("$SYS/x", "x", 1))).await);
    assert_eq!(matched, 1);
    let [Delivery::Queued { target, .. }] = deliveries.as_slice() else {
        panic!("{deliveries:?}")
    };
    assert_eq!(target.client_id, "sys");
}

#[tokio::test]
async fn the_retain_flag_is_kept_only_for_retain_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let keep = SubscriptionOptions {
        retain_as_published: true,
        retain_handling: RetainHandling::DoNotSend,
        ..options(1)
    };
    let clear = SubscriptionOptions {
        retain_handling: RetainHandling::DoNotSend,
        ..options(1)
    };
    subscriber(&mut node, persistent("keep", 1), &[("a", keep)]).await;
    subscriber(&mut node, persistent("clear", 1), &[("a", clear)]).await;
    node.one(broker_publish(Message {
        retain: true,
        ..message("a", "x", 1)
    }))
    .await;
    assert!(node.reader().in_flight("keep").unwrap()[0].retain);
    assert!(!node.reader().in_flight("clear").unwrap()[0].retain);
}
