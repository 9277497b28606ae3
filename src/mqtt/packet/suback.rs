//! SUBACK (§3.9): one return / reason code per filter of the SUBSCRIBE.

use bytes::{BufMut, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::ReasonCode;
use crate::mqtt::wire::Reader;
use crate::mqtt::{PacketId, Protocol};

/// The answer to SUBSCRIBE. 3.1.1 knows only granted QoS 0/1/2 and failure (0x80); any v5
/// failure reason is sent to a 3.1.1 client as 0x80.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    pub reasons: Vec<ReasonCode>,
    pub properties: Properties,
}

fn v311_code(reason: ReasonCode) -> u8 {
    match reason {
        ReasonCode::Success | ReasonCode::GrantedQoS1 | ReasonCode::GrantedQoS2 => reason.as_u8(),
        _ => ReasonCode::UnspecifiedError.as_u8(),
    }
}

impl SubAck {
    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::SubAck)?;
        let properties = match protocol {
            Protocol::V5 => Properties::decode(r, PropertyContext::SubAck)?,
            Protocol::V311 => Properties::default(),
        };
        let mut reasons = Vec::new();
        while !r.is_empty() {
            let code = r.u8()?;
            let reason = ReasonCode::from_u8(code)
                .filter(|reason| match protocol {
                    Protocol::V311 => v311_code(*reason) == code,
                    Protocol::V5 => reason.allowed_in(PacketType::SubAck),
                })
                .ok_or(Malformed::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code,
                })?;
            reasons.push(reason);
        }
        if reasons.is_empty() {
            return Err(ProtocolViolation::NoReasonCodes(PacketType::SubAck).into());
        }
        Ok(SubAck {
            packet_id,
            reasons,
            properties,
        })
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if self.reasons.is_empty() {
            return Err(EncodeError::Empty(PacketType::SubAck));
        }
        if protocol == Protocol::V5 {
            if let Some(bad) = self
                .reasons
                .iter()
                .find(|r| !r.allowed_in(PacketType::SubAck))
            {
                return Err(EncodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code: *bad,
                });
            }
            return Ok(2 + self.properties.wire_len() + self.reasons.len());
        }
        Ok(2 + self.reasons.len())
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        match protocol {
            Protocol::V5 => {
                self.properties.encode(PropertyContext::SubAck, buf)?;
                self.reasons.iter().for_each(|r| buf.put_u8(r.as_u8()));
            }
            Protocol::V311 => self.reasons.iter().for_each(|r| buf.put_u8(v311_code(*r))),
        }
        Ok(())
    }
}
