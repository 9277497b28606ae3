//! `raftmq bench pubsub` and `raftmq bench conn` against a single raftmq node (or
//! Mosquitto, with `RAFTMQ_TEST_BROKER=mosquitto`): a short QoS 1 run must account for
//! every message — each acknowledged one delivered once to each subscriber, nothing lost,
//! nothing twice — and a short connection run must open and keep every connection. The
//! figures themselves are not checked: this machine is too noisy for that.

#[path = "broker_support/mod.rs"]
mod broker_support;

use raftmq::bench::mqtt::{self, Scenario};
use raftmq::config::{BenchCommand, Cli, Command};

use broker_support::Broker;

/// The scenario of `raftmq bench ARGS...`, parsed as the binary parses it.
fn scenario(args: &[&str]) -> Scenario {
    let argv = ["raftmq", "bench"]
        .iter()
        .chain(args)
        .map(|s| s.to_string());
    match Cli::load(argv).expect("a valid command line").command {
        Some(Command::Bench(BenchCommand::Mqtt(scenario))) => scenario,
        other => panic!("not an MQTT bench: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_accounts_for_every_message_and_conn_keeps_every_connection() {
    // A waiting line long enough for subscribers that lag a whole run behind: past the
    // default (1,000) the oldest waiting QoS 1 messages of a transient session are
    // dropped by design, which this test must not count as lost.
    let broker = Broker::single_with(&["--max-queued-messages", "1000000"]).await;
    let port = broker.port(0).to_string();

    let pubsub = scenario(&[
        "pubsub",
        "--port",
        &port,
        "--qos",
        "1",
        // A wide window lets the publishers outrun the subscribers, so each subscriber's
        // connection has deliveries backed up: every one must still arrive.
        "--inflight",
        "1024",
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--duration",
        "2",
        "--client-prefix",
        "bench-tool",
    ]);
    let summary = mqtt::run(&pubsub).await.expect("the pubsub bench runs");
    let m = summary
        .messages
        .as_ref()
        .expect("a pubsub run counts messages");
    assert!(m.published > 0, "{summary}");
    assert_eq!(
        m.acked, m.published,
        "every QoS 1 message acknowledged: {summary}"
    );
    // One topic: both subscribers get every publisher's messages.
    assert_eq!(m.received, m.published * 2, "{summary}");
    assert_eq!(m.expected, Some(m.published * 2), "{summary}");
    assert_eq!((m.lost, m.duplicates, m.foreign), (0, 0, 0), "{summary}");
    assert!(m.latency_ms.is_some() && m.ack_latency_ms.is_some());
    assert_eq!(summary.connections.established, 4, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    let json: serde_json::Value =
        serde_json::from_str(&summary.to_json()).expect("the summary is one JSON object");
    assert_eq!(json["messages"]["lost"], 0);

    let conn = scenario(&[
        "conn",
        "--port",
        &port,
        "--connections",
        "50",
        "--connect-rate",
        "0",
        "--duration",
        "1",
        "--client-prefix",
        "bench-tool",
    ]);
    let summary = mqtt::run(&conn).await.expect("the conn bench runs");
    let c = &summary.connections;
    assert_eq!(
        (c.attempted, c.established, c.failed),
        (50, 50, 0),
        "{summary}"
    );
    assert_eq!(c.dropped, 0, "{summary}");
    assert!(c.open_file_limit_hit.is_none());
    assert!(summary.messages.is_none());
    assert!(summary.errors.is_empty(), "{summary}");
}
