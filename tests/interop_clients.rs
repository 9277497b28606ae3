//! Interop with MQTT clients nobody here wrote, run as separate processes against one broker
//! (raftmq, or Mosquitto with `RAFTMQ_TEST_BROKER=mosquitto` to check the expectations):
//! the Debian `mosquitto_pub` / `mosquitto_sub` command-line clients and the `paho-mqtt` 2.x
//! Python client (scripts in `tests/interop/`), in MQTT 3.1.1 and 5.0.
//!
//! Covered: publish/subscribe at QoS 0, 1 and 2 (in order, at the granted QoS, with QoS
//! downgrade), publishers and subscribers of different protocol versions, retained messages
//! (set, received by a later subscriber with RETAIN, deleted by an empty payload), the will
//! of a client that is SIGKILLed (published) or that disconnects normally (discarded), and a
//! persistent session that is resumed with session present and every message published
//! while it was away.
//!
//! Every process is bounded in time: the scripts carry their own watchdog (`--timeout`),
//! `mosquitto_sub` runs with `-W`, and every wait here has a timeout. A missing client fails
//! the test with a message saying that `.ci/run` installs it.

mod broker_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use broker_support::{Broker, run_process};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

/// The longest any client process may run; each script's own watchdog fires earlier
/// (`SCRIPT_TIMEOUT_SECS`) and says what it was waiting for.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
const SCRIPT_TIMEOUT_SECS: &str = "20";
/// `mosquitto_sub -W`: seconds after which it gives up waiting for its messages.
const SUB_WAIT_SECS: u32 = 20;

#[derive(Debug, Clone, Copy)]
enum Version {
    V311,
    V5,
}

impl Version {
    fn mosquitto(self) -> &'static str {
        match self {
            Version::V311 => "mqttv311",
            Version::V5 => "mqttv5",
        }
    }

    fn paho(self) -> &'static str {
        match self {
            Version::V311 => "311",
            Version::V5 => "5",
        }
    }
}

/// A prefix for the client ids and topics of one test, unique across tests and runs.
fn unique(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "interop-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

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

fn require_mosquitto_clients() {
    for tool in ["mosquitto_pub", "mosquitto_sub"] {
        if let Err(e) = std::process::Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            panic!(
                "{tool} cannot be run ({e}); `.ci/run` installs it (Debian package \
                 `mosquitto-clients`)"
            );
        }
    }
}

/// The arguments every script takes.
fn script_args(broker: &Broker, version: Version, prefix: &str) -> Vec<String> {
    [
        "--host",
        "127.0.0.1",
        "--port",
        &broker.port(0).to_string(),
        "--protocol",
        version.paho(),
        "--prefix",
        prefix,
        "--timeout",
        SCRIPT_TIMEOUT_SECS,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn python(name: &str, args: &[String]) -> Command {
    let mut command = Command::new("python3");
    command
        .arg("-u")
        .arg(script(name))
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a script to its end; it must exit 0 and print `ok` last.
async fn run_script(broker: &Broker, name: &str, version: Version, prefix: &str, extra: &[&str]) {
    let mut args = script_args(broker, version, prefix);
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = timeout(PROCESS_TIMEOUT, python(name, &args).output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within {PROCESS_TIMEOUT:?}"))
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().last() == Some("ok"),
        "{name} --protocol {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        version.paho(),
        output.status
    );
}

/// A running `mosquitto_sub` that prints each message as `topic|qos|retain|payload`.
struct MosquittoSub {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    log: Vec<String>,
}

impl MosquittoSub {
    /// Starts `mosquitto_sub` for `count` messages and returns once its SUBACK, granting
    /// `qos`, has arrived.
    async fn start(
        broker: &Broker,
        version: Version,
        filter: &str,
        qos: u8,
        count: u32,
        client_id: &str,
    ) -> MosquittoSub {
        // Into a pipe, stdio buffers whole blocks: the SUBACK line would only come out at
        // exit. `stdbuf -oL` (coreutils) makes it line-buffered.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &broker.port(0).to_string()])
            .args(["-V", version.mosquitto(), "-i", client_id])
            .args(["-q", &qos.to_string(), "-t", filter])
            .args(["-C", &count.to_string(), "-W", &SUB_WAIT_SECS.to_string()])
            // -d prints the packets exchanged, SUBACK included.
            .args(["-d", "-F", "%t|%q|%r|%p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start mosquitto_sub");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut sub = MosquittoSub {
            child,
            stdout,
            log: Vec::new(),
        };
        let granted = timeout(PROCESS_TIMEOUT, async {
            while let Ok(Some(line)) = sub.stdout.next_line().await {
                sub.log.push(line.clone());
                if let Some(rest) = line.strip_prefix("Subscribed (mid: ") {
                    return rest.split(": ").nth(1).map(str::to_owned);
                }
            }
            None
        })
        .await;
        match granted {
            Ok(Some(granted)) => assert_eq!(
                granted,
                qos.to_string(),
                "mosquitto_sub {client_id}: SUBACK granted QoS {granted}, asked {qos}"
            ),
            // It ended before printing a SUBACK: either it failed, or a retained message,
            // which the server may send before the SUBACK (§3.8.4), was all it waited for.
            // `finish` tells which.
            Ok(None) => {}
            Err(_) => panic!(
                "mosquitto_sub {client_id} got no SUBACK within {PROCESS_TIMEOUT:?}:\n{}",
                sub.log.join("\n")
            ),
        }
        sub
    }

    async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = timeout(Duration::from_secs(5), stderr.read_to_string(&mut text)).await;
        }
        text
    }

    /// Waits for `mosquitto_sub` to exit (after its `-C` messages, or `-W`) and returns its
    /// exit code and the messages it printed.
    async fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let waited = timeout(PROCESS_TIMEOUT, async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                self.log.push(line);
            }
            self.child.wait().await
        })
        .await;
        let status = match waited {
            Ok(status) => status.expect("wait for mosquitto_sub"),
            Err(_) => panic!(
                "mosquitto_sub still running after {PROCESS_TIMEOUT:?}:\n{}",
                self.log.join("\n")
            ),
        };
        let stderr = self.stderr().await;
        for line in &self.log {
            eprintln!("mosquitto_sub: {line}");
        }
        if !stderr.is_empty() {
            eprintln!("mosquitto_sub stderr: {stderr}");
        }
        let messages = self
            .log
            .iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed (mid: "))
            .cloned()
            .collect();
        (status.code(), messages)
    }
}

/// Runs `mosquitto_pub` with `args` (and `stdin` for `-l`); it must exit 0.
async fn mosquitto_pub(broker: &Broker, version: Version, args: &[&str], stdin: Option<&str>) {
    let mut command = tokio::process::Command::new("mosquitto_pub");
    command
        .args(["-h", "127.0.0.1", "-p", &broker.port(0).to_string()])
        .args(["-V", version.mosquitto()])
        .args(args);
    let output = run_process(command, stdin, PROCESS_TIMEOUT).await;
    assert!(
        output.status.success(),
        "mosquitto_pub {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `mosquitto_pub -l` publishes these lines, one message each, and `mosquitto_sub` gets
/// them in this order.
const LINES: [&str; 3] = ["first", "second message", "third"];

async fn mosquitto_round_trips(pub_version: Version, sub_version: Version, test: &str) {
    require_mosquitto_clients();
    let broker = Broker::single().await;
    let prefix = unique(test);
    for qos in 0..=2u8 {
        let topic = format!("{prefix}/qos{qos}");
        let sub = MosquittoSub::start(
            &broker,
            sub_version,
            &topic,
            qos,
            LINES.len() as u32,
            &format!("{prefix}-sub{qos}"),
        )
        .await;
        let stdin = LINES.join("\n") + "\n";
        let qos_arg = qos.to_string();
        mosquitto_pub(
            &broker,
            pub_version,
            &["-q", &qos_arg, "-t", &topic, "-l"],
            Some(&stdin),
        )
        .await;
        let (code, messages) = sub.finish().await;
        let expected: Vec<String> = LINES
            .iter()
            .map(|line| format!("{topic}|{qos}|0|{line}"))
            .collect();
        assert_eq!(
            (code, messages),
            (Some(0), expected),
            "QoS {qos}: {pub_version:?} publisher to {sub_version:?} subscriber"
        );
    }
}

#[tokio::test]
async fn mosquitto_clients_publish_and_subscribe_at_each_qos_v311() {
    mosquitto_round_trips(Version::V311, Version::V311, "mosq-v311").await;
}

#[tokio::test]
async fn mosquitto_clients_publish_and_subscribe_at_each_qos_v5() {
    mosquitto_round_trips(Version::V5, Version::V5, "mosq-v5").await;
}

/// A message crosses protocol versions: 3.1.1 publisher to 5.0 subscriber and back.
#[tokio::test]
async fn mosquitto_clients_across_protocol_versions() {
    mosquitto_round_trips(Version::V311, Version::V5, "mosq-311to5").await;
    mosquitto_round_trips(Version::V5, Version::V311, "mosq-5to311").await;
}

#[tokio::test]
async fn mosquitto_clients_retained_message_set_received_and_deleted() {
    require_mosquitto_clients();
    let broker = Broker::single().await;
    let prefix = unique("mosq-retained");
    let topic = format!("{prefix}/retained");
    let version = Version::V5;

    mosquitto_pub(
        &broker,
        version,
        &["-q", "1", "-r", "-t", &topic, "-m", "kept"],
        None,
    )
    .await;
    let later = MosquittoSub::start(&broker, version, &topic, 1, 1, &format!("{prefix}-a")).await;
    assert_eq!(
        later.finish().await,
        (Some(0), vec![format!("{topic}|1|1|kept")]),
        "a subscriber after the retained publish gets it, RETAIN set"
    );

    // -n: an empty payload, which deletes the retained message.
    mosquitto_pub(
        &broker,
        version,
        &["-q", "1", "-r", "-t", &topic, "-n"],
        None,
    )
    .await;
    let after_delete =
        MosquittoSub::start(&broker, Version::V311, &topic, 1, 1, &format!("{prefix}-b")).await;
    // A retained message would be sent on SUBSCRIBE, before this marker published after
    // the SUBACK: the first message must be the marker.
    mosquitto_pub(
        &broker,
        version,
        &["-q", "1", "-t", &topic, "-m", "marker"],
        None,
    )
    .await;
    assert_eq!(
        after_delete.finish().await,
        (Some(0), vec![format!("{topic}|1|0|marker")]),
        "no retained message after the empty retained publish"
    );
}

/// A paho client with a will is SIGKILLed: the broker sees its socket close without a
/// DISCONNECT and publishes the will, which a `mosquitto_sub` receives.
async fn will_published_when_the_client_is_killed(version: Version, test: &str) {
    require_paho();
    require_mosquitto_clients();
    let broker = Broker::single().await;
    let prefix = unique(test);
    let will_topic = format!("{prefix}/will");
    let watcher =
        MosquittoSub::start(&broker, version, &will_topic, 1, 1, &format!("{prefix}-w")).await;

    let mut args = script_args(&broker, version, &prefix);
    args.extend(["--will-topic", &will_topic, "--mode", "kill"].map(str::to_owned));
    let mut victim = python("will_client.py", &args)
        .spawn()
        .expect("start will_client.py");
    let mut lines = BufReader::new(victim.stdout.take().expect("piped stdout")).lines();
    let connected = timeout(PROCESS_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "connected" {
                return true;
            }
        }
        false
    })
    .await;
    if connected != Ok(true) {
        let _ = victim.start_kill();
        let output = victim
            .wait_with_output()
            .await
            .expect("wait for the script");
        panic!(
            "will_client.py never connected:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // `kill` sends SIGKILL: no DISCONNECT, the socket is closed by the kernel.
    victim.kill().await.expect("SIGKILL will_client.py");

    assert_eq!(
        watcher.finish().await,
        (
            Some(0),
            vec![format!("{will_topic}|1|0|gone: {prefix}-will")]
        ),
        "the will of the killed client"
    );
}

#[tokio::test]
async fn will_published_when_a_paho_client_is_killed_v311() {
    will_published_when_the_client_is_killed(Version::V311, "will-kill-v311").await;
}

#[tokio::test]
async fn will_published_when_a_paho_client_is_killed_v5() {
    will_published_when_the_client_is_killed(Version::V5, "will-kill-v5").await;
}

/// A normal DISCONNECT discards the will.
#[tokio::test]
async fn will_discarded_when_a_paho_client_disconnects_normally() {
    require_paho();
    require_mosquitto_clients();
    let broker = Broker::single().await;
    for version in [Version::V311, Version::V5] {
        let prefix = unique("will-disconnect");
        let will_topic = format!("{prefix}/will");
        let watcher =
            MosquittoSub::start(&broker, version, &will_topic, 1, 1, &format!("{prefix}-w")).await;
        run_script(
            &broker,
            "will_client.py",
            version,
            &prefix,
            &["--will-topic", &will_topic, "--mode", "disconnect"],
        )
        .await;
        // The will would have been published when the DISCONNECT was handled, before this
        // marker (published after the script ended): the first message must be the marker.
        mosquitto_pub(
            &broker,
            version,
            &["-q", "1", "-t", &will_topic, "-m", "marker"],
            None,
        )
        .await;
        assert_eq!(
            watcher.finish().await,
            (Some(0), vec![format!("{will_topic}|1|0|marker")]),
            "{version:?}: no will after a normal disconnect"
        );
    }
}

#[tokio::test]
async fn paho_publish_and_subscribe_at_each_qos_v311() {
    require_paho();
    let broker = Broker::single().await;
    run_script(
        &broker,
        "pubsub.py",
        Version::V311,
        &unique("paho-v311"),
        &[],
    )
    .await;
}

#[tokio::test]
async fn paho_publish_and_subscribe_at_each_qos_v5() {
    require_paho();
    let broker = Broker::single().await;
    run_script(&broker, "pubsub.py", Version::V5, &unique("paho-v5"), &[]).await;
}

#[tokio::test]
async fn paho_retained_message_set_received_and_deleted() {
    require_paho();
    let broker = Broker::single().await;
    for version in [Version::V311, Version::V5] {
        run_script(
            &broker,
            "retained.py",
            version,
            &unique("paho-retained"),
            &[],
        )
        .await;
    }
}

#[tokio::test]
async fn paho_persistent_session_resumes_with_its_messages_v311() {
    require_paho();
    let broker = Broker::single().await;
    run_script(
        &broker,
        "session.py",
        Version::V311,
        &unique("paho-session-v311"),
        &[],
    )
    .await;
}

#[tokio::test]
async fn paho_persistent_session_resumes_with_its_messages_v5() {
    require_paho();
    let broker = Broker::single().await;
    run_script(
        &broker,
        "session.py",
        Version::V5,
        &unique("paho-session-v5"),
        &[],
    )
    .await;
}
