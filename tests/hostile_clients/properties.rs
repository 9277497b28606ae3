//! 5.0 property lists built to hurt: tens of thousands of user properties filling a packet
//! up to the maximum packet size (valid: passed through intact), property lengths that run
//! past the end of their packet or are over-long variable byte integers (Malformed, 0x81),
//! and properties that may appear once appearing twice (Protocol Error, 0x82: 5.0
//! §2.2.2.2 and table 2-4). A bad CONNECT gets a CONNACK with the reason and the close, a
//! bad packet after CONNECT a DISCONNECT with the reason and the close.

use raftmq::mqtt::{DEFAULT_MAX_PACKET_SIZE, Packet, Protocol, ReasonCode};

use crate::broker_support::{cluster, port_of};
use crate::raw::{
    Raw, RawConnect, field, frame, pid, prop, prop_u16, prop_u32, props, publish_bytes,
    user_property, varint,
};
use crate::unique;
use crate::witness::Witness;

/// The user properties of a PUBLISH to `topic` whose whole packet is just under the
/// default maximum packet size: `k00000`=`v…` pairs of 27 bytes each.
fn user_properties_filling_a_packet(topic: &str) -> Vec<(String, String)> {
    // Fixed header (at most 5), topic, packet id, property length (at most 4), payload "x",
    // and a margin.
    let overhead = 5 + 2 + topic.len() + 2 + 4 + 1 + 64;
    let count = (DEFAULT_MAX_PACKET_SIZE - overhead) / 27;
    (0..count)
        .map(|i| (format!("k{i:05}"), format!("v{:015}", i * 7)))
        .collect()
}

#[tokio::test]
async fn tens_of_thousands_of_user_properties_up_to_the_maximum_packet_size_pass_through() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("userprops");
    let witness = Witness::start(port_of(addr), &tag).await;
    let topic = format!("{tag}/big");
    let pairs = user_properties_filling_a_packet(&topic);

    // In CONNECT: accepted.
    let list: Vec<u8> = pairs
        .iter()
        .flat_map(|(k, v)| user_property(k.as_bytes(), v.as_bytes()))
        .collect();
    let mut connect = RawConnect::new(Protocol::V5, format!("{tag}-sub").as_bytes().to_vec());
    connect.properties = props(&list);
    let bytes = connect.bytes();
    assert!(
        bytes.len() <= DEFAULT_MAX_PACKET_SIZE,
        "{} bytes",
        bytes.len()
    );
    let mut sub = Raw::open(addr, Protocol::V5).await;
    sub.write(&bytes).await.expect("send the CONNECT");
    match sub.expect("CONNACK").await {
        Packet::ConnAck(ack) => assert_eq!(ack.reason, ReasonCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let granted = sub.subscribe(std::slice::from_ref(&topic)).await;
    assert_eq!(granted, [ReasonCode::GrantedQoS1]);

    // In PUBLISH: acknowledged and delivered with every property, in order.
    let mut publisher = Raw::connect(addr, Protocol::V5, &format!("{tag}-pub")).await;
    let bytes = publish_bytes(
        Protocol::V5,
        0b0010,
        topic.as_bytes(),
        1,
        &props(&list),
        b"x",
    );
    assert!(
        bytes.len() <= DEFAULT_MAX_PACKET_SIZE,
        "{} bytes",
        bytes.len()
    );
    assert!(
        bytes.len() > DEFAULT_MAX_PACKET_SIZE - 128,
        "{} bytes",
        bytes.len()
    );
    publisher.write(&bytes).await.expect("send the PUBLISH");
    match publisher.expect("PUBACK").await {
        Packet::PubAck(ack) => {
            assert_eq!((ack.packet_id, ack.reason), (pid(1), ReasonCode::Success))
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
    witness.served().await;
    let got = sub.expect_publish().await;
    assert_eq!(got.topic, topic);
    assert_eq!(got.payload.as_ref(), b"x");
    assert_eq!(got.properties.user_properties.len(), pairs.len());
    assert!(
        got.properties.user_properties == pairs,
        "the user properties arrive intact and in order"
    );
    sub.puback(got.packet_id.expect("QoS 1")).await;
    sub.ping().await;
    publisher.ping().await;
    witness.finish().await;
}

/// Sends `bytes` as the first packet and returns the reason of the CONNACK before the
/// close, if any.
async fn bad_connect(addr: &str, bytes: &[u8], why: &str) -> Option<ReasonCode> {
    let mut raw = Raw::open(addr, Protocol::V5).await;
    let _ = raw.write(bytes).await;
    raw.refused_connect(why).await
}

/// Connects a 5.0 client, sends `bytes` and returns the reason of the DISCONNECT before
/// the close, if any.
async fn bad_packet(addr: &str, client_id: &str, bytes: &[u8], why: &str) -> Option<ReasonCode> {
    let mut raw = Raw::connect(addr, Protocol::V5, client_id).await;
    let _ = raw.write(bytes).await;
    raw.end(why).await
}

/// The body of a 5.0 CONNECT up to its property section: protocol name, level 5, flags,
/// keep alive 60.
fn connect_head(flags: u8) -> Vec<u8> {
    [&field(b"MQTT")[..], &[5, flags, 0, 60]].concat()
}

#[tokio::test]
async fn a_property_length_past_the_end_of_its_packet_is_malformed() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("proplen");
    let witness = Witness::start(port_of(addr), &tag).await;
    let id = field(format!("{tag}-bad").as_bytes());
    let session_expiry = prop_u32(prop::SESSION_EXPIRY_INTERVAL, 10);

    let connects: [(&str, Vec<u8>); 5] = [
        (
            "CONNECT property length 200 in a packet of 30 bytes",
            frame(
                0x10,
                &[&connect_head(0x02)[..], &[200, 1], &session_expiry, &id].concat(),
            ),
        ),
        (
            "CONNECT property length 268,435,455",
            frame(
                0x10,
                &[&connect_head(0x02)[..], &[0xff, 0xff, 0xff, 0x7f], &id].concat(),
            ),
        ),
        (
            "CONNECT property length in five bytes",
            frame(
                0x10,
                &[
                    &connect_head(0x02)[..],
                    &[0xff, 0xff, 0xff, 0xff, 0x7f],
                    &id,
                ]
                .concat(),
            ),
        ),
        (
            "will property length past the end",
            frame(
                0x10,
                &[
                    &connect_head(0x06)[..],
                    &props(&[]),
                    &id,
                    &varint(1000),
                    &field(format!("{tag}/will").as_bytes()),
                    &field(b"w"),
                ]
                .concat(),
            ),
        ),
        (
            "CONNECT property list ending inside a user property",
            frame(
                0x10,
                &[
                    &connect_head(0x02)[..],
                    &varint(6),
                    &user_property(b"key", b"value")[..6],
                    &id,
                ]
                .concat(),
            ),
        ),
    ];
    for (why, bytes) in &connects {
        let reason = bad_connect(addr, bytes, why).await;
        assert_eq!(reason, Some(ReasonCode::MalformedPacket), "{why}");
    }
    witness.served().await;

    let topic = format!("{tag}/t");
    let publishes: [(&str, Vec<u8>); 2] = [
        (
            "PUBLISH property length past the end",
            publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), 1, &[100, 0x23], b""),
        ),
        (
            "PUBLISH property list ending inside a user property",
            publish_bytes(
                Protocol::V5,
                0b0010,
                topic.as_bytes(),
                1,
                &[&varint(8)[..], &user_property(b"key", b"value")[..8]].concat(),
                b"",
            ),
        ),
    ];
    for (i, (why, bytes)) in publishes.iter().enumerate() {
        let reason = bad_packet(addr, &format!("{tag}-p{i}"), bytes, why).await;
        assert_eq!(reason, Some(ReasonCode::MalformedPacket), "{why}");
    }
    witness.finish().await;
}

#[tokio::test]
async fn a_property_that_may_appear_once_appearing_twice_is_a_protocol_error() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("proptwice");
    let witness = Witness::start(port_of(addr), &tag).await;
    let id = format!("{tag}-bad");

    let twice = |property: Vec<u8>| props(&[&property[..], &property].concat());
    let mut connects = Vec::new();
    let mut connect = RawConnect::new(Protocol::V5, id.as_bytes().to_vec());
    connect.properties = twice(prop_u32(prop::SESSION_EXPIRY_INTERVAL, 10));
    connects.push(("two Session Expiry Intervals", connect.bytes()));
    connect.properties = twice(prop_u16(prop::RECEIVE_MAXIMUM, 10));
    connects.push(("two Receive Maximums", connect.bytes()));
    connect.properties = props(&[]);
    let will_topic = format!("{tag}/will");
    connect.will = Some((
        will_topic.as_bytes().to_vec(),
        b"w".to_vec(),
        twice(prop_u32(prop::WILL_DELAY_INTERVAL, 1)),
    ));
    connects.push(("two Will Delay Intervals", connect.bytes()));
    for (why, bytes) in &connects {
        let reason = bad_connect(addr, bytes, why).await;
        assert_eq!(reason, Some(ReasonCode::ProtocolError), "{why}");
    }
    witness.served().await;

    let topic = format!("{tag}/t");
    let publishes = [
        (
            "two Topic Aliases",
            twice(prop_u16(prop::TOPIC_ALIAS, 1)),
            ReasonCode::ProtocolError,
        ),
        (
            "two Message Expiry Intervals",
            twice(prop_u32(prop::MESSAGE_EXPIRY_INTERVAL, 60)),
            ReasonCode::ProtocolError,
        ),
        // The same user property twice is allowed (§3.3.2.3.7): the control case.
        (
            "two equal user properties",
            twice(user_property(b"k", b"v")),
            ReasonCode::Success,
        ),
    ];
    for (i, (why, properties, expected)) in publishes.into_iter().enumerate() {
        let bytes = publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), 1, &properties, b"");
        if expected == ReasonCode::Success {
            let mut raw = Raw::connect(addr, Protocol::V5, &format!("{tag}-p{i}")).await;
            raw.write(&bytes).await.expect("send the PUBLISH");
            match raw.expect("PUBACK").await {
                // No subscriber: 0x10 No matching subscribers, a success code.
                Packet::PubAck(ack) => assert!(!ack.reason.is_error(), "{why}: {ack:?}"),
                other => panic!("{why}: expected PUBACK, got {other:?}"),
            }
            continue;
        }
        let reason = bad_packet(addr, &format!("{tag}-p{i}"), &bytes, why).await;
        assert_eq!(reason, Some(expected), "{why}");
    }
    // A repeated property in a SUBSCRIBE (Subscription Identifier may appear once there).
    let subscribe = frame(
        0x82,
        &[
            &1u16.to_be_bytes()[..],
            &props(&[0x0b, 1, 0x0b, 2]),
            &field(format!("{tag}/f").as_bytes()),
            &[1],
        ]
        .concat(),
    );
    let reason = bad_packet(
        addr,
        &format!("{tag}-s"),
        &subscribe,
        "two subscription ids",
    )
    .await;
    assert_eq!(reason, Some(ReasonCode::ProtocolError));
    witness.finish().await;
}
