//! Rules shared by every packet: the remaining length (§2.2.3 of 3.1.1, §1.5.5 and §2.1.4
//! of 5.0), the maximum packet size, incomplete and split frames, several packets in one
//! buffer, and UTF-8 strings (§1.5.3 of 3.1.1, §1.5.4 of 5.0).

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use raftmq::mqtt::{
    Codec, DEFAULT_MAX_PACKET_SIZE, DecodeError, MAX_REMAINING_LENGTH, Malformed, Packet,
    Properties, Protocol, Publish, QoS, ReasonCode, Response,
};

use crate::common::{codec, decode_with, encode, rejects, rejects_both, round_trip};
use crate::{connect, control, publish, subscribe};

/// Every valid vector of every module, with the protocol it is written in.
fn every_vector() -> Vec<(Protocol, &'static [u8], Packet)> {
    let mut vectors = connect::vectors();
    vectors.extend(publish::vectors());
    vectors.extend(subscribe::vectors());
    vectors.extend(control::vectors());
    vectors
}

#[test]
fn vectors_cover_every_packet_type_at_both_levels() {
    let covered: HashSet<_> = every_vector()
        .iter()
        .map(|(protocol, _, packet)| (*protocol, packet.packet_type() as u8))
        .collect();
    for kind in 1..=15u8 {
        assert!(covered.contains(&(Protocol::V5, kind)), "5.0 type {kind}");
        // Type 15 is reserved in 3.1.1 (§2.2.1).
        if kind != 15 {
            assert!(
                covered.contains(&(Protocol::V311, kind)),
                "3.1.1 type {kind}"
            );
        }
    }
}

/// A QoS 0 PUBLISH to "a" whose remaining length is `remaining`.
fn publish_with_remaining(remaining: usize) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a".into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::from(vec![0x5a; remaining - 3]),
    })
}

#[test]
fn remaining_length_table() {
    // 3.1.1 §2.2.3, table 2.4 (5.0 §1.5.5, table 1-1): the first and last value of each
    // encoded size. Remaining length 0 is PINGREQ's C0 00.
    round_trip(Protocol::V311, &[0xc0, 0x00], &Packet::PingReq);
    let mut big = Codec::for_protocol(Protocol::V311, 4 * 1024 * 1024);
    for (remaining, header) in [
        (127, &[0x7f][..]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xff, 0xff, 0x7f]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    ] {
        let packet = publish_with_remaining(remaining);
        let bytes = encode(&packet, Protocol::V311);
        assert_eq!(bytes[0], 0x30);
        assert_eq!(&bytes[1..1 + header.len()], header, "remaining {remaining}");
        assert_eq!(bytes.len(), 1 + header.len() + remaining);
        assert_eq!(decode_with(&mut big, &bytes), packet);
    }
}

#[test]
fn largest_remaining_length_is_read_from_its_four_bytes() {
    // FF FF FF 7F is 268,435,455, the largest value (table 2.4); refusing it as too large
    // shows the value the codec read without sending 256 MiB.
    assert_eq!(MAX_REMAINING_LENGTH, 268_435_455);
    let mut codec = codec(Protocol::V5);
    let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 1 + 4 + 268_435_455,
            max: DEFAULT_MAX_PACKET_SIZE,
        })
    );
}

#[test]
fn remaining_length_with_a_fifth_byte_is_malformed() {
    // 3.1.1 §2.2.3 / 5.0 §1.5.5: at most four bytes. Refused as soon as the fourth byte
    // asks for a fifth, and with the fifth present.
    for bytes in [
        &[0x30, 0xff, 0xff, 0xff, 0xff][..],
        &[0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
    ] {
        rejects_both(
            bytes,
            bytes,
            Malformed::VariableByteInteger.into(),
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn incomplete_remaining_length_waits() {
    for bytes in [
        &[][..],
        &[0x30],
        &[0x30, 0xff],
        &[0x30, 0xff, 0xff],
        &[0x30, 0xff, 0xff, 0xff],
    ] {
        let mut buf = BytesMut::from(bytes);
        assert_eq!(codec(Protocol::V5).decode(&mut buf), Ok(None));
        assert_eq!(
            &buf[..],
            bytes,
            "an incomplete frame must stay in the buffer"
        );
    }
}

#[test]
fn oversized_packet_is_refused_from_its_header() {
    // 5.0 §3.1.2.11.4 and §4.13: a packet over the Maximum Packet Size is answered with
    // DISCONNECT 0x95; 3.1.1 has no DISCONNECT from the server, so it closes. The body
    // never arrives: the header alone must decide.
    for (protocol, response) in [
        (
            Protocol::V5,
            Response::Disconnect(ReasonCode::PacketTooLarge),
        ),
        (Protocol::V311, Response::Close),
    ] {
        for (bytes, size) in [
            (&[0x30, 0xff, 0xff, 0xff, 0x7f][..], 268_435_460),
            (&[0x30, 0x81, 0x08], 1 + 2 + 1025),
        ] {
            let mut codec = Codec::for_protocol(protocol, 1024);
            let mut buf = BytesMut::from(bytes);
            let error = codec.decode(&mut buf).unwrap_err();
            assert_eq!(error, DecodeError::PacketTooLarge { size, max: 1024 });
            assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
            assert_eq!(codec.response(&error), response);
        }
    }
}

#[test]
fn maximum_packet_size_counts_the_whole_packet() {
    // 5.0 §3.1.2.11.4: "the total number of bytes in an MQTT Control Packet".
    let len = publish::PUBLISH_V311.len();
    let mut exact = Codec::for_protocol(Protocol::V311, len);
    assert_eq!(
        decode_with(&mut exact, publish::PUBLISH_V311),
        publish::publish_a_b()
    );
    let mut short = Codec::for_protocol(Protocol::V311, len - 1);
    let mut buf = BytesMut::from(publish::PUBLISH_V311);
    assert_eq!(
        short.decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: len,
            max: len - 1,
        })
    );
}

#[test]
fn server_refuses_a_256_mib_connect_before_knowing_the_protocol() {
    let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(&[0x10, 0xff, 0xff, 0xff, 0x7f][..]);
    let error = codec.decode(&mut buf).unwrap_err();
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: DEFAULT_MAX_PACKET_SIZE,
        }
    );
    assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
    // No CONNECT has been read, so there is no protocol to answer in.
    assert_eq!(codec.response(&error), Response::Close);
    assert_eq!(codec.protocol(), None);
}

#[test]
fn every_incomplete_frame_waits_and_leaves_the_buffer_alone() {
    for (protocol, bytes, _) in every_vector() {
        for end in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..end]);
            assert_eq!(
                codec(protocol).decode(&mut buf),
                Ok(None),
                "{protocol:?} {bytes:02x?} cut at {end}"
            );
            assert_eq!(&buf[..], &bytes[..end]);
        }
    }
}

#[test]
fn every_frame_split_anywhere_decodes_once_complete() {
    for (protocol, bytes, expected) in every_vector() {
        for split in 1..bytes.len() {
            let mut codec = codec(protocol);
            let mut buf = BytesMut::from(&bytes[..split]);
            assert_eq!(codec.decode(&mut buf), Ok(None));
            buf.extend_from_slice(&bytes[split..]);
            assert_eq!(
                codec.decode(&mut buf),
                Ok(Some(expected.clone())),
                "{protocol:?} {bytes:02x?} split at {split}"
            );
            assert!(buf.is_empty());
        }
    }
}

#[test]
fn frames_fed_one_byte_at_a_time_decode_exactly_once() {
    for (protocol, bytes, expected) in every_vector() {
        let mut codec = codec(protocol);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in bytes {
            buf.extend_from_slice(&[*byte]);
            if let Some(packet) = codec.decode(&mut buf).unwrap() {
                decoded.push(packet);
            }
        }
        assert_eq!(decoded, [expected], "{protocol:?} {bytes:02x?}");
    }
}

#[test]
fn packets_in_one_buffer_decode_in_order() {
    // A server codec takes its protocol from the CONNECT, and the PUBLISH after it is
    // only valid at that level: as 5.0, its payload "hi" would be read as a property
    // length of 0x68 and fail.
    for (connect, publish, protocol) in [
        (connect::CONNECT_V311, publish::PUBLISH_V311, Protocol::V311),
        (connect::CONNECT_V5, publish::PUBLISH_V5, Protocol::V5),
    ] {
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(connect);
        buf.extend_from_slice(publish);
        buf.extend_from_slice(control::PINGREQ);
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Packet::Connect(_)))
        ));
        assert_eq!(codec.protocol(), Some(protocol));
        assert_eq!(codec.decode(&mut buf), Ok(Some(publish::publish_a_b())));
        assert_eq!(codec.decode(&mut buf), Ok(Some(Packet::PingReq)));
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }
}

#[test]
fn a_second_packet_that_is_incomplete_stays_buffered() {
    let mut buf = BytesMut::from(publish::PUBLISH_V311);
    buf.extend_from_slice(&control::PINGREQ[..1]);
    let mut codec = codec(Protocol::V311);
    assert_eq!(codec.decode(&mut buf), Ok(Some(publish::publish_a_b())));
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(&buf[..], &[0xc0]);
}

fn publish_to(topic: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        properties: Properties::default(),
        payload: Bytes::new(),
    })
}

#[test]
fn utf8_string_example() {
    // 3.1.1 §1.5.3.1, figure 1.2 (and 5.0 §1.5.4.1): "A\u{2A6D4}" is 00 05 41 F0 AA
    // 9B 94.
    round_trip(
        Protocol::V311,
        &[0x30, 0x07, 0x00, 0x05, 0x41, 0xf0, 0xaa, 0x9b, 0x94],
        &publish_to("A\u{2A6D4}"),
    );
    round_trip(
        Protocol::V5,
        &[0x30, 0x08, 0x00, 0x05, 0x41, 0xf0, 0xaa, 0x9b, 0x94, 0x00],
        &publish_to("A\u{2A6D4}"),
    );
}

#[test]
fn byte_order_mark_is_kept() {
    // 3.1.1 [MQTT-1.5.3-3] / 5.0 [MQTT-1.5.4-3]: EF BB BF is U+FEFF and must not be
    // skipped or stripped.
    round_trip(
        Protocol::V311,
        &[0x30, 0x06, 0x00, 0x04, 0xef, 0xbb, 0xbf, b'a'],
        &publish_to("\u{feff}a"),
    );
}

#[test]
fn ill_formed_utf8_is_malformed() {
    // 3.1.1 [MQTT-1.5.3-1] / 5.0 [MQTT-1.5.4-1]: surrogates (here U+D800 as ED A0 80)
    // and every other ill-formed sequence, such as the overlong C0 AF for '/' or a
    // multi-byte sequence cut short, make the packet malformed.
    for string in [
        &[0x00, 0x03, 0xed, 0xa0, 0x80][..],
        &[0x00, 0x02, 0xc0, 0xaf],
        &[0x00, 0x02, b'A', 0xe2],
        &[0x00, 0x03, 0xe2, 0x82, b'A'],
        &[0x00, 0x01, 0xff],
    ] {
        let v311: Vec<u8> = [&[0x30, string.len() as u8][..], string].concat();
        let v5: Vec<u8> = [&[0x30, string.len() as u8 + 1][..], string, &[0x00]].concat();
        rejects_both(
            &v311,
            &v5,
            Malformed::InvalidUtf8.into(),
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn null_character_is_malformed() {
    // 3.1.1 [MQTT-1.5.3-2] / 5.0 [MQTT-1.5.4-2]: U+0000 makes the packet malformed.
    rejects_both(
        &[0x30, 0x05, 0x00, 0x03, b'a', 0x00, b'b'],
        &[0x30, 0x06, 0x00, 0x03, b'a', 0x00, b'b', 0x00],
        Malformed::NullCharacter.into(),
        ReasonCode::MalformedPacket,
    );
    // Not only topic names: a topic filter and a user property name are strings too.
    rejects(
        Protocol::V5,
        &[0x82, 0x08, 0x00, 0x0a, 0x00, 0x00, 0x02, b'a', 0x00, 0x00],
        Malformed::NullCharacter,
        ReasonCode::MalformedPacket,
    );
    rejects(
        Protocol::V5,
        &[
            0x40, 0x0b, 0x00, 0x0a, 0x00, 0x07, 0x26, 0x00, 0x01, 0x00, 0x00, 0x01, b'v',
        ],
        Malformed::NullCharacter,
        ReasonCode::MalformedPacket,
    );
}
