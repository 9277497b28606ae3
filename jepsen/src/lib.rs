//! Jepsen-style consistency harness for raftmq: real node processes, real faults, recorded
//! histories and checkers. Empty until the harness work (issue 6) lands.
