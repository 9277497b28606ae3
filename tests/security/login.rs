//! Who may connect: with `--allow-anonymous=false`, a CONNECT without credentials is
//! refused "not authorized" (5.0 0x87, 3.1.1 code 5) and a wrong password or unknown user
//! "bad user name or password" (0x86, code 4), in rumqttc and in paho-mqtt; with anonymous
//! access on, an unregistered name connects as anonymous but a registered one still needs
//! its password; and the failed-login throttle refuses even a correct password from an
//! address that failed too often (0x9F, 3.1.1 code 3) while other addresses log in.

use std::path::PathBuf;
use std::time::Duration;

use raftmq::mqtt::{Protocol, ReasonCode};

use crate::client::{Client, Opts, Version};
use crate::http::add_user;
use crate::wire::{OTHER_ADDRESS, Wire, connect_packet};
use crate::{start_node, unique};

/// A username and a password.
type Credentials<'a> = (&'a str, &'a str);

/// 3.1.1 CONNACK return codes (§3.2.2.3).
const V311_SERVER_UNAVAILABLE: u8 = 3;
const V311_BAD_CREDENTIALS: u8 = 4;
const V311_NOT_AUTHORIZED: u8 = 5;

#[tokio::test]
async fn anonymous_and_bad_passwords_are_refused_and_good_ones_accepted() {
    // No throttle here: this test fails logins on purpose (the throttle has its own test).
    let cluster = start_node(&["--allow-anonymous=false", "--auth-failure-limit=0"]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    add_user(node, "alice", "alice-pw").await;
    let id = unique("login");

    let cases: [(Version, Option<Credentials>, u8); 6] = [
        (Version::V5, None, 0x87),
        (Version::V311, None, V311_NOT_AUTHORIZED),
        (Version::V5, Some(("alice", "wrong")), 0x86),
        (
            Version::V311,
            Some(("alice", "wrong")),
            V311_BAD_CREDENTIALS,
        ),
        (Version::V5, Some(("nobody", "alice-pw")), 0x86),
        (Version::V311, Some(("nobody", "x")), V311_BAD_CREDENTIALS),
    ];
    for (i, (version, credentials, code)) in cases.into_iter().enumerate() {
        let client_id = format!("{id}-{i}");
        let mut opts = Opts::new(version, &client_id, addr);
        opts.credentials = credentials;
        let refused = Client::try_connect(opts).await.err();
        assert_eq!(refused, Some(code), "{version:?} with {credentials:?}");
    }

    // The right password, in both versions: connected and served (a round trip).
    for version in [Version::V5, Version::V311] {
        let client_id = format!("{id}-ok-{version:?}");
        let opts = Opts::new(version, &client_id, addr).login("alice", "alice-pw");
        let mut alice = Client::connect(opts).await;
        let topic = format!("login/{client_id}");
        alice.subscribe(&topic).await;
        alice.publish_ok(&topic, "hello").await;
        alice.expect_message(&topic, "hello").await;
    }
}

#[tokio::test]
async fn with_anonymous_access_only_unregistered_names_are_anonymous() {
    let cluster = start_node(&["--allow-anonymous=true", "--auth-failure-limit=0"]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    add_user(node, "alice", "alice-pw").await;
    let id = unique("anon");
    for version in [Version::V5, Version::V311] {
        let bad = if version == Version::V5 {
            0x86
        } else {
            V311_BAD_CREDENTIALS
        };
        let wrong = format!("{id}-wrong-{version:?}");
        let refused = Client::try_connect(Opts::new(version, &wrong, addr).login("alice", "x"))
            .await
            .err();
        assert_eq!(
            refused,
            Some(bad),
            "{version:?}: registered name, wrong password"
        );
        let stranger = format!("{id}-stranger-{version:?}");
        Client::connect(Opts::new(version, &stranger, addr).login("mallory", "anything")).await;
        let nobody = format!("{id}-nobody-{version:?}");
        Client::connect(Opts::new(version, &nobody, addr)).await;
    }
}

#[tokio::test]
async fn repeated_failures_throttle_the_address_but_not_others() {
    let cluster = start_node(&["--allow-anonymous=false", "--auth-failure-limit", "3"]).await;
    let node = &cluster.nodes[0];
    let addr = node.mqtt_addr.as_str();
    add_user(node, "alice", "alice-pw").await;
    add_user(node, "bob", "bob-pw").await;
    let id = unique("throttle");

    for i in 0..3 {
        let client_id = format!("{id}-bad{i}");
        let opts = Opts::new(Version::V5, &client_id, addr).login("alice", "guess");
        assert_eq!(
            Client::try_connect(opts).await.err(),
            Some(0x86),
            "failure {i} is checked"
        );
    }
    // The limit is reached: even the right password is refused without a check.
    let client_id = format!("{id}-right-v5");
    let opts = Opts::new(Version::V5, &client_id, addr).login("alice", "alice-pw");
    assert_eq!(Client::try_connect(opts).await.err(), Some(0x9F));
    let client_id = format!("{id}-right-v311");
    let opts = Opts::new(Version::V311, &client_id, addr).login("alice", "alice-pw");
    assert_eq!(
        Client::try_connect(opts).await.err(),
        Some(V311_SERVER_UNAVAILABLE),
        "3.1.1 has no 0x9F: the codec maps it to code 3"
    );
    // The throttle is per address, not per user: bob from 127.0.0.1 is refused too...
    let client_id = format!("{id}-bob-here");
    let opts = Opts::new(Version::V5, &client_id, addr).login("bob", "bob-pw");
    assert_eq!(Client::try_connect(opts).await.err(), Some(0x9F));
    // ... and from 127.0.0.2 he logs in, as does alice.
    for (user, password) in [("bob", "bob-pw"), ("alice", "alice-pw")] {
        let client_id = format!("{id}-{user}-elsewhere");
        let mut wire = Wire::open(addr, OTHER_ADDRESS, Protocol::V5).await;
        let connect = connect_packet(Protocol::V5, &client_id, Some((user, password)), None);
        let ack = wire.connect(connect).await;
        assert_eq!(
            ack.reason,
            ReasonCode::Success,
            "{user} from {OTHER_ADDRESS}"
        );
    }
}

fn login_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/login.py")
}

/// paho-mqtt 2.x, as `tests/interop_clients.rs` requires it (`.ci/run` installs it).
fn require_paho() {
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, paho.mqtt; sys.exit(int(paho.mqtt.__version__.split('.')[0]) < 2)",
        ])
        .output();
    match check {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "python3 has no paho-mqtt 2.x ({}); `.ci/run` installs it with \
             `python3 -m pip install 'paho-mqtt>=2,<3'`",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(e) => {
            panic!("python3 cannot be run ({e}); `.ci/run` expects it and installs paho-mqtt 2.x")
        }
    }
}

/// `tests/interop/login.py`: paho refused without credentials and with a wrong password,
/// then connected with the right one and served a round trip, in 3.1.1 and 5.0.
#[tokio::test]
async fn paho_logs_in_with_a_username_and_password() {
    require_paho();
    let cluster = start_node(&["--allow-anonymous=false", "--auth-failure-limit=0"]).await;
    let node = &cluster.nodes[0];
    add_user(node, "paho-user", "paho-pw").await;
    let port = crate::broker_support::port_of(&node.mqtt_addr).to_string();
    for protocol in ["311", "5"] {
        let prefix = unique(&format!("paho{protocol}"));
        let run = tokio::process::Command::new("python3")
            .arg("-u")
            .arg(login_script())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--protocol",
                protocol,
            ])
            .args(["--prefix", &prefix, "--timeout", "20"])
            .args(["--username", "paho-user", "--password", "paho-pw"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("login.py finished in time")
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.lines().last() == Some("ok"),
            "login.py --protocol {protocol} failed ({}):\n--- stdout\n{stdout}--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
