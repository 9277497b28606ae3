//! CONNECT (§3.1): protocol name and level, connect flags, keep alive, properties, client
//! identifier, will, user name and password.

use bytes::{BufMut, Bytes, BytesMut};

use crate::mqtt::error::{DecodeError, EncodeError, Malformed, ProtocolViolation};
use crate::mqtt::property::{Properties, PropertyContext};
use crate::mqtt::topic::validate_topic_name;
use crate::mqtt::wire::{Reader, field_len, put_binary, put_string};
use crate::mqtt::{Protocol, QoS};

const PROTOCOL_NAME: &str = "MQTT";
/// The protocol name of MQTT 3.1 (level 3), which is recognised only to refuse it properly.
const PROTOCOL_NAME_V31: &str = "MQIsdp";

/// A client's request to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    /// Clean Start in 5.0, Clean Session in 3.1.1.
    pub clean_start: bool,
    /// Seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    /// May be empty: the server then assigns one (5.0) or accepts it only with a clean
    /// session (3.1.1). That decision belongs to the session, not the codec.
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

/// The will message of a CONNECT, published when the connection ends abnormally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0): will delay, expiry, content type, response topic, ...
    pub properties: Properties,
}

mod flag {
    pub(super) const RESERVED: u8 = 0x01;
    pub(super) const CLEAN_START: u8 = 0x02;
    pub(super) const WILL: u8 = 0x04;
    pub(super) const WILL_QOS_SHIFT: u8 = 3;
    pub(super) const WILL_RETAIN: u8 = 0x20;
    pub(super) const PASSWORD: u8 = 0x40;
    pub(super) const USERNAME: u8 = 0x80;
}

/// The protocol a CONNECT body asks for, read without parsing the rest: the codec needs it
/// to choose the CONNACK that answers a CONNECT it could not decode.
pub(crate) fn peek_protocol(body: &[u8]) -> Option<Protocol> {
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    Protocol::from_level(*body.get(2 + name_len)?)
}

impl Connect {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        if name != PROTOCOL_NAME {
            if name == PROTOCOL_NAME_V31 {
                return Err(DecodeError::UnsupportedProtocolVersion(level));
            }
            return Err(ProtocolViolation::ProtocolName(name).into());
        }
        let protocol =
            Protocol::from_level(level).ok_or(DecodeError::UnsupportedProtocolVersion(level))?;

        let flags = r.u8()?;
        if flags & flag::RESERVED != 0 {
            return Err(Malformed::ConnectReservedFlag.into());
        }
        let has_will = flags & flag::WILL != 0;
        let will_qos =
            QoS::from_bits((flags >> flag::WILL_QOS_SHIFT) & 0b11).ok_or(Malformed::InvalidQoS)?;
        let will_retain = flags & flag::WILL_RETAIN != 0;
        if !has_will && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(Malformed::WillFlagsWithoutWill.into());
        }
        let has_username = flags & flag::USERNAME != 0;
        let has_password = flags & flag::PASSWORD != 0;
        if protocol == Protocol::V311 && has_password && !has_username {
            return Err(Malformed::PasswordWithoutUsername.into());
        }

        let keep_alive = r.u16()?;
        let properties = match protocol {
            Protocol::V5 => Properties::decode(r, PropertyContext::Connect)?,
            Protocol::V311 => Properties::default(),
        };
        let client_id = r.string()?;
        let will = if has_will {
            let properties = match protocol {
                Protocol::V5 => Properties::decode(r, PropertyContext::Will)?,
                Protocol::V311 => Properties::default(),
            };
            let topic = r.string()?;
            validate_topic_name(&topic)?;
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };

        Ok(Connect {
            protocol,
            clean_start: flags & flag::CLEAN_START != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= flag::CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= flag::WILL | (will.qos.bits() << flag::WILL_QOS_SHIFT);
            if will.retain {
                flags |= flag::WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= flag::USERNAME;
        }
        if self.password.is_some() {
            flags |= flag::PASSWORD;
        }
        flags
    }

    pub(crate) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.protocol == Protocol::V311 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        let v5 = self.protocol == Protocol::V5;
        let mut len = field_len(PROTOCOL_NAME.as_bytes()) + 1 + 1 + 2;
        if v5 {
            len += self.properties.wire_len();
        }
        len += field_len(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.wire_len();
            }
            len += field_len(will.topic.as_bytes()) + field_len(&will.payload);
        }
        if let Some(username) = &self.username {
            len += field_len(username.as_bytes());
        }
        if let Some(password) = &self.password {
            len += field_len(password);
        }
        Ok(len)
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let v5 = self.protocol == Protocol::V5;
        put_string(buf, PROTOCOL_NAME)?;
        buf.put_u8(self.protocol.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            self.properties.encode(PropertyContext::Connect, buf)?;
        }
        put_string(buf, &self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(PropertyContext::Will, buf)?;
            }
            put_string(buf, &will.topic)?;
            put_binary(buf, &will.payload)?;
        }
        if let Some(username) = &self.username {
            put_string(buf, username)?;
        }
        if let Some(password) = &self.password {
            put_binary(buf, password)?;
        }
        Ok(())
    }
}
