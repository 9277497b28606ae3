//! Replays the inputs kept beside the `decode_packet` fuzz target under its own checks:
//! every file in `tests/fuzz/regressions/decode_packet/` (inputs that once failed) and in
//! `tests/fuzz/seeds/decode_packet/` (valid sessions the fuzzer starts from). The checks are
//! the fuzz target's, included by path, so a fixed crash stays fixed without nightly or
//! cargo-fuzz. The seeds must also decode completely, or they would seed nothing useful.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use raftmq::mqtt::{Codec, DEFAULT_MAX_PACKET_SIZE};

#[path = "fuzz/oracle/decode_packet.rs"]
mod oracle;

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

/// Runs the fuzz checks on one input file, naming the file if they panic.
fn replay(path: &Path) {
    let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let outcome = std::panic::catch_unwind(|| oracle::check(&data));
    assert!(outcome.is_ok(), "fuzz checks failed on {}", path.display());
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
