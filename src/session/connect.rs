//! The CONNECT rules that need no cluster: which client id, which keep-alive, which
//! session lifetime and window, and the refusals (MQTT 3.1.1 §3.1.3.1, 5.0 §3.1.2–3.1.3).
//! The result is either the `Connect` command to propose or the CONNACK that refuses.

use crate::cluster::command;
use crate::cluster::command::Millis;
use crate::cluster::types::NodeId;
use crate::mqtt::{ConnAck, Connect, Properties, Protocol, ReasonCode};

use super::Limits;
use super::convert::will_from_connect;

/// An accepted CONNECT: the command to propose and what the session needs once the
/// command is applied.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    pub protocol: Protocol,
    pub command: command::Connect,
    /// The client id the server chose for an empty one (sent back in a v5 CONNACK).
    pub assigned_client_id: Option<String>,
    /// The keep-alive in force, seconds (0: off).
    pub keep_alive: u16,
    /// Sent in a v5 CONNACK when the server overrides the client's keep-alive.
    pub server_keep_alive: Option<u16>,
    /// The largest packet the client accepts.
    pub client_max_packet_size: usize,
    /// How many topic aliases the client accepts from the server.
    pub client_topic_alias_maximum: u16,
}

/// A refused CONNECT: the CONNACK reason (mapped to a 3.1.1 return code for 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub protocol: Protocol,
    pub reason: ReasonCode,
}

impl Refusal {
    pub fn connack(&self) -> ConnAck {
        ConnAck {
            session_present: false,
            reason: self.reason,
            properties: Properties::default(),
        }
    }
}

/// Checks a CONNECT against the rules and the server's limits. `assign_id` makes a client
/// id for a client that sent none (only called when one is needed).
pub fn accept_connect(
    connect: &Connect,
    limits: &Limits,
    node: NodeId,
    now: Millis,
    assign_id: impl FnOnce() -> String,
) -> Result<ConnectPlan, Refusal> {
    let protocol = connect.protocol;
    let refuse = |reason| Err(Refusal { protocol, reason });
    let p = &connect.properties;
    // No enhanced authentication is offered: a client asking for a method is refused as
    // 5.0 §4.12 says.
    if p.authentication_method.is_some() {
        return refuse(ReasonCode::BadAuthenticationMethod);
    }
    let mut assigned_client_id = None;
    let client_id = if connect.client_id.is_empty() {
        // 3.1.1 §3.1.3.1: an empty id is allowed only with a clean session.
        if protocol == Protocol::V311 && !connect.clean_start {
            return refuse(ReasonCode::ClientIdentifierNotValid);
        }
        let id = assign_id();
        if protocol == Protocol::V5 {
            assigned_client_id = Some(id.clone());
        }
        id
    } else if connect.client_id.len() > usize::from(limits.max_client_id_len) {
        return refuse(ReasonCode::ClientIdentifierNotValid);
    } else {
        connect.client_id.clone()
    };
    let session_expiry = match protocol {
        Protocol::V311 if connect.clean_start => 0,
        Protocol::V311 => u32::MAX,
        Protocol::V5 => p.session_expiry_interval.unwrap_or(0),
    };
    let client_receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
    let window = client_receive_maximum.min(limits.max_inflight).max(1);
    let (keep_alive, server_keep_alive) = keep_alive(connect, limits);
    Ok(ConnectPlan {
        protocol,
        command: command::Connect {
            client_id,
            node,
            protocol: protocol.level(),
            clean_start: connect.clean_start,
            session_expiry,
            receive_maximum: window,
            max_queue: limits.max_queued_messages,
            max_queue_bytes: limits.max_queued_bytes,
            will: connect.will.as_ref().map(will_from_connect),
            now,
        },
        assigned_client_id,
        keep_alive,
        server_keep_alive,
        client_max_packet_size: p
            .maximum_packet_size
            .map_or(usize::MAX, |size| size as usize),
        client_topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
    })
}

/// The keep-alive in force and the Server Keep Alive to announce: a v5 client asking for
/// more than the server allows (or for none, when the server sets a limit) gets the
/// limit; 3.1.1 has no way to say so and keeps its own.
fn keep_alive(connect: &Connect, limits: &Limits) -> (u16, Option<u16>) {
    let asked = connect.keep_alive;
    let max = limits.max_keep_alive;
    let too_long = asked > max || (asked == 0 && max < u16::MAX);
    match connect.protocol {
        Protocol::V5 if too_long => (max, Some(max)),
        _ => (asked, None),
    }
}

/// The CONNACK of an accepted connection.
pub fn connack(plan: &ConnectPlan, limits: &Limits, session_present: bool) -> ConnAck {
    let mut properties = Properties::default();
    if plan.protocol == Protocol::V5 {
        properties.assigned_client_identifier = plan.assigned_client_id.clone();
        properties.server_keep_alive = plan.server_keep_alive;
        properties.receive_maximum = Some(limits.receive_maximum);
        properties.maximum_packet_size = Some(limits.max_packet_size);
        properties.topic_alias_maximum = Some(limits.topic_alias_maximum);
    }
    ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::Will;

    fn connect(protocol: Protocol, client_id: &str, clean: bool) -> Connect {
        Connect {
            protocol,
            clean_start: clean,
            keep_alive: 30,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    fn accept(c: &Connect) -> Result<ConnectPlan, Refusal> {
        accept_connect(c, &Limits::default(), 7, 1000, || "assigned".into())
    }

    #[test]
    fn an_empty_id_is_assigned_in_v5_and_in_clean_3_1_1_sessions_only() {
        let plan = accept(&connect(Protocol::V5, "", false)).unwrap();
        assert_eq!(plan.command.client_id, "assigned");
        assert_eq!(plan.assigned_client_id.as_deref(), Some("assigned"));
        let plan = accept(&connect(Protocol::V311, "", true)).unwrap();
        assert_eq!(plan.command.client_id, "assigned");
        assert_eq!(plan.assigned_client_id, None);
        assert_eq!(
            accept(&connect(Protocol::V311, "", false)).unwrap_err(),
            Refusal {
                protocol: Protocol::V311,
                reason: ReasonCode::ClientIdentifierNotValid
            }
        );
    }

    #[test]
    fn session_lifetime_follows_the_protocol() {
        assert_eq!(
            accept(&connect(Protocol::V311, "a", true))
                .unwrap()
                .command
                .session_expiry,
            0
        );
        assert_eq!(
            accept(&connect(Protocol::V311, "a", false))
                .unwrap()
                .command
                .session_expiry,
            u32::MAX
        );
        let mut v5 = connect(Protocol::V5, "a", false);
        assert_eq!(accept(&v5).unwrap().command.session_expiry, 0);
        v5.properties.session_expiry_interval = Some(60);
        assert_eq!(accept(&v5).unwrap().command.session_expiry, 60);
    }

    #[test]
    fn the_window_is_the_smaller_of_the_client_and_server_limits() {
        let mut v5 = connect(Protocol::V5, "a", true);
        assert_eq!(accept(&v5).unwrap().command.receive_maximum, 32);
        v5.properties.receive_maximum = Some(3);
        assert_eq!(accept(&v5).unwrap().command.receive_maximum, 3);
    }

    #[test]
    fn a_v5_keep_alive_above_the_limit_is_lowered_and_announced() {
        let limits = Limits {
            max_keep_alive: 60,
            ..Limits::default()
        };
        let mut v5 = connect(Protocol::V5, "a", true);
        v5.keep_alive = 600;
        let plan = accept_connect(&v5, &limits, 1, 0, || unreachable!()).unwrap();
        assert_eq!((plan.keep_alive, plan.server_keep_alive), (60, Some(60)));
        v5.keep_alive = 0;
        let plan = accept_connect(&v5, &limits, 1, 0, || unreachable!()).unwrap();
        assert_eq!((plan.keep_alive, plan.server_keep_alive), (60, Some(60)));
        let mut v3 = connect(Protocol::V311, "a", true);
        v3.keep_alive = 600;
        let plan = accept_connect(&v3, &limits, 1, 0, || unreachable!()).unwrap();
        assert_eq!((plan.keep_alive, plan.server_keep_alive), (600, None));
    }

    #[test]
    fn a_will_keeps_its_delay_and_properties() {
        let mut v5 = connect(Protocol::V5, "a", true);
        let properties = Properties {
            will_delay_interval: Some(5),
            content_type: Some("text".into()),
            ..Properties::default()
        };
        v5.will = Some(Will {
            topic: "w".into(),
            payload: bytes::Bytes::from_static(b"gone"),
            qos: crate::mqtt::QoS::AtLeastOnce,
            retain: true,
            properties,
        });
        let will = accept(&v5).unwrap().command.will.unwrap();
        assert_eq!(will.delay, 5);
        assert_eq!(will.message.topic, "w");
        assert_eq!(will.message.qos, 1);
        assert!(will.message.retain);
        assert_eq!(will.message.content_type.as_deref(), Some("text"));
    }

    #[test]
    fn an_authentication_method_is_refused() {
        let mut v5 = connect(Protocol::V5, "a", true);
        v5.properties.authentication_method = Some("SCRAM".into());
        assert_eq!(
            accept(&v5).unwrap_err().reason,
            ReasonCode::BadAuthenticationMethod
        );
    }
}
