//! ACL rules from `--acl-file` and from `raftmq acl set`: a SUBSCRIBE gets 0x80 at each
//! denied filter's position and the granted QoS at the others (5.0 and 3.1.1); a denied
//! PUBLISH gets 5.0 PUBACK 0x87 (3.1.1 a plain PUBACK) and reaches nobody; a subscription
//! to `#` is not sent the topics a deny-subscribe rule covers; `%u` gives each user their
//! own subtree; a network rule holds clients from 127.0.0.2 (QoS 1 and 2); retained
//! messages are checked when sent on SUBSCRIBE; file rules come before the cluster's;
//! `%c` holds for shared subscriptions too.

use raftmq::mqtt::{Protocol, QoS, ReasonCode};
use serde_json::Value;

use crate::client::{Client, Opts, Version, v5_anonymous, v5_user};
use crate::http::{acl_file, add_user, cli_ok};
use crate::wire::{OTHER_ADDRESS, Wire, connect_packet};
use crate::{start_node, unique};

const FILE_RULES: &str = r##"
[[rule]]
permission = "deny"
action = "publish"
network = "127.0.0.2/32"
topics = ["#"]

[[rule]]
permission = "deny"
action = "subscribe"
topics = ["secret/#"]

[[rule]]
permission = "allow"
action = "subscribe"
username = "watcher"
topics = ["#"]

[[rule]]
permission = "allow"
action = "all"
topics = ["users/%u/#"]

[[rule]]
permission = "deny"
action = "all"
topics = ["users/#"]
"##;

/// Subscribes with a mix of allowed and denied filters, in 5.0 and 3.1.1; the SUBACKs
/// must be `expected` position by position.
async fn mixed_suback(
    addr: &str,
    login: Option<(&str, &str)>,
    filters: &[(&str, u8)],
    expected: &[u8],
) {
    for version in [Version::V5, Version::V311] {
        let id = unique("suback");
        let mut opts = Opts::new(version, &id, addr);
        opts.credentials = login;
        let mut client = Client::connect(opts).await;
        let codes = client.subscribe_many(filters).await;
        assert_eq!(
            codes, expected,
            "{version:?} {login:?} SUBSCRIBE {filters:?}"
        );
    }
}

#[tokio::test]
async fn file_rules_decide_subscribe_publish_and_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = acl_file(&dir, "acl.toml", FILE_RULES);
    let cluster = start_node(&["--acl-file", file.to_str().expect("UTF-8 path")]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    add_user(node, "alice", "alice-pw").await;
    add_user(node, "watcher", "watcher-pw").await;
    let id = unique("file");

    mixed_suback(
        addr,
        None,
        &[
            ("public/a", 1),
            ("secret/a", 1),
            ("public/b", 0),
            ("secret/#", 2),
        ],
        &[1, 0x80, 0, 0x80],
    )
    .await;
    mixed_suback(
        addr,
        Some(("alice", "alice-pw")),
        &[("users/bob/#", 1), ("users/alice/#", 2)],
        &[0x80, 2],
    )
    .await;

    let mut watcher = v5_user(&format!("{id}-watcher"), addr, "watcher", "watcher-pw").await;
    watcher.subscribe("#").await;
    let mut alice = v5_user(&format!("{id}-alice"), addr, "alice", "alice-pw").await;

    // %u: alice's own subtree, not bob's.
    alice.publish_ok("users/alice/x", "mine").await;
    watcher.expect_message("users/alice/x", "mine").await;
    assert_eq!(alice.publish("users/bob/x", "not mine").await, 0x87);
    alice.publish_ok("public/after-bob", "control 1").await;
    watcher
        .expect_message("public/after-bob", "control 1")
        .await;

    // An unregistered name connects (anonymous access is on) but as nobody: no %u tree.
    let pretender_id = format!("{id}-carol");
    let pretender = Opts::new(Version::V5, &pretender_id, addr).login("carol", "anything");
    let mut carol = Client::connect(pretender).await;
    assert_eq!(carol.publish("users/carol/x", "claimed").await, 0x87);

    // 3.1.1 cannot say "not authorized" in a PUBACK: a plain one, and the message dropped.
    let v4_id = format!("{id}-alice-v4");
    let mut alice_v4 =
        Client::connect(Opts::new(Version::V311, &v4_id, addr).login("alice", "alice-pw")).await;
    assert_eq!(alice_v4.publish("users/bob/y", "not mine either").await, 0);
    alice_v4.publish_ok("public/after-v4", "control 2").await;
    watcher.expect_message("public/after-v4", "control 2").await;

    // Publishing to secret/ is allowed; receiving it, even through `#`, is not.
    let mut anonymous = v5_anonymous(&format!("{id}-anon"), addr).await;
    anonymous.publish_ok("secret/plans", "psst").await;
    anonymous
        .publish_ok("public/after-secret", "control 3")
        .await;
    watcher
        .expect_message("public/after-secret", "control 3")
        .await;

    // From 127.0.0.2 nobody may publish anything: QoS 1 and 2, 5.0 and 3.1.1 (whose
    // PUBREC cannot refuse: its flow completes, and the message is dropped all the same).
    for (protocol, qos, reason) in [
        (Protocol::V5, QoS::AtLeastOnce, ReasonCode::NotAuthorized),
        (Protocol::V5, QoS::ExactlyOnce, ReasonCode::NotAuthorized),
        (Protocol::V311, QoS::AtLeastOnce, ReasonCode::Success),
        (Protocol::V311, QoS::ExactlyOnce, ReasonCode::Success),
    ] {
        let far_id = format!("{id}-far-{protocol:?}-{qos:?}");
        let connect = connect_packet(protocol, &far_id, None, None);
        let mut far = Wire::connected(addr, OTHER_ADDRESS, connect).await;
        let got = far
            .publish_with("public/from-far", "held", qos, false)
            .await;
        assert_eq!(got, reason, "{protocol:?} {qos:?} from {OTHER_ADDRESS}");
    }
    anonymous.publish_ok("public/from-near", "control 4").await;
    watcher
        .expect_message("public/from-near", "control 4")
        .await;

    watcher
        .expect_quiet("no denied message arrives late either")
        .await;
}

const FILE_FIRST: &str = r##"
[[rule]]
permission = "allow"
action = "publish"
topics = ["fixed/#"]
"##;

const CLUSTER_RULES: &str = r##"
[[rule]]
permission = "deny"
action = "subscribe"
topics = ["classified/#"]

[[rule]]
permission = "deny"
action = "publish"
topics = ["blocked/#", "fixed/#"]
"##;

#[tokio::test]
async fn cluster_rules_set_with_the_cli_apply_after_the_file_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = acl_file(&dir, "file.toml", FILE_FIRST);
    let cluster = start_node(&["--acl-file", file.to_str().expect("UTF-8 path")]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    let id = unique("cluster");

    // Before: nothing is denied.
    mixed_suback(addr, None, &[("open/a", 1), ("classified/a", 1)], &[1, 1]).await;

    let rules = acl_file(&dir, "cluster.toml", CLUSTER_RULES);
    cli_ok(
        node,
        &["acl", "set", rules.to_str().expect("UTF-8 path")],
        None,
    )
    .await;
    let shown = cli_ok(node, &["acl", "show", "--json"], None).await;
    let shown: Value = serde_json::from_str(&shown).expect("acl show --json is JSON");
    assert_eq!(shown["file"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(
        shown["cluster"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );
    assert_eq!(shown["cluster"][1]["topics"][0], "blocked/#", "{shown}");

    mixed_suback(
        addr,
        None,
        &[("open/a", 1), ("classified/a", 1), ("classified/#", 0)],
        &[1, 0x80, 0x80],
    )
    .await;

    // Retained messages are checked when they are sent on SUBSCRIBE, too.
    let connect = connect_packet(Protocol::V5, &format!("{id}-retainer"), None, None);
    let mut retainer = Wire::connected(addr, "127.0.0.1", connect).await;
    for topic in ["classified/kept", "open/kept"] {
        let got = retainer
            .publish_with(topic, "retained", QoS::AtLeastOnce, true)
            .await;
        assert!(!got.is_error(), "retained {topic}: {got:?}");
    }
    let mut watcher = v5_anonymous(&format!("{id}-watcher"), addr).await;
    watcher.subscribe("#").await;
    watcher.expect_message("open/kept", "retained").await;
    let mut publisher = v5_anonymous(&format!("{id}-pub"), addr).await;
    assert_eq!(publisher.publish("blocked/x", "no").await, 0x87);
    // The file's allow comes before the cluster's deny.
    publisher.publish_ok("fixed/x", "file rule").await;
    watcher.expect_message("fixed/x", "file rule").await;
    publisher.publish_ok("classified/x", "eyes only").await;
    publisher.publish_ok("open/after", "control").await;
    watcher.expect_message("open/after", "control").await;
    watcher.expect_quiet("nothing blocked or classified").await;
}

/// `%c` in a rule, for workers that share one group but each get only their own jobs.
const WORKER_RULES: &str = r##"
[[rule]]
permission = "allow"
action = "subscribe"
topics = ["jobs/%c/#"]

[[rule]]
permission = "deny"
action = "subscribe"
topics = ["jobs/#"]
"##;

#[tokio::test]
async fn client_id_rules_hold_for_shared_subscriptions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = acl_file(&dir, "acl.toml", WORKER_RULES);
    let cluster = start_node(&["--acl-file", file.to_str().expect("UTF-8 path")]).await;
    let addr = cluster.nodes[0].mqtt_addr.as_str();
    let worker = unique("worker");
    let mut client = v5_anonymous(&worker, addr).await;
    let own = format!("$share/pool/jobs/{worker}/#");
    let other = "$share/pool/jobs/someone-else/#";
    assert_eq!(
        client
            .subscribe_many(&[(&own, 1), (other, 1), ("$share/pool/jobs/#", 1)])
            .await,
        [1, 0x80, 0x80],
        "only the worker's own subtree, shared or not"
    );
    let mut publisher = v5_anonymous(&unique("dispatch"), addr).await;
    let topic = format!("jobs/{worker}/1");
    publisher.publish_ok(&topic, "job").await;
    client.expect_message(&topic, "job").await;
    publisher
        .publish_ok("jobs/someone-else/1", "not yours")
        .await;
    client.expect_quiet("another worker's job").await;
}
