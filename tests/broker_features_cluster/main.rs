//! The feature tests of `broker_features`, every one of them, on a 3-node raftmq cluster
//! started as real processes: `broker_support` sees this target's name and hands each
//! client the next node in turn, so a subscriber and the publisher it hears from sit on
//! different nodes, and a client that reconnects (session resume, takeover, will on
//! takeover, redelivery) comes back through another node. The tests are the same files;
//! only where the clients connect differs.

#[path = "../broker_support/mod.rs"]
mod broker_support;

#[path = "../broker_features/client.rs"]
mod client;
#[path = "../broker_features/raw.rs"]
mod raw;

#[path = "../broker_features/connect.rs"]
mod connect;
#[path = "../broker_features/limits.rs"]
mod limits;
#[path = "../broker_features/properties.rs"]
mod properties;
#[path = "../broker_features/qos.rs"]
mod qos;
#[path = "../broker_features/retained.rs"]
mod retained;
#[path = "../broker_features/sessions.rs"]
mod sessions;
#[path = "../broker_features/shared.rs"]
mod shared;
#[path = "../broker_features/topics.rs"]
mod topics;
#[path = "../broker_features/violations.rs"]
mod violations;
#[path = "../broker_features/will.rs"]
mod will;
