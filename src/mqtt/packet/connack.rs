//! CONNACK (§3.2): the server's answer to CONNECT.

use bytes::{BufMut, BytesMut};

use super::PacketType;
use crate::mqtt::Protocol;
use crate::mqtt::error::{DecodeError, EncodeError, Malformed};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::{ConnectReturnCode, ReasonCode};
use crate::mqtt::wire::Reader;

/// The answer to CONNECT. The reason is kept as a v5 [`ReasonCode`] for both protocols; a
/// 3.1.1 return code converts to and from it (see [`ConnectReturnCode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & !0x01 != 0 {
            return Err(Malformed::ConnAckReservedFlags.into());
        }
        let code = r.u8()?;
        let invalid = Malformed::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        };
        let (reason, properties) = match protocol {
            Protocol::V311 => {
                let rc = ConnectReturnCode::from_u8(code).ok_or(invalid)?;
                (ReasonCode::from(rc), Properties::default())
            }
            Protocol::V5 => {
                let reason = ReasonCode::from_u8(code)
                    .filter(|r| r.allowed_in(PacketType::ConnAck))
                    .ok_or(invalid)?;
                (reason, Properties::decode(r, PropertyContext::ConnAck)?)
            }
        };
        Ok(ConnAck {
            session_present: flags & 0x01 != 0,
            reason,
            properties,
        })
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> usize {
        match protocol {
            Protocol::V311 => 2,
            Protocol::V5 => 2 + self.properties.wire_len(),
        }
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u8(u8::from(self.session_present));
        match protocol {
            Protocol::V311 => buf.put_u8(ConnectReturnCode::from(self.reason) as u8),
            Protocol::V5 => {
                if !self.reason.allowed_in(PacketType::ConnAck) {
                    return Err(EncodeError::InvalidReasonCode {
                        packet: PacketType::ConnAck,
                        code: self.reason,
                    });
                }
                buf.put_u8(self.reason.as_u8());
                self.properties.encode(PropertyContext::ConnAck, buf)?;
            }
        }
        Ok(())
    }
}
