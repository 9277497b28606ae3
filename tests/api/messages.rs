//! `POST /api/v1/publish` and `/api/v1/retained`.

use base64::Engine;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value, json};

use crate::mqtt::{Got, Mqtt};
use crate::{call, cluster, code, eventually, eventually_answers, expect, unique};

#[tokio::test]
async fn published_through_the_api_and_retained_messages() {
    let cluster = cluster().await;
    let prefix = unique("messages");
    let (first, last) = (&cluster.nodes[0], &cluster.nodes[2]);
    let mut subscriber = Mqtt::connect(&format!("{prefix}-sub"), &last.mqtt_addr, 0).await;
    subscriber
        .subscribe(&format!("{prefix}/#"), QoS::AtLeastOnce)
        .await;

    // Through the first node's API to a subscriber on the last node, at each QoS, in
    // plain text and in base64.
    let binary = [0u8, 159, 146, 150];
    let encoded = base64::engine::general_purpose::STANDARD.encode(binary);
    let sends = [
        (
            0,
            json!({ "topic": format!("{prefix}/q0"), "payload": "zero" }),
            b"zero".to_vec(),
        ),
        (
            1,
            json!({ "topic": format!("{prefix}/q1"), "payload": "one", "qos": 1,
                    "properties": { "content_type": "text/plain",
                                    "user_properties": [["k", "v"]] } }),
            b"one".to_vec(),
        ),
        (
            2,
            json!({ "topic": format!("{prefix}/q2"), "payload": encoded,
                    "payload_encoding": "base64", "qos": 2 }),
            binary.to_vec(),
        ),
    ];
    for (qos, body, payload) in sends {
        let answer = expect(first, "POST", "/api/v1/publish", Some(&body), 200).await;
        assert_eq!(answer["qos"], json!(qos), "{answer}");
        if qos > 0 {
            assert_eq!(answer["matched"], json!(1), "{answer}");
        }
        assert_eq!(
            subscriber.next().await,
            Got::Message {
                topic: body["topic"].as_str().unwrap_or_default().to_string(),
                payload,
            }
        );
    }

    // Bad input.
    let bad: [(Value, &str); 6] = [
        (json!({ "topic": "a/+", "payload": "x" }), "invalid_topic"),
        (json!({ "topic": "", "payload": "x" }), "invalid_topic"),
        (
            json!({ "topic": "a", "payload": "x", "qos": 3 }),
            "bad_request",
        ),
        (
            json!({ "topic": "a", "payload": "%%%", "payload_encoding": "base64" }),
            "bad_request",
        ),
        (
            json!({ "topic": "a", "payload_encoding": "hex" }),
            "bad_request",
        ),
        (json!({ "payload": "no topic" }), "bad_request"),
    ];
    for (body, expected) in bad {
        let answer = expect(first, "POST", "/api/v1/publish", Some(&body), 400).await;
        assert_eq!(code(&answer), expected, "{body}: {answer}");
    }

    // Retained: one published through the API, one by a client; listed on every node.
    let text_topic = format!("{prefix}/retained/text");
    let binary_topic = format!("{prefix}/retained/binary");
    expect(
        first,
        "POST",
        "/api/v1/publish",
        Some(&json!({ "topic": text_topic, "payload": "kept", "qos": 1, "retain": true })),
        200,
    )
    .await;
    expect(
        first,
        "POST",
        "/api/v1/publish",
        Some(&json!({ "topic": binary_topic, "payload": encoded,
                       "payload_encoding": "base64", "retain": true })),
        200,
    )
    .await;
    let filter = format!("{prefix}/retained/%2B");
    for node in &cluster.nodes {
        eventually("both retained messages listed", || async {
            let (status, answer) = call(
                node,
                "GET",
                &format!("/api/v1/retained?filter={filter}"),
                None,
            )
            .await;
            if status == 200 && answer["total"] == json!(2) {
                Ok(())
            } else {
                Err(format!("HTTP {status}: {answer}"))
            }
        })
        .await;
    }
    let listed = expect(
        last,
        "GET",
        &format!("/api/v1/retained?filter={filter}&limit=1"),
        None,
        200,
    )
    .await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    // Topic order: "binary" before "text".
    let binary_item = &listed["items"][0];
    assert_eq!(binary_item["topic"], json!(binary_topic), "{listed}");
    assert_eq!(binary_item["payload"], Value::Null, "not UTF-8: {listed}");
    assert_eq!(binary_item["payload_base64"], json!(encoded), "{listed}");
    let text = expect(
        last,
        "GET",
        &format!("/api/v1/retained/message?topic={text_topic}"),
        None,
        200,
    )
    .await;
    assert_eq!(
        (text["payload"].clone(), text["qos"].clone()),
        (json!("kept"), json!(1)),
        "{text}"
    );
    let all = expect(first, "GET", "/api/v1/retained", None, 200).await;
    assert!(all["total"].as_u64().is_some_and(|n| n >= 2), "{all}");
    let bad_filter = expect(first, "GET", "/api/v1/retained?filter=a/%23/b", None, 400).await;
    assert_eq!(code(&bad_filter), "invalid_filter", "{bad_filter}");
    let bad_topic = expect(
        first,
        "GET",
        "/api/v1/retained/message?topic=a/%23",
        None,
        400,
    )
    .await;
    assert_eq!(code(&bad_topic), "invalid_topic", "{bad_topic}");
    expect(first, "GET", "/api/v1/retained/message", None, 400).await;
    expect(
        first,
        "GET",
        &format!("/api/v1/retained/message?topic={prefix}/none"),
        None,
        404,
    )
    .await;

    // Cleared through the log: gone on every node; the subscriber gets no empty message.
    let removed = expect(
        first,
        "DELETE",
        &format!("/api/v1/retained/message?topic={text_topic}"),
        None,
        200,
    )
    .await;
    assert_eq!(removed["removed"], json!(text_topic));
    for node in &cluster.nodes {
        let path = format!("/api/v1/retained/message?topic={text_topic}");
        eventually_answers(node, &path, 404).await;
    }
    expect(
        first,
        "DELETE",
        &format!("/api/v1/retained/message?topic={text_topic}"),
        None,
        404,
    )
    .await;
    // The retained messages published above reached the subscriber as it was subscribed;
    // after them, the next message it gets is this marker, not an empty one.
    for _ in 0..2 {
        assert!(matches!(subscriber.next().await, Got::Message { .. }));
    }
    let marker = format!("{prefix}/marker");
    expect(
        first,
        "POST",
        "/api/v1/publish",
        Some(&json!({ "topic": marker, "payload": "m", "qos": 1 })),
        200,
    )
    .await;
    assert_eq!(
        subscriber.next().await,
        Got::Message {
            topic: marker,
            payload: b"m".to_vec()
        }
    );
}
