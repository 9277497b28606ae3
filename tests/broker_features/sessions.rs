//! Offline queues of persistent sessions: messages published while the client is away are
//! delivered in order when it comes back (3.1.1 and 5.0), and raftmq's
//! `--max-queued-messages` bounds the queue beyond the in-flight window, dropping the
//! oldest waiting message and never one in flight.

use raftmq::mqtt::{Protocol, QoS};
use rumqttc::QoS as Q4;
use rumqttc::v5::mqttbytes::QoS as Q5;

use crate::broker_support::Broker;
use crate::client::{C4, C5, QUIET, skip_on_mosquitto, v4_options, v5_options};
use crate::raw::{Raw, connect_packet};

#[tokio::test]
async fn v4_messages_for_an_offline_session_are_delivered_in_order() {
    let broker = Broker::single().await;
    let mut options = v4_options(&broker, "oq4-sub");
    options.set_clean_session(false);
    let mut sub = C4::connect(options.clone()).await;
    sub.subscribe("oq4/t", Q4::ExactlyOnce).await;
    sub.kill().await;

    let mut publisher = C4::connect(v4_options(&broker, "oq4-pub")).await;
    for i in 0..10 {
        let qos = if i % 2 == 0 {
            Q4::AtLeastOnce
        } else {
            Q4::ExactlyOnce
        };
        publisher.publish("oq4/t", qos, false, format!("{i}")).await;
    }
    let mut sub = C4::connect(options).await;
    assert!(sub.connack.session_present);
    // 3.1.1 orders messages per topic and QoS: check each QoS's sequence.
    let mut seen = [Vec::new(), Vec::new()];
    for _ in 0..10 {
        let got = sub.next_publish().await;
        assert!(!got.dup, "never sent before: DUP 0");
        let i: usize = std::str::from_utf8(&got.payload)
            .expect("UTF-8 payload")
            .parse()
            .expect("a number");
        seen[i % 2].push(i);
    }
    assert_eq!(seen[0], [0, 2, 4, 6, 8], "QoS 1 in order");
    assert_eq!(seen[1], [1, 3, 5, 7, 9], "QoS 2 in order");
    sub.expect_no_publish(QUIET, "each once").await;
}

#[tokio::test]
async fn v5_messages_for_an_offline_session_are_delivered_in_order() {
    let broker = Broker::single().await;
    let mut options = v5_options(&broker, "oq5-sub");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(60));
    let mut sub = C5::connect(options.clone()).await;
    sub.subscribe("oq5/t", Q5::AtLeastOnce).await;
    sub.disconnect().await;

    let mut publisher = C5::connect(v5_options(&broker, "oq5-pub")).await;
    for i in 0..10 {
        publisher
            .publish("oq5/t", Q5::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    let mut sub = C5::connect(options).await;
    assert!(sub.connack.session_present);
    for i in 0..10 {
        let got = sub.next_publish().await;
        assert_eq!(got.payload.as_ref(), format!("{i}").as_bytes());
    }
    sub.expect_no_publish(QUIET, "each once").await;
}

/// raftmq-only (`--max-queued-messages 3 --max-inflight 2`): a connected 3.1.1 subscriber
/// that acknowledges nothing holds messages 0 and 1 in flight; of 2..9 only the newest
/// three wait. Acknowledging lets exactly 7, 8 and 9 through.
#[tokio::test]
async fn queue_overflow_drops_the_oldest_waiting_message_not_those_in_flight() {
    let broker = Broker::single_with(&["--max-queued-messages", "3", "--max-inflight", "2"]).await;
    if skip_on_mosquitto(&broker, "--max-queued-messages is a raftmq setting") {
        return;
    }
    let addr = broker.addr(0);
    let mut connect = connect_packet(Protocol::V311, "ovf-sub");
    connect.clean_start = false;
    let (mut sub, _) = Raw::connect(&addr, connect).await;
    sub.subscribe("ovf/t", QoS::AtLeastOnce).await;

    let mut publisher = C4::connect(v4_options(&broker, "ovf-pub")).await;
    for i in 0..10 {
        publisher
            .publish("ovf/t", Q4::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    let zero = sub.expect_publish().await;
    let one = sub.expect_publish().await;
    assert_eq!(zero.payload.as_ref(), b"0");
    assert_eq!(one.payload.as_ref(), b"1");
    sub.expect_silence(QUIET, "the in-flight window of 2 is full")
        .await;
    sub.puback(&zero).await;
    sub.puback(&one).await;
    for expected in ["7", "8", "9"] {
        let got = sub.expect_publish().await;
        assert_eq!(
            got.payload.as_ref(),
            expected.as_bytes(),
            "2..6 were dropped, oldest first"
        );
        sub.puback(&got).await;
    }
    sub.expect_silence(QUIET, "nothing else was kept").await;
}

/// raftmq-only (`--max-queued-messages 3 --max-inflight 2`): an offline 5.0 session keeps
/// the newest three waiting messages. Whether the in-flight window is filled while the
/// client is away is the broker's choice: if it is, messages 0 and 1 took it and come back
/// too (they are in flight, never dropped).
#[tokio::test]
async fn offline_queue_overflow_keeps_the_newest_messages() {
    let broker = Broker::single_with(&["--max-queued-messages", "3", "--max-inflight", "2"]).await;
    if skip_on_mosquitto(&broker, "--max-queued-messages is a raftmq setting") {
        return;
    }
    let mut options = v5_options(&broker, "ovo-sub");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(60));
    let mut sub = C5::connect(options.clone()).await;
    sub.subscribe("ovo/t", Q5::AtLeastOnce).await;
    sub.disconnect().await;

    let mut publisher = C5::connect(v5_options(&broker, "ovo-pub")).await;
    for i in 0..10 {
        publisher
            .publish("ovo/t", Q5::AtLeastOnce, false, format!("{i}"))
            .await;
    }
    let mut sub = C5::connect(options).await;
    assert!(sub.connack.session_present);
    let mut got = Vec::new();
    loop {
        let publish = sub.next_publish().await;
        let i: u32 = std::str::from_utf8(&publish.payload)
            .expect("UTF-8 payload")
            .parse()
            .expect("a number");
        got.push(i);
        if i == 9 {
            break;
        }
    }
    sub.expect_no_publish(QUIET, "9 was the last").await;
    assert!(
        [vec![7, 8, 9], vec![0, 7, 8, 9], vec![0, 1, 7, 8, 9]].contains(&got),
        "the newest 3 waiting messages, after those in flight if any: {got:?}"
    );
}
