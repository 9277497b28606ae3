//! UNSUBSCRIBE (§3.10): topic filters to remove.

use bytes::{BufMut, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::wire::{Reader, field_len, put_string};
use crate::mqtt::{PacketId, Protocol};

/// A request to remove subscriptions, filters exactly as they were subscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    /// At least one filter.
    pub filters: Vec<String>,
    pub properties: Properties,
}

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Unsubscribe)?;
        let properties = match protocol {
            Protocol::V5 => Properties::decode(r, PropertyContext::Unsubscribe)?,
            Protocol::V311 => Properties::default(),
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(r.string()?);
        }
        if filters.is_empty() {
            return Err(ProtocolViolation::NoTopicFilters(PacketType::Unsubscribe).into());
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Empty(PacketType::Unsubscribe));
        }
        let mut len = 2 + self
            .filters
            .iter()
            .map(|f| field_len(f.as_bytes()))
            .sum::<usize>();
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
        buf.put_u16(self.packet_id.get());
        if protocol == Protocol::V5 {
            self.properties.encode(PropertyContext::Unsubscribe, buf)?;
        }
        for filter in &self.filters {
            put_string(buf, filter)?;
        }
        Ok(())
    }
}
