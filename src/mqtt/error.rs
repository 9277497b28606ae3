//! Decode and encode errors, and what the broker must answer to each.
//!
//! MQTT 5.0 (§4.13) splits bad input into *malformed packets* (cannot be parsed as the spec
//! says) and *protocol errors* (parse fine but break a rule); the first is answered with
//! DISCONNECT 0x81, the second with 0x82, and a packet over the maximum size with 0x95.
//! MQTT 3.1.1 has no DISCONNECT from the server: the connection is closed.

use thiserror::Error;

use super::Protocol;
use super::packet::PacketType;
use super::property::{PropertyContext, PropertyId};
use super::reason::ReasonCode;
use super::topic::TopicError;

/// A packet that cannot be parsed as the spec describes it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    #[error("variable byte integer is longer than four bytes")]
    VariableByteInteger,
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    #[error("fixed header flags {flags:#06b} are invalid for {packet}")]
    FixedHeaderFlags { packet: PacketType, flags: u8 },
    #[error("QoS 3 is not a quality of service")]
    InvalidQoS,
    #[error("DUP is set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    #[error("the packet ends before its last field")]
    Truncated,
    #[error("{0} bytes are left over after the last field of the packet")]
    TrailingBytes(usize),
    #[error("a string is not well-formed UTF-8")]
    InvalidUtf8,
    #[error("a string contains the null character U+0000")]
    NullCharacter,
    #[error("property identifier {0:#04x} does not exist")]
    UnknownProperty(u32),
    #[error("property {property:?} is not allowed in {context:?}")]
    PropertyNotAllowed {
        property: PropertyId,
        context: PropertyContext,
    },
    #[error("reason code {code:#04x} is not allowed in {packet}")]
    InvalidReasonCode { packet: PacketType, code: u8 },
    #[error("the reserved bit of the CONNECT flags is set")]
    ConnectReservedFlag,
    #[error("will QoS or will retain is set without the will flag")]
    WillFlagsWithoutWill,
    #[error("a password is present without a user name (not allowed in MQTT 3.1.1)")]
    PasswordWithoutUsername,
    #[error("reserved bits of the CONNACK acknowledge flags are set")]
    ConnAckReservedFlags,
    #[error("reserved bits of the subscription options are set")]
    SubscriptionOptionsReserved,
}

/// A packet that parses but breaks a rule of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolViolation {
    #[error("the first packet is {0}, not CONNECT")]
    FirstPacketNotConnect(PacketType),
    #[error("the protocol name is {0:?}, not \"MQTT\"")]
    ProtocolName(String),
    #[error("property {0:?} appears more than once")]
    DuplicateProperty(PropertyId),
    #[error("property {property:?} has the invalid value {value}")]
    PropertyValue { property: PropertyId, value: u32 },
    #[error("authentication data is present without an authentication method")]
    AuthenticationDataWithoutMethod,
    #[error("packet identifier 0 in {0}")]
    ZeroPacketId(PacketType),
    #[error("{0} carries no topic filter")]
    NoTopicFilters(PacketType),
    #[error("{0} carries no reason code")]
    NoReasonCodes(PacketType),
    #[error("retain handling 3 is reserved")]
    RetainHandling,
    #[error("the topic name is empty and there is no topic alias")]
    EmptyTopicWithoutAlias,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: usize },
    #[error("malformed packet: {0}")]
    Malformed(#[from] Malformed),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolViolation),
    #[error("invalid topic name: {0}")]
    TopicName(#[from] TopicError),
    #[error("protocol level {0} is not supported (only 4, MQTT 3.1.1, and 5, MQTT 5.0)")]
    UnsupportedProtocolVersion(u8),
}

impl DecodeError {
    /// The MQTT 5.0 reason code that names this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            DecodeError::Malformed(_) => ReasonCode::MalformedPacket,
            // 5.0 §3.3.4: a Topic Alias of 0 is answered with 0x94 Topic Alias invalid.
            DecodeError::Protocol(ProtocolViolation::PropertyValue {
                property: PropertyId::TopicAlias,
                ..
            }) => ReasonCode::TopicAliasInvalid,
            DecodeError::Protocol(_) => ReasonCode::ProtocolError,
            DecodeError::TopicName(_) => ReasonCode::TopicNameInvalid,
            DecodeError::UnsupportedProtocolVersion(_) => ReasonCode::UnsupportedProtocolVersion,
        }
    }
}

/// What the server sends before closing a connection whose input failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The bad packet was the CONNECT: answer with a CONNACK in that protocol (MQTT 3.1.1's
    /// return codes cover only an unsupported level; the v5 reason covers the rest), then
    /// close.
    ConnAck {
        protocol: Protocol,
        reason: ReasonCode,
    },
    /// MQTT 5.0 after CONNECT: DISCONNECT with this reason, then close.
    Disconnect(ReasonCode),
    /// Close the connection without a packet (MQTT 3.1.1, or a CONNECT too broken to know
    /// which protocol it speaks).
    Close,
}

/// Why a packet could not be encoded. These are bugs in the caller or values that the
/// protocol cannot carry, never conditions of the network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("the packet's remaining length {0} exceeds 268,435,455 bytes")]
    PacketTooLarge(usize),
    #[error("a string or binary field of {0} bytes exceeds 65,535 bytes")]
    FieldTooLong(usize),
    #[error("the QoS and the presence of a packet identifier disagree")]
    PacketIdMismatch,
    #[error("DUP cannot be set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    #[error("property {property:?} is not allowed in {context:?}")]
    PropertyNotAllowed {
        property: PropertyId,
        context: PropertyContext,
    },
    #[error("property {0:?} has a value the protocol cannot carry")]
    PropertyValue(PropertyId),
    #[error("reason code {code:?} is not allowed in {packet}")]
    InvalidReasonCode {
        packet: PacketType,
        code: ReasonCode,
    },
    #[error("{packet} does not exist in {protocol:?}")]
    NotInProtocol {
        packet: PacketType,
        protocol: Protocol,
    },
    #[error("a password without a user name cannot be sent in MQTT 3.1.1")]
    PasswordWithoutUsername,
    #[error("{0} needs at least one entry")]
    Empty(PacketType),
    #[error("a subscription identifier must be between 1 and 268,435,455")]
    SubscriptionIdentifier,
    #[error("the codec does not know the protocol yet (no CONNECT seen)")]
    UnknownProtocol,
}
