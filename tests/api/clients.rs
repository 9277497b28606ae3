//! `/api/v1/clients`, `/api/v1/sessions` and `/api/v1/subscriptions` across the cluster.

use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value, json};

use crate::mqtt::{Got, Mqtt};
use crate::{call, cluster, code, eventually, eventually_answers, expect, unique};

fn items(answer: &Value) -> Vec<Value> {
    answer["items"].as_array().cloned().unwrap_or_default()
}

fn ids(answer: &Value) -> Vec<String> {
    items(answer)
        .iter()
        .filter_map(|i| i["client_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn clients_and_sessions_of_the_whole_cluster() {
    let cluster = cluster().await;
    let prefix = unique("clients");
    // One client per node, each with a session that outlives its connection.
    let mut clients = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let id = format!("{prefix}-{i}");
        let mut client = Mqtt::connect(&id, &node.mqtt_addr, 600).await;
        client
            .subscribe(&format!("{prefix}/{i}/+"), QoS::AtLeastOnce)
            .await;
        clients.push((id, client));
    }
    let first = &cluster.nodes[0];
    let last = &cluster.nodes[2];
    let node_ids: Vec<u64> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(cluster.status(i).await.expect("status").node_id);
        }
        ids
    };

    // Listed from any node, each with the details its own node has of it.
    let path = format!("/api/v1/clients?client_id_prefix={prefix}");
    let answer = expect(first, "GET", &path, None, 200).await;
    assert_eq!(answer["total"], json!(3), "{answer}");
    for (i, item) in items(&answer).iter().enumerate() {
        assert_eq!(item["client_id"], json!(format!("{prefix}-{i}")), "{item}");
        assert_eq!(item["node"], json!(node_ids[i]), "{item}");
        assert_eq!(item["details"], true, "{item}");
        assert_eq!(item["protocol"], json!(5), "{item}");
        assert_eq!(item["keep_alive"], json!(30), "{item}");
        assert_eq!(item["listener"], json!("tcp"), "{item}");
        assert_eq!(item["subscriptions"], json!(1), "{item}");
        assert!(
            item["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{item}"
        );
        assert!(
            item["connected_at"].as_u64().is_some_and(|t| t > 0),
            "{item}"
        );
    }
    // Filters and paging.
    let on_last = expect(
        first,
        "GET",
        &format!("{path}&node={}", node_ids[2]),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&on_last), [format!("{prefix}-2")], "{on_last}");
    let by_address = expect(
        first,
        "GET",
        &format!("{path}&address=127.0.0.1"),
        None,
        200,
    )
    .await;
    assert_eq!(by_address["total"], json!(3), "{by_address}");
    let elsewhere = expect(first, "GET", &format!("{path}&address=10.1.2.3"), None, 200).await;
    assert_eq!(elsewhere["total"], json!(0), "{elsewhere}");
    let nobody = expect(first, "GET", &format!("{path}&username=nobody"), None, 200).await;
    assert_eq!(nobody["total"], json!(0), "{nobody}");
    let page = expect(first, "GET", &format!("{path}&page=2&limit=2"), None, 200).await;
    assert_eq!(
        (
            page["total"].clone(),
            page["page"].clone(),
            page["limit"].clone()
        ),
        (json!(3), json!(2), json!(2)),
        "{page}"
    );
    assert_eq!(ids(&page), [format!("{prefix}-2")], "{page}");
    for bad in [
        "page=0",
        "limit=0",
        "limit=100000",
        "page=x",
        "node=x",
        "colour=red",
    ] {
        let refused = expect(first, "GET", &format!("/api/v1/clients?{bad}"), None, 400).await;
        assert_eq!(code(&refused), "bad_request", "{bad}: {refused}");
    }

    // One client's details, from a node that does not hold it.
    let far = &clients[2].0;
    let detail = expect(first, "GET", &format!("/api/v1/clients/{far}"), None, 200).await;
    assert_eq!(detail["connected"], true, "{detail}");
    assert_eq!(
        detail["subscription_list"][0]["filter"],
        json!(format!("{prefix}/2/+")),
        "{detail}"
    );
    assert_eq!(detail["subscription_list"][0]["qos"], json!(1), "{detail}");
    assert_eq!(detail["connection"]["keep_alive"], json!(30), "{detail}");
    let unknown = expect(first, "GET", "/api/v1/clients/no-such-client", None, 404).await;
    assert_eq!(code(&unknown), "not_found");

    // Subscriptions by client and by the topics they match.
    let by_client = expect(
        first,
        "GET",
        &format!("/api/v1/subscriptions?client_id={}", clients[1].0),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&by_client), [clients[1].0.clone()], "{by_client}");
    let by_topic = expect(
        first,
        "GET",
        &format!("/api/v1/subscriptions?topic={prefix}/1/x"),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&by_topic), [clients[1].0.clone()], "{by_topic}");
    let none = expect(
        first,
        "GET",
        &format!("/api/v1/subscriptions?topic={prefix}/1/x/y"),
        None,
        200,
    )
    .await;
    assert_eq!(none["total"], json!(0), "{none}");
    let wildcard = expect(first, "GET", "/api/v1/subscriptions?topic=a/%2B", None, 400).await;
    assert_eq!(code(&wildcard), "invalid_topic", "{wildcard}");
    expect(
        first,
        "GET",
        "/api/v1/subscriptions?client_id=nobody",
        None,
        404,
    )
    .await;

    // Kicked through the first node: the client on the last node is told 0x98; its
    // session stays, offline.
    let (kicked_id, mut kicked) = clients.remove(2);
    let answer = expect(
        first,
        "DELETE",
        &format!("/api/v1/clients/{kicked_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(answer["disconnected"], json!(kicked_id));
    assert_eq!(kicked.next().await, Got::Disconnected(0x98));
    eventually("the kicked client's session offline", || async {
        let (status, session) =
            call(last, "GET", &format!("/api/v1/sessions/{kicked_id}"), None).await;
        if status == 200 && session["connected"] == false && session["subscriptions"] == json!(1) {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {session}"))
        }
    })
    .await;
    let again = expect(
        first,
        "DELETE",
        &format!("/api/v1/clients/{kicked_id}"),
        None,
        404,
    )
    .await;
    assert_eq!(code(&again), "not_found");

    // Sessions, online and offline.
    let sessions = format!("/api/v1/sessions?client_id_prefix={prefix}");
    let all = expect(first, "GET", &sessions, None, 200).await;
    assert_eq!(all["total"], json!(3), "{all}");
    let offline = expect(
        first,
        "GET",
        &format!("{sessions}&connected=false"),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&offline), std::slice::from_ref(&kicked_id), "{offline}");
    let online = expect(
        first,
        "GET",
        &format!("{sessions}&connected=true"),
        None,
        200,
    )
    .await;
    assert_eq!(online["total"], json!(2), "{online}");
    let detail = expect(
        first,
        "GET",
        &format!("/api/v1/sessions/{kicked_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(detail["connection"], Value::Null, "{detail}");
    assert_eq!(detail["session_expiry"], json!(600), "{detail}");
    assert!(detail["expires_at"].as_u64().is_some(), "{detail}");

    // The offline session removed through the log: gone on every node.
    let removed = expect(
        first,
        "DELETE",
        &format!("/api/v1/sessions/{kicked_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(removed["was_connected"], false, "{removed}");
    for node in &cluster.nodes {
        eventually_answers(node, &format!("/api/v1/sessions/{kicked_id}"), 404).await;
    }
    expect(
        first,
        "DELETE",
        &format!("/api/v1/sessions/{kicked_id}"),
        None,
        404,
    )
    .await;

    // A connected client's session removed: the client is disconnected, the session gone.
    let (connected_id, mut connected) = clients.remove(1);
    expect(
        last,
        "DELETE",
        &format!("/api/v1/sessions/{connected_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(connected.next().await, Got::Disconnected(0x98));
    eventually_answers(first, &format!("/api/v1/sessions/{connected_id}"), 404).await;
    drop(clients);
}
