//! Limits that slow or stop a client without hurting others: the per-client publish rate
//! (the client is slowed by not reading its socket; every publish is still acknowledged)
//! the connections per source address, the subscriptions a session may hold, and the
//! retained store's size (past it a message is published but not retained).

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

/// Polls `events` until `pick` finds something in an incoming packet, for at most 10 s.
async fn wait_for<T>(
    events: &mut rumqttc::v5::EventLoop,
    mut pick: impl FnMut(&Packet) -> Option<T>,
) -> Option<T> {
    timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(packet)) => {
                    if let Some(found) = pick(&packet) {
                        return found;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("connection failed: {e}"),
            }
        }
    })
    .await
    .ok()
}

/// Waits for `count` incoming packets that `wanted` accepts.
async fn expect_packets(
    events: &mut rumqttc::v5::EventLoop,
    count: usize,
    wanted: impl Fn(&Packet) -> bool,
) {
    for got in 0..count {
        let seen = wait_for(events, |p| wanted(p).then_some(())).await;
        assert!(seen.is_some(), "only {got} of {count} packets in time");
    }
}

/// Subscribes to `filter` at QoS 1; the SUBACK's reason codes.
async fn subscribe_one(
    client: &AsyncClient,
    events: &mut rumqttc::v5::EventLoop,
    filter: &str,
) -> Vec<rumqttc::v5::mqttbytes::v5::SubscribeReasonCode> {
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("queued");
    suback(events).await
}

/// The reason codes of the next SUBACK.
async fn suback(
    events: &mut rumqttc::v5::EventLoop,
) -> Vec<rumqttc::v5::mqttbytes::v5::SubscribeReasonCode> {
    wait_for(events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await
    .expect("SUBACK")
}

#[tokio::test]
async fn filters_past_the_subscription_limit_get_quota_exceeded() {
    let broker = Broker::single_with(&["--max-subscriptions", "2"]).await;
    let mut opts = options(&broker.addr(0), "subs-limit");
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(300));
    let (client, mut events) = AsyncClient::new(opts.clone(), 10);
    for filter in ["limits/a", "limits/b", "limits/c"] {
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queued");
    }
    let mut codes = Vec::new();
    while codes.len() < 3 {
        codes.extend(suback(&mut events).await);
    }
    use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as R;
    // A refused filter's SUBACK may overtake the others' (they wait for the log).
    let granted = codes
        .iter()
        .filter(|c| **c == R::Success(QoS::AtLeastOnce))
        .count();
    assert_eq!(granted, 2, "{codes:?}");
    assert!(codes.contains(&R::QuotaExceeded), "{codes:?}");
    // The count survives a reconnect: the resumed session still holds two.
    client.disconnect().await.expect("disconnect");
    let _ = timeout(Duration::from_secs(5), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    let (client, mut events) = AsyncClient::new(opts, 10);
    let codes = subscribe_one(&client, &mut events, "limits/d").await;
    assert_eq!(
        codes,
        [R::QuotaExceeded],
        "two held, so no third after resuming"
    );
    client.unsubscribe("limits/a").await.expect("queued");
    let codes = subscribe_one(&client, &mut events, "limits/d").await;
    assert_eq!(
        codes,
        [R::Success(QoS::AtLeastOnce)],
        "unsubscribing made room"
    );
}

/// Subscribes a fresh client to `topic` and returns the retained payloads it gets within
/// a second.
async fn retained_payloads(addr: &str, id: &str, topic: &str) -> Vec<Vec<u8>> {
    let (client, mut events) = AsyncClient::new(options(addr, id), 10);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("queued");
    let mut got = Vec::new();
    let _ = timeout(Duration::from_secs(1), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) if p.retain => got.push(p.payload.to_vec()),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })
    .await;
    got.sort();
    got
}

#[tokio::test]
async fn messages_past_the_retained_limits_are_published_but_not_retained() {
    let broker = Broker::single_with(&[
        "--max-retained-messages",
        "2",
        "--max-retained-payload",
        "8",
    ])
    .await;
    let addr = broker.addr(0);
    // A live subscriber gets every message, retained or not.
    let (live, mut live_events) = AsyncClient::new(options(&addr, "retain-live"), 10);
    live.subscribe("retain/#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    wait_for(&mut live_events, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await
    .expect("SUBACK");
    let (publisher, mut events) = AsyncClient::new(options(&addr, "retain-pub"), 10);
    let sent = [
        ("retain/a", "one"),
        ("retain/big", "nine bytes"),
        ("retain/b", "two"),
        ("retain/c", "three"),
        ("retain/a", "uno"),
    ];
    for (topic, payload) in sent {
        publisher
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .expect("queued");
        wait_for(&mut events, |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await
        .expect("PUBACK: the publish is accepted either way");
    }
    // The live subscriber gets every message.
    expect_packets(&mut live_events, sent.len(), |p| {
        matches!(p, Packet::Publish(_))
    })
    .await;
    // "big" is over the size limit; "c" came when two were kept; replacing "a" is allowed.
    assert_eq!(
        retained_payloads(&addr, "retain-late", "retain/#").await,
        [b"two".to_vec(), b"uno".to_vec()]
    );
    // Deleting one makes room again.
    publisher
        .publish("retain/b", QoS::AtLeastOnce, true, "")
        .await
        .expect("queued");
    publisher
        .publish("retain/c", QoS::AtLeastOnce, true, "tres")
        .await
        .expect("queued");
    expect_packets(&mut events, 2, |p| matches!(p, Packet::PubAck(_))).await;
    assert_eq!(
        retained_payloads(&addr, "retain-later", "retain/#").await,
        [b"tres".to_vec(), b"uno".to_vec()]
    );
}
