//! Framing: turns a byte buffer into packets one frame at a time, and packets into bytes.
//!
//! The fixed header and the remaining length are read and checked against the maximum
//! packet size *before* the body is awaited, so a client announcing a 256 MiB packet is
//! refused after five bytes, and nothing is ever allocated from a length read off the wire.

use bytes::{Buf, BytesMut};

use super::Protocol;
use super::error::{DecodeError, EncodeError, Malformed, ProtocolViolation, Response};
use super::packet::{FixedHeader, Packet, PacketType, peek_protocol};

/// The largest remaining length a fixed header can express.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The maximum packet size a codec accepts unless told otherwise: 1 MiB, whole packet
/// (fixed header included), as MQTT 5.0's Maximum Packet Size counts it.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 1024 * 1024;

/// The decoding state of one connection: which protocol it speaks (unknown until its
/// CONNECT) and the largest packet it may send.
#[derive(Debug, Clone)]
pub struct Codec {
    protocol: Option<Protocol>,
    max_packet_size: usize,
    /// The protocol a CONNECT asked for when that CONNECT failed to decode, so the CONNACK
    /// that refuses it can be sent in a form the client understands.
    failed_connect: Option<Protocol>,
}

impl Codec {
    /// A server-side codec: the first packet must be a CONNECT, which fixes the protocol.
    pub fn new(max_packet_size: usize) -> Self {
        Codec {
            protocol: None,
            max_packet_size,
            failed_connect: None,
        }
    }

    /// A codec for a connection whose protocol is already known (a client, or a test).
    pub fn for_protocol(protocol: Protocol, max_packet_size: usize) -> Self {
        Codec {
            protocol: Some(protocol),
            max_packet_size,
            failed_connect: None,
        }
    }

    /// The protocol of the connection, once its CONNECT has been decoded.
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    pub fn set_max_packet_size(&mut self, max_packet_size: usize) {
        self.max_packet_size = max_packet_size;
    }

    /// Decodes the next packet from the front of `buf`, removing its bytes. Returns
    /// `Ok(None)` while the frame is incomplete, leaving `buf` untouched. After an error the
    /// connection must be answered with [`Codec::response`] and closed: the stream cannot
    /// be resynchronised.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let header = FixedHeader::parse(first, self.protocol)?;
        if self.protocol.is_none() && header.kind != PacketType::Connect {
            return Err(ProtocolViolation::FirstPacketNotConnect(header.kind).into());
        }
        let Some((header_len, remaining)) = remaining_length(&buf[1..])? else {
            return Ok(None);
        };
        let size = 1 + header_len + remaining;
        if size > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: self.max_packet_size,
            });
        }
        if buf.len() < size {
            return Ok(None);
        }
        let mut frame = buf.split_to(size);
        frame.advance(1 + header_len);
        let body = frame.freeze();

        if header.kind != PacketType::Connect {
            // Only a CONNECT gets here before the protocol is known (checked above).
            let protocol = self.protocol.unwrap_or(Protocol::V5);
            return Packet::decode_body(header, body, protocol).map(Some);
        }
        let failed = peek_protocol(&body);
        match Packet::decode_body(header, body, Protocol::V5) {
            Ok(packet) => {
                if let (None, Packet::Connect(connect)) = (self.protocol, &packet) {
                    self.protocol = Some(connect.protocol);
                }
                Ok(Some(packet))
            }
            Err(e) => {
                self.failed_connect = failed;
                Err(e)
            }
        }
    }

    /// Encodes `packet` onto the end of `buf` in the connection's protocol and returns its
    /// size. A CONNECT is always encoded in its own protocol.
    pub fn encode(&self, packet: &Packet, buf: &mut BytesMut) -> Result<usize, EncodeError> {
        let protocol = match packet {
            Packet::Connect(connect) => connect.protocol,
            _ => self.protocol.ok_or(EncodeError::UnknownProtocol)?,
        };
        packet.encode(protocol, buf)
    }

    /// What to send before closing a connection whose input failed with `error`.
    pub fn response(&self, error: &DecodeError) -> Response {
        match (self.protocol, self.failed_connect) {
            (Some(Protocol::V5), _) => Response::Disconnect(error.reason_code()),
            (Some(Protocol::V311), _) => Response::Close,
            // Any CONNECT asking for a level we do not speak gets the 3.1.1 return code 1,
            // which clients of every version understand (§3.1.2.2 of both specs).
            (None, _) if matches!(error, DecodeError::UnsupportedProtocolVersion(_)) => {
                Response::ConnAck {
                    protocol: Protocol::V311,
                    reason: error.reason_code(),
                }
            }
            // A wrong protocol name means the bytes are not MQTT: the server may only close,
            // not answer in line with this specification ([MQTT-3.1.2-1] of both specs).
            (None, _)
                if matches!(
                    error,
                    DecodeError::Protocol(ProtocolViolation::ProtocolName(_))
                ) =>
            {
                Response::Close
            }
            (None, Some(Protocol::V5)) => Response::ConnAck {
                protocol: Protocol::V5,
                reason: error.reason_code(),
            },
            // 3.1.1 has no CONNACK code for a malformed CONNECT: close (§4.8 of 3.1.1).
            (None, _) => Response::Close,
        }
    }
}

/// Reads the remaining length after the first byte: `Ok(None)` if more bytes are needed,
/// otherwise the number of bytes it took and its value.
fn remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, Malformed> {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((i + 1, value)));
        }
    }
    if bytes.len() >= 4 {
        Err(Malformed::VariableByteInteger)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;
    use crate::mqtt::{Connect, Properties, ReasonCode};

    fn connect_bytes(protocol: Protocol) -> BytesMut {
        let connect = Connect {
            protocol,
            clean_start: true,
            keep_alive: 30,
            client_id: "c1".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        let mut buf = BytesMut::new();
        Packet::Connect(Box::new(connect))
            .encode(protocol, &mut buf)
            .unwrap();
        buf
    }

    #[test]
    fn empty_and_partial_headers_wait_for_more() {
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::new();
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.put_slice(&[0x10, 0x80, 0x80]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 3, "a partial frame stays in the buffer");
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        let mut codec = Codec::for_protocol(Protocol::V5, 1024);
        // PUBLISH announcing 256 MiB - 1 bytes: refused after five bytes.
        let mut buf = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0x7f][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                size: 268_435_460,
                max: 1024
            }
        );
        assert_eq!(
            codec.response(&err),
            Response::Disconnect(ReasonCode::PacketTooLarge)
        );
    }

    #[test]
    fn the_whole_packet_counts_toward_the_maximum() {
        // PINGREQ is two bytes: allowed at a maximum of 2, not at 1.
        let mut buf = BytesMut::from(&[0xc0, 0x00][..]);
        assert_eq!(
            Codec::for_protocol(Protocol::V5, 2).decode(&mut buf.clone()),
            Ok(Some(Packet::PingReq))
        );
        assert!(matches!(
            Codec::for_protocol(Protocol::V5, 1).decode(&mut buf),
            Err(DecodeError::PacketTooLarge { size: 2, max: 1 })
        ));
    }

    #[test]
    fn five_byte_remaining_length_is_malformed() {
        let mut codec = Codec::for_protocol(Protocol::V311, DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(Malformed::VariableByteInteger.into())
        );
        assert_eq!(
            codec.response(&Malformed::VariableByteInteger.into()),
            Response::Close
        );
    }

    #[test]
    fn connect_fixes_the_protocol() {
        for protocol in [Protocol::V311, Protocol::V5] {
            let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
            let mut buf = connect_bytes(protocol);
            assert!(matches!(
                codec.decode(&mut buf),
                Ok(Some(Packet::Connect(_)))
            ));
            assert_eq!(codec.protocol(), Some(protocol));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn first_packet_must_be_connect() {
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::from(&[0xc0, 0x00][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            ProtocolViolation::FirstPacketNotConnect(PacketType::PingReq).into()
        );
        assert_eq!(codec.response(&err), Response::Close);
    }

    #[test]
    fn broken_v5_connect_is_answered_with_a_v5_connack() {
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = connect_bytes(Protocol::V5);
        buf[9] |= 0x01; // the reserved connect flag
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(err, Malformed::ConnectReservedFlag.into());
        assert_eq!(
            codec.response(&err),
            Response::ConnAck {
                protocol: Protocol::V5,
                reason: ReasonCode::MalformedPacket
            }
        );
    }

    #[test]
    fn broken_v311_connect_closes_the_connection() {
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = connect_bytes(Protocol::V311);
        buf[9] |= 0x01;
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(codec.response(&err), Response::Close);
    }

    #[test]
    fn encode_needs_a_protocol_except_for_connect() {
        let codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut buf = BytesMut::new();
        assert_eq!(
            codec.encode(&Packet::PingResp, &mut buf),
            Err(EncodeError::UnknownProtocol)
        );
        assert!(buf.is_empty());
    }
}
