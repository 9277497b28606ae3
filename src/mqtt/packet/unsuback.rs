//! UNSUBACK (§3.11): in 5.0 one reason code per filter; in 3.1.1 only the packet id.

use bytes::{BufMut, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::ReasonCode;
use crate::mqtt::wire::Reader;
use crate::mqtt::{PacketId, Protocol};

/// The answer to UNSUBSCRIBE. `reasons` is empty for 3.1.1 and ignored when encoding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

impl UnsubAck {
    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::UnsubAck)?;
        let mut ack = UnsubAck {
            packet_id,
            reasons: Vec::new(),
            properties: Properties::default(),
        };
        if protocol == Protocol::V311 {
            return Ok(ack);
        }
        ack.properties = Properties::decode(r, PropertyContext::UnsubAck)?;
        while !r.is_empty() {
            let code = r.u8()?;
            let reason = ReasonCode::from_u8(code)
                .filter(|reason| reason.allowed_in(PacketType::UnsubAck))
                .ok_or(Malformed::InvalidReasonCode {
                    packet: PacketType::UnsubAck,
                    code,
                })?;
            ack.reasons.push(reason);
        }
        if ack.reasons.is_empty() {
            return Err(ProtocolViolation::NoReasonCodes(PacketType::UnsubAck).into());
        }
        Ok(ack)
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if protocol == Protocol::V311 {
            return Ok(2);
        }
        if self.reasons.is_empty() {
            return Err(EncodeError::Empty(PacketType::UnsubAck));
        }
        if let Some(bad) = self
            .reasons
            .iter()
            .find(|r| !r.allowed_in(PacketType::UnsubAck))
        {
            return Err(EncodeError::InvalidReasonCode {
                packet: PacketType::UnsubAck,
                code: *bad,
            });
        }
        Ok(2 + self.properties.wire_len() + self.reasons.len())
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if protocol == Protocol::V5 {
            self.properties.encode(PropertyContext::UnsubAck, buf)?;
            self.reasons.iter().for_each(|r| buf.put_u8(r.as_u8()));
        }
        Ok(())
    }
}
