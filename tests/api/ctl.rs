//! `raftmq ctl ...` run as processes, the way an operator runs them: tables for people,
//! the node's JSON with `--json`, and a failed call's status on standard error.

use std::process::Output;

use raftmq::local_cluster::LocalNode;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::Value;

use crate::broker_support::{cli, cli_ok};
use crate::mqtt::{Got, Mqtt};
use crate::{cluster, unique};

/// `raftmq ctl <args>` against `node`, with its token file: its output.
async fn ctl(node: &LocalNode, args: &[&str]) -> Output {
    let args: Vec<&str> = std::iter::once("ctl").chain(args.iter().copied()).collect();
    cli(node, &args, None).await
}

/// [`ctl`] that must succeed: its standard output.
async fn ok(node: &LocalNode, args: &[&str]) -> String {
    let args: Vec<&str> = std::iter::once("ctl").chain(args.iter().copied()).collect();
    cli_ok(node, &args, None).await
}

/// [`ok`] with `--json`: the parsed answer.
async fn json(node: &LocalNode, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(node, &args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"))
}

/// The lines of a table whose first column is `first`.
fn rows<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|line| line.split_whitespace().next() == Some(first))
        .collect()
}

#[tokio::test]
async fn ctl_commands_print_tables_and_json() {
    let cluster = cluster().await;
    let node = &cluster.nodes[0];
    let id = unique("ctl");
    let mut client = Mqtt::connect(&id, &cluster.nodes[1].mqtt_addr, 600).await;
    client.subscribe(&format!("{id}/#"), QoS::AtLeastOnce).await;

    // Nodes: a header and one row per member, exactly one leader.
    let table = ok(node, &["nodes"]).await;
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("ROLE") && h.contains("UPTIME"))
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    assert_eq!(table.matches(" leader ").count(), 1, "{table}");
    let nodes = json(node, &["nodes"]).await;
    assert_eq!(nodes["nodes"].as_array().map(Vec::len), Some(3), "{nodes}");

    // Clients and one client, by table and by JSON.
    let prefix = ["clients", "--client-id-prefix", id.as_str()];
    let table = ok(node, &prefix).await;
    let row = rows(&table, &id);
    assert_eq!(row.len(), 1, "{table}");
    assert!(
        row[0].contains(" tcp ") && row[0].contains("127.0.0.1:"),
        "{table}"
    );
    assert!(
        table.contains("(page 1 of 1 items, 100 per page)"),
        "{table}"
    );
    let listed = json(node, &prefix).await;
    assert_eq!(listed["items"][0]["client_id"], id.as_str(), "{listed}");
    let detail = ok(node, &["client", &id]).await;
    assert!(detail.contains(&format!("{id}/#")), "{detail}");
    assert!(
        detail
            .lines()
            .any(|l| l.starts_with("keep_alive") && l.ends_with("30")),
        "{detail}"
    );

    // Subscriptions by client and by topic; sessions.
    let by_client = ok(node, &["subscriptions", "--client", &id]).await;
    assert_eq!(rows(&by_client, &id).len(), 1, "{by_client}");
    let by_topic = json(node, &["subscriptions", "--topic", &format!("{id}/x")]).await;
    assert_eq!(by_topic["total"], 1, "{by_topic}");
    let sessions = ok(
        node,
        &["sessions", "--client-id-prefix", &id, "--connected", "true"],
    )
    .await;
    assert_eq!(rows(&sessions, &id).len(), 1, "{sessions}");
    let session = json(node, &["session", &id]).await;
    assert_eq!(session["session_expiry"], 600, "{session}");

    // Publish (the subscriber gets it), retained listed and cleared.
    let topic = format!("{id}/kept");
    let published = ok(
        node,
        &["publish", &topic, "hello", "--qos", "1", "--retain"],
    )
    .await;
    assert!(published.contains("1 subscriptions matched"), "{published}");
    assert_eq!(
        client.next().await,
        Got::Message {
            topic: topic.clone(),
            payload: b"hello".to_vec()
        }
    );
    let retained = ok(node, &["retained", &format!("{id}/#")]).await;
    let row = rows(&retained, &topic);
    assert_eq!(row.len(), 1, "{retained}");
    assert!(row[0].ends_with("hello"), "{retained}");
    let cleared = ok(node, &["retained-remove", &topic]).await;
    assert!(cleared.contains("cleared"), "{cleared}");
    let retained = json(node, &["retained", &format!("{id}/#")]).await;
    assert_eq!(retained["total"], 0, "{retained}");

    // Snapshot, and leadership moved by the leader.
    let snapshot = ok(node, &["snapshot"]).await;
    assert!(snapshot.starts_with("snapshot of node "), "{snapshot}");
    let leader = cluster.leader().await.expect("a leader");
    let moved = json(&cluster.nodes[leader], &["leader"]).await;
    assert!(moved["leader"].as_u64().is_some(), "{moved}");

    // Kick, then remove the session; a failed call says why and exits non-zero.
    let kicked = ok(node, &["kick", &id]).await;
    assert_eq!(kicked.trim(), format!("client {id} disconnected"));
    assert_eq!(client.next().await, Got::Disconnected(0x98));
    let removed = ok(node, &["session-remove", &id]).await;
    assert_eq!(removed.trim(), format!("session {id} removed"));
    let failed = ctl(node, &["session", &id]).await;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("not_found"),
        "{stderr}"
    );
}
