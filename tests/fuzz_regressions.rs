//! Replays the inputs kept beside the `decode_packet` and `proxy_header` fuzz targets under
//! their own checks: every file in `tests/fuzz/regressions/<target>/` (inputs that once
//! failed) and in `tests/fuzz/seeds/<target>/` (valid inputs the fuzzer starts from). The
//! checks are the fuzz targets', included by path, so a fixed crash stays fixed without
//! nightly or cargo-fuzz. The seeds must also be accepted whole, or they would seed nothing
//! useful.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use raftmq::mqtt::{Codec, DEFAULT_MAX_PACKET_SIZE};

#[path = "fuzz/oracle/decode_packet.rs"]
mod oracle;

#[path = "fuzz/oracle/proxy_header.rs"]
mod proxy_oracle;

/// The files of `tests/fuzz/<dir>`, sorted so that failures name the same file every run.
/// A missing directory has none: git keeps no empty directory, and there may be no
/// regression yet.
fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs the fuzz checks `check` on one input file, naming the file if they panic.
fn replay_with(check: fn(&[u8]), path: &Path) {
    let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let outcome = std::panic::catch_unwind(|| check(&data));
    assert!(outcome.is_ok(), "fuzz checks failed on {}", path.display());
}

/// Runs the `decode_packet` checks on one input file.
fn replay(path: &Path) {
    replay_with(oracle::check, path);
}

#[test]
fn regression_inputs_pass_the_fuzz_checks() {
    for path in inputs("regressions/decode_packet") {
        replay(&path);
    }
}

#[test]
fn seed_inputs_pass_the_fuzz_checks() {
    let seeds = inputs("seeds/decode_packet");
    assert!(
        !seeds.is_empty(),
        "no seeds in tests/fuzz/seeds/decode_packet"
    );
    for path in seeds {
        replay(&path);
    }
}

#[test]
fn seed_streams_decode_completely_on_a_server_codec() {
    for path in inputs("seeds/decode_packet") {
        let data = fs::read(&path).expect("seed readable");
        let mut buf = BytesMut::from(&data[oracle::HEADER_LEN..]);
        let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
        let mut packets = 0;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => packets += 1,
                Ok(None) => break,
                Err(e) => panic!("{}: packet {} fails: {e}", path.display(), packets + 1),
            }
        }
        assert!(
            buf.is_empty(),
            "{}: a partial packet is left",
            path.display()
        );
        assert!(packets >= 2, "{}: only {packets} packet(s)", path.display());
    }
}

#[test]
fn proxy_header_regression_inputs_pass_the_fuzz_checks() {
    for path in inputs("regressions/proxy_header") {
        replay_with(proxy_oracle::check, &path);
    }
}

#[test]
fn proxy_header_seeds_pass_the_fuzz_checks() {
    let seeds = inputs("seeds/proxy_header");
    assert!(
        !seeds.is_empty(),
        "no seeds in tests/fuzz/seeds/proxy_header"
    );
    for path in seeds {
        replay_with(proxy_oracle::check, &path);
    }
}

/// Each seed is a valid header followed by the start of a CONNECT: the header must be
/// accepted and the CONNECT handed on, or the seed starts the fuzzer from a refusal.
#[test]
fn proxy_header_seeds_are_accepted() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = raftmq::transport::proxy::ProxyConfig {
        trusted: vec!["10.0.0.0/8".parse().expect("network")],
        timeout: std::time::Duration::from_secs(5),
    };
    let balancer = "10.0.0.5:40000".parse().expect("address");
    for path in inputs("seeds/proxy_header") {
        let data = fs::read(&path).expect("seed readable");
        let stream = &data[proxy_oracle::HEADER_LEN..];
        let rest = runtime.block_on(async {
            use tokio::io::AsyncReadExt;
            // `accept` wants a connection it could write to; it writes nothing.
            let connection = tokio::io::join(stream, tokio::io::sink());
            let (mut rest, _) = raftmq::transport::proxy::accept(connection, balancer, &config)
                .await
                .unwrap_or_else(|e| panic!("{}: refused: {e}", path.display()));
            let mut after = Vec::new();
            rest.read_to_end(&mut after).await.expect("in-memory read");
            after
        });
        assert!(
            rest.starts_with(&[0x10]),
            "{}: what follows the header is not the CONNECT",
            path.display()
        );
    }
}
