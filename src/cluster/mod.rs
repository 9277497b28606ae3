//! The cluster: one Raft group (openraft) whose log holds every change to the broker's
//! durable state, replicated between nodes over gRPC (`proto/cluster.proto`) and stored
//! in sled (the `raftmq-storage` crate). DESIGN §2–§6.
//!
//! - [`types`]: the openraft `TypeConfig` (what a log entry carries and what applying it
//!   answers).
//! - [`command`]: `Command` (one client or broker action, time stamped by the proposer),
//!   batched as `CommandBatch` per log entry, and the `Outcome` of each.
//! - [`state`]: `BrokerState`, the deterministic `apply` over the `storage` crate's tables
//!   (sessions, queues, messages, retained messages, expiry indexes), with the in-memory
//!   subscription index derived from them, and read helpers for the rest of the broker.
//! - [`proposer`]: group commit with several batches in flight; `forwarder` and `forward`: followers'
//!   ordered streams of batches to the leader (each side).
//! - [`handoff`]: a draining leader hands leadership to a caught-up voter.
//! - [`clock`]: the leader's periodic `Tick`, and `NodeDown` for removed nodes.
//! - [`proto`], [`network`] and `service`: the schema and the two sides of the cluster
//!   gRPC service; [`secret`] and [`tls`]: who may speak to it (a shared secret, mutual
//!   TLS, or both).
//! - [`node`]: starting a node, bootstrapping or joining, membership changes;
//!   [`members`]: what the HTTP API asks of the members (status, connections, adding and
//!   removing one, a snapshot, moving leadership).
//! - [`admin`]: the client side of `raftmq cluster ...`.

pub mod admin;
pub mod clock;
pub mod command;
mod forward;
mod forwarder;
pub mod handoff;
pub mod members;
pub mod network;
pub mod node;
pub mod proposer;
pub mod proto;
pub mod secret;
mod service;
pub mod state;
pub mod tls;
pub mod types;
