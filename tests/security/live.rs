//! Rules that act on clients already connected, and on wills: a `raftmq acl set` reaches
//! a subscriber and a publisher without a reconnect (the very next delivery and publish
//! are checked against the new rules, and lifting them restores both); a will whose topic
//! the client may not publish is dropped at CONNECT, so a client that dies does not get
//! it published, while an allowed will is (the control).

use raftmq::mqtt::{Protocol, ReasonCode};

use crate::client::{Client, Opts, Version, v5_anonymous};
use crate::http::{acl_file, cli_ok};
use crate::wire::{Wire, connect_packet};
use crate::{start_node, unique};

const DENY_LIVE: &str = r##"
[[rule]]
permission = "deny"
action = "subscribe"
topics = ["live/quiet"]

[[rule]]
permission = "deny"
action = "publish"
topics = ["live/muted"]
"##;

#[tokio::test]
async fn a_rule_change_reaches_connected_clients_without_a_reconnect() {
    let cluster = start_node(&[]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    let id = unique("live");
    let dir = tempfile::tempdir().expect("temp dir");
    let deny = acl_file(&dir, "deny.toml", DENY_LIVE);
    let none = acl_file(&dir, "none.toml", "");

    // One of each protocol, subscribed before any rule exists.
    let mut v5 = v5_anonymous(&format!("{id}-sub5"), addr).await;
    v5.subscribe("live/#").await;
    let v4_id = format!("{id}-sub4");
    let mut v4 = Client::connect(Opts::new(Version::V311, &v4_id, addr)).await;
    v4.subscribe("live/#").await;
    let mut publisher = v5_anonymous(&format!("{id}-pub"), addr).await;

    publisher.publish_ok("live/quiet", "before").await;
    publisher.publish_ok("live/muted", "before").await;
    for subscriber in [&mut v5, &mut v4] {
        subscriber.expect_message("live/quiet", "before").await;
        subscriber.expect_message("live/muted", "before").await;
    }

    cli_ok(node, &["acl", "set", deny.to_str().expect("UTF-8")], None).await;
    // The subscriptions stay, but live/quiet is no longer delivered on them.
    publisher.publish_ok("live/quiet", "during").await;
    assert_eq!(publisher.publish("live/muted", "during").await, 0x87);
    publisher.publish_ok("live/open", "control").await;
    for subscriber in [&mut v5, &mut v4] {
        subscriber.expect_message("live/open", "control").await;
    }

    cli_ok(node, &["acl", "set", none.to_str().expect("UTF-8")], None).await;
    publisher.publish_ok("live/quiet", "after").await;
    publisher.publish_ok("live/muted", "after").await;
    for subscriber in [&mut v5, &mut v4] {
        subscriber.expect_message("live/quiet", "after").await;
        subscriber.expect_message("live/muted", "after").await;
        // Still the same connections: a lost one would have shown up as an event.
        subscriber
            .expect_quiet("nothing from the denied period")
            .await;
    }
}

const DENY_WILL: &str = r##"
[[rule]]
permission = "deny"
action = "publish"
topics = ["will/denied/#"]
"##;

#[tokio::test]
async fn a_will_on_a_denied_topic_is_not_published() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = acl_file(&dir, "acl.toml", DENY_WILL);
    let cluster = start_node(&["--acl-file", file.to_str().expect("UTF-8")]).await;
    let addr = cluster.nodes[0].mqtt_addr.as_str();
    let id = unique("will");
    let mut watcher = v5_anonymous(&format!("{id}-watcher"), addr).await;
    watcher.subscribe("will/#").await;

    for protocol in [Protocol::V5, Protocol::V311] {
        let denied_topic = format!("will/denied/{protocol:?}");
        let allowed_topic = format!("will/allowed/{protocol:?}");
        // The client is accepted (only its will is dropped), then dies.
        let denied = connect_packet(
            protocol,
            &format!("{id}-denied-{protocol:?}"),
            None,
            Some((&denied_topic, "should not be published")),
        );
        Wire::connected(addr, "127.0.0.1", denied)
            .await
            .drop_abruptly();
        // The control: the same death with an allowed will topic, after it.
        let allowed = connect_packet(
            protocol,
            &format!("{id}-allowed-{protocol:?}"),
            None,
            Some((&allowed_topic, "gone")),
        );
        let allowed = Wire::connected(addr, "127.0.0.1", allowed).await;
        allowed.drop_abruptly();
        watcher.expect_message(&allowed_topic, "gone").await;
        watcher
            .expect_quiet(&format!("{protocol:?}: no will on {denied_topic}"))
            .await;
    }

    // The ACL also stops a live client's own publish there (what the will rule mirrors).
    let connect = connect_packet(Protocol::V5, &format!("{id}-live"), None, None);
    let mut live = Wire::connected(addr, "127.0.0.1", connect).await;
    assert_eq!(
        live.publish("will/denied/direct", "x").await,
        ReasonCode::NotAuthorized
    );
}
