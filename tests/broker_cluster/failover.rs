//! Losing nodes. SIGKILL of the node that holds a QoS 2 subscriber and a QoS 2 publisher in
//! mid-flow: both reconnect to other nodes, resume their sessions (session present), the
//! publisher resends what was not acknowledged under the same packet ids, and every message
//! arrives exactly once (DESIGN §3 rules 4 and 5). A node left without a quorum refuses
//! CONNECT with "server unavailable" (rule 7), whether it was a follower or the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::{Client, Ev, Opts, Proto};
use raftmq::local_cluster::LocalCluster;

use crate::{serving_cluster, unique};

/// Messages in the flow that the kill interrupts.
const FLOW: usize = 200;
/// The publisher has this many PUBCOMPs when its node is killed.
const KILL_AFTER: usize = 50;
/// Messages in flight at the publisher at most.
const WINDOW: usize = 20;
/// The flow, kill and recovery included, ends within this.
const FLOW_DEADLINE: Duration = Duration::from_secs(40);

/// `kill_leader`: kill the Raft leader (the survivors elect another before they accept the
/// reconnections), else a follower. `resend_as_spec`: the publisher resends with DUP=1
/// (rumqttc alone resends with DUP=0).
async fn kill_mid_flow_exactly_once(
    proto: Proto,
    kill_leader: bool,
    resend_as_spec: bool,
    test: &str,
) {
    let mut cluster = serving_cluster().await;
    let prefix = unique(test);
    let topic = format!("{prefix}/flow");
    let leader = cluster.leader().await.expect("the cluster has a leader");
    let victim = if kill_leader {
        leader
    } else {
        (leader + 1) % 3
    };
    let survivors = [(victim + 1) % 3, (victim + 2) % 3];
    let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.mqtt_addr.clone()).collect();

    let sub_opts = Opts::new(&format!("{prefix}-sub"), proto)
        .persistent()
        .reconnecting();
    let (mut sub, present) = Client::connect(sub_opts, &addrs[victim]).await;
    assert!(!present, "new subscriber session");
    sub.subscribe(&topic, 2).await;
    // More packet ids than messages: none is reused within the flow. (After a reconnect,
    // rumqttc hands out ids whose PUBREL still awaits its PUBCOMP; the broker takes the
    // new PUBLISH for a resend of the old one, and the message is lost.)
    let mut pub_opts = Opts::new(&format!("{prefix}-pub"), proto)
        .persistent()
        .reconnecting()
        .inflight(1000);
    if resend_as_spec {
        pub_opts = pub_opts.dup_on_resend();
    }
    let (mut publisher, _) = Client::connect(pub_opts, &addrs[victim]).await;
    // At most WINDOW messages between PUBLISH and PUBCOMP, so that when the node dies some
    // PUBLISHes are still unacknowledged, not only PUBRELs.
    let window = Arc::new(Semaphore::new(WINDOW));
    let sender = publisher.sender();
    let flow_topic = topic.clone();
    let flow_window = window.clone();
    let flow = tokio::spawn(async move {
        for i in 0..FLOW {
            flow_window
                .acquire()
                .await
                .expect("the window is never closed")
                .forget();
            sender.publish(&flow_topic, 2, format!("m{i:03}")).await;
        }
    });

    let deadline = Instant::now() + FLOW_DEADLINE;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let (mut completed, mut redelivered) = (0, 0);
    let (mut sub_resumed, mut pub_resumed) = (0, 0);
    let mut killed_at = None;
    while counts.len() < FLOW || completed < FLOW {
        assert!(
            Instant::now() < deadline,
            "after {FLOW_DEADLINE:?}: {} distinct messages of {FLOW} received, {completed} \
             PUBCOMPs at the publisher (killed at {killed_at:?})",
            counts.len()
        );
        tokio::select! {
            ev = sub.next() => match ev {
                Ev::Message(msg) => {
                    assert_eq!(msg.topic, topic);
                    assert_eq!(msg.qos, 2, "{}: delivered at QoS 2", msg.text());
                    *counts.entry(msg.text()).or_default() += 1;
                }
                Ev::Redelivered(msg) => {
                    // The same message under the same packet id, still awaiting PUBREL:
                    // the broker resends it after the reconnect, and must mark it.
                    assert!(msg.dup, "{} resent under packet id {} without DUP", msg.text(), msg.pkid);
                    redelivered += 1;
                }
                Ev::ConnAck { session_present } => {
                    assert!(session_present, "the subscriber's session was lost");
                    sub_resumed += 1;
                }
                Ev::Lost(_) | Ev::Refused { .. } if killed_at.is_some() => {}
                other => panic!("subscriber: {other:?}"),
            },
            ev = publisher.next() => match ev {
                Ev::PubComp { .. } => {
                    completed += 1;
                    window.add_permits(1);
                }
                Ev::ConnAck { session_present } => {
                    assert!(session_present, "the publisher's session was lost: rumqttc \
                        drops its unacknowledged messages then");
                    pub_resumed += 1;
                }
                Ev::Lost(_) | Ev::Refused { .. } if killed_at.is_some() => {}
                other => panic!("publisher: {other:?}"),
            },
        }
        // Mid-flow for both: the subscriber lags the publisher's PUBCOMPs.
        if killed_at.is_none() && completed >= KILL_AFTER && !counts.is_empty() {
            cluster.kill(victim).expect("SIGKILL the node");
            sub.move_to(&addrs[survivors[0]]);
            publisher.move_to(&addrs[survivors[1]]);
            killed_at = Some((counts.len(), completed));
        }
    }
    flow.await.expect("publishing task");
    // Absence of late duplicates: a resend still under way would arrive within this short,
    // fixed wait.
    while let Some(ev) = sub.next_within(Duration::from_secs(1)).await {
        match ev {
            Ev::Message(msg) => *counts.entry(msg.text()).or_default() += 1,
            Ev::Redelivered(msg) => assert!(msg.dup, "{} resent without DUP", msg.text()),
            other => panic!("subscriber after the flow: {other:?}"),
        }
    }
    eprintln!(
        "killed node {victim} at {killed_at:?} (received, completed); {redelivered} \
         redelivered under a pending packet id; reconnections: subscriber {sub_resumed}, \
         publisher {pub_resumed}"
    );
    assert!(
        sub_resumed >= 1 && pub_resumed >= 1,
        "both clients resumed after the kill"
    );
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "delivered other than once: {wrong:?}");
    let expected: Vec<String> = (0..FLOW).map(|i| format!("m{i:03}")).collect();
    assert_eq!(
        counts.keys().cloned().collect::<Vec<_>>(),
        expected,
        "every message, none other"
    );
}

/// rumqttc as it is: resends with DUP=0 (the broker must deduplicate by packet id alone).
#[tokio::test]
async fn qos2_exactly_once_across_sigkill_of_a_follower_v311() {
    kill_mid_flow_exactly_once(Proto::V4, false, false, "kill-follower-v4").await;
}

/// Resends with DUP=1 as the spec asks, and the leader is the node killed.
#[tokio::test]
async fn qos2_exactly_once_across_sigkill_of_the_leader_v5() {
    kill_mid_flow_exactly_once(Proto::V5, true, true, "kill-leader-v5").await;
}

/// How long the survivor may take to refuse: it must first notice that it has no quorum
/// (an election timeout, 1-1.5 s with the test timeouts), and a CONNECT proposed before
/// that may hang until the broker gives up on it.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(20);

/// Kills two nodes of three and connects to the survivor until it refuses: with 3.1.1
/// return code 3 or 5.0 reason 0x88 (Server unavailable). A CONNACK accepting the
/// connection fails the test: without a quorum the session cannot have been recorded.
async fn survivor_refuses_connect(proto: Proto, survivor_is_leader: bool, test: &str) {
    let mut cluster = serving_cluster().await;
    let prefix = unique(test);
    let leader = cluster.leader().await.expect("the cluster has a leader");
    let survivor = if survivor_is_leader {
        leader
    } else {
        (leader + 1) % 3
    };
    for i in 0..3 {
        if i != survivor {
            cluster.kill(i).expect("SIGKILL a node");
        }
    }
    expect_refusal(&cluster, survivor, proto, &prefix).await;
}

/// Connects to node `node` until it refuses: with 3.1.1 return code 3 or 5.0 reason 0x88
/// (Server unavailable). A CONNACK accepting the connection fails the test.
async fn expect_refusal(cluster: &LocalCluster, node: usize, proto: Proto, prefix: &str) {
    let expected = match proto {
        Proto::V4 => 3,
        Proto::V5 => 0x88,
    };
    let deadline = Instant::now() + REFUSAL_DEADLINE;
    let mut attempts = Vec::new();
    loop {
        let mut client = Client::start(
            Opts::new(&format!("{prefix}-{}", attempts.len()), proto),
            &cluster.nodes[node].mqtt_addr,
        );
        // rumqttc gives up on a connection without CONNACK after 5 s.
        match client.next_within(Duration::from_secs(7)).await {
            Some(Ev::Refused { code }) => {
                assert_eq!(
                    code, expected,
                    "{proto:?}: CONNACK code from the node without a quorum"
                );
                return;
            }
            Some(Ev::ConnAck { .. }) => {
                panic!("{proto:?}: node {node} accepted a CONNECT without a quorum")
            }
            other => attempts.push(other),
        }
        assert!(
            Instant::now() < deadline,
            "{proto:?}: node {node} did not refuse a CONNECT within {REFUSAL_DEADLINE:?}: \
             {attempts:?}"
        );
        // Between attempts.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_follower_without_quorum_refuses_connect_v311() {
    survivor_refuses_connect(Proto::V4, false, "no-quorum-follower").await;
}

#[tokio::test]
async fn a_leader_without_quorum_refuses_connect_v5() {
    survivor_refuses_connect(Proto::V5, true, "no-quorum-leader").await;
}

/// A node restarted while the rest of the cluster is down cannot take its old sessions
/// offline (start-up recovery needs a quorum): it still listens, and refuses every CONNECT
/// rather than leaving clients waiting for a CONNACK.
#[tokio::test]
async fn a_node_restarted_without_quorum_refuses_connect_v5() {
    let mut cluster = serving_cluster().await;
    let prefix = unique("no-quorum-restart");
    for i in 0..3 {
        cluster.kill(i).expect("SIGKILL a node");
    }
    cluster.restart(0).expect("restart node 0");
    crate::broker_support::wait_for_port(&cluster.nodes[0].mqtt_addr, Duration::from_secs(30));
    expect_refusal(&cluster, 0, Proto::V5, &prefix).await;
}
