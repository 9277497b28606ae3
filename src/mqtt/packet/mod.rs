//! The control packets, one file per packet type, and the dispatch between them: the
//! packet type and flags of the fixed header select the parser, and every packet encodes
//! its own body.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

pub use ack::Ack;
pub use auth::Auth;
pub use connack::ConnAck;
pub(crate) use connect::peek_protocol;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use super::error::{DecodeError, EncodeError, Malformed};
use super::wire::{Reader, put_varint, varint_len};
use super::{PacketId, Protocol};

/// The control packet types (§2.1.2). 0 is reserved; 15 is AUTH in MQTT 5.0 and reserved in
/// MQTT 3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The packet type for the high nibble of the first byte, in `protocol` (AUTH exists only
    /// in 5.0; before CONNECT `protocol` is `None` and every type is accepted here).
    fn from_nibble(nibble: u8, protocol: Option<Protocol>) -> Result<Self, Malformed> {
        use PacketType::*;
        Ok(match nibble {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 if protocol != Some(Protocol::V311) => Auth,
            other => return Err(Malformed::ReservedPacketType(other)),
        })
    }

    /// The fixed-header flags this type must carry (PUBLISH's are free and checked there).
    fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        };
        f.write_str(name)
    }
}

/// One MQTT control packet, as decoded from or encoded to the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Boxed: a CONNECT carries two property sets and arrives once per connection, so it
    /// should not set the size of every packet.
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// The parsed first byte and remaining length of a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedHeader {
    pub(crate) kind: PacketType,
    pub(crate) flags: u8,
}

impl FixedHeader {
    /// Splits the first byte into type and flags, checking the flags that are fixed by the
    /// packet type (§2.1.3).
    pub(crate) fn parse(byte: u8, protocol: Option<Protocol>) -> Result<Self, Malformed> {
        let kind = PacketType::from_nibble(byte >> 4, protocol)?;
        let flags = byte & 0x0f;
        if kind != PacketType::Publish && flags != kind.required_flags() {
            return Err(Malformed::FixedHeaderFlags {
                packet: kind,
                flags,
            });
        }
        Ok(FixedHeader { kind, flags })
    }
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Parses the body of one frame whose fixed header is `header`. `protocol` is the
    /// connection's protocol; a CONNECT carries its own.
    pub(crate) fn decode_body(
        header: FixedHeader,
        body: Bytes,
        protocol: Protocol,
    ) -> Result<Packet, DecodeError> {
        let kind = header.kind;
        let mut r = Reader::new(body);
        let packet = match kind {
            PacketType::Connect => Packet::Connect(Box::new(Connect::decode(&mut r)?)),
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut r, protocol)?),
            PacketType::Publish => {
                Packet::Publish(Publish::decode(header.flags, &mut r, protocol)?)
            }
            PacketType::PubAck => Packet::PubAck(Ack::decode(kind, &mut r, protocol)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(kind, &mut r, protocol)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(kind, &mut r, protocol)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(kind, &mut r, protocol)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut r, protocol)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut r, protocol)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode(&mut r, protocol)?),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut r, protocol)?),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut r, protocol)?),
            PacketType::Auth => Packet::Auth(Auth::decode(&mut r)?),
        };
        if !r.is_empty() {
            return Err(Malformed::TrailingBytes(r.remaining()).into());
        }
        Ok(packet)
    }

    /// Appends the whole packet to `buf` and returns how many bytes it took. On error
    /// nothing is left in `buf`. A CONNECT is encoded in its own protocol; everything else in
    /// `protocol`. Encoding for MQTT 3.1.1 drops what 3.1.1 cannot carry (properties, reason
    /// codes of acknowledgements) and maps SUBACK and CONNACK codes to their 3.1.1 values.
    pub fn encode(&self, protocol: Protocol, buf: &mut BytesMut) -> Result<usize, EncodeError> {
        let start = buf.len();
        let result = self.encode_inner(protocol, buf);
        match result {
            Ok(()) => Ok(buf.len() - start),
            Err(e) => {
                buf.truncate(start);
                Err(e)
            }
        }
    }

    fn encode_inner(&self, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let kind = self.packet_type();
        let flags = match self {
            Packet::Publish(p) => p.flags(),
            _ => kind.required_flags(),
        };
        let body_len = match self {
            Packet::Connect(p) => p.body_len()?,
            Packet::ConnAck(p) => p.body_len(protocol),
            Packet::Publish(p) => p.body_len(protocol)?,
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.body_len(kind, protocol)?
            }
            Packet::Subscribe(p) => p.body_len(protocol)?,
            Packet::SubAck(p) => p.body_len(protocol)?,
            Packet::Unsubscribe(p) => p.body_len(protocol)?,
            Packet::UnsubAck(p) => p.body_len(protocol)?,
            Packet::PingReq | Packet::PingResp => 0,
            Packet::Disconnect(p) => p.body_len(protocol)?,
            Packet::Auth(p) => p.body_len(protocol)?,
        };
        buf.reserve(1 + varint_len(body_len) + body_len);
        buf.put_u8(((kind as u8) << 4) | flags);
        put_varint(buf, body_len)?;
        match self {
            Packet::Connect(p) => p.encode_body(buf),
            Packet::ConnAck(p) => p.encode_body(protocol, buf),
            Packet::Publish(p) => p.encode_body(protocol, buf),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.encode_body(kind, protocol, buf)
            }
            Packet::Subscribe(p) => p.encode_body(protocol, buf),
            Packet::SubAck(p) => p.encode_body(protocol, buf),
            Packet::Unsubscribe(p) => p.encode_body(protocol, buf),
            Packet::UnsubAck(p) => p.encode_body(protocol, buf),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(p) => p.encode_body(protocol, buf),
            Packet::Auth(p) => p.encode_body(buf),
        }
    }
}

/// Reads a packet identifier that the spec requires to be non-zero.
pub(crate) fn read_packet_id(r: &mut Reader, kind: PacketType) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?)
        .ok_or_else(|| super::error::ProtocolViolation::ZeroPacketId(kind).into())
}
