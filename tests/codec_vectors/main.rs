//! Byte-exact vectors for the MQTT codec, taken from the figures and tables of MQTT 3.1.1
//! (OASIS Standard, 2014) and MQTT 5.0 (OASIS Standard, 2019), for both protocol levels.
//!
//! For every control packet the exact bytes are decoded and compared field by field with
//! the expected packet, and the expected packet is encoded and compared with the exact
//! bytes. Every normative rule the codec enforces then has a negative test that checks the
//! exact error and what the broker must answer to it (the v5 reason code, a CONNACK, or
//! closing the connection).
//!
//! One module per packet family; `common` holds the helpers and `framing` the rules that
//! apply to every packet (remaining length, maximum packet size, partial frames, UTF-8).

mod common;
mod connect;
mod control;
mod encode_errors;
mod framing;
mod properties;
mod publish;
mod subscribe;
