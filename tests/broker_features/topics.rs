//! Topics starting with `$` (MQTT 3.1.1 and 5.0 §4.7.2): not matched by a filter starting
//! with `#` or `+`, matched by one naming the `$` level; and a client's PUBLISH to
//! `$SYS/...` reaches no subscriber (the broker may refuse it in its PUBACK, or drop it
//! silently).

use raftmq::mqtt::{Protocol, QoS};

use crate::broker_support::Broker;
use crate::client::QUIET;
use crate::raw::{Raw, publish};

async fn dollar_topics_need_an_explicit_first_level(protocol: Protocol) {
    let broker = Broker::single().await;
    let addr = broker.addr(0);
    let tag = format!("dt{}", protocol.level());
    let mut subs = Vec::new();
    for (name, filter) in [("hash", "#"), ("plus", "+/a"), ("plus2", "+/+")] {
        let mut sub = Raw::connect_simple(&addr, protocol, &format!("{tag}-{name}")).await;
        sub.subscribe(filter, QoS::AtLeastOnce).await;
        subs.push((filter, sub));
    }
    let mut dollar = Raw::connect_simple(&addr, protocol, &format!("{tag}-dollar")).await;
    dollar
        .subscribe(&format!("${tag}/#"), QoS::AtLeastOnce)
        .await;
    let mut dollar_plus = Raw::connect_simple(&addr, protocol, &format!("{tag}-dollar-plus")).await;
    dollar_plus
        .subscribe(&format!("${tag}/+"), QoS::AtLeastOnce)
        .await;

    let mut publisher = Raw::connect_simple(&addr, protocol, &format!("{tag}-pub")).await;
    let dollar_topic = format!("${tag}/a");
    publisher
        .publish_complete(publish(&dollar_topic, QoS::AtLeastOnce, 0, b"reserved"))
        .await;
    publisher
        .publish_complete(publish(&format!("{tag}/a"), QoS::AtLeastOnce, 0, b"plain"))
        .await;

    for sub in [&mut dollar, &mut dollar_plus] {
        let got = sub.expect_publish().await;
        assert_eq!(
            got.topic, dollar_topic,
            "a filter naming the $ level matches"
        );
        sub.puback(&got).await;
    }
    // The plain message was published after the $ one: a wildcard subscriber that got
    // both would see the $ one first.
    for (filter, sub) in &mut subs {
        let got = sub.expect_publish().await;
        assert_eq!(
            got.topic,
            format!("{tag}/a"),
            "{filter} must not match {dollar_topic}"
        );
        sub.puback(&got).await;
        sub.expect_silence(QUIET, &format!("{filter} gets only the plain message"))
            .await;
    }
}

#[tokio::test]
async fn v4_dollar_topics_are_not_matched_by_leading_wildcards() {
    dollar_topics_need_an_explicit_first_level(Protocol::V311).await;
}

#[tokio::test]
async fn v5_dollar_topics_are_not_matched_by_leading_wildcards() {
    dollar_topics_need_an_explicit_first_level(Protocol::V5).await;
}

/// A client publishes to `$SYS/...` at each QoS; a subscriber of that `$SYS` subtree gets
/// none of it, while the same client's ordinary message gets through.
async fn publishing_to_sys_reaches_nobody(protocol: Protocol) {
    let broker = Broker::single().await;
    let addr = broker.addr(0);
    let tag = format!("sys{}", protocol.level());
    let sys_topic = format!("$SYS/raftmq-test/{tag}");
    let mut watcher = Raw::connect_simple(&addr, protocol, &format!("{tag}-watcher")).await;
    watcher
        .subscribe(&format!("{sys_topic}/#"), QoS::AtLeastOnce)
        .await;
    watcher
        .subscribe(&format!("{tag}/after"), QoS::AtLeastOnce)
        .await;

    let mut publisher = Raw::connect_simple(&addr, protocol, &format!("{tag}-pub")).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        // In 5.0 the acknowledgement may carry a refusal (0x87 Not authorized, say).
        publisher
            .publish_complete(publish(&format!("{sys_topic}/x"), qos, 0, b"forged"))
            .await;
    }
    publisher
        .publish_complete(publish(
            &format!("{tag}/after"),
            QoS::AtLeastOnce,
            0,
            b"ordinary",
        ))
        .await;
    let got = watcher.expect_publish().await;
    assert_eq!(
        got.payload.as_ref(),
        b"ordinary",
        "no client message on {sys_topic}: {got:?}"
    );
    watcher.puback(&got).await;
    watcher.expect_silence(QUIET, "nothing on $SYS").await;
}

#[tokio::test]
async fn v4_publishing_to_sys_does_not_reach_subscribers() {
    publishing_to_sys_reaches_nobody(Protocol::V311).await;
}

#[tokio::test]
async fn v5_publishing_to_sys_does_not_reach_subscribers() {
    publishing_to_sys_reaches_nobody(Protocol::V5).await;
}
