//! Property tests of the MQTT codec: every packet type, in MQTT 3.1.1 and in MQTT 5.0,
//! survives encode → decode unchanged; the decoder takes exactly the encoded frame from the
//! buffer (not a byte more, not a byte less) and, fed the same bytes one at a time, reports
//! an incomplete frame until the last byte. Generators produce only what the protocol
//! version can carry: no properties or reason codes in 3.1.1; in 5.0 every property allowed
//! in the packet (table 2-4) with values in range, and every reason code allowed in it
//! (table 2-6). The last tests check what encoding a v5 packet for a 3.1.1 client drops, as
//! `Packet::encode` documents.

use std::num::NonZeroU16;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use raftmq::mqtt::{
    Ack, Auth, Codec, ConnAck, Connect, DEFAULT_MAX_PACKET_SIZE, Disconnect, EncodeError, Packet,
    PacketId, PacketType, Properties, PropertyContext, PropertyId, Protocol, Publish, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
    Will,
};

mod generators;

use generators::*;

const PINGREQ: [u8; 2] = [0xc0, 0x00];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Encodes `packet` in `protocol` and checks that it decodes back to itself, whole and one
/// byte at a time, on a codec that already knows the protocol.
fn round_trip(packet: &Packet, protocol: Protocol) -> Result<(), TestCaseError> {
    round_trip_on(packet, protocol, || {
        Codec::for_protocol(protocol, DEFAULT_MAX_PACKET_SIZE)
    })
}

/// As [`round_trip`], with codecs made by `new_codec`.
fn round_trip_on(
    packet: &Packet,
    protocol: Protocol,
    new_codec: impl Fn() -> Codec,
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    let size = packet
        .encode(protocol, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("{packet:?} does not encode: {e}")))?;
    prop_assert_eq!(size, buf.len(), "encode must return the size it wrote");
    let wire = buf.clone().freeze();

    let mut codec = new_codec();
    buf.extend_from_slice(&PINGREQ);
    prop_assert_eq!(codec.decode(&mut buf), Ok(Some(packet.clone())));
    prop_assert_eq!(
        &buf[..],
        &PINGREQ[..],
        "the decoder must take exactly one frame"
    );
    prop_assert_eq!(codec.decode(&mut buf), Ok(Some(Packet::PingReq)));
    prop_assert!(buf.is_empty());

    let mut codec = new_codec();
    let mut buf = BytesMut::new();
    for (i, byte) in wire.iter().enumerate() {
        buf.put_u8(*byte);
        let decoded = codec.decode(&mut buf);
        if i + 1 < wire.len() {
            prop_assert_eq!(decoded, Ok(None), "after {} of {} bytes", i + 1, wire.len());
            prop_assert_eq!(buf.len(), i + 1, "an incomplete frame must stay buffered");
        } else {
            prop_assert_eq!(decoded, Ok(Some(packet.clone())));
            prop_assert!(buf.is_empty());
        }
    }
    Ok(())
}

/// A CONNECT also round-trips on a server codec, which learns the protocol from it.
fn connect_round_trip(connect: Connect) -> Result<(), TestCaseError> {
    let protocol = connect.protocol;
    let packet = Packet::Connect(Box::new(connect));
    round_trip(&packet, protocol)?;
    round_trip_on(&packet, protocol, || Codec::new(DEFAULT_MAX_PACKET_SIZE))?;

    let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::new();
    packet.encode(protocol, &mut buf).expect("encodes");
    prop_assert_eq!(codec.protocol(), None);
    prop_assert!(codec.decode(&mut buf).expect("decodes").is_some());
    prop_assert_eq!(codec.protocol(), Some(protocol));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_round_trips(v311 in connect(Protocol::V311), v5 in connect(Protocol::V5)) {
        connect_round_trip(v311)?;
        connect_round_trip(v5)?;
    }

    #[test]
    fn connack_round_trips(v311 in connack(Protocol::V311), v5 in connack(Protocol::V5)) {
        round_trip(&Packet::ConnAck(v311), Protocol::V311)?;
        round_trip(&Packet::ConnAck(v5), Protocol::V5)?;
    }

    #[test]
    fn publish_round_trips(v311 in publish(Protocol::V311), v5 in publish(Protocol::V5)) {
        round_trip(&Packet::Publish(v311), Protocol::V311)?;
        round_trip(&Packet::Publish(v5), Protocol::V5)?;
    }

    #[test]
    fn puback_round_trips(
        v311 in ack(PacketType::PubAck, Protocol::V311),
        v5 in ack(PacketType::PubAck, Protocol::V5),
    ) {
        round_trip(&Packet::PubAck(v311), Protocol::V311)?;
        round_trip(&Packet::PubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn pubrec_round_trips(
        v311 in ack(PacketType::PubRec, Protocol::V311),
        v5 in ack(PacketType::PubRec, Protocol::V5),
    ) {
        round_trip(&Packet::PubRec(v311), Protocol::V311)?;
        round_trip(&Packet::PubRec(v5), Protocol::V5)?;
    }

    #[test]
    fn pubrel_round_trips(
        v311 in ack(PacketType::PubRel, Protocol::V311),
        v5 in ack(PacketType::PubRel, Protocol::V5),
    ) {
        round_trip(&Packet::PubRel(v311), Protocol::V311)?;
        round_trip(&Packet::PubRel(v5), Protocol::V5)?;
    }

    #[test]
    fn pubcomp_round_trips(
        v311 in ack(PacketType::PubComp, Protocol::V311),
        v5 in ack(PacketType::PubComp, Protocol::V5),
    ) {
        round_trip(&Packet::PubComp(v311), Protocol::V311)?;
        round_trip(&Packet::PubComp(v5), Protocol::V5)?;
    }

    #[test]
    fn subscribe_round_trips(v311 in subscribe(Protocol::V311), v5 in subscribe(Protocol::V5)) {
        round_trip(&Packet::Subscribe(v311), Protocol::V311)?;
        round_trip(&Packet::Subscribe(v5), Protocol::V5)?;
    }

    #[test]
    fn suback_round_trips(v311 in suback(Protocol::V311), v5 in suback(Protocol::V5)) {
        round_trip(&Packet::SubAck(v311), Protocol::V311)?;
        round_trip(&Packet::SubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn unsubscribe_round_trips(
        v311 in unsubscribe(Protocol::V311),
        v5 in unsubscribe(Protocol::V5),
    ) {
        round_trip(&Packet::Unsubscribe(v311), Protocol::V311)?;
        round_trip(&Packet::Unsubscribe(v5), Protocol::V5)?;
    }

    #[test]
    fn unsuback_round_trips(v311 in unsuback(Protocol::V311), v5 in unsuback(Protocol::V5)) {
        round_trip(&Packet::UnsubAck(v311), Protocol::V311)?;
        round_trip(&Packet::UnsubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn disconnect_round_trips(
        v311 in disconnect(Protocol::V311),
        v5 in disconnect(Protocol::V5),
    ) {
        round_trip(&Packet::Disconnect(v311), Protocol::V311)?;
        round_trip(&Packet::Disconnect(v5), Protocol::V5)?;
    }

    #[test]
    fn auth_round_trips_in_v5(auth in auth()) {
        round_trip(&Packet::Auth(auth), Protocol::V5)?;
    }

    /// Encoding a v5 packet for a 3.1.1 client gives exactly the bytes of the packet with
    /// what 3.1.1 cannot carry taken out, and decodes (in 3.1.1) to that packet.
    #[test]
    fn v311_encoding_drops_only_what_v311_cannot_carry(packet in v5_packet_with_a_v311_form()) {
        let expected = v311_form(&packet);
        let mut dropped = BytesMut::new();
        packet.encode(Protocol::V311, &mut dropped).expect("encodes for 3.1.1");
        let mut reference = BytesMut::new();
        expected.encode(Protocol::V311, &mut reference).expect("encodes for 3.1.1");
        prop_assert_eq!(&dropped, &reference);
        round_trip(&expected, Protocol::V311)?;
    }
}

#[test]
fn ping_round_trips() {
    for protocol in [Protocol::V311, Protocol::V5] {
        for packet in [Packet::PingReq, Packet::PingResp] {
            round_trip(&packet, protocol).expect("round trip");
        }
    }
}

/// A remaining length takes one to four bytes (§2.1.4 of 3.1.1, §2.1.4 of 5.0); frames
/// whose length sits on each side of every step decode whole, and not a byte early.
#[test]
fn remaining_length_boundaries_round_trip() {
    let topic = "t";
    let fixed = 2 + topic.len();
    for (remaining, header) in [
        (127, 2),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let packet = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![0xa5; remaining - fixed]),
        });
        let mut buf = BytesMut::new();
        let size = packet.encode(Protocol::V311, &mut buf).expect("encodes");
        assert_eq!(size, header + remaining, "remaining length {remaining}");

        let mut codec = Codec::for_protocol(Protocol::V311, 4 * 1024 * 1024);
        let last = buf.split_off(buf.len() - 1);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(None),
            "one byte short of {remaining}"
        );
        buf.unsplit(last);
        assert_eq!(codec.decode(&mut buf), Ok(Some(packet)));
        assert!(buf.is_empty());
    }
}

/// The 3.1.1 return code a v5 CONNACK reason is sent as, per the mapping documented on
/// `ConnectReturnCode`: load and availability become "server unavailable", other refusals
/// their nearest code.
fn v311_connack_reason(reason: ReasonCode) -> ReasonCode {
    use ReasonCode as R;
    match reason {
        R::Success => R::Success,
        R::UnsupportedProtocolVersion => R::UnsupportedProtocolVersion,
        R::ClientIdentifierNotValid => R::ClientIdentifierNotValid,
        R::BadUserNameOrPassword | R::BadAuthenticationMethod => R::BadUserNameOrPassword,
        R::NotAuthorized | R::Banned => R::NotAuthorized,
        _ => R::ServerUnavailable,
    }
}

/// A 3.1.1 SUBACK knows granted QoS 0, 1, 2 and failure 0x80 (§3.9.3 of 3.1.1).
fn v311_suback_reason(reason: ReasonCode) -> ReasonCode {
    use ReasonCode as R;
    match reason {
        R::Success | R::GrantedQoS1 | R::GrantedQoS2 => reason,
        _ => R::UnspecifiedError,
    }
}

/// `packet` as 3.1.1 can carry it: no properties, no reasons in acknowledgements, UNSUBACK
/// or DISCONNECT, only the QoS of subscription options, and CONNACK and SUBACK codes mapped
/// to their 3.1.1 values.
fn v311_form(packet: &Packet) -> Packet {
    let plain_ack = |ack: &Ack| Ack::new(ack.packet_id);
    match packet {
        Packet::ConnAck(p) => Packet::ConnAck(ConnAck {
            session_present: p.session_present,
            reason: v311_connack_reason(p.reason),
            properties: Properties::default(),
        }),
        Packet::Publish(p) => Packet::Publish(Publish {
            properties: Properties::default(),
            ..p.clone()
        }),
        Packet::PubAck(p) => Packet::PubAck(plain_ack(p)),
        Packet::PubRec(p) => Packet::PubRec(plain_ack(p)),
        Packet::PubRel(p) => Packet::PubRel(plain_ack(p)),
        Packet::PubComp(p) => Packet::PubComp(plain_ack(p)),
        Packet::Subscribe(p) => Packet::Subscribe(Subscribe {
            packet_id: p.packet_id,
            filters: p
                .filters
                .iter()
                .map(|(filter, options)| {
                    let qos_only = SubscriptionOptions {
                        qos: options.qos,
                        ..SubscriptionOptions::default()
                    };
                    (filter.clone(), qos_only)
                })
                .collect(),
            properties: Properties::default(),
        }),
        Packet::SubAck(p) => Packet::SubAck(SubAck {
            packet_id: p.packet_id,
            reasons: p.reasons.iter().copied().map(v311_suback_reason).collect(),
            properties: Properties::default(),
        }),
        Packet::Unsubscribe(p) => Packet::Unsubscribe(Unsubscribe {
            properties: Properties::default(),
            ..p.clone()
        }),
        Packet::UnsubAck(p) => Packet::UnsubAck(UnsubAck {
            packet_id: p.packet_id,
            reasons: Vec::new(),
            properties: Properties::default(),
        }),
        Packet::PingReq => Packet::PingReq,
        Packet::PingResp => Packet::PingResp,
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect::default()),
        Packet::Connect(_) | Packet::Auth(_) => panic!("{packet:?} has no 3.1.1 form here"),
    }
}

fn encoded(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(protocol, &mut buf).expect("encodes");
    buf.to_vec()
}

fn id(value: u16) -> PacketId {
    NonZeroU16::new(value).expect("not zero")
}

fn reason_string(text: &str) -> Properties {
    Properties {
        reason_string: Some(text.to_owned()),
        ..Properties::default()
    }
}

#[test]
fn v311_suback_sends_every_failure_as_0x80() {
    let suback = Packet::SubAck(SubAck {
        packet_id: id(10),
        reasons: vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::NotAuthorized,
            ReasonCode::GrantedQoS2,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded,
        ],
        properties: reason_string("no"),
    });
    assert_eq!(
        encoded(&suback, Protocol::V311),
        [0x90, 0x08, 0x00, 0x0a, 0x01, 0x80, 0x02, 0x80, 0x00, 0x80]
    );
    assert_eq!(
        encoded(&suback, Protocol::V5),
        [
            0x90, 0x0e, 0x00, 0x0a, 0x05, 0x1f, 0x00, 0x02, b'n', b'o', 0x01, 0x87, 0x02, 0x8f,
            0x00, 0x97
        ]
    );
}

#[test]
fn v311_acknowledgements_are_the_packet_id_alone() {
    let ack = Ack {
        packet_id: id(0x1234),
        reason: ReasonCode::NoMatchingSubscribers,
        properties: reason_string("x"),
    };
    assert_eq!(
        encoded(&Packet::PubAck(ack.clone()), Protocol::V311),
        [0x40, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubRec(ack.clone()), Protocol::V311),
        [0x50, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubAck(ack.clone()), Protocol::V5),
        [0x40, 0x08, 0x12, 0x34, 0x10, 0x04, 0x1f, 0x00, 0x01, b'x']
    );
    let not_found = Ack {
        packet_id: id(0x1234),
        reason: ReasonCode::PacketIdentifierNotFound,
        properties: Properties::default(),
    };
    assert_eq!(
        encoded(&Packet::PubRel(not_found.clone()), Protocol::V311),
        [0x62, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubComp(not_found.clone()), Protocol::V311),
        [0x70, 0x02, 0x12, 0x34]
    );
    // 5.0 §3.4.2.1: without properties the property length is left out, and with Success
    // the reason code too.
    assert_eq!(
        encoded(&Packet::PubComp(not_found), Protocol::V5),
        [0x70, 0x03, 0x12, 0x34, 0x92]
    );
    assert_eq!(
        encoded(&Packet::PubAck(Ack::new(id(7))), Protocol::V5),
        [0x40, 0x02, 0x00, 0x07]
    );
}

#[test]
fn v311_connack_maps_v5_reasons_to_return_codes() {
    for (reason, code) in [
        (ReasonCode::Success, 0),
        (ReasonCode::UnsupportedProtocolVersion, 1),
        (ReasonCode::ClientIdentifierNotValid, 2),
        (ReasonCode::ServerUnavailable, 3),
        (ReasonCode::ServerBusy, 3),
        (ReasonCode::QuotaExceeded, 3),
        (ReasonCode::BadUserNameOrPassword, 4),
        (ReasonCode::BadAuthenticationMethod, 4),
        (ReasonCode::NotAuthorized, 5),
        (ReasonCode::Banned, 5),
    ] {
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: reason_string("why"),
        });
        assert_eq!(
            encoded(&connack, Protocol::V311),
            [0x20, 0x02, 0x00, code],
            "{reason:?}"
        );
    }
}

#[test]
fn v311_drops_disconnect_reasons_unsuback_reasons_and_properties() {
    let disconnect = Packet::Disconnect(Disconnect {
        reason: ReasonCode::ServerShuttingDown,
        properties: reason_string("bye"),
    });
    assert_eq!(encoded(&disconnect, Protocol::V311), [0xe0, 0x00]);
    assert_eq!(
        encoded(&disconnect, Protocol::V5),
        [0xe0, 0x08, 0x8b, 0x06, 0x1f, 0x00, 0x03, b'b', b'y', b'e']
    );

    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: id(3),
        reasons: vec![ReasonCode::NoSubscriptionExisted, ReasonCode::Success],
        properties: reason_string("r"),
    });
    assert_eq!(encoded(&unsuback, Protocol::V311), [0xb0, 0x02, 0x00, 0x03]);

    let publish = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".to_owned(),
        packet_id: Some(id(5)),
        properties: Properties {
            message_expiry_interval: Some(60),
            subscription_identifiers: vec![1, 128],
            ..Properties::default()
        },
        payload: Bytes::from_static(b"hi"),
    });
    assert_eq!(
        encoded(&publish, Protocol::V311),
        [
            0x3b, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x05, b'h', b'i'
        ]
    );
}

#[test]
fn v311_subscription_options_carry_only_the_qos() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![(
            "a/+".to_owned(),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        )],
        properties: Properties {
            subscription_identifiers: vec![9],
            ..Properties::default()
        },
    });
    assert_eq!(
        encoded(&subscribe, Protocol::V311),
        [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'+', 0x01]
    );
    assert_eq!(
        encoded(&subscribe, Protocol::V5),
        [
            0x82, 0x0b, 0x00, 0x01, 0x02, 0x0b, 0x09, 0x00, 0x03, b'a', b'/', b'+', 0x2d
        ]
    );
}

#[test]
fn v311_refuses_what_it_cannot_express_and_leaves_the_buffer_alone() {
    let mut buf = BytesMut::from(&b"kept"[..]);
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties::default(),
    });
    assert_eq!(
        auth.encode(Protocol::V311, &mut buf),
        Err(EncodeError::NotInProtocol {
            packet: PacketType::Auth,
            protocol: Protocol::V311,
        })
    );
    assert_eq!(&buf[..], b"kept");

    let connect = Packet::Connect(Box::new(Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 0,
        client_id: "c".to_owned(),
        will: None,
        username: None,
        password: Some(Bytes::from_static(b"secret")),
        properties: Properties::default(),
    }));
    assert_eq!(
        connect.encode(Protocol::V311, &mut buf),
        Err(EncodeError::PasswordWithoutUsername)
    );
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn connect_is_encoded_in_its_own_protocol() {
    let connect = |protocol| {
        Packet::Connect(Box::new(Connect {
            protocol,
            clean_start: true,
            keep_alive: 10,
            client_id: "c".to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }))
    };
    let v311 = connect(Protocol::V311);
    let v5 = connect(Protocol::V5);
    assert_eq!(encoded(&v311, Protocol::V5), encoded(&v311, Protocol::V311));
    assert_eq!(encoded(&v5, Protocol::V311), encoded(&v5, Protocol::V5));
    assert_eq!(
        encoded(&v311, Protocol::V311),
        [
            0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a, 0x00, 0x01,
            b'c'
        ]
    );
    assert_eq!(
        encoded(&v5, Protocol::V5),
        [
            0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x0a, 0x00, 0x00,
            0x01, b'c'
        ]
    );
}
