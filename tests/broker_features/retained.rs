//! Retained messages: set, replaced, deleted by an empty payload, delivered on subscribe
//! with RETAIN 1 (through wildcards, at the lower QoS) while live deliveries carry RETAIN 0
//! (3.1.1 and 5.0), and the 5.0 subscription options Retain Handling 0/1/2 and Retain As
//! Published. Retained-message expiry is in `properties`.

use rumqttc::QoS as Q4;
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule, SubscribeReasonCode};

use crate::broker_support::Broker;
use crate::client::{C4, C5, QUIET, topic5, v4_options, v5_options};

#[tokio::test]
async fn v4_retained_messages_set_replace_delete() {
    let broker = Broker::single().await;
    let mut publisher = C4::connect(v4_options(&broker, "rt4-pub")).await;
    let mut live = C4::connect(v4_options(&broker, "rt4-live")).await;
    live.subscribe("rt4/#", Q4::AtLeastOnce).await;

    publisher
        .publish("rt4/a", Q4::AtLeastOnce, true, "first")
        .await;
    publisher
        .publish("rt4/a", Q4::AtLeastOnce, true, "second")
        .await;
    publisher
        .publish("rt4/b", Q4::AtLeastOnce, true, "other")
        .await;
    for expected in ["first", "second", "other"] {
        let got = live.next_publish().await;
        assert_eq!(got.payload.as_ref(), expected.as_bytes());
        assert!(!got.retain, "3.1.1 §3.3.1.3: RETAIN 0 on a live delivery");
    }

    // A new subscription gets the latest retained message of each matching topic.
    let mut late = C4::connect(v4_options(&broker, "rt4-late")).await;
    late.subscribe("rt4/+", Q4::AtMostOnce).await;
    let mut got = vec![late.next_publish().await, late.next_publish().await];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got[0].topic, "rt4/a");
    assert_eq!(
        got[0].payload.as_ref(),
        b"second",
        "replaced by the newer one"
    );
    assert_eq!(got[1].payload.as_ref(), b"other");
    for publish in &got {
        assert!(
            publish.retain,
            "sent because of the new subscription: RETAIN 1"
        );
        assert_eq!(
            publish.qos,
            Q4::AtMostOnce,
            "at the subscription's lower QoS"
        );
    }
    late.expect_no_publish(QUIET, "one per topic").await;

    // An empty retained message deletes; it still reaches current subscribers.
    publisher.publish("rt4/a", Q4::AtLeastOnce, true, "").await;
    let got = live.next_publish().await;
    assert_eq!(got.topic, "rt4/a");
    assert!(got.payload.is_empty());
    let mut later = C4::connect(v4_options(&broker, "rt4-later")).await;
    later.subscribe("rt4/+", Q4::AtLeastOnce).await;
    let got = later.next_publish().await;
    assert_eq!(got.topic, "rt4/b", "rt4/a was deleted");
    later
        .expect_no_publish(QUIET, "no retained message left on rt4/a")
        .await;
}

#[tokio::test]
async fn v5_retained_messages_set_replace_delete() {
    let broker = Broker::single().await;
    let mut publisher = C5::connect(v5_options(&broker, "rt5-pub")).await;
    publisher
        .publish("rt5/a", Q5::ExactlyOnce, true, "first")
        .await;
    publisher
        .publish("rt5/a", Q5::ExactlyOnce, true, "second")
        .await;

    let mut sub = C5::connect(v5_options(&broker, "rt5-sub")).await;
    sub.subscribe("rt5/#", Q5::ExactlyOnce).await;
    let got = sub.next_publish().await;
    assert_eq!(got.payload.as_ref(), b"second");
    assert!(got.retain);
    assert_eq!(got.qos, Q5::ExactlyOnce);
    sub.expect_no_publish(QUIET, "only the latest").await;

    publisher.publish("rt5/a", Q5::AtLeastOnce, true, "").await;
    let got = sub.next_publish().await;
    assert!(got.payload.is_empty(), "the deletion reaches subscribers");
    assert!(
        !got.retain,
        "live delivery without Retain As Published: RETAIN 0"
    );
    let mut later = C5::connect(v5_options(&broker, "rt5-later")).await;
    later.subscribe("rt5/#", Q5::AtLeastOnce).await;
    later
        .expect_no_publish(QUIET, "the retained message was deleted")
        .await;
}

fn filter(path: &str, rule: RetainForwardRule, preserve_retain: bool) -> Filter {
    let mut filter = Filter::new(path, Q5::AtLeastOnce);
    filter.retain_forward_rule = rule;
    filter.preserve_retain = preserve_retain;
    filter
}

/// 5.0 §3.3.1.3: Retain Handling 0 sends retained messages at every subscribe, 1 only when
/// the subscription is new, 2 never.
#[tokio::test]
async fn v5_retain_handling_0_1_2() {
    let broker = Broker::single().await;
    let mut publisher = C5::connect(v5_options(&broker, "rh-pub")).await;
    publisher
        .publish("rh/t", Q5::AtLeastOnce, true, "kept")
        .await;

    let cases = [
        (RetainForwardRule::OnEverySubscribe, [true, true]),
        (RetainForwardRule::OnNewSubscribe, [true, false]),
        (RetainForwardRule::Never, [false, false]),
    ];
    for (rule, expected) in cases {
        let mut sub = C5::connect(v5_options(&broker, &format!("rh-sub-{rule:?}"))).await;
        for (attempt, delivered) in expected.into_iter().enumerate() {
            let codes = sub
                .subscribe_filters(vec![filter("rh/t", rule.clone(), false)], None)
                .await;
            assert!(matches!(codes[0], SubscribeReasonCode::Success(_)));
            if delivered {
                let got = sub.next_publish().await;
                assert_eq!(
                    got.payload.as_ref(),
                    b"kept",
                    "{rule:?}, subscribe #{attempt}"
                );
                assert!(got.retain);
            } else {
                sub.expect_no_publish(QUIET, &format!("{rule:?}, subscribe #{attempt}"))
                    .await;
            }
        }
    }
}

/// 5.0 §3.8.3.1: with Retain As Published a live delivery keeps the publisher's RETAIN
/// flag; without it RETAIN is 0. Retained messages sent at subscribe have RETAIN 1 either
/// way.
#[tokio::test]
async fn v5_retain_as_published() {
    let broker = Broker::single().await;
    let mut publisher = C5::connect(v5_options(&broker, "rap-pub")).await;
    publisher
        .publish("rap/t", Q5::AtLeastOnce, true, "old")
        .await;

    let mut keep = C5::connect(v5_options(&broker, "rap-keep")).await;
    let mut clear = C5::connect(v5_options(&broker, "rap-clear")).await;
    for (sub, rap) in [(&mut keep, true), (&mut clear, false)] {
        sub.subscribe_filters(
            vec![filter("rap/t", RetainForwardRule::OnEverySubscribe, rap)],
            None,
        )
        .await;
        let got = sub.next_publish().await;
        assert_eq!(got.payload.as_ref(), b"old");
        assert!(got.retain, "retained message at subscribe (RAP {rap})");
    }

    publisher
        .publish("rap/t", Q5::AtLeastOnce, true, "new")
        .await;
    publisher
        .publish("rap/t", Q5::AtLeastOnce, false, "plain")
        .await;
    for (sub, rap) in [(&mut keep, true), (&mut clear, false)] {
        let got = sub.next_publish().await;
        assert_eq!(topic5(&got), "rap/t");
        assert_eq!(got.payload.as_ref(), b"new");
        assert_eq!(got.retain, rap, "live retained message, RAP {rap}");
        let got = sub.next_publish().await;
        assert_eq!(got.payload.as_ref(), b"plain");
        assert!(!got.retain, "live non-retained message, RAP {rap}");
    }
}
