//! PUBLISH (§3.3): an application message, from a client or to a subscriber.

use bytes::{BufMut, Bytes, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::topic::validate_topic_name;
use crate::mqtt::wire::{Reader, field_len, put_string};
use crate::mqtt::{PacketId, Protocol, QoS};

/// An application message. `packet_id` is present exactly when `qos` is 1 or 2. In 5.0 the
/// topic may be empty when a Topic Alias property stands for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub topic: String,
    pub packet_id: Option<PacketId>,
    pub properties: Properties,
    /// Shares the buffer the frame was read into: decoding does not copy the payload.
    pub payload: Bytes,
}

impl Publish {
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | (self.qos.bits() << 1) | u8::from(self.retain)
    }

    pub(crate) fn decode(
        flags: u8,
        r: &mut Reader,
        protocol: Protocol,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let qos = QoS::from_bits((flags >> 1) & 0b11).ok_or(Malformed::InvalidQoS)?;
        let retain = flags & 0b0001 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(Malformed::DupOnQoS0.into());
        }
        let topic = r.string()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce | QoS::ExactlyOnce => Some(read_packet_id(r, PacketType::Publish)?),
        };
        let properties = match protocol {
            Protocol::V5 => Properties::decode(r, PropertyContext::Publish)?,
            Protocol::V311 => Properties::default(),
        };
        if topic.is_empty() && protocol == Protocol::V5 {
            if properties.topic_alias.is_none() {
                return Err(ProtocolViolation::EmptyTopicWithoutAlias.into());
            }
        } else {
            validate_topic_name(&topic)?;
        }
        let payload = r.rest();
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload,
        })
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if self.packet_id.is_some() != (self.qos != QoS::AtMostOnce) {
            return Err(EncodeError::PacketIdMismatch);
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::DupOnQoS0);
        }
        let mut len = field_len(self.topic.as_bytes()) + self.payload.len();
        if self.packet_id.is_some() {
            len += 2;
        }
        if protocol == Protocol::V5 {
            len += self.properties.wire_len();
        }
        Ok(len)
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        put_string(buf, &self.topic)?;
        if let Some(id) = self.packet_id {
            buf.put_u16(id.get());
        }
        if protocol == Protocol::V5 {
            self.properties.encode(PropertyContext::Publish, buf)?;
        }
        buf.put_slice(&self.payload);
        Ok(())
    }
}
