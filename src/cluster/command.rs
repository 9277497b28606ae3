//! What the Raft log carries and what applying it answers: [`Command`]s in a
//! [`CommandBatch`] (one log entry), and one [`Outcome`] per command in a [`BatchOutcome`].
//!
//! Everything here is encoded with bincode 2 in the log and must encode the same way on
//! every node: no floats, no hash maps, no skipped or untagged fields. Time is data: the
//! proposer stamps [`Millis`] into each command, and `apply` never reads a clock.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::auth::acl::AclRule;
pub use crate::cluster::state::ShareRef;
use crate::cluster::types::NodeId;

/// Milliseconds since the Unix epoch, as stamped by the proposing node.
pub type Millis = u64;

/// The commands of one log entry, applied in order: proposals that arrive together are
/// committed together (group commit, DESIGN §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch(pub Vec<Command>);

/// One outcome per command of a [`CommandBatch`], in the same order. A log entry without
/// commands (blank or membership) answers an empty batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome(pub Vec<Outcome>);

/// One change to the broker's replicated state (DESIGN §2). Commands from a client
/// connection carry the session epoch the connection was given by its `Connect`; `apply`
/// answers [`Outcome::Fenced`] to any other epoch (DESIGN §3 rule 3).
///
/// The larger commands wrap a struct of their own name, as mini-redis's `Command::Get(Get)`
/// does, so that their handlers take one argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A CONNECT accepted by `node`: resumes or starts the session and takes it over from
    /// any connection that held it.
    Connect(Connect),
    /// The connection ended (DISCONNECT, network loss, keep-alive timeout, takeover seen
    /// by the owner node).
    Disconnect(Disconnect),
    Subscribe(Subscribe),
    Unsubscribe {
        client_id: String,
        epoch: u64,
        /// The filters as the client sent them, `$share/` prefix included.
        filters: Vec<String>,
    },
    /// A QoS 1 or 2 PUBLISH (QoS 0 publishes do not go through the log, DESIGN §4, except
    /// a retained one, whose only effect here is on the retained store).
    Publish(Publish),
    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) from a subscriber, batched: frees the packet ids
    /// and lets queued messages into the in-flight window.
    Ack {
        client_id: String,
        epoch: u64,
        packet_ids: Vec<u16>,
    },
    /// PUBREC from a subscriber: the QoS 2 message reached it; only PUBREL/PUBCOMP remain.
    Received {
        client_id: String,
        epoch: u64,
        packet_id: u16,
    },
    /// PUBREL from a publisher: ends the inbound QoS 2 deduplication of that packet id.
    Release {
        client_id: String,
        epoch: u64,
        packet_id: u16,
    },
    /// Proposed periodically by the leader: moves the state's clock forward (by a bounded
    /// step) and expires sessions, delayed wills and messages whose time has come.
    Tick {
        now: Millis,
    },
    /// `node` left the cluster or is considered dead: every session it owned goes offline
    /// as if its connection dropped.
    NodeDown {
        node: NodeId,
        now: Millis,
    },
    /// The connection of a transient session ended with messages of shared subscriptions
    /// unacknowledged or waiting (only that connection held them, DESIGN §4): each goes to
    /// another member of its group (MQTT 5.0 §4.8.2). Proposed after the `Disconnect`.
    HandOver(HandOver),
    /// Adds, changes or removes users. Passwords arrive hashed by the proposing node:
    /// `apply` hashes nothing (it must be fast and deterministic).
    User(UserChange),
    /// The cluster's ACL rules, replaced whole: the first rule that applies decides, so
    /// their order is part of the value.
    SetAcl {
        rules: Vec<AclRule>,
    },
    /// An operator's call (the HTTP API): the client's connection, wherever it is, is
    /// closed (5.0 reason 0x98), and with `remove_session` its session ends too, its will
    /// dropped. Without it the state does not change: the connection's own `Disconnect`
    /// then takes the session offline as for any server-side close.
    Evict(Evict),
}

/// See [`Command::Evict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evict {
    pub client_id: String,
    pub remove_session: bool,
    pub now: Millis,
}

/// See [`Command::User`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserChange {
    /// A new user; nothing changes if the name is taken.
    Add {
        username: String,
        hash: String,
    },
    /// A new password for an existing user. With `only_if`, only while the stored hash is
    /// still that one: a login's hash upgrade never overwrites a password changed since.
    SetPassword {
        username: String,
        hash: String,
        only_if: Option<String>,
    },
    /// Users added or replaced as given (an import).
    Import {
        users: Vec<(String, String)>,
    },
    Remove {
        username: String,
    },
}

/// See [`Command::HandOver`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    /// The member that left: never chosen again for these messages.
    pub client_id: String,
    pub messages: Vec<Unfinished>,
    pub now: Millis,
}

/// A message a member of a shared group received but did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    pub share: ShareRef,
    #[serde(with = "shared_message")]
    pub message: Arc<Message>,
    /// Absolute expiry on the state's clock.
    pub expires_at: Option<Millis>,
}

/// See [`Command::Connect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    pub client_id: String,
    /// The node holding the new connection: the session's owner from now on.
    pub node: NodeId,
    /// The CONNECT protocol level: 4 (3.1.1) or 5.
    pub protocol: u8,
    pub clean_start: bool,
    /// Seconds the session outlives its connection: 0 ends it with the connection,
    /// `u32::MAX` never expires it. 3.1.1: clean session 1 → 0, clean session 0 → `u32::MAX`.
    pub session_expiry: u32,
    /// The client's receive maximum: the size of its outbound in-flight window. 3.1.1
    /// clients have none; the node passes its configured window.
    pub receive_maximum: u16,
    /// How many messages may wait in the session's queue beyond the in-flight window
    /// (the proposing node's configuration).
    pub max_queue: u32,
    /// How many payload bytes may wait there (0: no limit; the proposing node's
    /// configuration).
    pub max_queue_bytes: u64,
    pub will: Option<WillMessage>,
    pub now: Millis,
}

/// See [`Command::Disconnect`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    pub client_id: String,
    pub epoch: u64,
    /// False for a normal DISCONNECT (the will is dropped); true for an abnormal close or a
    /// v5 DISCONNECT with reason 0x04.
    pub publish_will: bool,
    /// A v5 DISCONNECT may change the session expiry interval (but not from 0).
    pub session_expiry: Option<u32>,
    pub now: Millis,
}

/// See [`Command::Subscribe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    pub client_id: String,
    pub epoch: u64,
    /// Each filter as the client sent it (`$share/` prefix included) with its options.
    pub filters: Vec<(String, SubscriptionOptions)>,
    /// The v5 subscription identifier of this SUBSCRIBE, if any.
    pub subscription_id: Option<u32>,
    pub now: Millis,
}

/// See [`Command::Publish`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// The publishing connection; `None` for a message the broker publishes itself (the
    /// admin API), which is neither fenced nor deduplicated.
    pub from: Option<Publisher>,
    /// The publisher's packet id: a QoS 2 publish is deduplicated on it until `Release`.
    pub packet_id: Option<u16>,
    pub message: Message,
    pub now: Millis,
}

/// The connection a publish came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    pub client_id: String,
    pub epoch: u64,
}

/// An application message as published, with the v5 properties that travel with it to
/// subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Seconds, as published; the state keeps the absolute expiry time next to it.
    pub expiry_interval: Option<u32>,
    pub payload_format_utf8: Option<bool>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
}

impl Message {
    /// A message without v5 properties.
    pub fn new(topic: impl Into<String>, payload: Bytes, qos: u8, retain: bool) -> Self {
        Message {
            topic: topic.into(),
            payload,
            qos,
            retain,
            expiry_interval: None,
            payload_format_utf8: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        }
    }
}

/// The will of a connection: published when the connection ends abnormally, after
/// `delay` seconds (v5 will delay interval; 0 for 3.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillMessage {
    pub delay: u32,
    pub message: Message,
}

/// The options of one subscription: the serde mirror of [`crate::mqtt::SubscriptionOptions`]
/// (the codec's types carry no serde, and the log must not depend on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscriptionOptions {
    /// The maximum QoS the subscriber accepts (0..=2).
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent on subscribe (MQTT 5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RetainHandling {
    #[default]
    SendAtSubscribe,
    SendIfNewSubscription,
    DoNotSend,
}

impl From<crate::mqtt::SubscriptionOptions> for SubscriptionOptions {
    fn from(options: crate::mqtt::SubscriptionOptions) -> Self {
        SubscriptionOptions {
            qos: options.qos.bits(),
            no_local: options.no_local,
            retain_as_published: options.retain_as_published,
            retain_handling: options.retain_handling.into(),
        }
    }
}

impl From<crate::mqtt::RetainHandling> for RetainHandling {
    fn from(handling: crate::mqtt::RetainHandling) -> Self {
        match handling {
            crate::mqtt::RetainHandling::SendAtSubscribe => RetainHandling::SendAtSubscribe,
            crate::mqtt::RetainHandling::SendIfNewSubscription => {
                RetainHandling::SendIfNewSubscription
            }
            crate::mqtt::RetainHandling::DoNotSend => RetainHandling::DoNotSend,
        }
    }
}

/// What applying one command did. Outcomes that other nodes act on (a takeover, a
/// delivery to a connection they hold) name their target, because the node's notifier
/// sees outcomes without the commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Connected {
        client_id: String,
        /// The node holding the new connection: it binds the epoch to that connection.
        node: NodeId,
        /// The new connection's epoch: unique across the cluster's history, so no earlier
        /// connection of any session can hold it.
        epoch: u64,
        session_present: bool,
        /// The connection that held the session until now: its node closes it (0x8E).
        taken_over: Option<Takeover>,
        /// The session's in-flight entries in queue order, to send again with DUP=1 (or
        /// PUBREL for those in the PUBCOMP stage) under the same packet ids (DESIGN §3
        /// rule 5).
        resend: Vec<OutboundEntry>,
        /// Wills published by this connect (the old connection's, or the ended session's).
        deliveries: Vec<Delivery>,
    },
    Disconnected {
        /// The session ended (session expiry 0); otherwise it waits offline.
        session_ended: bool,
        deliveries: Vec<Delivery>,
    },
    HandedOver {
        /// Messages given to another member; the rest had expired or had no member left.
        handed: u32,
        deliveries: Vec<Delivery>,
    },
    Subscribed {
        /// Per filter: the granted QoS, or 0x80 (3.1.1 failure / v5 unspecified error) or
        /// 0x8F (v5 topic filter invalid).
        reasons: Vec<u8>,
        /// Retained messages sent on subscribe.
        deliveries: Vec<Delivery>,
    },
    Unsubscribed {
        /// Per filter: 0x00 success or 0x11 no subscription existed.
        reasons: Vec<u8>,
        /// Queued messages of a shared group handed to the group's other members.
        deliveries: Vec<Delivery>,
    },
    Published {
        /// A QoS 2 resend of a packet id still awaiting PUBREL: nothing was routed again.
        duplicate: bool,
        /// Subscriptions reached (one per subscriber, one per shared group), whether the
        /// message was queued, sent or dropped for them.
        matched: u32,
        deliveries: Vec<Delivery>,
    },
    Acked {
        /// The packet ids that were in flight and are now free; unknown ids are left out.
        released: Vec<u16>,
        /// Queued entries that entered the in-flight window, for the session's connection.
        deliveries: Vec<Delivery>,
    },
    Received {
        /// The packet id was an in-flight QoS 2 entry of the session.
        known: bool,
    },
    Released {
        /// The packet id was awaiting PUBREL (v5 answers PUBCOMP 0x92 otherwise).
        known: bool,
    },
    Ticked {
        /// The state's clock after this tick.
        clock: Millis,
        expired_sessions: Vec<String>,
        wills_published: u32,
        /// Queued entries and retained messages removed because their message expired.
        expired_messages: u32,
        deliveries: Vec<Delivery>,
    },
    NodeDowned {
        /// Sessions of the node handled by this command.
        sessions: u32,
        /// More sessions of the node remain: propose `NodeDown` again (each command does
        /// bounded work).
        remaining: bool,
        deliveries: Vec<Delivery>,
    },
    /// Users added, changed or removed by a `User` command (0: the name was taken, or
    /// unknown, or its hash had changed).
    UsersChanged {
        count: u32,
    },
    AclSet,
    Evicted {
        client_id: String,
        /// A session of that client id existed.
        existed: bool,
        /// The connection that held it: its node closes it.
        connection: Option<Takeover>,
        /// Entries of shared groups the removed session held, handed to other members.
        deliveries: Vec<Delivery>,
    },
    /// The command's epoch is not the session's current one, or the session is offline:
    /// the connection that sent it no longer holds the session and is closed with 0x8E.
    Fenced {
        current_epoch: Option<u64>,
    },
    /// The command is not one the broker should have proposed; nothing changed.
    Rejected {
        reason: Rejection,
    },
}

/// Why a command was refused without effect. Each is a bug in the proposer, not a client
/// error: the session layer checks these before proposing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// `Connect.protocol` is neither 4 nor 5.
    UnknownProtocol,
    /// `Connect.receive_maximum` is 0, which MQTT forbids.
    ZeroReceiveMaximum,
    /// A QoS above 2.
    InvalidQos,
    /// A QoS 0 publish that is not retained: it has nothing to do in the log.
    Qos0Publish,
    /// The topic is not a valid topic name.
    InvalidTopic,
}

/// The connection a session was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    pub node: NodeId,
    pub epoch: u64,
}

/// The connection a delivery is for: the owner node sends only if it still holds the
/// session under that epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub node: NodeId,
    pub client_id: String,
    pub epoch: u64,
}

/// Something an owner node must send to one of its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// A persistent session's queue entry entered the in-flight window: send it under its
    /// packet id. The message is read from the state by id.
    Queued {
        target: Target,
        entry: OutboundEntry,
    },
    /// A message the state does not keep: for a transient session (DESIGN §4: the owner
    /// node holds its outbound messages), or at QoS 0. The owner assigns packet ids.
    Direct {
        target: Target,
        qos: u8,
        /// The RETAIN flag as delivered.
        retain: bool,
        subscription_ids: Vec<u32>,
        /// Absolute expiry on the state's clock, for the remaining expiry interval.
        expires_at: Option<Millis>,
        #[serde(with = "shared_message")]
        message: Arc<Message>,
        /// The shared subscription it was delivered through, if any: a transient member
        /// that leaves hands the message to another member (`Command::HandOver`).
        share: Option<ShareRef>,
    },
}

/// An entry of a persistent session's outbound queue that is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEntry {
    /// Position in the session's queue: entries are sent in this order.
    pub seq: u64,
    pub packet_id: u16,
    pub stage: Stage,
    /// Sent to a connection before: a resend carries DUP=1.
    pub dup: bool,
    pub qos: u8,
    /// The RETAIN flag as delivered.
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// The stored message; `None` once the client has PUBREC'd it (only PUBREL remains).
    pub message_id: Option<u64>,
}

/// Where an in-flight entry is in its QoS flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// PUBLISH to send (again, with DUP=1 after the first time); PUBACK or PUBREC expected.
    AwaitingAck,
    /// PUBREC received: PUBREL to send; PUBCOMP expected.
    AwaitingComp,
}

/// Serializes an `Arc<Message>` as the message itself: serde's `rc` feature is not on, and
/// an outcome fanned out to many connections should share one message, not copy it.
mod shared_message {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Message;

    pub(super) fn serialize<S: Serializer>(
        message: &Arc<Message>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        message.as_ref().serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<Message>, D::Error> {
        Message::deserialize(deserializer).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> (Vec<u8>, T) {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(value, config).expect("encodes");
        let (decoded, _) = bincode::serde::decode_from_slice(&bytes, config).expect("decodes");
        (bytes, decoded)
    }

    fn message() -> Message {
        Message {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"hello"),
            qos: 1,
            retain: true,
            expiry_interval: Some(30),
            payload_format_utf8: Some(true),
            content_type: Some("text/plain".into()),
            response_topic: Some("r".into()),
            correlation_data: Some(Bytes::from_static(b"c")),
            user_properties: vec![("k".into(), "v".into())],
        }
    }

    #[test]
    fn a_batch_round_trips_through_bincode() {
        let batch = CommandBatch(vec![
            Command::Publish(Publish {
                from: Some(Publisher {
                    client_id: "c".into(),
                    epoch: 3,
                }),
                packet_id: Some(7),
                message: message(),
                now: 10,
            }),
            Command::Tick { now: 11 },
            Command::HandOver(HandOver {
                client_id: "m".into(),
                messages: vec![Unfinished {
                    share: ShareRef {
                        group: "g".into(),
                        filter: "a/b".into(),
                    },
                    message: Arc::new(message()),
                    expires_at: None,
                }],
                now: 12,
            }),
            Command::User(UserChange::SetPassword {
                username: "u".into(),
                hash: "h".into(),
                only_if: Some("old".into()),
            }),
            // Rules with absent fields in the middle: a field skipped when absent would
            // shift every later one (bincode is not self-describing).
            Command::SetAcl {
                rules: vec![AclRule {
                    permission: crate::auth::acl::Permission::Deny,
                    action: crate::auth::acl::RuleAction::All,
                    username: None,
                    client_id: Some("c".into()),
                    network: None,
                    topics: vec!["a/#".into()],
                }],
            },
            Command::Tick { now: 13 },
        ]);
        let (bytes, decoded) = round_trip(&batch);
        assert_eq!(decoded, batch);
        // Encoding is a pure function of the value: a second encoding is byte-equal.
        assert_eq!(round_trip(&decoded).0, bytes);
    }

    #[test]
    fn a_direct_delivery_round_trips_its_shared_message() {
        let outcome = BatchOutcome(vec![Outcome::Published {
            duplicate: false,
            matched: 1,
            deliveries: vec![Delivery::Direct {
                target: Target {
                    node: 1,
                    client_id: "s".into(),
                    epoch: 2,
                },
                qos: 1,
                retain: false,
                subscription_ids: vec![4],
                expires_at: Some(99),
                message: Arc::new(message()),
                share: Some(ShareRef {
                    group: "g".into(),
                    filter: "a/+".into(),
                }),
            }],
        }]);
        assert_eq!(round_trip(&outcome).1, outcome);
    }

    #[test]
    fn options_mirror_the_codec() {
        let codec = crate::mqtt::SubscriptionOptions {
            qos: crate::mqtt::QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: false,
            retain_handling: crate::mqtt::RetainHandling::SendIfNewSubscription,
        };
        assert_eq!(
            SubscriptionOptions::from(codec),
            SubscriptionOptions {
                qos: 2,
                no_local: true,
                retain_as_published: false,
                retain_handling: RetainHandling::SendIfNewSubscription,
            }
        );
    }
}
