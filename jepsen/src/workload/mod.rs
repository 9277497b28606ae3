//! The workloads: what the clients do while the nemesis works.

pub mod queue;
pub mod retained;
pub mod session;
