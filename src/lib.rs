//! raftmq: an MQTT 3.1.1 / 5.0 broker cluster whose sessions survive the loss of any node.
//!
//! # Map of the crate
//! - [`mqtt`]: the wire codec (every packet of MQTT 3.1.1 and 5.0, properties, reason
//!   codes) and topic names / filters. Depends on nothing else in the crate and does no I/O.
//! - [`router`]: the subscription trie that turns a topic into the subscriptions it
//!   matches, with shared-subscription groups kept apart. Depends on [`mqtt`] only.
//! - [`cluster`]: the Raft log's commands and their deterministic `apply` (state kept by
//!   the `raftmq-storage` crate), group commit, the gRPC network and service of
//!   `proto/cluster.proto`, starting and joining nodes, and `raftmq cluster ...`.
//! - [`config`]: the command line and environment, validated; [`run`]: running a node.
//! - [`bench`]: load generators that print figures; [`local_cluster`]: node processes on
//!   loopback for the benches and tests.
//!
//! Still to come, in the order of the issues: `session/` (one client's protocol state
//! machine), `transport/`, `broker.rs` and `admin/`. `../shared/DESIGN.md` §7 is the
//! target layout.
//!
//! # The path of one PUBLISH (as far as it exists today)
//! bytes from a socket land in a `BytesMut`; [`mqtt::Codec::decode`] checks the fixed
//! header and remaining length against the maximum packet size *before* waiting for the
//! body, then parses one [`mqtt::Packet`]. A QoS 1/2 message becomes a
//! [`cluster::command::Command::Publish`], handed to the node's [`cluster::proposer`]:
//! batched with its neighbours into one log entry (forwarded to the leader by a
//! follower), replicated and fsynced on a majority, then applied on every node by
//! [`cluster::state::BrokerState`], which routes it through the subscription index (a
//! [`router::TopicTrie`]) into the queues of persistent sessions, stored once, and returns
//! the deliveries for the connections that hold the subscribers.

pub mod bench;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod local_cluster;
pub mod mqtt;
pub mod router;
pub mod run;
pub mod session;
