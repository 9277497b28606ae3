//! Draining a node before maintenance, by `raftmq node drain` or SIGTERM: the node reports
//! 503 "draining" and refuses new CONNECTs at once, keeps its clients for the grace period
//! (the balancer's time to take it out), then tells them to go elsewhere (DISCONNECT
//! 0x8B). A persistent session resumes on another node with what was published meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use raftmq::mqtt::{Protocol, ReasonCode};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::broker_support::{cluster_with, raftmq_binary};
use crate::http::{get_json, has_reason, ready};
use crate::wire::{self, Wire, connect_packet};
use crate::{WAIT, unique};

/// The grace period the nodes here are started with.
const GRACE: Duration = Duration::from_millis(1500);
const GRACE_ARGS: &[&str] = &["--drain-grace-ms", "1500"];

/// Polls `/health/ready` on some nodes in the background and records every answer that is
/// not 200, to show they stayed ready the whole time.
struct ReadinessWatch {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(usize, Vec<String>)>,
}

impl ReadinessWatch {
    fn start(addrs: Vec<String>) -> ReadinessWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let (mut polls, mut failures) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    for addr in &addrs {
                        match get_json(addr, "/health/ready").await {
                            Ok((200, _)) => {}
                            other => failures.push(format!("{addr}: {other:?}")),
                        }
                    }
                    polls += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                (polls, failures)
            }
        });
        ReadinessWatch { stop, task }
    }

    async fn assert_always_ready(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (polls, failures) = timeout(WAIT * 2, self.task)
            .await
            .expect("readiness watch ends")
            .expect("readiness watch task");
        assert!(polls > 3, "the readiness watch polled only {polls} times");
        assert!(failures.is_empty(), "not ready at times: {failures:#?}");
    }
}

/// A persistent 5.0 session (clean start off, expiry 300 s) on the node at `addr`.
async fn persistent(addr: &str, client_id: &str) -> (Wire, bool) {
    let mut wire = Wire::new(wire::tcp(addr).await, Protocol::V5);
    let connack = wire
        .connect(connect_packet(Protocol::V5, client_id, Some(300)))
        .await;
    (wire, connack.session_present)
}

#[tokio::test]
async fn drained_clients_resume_on_another_node() {
    let cluster = cluster_with(3, GRACE_ARGS).await;
    let [drained, publishing, resuming] = [0, 1, 2].map(|i| &cluster.nodes[i]);
    let watch = ReadinessWatch::start(vec![
        publishing.http_addr.clone(),
        resuming.http_addr.clone(),
    ]);
    let id = unique("drained");
    let (mut subscriber, _) = persistent(&drained.mqtt_addr, &id).await;
    subscriber.subscribe(&format!("{id}/#")).await;

    let started = Instant::now();
    let drain = tokio::process::Command::new(raftmq_binary())
        .args([
            "node",
            "drain",
            "--http",
            &drained.http_addr,
            "--token-file",
        ])
        .arg(raftmq::admin::token::default_file(&drained.data_dir))
        .kill_on_drop(true)
        .output();
    let output = timeout(WAIT, drain)
        .await
        .expect("`raftmq node drain` ends in time")
        .expect("run `raftmq node drain`");
    assert!(
        output.status.success(),
        "`raftmq node drain`: {}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let (status, report) = ready(&drained.http_addr).await;
    assert_eq!(status, 503, "{report}");
    assert!(has_reason(&report, "draining"), "{report}");
    assert_eq!(report["draining"], true, "{report}");
    let mut late = Wire::new(wire::tcp(&drained.mqtt_addr).await, Protocol::V5);
    let refused = late
        .try_connect(connect_packet(Protocol::V5, &unique("late"), None))
        .await;
    assert_eq!(
        refused.map(|ack| ack.reason),
        Some(ReasonCode::ServerUnavailable),
        "CONNECT to a draining node"
    );

    let reason = subscriber.expect_closed_within(GRACE + WAIT).await;
    let waited = started.elapsed();
    assert_eq!(reason, Some(ReasonCode::ServerShuttingDown));
    assert!(
        waited >= GRACE,
        "disconnected after {waited:?}, before the grace period"
    );

    let mut publisher =
        Wire::connected(wire::tcp(&publishing.mqtt_addr).await, &unique("publisher")).await;
    let sent: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("away-{i}"))).collect();
    for payload in &sent {
        publisher.publish(&format!("{id}/away"), payload).await;
    }

    let (mut resumed, session_present) = persistent(&resuming.mqtt_addr, &id).await;
    assert!(session_present, "the session survived the drain");
    let mut received = Vec::new();
    for _ in 0..sent.len() {
        received.push(resumed.expect_publish().await.payload);
    }
    assert_eq!(received, sent, "every message, once, in order");
    resumed
        .expect_silence(Duration::from_secs(1), "nothing more (no duplicate)")
        .await;
    watch.assert_always_ready().await;
}

#[tokio::test]
async fn sigterm_drains_before_the_node_exits() {
    let cluster = cluster_with(1, GRACE_ARGS).await;
    let http = cluster.nodes[0].http_addr.clone();
    let mut client = Wire::connected(
        wire::tcp(&cluster.nodes[0].mqtt_addr).await,
        &unique("sigterm"),
    )
    .await;

    // `LocalCluster::stop` sends SIGTERM and blocks until the process has exited: it runs
    // on a blocking thread while this one watches the node drain.
    let started = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let stopped = cluster.stop(0);
        (cluster, stopped)
    });
    let mut draining = None;
    while draining.is_none() && !stopping.is_finished() && started.elapsed() < WAIT {
        match get_json(&http, "/health/ready").await {
            Ok((503, report)) if has_reason(&report, "draining") => draining = Some(report),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let report = draining.expect("/health/ready never said draining between SIGTERM and exit");
    assert_eq!(report["draining"], true, "{report}");

    let reason = client.expect_closed_within(GRACE + WAIT).await;
    assert_eq!(reason, Some(ReasonCode::ServerShuttingDown));
    let waited = started.elapsed();
    assert!(
        waited >= GRACE,
        "disconnected after {waited:?}, before the grace period"
    );
    let (_cluster, stopped) = timeout(Duration::from_secs(40), stopping)
        .await
        .expect("the node exits")
        .expect("stop task");
    stopped.expect("a clean exit after SIGTERM");
}
