//! raftmq: an MQTT 3.1.1 / 5.0 broker cluster whose sessions survive the loss of any node.
//!
//! # Map of the crate
//! - [`mqtt`]: the wire codec (every packet of MQTT 3.1.1 and 5.0, properties, reason
//!   codes) and topic names / filters. Depends on nothing else in the crate and does no I/O.
//! - [`router`]: the subscription trie that turns a topic into the subscriptions it
//!   matches, with shared-subscription groups kept apart. Depends on [`mqtt`] only.
//!
//! Still to come, in the order of the issues: `cluster/` (openraft over gRPC, state in the
//! `storage` crate), `session/` (one client's protocol state machine), `transport/`,
//! `broker.rs` and `admin/`. `../shared/DESIGN.md` §7 is the target layout.
//!
//! # The path of one PUBLISH (as far as it exists today)
//! bytes from a socket land in a `BytesMut`; [`mqtt::Codec::decode`] checks the fixed
//! header and remaining length against the maximum packet size *before* waiting for the
//! body, then parses one [`mqtt::Packet`]; the topic of a `Publish` is looked up in a
//! [`router::TopicTrie`], which yields every matching subscription with its options.

pub mod mqtt;
pub mod router;
