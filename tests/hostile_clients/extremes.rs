//! Sizes at the edge of what the protocol can say: one SUBSCRIBE with 10,000 filters (one
//! SUBACK code each; one UNSUBSCRIBE takes them all back), and topics and filters of
//! about 32,000 levels, the most a 65,535-byte string holds (matched, delivered once to
//! each subscriber, unsubscribed; a node whose subscription index recursed per level
//! would overflow its stack here).

use raftmq::mqtt::{Packet, PacketId, Properties, Protocol, ReasonCode, Unsubscribe};

use crate::broker_support::{cluster_with, port_of};
use crate::raw::{Raw, pid, publish_bytes};
use crate::unique;
use crate::witness::Witness;

/// Publishes a QoS 1 message with packet id `id` and returns the PUBACK's reason.
async fn publish(publisher: &mut Raw, topic: &str, id: u16, payload: &[u8]) -> ReasonCode {
    let bytes = publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), id, &[0], payload);
    publisher.write(&bytes).await.expect("publish");
    match publisher.expect("PUBACK").await {
        Packet::PubAck(ack) if ack.packet_id == pid(id) => ack.reason,
        other => panic!("expected PUBACK {id}, got {other:?}"),
    }
}

/// Unsubscribes from `filters` with packet id `id`; the UNSUBACK's reasons.
async fn unsubscribe(raw: &mut Raw, id: PacketId, filters: &[String]) -> Vec<ReasonCode> {
    raw.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: id,
        filters: filters.to_vec(),
        properties: Properties::default(),
    }))
    .await;
    match raw.expect("UNSUBACK").await {
        Packet::UnsubAck(ack) if ack.packet_id == id => ack.reasons,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// A node whose topic limits (1,024 bytes, 32 levels) and subscription limit (1,000 per
/// session) are lifted to the protocol's own.
async fn without_limits() -> raftmq::local_cluster::LocalCluster {
    cluster_with(
        1,
        &[
            "--max-topic-len",
            "65535",
            "--max-topic-levels",
            "65535",
            "--max-subscriptions",
            "0",
        ],
    )
    .await
}

#[tokio::test]
async fn ten_thousand_filters_in_one_subscribe() {
    let cluster = without_limits().await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("manyfilters");
    let witness = Witness::start(port_of(addr), &tag).await;
    let filters: Vec<String> = (0..10_000).map(|i| format!("{tag}/f/{i}")).collect();
    let mut sub = Raw::connect(addr, Protocol::V5, &format!("{tag}-sub")).await;
    let granted = sub.subscribe(&filters).await;
    assert_eq!(granted.len(), filters.len(), "one SUBACK code per filter");
    assert!(granted.iter().all(|r| *r == ReasonCode::GrantedQoS1));
    witness.served().await;

    let mut publisher = Raw::connect(addr, Protocol::V5, &format!("{tag}-pub")).await;
    for (id, i) in [(1, 0), (2, 7_777), (3, 9_999)] {
        let topic = &filters[i];
        assert_eq!(
            publish(&mut publisher, topic, id, b"x").await,
            ReasonCode::Success
        );
        let got = sub.expect_publish().await;
        assert_eq!(&got.topic, topic);
        sub.puback(got.packet_id.expect("QoS 1")).await;
    }
    let reasons = unsubscribe(&mut sub, pid(2), &filters).await;
    assert_eq!(reasons.len(), filters.len());
    assert!(reasons.iter().all(|r| *r == ReasonCode::Success));
    assert_eq!(
        publish(&mut publisher, &filters[5], 4, b"x").await,
        ReasonCode::NoMatchingSubscribers
    );
    sub.ping().await;
    witness.finish().await;
}

#[tokio::test]
async fn topics_and_filters_of_32000_levels() {
    let cluster = without_limits().await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("deep");
    let witness = Witness::start(port_of(addr), &tag).await;
    // "{tag}/d/a/…/a" and "{tag}/d/+/…/+": as many levels as 65,535 bytes hold.
    let base = format!("{tag}/d");
    let levels = (u16::MAX as usize - base.len()) / 2;
    let topic = format!("{base}{}", "/a".repeat(levels));
    // One level shorter: matched only by the multi-level wildcards.
    let shorter = topic[..topic.len() - 2].to_string();
    // (filter, whether it matches `shorter`)
    let filters = [
        (topic.clone(), false),
        (format!("{base}{}", "/+".repeat(levels)), false),
        (format!("{shorter}/#"), true),
        (format!("{base}/#"), true),
    ];
    let mut subscribers = Vec::new();
    for (i, (filter, _)) in filters.iter().enumerate() {
        assert!(filter.len() <= u16::MAX as usize);
        let mut sub = Raw::connect(addr, Protocol::V5, &format!("{tag}-sub{i}")).await;
        let granted = sub.subscribe(std::slice::from_ref(filter)).await;
        assert_eq!(granted, [ReasonCode::GrantedQoS1], "filter {i}");
        subscribers.push(sub);
    }
    witness.served().await;

    let mut publisher = Raw::connect(addr, Protocol::V5, &format!("{tag}-pub")).await;
    assert_eq!(
        publish(&mut publisher, &topic, 1, b"deep").await,
        ReasonCode::Success
    );
    assert_eq!(
        publish(&mut publisher, &shorter, 2, b"shorter").await,
        ReasonCode::Success
    );
    for (i, sub) in subscribers.iter_mut().enumerate() {
        let mut expected = vec![(topic.as_str(), &b"deep"[..])];
        if filters[i].1 {
            expected.push((shorter.as_str(), b"shorter"));
        }
        for (want_topic, want_payload) in expected {
            let got = sub.expect_publish().await;
            assert!(got.topic == want_topic, "filter {i}: the topic, whole");
            assert_eq!(got.payload.as_ref(), want_payload, "filter {i}");
            sub.puback(got.packet_id.expect("QoS 1")).await;
        }
        // Nothing else came first (a copy, or "shorter" where it does not match).
        sub.ping().await;
        let reasons = unsubscribe(sub, pid(2), std::slice::from_ref(&filters[i].0)).await;
        assert_eq!(reasons, [ReasonCode::Success], "filter {i}");
    }
    assert_eq!(
        publish(&mut publisher, &topic, 3, b"none").await,
        ReasonCode::NoMatchingSubscribers
    );
    witness.finish().await;
}
