//! A PUBLISH header announcing 268,435,455 bytes (0xFF 0xFF 0xFF 0x7F) right after CONNECT,
//! followed by junk for as long as the broker takes it: refused from the header (5.0:
//! DISCONNECT 0x95 Packet too large, then the close; 3.1.1: the close), and the junk is
//! not buffered — the node's peak resident memory stays within
//! [`RSS_GROWTH_LIMIT_KIB`](crate::RSS_GROWTH_LIMIT_KIB) of what it was.

use bytes::BytesMut;
use raftmq::mqtt::{Codec, MAX_REMAINING_LENGTH, Packet, Protocol, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use crate::broker_support::{cluster, port_of};
use crate::node::NodeProcess;
use crate::raw::Raw;
use crate::witness::Witness;
use crate::{RSS_GROWTH_LIMIT_KIB, WAIT, unique};

/// The fixed header of a PUBLISH of the largest remaining length there is.
const HEADER: [u8; 5] = [0x30, 0xff, 0xff, 0xff, 0x7f];
/// Junk written after the header in chunks of 1 MiB, up to this much: more than the
/// memory the node may gain, so a node that buffers it fails the memory check.
const JUNK_LIMIT: usize = 96 << 20;
/// Attackers per protocol, one after another.
const ROUNDS: usize = 3;

/// What one attacker saw.
struct Outcome {
    /// Junk bytes the connection took before it failed.
    junk_taken: usize,
    /// The packets the broker sent.
    answers: Vec<Packet>,
    /// Whether the broker closed the connection within [`WAIT`] of the attack.
    closed: bool,
}

/// Writes the header then junk while reading what the broker answers, until the broker
/// closes or [`WAIT`] has passed.
async fn attack(raw: &mut Raw, protocol: Protocol) -> Outcome {
    let (mut reader, mut writer) = raw.stream.split();
    let deadline = Instant::now() + WAIT;
    let write = async {
        let junk = vec![0xa5u8; 1 << 20];
        let mut taken = 0;
        if writer.write_all(&HEADER).await.is_err() {
            return taken;
        }
        while taken < JUNK_LIMIT {
            match timeout_at(deadline, writer.write_all(&junk)).await {
                Ok(Ok(())) => taken += junk.len(),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        taken
    };
    let read = async {
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(4096);
            match timeout_at(deadline, reader.read_buf(&mut buf)).await {
                Err(_) => return (buf, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (buf, true),
                Ok(Ok(_)) => {}
            }
        }
    };
    let (junk_taken, (mut buf, closed)) = tokio::join!(write, read);
    let mut codec = Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5);
    let mut answers = Vec::new();
    while let Some(packet) = codec.decode(&mut buf).expect("the broker's answer decodes") {
        answers.push(packet);
    }
    assert!(buf.is_empty(), "the broker's answer ends inside a packet");
    Outcome {
        junk_taken,
        answers,
        closed,
    }
}

#[tokio::test]
async fn a_256_mib_length_prefix_and_junk_are_refused_without_buffering() {
    let cluster = cluster(1).await;
    let node = &cluster.nodes[0];
    let process = NodeProcess::of(node);
    let tag = unique("oversize");
    let witness = Witness::start(port_of(&node.mqtt_addr), &tag).await;
    process.reset_peak_rss();
    let before = process.rss_kib();
    for protocol in [Protocol::V311, Protocol::V5] {
        for round in 0..ROUNDS {
            let id = format!("{tag}-{}-{round}", protocol.level());
            let mut raw = Raw::connect(&node.mqtt_addr, protocol, &id).await;
            let outcome = attack(&mut raw, protocol).await;
            assert!(
                outcome.closed,
                "{protocol:?}: the connection is closed in time ({} bytes of junk taken)",
                outcome.junk_taken
            );
            let reasons: Vec<Option<ReasonCode>> = outcome
                .answers
                .iter()
                .map(|p| match p {
                    Packet::Disconnect(d) => Some(d.reason),
                    _ => None,
                })
                .collect();
            let expected = match protocol {
                Protocol::V311 => vec![],
                Protocol::V5 => vec![Some(ReasonCode::PacketTooLarge)],
            };
            assert_eq!(reasons, expected, "{protocol:?}: {:?}", outcome.answers);
            assert!(
                outcome.junk_taken < JUNK_LIMIT,
                "{protocol:?}: the broker read all {JUNK_LIMIT} bytes of junk"
            );
        }
        witness.served().await;
    }
    let peak = process.peak_rss_kib();
    assert!(
        peak.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
        "the node grew from {before} KiB to a peak of {peak} KiB"
    );
    let (published, slowest) = witness.finish().await;
    eprintln!(
        "oversize: RSS {before} KiB, peak {peak} KiB; witness {published} messages, slowest PUBACK {slowest:?}"
    );
}
