//! MQTT 5.0 properties (§2.2.2): which packet may carry which property (table 2-4), which
//! may repeat, and the values each one may take. The CONNECT and CONNACK properties are
//! in `connect`; these use PUBLISH, PUBACK, SUBSCRIBE and UNSUBSCRIBE.

use bytes::Bytes;
use raftmq::mqtt::topic::TopicError;
use raftmq::mqtt::{
    Ack, Malformed, Packet, Properties, PropertyContext, PropertyId, Protocol, ProtocolViolation,
    Publish, QoS, ReasonCode,
};

use crate::common::{pid, rejects, round_trip};

#[test]
fn unknown_property_identifier_is_malformed() {
    // §2.2.2.2: identifiers outside table 2-4 (0x05 is unassigned; 80 01 is 128).
    rejects(
        Protocol::V5,
        &[0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x02, 0x05, 0x00],
        Malformed::UnknownProperty(0x05),
        ReasonCode::MalformedPacket,
    );
    rejects(
        Protocol::V5,
        &[
            0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x03, 0x80, 0x01, 0x00,
        ],
        Malformed::UnknownProperty(128),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn property_not_allowed_in_the_packet_is_malformed() {
    // Table 2-4: Will Delay Interval is a will property only.
    rejects(
        Protocol::V5,
        &[
            0x30, 0x0b, 0x00, 0x03, b'a', b'/', b'b', 0x05, 0x18, 0x00, 0x00, 0x00, 0x05,
        ],
        Malformed::PropertyNotAllowed {
            property: PropertyId::WillDelayInterval,
            context: PropertyContext::Publish,
        },
        ReasonCode::MalformedPacket,
    );
    // Session Expiry Interval belongs to CONNECT, CONNACK and DISCONNECT.
    rejects(
        Protocol::V5,
        &[
            0x40, 0x09, 0x00, 0x0a, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
        ],
        Malformed::PropertyNotAllowed {
            property: PropertyId::SessionExpiryInterval,
            context: PropertyContext::PubAck,
        },
        ReasonCode::MalformedPacket,
    );
    // §3.10.2.1: UNSUBSCRIBE carries user properties only.
    rejects(
        Protocol::V5,
        &[0xa2, 0x08, 0x00, 0x0a, 0x02, 0x0b, 0x01, 0x00, 0x01, b'a'],
        Malformed::PropertyNotAllowed {
            property: PropertyId::SubscriptionIdentifier,
            context: PropertyContext::Unsubscribe,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn duplicate_property_is_a_protocol_error() {
    // §3.3.2.3.3: Message Expiry Interval at most once.
    rejects(
        Protocol::V5,
        &[
            0x30, 0x10, 0x00, 0x03, b'a', b'/', b'b', 0x0a, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02,
            0x00, 0x00, 0x00, 0x02,
        ],
        ProtocolViolation::DuplicateProperty(PropertyId::MessageExpiryInterval),
        ReasonCode::ProtocolError,
    );
    // §3.4.2.2.2: Reason String at most once.
    rejects(
        Protocol::V5,
        &[
            0x40, 0x0c, 0x00, 0x0a, 0x80, 0x08, 0x1f, 0x00, 0x01, b'x', 0x1f, 0x00, 0x01, b'y',
        ],
        ProtocolViolation::DuplicateProperty(PropertyId::ReasonString),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn user_properties_repeat_in_order() {
    // §3.4.2.2.3 (and every other User Property): may appear several times, even with the
    // same name, and the order is kept.
    let bytes = [
        0x40, 0x12, 0x00, 0x0a, 0x00, 0x0e, 0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1', 0x26, 0x00,
        0x01, b'a', 0x00, 0x01, b'2',
    ];
    let expected = Packet::PubAck(Ack {
        packet_id: pid(10),
        reason: ReasonCode::Success,
        properties: Properties {
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..Properties::default()
        },
    });
    round_trip(Protocol::V5, &bytes, &expected);
}

#[test]
fn subscription_identifier_repeats_in_publish_only() {
    // §3.3.2.3.8: a PUBLISH carries one per matching subscription (see the PUBLISH vector
    // with two); §3.8.2.1.2: in SUBSCRIBE, twice is a protocol error.
    rejects(
        Protocol::V5,
        &[
            0x82, 0x0b, 0x00, 0x0a, 0x04, 0x0b, 0x01, 0x0b, 0x02, 0x00, 0x01, b'a', 0x00,
        ],
        ProtocolViolation::DuplicateProperty(PropertyId::SubscriptionIdentifier),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn subscription_identifier_0_is_a_protocol_error() {
    // §3.3.2.3.8 and §3.8.2.1.2: 1 to 268,435,455.
    let zero = ProtocolViolation::PropertyValue {
        property: PropertyId::SubscriptionIdentifier,
        value: 0,
    };
    rejects(
        Protocol::V5,
        &[0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x02, 0x0b, 0x00],
        zero.clone(),
        ReasonCode::ProtocolError,
    );
    rejects(
        Protocol::V5,
        &[
            0x82, 0x09, 0x00, 0x0a, 0x02, 0x0b, 0x00, 0x00, 0x01, b'a', 0x00,
        ],
        zero,
        ReasonCode::ProtocolError,
    );
}

#[test]
fn subscription_identifier_longer_than_four_bytes_is_malformed() {
    // §1.5.5: a variable byte integer has at most four bytes, inside properties too.
    rejects(
        Protocol::V5,
        &[
            0x30, 0x0b, 0x00, 0x03, b'a', b'/', b'b', 0x05, 0x0b, 0x80, 0x80, 0x80, 0x80,
        ],
        Malformed::VariableByteInteger,
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn topic_alias_0_is_invalid() {
    // §3.3.2.3.4 [MQTT-3.3.2-8], and §3.3.4: "A Topic Alias value of 0 ... is a Protocol
    // Error, the receiver uses DISCONNECT with Reason Code of 0x94 (Topic Alias invalid)".
    rejects(
        Protocol::V5,
        &[
            0x30, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x03, 0x23, 0x00, 0x00,
        ],
        ProtocolViolation::PropertyValue {
            property: PropertyId::TopicAlias,
            value: 0,
        },
        ReasonCode::TopicAliasInvalid,
    );
}

#[test]
fn response_topic_with_wildcard_is_invalid() {
    // §3.3.2.3.5 [MQTT-3.3.2-14]: the Response Topic is a topic name.
    rejects(
        Protocol::V5,
        &[
            0x30, 0x0c, 0x00, 0x03, b'a', b'/', b'b', 0x06, 0x08, 0x00, 0x03, b'a', b'/', b'#',
        ],
        TopicError::WildcardInName,
        ReasonCode::TopicNameInvalid,
    );
}

#[test]
fn property_list_longer_than_the_packet_is_malformed() {
    // §2.2.2.1: the property length announces five bytes; the packet has none left.
    rejects(
        Protocol::V5,
        &[0x40, 0x04, 0x00, 0x0a, 0x00, 0x05],
        Malformed::Truncated,
        ReasonCode::MalformedPacket,
    );
    // A value running past the end of its property list: a Reason String of five bytes in
    // a list of three.
    rejects(
        Protocol::V5,
        &[0x40, 0x07, 0x00, 0x0a, 0x80, 0x03, 0x1f, 0x00, 0x05],
        Malformed::Truncated,
        ReasonCode::MalformedPacket,
    );
}

fn publish_with_subscription_identifier(id: u32) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a".into(),
        packet_id: None,
        properties: Properties {
            subscription_identifiers: vec![id],
            ..Properties::default()
        },
        payload: Bytes::new(),
    })
}

#[test]
fn subscription_identifier_uses_the_variable_byte_integer_table() {
    // §3.3.2.3.8: a Variable Byte Integer, so table 1-1 (§1.5.5) applies, and the property
    // length grows with it.
    for (id, varint) in [
        (1, &[0x01][..]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xff, 0xff, 0x7f]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
        (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
    ] {
        let props_len = 1 + varint.len() as u8;
        let mut bytes = vec![0x30, 4 + props_len, 0x00, 0x01, b'a', props_len, 0x0b];
        bytes.extend_from_slice(varint);
        round_trip(
            Protocol::V5,
            &bytes,
            &publish_with_subscription_identifier(id),
        );
    }
}

#[test]
fn property_length_of_128_takes_two_bytes() {
    // §2.2.2.1: the property length is a Variable Byte Integer; a Reason String of 125
    // bytes makes the list 128 bytes long (80 01), and the remaining length 133 (85 01).
    let reason = "x".repeat(125);
    let mut bytes = vec![
        0x40, 0x85, 0x01, 0x00, 0x0a, 0x80, 0x80, 0x01, 0x1f, 0x00, 0x7d,
    ];
    bytes.extend_from_slice(reason.as_bytes());
    let expected = Packet::PubAck(Ack {
        packet_id: pid(10),
        reason: ReasonCode::UnspecifiedError,
        properties: Properties {
            reason_string: Some(reason),
            ..Properties::default()
        },
    });
    round_trip(Protocol::V5, &bytes, &expected);
}
