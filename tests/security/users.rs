//! Users as replicated state, through `raftmq user ...` as an operator runs it: added on
//! one node and usable on every other, a password changed on a third node refused
//! everywhere (and an ACL rule set on one node reaching a client connected to another);
//! and a Mosquitto password file (made by `mosquitto_passwd`, both hash formats) imported
//! so its users log in with `mosquitto_pub` and their old passwords, their hashes upgraded
//! to argon2id by that first login.

use std::process::Stdio;
use std::time::Duration;

use raftmq::local_cluster::LocalNode;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{Client, Opts, Version, v5_user};
use crate::http::{acl_file, cli, cli_ok};
use crate::{APPLY_WAIT, WAIT, start_cluster, start_node, unique};

/// Whether `username` / `password` gets a 5.0 session on `node`: `Ok`, or the CONNACK
/// reason of the refusal.
async fn login(node: &LocalNode, username: &str, password: &str) -> Result<(), u8> {
    let id = unique("login");
    let opts = Opts::new(Version::V5, &id, &node.mqtt_addr).login(username, password);
    Client::try_connect(opts).await.map(drop)
}

/// Retries `login` until it gives `expected`, for up to [`APPLY_WAIT`]: a follower applies
/// what the leader committed a moment later.
async fn eventually(node: &LocalNode, username: &str, password: &str, expected: Result<(), u8>) {
    let deadline = Instant::now() + APPLY_WAIT;
    loop {
        let got = login(node, username, password).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{username}/{password} on {}: {got:?}, expected {expected:?} within {APPLY_WAIT:?}",
            node.mqtt_addr
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DENY_FLEET: &str = r##"
[[rule]]
permission = "deny"
action = "publish"
topics = ["fleet/#"]
"##;

#[tokio::test]
async fn users_and_rules_changed_on_one_node_apply_on_every_node() {
    // Logins fail on purpose (and while followers catch up): no throttle.
    let cluster = start_cluster(3, &["--allow-anonymous=false", "--auth-failure-limit=0"]).await;
    let [n0, n1, n2] = &cluster.nodes[..] else {
        unreachable!("three nodes")
    };
    assert_eq!(login(n2, "alice", "first").await, Err(0x86), "no alice yet");

    cli_ok(n0, &["user", "add", "alice", "--password", "first"], None).await;
    eventually(n2, "alice", "first", Ok(())).await;

    // The password from standard input, the way the CLI asks for it by default.
    cli_ok(n1, &["user", "passwd", "alice"], Some("second\n")).await;
    for node in [n0, n2] {
        eventually(node, "alice", "first", Err(0x86)).await;
        assert_eq!(login(node, "alice", "second").await, Ok(()));
    }

    let listed = cli_ok(n2, &["user", "list", "--json"], None).await;
    let listed: Value = serde_json::from_str(&listed).expect("user list --json is JSON");
    assert_eq!(
        listed["users"],
        serde_json::json!([{ "username": "alice", "hash": "argon2id" }])
    );

    // Cluster ACL rules travel the same way, to clients already connected elsewhere.
    let id = unique("fleet");
    let mut alice = v5_user(&id, &n2.mqtt_addr, "alice", "second").await;
    alice.publish_ok("fleet/x", "before").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = acl_file(&dir, "acl.toml", DENY_FLEET);
    cli_ok(n1, &["acl", "set", rules.to_str().expect("UTF-8")], None).await;
    let deadline = Instant::now() + APPLY_WAIT;
    loop {
        match alice.publish("fleet/x", "after").await {
            0x87 => break,
            reason => assert!(
                Instant::now() < deadline,
                "node 2 still takes fleet/x ({reason:#04x}) {APPLY_WAIT:?} after the rule"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    cli_ok(n2, &["user", "remove", "alice"], None).await;
    eventually(n0, "alice", "second", Err(0x86)).await;
    let again = cli(n1, &["user", "remove", "alice"], None).await;
    assert!(!again.status.success(), "removing a removed user fails");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("user_not_found"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// `mosquitto_passwd` with `args`; it must succeed.
fn mosquitto_passwd(args: &[&str]) {
    let output = std::process::Command::new("mosquitto_passwd")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_passwd (Debian package `mosquitto`; `.ci/run` installs it)");
    assert!(
        output.status.success(),
        "mosquitto_passwd {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `mosquitto_pub` publishing one message as `username`; whether it exited 0.
async fn mosquitto_pub(node: &LocalNode, username: &str, password: &str, topic: &str) -> bool {
    let port = crate::broker_support::port_of(&node.mqtt_addr).to_string();
    let run = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port, "-V", "mqttv311", "-q", "1"])
        .args(["-i", &unique("mosq-pub"), "-t", topic, "-m", "hi"])
        .args(["-u", username, "-P", password])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT * 2, run)
        .await
        .expect("mosquitto_pub finished in time")
        .expect("mosquitto_pub (Debian package `mosquitto-clients`)");
    output.status.success()
}

/// The hash kinds `user list --json` shows, by username.
async fn hash_kinds(node: &LocalNode) -> Vec<(String, String)> {
    let listed = cli_ok(node, &["user", "list", "--json"], None).await;
    let listed: Value = serde_json::from_str(&listed).expect("user list --json is JSON");
    let mut kinds: Vec<(String, String)> = listed["users"]
        .as_array()
        .expect("a users array")
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap_or("?").to_string(),
                u["hash"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn a_mosquitto_password_file_is_imported_and_upgraded_at_first_login() {
    let cluster = start_node(&["--allow-anonymous=false", "--auth-failure-limit=0"]).await;
    let node = &cluster.nodes[0];
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("passwd");
    let path = file.to_str().expect("a UTF-8 path");
    mosquitto_passwd(&["-c", "-b", path, "alice", "alice-pw"]);
    mosquitto_passwd(&["-H", "sha512", "-b", path, "bob", "bob-pw"]);
    let text = std::fs::read_to_string(&file).expect("the password file");
    assert!(
        text.contains("alice:$7$") && text.contains("bob:$6$"),
        "{text}"
    );

    let imported = cli_ok(node, &["user", "import", path], None).await;
    assert!(imported.contains("\"imported\":2"), "{imported}");
    let mosquitto_kinds = vec![
        ("alice".to_string(), "mosquitto-pbkdf2-sha512".to_string()),
        ("bob".to_string(), "mosquitto-sha512".to_string()),
    ];
    assert_eq!(hash_kinds(node).await, mosquitto_kinds, "as imported");

    let topic = format!("import/{}", unique("t"));
    assert!(
        !mosquitto_pub(node, "alice", "bob-pw", &topic).await,
        "a wrong password fails"
    );
    assert_eq!(
        hash_kinds(node).await,
        mosquitto_kinds,
        "a failed login upgrades nothing"
    );
    for (user, password) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
        assert!(
            mosquitto_pub(node, user, password, &topic).await,
            "{user} logs in with the password of the Mosquitto file"
        );
    }

    // The upgrade is proposed after the login: poll for it.
    let argon2 = vec![
        ("alice".to_string(), "argon2id".to_string()),
        ("bob".to_string(), "argon2id".to_string()),
    ];
    let deadline = Instant::now() + APPLY_WAIT;
    loop {
        let kinds = hash_kinds(node).await;
        if kinds == argon2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hashes not upgraded within {APPLY_WAIT:?}: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The new hashes take the same passwords, and only them.
    for (user, password) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
        assert!(mosquitto_pub(node, user, password, &topic).await, "{user}");
        assert!(!mosquitto_pub(node, user, "nope", &topic).await, "{user}");
    }
}
