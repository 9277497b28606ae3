//! `$SYS/brokers/<node>/…` on a 3-node cluster with `--sys-interval 1`: a subscriber of
//! `$SYS/brokers/+/uptime` on one node hears every node; `#` hears none of it; a client
//! cannot publish under `$SYS`.

use std::collections::BTreeSet;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use tokio::time::Instant;

use crate::WAIT;
use crate::broker_support::cluster_with;
use crate::client::Client;

/// Long enough for every node to publish again (`--sys-interval 1`).
const QUIET: Duration = Duration::from_millis(2500);

/// A 3.1.1 client publishes to `topic` at QoS 0 and 1 and waits for its PUBACK.
async fn forge_v311(addr: &str, topic: &str) {
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let options = rumqttc::MqttOptions::new("sys-forger-311", "127.0.0.1", port);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 8);
    for qos in [rumqttc::QoS::AtMostOnce, rumqttc::QoS::AtLeastOnce] {
        client
            .publish(topic, qos, false, "forged")
            .await
            .expect("PUBLISH queued");
    }
    let acked = async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => return,
                Ok(_) => {}
                Err(e) => panic!("3.1.1 client: {e}"),
            }
        }
    };
    tokio::time::timeout(WAIT, acked)
        .await
        .expect("3.1.1: PUBACK in time");
}

fn topic(publish: &rumqttc::v5::mqttbytes::v5::Publish) -> String {
    String::from_utf8_lossy(&publish.topic).into_owned()
}

#[tokio::test]
async fn every_node_publishes_its_sys_topics_to_sys_subscribers_only() {
    let cluster = cluster_with(3, &["--allow-anonymous=true", "--sys-interval", "1"]).await;
    let mut ids = BTreeSet::new();
    for index in 0..3 {
        ids.insert(cluster.status(index).await.expect("status").node_id);
    }
    let addr = cluster.nodes[0].mqtt_addr.as_str();
    let mut everything = Client::connect("sys-hash", addr).await;
    everything.subscribe("#").await;
    let mut sys = Client::connect("sys-uptime", addr).await;
    sys.subscribe("$SYS/brokers/+/uptime").await;

    let mut heard = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while heard != ids {
        assert!(Instant::now() < deadline, "heard only {heard:?} of {ids:?}");
        let Packet::Publish(publish) = sys.next_packet().await else {
            continue;
        };
        let topic = topic(&publish);
        let node = topic
            .strip_prefix("$SYS/brokers/")
            .and_then(|rest| rest.strip_suffix("/uptime"))
            .unwrap_or_else(|| panic!("a message on {topic}"));
        let uptime = String::from_utf8_lossy(&publish.payload);
        assert!(uptime.parse::<u64>().is_ok(), "uptime {uptime:?}");
        heard.insert(node.parse::<u64>().expect("a node id"));
    }

    // A client's publish under $SYS: refused (5.0 PUBACK 0x87; 3.1.1 cannot say so and
    // is acknowledged) and never delivered, at any QoS.
    let forged = format!("$SYS/brokers/{}/uptime", heard.first().expect("a node"));
    sys.publish(&forged, QoS::AtLeastOnce, false, "forged")
        .await;
    sys.publish(&forged, QoS::AtMostOnce, false, "forged").await;
    forge_v311(addr, &forged).await;
    let quiet_until = Instant::now() + QUIET;
    let mut refused = false;
    while Instant::now() < quiet_until || !refused {
        match sys.next_packet().await {
            Packet::PubAck(ack) => {
                assert_eq!(ack.reason, PubAckReason::NotAuthorized);
                refused = true;
            }
            Packet::Publish(publish) => {
                assert_ne!(&publish.payload[..], b"forged", "a forged $SYS message");
            }
            _ => {}
        }
    }

    // `#` got none of the $SYS messages of those seconds: the first message it gets is
    // the one published after them.
    sys.publish("sys/control", QoS::AtLeastOnce, false, "after")
        .await;
    match everything.next_packet().await {
        Packet::Publish(publish) => {
            assert_eq!(topic(&publish), "sys/control", "`#` matched a $SYS topic")
        }
        other => panic!("sys-hash: unexpected {other:?}"),
    }
}
