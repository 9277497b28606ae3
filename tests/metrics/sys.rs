//! `$SYS/brokers/<node>/…` on a 3-node cluster with `--sys-interval 1`: a subscriber of
//! `$SYS/brokers/+/uptime` on one node hears every node; `#` hears none of it; a client
//! cannot publish under `$SYS`.

use std::collections::BTreeSet;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use tokio::time::Instant;

use crate::WAIT;
use crate::broker_support::cluster_with;
use crate::client::Client;

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

    // A client's publish under $SYS: refused (5.0 PUBACK 0x87) and not delivered.
    sys.publish("$SYS/brokers/1/uptime", QoS::AtLeastOnce, false, "forged")
        .await;
    loop {
        match sys.next_packet().await {
            Packet::PubAck(ack) => {
                assert_eq!(ack.reason, PubAckReason::NotAuthorized);
                break;
            }
            Packet::Publish(publish) => assert_ne!(&publish.payload[..], b"forged"),
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
