//! Durable storage for a raftmq node: the Raft log and the replicated state machine, kept in
//! sled behind this crate's own types. Empty until the replicated-state work (issue 3) lands.
