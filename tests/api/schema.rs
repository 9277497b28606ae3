//! The OpenAPI document against the real answers: `openapi_check.py` runs schemathesis
//! over every GET operation of a 3-node cluster's node that has a client, a session, a
//! subscription and a retained message to show.

use std::process::Stdio;

use rumqttc::v5::mqttbytes::QoS;
use serde_json::json;

use crate::mqtt::Mqtt;
use crate::{cluster, expect, unique};

#[tokio::test]
async fn every_get_answer_conforms_to_the_openapi_document() {
    let cluster = cluster().await;
    let node = &cluster.nodes[0];
    let prefix = unique("schema");
    let mut client = Mqtt::connect(&prefix, &cluster.nodes[1].mqtt_addr, 600).await;
    client
        .subscribe(&format!("{prefix}/#"), QoS::AtLeastOnce)
        .await;
    expect(
        node,
        "POST",
        "/api/v1/publish",
        Some(&json!({ "topic": format!("{prefix}/r"), "payload": "r", "qos": 1, "retain": true })),
        200,
    )
    .await;
    let token_file = raftmq::admin::token::default_file(&node.data_dir);
    let token = std::fs::read_to_string(token_file).expect("the node's token");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/openapi_check.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&node.http_addr)
        .arg(token.trim())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(600), output)
        .await
        .expect("schemathesis finishes within 10 minutes")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named schemathesis"),
        "schemathesis is not installed: python3 -m pip install schemathesis"
    );
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}\n{stderr}");
    drop(client);
}
