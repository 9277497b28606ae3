//! PINGREQ (§3.12), PINGRESP (§3.13), DISCONNECT (§3.14) and AUTH (5.0 §3.15), with the
//! fixed-header rules every packet type shares (packet types: §2.2.1 of 3.1.1, §2.1.2 of
//! 5.0; flags: §2.2.2 of 3.1.1, §2.1.3 of 5.0).

use bytes::Bytes;
use raftmq::mqtt::{
    Auth, Disconnect, Malformed, Packet, PacketType, Properties, PropertyContext, PropertyId,
    Protocol, ProtocolViolation, ReasonCode,
};

use crate::common::{decode, rejects, rejects_both, round_trip};

/// §3.12 and §3.13 of both specs: no variable header, no payload.
pub(crate) const PINGREQ: &[u8] = &[0xc0, 0x00];
pub(crate) const PINGRESP: &[u8] = &[0xd0, 0x00];

/// 3.1.1 §3.14, and 5.0 §3.14.2.1: remaining length 0 means Normal disconnection.
pub(crate) const DISCONNECT: &[u8] = &[0xe0, 0x00];

/// Spelled out rather than `Disconnect::default()`, which the decoder itself uses.
fn normal_disconnection() -> Packet {
    Packet::Disconnect(Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        properties: Properties::default(),
    })
}

/// 5.0 §3.14.2.1: 0x04 Disconnect with Will Message and an empty property list, the form
/// raftmq sends.
pub(crate) const DISCONNECT_V5_WILL: &[u8] = &[0xe0, 0x02, 0x04, 0x00];

/// 5.0 §3.14.2.2: remaining length 1 is a reason code with the property length left out.
const DISCONNECT_V5_WILL_SHORT: &[u8] = &[0xe0, 0x01, 0x04];

/// 5.0 §3.14.2.2: 0x9C Use another server, with Session Expiry Interval 0 and Server
/// Reference "b", in identifier order.
pub(crate) const DISCONNECT_V5_PROPS: &[u8] = &[
    0xe0, 0x0b, 0x9c, 0x09, 0x11, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, b'b',
];

pub(crate) fn disconnect_v5_props() -> Packet {
    Packet::Disconnect(Disconnect {
        reason: ReasonCode::UseAnotherServer,
        properties: Properties {
            session_expiry_interval: Some(0),
            server_reference: Some("b".into()),
            ..Properties::default()
        },
    })
}

/// 5.0 §3.15.2.1: remaining length 0 means Success without properties.
pub(crate) const AUTH_V5: &[u8] = &[0xf0, 0x00];

fn auth_success() -> Packet {
    Packet::Auth(Auth {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    })
}

/// 5.0 §3.15.2: 0x18 Continue authentication, Authentication Method "SCRAM" and
/// Authentication Data 01 02.
pub(crate) const AUTH_V5_CONTINUE: &[u8] = &[
    0xf0, 0x0f, 0x18, 0x0d, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', 0x16, 0x00, 0x02, 0x01,
    0x02,
];

pub(crate) fn auth_continue() -> Packet {
    Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties {
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(&[0x01, 0x02])),
            ..Properties::default()
        },
    })
}

pub(crate) fn vectors() -> Vec<(Protocol, &'static [u8], Packet)> {
    let mut vectors = Vec::new();
    for protocol in [Protocol::V311, Protocol::V5] {
        vectors.push((protocol, PINGREQ, Packet::PingReq));
        vectors.push((protocol, PINGRESP, Packet::PingResp));
        vectors.push((
            protocol,
            DISCONNECT,
            Packet::Disconnect(Disconnect::default()),
        ));
    }
    vectors.extend([
        (
            Protocol::V5,
            DISCONNECT_V5_WILL,
            Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
        ),
        (Protocol::V5, DISCONNECT_V5_PROPS, disconnect_v5_props()),
        (Protocol::V5, AUTH_V5, auth_success()),
        (Protocol::V5, AUTH_V5_CONTINUE, auth_continue()),
    ]);
    vectors
}

#[test]
fn pingreq_and_pingresp_both_levels() {
    for protocol in [Protocol::V311, Protocol::V5] {
        round_trip(protocol, PINGREQ, &Packet::PingReq);
        round_trip(protocol, PINGRESP, &Packet::PingResp);
    }
}

#[test]
fn disconnect_remaining_length_0_both_levels() {
    let normal = normal_disconnection();
    round_trip(Protocol::V311, DISCONNECT, &normal);
    round_trip(Protocol::V5, DISCONNECT, &normal);
}

#[test]
fn disconnect_v5_reason_only_and_with_properties() {
    round_trip(
        Protocol::V5,
        DISCONNECT_V5_WILL,
        &Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
    );
    // The short form is read as the same packet (it is sent with the property length).
    assert_eq!(
        decode(Protocol::V5, DISCONNECT_V5_WILL_SHORT),
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage))
    );
    round_trip(Protocol::V5, DISCONNECT_V5_PROPS, &disconnect_v5_props());
}

#[test]
fn auth_short_form_and_with_properties() {
    round_trip(Protocol::V5, AUTH_V5, &auth_success());
    round_trip(Protocol::V5, AUTH_V5_CONTINUE, &auth_continue());
}

#[test]
fn reserved_fixed_header_flags_are_malformed_from_the_first_byte() {
    // 3.1.1 §2.2.2 (table 2.2) and 5.0 §2.1.3 (table 2-2): every type but PUBLISH has fixed flags,
    // 0b0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0 elsewhere; anything else is
    // malformed ([MQTT-2.2.2-2] in 3.1.1). Only the first byte is given: the codec must
    // not wait for a remaining length to refuse it.
    let types = [
        (PacketType::Connect, 0x10),
        (PacketType::ConnAck, 0x20),
        (PacketType::PubAck, 0x40),
        (PacketType::PubRec, 0x50),
        (PacketType::PubRel, 0x62),
        (PacketType::PubComp, 0x70),
        (PacketType::Subscribe, 0x82),
        (PacketType::SubAck, 0x90),
        (PacketType::Unsubscribe, 0xa2),
        (PacketType::UnsubAck, 0xb0),
        (PacketType::PingReq, 0xc0),
        (PacketType::PingResp, 0xd0),
        (PacketType::Disconnect, 0xe0),
        (PacketType::Auth, 0xf0),
    ];
    for (packet, valid) in types {
        for flags in (0..16u8).filter(|flags| *flags != valid & 0x0f) {
            let byte = (valid & 0xf0) | flags;
            let expected = Malformed::FixedHeaderFlags { packet, flags };
            if packet != PacketType::Auth {
                rejects(
                    Protocol::V311,
                    &[byte],
                    expected.clone(),
                    ReasonCode::MalformedPacket,
                );
            }
            rejects(Protocol::V5, &[byte], expected, ReasonCode::MalformedPacket);
        }
    }
}

#[test]
fn reserved_packet_types() {
    // 3.1.1 §2.2.1 and 5.0 §2.1.2: type 0 is reserved; 3.1.1 also reserves 15, which 5.0 made
    // AUTH.
    rejects_both(
        &[0x00, 0x00],
        &[0x00, 0x00],
        Malformed::ReservedPacketType(0).into(),
        ReasonCode::MalformedPacket,
    );
    rejects(
        Protocol::V311,
        AUTH_V5,
        Malformed::ReservedPacketType(15),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn fixed_size_packets_with_extra_bytes_are_malformed() {
    // §3.12.1, §3.13.1 of both specs: remaining length 0; 3.1.1 §3.14.1 likewise.
    rejects_both(
        &[0xc0, 0x01, 0x00],
        &[0xc0, 0x01, 0x00],
        Malformed::TrailingBytes(1).into(),
        ReasonCode::MalformedPacket,
    );
    rejects_both(
        &[0xd0, 0x02, 0x00, 0x00],
        &[0xd0, 0x02, 0x00, 0x00],
        Malformed::TrailingBytes(2).into(),
        ReasonCode::MalformedPacket,
    );
    rejects(
        Protocol::V311,
        &[0xe0, 0x01, 0x00],
        Malformed::TrailingBytes(1),
        ReasonCode::MalformedPacket,
    );
    // 5.0: after the property list, DISCONNECT ends (§3.14.3: no payload).
    rejects(
        Protocol::V5,
        &[0xe0, 0x03, 0x00, 0x00, 0xff],
        Malformed::TrailingBytes(1),
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn disconnect_reason_codes_outside_their_table_are_malformed() {
    // 5.0 §3.14.2.1, table 3-10: 0x03 is unassigned and 0x84 is a CONNACK code.
    for code in [0x03, 0x84] {
        rejects(
            Protocol::V5,
            &[0xe0, 0x01, code],
            Malformed::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code,
            },
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn disconnect_property_not_allowed_is_malformed() {
    // 5.0 §3.14.2.2: Receive Maximum is a CONNECT/CONNACK property.
    rejects(
        Protocol::V5,
        &[0xe0, 0x05, 0x00, 0x03, 0x21, 0x00, 0x01],
        Malformed::PropertyNotAllowed {
            property: PropertyId::ReceiveMaximum,
            context: PropertyContext::Disconnect,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn auth_reason_codes_outside_their_table_are_malformed() {
    // 5.0 §3.15.2.1, table 3-11: only 0x00, 0x18 and 0x19.
    rejects(
        Protocol::V5,
        &[0xf0, 0x02, 0x87, 0x00],
        Malformed::InvalidReasonCode {
            packet: PacketType::Auth,
            code: 0x87,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn auth_data_without_method_is_a_protocol_error() {
    // 5.0 §3.15.2.2.3 and §3.1.2.11.10.
    rejects(
        Protocol::V5,
        &[0xf0, 0x07, 0x18, 0x05, 0x16, 0x00, 0x02, 0x01, 0x02],
        ProtocolViolation::AuthenticationDataWithoutMethod,
        ReasonCode::ProtocolError,
    );
}
