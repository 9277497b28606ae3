//! Reason codes: every MQTT 5.0 reason code, the packets each may appear in, and the
//! MQTT 3.1.1 CONNACK return codes with the mapping between the two.

use super::packet::PacketType;

/// Every MQTT 5.0 reason code (§2.4, table 2-6). The value `0x00` has three names in the
/// spec (Success, Normal disconnection, Granted QoS 0); they are one variant here, with
/// the other names as associated constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum ReasonCode {
    #[default]
    Success = 0x00,
    GrantedQoS1 = 0x01,
    GrantedQoS2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8a,
    ServerShuttingDown = 0x8b,
    BadAuthenticationMethod = 0x8c,
    KeepAliveTimeout = 0x8d,
    SessionTakenOver = 0x8e,
    TopicFilterInvalid = 0x8f,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9a,
    QoSNotSupported = 0x9b,
    UseAnotherServer = 0x9c,
    ServerMoved = 0x9d,
    SharedSubscriptionsNotSupported = 0x9e,
    ConnectionRateExceeded = 0x9f,
    MaximumConnectTime = 0xa0,
    SubscriptionIdentifiersNotSupported = 0xa1,
    WildcardSubscriptionsNotSupported = 0xa2,
}

use PacketType as P;
use ReasonCode as R;

/// Every reason code, in value order.
const ALL_REASON_CODES: [ReasonCode; 43] = [
    R::Success,
    R::GrantedQoS1,
    R::GrantedQoS2,
    R::DisconnectWithWillMessage,
    R::NoMatchingSubscribers,
    R::NoSubscriptionExisted,
    R::ContinueAuthentication,
    R::ReAuthenticate,
    R::UnspecifiedError,
    R::MalformedPacket,
    R::ProtocolError,
    R::ImplementationSpecificError,
    R::UnsupportedProtocolVersion,
    R::ClientIdentifierNotValid,
    R::BadUserNameOrPassword,
    R::NotAuthorized,
    R::ServerUnavailable,
    R::ServerBusy,
    R::Banned,
    R::ServerShuttingDown,
    R::BadAuthenticationMethod,
    R::KeepAliveTimeout,
    R::SessionTakenOver,
    R::TopicFilterInvalid,
    R::TopicNameInvalid,
    R::PacketIdentifierInUse,
    R::PacketIdentifierNotFound,
    R::ReceiveMaximumExceeded,
    R::TopicAliasInvalid,
    R::PacketTooLarge,
    R::MessageRateTooHigh,
    R::QuotaExceeded,
    R::AdministrativeAction,
    R::PayloadFormatInvalid,
    R::RetainNotSupported,
    R::QoSNotSupported,
    R::UseAnotherServer,
    R::ServerMoved,
    R::SharedSubscriptionsNotSupported,
    R::ConnectionRateExceeded,
    R::MaximumConnectTime,
    R::SubscriptionIdentifiersNotSupported,
    R::WildcardSubscriptionsNotSupported,
];

impl ReasonCode {
    /// Every reason code, in value order.
    pub const ALL: [ReasonCode; 43] = ALL_REASON_CODES;

    /// `0x00` in DISCONNECT.
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::Success;
    /// `0x00` in SUBACK.
    pub const GRANTED_QOS0: ReasonCode = ReasonCode::Success;

    /// The reason code for a wire byte, whatever the packet; `None` for unassigned values.
    pub fn from_u8(value: u8) -> Option<Self> {
        ALL_REASON_CODES.iter().copied().find(|r| *r as u8 == value)
    }

    /// The wire byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether the code reports a failure (every value from `0x80` up).
    pub fn is_error(self) -> bool {
        self.as_u8() >= 0x80
    }

    /// Whether the spec allows this reason code in a packet of type `packet` (table 2-6).
    pub fn allowed_in(self, packet: PacketType) -> bool {
        let allowed: &[PacketType] = match self {
            R::Success => &[
                P::ConnAck,
                P::PubAck,
                P::PubRec,
                P::PubRel,
                P::PubComp,
                P::SubAck,
                P::UnsubAck,
                P::Disconnect,
                P::Auth,
            ],
            R::GrantedQoS1 | R::GrantedQoS2 => &[P::SubAck],
            R::DisconnectWithWillMessage => &[P::Disconnect],
            R::NoMatchingSubscribers => &[P::PubAck, P::PubRec],
            R::NoSubscriptionExisted => &[P::UnsubAck],
            R::ContinueAuthentication | R::ReAuthenticate => &[P::Auth],
            R::UnspecifiedError | R::ImplementationSpecificError | R::NotAuthorized => &[
                P::ConnAck,
                P::PubAck,
                P::PubRec,
                P::SubAck,
                P::UnsubAck,
                P::Disconnect,
            ],
            R::MalformedPacket
            | R::ProtocolError
            | R::ServerBusy
            | R::BadAuthenticationMethod
            | R::PacketTooLarge
            | R::RetainNotSupported
            | R::QoSNotSupported
            | R::UseAnotherServer
            | R::ServerMoved
            | R::ConnectionRateExceeded => &[P::ConnAck, P::Disconnect],
            R::UnsupportedProtocolVersion
            | R::ClientIdentifierNotValid
            | R::BadUserNameOrPassword
            | R::ServerUnavailable
            | R::Banned => &[P::ConnAck],
            R::ServerShuttingDown
            | R::KeepAliveTimeout
            | R::SessionTakenOver
            | R::ReceiveMaximumExceeded
            | R::TopicAliasInvalid
            | R::MessageRateTooHigh
            | R::AdministrativeAction
            | R::MaximumConnectTime => &[P::Disconnect],
            R::TopicFilterInvalid => &[P::SubAck, P::UnsubAck, P::Disconnect],
            R::TopicNameInvalid | R::PayloadFormatInvalid => {
                &[P::ConnAck, P::PubAck, P::PubRec, P::Disconnect]
            }
            R::PacketIdentifierInUse => &[P::PubAck, P::PubRec, P::SubAck, P::UnsubAck],
            R::PacketIdentifierNotFound => &[P::PubRel, P::PubComp],
            R::QuotaExceeded => &[P::ConnAck, P::PubAck, P::PubRec, P::SubAck, P::Disconnect],
            R::SharedSubscriptionsNotSupported
            | R::SubscriptionIdentifiersNotSupported
            | R::WildcardSubscriptionsNotSupported => &[P::SubAck, P::Disconnect],
        };
        allowed.contains(&packet)
    }
}

/// The CONNACK return codes of MQTT 3.1.1 (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnectReturnCode {
    Accepted = 0,
    UnacceptableProtocolVersion = 1,
    IdentifierRejected = 2,
    ServerUnavailable = 3,
    BadUserNameOrPassword = 4,
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The return code for a wire byte; values above 5 are reserved.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }
}

impl From<ConnectReturnCode> for ReasonCode {
    fn from(code: ConnectReturnCode) -> Self {
        match code {
            ConnectReturnCode::Accepted => R::Success,
            ConnectReturnCode::UnacceptableProtocolVersion => R::UnsupportedProtocolVersion,
            ConnectReturnCode::IdentifierRejected => R::ClientIdentifierNotValid,
            ConnectReturnCode::ServerUnavailable => R::ServerUnavailable,
            ConnectReturnCode::BadUserNameOrPassword => R::BadUserNameOrPassword,
            ConnectReturnCode::NotAuthorized => R::NotAuthorized,
        }
    }
}

impl From<ReasonCode> for ConnectReturnCode {
    /// The closest 3.1.1 code for a v5 CONNACK reason: 3.1.1 has six codes, so several v5
    /// reasons share one (everything about load or availability becomes "server
    /// unavailable", everything else that is a refusal "not authorized").
    fn from(reason: ReasonCode) -> Self {
        match reason {
            R::Success => Self::Accepted,
            R::UnsupportedProtocolVersion => Self::UnacceptableProtocolVersion,
            R::ClientIdentifierNotValid => Self::IdentifierRejected,
            R::BadUserNameOrPassword | R::BadAuthenticationMethod => Self::BadUserNameOrPassword,
            R::NotAuthorized | R::Banned => Self::NotAuthorized,
            _ => Self::ServerUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_or_is_unassigned() {
        let mut assigned = 0;
        for byte in 0..=255u8 {
            if let Some(code) = ReasonCode::from_u8(byte) {
                assert_eq!(code.as_u8(), byte);
                assigned += 1;
            }
        }
        assert_eq!(assigned, ALL_REASON_CODES.len());
        assert_eq!(ReasonCode::from_u8(0x03), None);
        assert_eq!(ReasonCode::from_u8(0xa3), None);
    }

    #[test]
    fn table_2_6_spot_checks() {
        assert!(R::SessionTakenOver.allowed_in(P::Disconnect));
        assert!(!R::SessionTakenOver.allowed_in(P::ConnAck));
        assert!(R::PacketIdentifierNotFound.allowed_in(P::PubRel));
        assert!(!R::PacketIdentifierNotFound.allowed_in(P::PubAck));
        assert!(R::GrantedQoS2.allowed_in(P::SubAck));
        assert!(R::Success.allowed_in(P::Auth));
        assert!(!R::NoMatchingSubscribers.allowed_in(P::PubRel));
        assert!(R::QuotaExceeded.allowed_in(P::SubAck));
        assert!(!R::QuotaExceeded.allowed_in(P::UnsubAck));
        assert!(!R::Success.allowed_in(P::Publish));
    }

    #[test]
    fn connack_codes_map_both_ways() {
        for byte in 0..=5 {
            let code = ConnectReturnCode::from_u8(byte).unwrap();
            assert_eq!(ConnectReturnCode::from(ReasonCode::from(code)), code);
        }
        assert_eq!(ConnectReturnCode::from_u8(6), None);
        assert_eq!(
            ConnectReturnCode::from(R::ServerBusy),
            ConnectReturnCode::ServerUnavailable
        );
    }
}
