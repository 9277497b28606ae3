//! A PUBREL storm: one client sends PUBRELs for packet ids it never published, as fast as
//! the connection takes them (the kernel buffers megabytes), while reading its answers —
//! as many as the node needs longer than its 10 s proposal timeout to answer (some
//! hundreds of thousands on a debug build). Each is answered, in order,
//! with PUBCOMP (5.0: 0x92 Packet Identifier not found) and the connection stays usable;
//! the witness's publishes are PUBACKed within `witness::ACK_LATENCY` throughout; and the
//! node's memory stays within a bound far below what keeping anything per PUBREL would
//! take.
//!
//! Found by this test: a connection took one proposal outcome per turn of its loop but
//! a whole read's worth of new proposals (16,000 PUBRELs) per turn, so under a storm its
//! answers fell behind without bound until the oldest passed the proposal timeout and the
//! node closed the connection (DISCONNECT 0x80 after about ten answers). Fixed in
//! `broker/connection.rs`: every outcome already known is taken in one turn.

use std::cell::Cell;
use std::time::Duration;

use bytes::BytesMut;
use raftmq::mqtt::{Codec, MAX_REMAINING_LENGTH, Packet, Protocol, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

use crate::broker_support::{cluster, port_of};
use crate::node::NodeProcess;
use crate::raw::{Raw, frame};
use crate::witness::Witness;
use crate::{WAIT, unique};

/// How long the node takes to answer the 5.0 storm: longer than its proposal timeout,
/// which is what a connection that falls behind its answers runs into.
const STORM_TIME: Duration = Duration::from_secs(20);
/// PUBRELs that measure how fast the node answers, so the storm can be sized to last
/// [`STORM_TIME`] on this machine, loaded or not; sent with at most
/// [`CALIBRATION_CAP`] unanswered: enough to keep the node's group commit full, too few
/// for a connection that falls behind its answers to fall far.
const CALIBRATION: usize = 60_000;
const CALIBRATION_CAP: usize = 16_000;
/// PUBRELs per write.
const BURST: usize = 500;
/// The most PUBRELs in one storm, whatever the calibration says.
const MAX_STORM: usize = 800_000;
/// How much the node's peak memory may grow over the storms. Every PUBREL is a `Release`
/// in the Raft log, which the node's store holds until the next snapshot: 110 to 150 MiB
/// after up to a million PUBRELs (170 MiB after 2.5 million). A node that kept 320 bytes
/// per PUBREL would not pass.
const STORM_RSS_LIMIT_KIB: u64 = 256 * 1024;

/// The packet id of the `i`th PUBREL: spread over the whole range, never published.
fn storm_id(i: usize) -> u16 {
    ((i * 40_503) % 65_535 + 1) as u16
}

/// Sends `count` PUBRELs as fast as the connection takes them (with `cap`, never more
/// than that many unanswered) while reading the answers; returns once every one was
/// answered, in order, with PUBCOMP `expected`. Fails if the broker sends anything else,
/// closes, or sends nothing for [`WAIT`].
async fn storm(
    raw: &mut Raw,
    protocol: Protocol,
    count: usize,
    cap: Option<usize>,
    expected: ReasonCode,
) {
    let answered_so_far = Cell::new(0);
    let progress = Notify::new();
    let (mut reader, mut writer) = raw.stream.split();
    let write = async {
        for start in (0..count).step_by(BURST) {
            while cap.is_some_and(|cap| start - answered_so_far.get() >= cap) {
                progress.notified().await;
            }
            let bytes: Vec<u8> = (start..(start + BURST).min(count))
                .flat_map(|i| frame(0x62, &storm_id(i).to_be_bytes()))
                .collect();
            writer.write_all(&bytes).await.expect("the storm is taken");
        }
    };
    let read = async {
        let mut codec = Codec::for_protocol(protocol, MAX_REMAINING_LENGTH + 5);
        let mut buf = BytesMut::new();
        let mut answered = 0;
        loop {
            while let Some(packet) = codec.decode(&mut buf).expect("decodable answers") {
                match packet {
                    Packet::PubComp(comp) => {
                        let id = storm_id(answered);
                        assert_eq!(comp.packet_id.get(), id, "answer {answered}, in order");
                        assert_eq!(comp.reason, expected, "answer {answered}");
                        answered += 1;
                    }
                    other => panic!("after {answered} PUBCOMPs: {other:?}"),
                }
            }
            answered_so_far.set(answered);
            progress.notify_one();
            if answered == count {
                return;
            }
            buf.reserve(64 * 1024);
            match timeout_at(Instant::now() + WAIT, reader.read_buf(&mut buf)).await {
                Err(_) => panic!("no answer for {WAIT:?} after {answered} PUBCOMPs"),
                Ok(Ok(0)) | Ok(Err(_)) => panic!("closed after {answered} PUBCOMPs"),
                Ok(Ok(_)) => {}
            }
        }
    };
    tokio::join!(write, read);
}

#[tokio::test]
async fn a_pubrel_storm_is_answered_and_does_not_starve_others() {
    let cluster = cluster(1).await;
    let node = &cluster.nodes[0];
    let process = NodeProcess::of(node);
    let tag = unique("pubrel");
    let witness = Witness::start(port_of(&node.mqtt_addr), &tag).await;
    process.reset_peak_rss();
    let before = process.rss_kib();
    // How fast this node answers PUBRELs, now.
    let mut raw = Raw::connect(&node.mqtt_addr, Protocol::V5, &format!("{tag}-calibration")).await;
    let started = Instant::now();
    let not_found = ReasonCode::PacketIdentifierNotFound;
    storm(
        &mut raw,
        Protocol::V5,
        CALIBRATION,
        Some(CALIBRATION_CAP),
        not_found,
    )
    .await;
    let per_second = CALIBRATION as f64 / started.elapsed().as_secs_f64();
    eprintln!("pubrel storm: calibration {per_second:.0} PUBRELs/s");
    drop(raw);
    let storms = [
        (
            Protocol::V5,
            STORM_TIME,
            ReasonCode::PacketIdentifierNotFound,
        ),
        // 3.1.1 has no reason codes.
        (Protocol::V311, STORM_TIME / 10, ReasonCode::Success),
    ];
    for (protocol, time, expected) in storms {
        let count = ((per_second * time.as_secs_f64()) as usize).min(MAX_STORM);
        let id = format!("{tag}-{}", protocol.level());
        let mut raw = Raw::connect(&node.mqtt_addr, protocol, &id).await;
        let started = Instant::now();
        let ((), halfway) = tokio::join!(storm(&mut raw, protocol, count, None, expected), async {
            // Served in the middle of the storm, not only after it.
            tokio::time::sleep(time / 2).await;
            witness.served().await;
            process.rss_kib()
        });
        raw.ping().await;
        eprintln!(
            "pubrel storm: {count} {protocol:?} PUBRELs answered in {:?}; RSS halfway {halfway} KiB, after {} KiB",
            started.elapsed(),
            process.rss_kib()
        );
    }
    let peak = process.peak_rss_kib();
    eprintln!("pubrel storm: RSS {before} KiB before, peak {peak} KiB");
    assert!(
        peak.saturating_sub(before) < STORM_RSS_LIMIT_KIB,
        "the node grew from {before} KiB to a peak of {peak} KiB"
    );
    let (published, slowest) = witness.finish().await;
    eprintln!("pubrel storm: witness {published} messages, slowest PUBACK {slowest:?}");
}
