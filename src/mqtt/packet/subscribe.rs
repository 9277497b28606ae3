//! SUBSCRIBE (§3.8): topic filters with their subscription options.

use bytes::{BufMut, BytesMut};

use super::{PacketType, read_packet_id};
use crate::mqtt::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::wire::{Reader, field_len, put_string};
use crate::mqtt::{PacketId, Protocol, QoS};

/// When retained messages are sent for a new subscription (5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    #[default]
    SendAtSubscribe = 0,
    SendIfNewSubscription = 1,
    DoNotSend = 2,
}

/// The options byte of one subscription. 3.1.1 carries only the QoS; the other fields are
/// then at their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// The maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not send the subscriber's own publications back to it.
    pub no_local: bool,
    /// Keep the RETAIN flag as published instead of clearing it on forwarded messages.
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    fn decode(byte: u8, protocol: Protocol) -> Result<Self, DecodeError> {
        let reserved = match protocol {
            Protocol::V311 => 0b1111_1100,
            Protocol::V5 => 0b1100_0000,
        };
        if byte & reserved != 0 {
            return Err(Malformed::SubscriptionOptionsReserved.into());
        }
        let qos = QoS::from_bits(byte & 0b11).ok_or(Malformed::InvalidQoS)?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNewSubscription,
            2 => RetainHandling::DoNotSend,
            _ => return Err(ProtocolViolation::RetainHandling.into()),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    fn encode(self, protocol: Protocol) -> u8 {
        match protocol {
            Protocol::V311 => self.qos.bits(),
            Protocol::V5 => {
                self.qos.bits()
                    | (u8::from(self.no_local) << 2)
                    | (u8::from(self.retain_as_published) << 3)
                    | ((self.retain_handling as u8) << 4)
            }
        }
    }
}

/// A request to add subscriptions. Filters are carried as sent: their syntax (wildcard
/// placement, shared-subscription form) is checked per filter by the session with
/// [`crate::mqtt::topic`], because a bad filter fails only its own entry of the SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    /// At least one (filter, options) pair.
    pub filters: Vec<(String, SubscriptionOptions)>,
    /// In 5.0 at most one Subscription Identifier, and user properties.
    pub properties: Properties,
}

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader, protocol: Protocol) -> Result<Self, DecodeError> {
        let packet_id = read_packet_id(r, PacketType::Subscribe)?;
        let properties = match protocol {
            Protocol::V5 => Properties::decode(r, PropertyContext::Subscribe)?,
            Protocol::V311 => Properties::default(),
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            let options = SubscriptionOptions::decode(r.u8()?, protocol)?;
            filters.push((filter, options));
        }
        if filters.is_empty() {
            return Err(ProtocolViolation::NoTopicFilters(PacketType::Subscribe).into());
        }
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    pub(crate) fn body_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::Empty(PacketType::Subscribe));
        }
        let mut len = 2;
        if protocol == Protocol::V5 {
            len += self.properties.wire_len();
        }
        len += self
            .filters
            .iter()
            .map(|(f, _)| field_len(f.as_bytes()) + 1)
            .sum::<usize>();
        Ok(len)
    }

    pub(crate) fn encode_body(
        &self,
        protocol: Protocol,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if protocol == Protocol::V5 {
            self.properties.encode(PropertyContext::Subscribe, buf)?;
        }
        for (filter, options) in &self.filters {
            put_string(buf, filter)?;
            buf.put_u8(options.encode(protocol));
        }
        Ok(())
    }
}
