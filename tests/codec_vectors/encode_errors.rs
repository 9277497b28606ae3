//! Packets the encoder must refuse because the wire cannot carry them, and the guarantee
//! that a refused packet leaves nothing behind in the output buffer.

use bytes::{Bytes, BytesMut};
use raftmq::mqtt::{
    Ack, Auth, Codec, ConnAck, Connect, DEFAULT_MAX_PACKET_SIZE, EncodeError, Packet, PacketType,
    Properties, PropertyContext, PropertyId, Protocol, Publish, QoS, ReasonCode, Subscribe,
    SubscriptionOptions,
};

use crate::common::{decode, pid};

/// Bytes already queued on the connection, which a failed encode must not disturb.
const QUEUED: &[u8] = &[0xd0, 0x00];

/// Encodes `packet` after [`QUEUED`], expects `expected`, and checks the buffer still
/// holds exactly what was queued.
fn refuses(packet: &Packet, protocol: Protocol, expected: EncodeError) {
    let mut buf = BytesMut::from(QUEUED);
    assert_eq!(packet.encode(protocol, &mut buf), Err(expected));
    assert_eq!(
        &buf[..],
        QUEUED,
        "a refused packet must leave the buffer as it was"
    );
}

fn publish(qos: QoS, packet_id: Option<u16>) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: "a/b".into(),
        packet_id: packet_id.map(pid),
        properties: Properties::default(),
        payload: Bytes::from_static(b"hi"),
    }
}

fn connect(protocol: Protocol) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: "id".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

#[test]
fn packet_id_must_match_qos() {
    // 3.1.1 §2.3.1, 5.0 §2.2.1: QoS 1 and 2 carry a packet identifier, QoS 0 must not.
    for protocol in [Protocol::V311, Protocol::V5] {
        refuses(
            &Packet::Publish(publish(QoS::AtLeastOnce, None)),
            protocol,
            EncodeError::PacketIdMismatch,
        );
        refuses(
            &Packet::Publish(publish(QoS::ExactlyOnce, None)),
            protocol,
            EncodeError::PacketIdMismatch,
        );
        refuses(
            &Packet::Publish(publish(QoS::AtMostOnce, Some(10))),
            protocol,
            EncodeError::PacketIdMismatch,
        );
    }
}

#[test]
fn auth_does_not_exist_in_3_1_1() {
    // 3.1.1 §2.2.1: type 15 is reserved.
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    });
    refuses(
        &auth,
        Protocol::V311,
        EncodeError::NotInProtocol {
            packet: PacketType::Auth,
            protocol: Protocol::V311,
        },
    );
}

#[test]
fn property_not_allowed_in_the_packet() {
    // Table 2-4: Session Expiry Interval is not a PUBLISH property.
    let mut with_expiry = publish(QoS::AtMostOnce, None);
    with_expiry.properties.session_expiry_interval = Some(1);
    refuses(
        &Packet::Publish(with_expiry),
        Protocol::V5,
        EncodeError::PropertyNotAllowed {
            property: PropertyId::SessionExpiryInterval,
            context: PropertyContext::Publish,
        },
    );
    // Topic Alias is a PUBLISH property only; the CONNECT header is already written when
    // it is met, and must be taken back.
    let mut with_alias = connect(Protocol::V5);
    with_alias.properties.topic_alias = Some(1);
    refuses(
        &Packet::Connect(Box::new(with_alias)),
        Protocol::V5,
        EncodeError::PropertyNotAllowed {
            property: PropertyId::TopicAlias,
            context: PropertyContext::Connect,
        },
    );
}

#[test]
fn property_values_the_protocol_cannot_carry() {
    // 5.0 §3.2.2.3.4: Maximum QoS is 0 or 1 (a QoS 2 server omits it).
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties: Properties {
            maximum_qos: Some(QoS::ExactlyOnce),
            ..Properties::default()
        },
    });
    refuses(
        &connack,
        Protocol::V5,
        EncodeError::PropertyValue(PropertyId::MaximumQoS),
    );
    // §3.8.2.1.2: a Subscription Identifier is 1 to 268,435,455.
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: vec![("a".into(), SubscriptionOptions::default())],
        properties: Properties {
            subscription_identifiers: vec![0],
            ..Properties::default()
        },
    });
    refuses(
        &subscribe,
        Protocol::V5,
        EncodeError::SubscriptionIdentifier,
    );
}

#[test]
fn strings_over_65535_bytes_are_refused() {
    // §1.5.3 (3.1.1) / §1.5.4 (5.0): a two-byte length prefix, so 65,535 bytes at most.
    let mut long = publish(QoS::AtMostOnce, None);
    long.topic = "a".repeat(65_536);
    refuses(
        &Packet::Publish(long),
        Protocol::V311,
        EncodeError::FieldTooLong(65_536),
    );
    let mut password = connect(Protocol::V5);
    password.password = Some(Bytes::from(vec![0; 65_536]));
    refuses(
        &Packet::Connect(Box::new(password)),
        Protocol::V5,
        EncodeError::FieldTooLong(65_536),
    );
}

#[test]
fn string_of_exactly_65535_bytes_fits() {
    let mut longest = publish(QoS::AtMostOnce, None);
    longest.topic = "a".repeat(65_535);
    let packet = Packet::Publish(longest);
    let mut buf = BytesMut::new();
    packet.encode(Protocol::V311, &mut buf).unwrap();
    // Remaining length 2 + 65,535 + 2 = 65,539 is 83 80 04; the length prefix is FF FF.
    assert_eq!(&buf[..6], &[0x30, 0x83, 0x80, 0x04, 0xff, 0xff]);
    assert_eq!(decode(Protocol::V311, &buf), packet);
}

#[test]
fn reason_code_not_allowed_in_the_packet() {
    // 5.0 §3.4.2.1, table 3-4: 0x01 Granted QoS 1 is a SUBACK code.
    let puback = Packet::PubAck(Ack {
        packet_id: pid(1),
        reason: ReasonCode::GrantedQoS1,
        properties: Properties::default(),
    });
    refuses(
        &puback,
        Protocol::V5,
        EncodeError::InvalidReasonCode {
            packet: PacketType::PubAck,
            code: ReasonCode::GrantedQoS1,
        },
    );
}

#[test]
fn empty_subscribe_is_refused() {
    // §3.8.3 of both specs: at least one topic filter.
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        filters: Vec::new(),
        properties: Properties::default(),
    });
    refuses(
        &subscribe,
        Protocol::V311,
        EncodeError::Empty(PacketType::Subscribe),
    );
}

#[test]
fn v311_password_without_user_name_is_refused() {
    // 3.1.1 §3.1.2.9 [MQTT-3.1.2-22].
    let mut alone = connect(Protocol::V311);
    alone.password = Some(Bytes::from_static(b"p"));
    refuses(
        &Packet::Connect(Box::new(alone)),
        Protocol::V311,
        EncodeError::PasswordWithoutUsername,
    );
}

#[test]
fn server_codec_cannot_encode_before_connect() {
    let codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::new();
    assert_eq!(
        codec.encode(&Packet::PingResp, &mut buf),
        Err(EncodeError::UnknownProtocol)
    );
    assert!(buf.is_empty());
}

/// The encoder refuses what its own decoder would reject, so a broker bug cannot put a
/// packet on the wire that a peer must answer with a protocol error.
#[test]
fn encoder_refuses_what_the_decoder_rejects() {
    use bytes::BytesMut;
    use raftmq::mqtt::{
        Auth, ConnAck, EncodeError, Packet, PacketId, Properties, PropertyId, Protocol, Publish,
        QoS, ReasonCode, Subscribe, SubscriptionOptions,
    };
    let mut buf = BytesMut::from(&b"queued"[..]);
    let mut refuse = |packet: Packet, expected: EncodeError| {
        assert_eq!(
            packet.encode(Protocol::V5, &mut buf),
            Err(expected),
            "{packet:?}"
        );
        assert_eq!(&buf[..], b"queued", "nothing written on refusal");
    };
    let publish = |dup: bool, properties: Properties| Publish {
        dup,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t".into(),
        packet_id: None,
        properties,
        payload: bytes::Bytes::new(),
    };
    refuse(
        Packet::Publish(publish(true, Properties::default())),
        EncodeError::DupOnQoS0,
    );
    let alias0 = Properties {
        topic_alias: Some(0),
        ..Properties::default()
    };
    refuse(
        Packet::Publish(publish(false, alias0)),
        EncodeError::PropertyValue(PropertyId::TopicAlias),
    );
    for (props, id) in [
        (
            Properties {
                receive_maximum: Some(0),
                ..Properties::default()
            },
            PropertyId::ReceiveMaximum,
        ),
        (
            Properties {
                maximum_packet_size: Some(0),
                ..Properties::default()
            },
            PropertyId::MaximumPacketSize,
        ),
        (
            Properties {
                authentication_data: Some(bytes::Bytes::from_static(b"x")),
                ..Properties::default()
            },
            PropertyId::AuthenticationData,
        ),
    ] {
        let connack = ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: props,
        };
        refuse(Packet::ConnAck(connack), EncodeError::PropertyValue(id));
    }
    let two_ids = Properties {
        subscription_identifiers: vec![1, 2],
        ..Properties::default()
    };
    let subscribe = Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: vec![("a".into(), SubscriptionOptions::default())],
        properties: two_ids,
    };
    refuse(
        Packet::Subscribe(subscribe),
        EncodeError::PropertyValue(PropertyId::SubscriptionIdentifier),
    );
    let auth = Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties {
            authentication_data: Some(bytes::Bytes::from_static(b"x")),
            ..Properties::default()
        },
    };
    refuse(
        Packet::Auth(auth),
        EncodeError::PropertyValue(PropertyId::AuthenticationData),
    );
}
