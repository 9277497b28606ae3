//! Sessions that move between nodes: a persistent subscriber leaves node 0, QoS 1 and 2
//! messages are published on node 2 while it is away, and it resumes on node 1 with
//! session present and every message, in publish order; a CONNECT with a connected client's
//! id on another node takes its session over, and the old connection is closed (5.0: with
//! DISCONNECT 0x8E, Session taken over).

use std::time::Duration;

use raftmq::mqtt::{Packet, ReasonCode};

use crate::client::{Client, EVENT_TIMEOUT, Ev, Opts, Proto};
use crate::raw::{RawV5, Read};
use crate::{expect_acks, serving_cluster, unique};

/// Messages published while the subscriber is away, alternately QoS 1 and QoS 2.
const AWAY: usize = 20;

async fn persistent_session_resumes_on_another_node(proto: Proto, pub_proto: Proto, test: &str) {
    let cluster = serving_cluster().await;
    let prefix = unique(test);
    let id = format!("{prefix}-persistent");
    let topic = format!("{prefix}/t");

    let (mut sub, present) = Client::connect(
        Opts::new(&id, proto).persistent(),
        &cluster.nodes[0].mqtt_addr,
    )
    .await;
    assert!(
        !present,
        "a client id never used before got session present"
    );
    sub.subscribe(&topic, 2).await;
    sub.disconnect().await;

    let (mut publisher, _) = Client::connect(
        Opts::new(&format!("{prefix}-pub"), pub_proto),
        &cluster.nodes[2].mqtt_addr,
    )
    .await;
    let qos_of = |i: usize| 1 + (i % 2) as u8;
    for i in 0..AWAY {
        publisher.publish(&topic, qos_of(i), format!("m{i}")).await;
    }
    // Each PUBACK / PUBCOMP comes once the message is in the session's queue.
    expect_acks(&mut publisher, AWAY).await;

    let (mut resumed, present) = Client::connect(
        Opts::new(&id, proto).persistent(),
        &cluster.nodes[1].mqtt_addr,
    )
    .await;
    assert!(present, "{proto:?}: the session was not present on node 1");
    for i in 0..AWAY {
        let msg = resumed.message().await;
        assert_eq!(
            (msg.topic.as_str(), msg.text(), msg.qos),
            (topic.as_str(), format!("m{i}"), qos_of(i)),
            "{proto:?}: message {i} of the session, in publish order"
        );
    }
    // Nothing else was queued: the next message is one published now.
    publisher.publish(&topic, 1, "marker").await;
    let msg = resumed.message().await;
    assert_eq!(msg.text(), "marker", "{proto:?}: after the queued messages");
}

#[tokio::test]
async fn persistent_session_resumes_on_another_node_v311() {
    persistent_session_resumes_on_another_node(Proto::V4, Proto::V5, "resume-v4").await;
}

#[tokio::test]
async fn persistent_session_resumes_on_another_node_v5() {
    persistent_session_resumes_on_another_node(Proto::V5, Proto::V4, "resume-v5").await;
}

/// The new connection works: a message to itself comes back.
async fn round_trip(client: &mut Client, topic: &str) {
    client.subscribe(topic, 1).await;
    client.publish(topic, 1, "still here").await;
    let (mut acked, mut echoed) = (false, false);
    while !(acked && echoed) {
        match client.next().await {
            Ev::PubAck { ok: true, .. } => acked = true,
            Ev::Message(msg) if msg.text() == "still here" => echoed = true,
            other => panic!("{}: unexpected {other:?}", client.id),
        }
    }
}

#[tokio::test]
async fn session_takeover_across_nodes() {
    let cluster = serving_cluster().await;
    let prefix = unique("takeover");

    // 5.0: the old connection is told why; a bare connection reads exactly what was sent.
    let id = format!("{prefix}-v5");
    let (mut old, connack) = RawV5::connect(&cluster.nodes[0].mqtt_addr, &id).await;
    assert_eq!(connack.reason, ReasonCode::Success, "first connection");
    let (mut new, _) =
        Client::connect(Opts::new(&id, Proto::V5), &cluster.nodes[1].mqtt_addr).await;
    match old.read(EVENT_TIMEOUT).await {
        Read::Packet(packet) => match *packet {
            Packet::Disconnect(d) => assert_eq!(
                d.reason,
                ReasonCode::SessionTakenOver,
                "reason of the DISCONNECT to the old connection"
            ),
            other => panic!("old 5.0 connection: expected DISCONNECT, got {other:?}"),
        },
        other => panic!("old 5.0 connection: expected DISCONNECT 0x8E, got {other:?}"),
    }
    match old.read(Duration::from_secs(5)).await {
        Read::Closed => {}
        other => panic!("old 5.0 connection still open after its DISCONNECT: {other:?}"),
    }
    round_trip(&mut new, &format!("{prefix}/v5")).await;

    // 3.1.1 has no server DISCONNECT: the old connection is closed.
    let id = format!("{prefix}-v4");
    let (mut old, _) =
        Client::connect(Opts::new(&id, Proto::V4), &cluster.nodes[0].mqtt_addr).await;
    let (mut new, _) =
        Client::connect(Opts::new(&id, Proto::V4), &cluster.nodes[2].mqtt_addr).await;
    match old.next().await {
        Ev::Lost(_) => {}
        other => panic!("old 3.1.1 connection: expected it closed, got {other:?}"),
    }
    round_trip(&mut new, &format!("{prefix}/v4")).await;
}
