//! Encoding and decoding with both codecs, and the two-way check of one packet.

use super::*;

pub(crate) fn our_encode(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet
        .encode(protocol, &mut buf)
        .unwrap_or_else(|e| panic!("raftmq cannot encode {packet:?}: {e}"));
    buf.to_vec()
}

/// Decodes one whole packet, which must take every byte.
pub(crate) fn our_decode(bytes: &[u8], protocol: Protocol) -> Packet {
    let mut codec = Codec::for_protocol(protocol, DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(bytes);
    match codec.decode(&mut buf) {
        Ok(Some(packet)) => {
            assert!(
                buf.is_empty(),
                "raftmq left {:02x?} of {bytes:02x?}",
                &buf[..]
            );
            packet
        }
        other => panic!("raftmq decodes {bytes:02x?} as {other:?}"),
    }
}

pub(crate) fn r4_encode(packet: &r4::Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet
        .write(&mut buf, usize::MAX)
        .unwrap_or_else(|e| panic!("rumqttc cannot encode {packet:?}: {e}"));
    buf.to_vec()
}

pub(crate) fn r4_decode(bytes: &[u8]) -> r4::Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = r4::Packet::read(&mut buf, usize::MAX)
        .unwrap_or_else(|e| panic!("rumqttc refuses {bytes:02x?}: {e}"));
    assert!(
        buf.is_empty(),
        "rumqttc left {:02x?} of {bytes:02x?}",
        &buf[..]
    );
    packet
}

pub(crate) fn r5_encode(packet: &r5::Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet
        .write(&mut buf, None)
        .unwrap_or_else(|e| panic!("rumqttc cannot encode {packet:?}: {e}"));
    buf.to_vec()
}

pub(crate) fn r5_decode(bytes: &[u8]) -> r5::Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = r5::Packet::read(&mut buf, None)
        .unwrap_or_else(|e| panic!("rumqttc refuses {bytes:02x?}: {e}"));
    assert!(
        buf.is_empty(),
        "rumqttc left {:02x?} of {bytes:02x?}",
        &buf[..]
    );
    packet
}

/// The fixed header rumqttc parses a whole frame with, for the packets its `Packet::read`
/// does not dispatch (see the quirks).
pub(crate) fn r5_header(bytes: &[u8]) -> r5::FixedHeader {
    r5::check(bytes.iter(), None).unwrap_or_else(|e| panic!("rumqttc frames {bytes:02x?}: {e}"))
}

/// `ours` and its rumqttc counterpart are the same 3.1.1 packet: each side decodes the
/// other's encoding to its own value, and both encodings are the same bytes.
pub(crate) fn check_v4(ours: &Packet) {
    let theirs = to_r4(ours);
    let their_bytes = r4_encode(&theirs);
    assert_eq!(
        &our_decode(&their_bytes, Protocol::V311),
        ours,
        "raftmq decoding rumqttc's {their_bytes:02x?}"
    );
    let our_bytes = our_encode(ours, Protocol::V311);
    assert_eq!(
        r4_decode(&our_bytes),
        theirs,
        "rumqttc decoding raftmq's {our_bytes:02x?}"
    );
    assert_eq!(our_bytes, their_bytes, "3.1.1 has one encoding of {ours:?}");
}

/// `ours` and its rumqttc counterpart are the same 5.0 packet: each side decodes the other's
/// encoding to its own value.
pub(crate) fn check_v5(ours: &Packet) {
    let theirs = to_r5(ours);
    let their_bytes = r5_encode(&theirs);
    assert_eq!(
        &our_decode(&their_bytes, Protocol::V5),
        ours,
        "raftmq decoding rumqttc's {their_bytes:02x?}"
    );
    let our_bytes = our_encode(ours, Protocol::V5);
    assert_eq!(
        r5_decode(&our_bytes),
        theirs,
        "rumqttc decoding raftmq's {our_bytes:02x?}"
    );
}
