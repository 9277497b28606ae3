//! 5.0 message properties and subscription options: user properties (order and repeats
//! kept), response topic, correlation data, content type and payload format indicator
//! passed through; No Local; Subscription Identifiers; Message Expiry Interval (the
//! remaining interval on delivery, expired messages not delivered, queued or retained).
//!
//! All with rumqttc's 5.0 client.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::{Filter, PublishProperties, SubscribeProperties};

use crate::broker_support::Broker;
use crate::client::{C5, QUIET, topic5, v5_options};

fn application_properties() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: Some("pp/replies".to_string()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 2, 255])),
        user_properties: vec![
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
            ("b".to_string(), "3".to_string()),
        ],
        subscription_identifiers: Vec::new(),
        content_type: Some("application/json".to_string()),
    }
}

#[tokio::test]
async fn v5_application_properties_pass_through() {
    let broker = Broker::single().await;
    let mut sub = C5::connect(v5_options(&broker, "pp-sub")).await;
    sub.subscribe("pp/t", Q5::ExactlyOnce).await;
    let mut publisher = C5::connect(v5_options(&broker, "pp-pub")).await;
    for qos in [Q5::AtMostOnce, Q5::AtLeastOnce, Q5::ExactlyOnce] {
        publisher
            .publish_with("pp/t", qos, false, "{}", application_properties())
            .await;
        let got = sub.next_publish().await;
        assert_eq!(got.qos, qos);
        let props = got.properties.expect("properties delivered");
        let sent = application_properties();
        assert_eq!(
            props.payload_format_indicator,
            sent.payload_format_indicator
        );
        assert_eq!(props.response_topic, sent.response_topic);
        assert_eq!(props.correlation_data, sent.correlation_data);
        assert_eq!(props.content_type, sent.content_type);
        assert_eq!(
            props.user_properties, sent.user_properties,
            "user properties in order, repeats kept [MQTT-3.3.2-18]"
        );
        assert_eq!(props.message_expiry_interval, None);
        assert!(props.subscription_identifiers.is_empty());
    }
}

#[tokio::test]
async fn v5_no_local_keeps_a_clients_own_messages_from_it() {
    let broker = Broker::single().await;
    let mut own = C5::connect(v5_options(&broker, "nl-own")).await;
    let mut no_local = Filter::new("nl/t", Q5::AtLeastOnce);
    no_local.nolocal = true;
    own.subscribe_filters(vec![no_local], None).await;
    let mut other = C5::connect(v5_options(&broker, "nl-other")).await;
    other.subscribe("nl/t", Q5::AtLeastOnce).await;

    own.publish("nl/t", Q5::AtLeastOnce, false, "from own")
        .await;
    assert_eq!(other.next_publish().await.payload.as_ref(), b"from own");
    other
        .publish("nl/t", Q5::AtLeastOnce, false, "from other")
        .await;
    let got = own.next_publish().await;
    assert_eq!(
        got.payload.as_ref(),
        b"from other",
        "its own message, published first, is not delivered to it"
    );
    own.expect_no_publish(QUIET, "No Local").await;
    // Without No Local a client gets its own messages.
    assert_eq!(other.next_publish().await.payload.as_ref(), b"from other");
}

async fn subscribe_with_id(sub: &mut C5, filter: &str, id: Option<usize>) {
    let properties = id.map(|id| SubscribeProperties {
        id: Some(id),
        user_properties: Vec::new(),
    });
    sub.subscribe_filters(vec![Filter::new(filter, Q5::AtLeastOnce)], properties)
        .await;
}

/// 5.0 §3.3.4: a message carries the Subscription Identifiers of the subscriptions it
/// matched; with two overlapping subscriptions the broker sends one copy with both, or one
/// copy per subscription, each with its own.
#[tokio::test]
async fn v5_subscription_identifiers_are_delivered() {
    let broker = Broker::single().await;
    let mut sub = C5::connect(v5_options(&broker, "si-sub")).await;
    subscribe_with_id(&mut sub, "si/a/#", Some(7)).await;
    subscribe_with_id(&mut sub, "si/+/b", Some(300)).await;
    subscribe_with_id(&mut sub, "si/c", None).await;

    let mut publisher = C5::connect(v5_options(&broker, "si-pub")).await;
    for topic in ["si/a/x", "si/c", "si/a/b"] {
        publisher
            .publish(topic, Q5::AtLeastOnce, false, topic)
            .await;
    }
    let mut overlapping = Vec::new();
    let mut single = None;
    let mut none = None;
    while single.is_none() || none.is_none() || overlapping.iter().flatten().count() < 2 {
        let got = sub.next_publish().await;
        let ids = got
            .properties
            .as_ref()
            .map(|p| p.subscription_identifiers.clone())
            .unwrap_or_default();
        match topic5(&got).as_str() {
            "si/a/x" => assert!(single.replace(ids).is_none(), "one copy of si/a/x"),
            "si/c" => assert!(none.replace(ids).is_none(), "one copy of si/c"),
            "si/a/b" => overlapping.push(ids),
            other => panic!("unexpected topic {other}"),
        }
    }
    assert_eq!(single, Some(vec![7]));
    assert_eq!(
        none,
        Some(vec![]),
        "no identifier for a subscription without one"
    );
    let all: BTreeSet<usize> = overlapping.iter().flatten().copied().collect();
    assert_eq!(
        all,
        BTreeSet::from([7, 300]),
        "copies of si/a/b: {overlapping:?}"
    );
    assert!(overlapping.iter().all(|ids| !ids.is_empty()));
    sub.expect_no_publish(QUIET, "no further copies").await;
}

fn expiring(seconds: Option<u32>) -> PublishProperties {
    PublishProperties {
        message_expiry_interval: seconds,
        ..PublishProperties::default()
    }
}

/// 5.0 §3.3.2.3.3: a message whose Message Expiry Interval has passed is not delivered, and
/// one that is delivered carries the interval less the time it waited. Checked for an
/// offline session's queue and for retained messages.
#[tokio::test]
async fn v5_message_expiry_interval() {
    let broker = Broker::single().await;
    let mut options = v5_options(&broker, "me-sub");
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(60));
    let mut sub = C5::connect(options.clone()).await;
    sub.subscribe("me/t", Q5::AtLeastOnce).await;

    // Online: the interval is passed on (less any time spent in the broker). At QoS 0, so
    // that no acknowledgement is still on its way when the client disconnects (that race
    // has its own test in `qos`).
    let mut publisher = C5::connect(v5_options(&broker, "me-pub")).await;
    publisher
        .publish_with("me/t", Q5::AtMostOnce, false, "live", expiring(Some(60)))
        .await;
    let got = sub.next_publish().await;
    let left = got.properties.and_then(|p| p.message_expiry_interval);
    assert!(
        matches!(left, Some(58..=60)),
        "live delivery: {left:?} of 60 s"
    );
    sub.disconnect().await;

    for (payload, expiry) in [("long", Some(60)), ("short", Some(1)), ("forever", None)] {
        publisher
            .publish_with("me/t", Q5::AtLeastOnce, false, payload, expiring(expiry))
            .await;
    }
    publisher
        .publish_with(
            "mer/short",
            Q5::AtLeastOnce,
            true,
            "short",
            expiring(Some(1)),
        )
        .await;
    publisher
        .publish_with(
            "mer/forever",
            Q5::AtLeastOnce,
            true,
            "forever",
            expiring(None),
        )
        .await;
    // Past the 1 s expiry with room for a broker that counts in whole seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut sub = C5::connect(options).await;
    assert!(sub.connack.session_present);
    let got = sub.next_publish().await;
    assert_eq!(got.payload.as_ref(), b"long");
    let left = got.properties.and_then(|p| p.message_expiry_interval);
    assert!(
        matches!(left, Some(50..=58)),
        "waited 3 s of 60: {left:?} left"
    );
    let got = sub.next_publish().await;
    assert_eq!(
        got.payload.as_ref(),
        b"forever",
        "the expired message, queued between the two, is not delivered"
    );
    assert_eq!(got.properties.and_then(|p| p.message_expiry_interval), None);
    sub.expect_no_publish(QUIET, "nothing expired").await;

    let mut late = C5::connect(v5_options(&broker, "me-late")).await;
    late.subscribe("mer/+", Q5::AtLeastOnce).await;
    let got = late.next_publish().await;
    assert_eq!(topic5(&got), "mer/forever");
    late.expect_no_publish(QUIET, "the expired retained message is gone")
        .await;
}
