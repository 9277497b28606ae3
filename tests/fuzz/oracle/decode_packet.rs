//! The checks of the `decode_packet` fuzz target, kept in their own file so that the
//! workspace test `tests/fuzz_regressions.rs` includes this very file by path: an input that
//! once failed under fuzzing is replayed by `cargo test` under exactly the same checks.
//!
//! An input is `[max_hi, max_lo, split_hi, split_lo, stream...]`. The first two bytes give
//! the maximum packet size (`0xffff` means the default of 1 MiB), the next two where the
//! stream is cut in two for the split-feeding check; the rest is the byte stream a client
//! sent. Every stream is decoded by a server codec (first packet must be CONNECT) and by
//! codecs fixed to 3.1.1 and to 5.0, and for each the checks are:
//!
//! - decoding never panics, and `Ok(None)` leaves the buffer untouched;
//! - every decoded packet encodes again in the protocol it was decoded in, and decoding
//!   that encoding gives back the same packet (encoder and decoder agree), and encoding
//!   the result gives the same bytes (encoding is canonical);
//! - feeding the stream in two parts gives exactly the packets, error and left-over bytes
//!   of feeding it at once (decoding does not depend on how the bytes arrive).

use bytes::BytesMut;
use raftmq::mqtt::{Codec, DEFAULT_MAX_PACKET_SIZE, DecodeError, Packet, Protocol, Response};

/// Bytes at the front of an input that set up the run instead of being decoded.
pub(crate) const HEADER_LEN: usize = 4;

/// How a codec starts: as a server waiting for CONNECT, or with its protocol known.
#[derive(Debug, Clone, Copy)]
enum Start {
    Server,
    V311,
    V5,
}

impl Start {
    const ALL: [Start; 3] = [Start::Server, Start::V311, Start::V5];

    fn codec(self, max_packet_size: usize) -> Codec {
        match self {
            Start::Server => Codec::new(max_packet_size),
            Start::V311 => Codec::for_protocol(Protocol::V311, max_packet_size),
            Start::V5 => Codec::for_protocol(Protocol::V5, max_packet_size),
        }
    }
}

/// Everything observable about decoding one stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Each packet with the protocol the connection spoke once it was decoded.
    packets: Vec<(Packet, Protocol)>,
    /// `Ok(n)`: decoding stopped for want of bytes with `n` bytes buffered. `Err`: it
    /// failed, with what the server would answer.
    end: Result<usize, (DecodeError, Response)>,
}

/// Decodes packets from `buf` until the codec needs more bytes (`Ok`) or fails (`Err`).
fn drain(
    codec: &mut Codec,
    buf: &mut BytesMut,
    packets: &mut Vec<(Packet, Protocol)>,
) -> Result<(), (DecodeError, Response)> {
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before, "{packet:?} was decoded from no bytes");
                let protocol = codec
                    .protocol()
                    .unwrap_or_else(|| panic!("{packet:?} decoded with no protocol known"));
                packets.push((packet, protocol));
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                return Ok(());
            }
            Err(error) => {
                let response = codec.response(&error);
                return Err((error, response));
            }
        }
    }
}

/// Decodes `stream` fed in two parts, cut at `at`; `at == stream.len()` feeds it whole.
fn decode(start: Start, max_packet_size: usize, stream: &[u8], at: usize) -> Outcome {
    let mut codec = start.codec(max_packet_size);
    let mut packets = Vec::new();
    let (first, rest) = stream.split_at(at);
    let mut buf = BytesMut::from(first);
    let mut end = drain(&mut codec, &mut buf, &mut packets);
    if end.is_ok() {
        buf.extend_from_slice(rest);
        end = drain(&mut codec, &mut buf, &mut packets);
    }
    Outcome {
        packets,
        end: end.map(|()| buf.len()),
    }
}

/// Encodes a decoded packet in its protocol and checks that it decodes back to itself and
/// that encoding is canonical.
fn round_trip(packet: &Packet, protocol: Protocol) {
    let mut wire = BytesMut::new();
    let len = packet
        .encode(protocol, &mut wire)
        .unwrap_or_else(|e| panic!("decoded {packet:?} does not encode in {protocol:?}: {e}"));
    assert_eq!(len, wire.len(), "encode reported the wrong size");
    let encoded = wire.clone();
    // No size limit: a re-encoding may be larger than the frame it came from (an AUTH
    // that omitted its property length gets one).
    let mut codec = Codec::for_protocol(protocol, usize::MAX);
    let again = match codec.decode(&mut wire) {
        Ok(Some(again)) => again,
        other => panic!(
            "{packet:?} encoded in {protocol:?} as {:02x?} decodes as {other:?}",
            &encoded[..]
        ),
    };
    assert!(wire.is_empty(), "{} bytes left after the frame", wire.len());
    assert_eq!(
        &again,
        packet,
        "{protocol:?} round trip through {:02x?} changed the packet",
        &encoded[..]
    );
    let mut second = BytesMut::new();
    again
        .encode(protocol, &mut second)
        .expect("a packet that encoded once encodes twice");
    assert_eq!(second, encoded, "encoding is not canonical for {packet:?}");
}

/// Runs every check on one fuzz input (see the module documentation for its layout).
pub(crate) fn check(data: &[u8]) {
    let Some((head, stream)) = data.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let max_packet_size = match u16::from_be_bytes([head[0], head[1]]) {
        u16::MAX => DEFAULT_MAX_PACKET_SIZE,
        n => usize::from(n),
    };
    let at = usize::from(u16::from_be_bytes([head[2], head[3]])) % (stream.len() + 1);
    for start in Start::ALL {
        let whole = decode(start, max_packet_size, stream, stream.len());
        for (packet, protocol) in &whole.packets {
            round_trip(packet, *protocol);
        }
        let split = decode(start, max_packet_size, stream, at);
        assert_eq!(
            whole, split,
            "{start:?} codec: feeding the stream cut at {at} differs from feeding it whole"
        );
    }
}
