//! `/api/v1/nodes` and `/api/v1/cluster/...`, and the token on every new route.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{call, cluster, code, eventually, expect};

/// Every route of this API, with a method, for the token check.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/nodes"),
    ("POST", "/api/v1/nodes"),
    ("GET", "/api/v1/nodes/1"),
    ("DELETE", "/api/v1/nodes/1"),
    ("POST", "/api/v1/nodes/1/drain"),
    ("POST", "/api/v1/cluster/snapshot"),
    ("POST", "/api/v1/cluster/leader"),
    ("GET", "/api/v1/clients"),
    ("GET", "/api/v1/clients/c"),
    ("DELETE", "/api/v1/clients/c"),
    ("GET", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions/c"),
    ("DELETE", "/api/v1/sessions/c"),
    ("GET", "/api/v1/subscriptions"),
    ("GET", "/api/v1/retained"),
    ("GET", "/api/v1/retained/message?topic=a"),
    ("DELETE", "/api/v1/retained/message?topic=a"),
    ("POST", "/api/v1/publish"),
];

fn nodes_of(answer: &Value) -> Vec<Value> {
    answer["nodes"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn nodes_are_listed_added_removed_snapshotted_and_lead() {
    let mut cluster = cluster().await;
    let first = &cluster.nodes[0];

    for (method, path) in ROUTES {
        let (status, answer) = raftmq::admin::client::Api::new(&first.http_addr, None)
            .exchange(method, path, &[], None)
            .await
            .expect("an answer");
        assert_eq!(status, 401, "{method} {path} without the token: {answer}");
        assert!(answer.contains("unauthorized"), "{method} {path}: {answer}");
    }

    // Every member, each with its own view; exactly one leader, the same one everywhere.
    let answer = expect(first, "GET", "/api/v1/nodes", None, 200).await;
    let nodes = nodes_of(&answer);
    assert_eq!(nodes.len(), 3, "{answer}");
    let leaders: Vec<&Value> = nodes.iter().filter(|n| n["role"] == "leader").collect();
    assert_eq!(leaders.len(), 1, "{answer}");
    let leader_id = leaders[0]["id"].as_u64().expect("an id");
    for node in &nodes {
        assert_eq!(node["reachable"], true, "{node}");
        assert_eq!(node["leader"], json!(leader_id), "{node}");
        assert_eq!(node["voter"], true, "{node}");
        assert!(node["applied"].as_u64().is_some(), "{node}");
        assert!(node["term"].as_u64().is_some_and(|t| t > 0), "{node}");
        assert!(
            node["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{node}"
        );
        assert!(node["uptime_ms"].as_u64().is_some(), "{node}");
    }
    let this = answer["this_node"].as_u64().expect("this node's id");
    let one = expect(first, "GET", &format!("/api/v1/nodes/{this}"), None, 200).await;
    assert_eq!(one["id"], json!(this));
    assert_eq!(one["address"], json!(first.cluster_addr), "{one}");
    assert_eq!(
        code(&expect(first, "GET", "/api/v1/nodes/999", None, 404).await),
        "not_found"
    );
    assert_eq!(
        code(&expect(first, "GET", "/api/v1/nodes/abc", None, 400).await),
        "bad_request"
    );

    // A snapshot on this node covers what it has applied.
    let snapshot = expect(first, "POST", "/api/v1/cluster/snapshot", None, 200).await;
    assert!(snapshot["snapshot_index"].as_u64().is_some(), "{snapshot}");

    // Draining another node is that node's call.
    let other = nodes
        .iter()
        .map(|n| n["id"].as_u64().expect("id"))
        .find(|id| *id != this)
        .expect("another node");
    let refused = expect(
        first,
        "POST",
        &format!("/api/v1/nodes/{other}/drain"),
        None,
        400,
    )
    .await;
    assert_eq!(code(&refused), "not_local", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("own HTTP API")),
        "{refused}"
    );

    // Leadership: refused by a follower, moved by the leader to the node asked for.
    let leader_index = cluster.leader().await.expect("a leader");
    let follower_index = (leader_index + 1) % 3;
    let follower = &cluster.nodes[follower_index];
    let refused = expect(follower, "POST", "/api/v1/cluster/leader", None, 400).await;
    assert_eq!(code(&refused), "not_leader", "{refused}");
    let target = cluster
        .status(follower_index)
        .await
        .expect("status")
        .node_id;
    let moved = expect(
        &cluster.nodes[leader_index],
        "POST",
        "/api/v1/cluster/leader",
        Some(&json!({ "to": target })),
        200,
    )
    .await;
    assert_eq!(moved["leader"], json!(target), "{moved}");
    let bad = expect(
        follower,
        "POST",
        "/api/v1/cluster/leader",
        Some(&json!({ "to": 12345 })),
        404,
    )
    .await;
    assert_eq!(code(&bad), "not_found", "{bad}");
    let bad = expect(
        follower,
        "POST",
        "/api/v1/cluster/leader",
        Some(&json!({ "to": "somebody" })),
        400,
    )
    .await;
    assert_eq!(code(&bad), "bad_request", "{bad}");

    // A fresh fourth node added through the API, with its id checked.
    let index = cluster.add_node(None, false).expect("start a fourth node");
    let fresh = cluster.nodes[index].cluster_addr.clone();
    let fresh_id = {
        let mut id = None;
        for _ in 0..100 {
            if let Ok(status) = cluster.status(index).await {
                id = Some(status.node_id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        id.expect("the fourth node's status")
    };
    let first = &cluster.nodes[0];
    let wrong = expect(
        first,
        "POST",
        "/api/v1/nodes",
        Some(&json!({ "id": fresh_id + 1, "addr": fresh })),
        400,
    )
    .await;
    assert_eq!(code(&wrong), "bad_request", "{wrong}");
    let bad_body = expect(
        first,
        "POST",
        "/api/v1/nodes",
        Some(&json!({ "address": 1 })),
        400,
    )
    .await;
    assert_eq!(code(&bad_body), "bad_request", "{bad_body}");
    let added = expect(
        first,
        "POST",
        "/api/v1/nodes",
        Some(&json!({ "id": fresh_id, "addr": fresh })),
        201,
    )
    .await;
    let members = added["members"].as_array().cloned().unwrap_or_default();
    assert!(
        members
            .iter()
            .any(|m| m["id"] == json!(fresh_id) && m["voter"] == true),
        "{added}"
    );

    // Down, it is listed as unreachable; then removed.
    cluster.kill(index).expect("kill the fourth node");
    let first = &cluster.nodes[0];
    let answer = expect(first, "GET", "/api/v1/nodes", None, 200).await;
    let down = nodes_of(&answer)
        .into_iter()
        .find(|n| n["id"] == json!(fresh_id))
        .expect("the fourth node listed");
    assert_eq!(down["reachable"], false, "{down}");
    let removed = expect(
        first,
        "DELETE",
        &format!("/api/v1/nodes/{fresh_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(removed["removed"], json!(fresh_id), "{removed}");
    eventually("three members again", || async {
        let (_, answer) = call(first, "GET", "/api/v1/nodes", None).await;
        match nodes_of(&answer).len() {
            3 => Ok(()),
            n => Err(format!("{n} members: {answer}")),
        }
    })
    .await;
    let gone = expect(
        first,
        "DELETE",
        &format!("/api/v1/nodes/{fresh_id}"),
        None,
        404,
    )
    .await;
    assert_eq!(code(&gone), "not_found", "{gone}");
}
