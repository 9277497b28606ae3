//! Fuzz target for the PROXY protocol header reader: arbitrary bytes reach
//! `raftmq::transport::proxy::accept` as a trusted balancer's connection, delivered in two
//! reads, and an accepted header must name the peer its bytes say and hand on the rest of
//! the stream unchanged. The checks live in `oracle/proxy_header.rs`, shared with
//! `tests/fuzz_regressions.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/proxy_header.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::check(data));
