//! The drill itself: persistent QoS 1 and QoS 2 subscriptions and a publisher, all through
//! the balancer over TLS; a steady flow; the node holding the subscriber killed (or
//! drained) mid-flow; every message must arrive after the clients come back through the
//! balancer — QoS 2 exactly once, QoS 1 at least once — and the times are printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raftmq::local_cluster::LocalCluster;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::{Client, Ev, Opts, Proto};
use crate::setup::Balancer;

/// Messages per QoS level.
const FLOW: usize = 150;
/// The fault comes once the publisher has this many acknowledgements.
const FAULT_AFTER: usize = 60;
/// Publishes unacknowledged at most.
const WINDOW: usize = 20;
/// One publish per this interval: the flow lasts about three seconds, so that it spans
/// the fault, the reconnection and the catch-up.
const PACE: Duration = Duration::from_millis(10);
const DEADLINE: Duration = Duration::from_secs(60);

/// How the node is taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Kill,
    Drain,
}

/// The node (index) whose /clients lists `client_id`.
pub(crate) async fn node_of(cluster: &LocalCluster, client_id: &str) -> Option<usize> {
    for (i, node) in cluster.nodes.iter().enumerate() {
        if !cluster.is_running(i) {
            continue;
        }
        let Ok(api) = node.api() else { continue };
        if let Ok(body) = api.get("/clients").await
            && clients(&body).iter().any(|c| c["client_id"] == client_id)
        {
            return Some(i);
        }
    }
    None
}

pub(crate) fn clients(body: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(body).expect("/clients answers a JSON array")
}

/// What the drill measured, from the fault on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    /// The subscriber's session resumed on another node (its CONNACK).
    pub(crate) resumed: Duration,
    /// The first message delivered on the resumed session.
    pub(crate) first_delivery: Duration,
    /// Every message published before the resumption delivered.
    pub(crate) caught_up: Duration,
}

/// Runs the drill through `balancer` (its TLS frontend).
pub(crate) async fn run(
    cluster: &mut LocalCluster,
    balancer: &Balancer,
    tls: Arc<rustls::ClientConfig>,
    fault: Fault,
    prefix: &str,
) -> Times {
    let addr = balancer.mqtt_tls.clone();
    let sub_id = format!("{prefix}-sub");
    let sub_opts = Opts::new(&sub_id, Proto::V5)
        .persistent()
        .reconnecting()
        .tls(tls.clone());
    let (mut sub, present) = Client::connect(sub_opts, &addr).await;
    assert!(!present, "a new subscriber session");
    let (q1, q2) = (format!("{prefix}/q1"), format!("{prefix}/q2"));
    sub.subscribe(&q1, 1).await;
    sub.subscribe(&q2, 2).await;
    let victim = node_of(cluster, &sub_id)
        .await
        .expect("a node lists the subscriber");
    // More packet ids than messages, and DUP on resends as the spec asks.
    let pub_opts = Opts::new(&format!("{prefix}-pub"), Proto::V5)
        .persistent()
        .reconnecting()
        .dup_on_resend()
        .inflight(1000)
        .tls(tls);
    let (mut publisher, _) = Client::connect(pub_opts, &addr).await;

    let window = Arc::new(Semaphore::new(WINDOW));
    let sender = publisher.sender();
    let (flow_q1, flow_q2, flow_window) = (q1.clone(), q2.clone(), window.clone());
    // Messages (per QoS level) handed to the publisher so far.
    let published = Arc::new(AtomicUsize::new(0));
    let flow_published = published.clone();
    let flow = tokio::spawn(async move {
        let mut pace = tokio::time::interval(PACE);
        for i in 0..FLOW {
            for (topic, qos) in [(&flow_q1, 1), (&flow_q2, 2)] {
                pace.tick().await;
                flow_window.acquire().await.expect("open").forget();
                sender.publish(topic, qos, format!("{qos}-{i:03}")).await;
            }
            flow_published.store(i + 1, Ordering::Release);
        }
    });

    let started = Instant::now();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut acked = 0;
    let mut fault_at: Option<Instant> = None;
    // (when, messages per QoS published by then) of the subscriber's resumption.
    let mut resumed: Option<(Duration, usize)> = None;
    let mut first_delivery: Option<Duration> = None;
    let mut caught_up: Option<Duration> = None;
    let (mut sub_resumed, mut pub_resumed) = (0, 0);
    while counts.len() < 2 * FLOW || acked < 2 * FLOW {
        assert!(
            started.elapsed() < DEADLINE,
            "after {DEADLINE:?}: {} of {} messages received, {acked} acknowledged; fault \
             {:?} after start",
            counts.len(),
            2 * FLOW,
            fault_at.map(|at| at - started)
        );
        tokio::select! {
            ev = sub.next() => match ev {
                Ev::Message(msg) => {
                    *counts.entry(msg.text()).or_default() += 1;
                    if let (Some(at), Some((_, before))) = (fault_at, resumed) {
                        first_delivery.get_or_insert(at.elapsed());
                        let all = (0..before).all(|i| {
                            counts.contains_key(&format!("1-{i:03}"))
                                && counts.contains_key(&format!("2-{i:03}"))
                        });
                        if all {
                            caught_up.get_or_insert(at.elapsed());
                        }
                    }
                }
                Ev::Redelivered(msg) => assert!(msg.dup, "{} resent without DUP", msg.text()),
                Ev::ConnAck { session_present } => {
                    assert!(session_present, "the subscriber's session was lost");
                    sub_resumed += 1;
                    if let Some(at) = fault_at {
                        resumed.get_or_insert((at.elapsed(), published.load(Ordering::Acquire)));
                    }
                }
                Ev::ServerDisconnect { reason } if fault == Fault::Drain => {
                    assert_eq!(reason, 0x8B, "a drained node says: server shutting down");
                }
                Ev::Lost(_) | Ev::Refused { .. } if fault_at.is_some() => {}
                other => panic!("subscriber: {other:?}"),
            },
            ev = publisher.next() => match ev {
                Ev::PubAck { ok: true, .. } | Ev::PubComp { ok: true, .. } => {
                    acked += 1;
                    window.add_permits(1);
                }
                Ev::ConnAck { session_present } => {
                    assert!(session_present, "the publisher's session was lost");
                    pub_resumed += 1;
                }
                Ev::ServerDisconnect { reason } if fault == Fault::Drain => {
                    assert_eq!(reason, 0x8B);
                }
                Ev::Lost(_) | Ev::Refused { .. } if fault_at.is_some() => {}
                other => panic!("publisher: {other:?}"),
            },
        }
        if fault_at.is_none() && acked >= FAULT_AFTER && !counts.is_empty() {
            match fault {
                Fault::Kill => cluster.kill(victim).expect("SIGKILL the node"),
                Fault::Drain => drain(&cluster.nodes[victim]),
            }
            fault_at = Some(Instant::now());
        }
    }
    flow.await.expect("publishing task");
    // A late duplicate would arrive within this short wait.
    while let Some(ev) = sub.next_within(Duration::from_secs(1)).await {
        match ev {
            Ev::Message(msg) => *counts.entry(msg.text()).or_default() += 1,
            Ev::Redelivered(msg) => assert!(msg.dup, "{} resent without DUP", msg.text()),
            other => panic!("subscriber after the flow: {other:?}"),
        }
    }
    assert!(
        sub_resumed >= 1,
        "the subscriber came back through the balancer"
    );
    let now_on = node_of(cluster, &sub_id).await;
    assert!(
        now_on.is_some_and(|n| n != victim),
        "the subscriber is on another node now ({now_on:?}, victim {victim})"
    );
    for i in 0..FLOW {
        let q1 = counts.get(&format!("1-{i:03}")).copied().unwrap_or(0);
        let q2 = counts.get(&format!("2-{i:03}")).copied().unwrap_or(0);
        assert!(q1 >= 1, "QoS 1 message {i} lost");
        assert_eq!(q2, 1, "QoS 2 message {i} delivered {q2} times");
    }
    assert_eq!(
        counts.len(),
        2 * FLOW,
        "no message other than those published"
    );
    eprintln!(
        "{fault:?} of node {victim}: reconnections subscriber {sub_resumed}, publisher \
         {pub_resumed}; QoS 1 duplicates {}",
        counts
            .iter()
            .filter(|(k, n)| k.starts_with("1-") && **n > 1)
            .count()
    );
    let (resumed, _) = resumed.expect("the subscriber resumed after the fault");
    Times {
        resumed,
        first_delivery: first_delivery.expect("a delivery after the resumption"),
        caught_up: caught_up.expect("caught up after the resumption"),
    }
}

/// `raftmq node drain` against the node's HTTP listener, as an operator runs it.
fn drain(node: &raftmq::local_cluster::LocalNode) {
    let token_file = raftmq::admin::token::default_file(&node.data_dir);
    let status = std::process::Command::new(crate::broker_support::raftmq_binary())
        .args(["node", "drain", "--http", &node.http_addr, "--token-file"])
        .arg(token_file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run raftmq node drain");
    assert!(status.success(), "raftmq node drain failed");
}
