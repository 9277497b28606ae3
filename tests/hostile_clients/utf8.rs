//! Ill-formed UTF-8 ([MQTT-1.5.4-1]) and U+0000 ([MQTT-1.5.4-2]) outside PUBLISH topics
//! (those are in `broker_malformed`): in the client id, the user name and the will topic of
//! a CONNECT and in a CONNECT user property (5.0: CONNACK 0x81 Malformed Packet, then the
//! close; 3.1.1: the close); in a user property of PUBLISH and SUBSCRIBE (5.0 only) and in
//! the topic filter of a SUBSCRIBE or UNSUBSCRIBE (5.0: DISCONNECT 0x81; 3.1.1: the close).
//! Nothing a refused PUBLISH carried reaches a subscriber.

use raftmq::mqtt::{Packet, Protocol, ReasonCode};

use crate::broker_support::{cluster, port_of};
use crate::raw::{Raw, RawConnect, field, frame, props, publish_bytes, user_property};
use crate::unique;
use crate::witness::Witness;

/// Byte strings that are not well-formed UTF-8, or hold U+0000.
const BAD_TEXT: [&[u8]; 4] = [
    b"\xff\xfe",
    b"ab\xc3",        // a lead byte without its continuation
    b"\xed\xa0\x80",  // a UTF-16 surrogate encoded in UTF-8
    b"nul\x00inside", // U+0000
];

fn expected(protocol: Protocol) -> Option<ReasonCode> {
    match protocol {
        Protocol::V311 => None,
        Protocol::V5 => Some(ReasonCode::MalformedPacket),
    }
}

#[tokio::test]
async fn ill_formed_utf8_in_connect_fields_is_refused() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("utf8connect");
    let witness = Witness::start(port_of(addr), &tag).await;
    let good_id = format!("{tag}-bad").into_bytes();
    for protocol in [Protocol::V311, Protocol::V5] {
        for bad in BAD_TEXT {
            let mut cases = Vec::new();
            cases.push(("client id", RawConnect::new(protocol, bad.to_vec())));
            let mut connect = RawConnect::new(protocol, good_id.clone());
            connect.username = Some(bad.to_vec());
            cases.push(("user name", connect));
            let mut connect = RawConnect::new(protocol, good_id.clone());
            let will_topic = [format!("{tag}/").as_bytes(), bad].concat();
            connect.will = Some((will_topic, b"w".to_vec(), props(&[])));
            cases.push(("will topic", connect));
            if protocol == Protocol::V5 {
                let mut connect = RawConnect::new(protocol, good_id.clone());
                connect.properties = props(&user_property(bad, b"v"));
                cases.push(("user property name", connect));
                let mut connect = RawConnect::new(protocol, good_id.clone());
                connect.properties = props(&user_property(b"k", bad));
                cases.push(("user property value", connect));
            }
            for (field_name, connect) in cases {
                let mut raw = Raw::open(addr, protocol).await;
                let _ = raw.write(&connect.bytes()).await;
                let why = format!("{protocol:?} {field_name} {bad:02x?}");
                assert_eq!(raw.refused_connect(&why).await, expected(protocol), "{why}");
            }
        }
        witness.served().await;
    }
    witness.finish().await;
}

#[tokio::test]
async fn ill_formed_utf8_after_connect_is_malformed() {
    let cluster = cluster(1).await;
    let addr = &cluster.nodes[0].mqtt_addr;
    let tag = unique("utf8after");
    let witness = Witness::start(port_of(addr), &tag).await;
    let mut sub = Raw::connect(addr, Protocol::V5, &format!("{tag}-sub")).await;
    sub.subscribe(&[format!("{tag}/t/#")]).await;
    let topic = format!("{tag}/t/x");
    let filter_prefix = format!("{tag}/f/");
    let mut round = 0;
    for bad in BAD_TEXT {
        let bad_filter = [filter_prefix.as_bytes(), bad].concat();
        let mut cases: Vec<(&str, Protocol, Vec<u8>)> = Vec::new();
        for protocol in [Protocol::V311, Protocol::V5] {
            let properties: &[u8] = if protocol == Protocol::V5 { &[0] } else { &[] };
            let subscribe = [
                &1u16.to_be_bytes()[..],
                properties,
                &field(&bad_filter),
                &[1],
            ];
            cases.push((
                "SUBSCRIBE filter",
                protocol,
                frame(0x82, &subscribe.concat()),
            ));
            let unsubscribe = [&1u16.to_be_bytes()[..], properties, &field(&bad_filter)];
            cases.push((
                "UNSUBSCRIBE filter",
                protocol,
                frame(0xa2, &unsubscribe.concat()),
            ));
        }
        let list = props(&user_property(bad, b"v"));
        let publish = publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), 1, &list, b"bad");
        cases.push(("PUBLISH user property name", Protocol::V5, publish));
        let list = props(&user_property(b"k", bad));
        let publish = publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), 1, &list, b"bad");
        cases.push(("PUBLISH user property value", Protocol::V5, publish));
        let subscribe = [
            &1u16.to_be_bytes()[..],
            &props(&user_property(b"k", bad)),
            &field(format!("{tag}/f/ok").as_bytes()),
            &[1],
        ];
        cases.push((
            "SUBSCRIBE user property",
            Protocol::V5,
            frame(0x82, &subscribe.concat()),
        ));
        for (what, protocol, bytes) in cases {
            round += 1;
            let mut raw = Raw::connect(addr, protocol, &format!("{tag}-{round}")).await;
            let _ = raw.write(&bytes).await;
            let why = format!("{protocol:?} {what} {bad:02x?}");
            assert_eq!(raw.end(&why).await, expected(protocol), "{why}");
        }
        witness.served().await;
    }
    // Nothing refused was delivered: the next message the subscriber gets is this one.
    let mut publisher = Raw::connect(addr, Protocol::V5, &format!("{tag}-pub")).await;
    let marker = publish_bytes(Protocol::V5, 0b0010, topic.as_bytes(), 1, &[0], b"good");
    publisher.write(&marker).await.expect("send the marker");
    assert!(matches!(
        publisher.expect("PUBACK").await,
        Packet::PubAck(_)
    ));
    let got = sub.expect_publish().await;
    assert_eq!(
        got.payload.as_ref(),
        b"good",
        "only the well-formed message"
    );
    witness.finish().await;
}
