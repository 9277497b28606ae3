//! Helpers shared by the vector modules: decode exactly one packet, encode one packet,
//! and check a rejection together with the answer the broker must send.

use std::num::NonZeroU16;

use bytes::BytesMut;
use raftmq::mqtt::{
    Codec, DEFAULT_MAX_PACKET_SIZE, DecodeError, Packet, PacketId, Protocol, ReasonCode, Response,
};

/// A codec for a connection whose CONNECT has already been exchanged.
pub(crate) fn codec(protocol: Protocol) -> Codec {
    Codec::for_protocol(protocol, DEFAULT_MAX_PACKET_SIZE)
}

pub(crate) fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).expect("test packet ids are non-zero")
}

/// Decodes `bytes` as exactly one whole packet with `codec`, consuming every byte.
pub(crate) fn decode_with(codec: &mut Codec, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = codec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{bytes:02x?} failed to decode: {e}"))
        .unwrap_or_else(|| panic!("{bytes:02x?} was reported incomplete"));
    assert!(buf.is_empty(), "{} bytes left after one packet", buf.len());
    packet
}

pub(crate) fn decode(protocol: Protocol, bytes: &[u8]) -> Packet {
    decode_with(&mut codec(protocol), bytes)
}

pub(crate) fn encode(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let written = packet
        .encode(protocol, &mut buf)
        .unwrap_or_else(|e| panic!("{packet:?} failed to encode: {e}"));
    assert_eq!(written, buf.len(), "encode must return the bytes it wrote");
    buf.to_vec()
}

/// The bytes decode to `packet`, and `packet` encodes back to exactly the bytes.
pub(crate) fn round_trip(protocol: Protocol, bytes: &[u8], packet: &Packet) {
    assert_eq!(&decode(protocol, bytes), packet, "decoding {bytes:02x?}");
    assert_eq!(encode(packet, protocol), bytes, "encoding {packet:?}");
}

/// Feeds a whole frame to `codec` and returns the error it must produce.
pub(crate) fn decode_error_with(codec: &mut Codec, bytes: &[u8]) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match codec.decode(&mut buf) {
        Err(e) => e,
        Ok(other) => panic!("{bytes:02x?} decoded to {other:?} instead of failing"),
    }
}

/// Checks that a connection already speaking `protocol` refuses `bytes` with `expected`,
/// that the error names `reason`, and that the broker answers as §4.13 of 5.0 says
/// (DISCONNECT with that reason) or, in 3.1.1, closes the connection (§4.8 of 3.1.1).
pub(crate) fn rejects(
    protocol: Protocol,
    bytes: &[u8],
    expected: impl Into<DecodeError>,
    reason: ReasonCode,
) {
    let mut codec = codec(protocol);
    let error = decode_error_with(&mut codec, bytes);
    assert_eq!(error, expected.into(), "error for {bytes:02x?}");
    assert_eq!(error.reason_code(), reason, "reason code for {bytes:02x?}");
    let response = match protocol {
        Protocol::V5 => Response::Disconnect(reason),
        Protocol::V311 => Response::Close,
    };
    assert_eq!(codec.response(&error), response, "response to {bytes:02x?}");
}

/// `rejects` for both protocol levels, when the bytes mean the same in both.
pub(crate) fn rejects_both(
    bytes_v311: &[u8],
    bytes_v5: &[u8],
    expected: DecodeError,
    reason: ReasonCode,
) {
    rejects(Protocol::V311, bytes_v311, expected.clone(), reason);
    rejects(Protocol::V5, bytes_v5, expected, reason);
}

/// Checks that a server codec that has seen nothing yet refuses the CONNECT `bytes` with
/// `expected` and answers with `response`.
pub(crate) fn connect_rejected(bytes: &[u8], expected: impl Into<DecodeError>, response: Response) {
    let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
    let error = decode_error_with(&mut codec, bytes);
    assert_eq!(error, expected.into(), "error for {bytes:02x?}");
    assert_eq!(codec.response(&error), response, "response to {bytes:02x?}");
    assert_eq!(
        codec.protocol(),
        None,
        "a refused CONNECT must not fix the protocol"
    );
}

/// A whole frame: the first byte, the remaining length (one byte: every body built this
/// way is under 128 bytes) and the body. For negative vectors whose body is easier to read
/// without counting its length by hand.
pub(crate) fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len())
        .ok()
        .filter(|len| *len < 0x80)
        .expect("frame() builds one-byte remaining lengths only");
    let mut bytes = vec![first, len];
    bytes.extend_from_slice(body);
    bytes
}
