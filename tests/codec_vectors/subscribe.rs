//! SUBSCRIBE (§3.8), SUBACK (§3.9), UNSUBSCRIBE (§3.10) and UNSUBACK (§3.11): the spec's
//! "a/b" and "c/d" payload examples, subscription options, and the rules on empty
//! payloads, reserved option bits and return codes.

use raftmq::mqtt::{
    DecodeError, Malformed, Packet, PacketType, Properties, Protocol, ProtocolViolation, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use crate::common::{encode, pid, rejects, rejects_both, round_trip};

/// 3.1.1 §3.8.2 (figure 3.21) and §3.8.3 (figure 3.23): packet identifier 10, then
/// "a/b" requesting QoS 1 and "c/d" requesting QoS 2.
pub(crate) const SUBSCRIBE_V311: &[u8] = &[
    0x82, 0x0e, 0x00, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'd', 0x02,
];

/// 5.0 §3.8.2 and §3.8.3: the same with a property length of 0.
pub(crate) const SUBSCRIBE_V5: &[u8] = &[
    0x82, 0x0f, 0x00, 0x0a, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'd',
    0x02,
];

fn qos_only(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

pub(crate) fn subscribe_a_b_c_d() -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(10),
        filters: vec![
            ("a/b".into(), qos_only(QoS::AtLeastOnce)),
            ("c/d".into(), qos_only(QoS::ExactlyOnce)),
        ],
        properties: Properties::default(),
    })
}

/// 5.0 §3.8.2.1.2 and §3.8.3.1: Subscription Identifier 5, then "a/+" with options 0x2D
/// (QoS 1, No Local, Retain As Published, Retain Handling 2), "b" with 0x06 (QoS 2, No
/// Local) and "c" with 0x18 (QoS 0, Retain As Published, Retain Handling 1), so that each
/// option bit is seen set without its neighbours.
pub(crate) const SUBSCRIBE_V5_OPTIONS: &[u8] = &[
    0x82, 0x13, 0x00, 0x0b, 0x02, 0x0b, 0x05, 0x00, 0x03, b'a', b'/', b'+', 0x2d, 0x00, 0x01, b'b',
    0x06, 0x00, 0x01, b'c', 0x18,
];

pub(crate) fn subscribe_v5_options() -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(11),
        filters: vec![
            (
                "a/+".into(),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                "b".into(),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribe,
                },
            ),
            (
                "c".into(),
                SubscriptionOptions {
                    qos: QoS::AtMostOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendIfNewSubscription,
                },
            ),
        ],
        properties: Properties {
            subscription_identifiers: vec![5],
            ..Properties::default()
        },
    })
}

/// 3.1.1 §3.9.3, figure 3.27: "Success - Maximum QoS 0", "Success - Maximum QoS 2",
/// "Failure", for packet identifier 10.
pub(crate) const SUBACK_V311: &[u8] = &[0x90, 0x05, 0x00, 0x0a, 0x00, 0x02, 0x80];

pub(crate) fn suback_v311() -> Packet {
    Packet::SubAck(SubAck {
        packet_id: pid(10),
        reasons: vec![
            ReasonCode::GRANTED_QOS0,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ],
        properties: Properties::default(),
    })
}

/// 5.0 §3.9.3: property length 0, then 0x00, 0x02, 0x87 Not authorized and 0xA2
/// Wildcard Subscriptions not supported.
pub(crate) const SUBACK_V5: &[u8] = &[0x90, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x02, 0x87, 0xa2];

pub(crate) fn suback_v5() -> Packet {
    Packet::SubAck(SubAck {
        packet_id: pid(10),
        reasons: vec![
            ReasonCode::GRANTED_QOS0,
            ReasonCode::GrantedQoS2,
            ReasonCode::NotAuthorized,
            ReasonCode::WildcardSubscriptionsNotSupported,
        ],
        properties: Properties::default(),
    })
}

/// 3.1.1 §3.10.3, figure 3.30: "a/b" and "c/d", packet identifier 10.
pub(crate) const UNSUBSCRIBE_V311: &[u8] = &[
    0xa2, 0x0c, 0x00, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'd',
];

/// 5.0 §3.10.3: the same with a property length of 0.
pub(crate) const UNSUBSCRIBE_V5: &[u8] = &[
    0xa2, 0x0d, 0x00, 0x0a, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'd',
];

pub(crate) fn unsubscribe_a_b_c_d() -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(10),
        filters: vec!["a/b".into(), "c/d".into()],
        properties: Properties::default(),
    })
}

/// 3.1.1 §3.11: remaining length 2, packet identifier 10.
pub(crate) const UNSUBACK_V311: &[u8] = &[0xb0, 0x02, 0x00, 0x0a];

pub(crate) fn unsuback_v311() -> Packet {
    Packet::UnsubAck(UnsubAck {
        packet_id: pid(10),
        reasons: Vec::new(),
        properties: Properties::default(),
    })
}

/// 5.0 §3.11.3: property length 0, then Success and 0x11 No subscription existed.
pub(crate) const UNSUBACK_V5: &[u8] = &[0xb0, 0x05, 0x00, 0x0a, 0x00, 0x00, 0x11];

pub(crate) fn unsuback_v5() -> Packet {
    Packet::UnsubAck(UnsubAck {
        packet_id: pid(10),
        reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        properties: Properties::default(),
    })
}

pub(crate) fn vectors() -> Vec<(Protocol, &'static [u8], Packet)> {
    vec![
        (Protocol::V311, SUBSCRIBE_V311, subscribe_a_b_c_d()),
        (Protocol::V5, SUBSCRIBE_V5, subscribe_a_b_c_d()),
        (Protocol::V5, SUBSCRIBE_V5_OPTIONS, subscribe_v5_options()),
        (Protocol::V311, SUBACK_V311, suback_v311()),
        (Protocol::V5, SUBACK_V5, suback_v5()),
        (Protocol::V311, UNSUBSCRIBE_V311, unsubscribe_a_b_c_d()),
        (Protocol::V5, UNSUBSCRIBE_V5, unsubscribe_a_b_c_d()),
        (Protocol::V311, UNSUBACK_V311, unsuback_v311()),
        (Protocol::V5, UNSUBACK_V5, unsuback_v5()),
    ]
}

#[test]
fn subscribe_payload_example_both_levels() {
    round_trip(Protocol::V311, SUBSCRIBE_V311, &subscribe_a_b_c_d());
    round_trip(Protocol::V5, SUBSCRIBE_V5, &subscribe_a_b_c_d());
}

#[test]
fn subscribe_v5_options_and_subscription_identifier() {
    round_trip(Protocol::V5, SUBSCRIBE_V5_OPTIONS, &subscribe_v5_options());
}

#[test]
fn subscribe_v5_options_are_dropped_for_3_1_1() {
    // 3.1.1 §3.8.3.1: only the requested QoS exists; the upper six bits are reserved.
    assert_eq!(
        encode(&subscribe_v5_options(), Protocol::V311),
        [
            0x82, 0x10, 0x00, 0x0b, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'b', 0x02,
            0x00, 0x01, b'c', 0x00,
        ]
    );
}

#[test]
fn suback_return_codes_both_levels() {
    round_trip(Protocol::V311, SUBACK_V311, &suback_v311());
    round_trip(Protocol::V5, SUBACK_V5, &suback_v5());
}

#[test]
fn suback_v5_failures_become_0x80_in_3_1_1() {
    // 3.1.1 §3.9.3: 0x80 is the only failure return code.
    assert_eq!(
        encode(&suback_v5(), Protocol::V311),
        [0x90, 0x06, 0x00, 0x0a, 0x00, 0x02, 0x80, 0x80]
    );
}

#[test]
fn unsubscribe_payload_example_both_levels() {
    round_trip(Protocol::V311, UNSUBSCRIBE_V311, &unsubscribe_a_b_c_d());
    round_trip(Protocol::V5, UNSUBSCRIBE_V5, &unsubscribe_a_b_c_d());
}

#[test]
fn unsuback_both_levels() {
    round_trip(Protocol::V311, UNSUBACK_V311, &unsuback_v311());
    round_trip(Protocol::V5, UNSUBACK_V5, &unsuback_v5());
}

#[test]
fn empty_subscribe_and_unsubscribe_are_protocol_errors() {
    // §3.8.3 and §3.10.3 of both specs (3.1.1 [MQTT-3.8.3-3], [MQTT-3.10.3-2]): at least
    // one topic filter.
    rejects_both(
        &[0x82, 0x02, 0x00, 0x0a],
        &[0x82, 0x03, 0x00, 0x0a, 0x00],
        ProtocolViolation::NoTopicFilters(PacketType::Subscribe).into(),
        ReasonCode::ProtocolError,
    );
    rejects_both(
        &[0xa2, 0x02, 0x00, 0x0a],
        &[0xa2, 0x03, 0x00, 0x0a, 0x00],
        ProtocolViolation::NoTopicFilters(PacketType::Unsubscribe).into(),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn packet_id_0_in_subscribe_family_is_a_protocol_error() {
    // 3.1.1 §2.3.1 [MQTT-2.3.1-1], 5.0 §2.2.1.
    rejects_both(
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x01],
        &[0x82, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, b'a', 0x01],
        ProtocolViolation::ZeroPacketId(PacketType::Subscribe).into(),
        ReasonCode::ProtocolError,
    );
    rejects_both(
        &[0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, b'a'],
        &[0xa2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, b'a'],
        ProtocolViolation::ZeroPacketId(PacketType::Unsubscribe).into(),
        ReasonCode::ProtocolError,
    );
    rejects_both(
        &[0x90, 0x03, 0x00, 0x00, 0x00],
        &[0x90, 0x04, 0x00, 0x00, 0x00, 0x00],
        ProtocolViolation::ZeroPacketId(PacketType::SubAck).into(),
        ReasonCode::ProtocolError,
    );
    rejects_both(
        &[0xb0, 0x02, 0x00, 0x00],
        &[0xb0, 0x04, 0x00, 0x00, 0x00, 0x00],
        ProtocolViolation::ZeroPacketId(PacketType::UnsubAck).into(),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn subscription_options_reserved_bits_are_malformed() {
    // 3.1.1 §3.8.3.1 [MQTT-3-8.3-4]: bits 2-7 are reserved.
    for bit in 2..8 {
        rejects(
            Protocol::V311,
            &[0x82, 0x06, 0x00, 0x0a, 0x00, 0x01, b'a', 1 << bit],
            Malformed::SubscriptionOptionsReserved,
            ReasonCode::MalformedPacket,
        );
    }
    // 5.0 §3.8.3.1: bits 6 and 7 are reserved.
    for bit in 6..8 {
        rejects(
            Protocol::V5,
            &[0x82, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x01, b'a', 1 << bit],
            Malformed::SubscriptionOptionsReserved,
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn subscription_qos_3_is_malformed() {
    // §3.8.3.1 of both specs.
    rejects_both(
        &[0x82, 0x06, 0x00, 0x0a, 0x00, 0x01, b'a', 0x03],
        &[0x82, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x01, b'a', 0x03],
        Malformed::InvalidQoS.into(),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn retain_handling_3_is_a_protocol_error() {
    // 5.0 §3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
    rejects(
        Protocol::V5,
        &[0x82, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x01, b'a', 0x30],
        ProtocolViolation::RetainHandling,
        ReasonCode::ProtocolError,
    );
}

#[test]
fn subscribe_filter_without_options_byte_is_malformed() {
    rejects_both(
        &[0x82, 0x05, 0x00, 0x0a, 0x00, 0x01, b'a'],
        &[0x82, 0x06, 0x00, 0x0a, 0x00, 0x00, 0x01, b'a'],
        DecodeError::Malformed(Malformed::Truncated),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn suback_codes_outside_their_table_are_malformed() {
    // 3.1.1 §3.9.3 [MQTT-3.9.3-2]: only 0x00, 0x01, 0x02 and 0x80; 0x87 is a v5 code.
    rejects(
        Protocol::V311,
        &[0x90, 0x03, 0x00, 0x0a, 0x87],
        Malformed::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x87,
        },
        ReasonCode::MalformedPacket,
    );
    // 5.0 §3.9.3, table 3-8: 0x11 No subscription existed is an UNSUBACK code.
    rejects(
        Protocol::V5,
        &[0x90, 0x04, 0x00, 0x0a, 0x00, 0x11],
        Malformed::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x11,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn suback_and_v5_unsuback_without_codes_are_protocol_errors() {
    // §3.9.3 and 5.0 §3.11.3: one code per topic filter, and a SUBSCRIBE or UNSUBSCRIBE
    // always has at least one.
    rejects_both(
        &[0x90, 0x02, 0x00, 0x0a],
        &[0x90, 0x03, 0x00, 0x0a, 0x00],
        ProtocolViolation::NoReasonCodes(PacketType::SubAck).into(),
        ReasonCode::ProtocolError,
    );
    rejects(
        Protocol::V5,
        &[0xb0, 0x03, 0x00, 0x0a, 0x00],
        ProtocolViolation::NoReasonCodes(PacketType::UnsubAck),
        ReasonCode::ProtocolError,
    );
}

#[test]
fn unsuback_codes_outside_their_table_are_malformed() {
    // 5.0 §3.11.3, table 3-9: 0x97 Quota exceeded is not an UNSUBACK code.
    rejects(
        Protocol::V5,
        &[0xb0, 0x04, 0x00, 0x0a, 0x00, 0x97],
        Malformed::InvalidReasonCode {
            packet: PacketType::UnsubAck,
            code: 0x97,
        },
        ReasonCode::MalformedPacket,
    );
    // 3.1.1 §3.11.1: remaining length 2, no payload (§3.11.3).
    rejects(
        Protocol::V311,
        &[0xb0, 0x03, 0x00, 0x0a, 0x00],
        Malformed::TrailingBytes(1),
        ReasonCode::MalformedPacket,
    );
}
