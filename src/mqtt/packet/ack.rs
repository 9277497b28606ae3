//! PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–§3.7): the four acknowledgements of the QoS 1
//! and QoS 2 flows share one shape: a packet identifier, and in 5.0 a reason code and
//! properties that may both be omitted when the reason is Success.

use bytes::{BufMut, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, Malformed};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::ReasonCode;
use crate::mqtt::wire::Reader;
use crate::mqtt::{PacketId, Protocol};

/// An acknowledgement in the QoS 1 / QoS 2 flows; which one is told by the [`super::Packet`]
/// variant that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: PacketId,
    /// Always Success in 3.1.1, which has no reason codes here.
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement without properties.
    pub fn new(packet_id: PacketId) -> Self {
        Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }
    }

    fn context(kind: PacketType) -> PropertyContext {
        match kind {
            PacketType::PubAck => PropertyContext::PubAck,
            PacketType::PubRec => PropertyContext::PubRec,
            PacketType::PubRel => PropertyContext::PubRel,
            _ => PropertyContext::PubComp,
        }
    }

    pub(crate) fn decode(
        kind: PacketType,
        r: &mut Reader,
        protocol: Protocol,
    ) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, kind)?;
        let mut ack = Ack::new(packet_id);
        if protocol == Protocol::V5 && !r.is_empty() {
            let code = r.u8()?;
            ack.reason = ReasonCode::from_u8(code)
                .filter(|reason| reason.allowed_in(kind))
                .ok_or(Malformed::InvalidReasonCode { packet: kind, code })?;
            // §3.4.2.2: with a remaining length below 4 there is no property length.
            if !r.is_empty() {
                ack.properties = Properties::decode(r, Self::context(kind))?;
            }
        }
        Ok(ack)
    }

    pub(crate) fn body_len(
        &self,
        kind: PacketType,
        protocol: Protocol,
    ) -> Result<usize, EncodeError> {
        if protocol == Protocol::V311 {
            return Ok(2);
        }
        if !self.reason.allowed_in(kind) {
            return Err(EncodeError::InvalidReasonCode {
                packet: kind,
                code: self.reason,
            });
        }
        Ok(match (self.reason, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 2,
            (_, true) => 3,
            (_, false) => 3 + self.properties.wire_len(),
        })
    }

    pub(crate) fn encode_body(
        &self,
        kind: PacketType,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if protocol == Protocol::V311 {
            return Ok(());
        }
        let empty = self.properties.is_empty();
        if self.reason != ReasonCode::Success || !empty {
            buf.put_u8(self.reason.as_u8());
        }
        if !empty {
            self.properties.encode(Self::context(kind), buf)?;
        }
        Ok(())
    }
}
