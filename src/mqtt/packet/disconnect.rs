//! DISCONNECT (§3.14): in 3.1.1 only from the client and empty; in 5.0 either side may send
//! it, with a reason code and properties that may be omitted when the reason is normal.

use bytes::{BufMut, BytesMut};

use super::PacketType;
use crate::mqtt::Protocol;
use crate::mqtt::error::{DecodeError, EncodeError, Malformed};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::reason::ReasonCode;
use crate::mqtt::wire::Reader;

/// The end of a connection, with why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Disconnect {
    pub fn new(reason: ReasonCode) -> Self {
        Disconnect {
            reason,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let mut disconnect = Disconnect::default();
        if protocol == Protocol::V311 || r.is_empty() {
            return Ok(disconnect);
        }
        let code = r.u8()?;
        disconnect.reason = ReasonCode::from_u8(code)
            .filter(|reason| reason.allowed_in(PacketType::Disconnect))
            .ok_or(Malformed::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code,
            })?;
        if !r.is_empty() {
            disconnect.properties = Properties::decode(r, PropertyContext::Disconnect)?;
        }
        Ok(disconnect)
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if protocol == Protocol::V311 {
            return Ok(0);
        }
        if !self.reason.allowed_in(PacketType::Disconnect) {
            return Err(EncodeError::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code: self.reason,
            });
        }
        Ok(
            if self.reason == ReasonCode::Success && self.properties.is_empty() {
                0
            } else {
                1 + self.properties.wire_len()
            },
        )
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if protocol == Protocol::V311 {
            return Ok(());
        }
        if self.reason == ReasonCode::Success && self.properties.is_empty() {
            return Ok(());
        }
        // A reason is always followed by its property length, even a zero one: the spec
        // lets it be omitted (§3.14.2.2), but clients in use (rumqttc 0.25) fail to decode
        // the 1-byte form and report an error instead of the reason.
        buf.put_u8(self.reason.as_u8());
        self.properties.encode(PropertyContext::Disconnect, buf)?;
        Ok(())
    }
}
