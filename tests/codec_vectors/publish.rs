//! PUBLISH (§3.3) and its acknowledgements PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–§3.7):
//! the spec's "a/b" with packet identifier 10 example, the v5 short forms, and the rules on
//! flags, packet identifiers, topic names and reason codes.

use bytes::Bytes;
use raftmq::mqtt::topic::TopicError;
use raftmq::mqtt::{
    Ack, DecodeError, Malformed, Packet, PacketType, Properties, Protocol, ProtocolViolation,
    Publish, QoS, ReasonCode,
};

use crate::common::{decode, pid, rejects, rejects_both, round_trip};

/// 3.1.1 §3.3.2.3, figure 3.11: topic "a/b", packet identifier 10; QoS 1, payload "hi".
pub(crate) const PUBLISH_V311: &[u8] = &[
    0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i',
];

/// 5.0 §3.3.2 (variable header example): the same, followed by a property length of 0.
pub(crate) const PUBLISH_V5: &[u8] = &[
    0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, 0x00, b'h', b'i',
];

pub(crate) fn publish_a_b() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(pid(10)),
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    })
}

/// 3.3.1: DUP set, QoS 2 (flags 0b1100), packet identifier 10.
pub(crate) const PUBLISH_V311_DUP_QOS2: &[u8] = &[
    0x3c, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i',
];

pub(crate) fn publish_dup_qos2() -> Packet {
    Packet::Publish(Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: Some(pid(10)),
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    })
}

/// §3.3.1.3 and §3.3.2.2: QoS 0 with RETAIN has no packet identifier.
pub(crate) const PUBLISH_V311_QOS0_RETAIN: &[u8] =
    &[0x31, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];

pub(crate) fn publish_qos0_retain() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: "a/b".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    })
}

/// 5.0 §3.3.2.3: Message Expiry Interval 60, Content Type "t", two Subscription
/// Identifiers (1, and the largest, 268,435,455, as a four-byte variable byte integer;
/// §3.3.2.3.8 allows several), Topic Alias 1, and two User Properties with the same name
/// (§3.3.2.3.7: order kept).
pub(crate) const PUBLISH_V5_PROPS: &[u8] = &[
    0x30, 0x29, 0x00, 0x03, b'a', b'/', b'b', 0x21, 0x02, 0x00, 0x00, 0x00, 0x3c, 0x03, 0x00, 0x01,
    b't', 0x0b, 0x01, 0x0b, 0xff, 0xff, 0xff, 0x7f, 0x23, 0x00, 0x01, 0x26, 0x00, 0x01, b'k', 0x00,
    0x01, b'v', 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'w', b'h', b'i',
];

pub(crate) fn publish_v5_props() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/b".into(),
        packet_id: None,
        properties: Properties {
            message_expiry_interval: Some(60),
            content_type: Some("t".into()),
            subscription_identifiers: vec![1, 268_435_455],
            topic_alias: Some(1),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            ..Properties::default()
        },
        payload: Bytes::from_static(b"hi"),
    })
}

/// 5.0 §3.3.2.3.4: an empty topic name stands for the topic of Topic Alias 5; no payload.
pub(crate) const PUBLISH_V5_ALIAS: &[u8] = &[0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05];

pub(crate) fn publish_v5_alias() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: String::new(),
        packet_id: None,
        properties: Properties {
            topic_alias: Some(5),
            ..Properties::default()
        },
        payload: Bytes::new(),
    })
}

/// §3.4–§3.7 of 3.1.1 (and the v5 short form, §3.4.2.1: Success without properties):
/// fixed header, remaining length 2, packet identifier 10. PUBREL carries flags 0b0010.
pub(crate) const ACKS: [(&[u8], PacketType); 4] = [
    (&[0x40, 0x02, 0x00, 0x0a], PacketType::PubAck),
    (&[0x50, 0x02, 0x00, 0x0a], PacketType::PubRec),
    (&[0x62, 0x02, 0x00, 0x0a], PacketType::PubRel),
    (&[0x70, 0x02, 0x00, 0x0a], PacketType::PubComp),
];

/// A Success acknowledgement without properties, spelled out rather than taken from
/// `Ack::new`, which the decoder itself uses.
pub(crate) fn success(packet_id: u16) -> Ack {
    Ack {
        packet_id: pid(packet_id),
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

pub(crate) fn ack(kind: PacketType, ack: Ack) -> Packet {
    match kind {
        PacketType::PubAck => Packet::PubAck(ack),
        PacketType::PubRec => Packet::PubRec(ack),
        PacketType::PubRel => Packet::PubRel(ack),
        PacketType::PubComp => Packet::PubComp(ack),
        other => panic!("{other} is not an acknowledgement"),
    }
}

/// 5.0 §3.4.2: PUBACK 0x87 Not authorized with Reason String "no".
pub(crate) const PUBACK_V5_PROPS: &[u8] = &[
    0x40, 0x09, 0x00, 0x0a, 0x87, 0x05, 0x1f, 0x00, 0x02, b'n', b'o',
];

pub(crate) fn puback_v5_props() -> Packet {
    Packet::PubAck(Ack {
        packet_id: pid(10),
        reason: ReasonCode::NotAuthorized,
        properties: Properties {
            reason_string: Some("no".into()),
            ..Properties::default()
        },
    })
}

pub(crate) fn vectors() -> Vec<(Protocol, &'static [u8], Packet)> {
    let mut vectors = vec![
        (Protocol::V311, PUBLISH_V311, publish_a_b()),
        (Protocol::V5, PUBLISH_V5, publish_a_b()),
        (Protocol::V311, PUBLISH_V311_DUP_QOS2, publish_dup_qos2()),
        (
            Protocol::V311,
            PUBLISH_V311_QOS0_RETAIN,
            publish_qos0_retain(),
        ),
        (Protocol::V5, PUBLISH_V5_PROPS, publish_v5_props()),
        (Protocol::V5, PUBLISH_V5_ALIAS, publish_v5_alias()),
        (Protocol::V5, PUBACK_V5_PROPS, puback_v5_props()),
    ];
    for (bytes, kind) in ACKS {
        for protocol in [Protocol::V311, Protocol::V5] {
            vectors.push((protocol, bytes, ack(kind, success(10))));
        }
    }
    vectors
}

#[test]
fn publish_a_b_packet_id_10_both_levels() {
    round_trip(Protocol::V311, PUBLISH_V311, &publish_a_b());
    round_trip(Protocol::V5, PUBLISH_V5, &publish_a_b());
}

#[test]
fn publish_flags_dup_qos_retain() {
    round_trip(Protocol::V311, PUBLISH_V311_DUP_QOS2, &publish_dup_qos2());
    round_trip(
        Protocol::V311,
        PUBLISH_V311_QOS0_RETAIN,
        &publish_qos0_retain(),
    );
}

#[test]
fn publish_v5_properties_keep_order_and_repeats() {
    round_trip(Protocol::V5, PUBLISH_V5_PROPS, &publish_v5_props());
}

#[test]
fn publish_v5_empty_topic_with_alias() {
    round_trip(Protocol::V5, PUBLISH_V5_ALIAS, &publish_v5_alias());
}

#[test]
fn publish_qos_3_is_malformed() {
    // §3.3.1.2 [MQTT-3.3.1-4] of both specs.
    rejects_both(
        &[
            0x36, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, b'h', b'i',
        ],
        &[
            0x36, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0a, 0x00, b'h', b'i',
        ],
        Malformed::InvalidQoS.into(),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn publish_dup_on_qos_0_is_malformed() {
    // §3.3.1.1 [MQTT-3.3.1-2] of both specs.
    rejects_both(
        &[0x38, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
        &[0x38, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'],
        Malformed::DupOnQoS0.into(),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn publish_packet_id_0_is_a_protocol_error() {
    // 3.1.1 §2.3.1 [MQTT-2.3.1-1], 5.0 §2.2.1: QoS 1 and 2 need a non-zero identifier.
    for first in [0x32, 0x34] {
        rejects_both(
            &[first, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00],
            &[first, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00, 0x00],
            ProtocolViolation::ZeroPacketId(PacketType::Publish).into(),
            ReasonCode::ProtocolError,
        );
    }
}

#[test]
fn publish_topic_name_with_wildcard_is_invalid() {
    // §3.3.2.1 [MQTT-3.3.2-2] of both specs; 5.0 answers 0x90 Topic Name invalid.
    for wildcard in [b'+', b'#'] {
        rejects_both(
            &[0x30, 0x07, 0x00, 0x03, b'a', b'/', wildcard, b'h', b'i'],
            &[
                0x30, 0x08, 0x00, 0x03, b'a', b'/', wildcard, 0x00, b'h', b'i',
            ],
            TopicError::WildcardInName.into(),
            ReasonCode::TopicNameInvalid,
        );
    }
}

#[test]
fn publish_empty_topic_name() {
    // 3.1.1 §4.7.3 [MQTT-4.7.3-1]: topic names are at least one character long.
    rejects(
        Protocol::V311,
        &[0x30, 0x04, 0x00, 0x00, b'h', b'i'],
        TopicError::Empty,
        ReasonCode::TopicNameInvalid,
    );
    // 5.0 §3.3.2.1: empty only with a Topic Alias, otherwise a protocol error.
    rejects(
        Protocol::V5,
        &[0x30, 0x05, 0x00, 0x00, 0x00, b'h', b'i'],
        ProtocolViolation::EmptyTopicWithoutAlias,
        ReasonCode::ProtocolError,
    );
}

#[test]
fn publish_ending_inside_the_topic_is_malformed() {
    rejects_both(
        &[0x32, 0x03, 0x00, 0x03, b'a'],
        &[0x32, 0x03, 0x00, 0x03, b'a'],
        Malformed::Truncated.into(),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn acks_short_form_both_levels() {
    for (bytes, kind) in ACKS {
        for protocol in [Protocol::V311, Protocol::V5] {
            round_trip(protocol, bytes, &ack(kind, success(10)));
        }
    }
}

#[test]
fn v5_acks_with_reason_only() {
    // §3.4.2.1 (and §3.5.2.1, §3.6.2.1, §3.7.2.1): remaining length 3 is the reason code
    // without a property length.
    for (bytes, kind, reason) in [
        (
            &[0x40, 0x03, 0x00, 0x0a, 0x10][..],
            PacketType::PubAck,
            ReasonCode::NoMatchingSubscribers,
        ),
        (
            &[0x50, 0x03, 0x00, 0x0a, 0x80],
            PacketType::PubRec,
            ReasonCode::UnspecifiedError,
        ),
        (
            &[0x62, 0x03, 0x00, 0x0a, 0x92],
            PacketType::PubRel,
            ReasonCode::PacketIdentifierNotFound,
        ),
        (
            &[0x70, 0x03, 0x00, 0x0a, 0x92],
            PacketType::PubComp,
            ReasonCode::PacketIdentifierNotFound,
        ),
    ] {
        let expected = ack(
            kind,
            Ack {
                packet_id: pid(10),
                reason,
                properties: Properties::default(),
            },
        );
        round_trip(Protocol::V5, bytes, &expected);
    }
}

#[test]
fn v5_ack_with_properties() {
    round_trip(Protocol::V5, PUBACK_V5_PROPS, &puback_v5_props());
}

#[test]
fn v5_ack_with_empty_property_list_means_success() {
    // §3.4.2.2: a property length of 0 is as good as none.
    assert_eq!(
        decode(Protocol::V5, &[0x40, 0x04, 0x00, 0x0a, 0x00, 0x00]),
        Packet::PubAck(success(10))
    );
}

#[test]
fn acks_with_packet_id_0_are_protocol_errors() {
    // 3.1.1 §2.3.1 [MQTT-2.3.1-1], 5.0 §2.2.1.
    for (bytes, kind) in ACKS {
        let zero = [bytes[0], 0x02, 0x00, 0x00];
        rejects_both(
            &zero,
            &zero,
            ProtocolViolation::ZeroPacketId(kind).into(),
            ReasonCode::ProtocolError,
        );
    }
}

#[test]
fn v5_ack_reason_codes_outside_their_table_are_malformed() {
    // Table 2-6: 0x8E Session taken over is DISCONNECT only; 0x10 No matching subscribers
    // is PUBACK/PUBREC only; 0x92 Packet Identifier not found is PUBREL/PUBCOMP only.
    for (bytes, kind) in [
        (&[0x40, 0x03, 0x00, 0x0a, 0x8e][..], PacketType::PubAck),
        (&[0x40, 0x03, 0x00, 0x0a, 0x92], PacketType::PubAck),
        (&[0x62, 0x03, 0x00, 0x0a, 0x10], PacketType::PubRel),
        (&[0x70, 0x03, 0x00, 0x0a, 0x87], PacketType::PubComp),
    ] {
        rejects(
            Protocol::V5,
            bytes,
            Malformed::InvalidReasonCode {
                packet: kind,
                code: bytes[4],
            },
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn v311_ack_longer_than_two_bytes_is_malformed() {
    // 3.1.1 §3.4.1: remaining length 2, nothing more.
    rejects(
        Protocol::V311,
        &[0x40, 0x03, 0x00, 0x0a, 0x00],
        Malformed::TrailingBytes(1),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn ack_shorter_than_its_packet_id_is_malformed() {
    rejects_both(
        &[0x40, 0x01, 0x00],
        &[0x40, 0x01, 0x00],
        DecodeError::Malformed(Malformed::Truncated),
        ReasonCode::MalformedPacket,
    );
}
