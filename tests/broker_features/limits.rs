//! 5.0 Topic Aliases from the client (set, used, remapped, up to the announced maximum;
//! DISCONNECT 0x94 over it or at 0, 0x82 for an unknown alias or one carried over from an
//! earlier connection) and the Maximum Packet Size both ways (the broker sends no packet
//! larger than the client's; raftmq's `--max-packet-size` refuses larger inbound packets
//! with DISCONNECT 0x95 in 5.0 and a close in 3.1.1). Every refused client is checked not
//! to disturb a rumqttc client connected at the same time.
//!
//! The bare client sends the aliases (rumqttc refuses to publish to an empty topic).

use std::collections::BTreeMap;

use bytes::Bytes;
use raftmq::mqtt::{Packet, Protocol, Publish, QoS, ReasonCode};
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::broker_support::Broker;
use crate::client::{C5, QUIET, bystander, skip_on_mosquitto, still_served, v5_options};
use crate::raw::{Raw, connect_packet, encode, frame, publish, string_field};

fn aliased(topic: &str, alias: u16, payload: &str) -> Publish {
    let mut publish = publish(topic, QoS::AtLeastOnce, 0, payload.as_bytes());
    publish.properties.topic_alias = Some(alias);
    publish
}

#[tokio::test]
async fn v5_topic_aliases_from_the_client() {
    let broker = Broker::single().await;
    let addr = broker.addr(0);
    let mut sub = Raw::connect_simple(&addr, Protocol::V5, "ta-sub").await;
    sub.subscribe("ta/#", QoS::AtLeastOnce).await;
    let (mut publisher, ack) = Raw::connect(&addr, connect_packet(Protocol::V5, "ta-pub")).await;
    let maximum = ack
        .properties
        .topic_alias_maximum
        .expect("CONNACK announces a Topic Alias Maximum");
    assert!(maximum >= 1);
    if !broker.is_mosquitto() {
        assert_eq!(maximum, 64, "raftmq's default --topic-alias-maximum");
    }

    let sends = [
        aliased("ta/one", 1, "a"),
        aliased("", 1, "b"),
        aliased("ta/two", 1, "c"),
        aliased("", 1, "d"),
        aliased("ta/one", maximum, "e"),
        aliased("", maximum, "f"),
        aliased("", 1, "g"),
    ];
    for send in sends {
        let reason = publisher.publish_complete(send).await;
        assert_eq!(reason, ReasonCode::Success);
    }
    let mut by_topic: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..7 {
        let got = sub.expect_publish().await;
        assert_eq!(
            got.properties.topic_alias, None,
            "the subscriber allowed no topic aliases (Topic Alias Maximum 0)"
        );
        sub.puback(&got).await;
        let payload = String::from_utf8(got.payload.to_vec()).expect("UTF-8 payload");
        by_topic.entry(got.topic).or_default().push_str(&payload);
    }
    assert_eq!(
        by_topic,
        BTreeMap::from([
            ("ta/one".to_string(), "abef".to_string()),
            ("ta/two".to_string(), "cdg".to_string()),
        ]),
        "each alias stands for the topic last sent with it"
    );
}

/// Connects a fresh 5.0 client, sends the bytes `bad` and expects DISCONNECT `reason`; a
/// bystander keeps working.
async fn alias_refused(
    broker: &Broker,
    id: &str,
    setup: Option<Publish>,
    bad: Vec<u8>,
    reason: ReasonCode,
) {
    let mut bystander = bystander(broker, &format!("{id}-bystander"), "tab/#").await;
    let mut client = Raw::connect_simple(&broker.addr(0), Protocol::V5, id).await;
    if let Some(setup) = setup {
        client.publish_complete(setup).await;
    }
    client
        .write_bytes(&bad)
        .await
        .expect("send the bad PUBLISH");
    client.expect_disconnect(reason, id).await;
    still_served(&mut bystander, "tab/bystander").await;
}

#[tokio::test]
async fn v5_topic_alias_over_the_maximum_is_refused_with_0x94() {
    let broker = Broker::single().await;
    let (_, ack) = Raw::connect(&broker.addr(0), connect_packet(Protocol::V5, "tao-probe")).await;
    let maximum = ack
        .properties
        .topic_alias_maximum
        .expect("CONNACK announces a Topic Alias Maximum");
    let bad = encode(
        Protocol::V5,
        &Packet::Publish(aliased("tab/t", maximum + 1, "over")),
    );
    alias_refused(&broker, "tao", None, bad, ReasonCode::TopicAliasInvalid).await;
}

#[tokio::test]
async fn v5_topic_alias_zero_is_refused() {
    let broker = Broker::single().await;
    // §3.3.2.3.4 forbids alias 0 without naming the reason code: raftmq answers 0x94 (Topic
    // Alias invalid); Mosquitto 2.0.11 0x81 (Malformed Packet).
    let reason = if broker.is_mosquitto() {
        ReasonCode::MalformedPacket
    } else {
        ReasonCode::TopicAliasInvalid
    };
    // The codec will not encode alias 0: QoS 1 PUBLISH, topic, packet id 1, properties
    // (Topic Alias 0), payload.
    let mut body = string_field(b"tab/t");
    body.extend_from_slice(&[0, 1, 3, 0x23, 0, 0]);
    body.extend_from_slice(b"zero");
    alias_refused(&broker, "taz", None, frame(0x32, &body), reason).await;
}

#[tokio::test]
async fn v5_unknown_topic_alias_is_a_protocol_error() {
    let broker = Broker::single().await;
    let setup = aliased("tab/t", 1, "known");
    let bad = encode(Protocol::V5, &Packet::Publish(aliased("", 2, "unknown")));
    alias_refused(&broker, "tau", Some(setup), bad, ReasonCode::ProtocolError).await;
}

/// [MQTT-3.3.2-7]: aliases do not outlive their network connection.
#[tokio::test]
async fn v5_topic_aliases_do_not_carry_over_to_a_new_connection() {
    let broker = Broker::single().await;
    let mut connect = connect_packet(Protocol::V5, "tac");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(60);
    let (mut first, _) = Raw::connect(&broker.addr(0), connect.clone()).await;
    first.publish_complete(aliased("tab/t", 1, "set")).await;
    first.disconnect(ReasonCode::Success).await;
    let mut bystander = bystander(&broker, "tac-bystander", "tab/#").await;
    let (mut second, ack) = Raw::connect(&broker.addr(0), connect).await;
    assert!(
        ack.session_present,
        "the session goes on, its aliases do not"
    );
    second.send(&Packet::Publish(aliased("", 1, "stale"))).await;
    second
        .expect_disconnect(ReasonCode::ProtocolError, "alias of the earlier connection")
        .await;
    still_served(&mut bystander, "tab/bystander").await;
}

/// [MQTT-3.1.2-25]: the broker does not send a packet larger than the client's Maximum
/// Packet Size; it drops that message for that client and goes on with the next.
#[tokio::test]
async fn v5_client_maximum_packet_size_is_respected() {
    let broker = Broker::single().await;
    let addr = broker.addr(0);
    let mut connect = connect_packet(Protocol::V5, "cmps-sub");
    connect.properties.maximum_packet_size = Some(128);
    let (mut small, _) = Raw::connect(&addr, connect).await;
    small.subscribe("cmps/t", QoS::AtLeastOnce).await;
    let mut big = Raw::connect_simple(&addr, Protocol::V5, "cmps-big").await;
    big.subscribe("cmps/t", QoS::AtLeastOnce).await;

    let mut publisher = C5::connect(v5_options(&broker, "cmps-pub")).await;
    let large = vec![b'x'; 300];
    publisher
        .publish("cmps/t", Q5::AtLeastOnce, false, large.clone())
        .await;
    publisher
        .publish("cmps/t", Q5::AtLeastOnce, false, "small")
        .await;

    let got = small.expect_publish().await;
    assert_eq!(
        got.payload.as_ref(),
        b"small",
        "the 300-byte message exceeds the client's 128 bytes and is not sent"
    );
    small.puback(&got).await;
    small.expect_silence(QUIET, "nothing more").await;
    // A client without the limit gets both.
    let got = big.expect_publish().await;
    assert_eq!(got.payload, Bytes::from(large));
    big.puback(&got).await;
    assert_eq!(big.expect_publish().await.payload.as_ref(), b"small");
}

/// raftmq-only (`--max-packet-size 1024`; Mosquitto has no limit by default): the limit is
/// announced in CONNACK, a packet of that size passes, a larger one ends the connection —
/// DISCONNECT 0x95 in 5.0, a close in 3.1.1 — and other clients carry on.
#[tokio::test]
async fn server_maximum_packet_size_is_enforced() {
    let broker = Broker::single_with(&["--max-packet-size", "1024"]).await;
    if skip_on_mosquitto(&broker, "--max-packet-size is a raftmq setting") {
        return;
    }
    let addr = broker.addr(0);
    let mut bystander = bystander(&broker, "smps-bystander", "smps/#").await;
    for protocol in [Protocol::V5, Protocol::V311] {
        let id = format!("smps-{}", protocol.level());
        let (mut client, ack) = Raw::connect(&addr, connect_packet(protocol, &id)).await;
        if protocol == Protocol::V5 {
            assert_eq!(ack.properties.maximum_packet_size, Some(1024));
        }
        // Fixed header 3 bytes, topic 2 + 6, packet id 2, properties 1 (5.0 only).
        let overhead = 3 + 8 + 2 + usize::from(protocol == Protocol::V5);
        let fits = vec![b'f'; 1024 - overhead];
        let reason = client
            .publish_complete(publish("smps/t", QoS::AtLeastOnce, 0, &fits))
            .await;
        assert_eq!(reason, ReasonCode::Success, "exactly 1024 bytes fit");
        let over = vec![b'o'; 1025 - overhead];
        client
            .send(&Packet::Publish(publish(
                "smps/t",
                QoS::AtLeastOnce,
                9,
                &over,
            )))
            .await;
        let got = client.expect_closed("a packet of 1025 bytes").await;
        match protocol {
            Protocol::V5 => assert_eq!(got, Some(ReasonCode::PacketTooLarge)),
            Protocol::V311 => assert_eq!(got, None, "3.1.1 has no DISCONNECT from the server"),
        }
    }
    // The two packets that fitted reach the bystander; the ones over the limit do not.
    for _ in 0..2 {
        let got = bystander.next_publish().await;
        assert!(
            got.payload.iter().all(|&b| b == b'f'),
            "only packets within the limit"
        );
    }
    bystander
        .expect_no_publish(QUIET, "the refused packets were not published")
        .await;
    still_served(&mut bystander, "smps/bystander").await;
}
