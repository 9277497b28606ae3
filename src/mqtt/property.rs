//! MQTT 5.0 properties (§2.2.2): every property identifier with its wire type and the
//! packets that may carry it, and [`Properties`], the decoded set carried by a packet.
//!
//! Decoding enforces the three rules of §2.2.2.2: an identifier not valid for the packet is
//! a malformed packet; a property other than User Property (and Subscription Identifier in
//! PUBLISH) appearing twice is a protocol error; values outside their range (a boolean byte
//! that is not 0 or 1, a zero Receive Maximum, ...) are protocol errors.

use bytes::{BufMut, Bytes, BytesMut};

use super::QoS;
use super::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use super::topic::validate_topic_name;
use super::wire::{MAX_VARINT, Reader, field_len, put_binary, put_string, put_varint, varint_len};

/// A property identifier (table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0b,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1a,
    ServerReference = 0x1c,
    ReasonString = 0x1f,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2a,
}

/// How a property's value is encoded (§1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Byte,
    TwoByteInteger,
    FourByteInteger,
    VariableByteInteger,
    Utf8String,
    BinaryData,
    Utf8StringPair,
}

/// Where a property list sits: a packet type, or the will properties inside CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyContext {
    Connect,
    ConnAck,
    Publish,
    Will,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

use PropertyContext as C;
use PropertyId as Id;

/// Every property identifier, in value order.
const ALL_PROPERTY_IDS: [PropertyId; 27] = [
    Id::PayloadFormatIndicator,
    Id::MessageExpiryInterval,
    Id::ContentType,
    Id::ResponseTopic,
    Id::CorrelationData,
    Id::SubscriptionIdentifier,
    Id::SessionExpiryInterval,
    Id::AssignedClientIdentifier,
    Id::ServerKeepAlive,
    Id::AuthenticationMethod,
    Id::AuthenticationData,
    Id::RequestProblemInformation,
    Id::WillDelayInterval,
    Id::RequestResponseInformation,
    Id::ResponseInformation,
    Id::ServerReference,
    Id::ReasonString,
    Id::ReceiveMaximum,
    Id::TopicAliasMaximum,
    Id::TopicAlias,
    Id::MaximumQoS,
    Id::RetainAvailable,
    Id::UserProperty,
    Id::MaximumPacketSize,
    Id::WildcardSubscriptionAvailable,
    Id::SubscriptionIdentifierAvailable,
    Id::SharedSubscriptionAvailable,
];

impl PropertyId {
    /// Every property identifier, in value order.
    pub const ALL: [PropertyId; 27] = ALL_PROPERTY_IDS;

    /// The property for an identifier read from the wire.
    pub fn from_u32(value: u32) -> Option<Self> {
        ALL_PROPERTY_IDS
            .iter()
            .copied()
            .find(|id| *id as u32 == value)
    }

    pub fn wire_type(self) -> WireType {
        match self {
            Id::PayloadFormatIndicator
            | Id::RequestProblemInformation
            | Id::RequestResponseInformation
            | Id::MaximumQoS
            | Id::RetainAvailable
            | Id::WildcardSubscriptionAvailable
            | Id::SubscriptionIdentifierAvailable
            | Id::SharedSubscriptionAvailable => WireType::Byte,
            Id::ServerKeepAlive | Id::ReceiveMaximum | Id::TopicAliasMaximum | Id::TopicAlias => {
                WireType::TwoByteInteger
            }
            Id::MessageExpiryInterval
            | Id::SessionExpiryInterval
            | Id::WillDelayInterval
            | Id::MaximumPacketSize => WireType::FourByteInteger,
            Id::SubscriptionIdentifier => WireType::VariableByteInteger,
            Id::ContentType
            | Id::ResponseTopic
            | Id::AssignedClientIdentifier
            | Id::AuthenticationMethod
            | Id::ResponseInformation
            | Id::ServerReference
            | Id::ReasonString => WireType::Utf8String,
            Id::CorrelationData | Id::AuthenticationData => WireType::BinaryData,
            Id::UserProperty => WireType::Utf8StringPair,
        }
    }

    /// Whether the property may appear in `context` (table 2-4).
    pub fn allowed_in(self, context: PropertyContext) -> bool {
        let allowed: &[PropertyContext] = match self {
            Id::PayloadFormatIndicator
            | Id::MessageExpiryInterval
            | Id::ContentType
            | Id::ResponseTopic
            | Id::CorrelationData => &[C::Publish, C::Will],
            Id::SubscriptionIdentifier => &[C::Publish, C::Subscribe],
            Id::SessionExpiryInterval => &[C::Connect, C::ConnAck, C::Disconnect],
            Id::AssignedClientIdentifier
            | Id::ServerKeepAlive
            | Id::ResponseInformation
            | Id::MaximumQoS
            | Id::RetainAvailable
            | Id::WildcardSubscriptionAvailable
            | Id::SubscriptionIdentifierAvailable
            | Id::SharedSubscriptionAvailable => &[C::ConnAck],
            Id::AuthenticationMethod | Id::AuthenticationData => &[C::Connect, C::ConnAck, C::Auth],
            Id::RequestProblemInformation | Id::RequestResponseInformation => &[C::Connect],
            Id::WillDelayInterval => &[C::Will],
            Id::ServerReference => &[C::ConnAck, C::Disconnect],
            Id::ReasonString => &[
                C::ConnAck,
                C::PubAck,
                C::PubRec,
                C::PubRel,
                C::PubComp,
                C::SubAck,
                C::UnsubAck,
                C::Disconnect,
                C::Auth,
            ],
            Id::ReceiveMaximum | Id::TopicAliasMaximum | Id::MaximumPacketSize => {
                &[C::Connect, C::ConnAck]
            }
            Id::TopicAlias => &[C::Publish],
            Id::UserProperty => return true,
        };
        allowed.contains(&context)
    }

    /// Whether the property may appear more than once in `context`: User Property always,
    /// Subscription Identifier in a PUBLISH (one per matching subscription, §3.3.2.3.8).
    pub fn may_repeat(self, context: PropertyContext) -> bool {
        match self {
            Id::UserProperty => true,
            Id::SubscriptionIdentifier => context == C::Publish,
            _ => false,
        }
    }
}

/// The properties of one packet (or of a will). Absent properties are `None` or empty;
/// user properties keep their order and may repeat. The byte-valued flags that the spec
/// restricts to 0 and 1 are `bool`s here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub payload_format_indicator: Option<bool>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<bool>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<bool>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    /// Only QoS 0 or 1 can be sent: a server that supports QoS 2 omits the property.
    pub maximum_qos: Option<QoS>,
    pub retain_available: Option<bool>,
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_identifier_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
}

/// One property value on its way to the wire.
enum Value<'a> {
    Byte(u8),
    Two(u16),
    Four(u32),
    Var(u32),
    Text(&'a str),
    Binary(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Value::Byte(_) => 1,
            Value::Two(_) => 2,
            Value::Four(_) => 4,
            Value::Var(v) => varint_len(*v as usize),
            Value::Text(s) => field_len(s.as_bytes()),
            Value::Binary(b) => field_len(b),
            Value::Pair(k, v) => field_len(k.as_bytes()) + field_len(v.as_bytes()),
        }
    }

    fn put(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Value::Byte(v) => buf.put_u8(*v),
            Value::Two(v) => buf.put_u16(*v),
            Value::Four(v) => buf.put_u32(*v),
            Value::Var(v) => put_varint(buf, *v as usize)?,
            Value::Text(s) => put_string(buf, s)?,
            Value::Binary(b) => put_binary(buf, b)?,
            Value::Pair(k, v) => {
                put_string(buf, k)?;
                put_string(buf, v)?;
            }
        }
        Ok(())
    }
}

impl Properties {
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Calls `f` for every property present, in identifier order (user properties in their
    /// own order). The one place that lists the fields for encoding.
    fn each<E>(&self, mut f: impl FnMut(PropertyId, Value<'_>) -> Result<(), E>) -> Result<(), E> {
        fn flag(b: bool) -> Value<'static> {
            Value::Byte(u8::from(b))
        }
        if let Some(v) = self.payload_format_indicator {
            f(Id::PayloadFormatIndicator, flag(v))?;
        }
        if let Some(v) = self.message_expiry_interval {
            f(Id::MessageExpiryInterval, Value::Four(v))?;
        }
        if let Some(v) = &self.content_type {
            f(Id::ContentType, Value::Text(v))?;
        }
        if let Some(v) = &self.response_topic {
            f(Id::ResponseTopic, Value::Text(v))?;
        }
        if let Some(v) = &self.correlation_data {
            f(Id::CorrelationData, Value::Binary(v))?;
        }
        for v in &self.subscription_identifiers {
            f(Id::SubscriptionIdentifier, Value::Var(*v))?;
        }
        if let Some(v) = self.session_expiry_interval {
            f(Id::SessionExpiryInterval, Value::Four(v))?;
        }
        if let Some(v) = &self.assigned_client_identifier {
            f(Id::AssignedClientIdentifier, Value::Text(v))?;
        }
        if let Some(v) = self.server_keep_alive {
            f(Id::ServerKeepAlive, Value::Two(v))?;
        }
        if let Some(v) = &self.authentication_method {
            f(Id::AuthenticationMethod, Value::Text(v))?;
        }
        if let Some(v) = &self.authentication_data {
            f(Id::AuthenticationData, Value::Binary(v))?;
        }
        if let Some(v) = self.request_problem_information {
            f(Id::RequestProblemInformation, flag(v))?;
        }
        if let Some(v) = self.will_delay_interval {
            f(Id::WillDelayInterval, Value::Four(v))?;
        }
        if let Some(v) = self.request_response_information {
            f(Id::RequestResponseInformation, flag(v))?;
        }
        if let Some(v) = &self.response_information {
            f(Id::ResponseInformation, Value::Text(v))?;
        }
        if let Some(v) = &self.server_reference {
            f(Id::ServerReference, Value::Text(v))?;
        }
        if let Some(v) = &self.reason_string {
            f(Id::ReasonString, Value::Text(v))?;
        }
        if let Some(v) = self.receive_maximum {
            f(Id::ReceiveMaximum, Value::Two(v))?;
        }
        if let Some(v) = self.topic_alias_maximum {
            f(Id::TopicAliasMaximum, Value::Two(v))?;
        }
        if let Some(v) = self.topic_alias {
            f(Id::TopicAlias, Value::Two(v))?;
        }
        if let Some(v) = self.maximum_qos {
            f(Id::MaximumQoS, Value::Byte(v.bits()))?;
        }
        if let Some(v) = self.retain_available {
            f(Id::RetainAvailable, flag(v))?;
        }
        for (k, v) in &self.user_properties {
            f(Id::UserProperty, Value::Pair(k, v))?;
        }
        if let Some(v) = self.maximum_packet_size {
            f(Id::MaximumPacketSize, Value::Four(v))?;
        }
        if let Some(v) = self.wildcard_subscription_available {
            f(Id::WildcardSubscriptionAvailable, flag(v))?;
        }
        if let Some(v) = self.subscription_identifier_available {
            f(Id::SubscriptionIdentifierAvailable, flag(v))?;
        }
        if let Some(v) = self.shared_subscription_available {
            f(Id::SharedSubscriptionAvailable, flag(v))?;
        }
        Ok(())
    }

    /// Size of the property list on the wire, without its length prefix. Every identifier
    /// is below 128, so it takes one byte.
    pub(crate) fn body_len(&self) -> usize {
        let mut len = 0;
        let _ = self.each(|_, value| -> Result<(), ()> {
            len += 1 + value.len();
            Ok(())
        });
        len
    }

    /// Size on the wire with the length prefix.
    pub(crate) fn wire_len(&self) -> usize {
        let body = self.body_len();
        varint_len(body) + body
    }

    /// Writes the length prefix and the properties, refusing any the context does not allow
    /// and values the protocol cannot carry.
    pub(crate) fn encode(
        &self,
        context: PropertyContext,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        // Refuse what a receiver would reject (§2.2.2.2 and each property's section), so a
        // bug in the broker shows here instead of as a peer's protocol error.
        if self.subscription_identifiers.len() > 1
            && !Id::SubscriptionIdentifier.may_repeat(context)
        {
            return Err(EncodeError::PropertyValue(Id::SubscriptionIdentifier));
        }
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(EncodeError::PropertyValue(Id::AuthenticationData));
        }
        put_varint(buf, self.body_len())?;
        self.each(|id, value| {
            if !id.allowed_in(context) {
                return Err(EncodeError::PropertyNotAllowed {
                    property: id,
                    context,
                });
            }
            match (id, &value) {
                (Id::MaximumQoS, Value::Byte(q)) if *q > 1 => {
                    return Err(EncodeError::PropertyValue(id));
                }
                (Id::SubscriptionIdentifier, Value::Var(v)) if *v == 0 || *v > MAX_VARINT => {
                    return Err(EncodeError::SubscriptionIdentifier);
                }
                (
                    Id::ReceiveMaximum | Id::TopicAlias | Id::MaximumPacketSize,
                    Value::Two(0) | Value::Four(0),
                ) => {
                    return Err(EncodeError::PropertyValue(id));
                }
                _ => {}
            }
            buf.put_u8(id as u8);
            value.put(buf)
        })
    }

    /// Reads a length-prefixed property list for `context`.
    pub(crate) fn decode(r: &mut Reader, context: PropertyContext) -> Result<Self, DecodeError> {
        let len = r.varint()? as usize;
        let mut list = r.sub(len)?;
        let mut props = Properties::default();
        while !list.is_empty() {
            let raw = list.varint()?;
            let id = PropertyId::from_u32(raw).ok_or(Malformed::UnknownProperty(raw))?;
            if !id.allowed_in(context) {
                return Err(Malformed::PropertyNotAllowed {
                    property: id,
                    context,
                }
                .into());
            }
            props.read_one(id, context, &mut list)?;
        }
        if props.authentication_data.is_some() && props.authentication_method.is_none() {
            return Err(ProtocolViolation::AuthenticationDataWithoutMethod.into());
        }
        Ok(props)
    }

    /// Reads the value of property `id` into its field. The one place that lists the
    /// fields for decoding; each arm reads the wire type of table 2-4.
    fn read_one(
        &mut self,
        id: PropertyId,
        context: PropertyContext,
        r: &mut Reader,
    ) -> Result<(), DecodeError> {
        match id {
            Id::PayloadFormatIndicator => {
                once(&mut self.payload_format_indicator, id, flag(id, r)?)
            }
            Id::MessageExpiryInterval => once(&mut self.message_expiry_interval, id, r.u32()?),
            Id::ContentType => once(&mut self.content_type, id, r.string()?),
            Id::ResponseTopic => {
                let topic = r.string()?;
                validate_topic_name(&topic)?;
                once(&mut self.response_topic, id, topic)
            }
            Id::CorrelationData => once(&mut self.correlation_data, id, r.binary()?),
            Id::SubscriptionIdentifier => {
                let value = r.varint()?;
                if value == 0 {
                    return Err(ProtocolViolation::PropertyValue {
                        property: id,
                        value,
                    }
                    .into());
                }
                if !self.subscription_identifiers.is_empty() && !id.may_repeat(context) {
                    return Err(ProtocolViolation::DuplicateProperty(id).into());
                }
                self.subscription_identifiers.push(value);
                Ok(())
            }
            Id::SessionExpiryInterval => once(&mut self.session_expiry_interval, id, r.u32()?),
            Id::AssignedClientIdentifier => {
                once(&mut self.assigned_client_identifier, id, r.string()?)
            }
            Id::ServerKeepAlive => once(&mut self.server_keep_alive, id, r.u16()?),
            Id::AuthenticationMethod => once(&mut self.authentication_method, id, r.string()?),
            Id::AuthenticationData => once(&mut self.authentication_data, id, r.binary()?),
            Id::RequestProblemInformation => {
                once(&mut self.request_problem_information, id, flag(id, r)?)
            }
            Id::WillDelayInterval => once(&mut self.will_delay_interval, id, r.u32()?),
            Id::RequestResponseInformation => {
                once(&mut self.request_response_information, id, flag(id, r)?)
            }
            Id::ResponseInformation => once(&mut self.response_information, id, r.string()?),
            Id::ServerReference => once(&mut self.server_reference, id, r.string()?),
            Id::ReasonString => once(&mut self.reason_string, id, r.string()?),
            Id::ReceiveMaximum => once(&mut self.receive_maximum, id, nonzero_u16(id, r)?),
            Id::TopicAliasMaximum => once(&mut self.topic_alias_maximum, id, r.u16()?),
            Id::TopicAlias => once(&mut self.topic_alias, id, nonzero_u16(id, r)?),
            Id::MaximumQoS => {
                let value = r.u8()?;
                let qos = match value {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => {
                        let value = u32::from(value);
                        return Err(ProtocolViolation::PropertyValue {
                            property: id,
                            value,
                        }
                        .into());
                    }
                };
                once(&mut self.maximum_qos, id, qos)
            }
            Id::RetainAvailable => once(&mut self.retain_available, id, flag(id, r)?),
            Id::UserProperty => {
                let key = r.string()?;
                let value = r.string()?;
                self.user_properties.push((key, value));
                Ok(())
            }
            Id::MaximumPacketSize => {
                let value = r.u32()?;
                if value == 0 {
                    return Err(ProtocolViolation::PropertyValue {
                        property: id,
                        value,
                    }
                    .into());
                }
                once(&mut self.maximum_packet_size, id, value)
            }
            Id::WildcardSubscriptionAvailable => {
                once(&mut self.wildcard_subscription_available, id, flag(id, r)?)
            }
            Id::SubscriptionIdentifierAvailable => once(
                &mut self.subscription_identifier_available,
                id,
                flag(id, r)?,
            ),
            Id::SharedSubscriptionAvailable => {
                once(&mut self.shared_subscription_available, id, flag(id, r)?)
            }
        }
    }
}

/// Stores a property that may appear only once.
fn once<T>(slot: &mut Option<T>, id: PropertyId, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(ProtocolViolation::DuplicateProperty(id).into());
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property that the spec allows only as 0 or 1.
fn flag(id: PropertyId, r: &mut Reader) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(ProtocolViolation::PropertyValue {
            property: id,
            value: u32::from(other),
        }
        .into()),
    }
}

/// A two-byte property for which zero is a protocol error (Receive Maximum, Topic Alias).
fn nonzero_u16(id: PropertyId, r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(ProtocolViolation::PropertyValue {
            property: id,
            value: 0,
        }
        .into()),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every context in which table 2-4 lets each property appear, written out from the
    /// spec's table independently of `allowed_in`, so a slip in either shows.
    fn spec_contexts(id: PropertyId) -> Vec<PropertyContext> {
        let publish_will = vec![C::Publish, C::Will];
        match id as u8 {
            0x01 | 0x02 | 0x03 | 0x08 | 0x09 => publish_will,
            0x0b => vec![C::Publish, C::Subscribe],
            0x11 => vec![C::Connect, C::ConnAck, C::Disconnect],
            0x12 | 0x13 | 0x1a | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => vec![C::ConnAck],
            0x15 | 0x16 => vec![C::Connect, C::ConnAck, C::Auth],
            0x17 | 0x19 => vec![C::Connect],
            0x18 => vec![C::Will],
            0x1c => vec![C::ConnAck, C::Disconnect],
            0x1f => vec![
                C::ConnAck,
                C::PubAck,
                C::PubRec,
                C::PubRel,
                C::PubComp,
                C::SubAck,
                C::UnsubAck,
                C::Disconnect,
                C::Auth,
            ],
            0x21 | 0x22 | 0x27 => vec![C::Connect, C::ConnAck],
            0x23 => vec![C::Publish],
            0x26 => ALL_CONTEXTS.to_vec(),
            other => panic!("not a property: {other:#x}"),
        }
    }

    const ALL_CONTEXTS: [PropertyContext; 14] = [
        C::Connect,
        C::ConnAck,
        C::Publish,
        C::Will,
        C::PubAck,
        C::PubRec,
        C::PubRel,
        C::PubComp,
        C::Subscribe,
        C::SubAck,
        C::Unsubscribe,
        C::UnsubAck,
        C::Disconnect,
        C::Auth,
    ];

    #[test]
    fn allowed_in_matches_table_2_4() {
        for id in PropertyId::ALL {
            let expected = spec_contexts(id);
            for context in ALL_CONTEXTS {
                assert_eq!(
                    id.allowed_in(context),
                    expected.contains(&context),
                    "{id:?} in {context:?}"
                );
            }
        }
    }

    #[test]
    fn identifiers_round_trip_and_gaps_are_unknown() {
        for id in PropertyId::ALL {
            assert_eq!(PropertyId::from_u32(id as u32), Some(id));
        }
        for gap in [0x00, 0x04, 0x0a, 0x14, 0x1b, 0x20, 0x2b, 0x7f, 0x80] {
            assert_eq!(PropertyId::from_u32(gap), None);
        }
    }

    /// Encodes one property set in `context` and checks that its size on the wire agrees
    /// with the wire type of table 2-4.
    #[test]
    fn encoded_sizes_follow_the_wire_types() {
        let props = Properties {
            message_expiry_interval: Some(7),
            topic_alias: Some(3),
            payload_format_indicator: Some(true),
            subscription_identifiers: vec![200],
            content_type: Some("json".into()),
            correlation_data: Some(Bytes::from_static(b"abc")),
            user_properties: vec![("k".into(), "vv".into())],
            ..Properties::default()
        };
        let mut buf = BytesMut::new();
        props.encode(C::Publish, &mut buf).unwrap();
        let size = |t: WireType| match t {
            WireType::Byte => 1,
            WireType::TwoByteInteger => 2,
            WireType::FourByteInteger => 4,
            WireType::VariableByteInteger => 2,
            WireType::Utf8String => 2 + 4,
            WireType::BinaryData => 2 + 3,
            WireType::Utf8StringPair => 2 + 1 + 2 + 2,
        };
        let ids = [
            Id::MessageExpiryInterval,
            Id::TopicAlias,
            Id::PayloadFormatIndicator,
            Id::SubscriptionIdentifier,
            Id::ContentType,
            Id::CorrelationData,
            Id::UserProperty,
        ];
        let body: usize = ids.iter().map(|id| 1 + size(id.wire_type())).sum();
        assert_eq!(buf.len(), 1 + body);
        assert_eq!(props.wire_len(), buf.len());
        let mut r = Reader::new(buf.freeze());
        assert_eq!(Properties::decode(&mut r, C::Publish).unwrap(), props);
    }
}
