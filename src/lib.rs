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
//! - [`session`]: one client's protocol state machine — packets and outcomes in, encoded
//!   packets and actions out, no I/O. Depends on [`mqtt`] and the log's command types.
//! - [`broker`]: the MQTT listener and one task per connection, wiring sessions to the
//!   cluster: the registry that routes applied outcomes to connections, QoS 0 routing
//!   between nodes, and start-up recovery.
//! - [`config`]: flags, environment and the TOML file, validated; [`run`]: running a node.
//! - [`bench`]: load generators that print figures; [`local_cluster`]: node processes on
//!   loopback for the benches and tests.
//!
//! - [`transport`]: TCP, TLS, WebSocket and the PROXY protocol, one stream type out, and
//!   who is on the other end; knows nothing of MQTT.
//! - [`admin`]: the HTTP listener for load balancers and operators (health, drain,
//!   `/metrics`, and the `/api/v1` API: nodes, clients, sessions, subscriptions, retained,
//!   publish, users, ACL, its OpenAPI document), reading through the cluster and broker
//!   handles and changing things by commands to the log; `raftmq user|acl|node|ctl` call it.
//! - [`metrics`]: the node's Prometheus metrics — counters bumped by the connections, the
//!   group commit and the storage (an observer hook of `raftmq-storage`), gauges of the
//!   replicated state read at scrape time.
//!
//! Still to come, in the order of the issues: the dashboard on 18083.
//! `../shared/DESIGN.md` §7 is the target layout.
//!
//! # The path of one QoS 1 PUBLISH
//! A connection task ([`broker`]) reads bytes into a `BytesMut`; [`mqtt::Codec::decode`]
//! checks the fixed header and remaining length against the maximum packet size *before*
//! waiting for the body, then parses one [`mqtt::Packet`]. The connection's
//! [`session::Session`] turns it into a [`cluster::command::Command::Publish`] carrying the
//! session's epoch, which the connection submits to the node's [`cluster::proposer`]:
//! batched with its neighbours into one log entry (forwarded to the leader by a follower),
//! replicated and fsynced on a majority, then applied on every node by
//! [`cluster::state::BrokerState`], which routes it through the subscription index (a
//! [`router::TopicTrie`]) into the queues of persistent sessions, stored once. Each node's
//! [`broker::Registry`] sees the applied outcome and hands each delivery to the connection
//! it holds for that subscriber and epoch, which sends the PUBLISH. The outcome then
//! reaches the publisher's connection, whose session answers PUBACK — in the order the
//! PUBLISHes arrived. A QoS 0 PUBLISH skips the log: the publishing node looks up the
//! subscribers and forwards to their nodes directly.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod local_cluster;
pub mod metrics;
pub mod mqtt;
pub mod router;
pub mod run;
pub mod session;
pub mod transport;
