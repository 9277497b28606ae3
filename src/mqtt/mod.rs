//! The MQTT wire protocol, versions 3.1.1 (protocol level 4) and 5.0 (level 5): every
//! control packet, every v5 property and reason code, and topic names and filters.
//!
//! Decoding is incremental and defensive: [`Codec::decode`] returns `Ok(None)` until a whole
//! frame is buffered, and checks the fixed header and remaining length against the maximum
//! packet size before waiting for (or allocating for) the body. Every violation is a typed
//! [`DecodeError`] that says what the broker must answer (a v5 DISCONNECT or CONNACK reason
//! code, or closing the connection for 3.1.1).
//!
//! This module does no I/O and depends on nothing else in the crate.

mod codec;
mod error;
mod packet;
mod property;
mod reason;
pub mod topic;
mod wire;

pub use codec::{Codec, DEFAULT_MAX_PACKET_SIZE, MAX_REMAINING_LENGTH};
pub use error::{DecodeError, EncodeError, Malformed, ProtocolViolation, Response};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Publish, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
pub use property::{Properties, PropertyContext, PropertyId, WireType};
pub use reason::{ConnectReturnCode, ReasonCode};

use std::num::NonZeroU16;

/// A packet identifier: never zero on the wire where the spec requires one.
pub type PacketId = NonZeroU16;

/// The protocol level a connection speaks, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

impl Protocol {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }

    /// The protocol for a CONNECT protocol level byte, if it is one we speak.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            4 => Some(Protocol::V311),
            5 => Some(Protocol::V5),
            _ => None,
        }
    }
}

/// Quality of service of a message or subscription. QoS 3 does not exist: decoding it is a
/// malformed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for its two-bit wire value; `None` for the forbidden value 3.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The two-bit wire value.
    pub fn bits(self) -> u8 {
        self as u8
    }
}
