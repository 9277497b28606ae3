//! Fuzz target for the MQTT codec: arbitrary bytes go through a server codec and codecs
//! fixed to 3.1.1 and 5.0, every decoded packet must survive an encode/decode round trip,
//! and feeding the stream in two parts must give what feeding it whole gives. The checks
//! live in `oracle/decode_packet.rs`, shared with `tests/fuzz_regressions.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracle/decode_packet.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| oracle::check(data));
