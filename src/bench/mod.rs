//! Load generators that print figures (`raftmq bench ...`). Speed targets live here, not
//! in timed tests: the machines are noisy.

pub mod mqtt;
pub mod raft;
