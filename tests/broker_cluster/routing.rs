//! Delivery between nodes: a subscriber on node 0 gets QoS 0, 1 and 2 messages published
//! on node 2, each publisher's in order; a message published on nodes 1 and 2 right after
//! the SUBACK from node 0 is delivered (the SUBACK comes after the subscription is in the
//! replicated state); QoS 0 travels between nodes.

use std::collections::BTreeMap;

use crate::client::{Client, Ev, Opts, Proto};
use crate::{barrier, expect_acks, serving_cluster, unique};

/// Messages sent by each publisher.
const PER_PUBLISHER: usize = 20;

/// One publisher per QoS on node 2, all at once, to a QoS 2 subscriber on node 0.
async fn each_qos_crosses_nodes_in_order(sub_proto: Proto, pub_proto: Proto, test: &str) {
    let cluster = serving_cluster().await;
    let prefix = unique(test);
    let (mut sub, _) = Client::connect(
        Opts::new(&format!("{prefix}-sub"), sub_proto),
        &cluster.nodes[0].mqtt_addr,
    )
    .await;
    sub.subscribe(&format!("{prefix}/#"), 2).await;
    let mut publishers = Vec::new();
    for qos in 0..=2 {
        let (publisher, _) = Client::connect(
            Opts::new(&format!("{prefix}-pub{qos}"), pub_proto),
            &cluster.nodes[2].mqtt_addr,
        )
        .await;
        publishers.push(publisher);
    }
    barrier(
        &mut publishers[1],
        &mut [&mut sub],
        &format!("{prefix}/barrier"),
    )
    .await;

    let mut flows = Vec::new();
    for (qos, publisher) in publishers.iter().enumerate() {
        let sender = publisher.sender();
        let topic = format!("{prefix}/qos{qos}");
        flows.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                sender.publish(&topic, qos as u8, i.to_string()).await;
            }
        }));
    }

    let mut received: BTreeMap<String, Vec<(String, u8)>> = BTreeMap::new();
    for _ in 0..3 * PER_PUBLISHER {
        let msg = sub.message().await;
        received
            .entry(msg.topic.clone())
            .or_default()
            .push((msg.text(), msg.qos));
    }
    for qos in 0..=2u8 {
        let topic = format!("{prefix}/qos{qos}");
        let expected: Vec<(String, u8)> =
            (0..PER_PUBLISHER).map(|i| (i.to_string(), qos)).collect();
        assert_eq!(
            received.remove(&topic).unwrap_or_default(),
            expected,
            "the QoS {qos} publisher's messages, in its order, at QoS {qos}"
        );
    }
    assert!(
        received.is_empty(),
        "messages on other topics: {received:?}"
    );
    for flow in flows {
        flow.await.expect("publishing task");
    }
    expect_acks(&mut publishers[1], PER_PUBLISHER).await;
    expect_acks(&mut publishers[2], PER_PUBLISHER).await;
}

#[tokio::test]
async fn qos_0_1_2_from_node_2_reach_node_0_in_order_v311_subscriber() {
    each_qos_crosses_nodes_in_order(Proto::V4, Proto::V5, "order-v4sub").await;
}

#[tokio::test]
async fn qos_0_1_2_from_node_2_reach_node_0_in_order_v5_subscriber() {
    each_qos_crosses_nodes_in_order(Proto::V5, Proto::V4, "order-v5sub").await;
}

/// DESIGN §3 rule 6: SUBACK is sent once the subscription is applied, so a message
/// published after it on any node is routed to it. Publishers on nodes 1 and 2 are
/// connected beforehand and publish the moment the SUBACK is seen.
#[tokio::test]
async fn a_message_published_right_after_suback_is_delivered_from_every_node() {
    let cluster = serving_cluster().await;
    let prefix = unique("suback");
    let (mut sub, _) = Client::connect(
        Opts::new(&format!("{prefix}-sub"), Proto::V5),
        &cluster.nodes[0].mqtt_addr,
    )
    .await;
    let (on_node1, _) = Client::connect(
        Opts::new(&format!("{prefix}-pub1"), Proto::V4),
        &cluster.nodes[1].mqtt_addr,
    )
    .await;
    let (on_node2, _) = Client::connect(
        Opts::new(&format!("{prefix}-pub2"), Proto::V5),
        &cluster.nodes[2].mqtt_addr,
    )
    .await;
    for round in 0..5 {
        let topic = format!("{prefix}/round{round}");
        sub.subscribe(&topic, 2).await;
        on_node1.publish(&topic, 1, format!("node1-{round}")).await;
        on_node2.publish(&topic, 2, format!("node2-{round}")).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            let msg = sub.message().await;
            assert_eq!(msg.topic, topic, "round {round}");
            got.push((msg.text(), msg.qos));
        }
        got.sort();
        assert_eq!(
            got,
            [(format!("node1-{round}"), 1), (format!("node2-{round}"), 2)],
            "round {round}: both messages published right after the SUBACK"
        );
    }
}

/// QoS 0 does not go through the log: the publishing node forwards it to the nodes that
/// hold matching subscribers. Subscribers on nodes 0 and 2, publisher on node 1.
#[tokio::test]
async fn qos0_travels_between_nodes() {
    let cluster = serving_cluster().await;
    let prefix = unique("qos0");
    let topic = format!("{prefix}/q0");
    let (mut on_node0, _) = Client::connect(
        Opts::new(&format!("{prefix}-sub0"), Proto::V4),
        &cluster.nodes[0].mqtt_addr,
    )
    .await;
    on_node0.subscribe(&topic, 0).await;
    let (mut on_node2, _) = Client::connect(
        Opts::new(&format!("{prefix}-sub2"), Proto::V5),
        &cluster.nodes[2].mqtt_addr,
    )
    .await;
    on_node2.subscribe(&topic, 1).await;
    let (mut publisher, _) = Client::connect(
        Opts::new(&format!("{prefix}-pub"), Proto::V5),
        &cluster.nodes[1].mqtt_addr,
    )
    .await;
    barrier(&mut publisher, &mut [&mut on_node0, &mut on_node2], &topic).await;

    for i in 0..PER_PUBLISHER {
        publisher.publish(&topic, 0, i.to_string()).await;
    }
    for subscriber in [&mut on_node0, &mut on_node2] {
        let mut got = Vec::new();
        for _ in 0..PER_PUBLISHER {
            match subscriber.next().await {
                Ev::Message(msg) => got.push((msg.text(), msg.qos)),
                other => panic!("{}: expected a message, got {other:?}", subscriber.id),
            }
        }
        let expected: Vec<(String, u8)> = (0..PER_PUBLISHER).map(|i| (i.to_string(), 0)).collect();
        assert_eq!(
            got, expected,
            "{}: the QoS 0 messages in order",
            subscriber.id
        );
    }
}
