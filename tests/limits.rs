//! Limits that slow or stop a client without hurting others: the per-client publish rate
//! (the client is slowed by not reading its socket; every publish is still acknowledged)
//! and the connections per source address.

mod broker_support;

use std::time::{Duration, Instant};

use broker_support::Broker;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::time::timeout;

fn options(addr: &str, id: &str) -> MqttOptions {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut options = MqttOptions::new(id, host, port.parse().expect("port"));
    options.set_keep_alive(Duration::from_secs(5));
    options
}

#[tokio::test]
async fn a_client_over_its_publish_rate_is_slowed_not_dropped() {
    const RATE: u32 = 40;
    const SENT: u32 = 160;
    let rate = RATE.to_string();
    let broker = Broker::single_with(&["--max-publish-rate", &rate]).await;
    let (client, mut events) = AsyncClient::new(options(&broker.addr(0), "fast"), 500);
    let started = Instant::now();
    tokio::spawn(async move {
        for i in 0..SENT {
            let payload = i.to_string();
            if client
                .publish("limits/rate", QoS::AtLeastOnce, false, payload)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acked = 0;
    let all_acked = timeout(Duration::from_secs(60), async {
        while acked < SENT {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the client was cut off: {e}"),
            }
        }
    })
    .await;
    assert!(all_acked.is_ok(), "{acked} of {SENT} acknowledged");
    // The first second's burst is free; the rest goes at RATE a second (a slower machine
    // only makes this longer).
    let least = Duration::from_secs_f64(f64::from(SENT - RATE) / f64::from(RATE) * 0.9);
    assert!(
        started.elapsed() >= least,
        "{SENT} publishes at {RATE}/s took only {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_past_the_per_address_limit_are_closed() {
    let broker = Broker::single_with(&["--max-connections-per-address", "3"]).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let (client, mut events) = AsyncClient::new(options(&broker.addr(0), &format!("h{i}")), 10);
        let connack = timeout(Duration::from_secs(10), async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await.expect("connects")
                {
                    return;
                }
            }
        })
        .await;
        assert!(connack.is_ok(), "connection {i} within the limit");
        held.push((client, events));
    }
    let (_client, mut events) = AsyncClient::new(options(&broker.addr(0), "fourth"), 10);
    let fourth = timeout(Duration::from_secs(10), events.poll())
        .await
        .expect("an answer in time");
    assert!(
        fourth.is_err(),
        "the fourth is closed without a CONNACK: {fourth:?}"
    );
    // One leaves: there is room again.
    held.pop();
    let (_client, mut events) = AsyncClient::new(options(&broker.addr(0), "fifth"), 10);
    let fifth = timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                // The closed connection's slot may not be free yet: try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert_eq!(fifth, Ok(true));
}
