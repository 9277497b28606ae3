//! Protocol violations, each by a bare client while a well-behaved rumqttc client is
//! connected to the same broker and must keep being served: a packet before CONNECT, a
//! second CONNECT, PUBREL for an unknown packet identifier (5.0: PUBCOMP 0x92, the
//! connection stays), a wildcard in a PUBLISH topic, an invalid SUBSCRIBE filter. In 5.0
//! the broker says why in a DISCONNECT before closing; in 3.1.1 it just closes.
//! Oversize packets are in `limits`, malformed bytes in the `broker_malformed` target.

use raftmq::mqtt::{Ack, Packet, Properties, Protocol, QoS, ReasonCode};

use crate::broker_support::Broker;
use crate::client::{QUIET, WAIT, bystander, still_served};
use crate::raw::{Raw, Recv, connect_packet, encode, frame, pid, string_field, sub_options};

#[tokio::test]
async fn a_packet_before_connect_closes_the_connection() {
    let broker = Broker::single().await;
    let addr = broker.addr(0);
    let mut by = bystander(&broker, "pbc-bystander", "pbc/#").await;
    let mut first_packets = vec![
        ("PINGREQ", vec![0xc0, 0x00]),
        (
            "PUBLISH",
            frame(0x30, &[&string_field(b"pbc/t")[..], b"early"].concat()),
        ),
    ];
    // SUBSCRIBE, packet id 1, filter pbc/t at QoS 0 (3.1.1 form: no properties).
    first_packets.push((
        "SUBSCRIBE",
        frame(0x82, &[&[0, 1][..], &string_field(b"pbc/t"), &[0]].concat()),
    ));
    for (name, bytes) in first_packets {
        let mut raw = Raw::open(&addr, Protocol::V5).await;
        raw.write_bytes(&bytes)
            .await
            .expect("send the first packet");
        let reason = raw.expect_closed(&format!("{name} before CONNECT")).await;
        assert_eq!(reason, None, "no protocol yet: nothing but the close");
    }
    still_served(&mut by, "pbc/bystander").await;
}

async fn second_connect(protocol: Protocol, broker: &Broker) -> Option<ReasonCode> {
    let id = format!("sc{}", protocol.level());
    let mut raw = Raw::connect_simple(&broker.addr(0), protocol, &id).await;
    raw.send(&Packet::Connect(Box::new(connect_packet(protocol, &id))))
        .await;
    raw.expect_closed("a second CONNECT").await
}

#[tokio::test]
async fn a_second_connect_is_a_protocol_error() {
    let broker = Broker::single().await;
    let mut by = bystander(&broker, "sc-bystander", "sc/#").await;
    assert_eq!(second_connect(Protocol::V311, &broker).await, None);
    let reason = second_connect(Protocol::V5, &broker).await;
    // [MQTT-3.1.0-2] and §4.13: close, after a DISCONNECT 0x82 that the server SHOULD send.
    // Mosquitto 2.0.11 closes without it.
    if !broker.is_mosquitto() {
        assert_eq!(reason, Some(ReasonCode::ProtocolError));
    }
    still_served(&mut by, "sc/bystander").await;
}

/// 5.0 §4.3.3: a PUBREL for an identifier the receiver does not hold is answered with
/// PUBCOMP 0x92 (Packet Identifier not found); 3.1.1 answers every PUBREL with PUBCOMP.
/// Either way the connection goes on.
#[tokio::test]
async fn pubrel_for_an_unknown_packet_id_gets_pubcomp() {
    let broker = Broker::single().await;
    for protocol in [Protocol::V311, Protocol::V5] {
        let id = format!("pru{}", protocol.level());
        let mut raw = Raw::connect_simple(&broker.addr(0), protocol, &id).await;
        raw.send(&Packet::PubRel(Ack::new(pid(9)))).await;
        let comp = match raw.expect_packet("PUBCOMP").await {
            Packet::PubComp(comp) => comp,
            other => panic!("expected PUBCOMP, got {other:?}"),
        };
        assert_eq!(comp.packet_id, pid(9));
        // Mosquitto 2.0.11 answers Success (remaining length 2) in 5.0 as well.
        if protocol == Protocol::V5 && !broker.is_mosquitto() {
            assert_eq!(comp.reason, ReasonCode::PacketIdentifierNotFound);
        }
        raw.ping().await;
    }
}

/// A PUBLISH whose topic holds a wildcard ([MQTT-3.3.2-2]), built by hand (the codec
/// will not encode it): QoS 0, then the 5.0 empty property length.
fn wildcard_publish(protocol: Protocol, topic: &str) -> Vec<u8> {
    let mut body = string_field(topic.as_bytes());
    if protocol == Protocol::V5 {
        body.push(0);
    }
    body.extend_from_slice(b"wild");
    frame(0x30, &body)
}

#[tokio::test]
async fn a_wildcard_in_a_publish_topic_ends_the_connection() {
    let broker = Broker::single().await;
    let mut by = bystander(&broker, "wt-bystander", "wt/#").await;
    for protocol in [Protocol::V311, Protocol::V5] {
        for topic in ["wt/+", "wt/#"] {
            let id = format!("wt{}", protocol.level());
            let mut raw = Raw::connect_simple(&broker.addr(0), protocol, &id).await;
            raw.write_bytes(&wildcard_publish(protocol, topic))
                .await
                .expect("send the PUBLISH");
            let reason = raw.expect_closed(&format!("PUBLISH to {topic}")).await;
            match protocol {
                Protocol::V311 => assert_eq!(reason, None),
                // 0x90 Topic Name invalid; Mosquitto 2.0.11 sends 0x82 Protocol Error.
                Protocol::V5 if broker.is_mosquitto() => {
                    assert_eq!(reason, Some(ReasonCode::ProtocolError))
                }
                Protocol::V5 => assert_eq!(reason, Some(ReasonCode::TopicNameInvalid)),
            }
        }
    }
    // Nothing of the bad clients was published.
    still_served(&mut by, "wt/bystander").await;
    by.expect_no_publish(QUIET, "no wildcard message").await;
}

/// An invalid filter fails (SUBACK 0x80 in 3.1.1, 0x8F in 5.0), and the valid filter in
/// the same SUBSCRIBE is granted; closing the connection instead is also allowed (in 5.0
/// after a DISCONNECT with an error reason), which is what Mosquitto 2.0.11 does.
#[tokio::test]
async fn an_invalid_subscribe_filter_is_refused() {
    let broker = Broker::single().await;
    let mut by = bystander(&broker, "isf-bystander", "isf/#").await;
    for protocol in [Protocol::V311, Protocol::V5] {
        let mut bad_filters = vec!["isf/#/b", "isf/a+", "#/isf"];
        // A share name without a filter ([MQTT-4.8.2-2]); 3.1.1 has no shared
        // subscriptions, so there this is an ordinary filter. Mosquitto 2.0.11 grants it in
        // 5.0 too, as an ordinary filter.
        if protocol == Protocol::V5 && !broker.is_mosquitto() {
            bad_filters.push("$share/g");
        }
        for bad in bad_filters {
            let id = format!("isf{}", protocol.level());
            let mut raw = Raw::connect_simple(&broker.addr(0), protocol, &id).await;
            let subscribe = raftmq::mqtt::Subscribe {
                packet_id: pid(1),
                filters: vec![
                    ("isf/ok".to_string(), sub_options(QoS::AtLeastOnce)),
                    (bad.to_string(), sub_options(QoS::AtLeastOnce)),
                ],
                properties: Properties::default(),
            };
            raw.write_bytes(&encode(protocol, &Packet::Subscribe(subscribe)))
                .await
                .expect("send the SUBSCRIBE");
            match raw.recv(WAIT).await {
                Recv::Packet(Packet::SubAck(ack)) => {
                    assert_eq!(ack.reasons.len(), 2);
                    assert_eq!(ack.reasons[0], ReasonCode::GrantedQoS1, "isf/ok is valid");
                    let expected = match protocol {
                        Protocol::V311 => ReasonCode::UnspecifiedError,
                        Protocol::V5 => ReasonCode::TopicFilterInvalid,
                    };
                    assert_eq!(ack.reasons[1], expected, "{bad} is invalid");
                    raw.ping().await;
                }
                Recv::Packet(Packet::Disconnect(d)) if protocol == Protocol::V5 => {
                    assert!(d.reason.is_error(), "{d:?}");
                    assert_eq!(raw.expect_closed("after DISCONNECT").await, None);
                }
                Recv::Closed if protocol == Protocol::V311 => {}
                other => {
                    panic!("{bad}: expected SUBACK or the end of the connection, got {other:?}")
                }
            }
        }
    }
    still_served(&mut by, "isf/bystander").await;
}
