//! A subscriber that never reads its socket, subscribed to a busy topic that gets floods
//! of 64 KiB QoS 0 messages and runs of QoS 1 ones:
//! - the publisher keeps getting its PUBACKs and PINGRESPs and the witness is served;
//! - the node does not keep what the subscriber cannot take: its peak memory stays within
//!   [`RSS_GROWTH_LIMIT_KIB`](crate::RSS_GROWTH_LIMIT_KIB) (MQTT lets a server drop QoS 0
//!   messages; raftmq bounds a transient session's QoS 1 backlog with
//!   `--max-queued-messages`, and a client's unsent output with `--max-output-buffer`);
//! - a subscriber that is also silent is closed once one and a half times its keep alive
//!   has passed (5.0 §3.1.2.10, 3.1.1 §3.1.2.10), writes pending or not.

use std::time::Duration;

use raftmq::mqtt::{Packet, Protocol, ReasonCode};
use tokio::time::{Instant, sleep};

use crate::broker_support::{cluster, port_of};
use crate::node::{NodeProcess, lists_client};
use crate::raw::{Raw, connect_packet, pid, publish_bytes};
use crate::witness::Witness;
use crate::{RSS_GROWTH_LIMIT_KIB, WAIT, unique};

/// The size of the QoS 0 messages.
const QOS0_SIZE: usize = 64 * 1024;
/// QoS 0 messages per write.
const QOS0_BATCH: usize = 16;
/// QoS 1 messages (small: each goes through the Raft log, whose store caches what it
/// writes, which is not what these tests measure).
const QOS1_COUNT: u16 = 300;
const QOS1_SIZE: usize = 1024;
/// The slow subscriber's keep alive, in seconds.
const SLOW_KEEP_ALIVE: u16 = 2;

/// A node, the witness, the slow subscriber of `topic` and a publisher.
struct Scene {
    cluster: raftmq::local_cluster::LocalCluster,
    process: NodeProcess,
    witness: Witness,
    slow: Raw,
    slow_id: String,
    /// When the slow subscriber sent its last packet.
    silent_since: Instant,
    topic: String,
    publisher: Raw,
}

impl Scene {
    async fn start(test: &str) -> Scene {
        let cluster = cluster(1).await;
        let node = &cluster.nodes[0];
        let addr = node.mqtt_addr.clone();
        let process = NodeProcess::of(node);
        let tag = unique(test);
        let witness = Witness::start(port_of(&addr), &tag).await;
        let topic = format!("{tag}/busy");
        // Subscribed, then never read again, and silent.
        let slow_id = format!("{tag}-slow");
        let mut connect = connect_packet(Protocol::V5, &slow_id, true);
        connect.keep_alive = SLOW_KEEP_ALIVE;
        let (mut slow, _) = Raw::connect_with(&addr, connect).await;
        slow.subscribe(std::slice::from_ref(&topic)).await;
        let silent_since = Instant::now();
        let publisher = Raw::connect(&addr, Protocol::V5, &format!("{tag}-pub")).await;
        Scene {
            cluster,
            process,
            witness,
            slow,
            slow_id,
            silent_since,
            topic,
            publisher,
        }
    }

    /// Publishes `count` QoS 0 messages to the topic; returns once the node has read them
    /// all (it answers a PINGREQ sent after them).
    async fn flood_qos0(&mut self, count: usize) {
        let payload = vec![0x5au8; QOS0_SIZE];
        let message = publish_bytes(Protocol::V5, 0, self.topic.as_bytes(), 0, &[0], &payload);
        let batch: Vec<u8> = message.repeat(QOS0_BATCH);
        for _ in 0..count / QOS0_BATCH {
            self.publisher.write(&batch).await.expect("publish QoS 0");
        }
        self.publisher.ping().await;
    }

    /// Publishes [`QOS1_COUNT`] QoS 1 messages in one burst; each must be PUBACKed.
    async fn run_qos1(&mut self) {
        let payload = vec![0xa5u8; QOS1_SIZE];
        let burst: Vec<u8> = (1..=QOS1_COUNT)
            .flat_map(|id| {
                publish_bytes(
                    Protocol::V5,
                    0b0010,
                    self.topic.as_bytes(),
                    id,
                    &[0],
                    &payload,
                )
            })
            .collect();
        self.publisher.write(&burst).await.expect("publish QoS 1");
        for id in 1..=QOS1_COUNT {
            match self.publisher.expect("PUBACK").await {
                Packet::PubAck(ack) => {
                    assert_eq!(ack.packet_id, pid(id));
                    assert_eq!(ack.reason, ReasonCode::Success);
                }
                other => panic!("expected PUBACK {id}, got {other:?}"),
            }
        }
        self.publisher.ping().await;
    }
}

#[tokio::test]
async fn a_subscriber_that_never_reads_holds_up_no_one() {
    let mut scene = Scene::start("slowpub").await;
    // 32 MiB: far more than the kernel buffers of both ends hold.
    scene.flood_qos0(512).await;
    scene.witness.served().await;
    scene.run_qos1().await;
    scene.witness.served().await;
    scene.flood_qos0(512).await;
    scene.run_qos1().await;
    assert!(scene.process.is_running());
    let (published, slowest) = scene.witness.finish().await;
    eprintln!("slow consumer: witness {published} messages, slowest PUBACK {slowest:?}");
}

/// Found by this suite: the connection task awaited `write_all` of its whole outbox
/// (`broker/connection.rs`, `Connection::run`) and took no event meanwhile, while the
/// registry kept sending deliveries on the connection's unbounded channel; and QoS 0
/// deliveries were encoded into the outbox without a limit. 192 MiB of QoS 0 messages to
/// one subscriber that does not read raised the node's RSS by about 340 MiB. Fixed: the
/// write is one branch of the connection's `select!`, and QoS 0 messages past
/// `--max-output-buffer` are dropped.
#[tokio::test]
async fn a_subscriber_that_never_reads_is_not_buffered_for() {
    let mut scene = Scene::start("slowmem").await;
    scene.process.reset_peak_rss();
    let before = scene.process.rss_kib();
    // 192 MiB: three times the growth allowed.
    scene.flood_qos0(3072).await;
    scene.run_qos1().await;
    scene.witness.served().await;
    let peak = scene.process.peak_rss_kib();
    assert!(
        peak.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
        "the node grew from {before} KiB to a peak of {peak} KiB for a subscriber that \
         does not read"
    );
    scene.witness.finish().await;
}

/// Found by this suite: `Connection::run` (`broker/connection.rs`) awaited a `write_all`
/// the client did not read without polling its `select!`, keep-alive timer included, so
/// the connection (and all that was queued for it) stayed forever; without the flood the
/// same subscriber was closed after 3 s. Fixed: a write that makes no progress for the
/// keep-alive grace ends the connection.
#[tokio::test]
async fn a_silent_subscriber_that_never_reads_is_closed_at_its_keep_alive() {
    let mut scene = Scene::start("slowka").await;
    scene.flood_qos0(512).await;
    // Seen in `/clients`: reading the socket would unblock the node's writes.
    let deadline =
        scene.silent_since + Duration::from_secs(u64::from(SLOW_KEEP_ALIVE)) * 3 / 2 + WAIT;
    while lists_client(&scene.cluster.nodes[0], &scene.slow_id).await {
        assert!(
            Instant::now() < deadline,
            "the silent subscriber is still connected {:?} after its last packet",
            scene.silent_since.elapsed()
        );
        sleep(Duration::from_millis(200)).await;
    }
    drop(scene.slow);
    scene.witness.finish().await;
}
