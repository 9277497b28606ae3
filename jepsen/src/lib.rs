//! Jepsen-style consistency harness for raftmq: real node processes, real faults, a
//! recorded history, and checkers that judge it (see `jepsen/README.md`).
//!
//! - [`history`]: operations as Jepsen records them, written as EDN and JSON lines;
//!   [`recorder`] appends to it from every task.
//! - [`checker`]: the checkers (queue, order, session, retained-register linearizability).
//! - [`db`]: the raftmq node processes, each behind the [`proxy`] that injects network
//!   faults; [`nemesis`]: the faults; [`network`]: how links between nodes are cut (the
//!   proxy, or [`netfilter`]: nftables rules in the harness's network namespace);
//!   [`lazyfs`]: the FUSE layer under the nodes' data directories whose unfsynced writes
//!   `lose-unfsynced-writes` drops; [`client`]: the MQTT client (rumqttc); [`nodes`]: the
//!   nodes the clients use, as membership changes; [`workload`]: what the clients do;
//!   [`runner`]: one test from start to verdict; [`crashes`]: node processes that died on
//!   their own, and [`convergence`]: replicas that diverged, both of which make a run
//!   invalid.
//! - [`plot`]: `rate.png` and `latency-raw.png` of a run, faults shaded.

pub mod checker;
pub mod client;
pub mod convergence;
pub mod crashes;
pub mod db;
pub mod history;
pub mod lazyfs;
pub mod nemesis;
pub mod netfilter;
pub mod network;
pub mod nodes;
pub mod plot;
pub mod proxy;
pub mod recorder;
pub mod runner;
pub mod workload;
