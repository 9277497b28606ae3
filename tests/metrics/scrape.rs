//! `/metrics` after known traffic: every counter moved by exactly what was sent.

use std::time::Duration;

use raftmq::local_cluster::LocalNode;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use tokio::time::Instant;

use crate::broker_support::cluster_with;
use crate::client::{Client, Got};
use crate::{Samples, WAIT, scrape};

/// Scrapes until `ready` holds of the samples (counters move when a connection's end
/// is settled, a moment after the client sees the socket close).
async fn scrape_until(node: &LocalNode, what: &str, ready: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + WAIT;
    loop {
        let samples = scrape(node).await;
        if ready(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The change of `key` from `before` to `after`.
fn delta(before: &Samples, after: &Samples, key: &str) -> f64 {
    after.get(key) - before.get(key)
}

#[tokio::test]
async fn known_traffic_moves_each_counter_by_exactly_that_much() {
    let cluster = cluster_with(1, &["--allow-anonymous=true"]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    node.api()
        .expect("API")
        .send_json(
            "POST",
            "/api/v1/users",
            &serde_json::json!({ "username": "alice", "password": "alice-pw" }),
        )
        .await
        .expect("add alice");
    // The readiness probe's connection has ended.
    let before = scrape_until(node, "no connection left", |s| {
        s.get("raftmq_connections") == 0.0
    })
    .await;

    let mut refused = Client::start("metrics-wrong", addr, Some(("alice", "wrong")));
    match refused.next().await {
        Got::Refused(why) => assert_eq!(why, "BadUserNamePassword"),
        other => panic!("a wrong password: expected a refusal, got {other:?}"),
    }
    let mut subscriber = Client::connect("metrics-sub", addr).await;
    subscriber.subscribe("metrics/t").await;
    let mut publisher = Client::connect("metrics-pub", addr).await;
    for i in 0..10 {
        publisher
            .publish("metrics/t", QoS::AtLeastOnce, false, &format!("one-{i}"))
            .await;
    }
    for i in 0..5 {
        publisher
            .publish("metrics/t", QoS::AtMostOnce, false, &format!("zero-{i}"))
            .await;
    }
    publisher
        .publish("metrics/retained", QoS::AtLeastOnce, true, "kept")
        .await;
    let mut acks = 0;
    while acks < 11 {
        if let Packet::PubAck(_) = publisher.next_packet().await {
            acks += 1;
        }
    }
    let mut received = 0;
    while received < 15 {
        if let Packet::Publish(_) = subscriber.next_packet().await {
            received += 1;
        }
    }
    let during = scrape(node).await;
    assert_eq!(during.get("raftmq_connections"), 2.0);
    assert!(during.get("raftmq_sessions") >= 2.0);
    assert!(during.get("raftmq_subscriptions") >= 1.0);
    assert_eq!(
        delta(&before, &during, "raftmq_retained_messages"),
        1.0,
        "one retained message"
    );
    subscriber.disconnect().await;
    publisher.disconnect().await;
    let closed = r#"raftmq_connections_closed_total{reason="client_disconnect"}"#;
    let after = scrape_until(node, "both connections closed", |s| {
        s.get("raftmq_connections") == 0.0 && delta(&before, s, closed) == 2.0
    })
    .await;

    let expected = [
        ("raftmq_connections_accepted_total", 2.0),
        (
            r#"raftmq_connections_refused_total{reason="bad_credentials"}"#,
            1.0,
        ),
        (r#"raftmq_logins_total{result="anonymous"}"#, 2.0),
        (r#"raftmq_packets_received_total{type="connect"}"#, 3.0),
        (r#"raftmq_packets_received_total{type="subscribe"}"#, 1.0),
        (r#"raftmq_packets_received_total{type="publish"}"#, 16.0),
        // The subscriber's acknowledgements of the 10 QoS 1 deliveries.
        (r#"raftmq_packets_received_total{type="puback"}"#, 10.0),
        (r#"raftmq_packets_received_total{type="disconnect"}"#, 2.0),
        (r#"raftmq_packets_sent_total{type="connack"}"#, 3.0),
        (r#"raftmq_packets_sent_total{type="suback"}"#, 1.0),
        (r#"raftmq_packets_sent_total{type="puback"}"#, 11.0),
        (r#"raftmq_packets_sent_total{type="publish"}"#, 15.0),
        (r#"raftmq_messages_received_total{qos="0"}"#, 5.0),
        (r#"raftmq_messages_received_total{qos="1"}"#, 11.0),
        (r#"raftmq_messages_received_total{qos="2"}"#, 0.0),
        (r#"raftmq_messages_sent_total{qos="0"}"#, 5.0),
        (r#"raftmq_messages_sent_total{qos="1"}"#, 10.0),
        (
            r#"raftmq_messages_dropped_total{reason="no_subscribers"}"#,
            1.0,
        ),
        (
            r#"raftmq_messages_dropped_total{reason="not_authorized"}"#,
            0.0,
        ),
    ];
    for (key, moved) in expected {
        assert_eq!(delta(&before, &after, key), moved, "{key}");
    }
    assert!(delta(&before, &after, "raftmq_bytes_received_total") > 0.0);
    assert!(delta(&before, &after, "raftmq_bytes_sent_total") > 0.0);

    // One node: it leads, and everything it committed is applied.
    assert!(after.get("raftmq_raft_term") >= 1.0);
    assert_eq!(after.get("raftmq_raft_is_leader"), 1.0);
    assert!(after.get("raftmq_raft_leader") > 0.0);
    assert!(after.get("raftmq_raft_leader_changes_total") >= 1.0);
    assert!(after.get("raftmq_raft_commit_index") > 0.0);
    assert!(after.get("raftmq_raft_applied_index") >= after.get("raftmq_raft_commit_index"));
    assert!(after.get("raftmq_storage_disk_bytes") > 0.0);
    // Each QoS 1 publish was a proposal, each appended entry an fsync.
    for histogram in [
        "raftmq_raft_proposal_batch_size_count",
        "raftmq_raft_proposal_latency_seconds_count",
        "raftmq_storage_fsync_latency_seconds_count",
    ] {
        assert!(delta(&before, &after, histogram) > 0.0, "{histogram}");
    }
}

#[tokio::test]
async fn metrics_need_the_token_unless_public() {
    let guarded = cluster_with(1, &[]).await;
    let api = guarded.nodes[0].api().expect("API");
    let (status, _) = api
        .exchange("GET", "/metrics", &[], None)
        .await
        .expect("GET /metrics");
    assert_eq!(status, 401, "without the token");
    let text = api.get("/metrics").await.expect("with the token");
    assert!(text.contains("raftmq_connections"), "{text}");

    let public = cluster_with(1, &["--metrics-public=true"]).await;
    let api = public.nodes[0].api().expect("API");
    let (status, text) = api
        .exchange("GET", "/metrics", &[], None)
        .await
        .expect("GET /metrics");
    assert_eq!(status, 200, "--metrics-public=true: {text}");
    assert!(text.contains("raftmq_raft_term"), "{text}");
    let (status, _) = api
        .exchange("GET", "/clients", &[], None)
        .await
        .expect("GET /clients");
    assert_eq!(status, 401, "only /metrics is public");
}
