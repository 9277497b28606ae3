//! AUTH (5.0 §3.15): extended authentication exchange. Packet type 15 is reserved in 3.1.1,
//! so the codec never produces or accepts this packet there.

use bytes::{BufMut, BytesMut};

use super::PacketType;
use crate::mqtt::Protocol;
use crate::mqtt::error::{DecodeError, EncodeError, Malformed};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::ReasonCode;
use crate::mqtt::wire::Reader;

/// One step of an extended authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason: ReasonCode,
    /// Authentication method and data, reason string, user properties.
    pub properties: Properties,
}

impl Auth {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut auth = Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        if r.is_empty() {
            return Ok(auth);
        }
        let code = r.u8()?;
        auth.reason = ReasonCode::from_u8(code)
            .filter(|reason| reason.allowed_in(PacketType::Auth))
            .ok_or(Malformed::InvalidReasonCode {
                packet: PacketType::Auth,
                code,
            })?;
        if !r.is_empty() {
            auth.properties = Properties::decode(r, PropertyContext::Auth)?;
        }
        Ok(auth)
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if protocol == Protocol::V311 {
            return Err(EncodeError::NotInProtocol {
                packet: PacketType::Auth,
                protocol,
            });
        }
        if !self.reason.allowed_in(PacketType::Auth) {
            return Err(EncodeError::InvalidReasonCode {
                packet: PacketType::Auth,
                code: self.reason,
            });
        }
        Ok(match (self.reason, self.properties.is_empty()) {
            (ReasonCode::Success, true) => 0,
            _ => 1 + self.properties.wire_len(),
        })
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if self.reason != ReasonCode::Success || !self.properties.is_empty() {
            buf.put_u8(self.reason.as_u8());
            self.properties.encode(PropertyContext::Auth, buf)?;
        }
        Ok(())
    }
}
