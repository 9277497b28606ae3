//! CONNECT (§3.1 of both specs) and CONNACK (§3.2): the spec's variable header examples,
//! and every rule that makes a server refuse a CONNECT, with the CONNACK or close it owes.

use bytes::Bytes;
use raftmq::mqtt::topic::TopicError;
use raftmq::mqtt::{
    Codec, ConnAck, Connect, ConnectReturnCode, DEFAULT_MAX_PACKET_SIZE, DecodeError, Malformed,
    Packet, PacketType, Properties, PropertyContext, PropertyId, Protocol, ProtocolViolation, QoS,
    ReasonCode, Response, Will,
};

use crate::common::{
    connect_rejected, decode_error_with, decode_with, encode, frame, rejects, round_trip,
};

/// 3.1.1 §3.1.2.11, figure 3.6: protocol name "MQTT", level 4, connect flags 0xCE (user
/// name, password, will QoS 1, will flag, clean session), keep alive 10. The payload
/// (§3.1.3) follows in its fixed order: client id "id", will topic "a/b", will message
/// "bye", user name "u", password "p".
pub(crate) const CONNECT_V311: &[u8] = &[
    0x10, 0x1e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xce, 0x00, 0x0a, 0x00, 0x02, b'i', b'd',
    0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'b', b'y', b'e', 0x00, 0x01, b'u', 0x00, 0x01, b'p',
];

pub(crate) fn connect_v311() -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 10,
        client_id: "id".into(),
        will: Some(Will {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::default(),
    }))
}

/// 5.0 §3.1.2.12 (variable header example): level 5, connect flags 0xC2 (user name, password, clean
/// start), keep alive 10, properties of length 5 holding Session Expiry Interval (17) = 10.
/// Payload (§3.1.3): client id "id", user name "u", password "p".
pub(crate) const CONNECT_V5: &[u8] = &[
    0x10, 0x1a, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xc2, 0x00, 0x0a, 0x05, 0x11, 0x00, 0x00,
    0x00, 0x0a, 0x00, 0x02, b'i', b'd', 0x00, 0x01, b'u', 0x00, 0x01, b'p',
];

pub(crate) fn connect_v5() -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 10,
        client_id: "id".into(),
        will: None,
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties {
            session_expiry_interval: Some(10),
            ..Properties::default()
        },
    }))
}

/// 5.0 §3.1.2.5–§3.1.2.7 and §3.1.3.2: flags 0x36 (will retain, will QoS 2, will flag,
/// clean start), Receive Maximum 20, an empty client id, and will properties (§3.1.3.2)
/// Payload Format Indicator 1 and Will Delay Interval 5, in identifier order.
pub(crate) const CONNECT_V5_WILL: &[u8] = &[
    0x10, 0x22, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x36, 0x00, 0x3c, 0x03, 0x21, 0x00, 0x14,
    0x00, 0x00, 0x07, 0x01, 0x01, 0x18, 0x00, 0x00, 0x00, 0x05, 0x00, 0x03, b'a', b'/', b'b', 0x00,
    0x03, b'b', b'y', b'e',
];

pub(crate) fn connect_v5_will() -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: String::new(),
        will: Some(Will {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties {
                payload_format_indicator: Some(true),
                will_delay_interval: Some(5),
                ..Properties::default()
            },
        }),
        username: None,
        password: None,
        properties: Properties {
            receive_maximum: Some(20),
            ..Properties::default()
        },
    }))
}

/// 3.1.1 §3.2.2.3: CONNACK with session present and return code 0.
pub(crate) const CONNACK_V311: &[u8] = &[0x20, 0x02, 0x01, 0x00];

pub(crate) fn connack_v311() -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    })
}

/// 5.0 §3.2.2: session present, Success, then properties in identifier order: Assigned
/// Client Identifier "x", Topic Alias Maximum 10, Maximum QoS 1, Retain Available 0.
pub(crate) const CONNACK_V5: &[u8] = &[
    0x20, 0x0e, 0x01, 0x00, 0x0b, 0x12, 0x00, 0x01, b'x', 0x22, 0x00, 0x0a, 0x24, 0x01, 0x25, 0x00,
];

pub(crate) fn connack_v5() -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: Properties {
            assigned_client_identifier: Some("x".into()),
            topic_alias_maximum: Some(10),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            ..Properties::default()
        },
    })
}

pub(crate) fn vectors() -> Vec<(Protocol, &'static [u8], Packet)> {
    vec![
        (Protocol::V311, CONNECT_V311, connect_v311()),
        (Protocol::V5, CONNECT_V5, connect_v5()),
        (Protocol::V5, CONNECT_V5_WILL, connect_v5_will()),
        (Protocol::V311, CONNACK_V311, connack_v311()),
        (Protocol::V5, CONNACK_V5, connack_v5()),
    ]
}

fn server() -> Codec {
    Codec::new(DEFAULT_MAX_PACKET_SIZE)
}

/// A CONNECT body: protocol name "MQTT", `level`, `flags`, keep alive 60, then `rest`
/// (the v5 properties and the payload).
fn connect(level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x3c];
    body.extend_from_slice(rest);
    frame(0x10, &body)
}

/// A v5 CONNECT with clean start, the property list `props` (without its length) and an
/// empty client id.
fn connect_v5_props(props: &[u8]) -> Vec<u8> {
    let mut rest = vec![u8::try_from(props.len()).unwrap()];
    rest.extend_from_slice(props);
    rest.extend_from_slice(&[0x00, 0x00]);
    connect(5, 0x02, &rest)
}

fn v5_connack(reason: ReasonCode) -> Response {
    Response::ConnAck {
        protocol: Protocol::V5,
        reason,
    }
}

#[test]
fn connect_v311_figure_3_6_fixes_the_protocol_of_a_server_codec() {
    let mut codec = server();
    assert_eq!(decode_with(&mut codec, CONNECT_V311), connect_v311());
    assert_eq!(codec.protocol(), Some(Protocol::V311));
    assert_eq!(encode(&connect_v311(), Protocol::V311), CONNECT_V311);
}

#[test]
fn connect_v5_variable_header_example_fixes_the_protocol_of_a_server_codec() {
    let mut codec = server();
    assert_eq!(decode_with(&mut codec, CONNECT_V5), connect_v5());
    assert_eq!(codec.protocol(), Some(Protocol::V5));
    assert_eq!(encode(&connect_v5(), Protocol::V5), CONNECT_V5);
}

#[test]
fn connect_v5_with_will_properties() {
    round_trip(Protocol::V5, CONNECT_V5_WILL, &connect_v5_will());
}

#[test]
fn connect_is_encoded_in_its_own_protocol() {
    // §3.1.2.2: the level byte belongs to the CONNECT, whatever the caller passes.
    assert_eq!(encode(&connect_v311(), Protocol::V5), CONNECT_V311);
    assert_eq!(encode(&connect_v5(), Protocol::V311), CONNECT_V5);
}

#[test]
fn v5_password_without_user_name_is_accepted() {
    // 5.0 §3.1.2.9 dropped 3.1.1's [MQTT-3.1.2-22]: a password may come alone.
    let bytes = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, b'p',
    ];
    let expected = Packet::Connect(Box::new(Connect {
        protocol: Protocol::V5,
        clean_start: false,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: None,
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::default(),
    }));
    assert_eq!(decode_with(&mut server(), &bytes), expected);
    assert_eq!(encode(&expected, Protocol::V5), bytes);
}

#[test]
fn v311_password_without_user_name_is_malformed() {
    // 3.1.1 §3.1.2.9 [MQTT-3.1.2-22]: no password flag without the user name flag.
    let bytes = [
        0x10, 0x0f, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, b'p',
    ];
    connect_rejected(&bytes, Malformed::PasswordWithoutUsername, Response::Close);
}

#[test]
fn wrong_protocol_name_closes_without_connack() {
    // §3.1.2.1 [MQTT-3.1.2-1] of both specs: the server may only disconnect, or leave MQTT
    // altogether; answering with an MQTT CONNACK of either level would be neither.
    let v311 = frame(
        0x10,
        &[
            0x00, 0x04, b'M', b'Q', b'T', b'X', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
        ],
    );
    let v5 = frame(
        0x10,
        &[
            0x00, 0x04, b'M', b'Q', b'T', b'X', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00,
        ],
    );
    for bytes in [v311, v5] {
        connect_rejected(
            &bytes,
            ProtocolViolation::ProtocolName("MQTX".into()),
            Response::Close,
        );
    }
}

#[test]
fn unsupported_levels_get_the_3_1_1_return_code_1() {
    // §3.1.2.2 of both specs: a level the server does not speak is refused with CONNACK
    // return code 1 (0x84 in 5.0), sent in a form every client version can read. MQTT 3.1
    // named itself "MQIsdp" at level 3.
    let mqtt31 = frame(
        0x10,
        &[
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x00,
        ],
    );
    let response = Response::ConnAck {
        protocol: Protocol::V311,
        reason: ReasonCode::UnsupportedProtocolVersion,
    };
    connect_rejected(
        &mqtt31,
        DecodeError::UnsupportedProtocolVersion(3),
        response,
    );
    connect_rejected(
        &connect(6, 0x02, &[0x00, 0x00, 0x00]),
        DecodeError::UnsupportedProtocolVersion(6),
        response,
    );
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::UnsupportedProtocolVersion,
        properties: Properties::default(),
    });
    assert_eq!(encode(&connack, Protocol::V311), [0x20, 0x02, 0x00, 0x01]);
}

#[test]
fn reserved_connect_flag_is_malformed() {
    // §3.1.2.3 [MQTT-3.1.2-3] of both specs.
    connect_rejected(
        &connect(5, 0x03, &[0x00, 0x00, 0x00]),
        Malformed::ConnectReservedFlag,
        v5_connack(ReasonCode::MalformedPacket),
    );
    connect_rejected(
        &connect(4, 0x03, &[0x00, 0x00]),
        Malformed::ConnectReservedFlag,
        Response::Close,
    );
}

#[test]
fn will_qos_or_retain_without_will_flag_is_malformed() {
    // §3.1.2.6 and §3.1.2.7 of both specs: with the will flag 0, will QoS and will
    // retain must be 0.
    for flags in [0x0a, 0x12, 0x22] {
        connect_rejected(
            &connect(5, flags, &[0x00, 0x00, 0x00]),
            Malformed::WillFlagsWithoutWill,
            v5_connack(ReasonCode::MalformedPacket),
        );
        connect_rejected(
            &connect(4, flags, &[0x00, 0x00]),
            Malformed::WillFlagsWithoutWill,
            Response::Close,
        );
    }
}

#[test]
fn will_qos_3_is_malformed() {
    // §3.1.2.6 of both specs: will QoS 3 does not exist.
    let will = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00,
    ];
    connect_rejected(
        &connect(5, 0x1e, &will),
        Malformed::InvalidQoS,
        v5_connack(ReasonCode::MalformedPacket),
    );
}

#[test]
fn malformed_v5_connect_gets_connack_0x81_and_3_1_1_gets_closed() {
    // 5.0 §4.13.1: a malformed CONNECT may be answered with CONNACK 0x81; 3.1.1 has no
    // such return code (§3.2.2.3), so §4.8 of 3.1.1 closes the connection. Here the
    // client id announces five bytes and the packet ends.
    connect_rejected(
        &connect(5, 0x02, &[0x00, 0x00, 0x05]),
        Malformed::Truncated,
        v5_connack(ReasonCode::MalformedPacket),
    );
    connect_rejected(
        &connect(4, 0x02, &[0x00, 0x05]),
        Malformed::Truncated,
        Response::Close,
    );
}

#[test]
fn will_topic_with_wildcard_is_refused() {
    // §3.1.3.3 (5.0) / §3.1.3.2 (3.1.1): the will topic is a topic name (§4.7.1).
    let will = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x03, b'a', b'/', b'#', 0x00, 0x00,
    ];
    connect_rejected(
        &connect(5, 0x06, &will),
        TopicError::WildcardInName,
        v5_connack(ReasonCode::TopicNameInvalid),
    );
}

#[test]
fn connect_properties_out_of_place_or_out_of_range() {
    // §2.2.2.2: a property not listed for CONNECT is malformed.
    connect_rejected(
        &connect_v5_props(&[0x23, 0x00, 0x01]),
        Malformed::PropertyNotAllowed {
            property: PropertyId::TopicAlias,
            context: PropertyContext::Connect,
        },
        v5_connack(ReasonCode::MalformedPacket),
    );
    // Will Delay Interval belongs to the will properties (§3.1.3.2.2), not CONNECT's.
    connect_rejected(
        &connect_v5_props(&[0x18, 0x00, 0x00, 0x00, 0x01]),
        Malformed::PropertyNotAllowed {
            property: PropertyId::WillDelayInterval,
            context: PropertyContext::Connect,
        },
        v5_connack(ReasonCode::MalformedPacket),
    );
    let protocol_error = v5_connack(ReasonCode::ProtocolError);
    // §3.1.2.11.3: Receive Maximum 0 is a protocol error.
    connect_rejected(
        &connect_v5_props(&[0x21, 0x00, 0x00]),
        ProtocolViolation::PropertyValue {
            property: PropertyId::ReceiveMaximum,
            value: 0,
        },
        protocol_error,
    );
    // §3.1.2.11.4: Maximum Packet Size 0 is a protocol error.
    connect_rejected(
        &connect_v5_props(&[0x27, 0x00, 0x00, 0x00, 0x00]),
        ProtocolViolation::PropertyValue {
            property: PropertyId::MaximumPacketSize,
            value: 0,
        },
        protocol_error,
    );
    // §3.1.2.11.7: Request Problem Information other than 0 or 1 is a protocol error.
    connect_rejected(
        &connect_v5_props(&[0x17, 0x02]),
        ProtocolViolation::PropertyValue {
            property: PropertyId::RequestProblemInformation,
            value: 2,
        },
        protocol_error,
    );
    // §3.1.2.11.10: Authentication Data without Authentication Method.
    connect_rejected(
        &connect_v5_props(&[0x16, 0x00, 0x01, 0xaa]),
        ProtocolViolation::AuthenticationDataWithoutMethod,
        protocol_error,
    );
    // §3.1.2.11.2: Session Expiry Interval twice.
    connect_rejected(
        &connect_v5_props(&[0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02]),
        ProtocolViolation::DuplicateProperty(PropertyId::SessionExpiryInterval),
        protocol_error,
    );
}

#[test]
fn first_packet_must_be_connect() {
    // §3.1 [MQTT-3.1.0-1] of both specs; refused from the first byte, before any length.
    for (bytes, kind) in [
        (&[0x32][..], PacketType::Publish),
        (&[0xc0, 0x00][..], PacketType::PingReq),
    ] {
        let mut codec = server();
        let error = decode_error_with(&mut codec, bytes);
        assert_eq!(error, ProtocolViolation::FirstPacketNotConnect(kind).into());
        assert_eq!(error.reason_code(), ReasonCode::ProtocolError);
        assert_eq!(codec.response(&error), Response::Close);
        assert_eq!(codec.protocol(), None);
    }
}

#[test]
fn connack_every_3_1_1_return_code() {
    // 3.1.1 §3.2.2.3, table 3.1: return codes 0 to 5.
    for code in 0..=5u8 {
        let reason = ReasonCode::from(ConnectReturnCode::from_u8(code).unwrap());
        let expected = Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: Properties::default(),
        });
        round_trip(Protocol::V311, &[0x20, 0x02, 0x00, code], &expected);
    }
    round_trip(Protocol::V311, CONNACK_V311, &connack_v311());
}

#[test]
fn connack_v5_with_properties_and_refusal() {
    round_trip(Protocol::V5, CONNACK_V5, &connack_v5());
    // §3.2.2.2: 0x87 Not authorized, with an empty property list.
    let refused = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::default(),
    });
    round_trip(Protocol::V5, &[0x20, 0x03, 0x00, 0x87, 0x00], &refused);
}

#[test]
fn connack_reason_codes_outside_the_tables_are_malformed() {
    // 3.1.1 §3.2.2.3: 6-255 are reserved.
    rejects(
        Protocol::V311,
        &[0x20, 0x02, 0x00, 0x06],
        Malformed::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code: 6,
        },
        ReasonCode::MalformedPacket,
    );
    // 5.0 §3.2.2.2, table 3-1: 0x04 is a DISCONNECT reason only.
    rejects(
        Protocol::V5,
        &[0x20, 0x03, 0x00, 0x04, 0x00],
        Malformed::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code: 4,
        },
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn connack_reserved_acknowledge_flags_are_malformed() {
    // §3.2.2.1 of both specs: bits 7-1 are reserved and must be 0.
    rejects(
        Protocol::V311,
        &[0x20, 0x02, 0x02, 0x00],
        Malformed::ConnAckReservedFlags,
        ReasonCode::MalformedPacket,
    );
    rejects(
        Protocol::V5,
        &[0x20, 0x03, 0x80, 0x00, 0x00],
        Malformed::ConnAckReservedFlags,
        ReasonCode::MalformedPacket,
    );
}

#[test]
fn connack_property_values_out_of_range() {
    // §3.2.2.3.4: Maximum QoS other than 0 or 1.
    rejects(
        Protocol::V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02],
        ProtocolViolation::PropertyValue {
            property: PropertyId::MaximumQoS,
            value: 2,
        },
        ReasonCode::ProtocolError,
    );
    // §3.2.2.3.5: Retain Available other than 0 or 1.
    rejects(
        Protocol::V5,
        &[0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02],
        ProtocolViolation::PropertyValue {
            property: PropertyId::RetainAvailable,
            value: 2,
        },
        ReasonCode::ProtocolError,
    );
    // §3.2.2.3.6: Maximum Packet Size 0.
    rejects(
        Protocol::V5,
        &[0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00],
        ProtocolViolation::PropertyValue {
            property: PropertyId::MaximumPacketSize,
            value: 0,
        },
        ReasonCode::ProtocolError,
    );
}

#[test]
fn v311_connack_is_exactly_two_bytes() {
    // 3.1.1 §3.2.1: remaining length 2.
    rejects(
        Protocol::V311,
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        Malformed::TrailingBytes(1),
        ReasonCode::MalformedPacket,
    );
}
