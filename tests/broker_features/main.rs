//! The broker's MQTT behaviour end to end, over TCP, as the MQTT 3.1.1 and 5.0 specs
//! require it: CONNECT rules and sessions, wills, QoS flows and flow control, offline
//! queues, retained messages, the 5.0 properties and subscription options, shared
//! subscriptions, `$`-topics, and protocol violations. Each test starts its own broker
//! (`broker_support`): raftmq, or Mosquitto with `RAFTMQ_TEST_BROKER=mosquitto`, which is
//! how every expectation here was checked to be the spec's. Tests of raftmq's own settings
//! (configured limits) return early against Mosquitto, saying so.
//!
//! Clients: rumqttc 0.25 (`client`) where it can express the test, and a bare client
//! (`raw`) where it cannot; each module says which.

#[path = "../broker_support/mod.rs"]
mod broker_support;

mod client;
mod raw;

mod connect;
mod limits;
mod properties;
mod qos;
mod retained;
mod sessions;
mod shared;
mod topics;
mod violations;
mod will;
