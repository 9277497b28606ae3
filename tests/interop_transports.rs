//! Interop over the other listeners with a client nobody here wrote: the `paho-mqtt` 2.x
//! Python client (the scripts of `tests/interop/`, with `--transport websockets`,
//! `--ws-path` and `--ca`) against one raftmq node that has a certificate: MQTT over
//! WebSocket (8083), over TLS (8883) and over WebSocket over TLS (8084), each in 3.1.1 and
//! 5.0, publish/subscribe at QoS 0, 1 and 2; and a persistent session over WebSocket.
//! paho negotiates the `mqtt` subprotocol and sends binary frames, as MQTT 5.0 §6 asks.

mod broker_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use broker_support::certs::Pki;
use raftmq::local_cluster::LocalCluster;
use tokio::process::Command;
use tokio::time::timeout;

const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// One node with a certificate for 127.0.0.1 from a test CA, and the CA's PEM file (the
/// files live as long as the returned `Pki`).
async fn node_with_tls() -> (LocalCluster, Pki, String) {
    let pki = Pki::new("raftmq interop CA");
    let files = pki.server_files(&pki.server("raftmq interop node"));
    let args = files.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = broker_support::cluster_with(1, &args).await;
    let ca = pki.ca_file().display().to_string();
    (cluster, pki, ca)
}

/// Runs `script` against `addr` with `extra` options; it must exit 0 and print `ok` last.
async fn paho(script: &str, addr: &str, protocol: &str, prefix: &str, extra: &[&str]) {
    let port = broker_support::port_of(addr).to_string();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let output = timeout(
        PROCESS_TIMEOUT,
        Command::new("python3")
            .arg("-u")
            .arg(&path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--protocol",
                protocol,
            ])
            .args(["--prefix", prefix, "--timeout", "30"])
            .args(extra)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{script} did not finish within {PROCESS_TIMEOUT:?}"))
    .expect("run python3 (.ci/run installs paho-mqtt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().last() == Some("ok"),
        "{script} {extra:?} --protocol {protocol} failed ({}):\n--- stdout\n{stdout}--- \
         stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn paho_over_websocket_both_protocols() {
    let (cluster, _pki, _) = node_with_tls().await;
    let ws = &cluster.nodes[0].ws_addr;
    for protocol in ["311", "5"] {
        let prefix = format!("ws{protocol}-{}", std::process::id());
        paho(
            "pubsub.py",
            ws,
            protocol,
            &prefix,
            &["--transport", "websockets"],
        )
        .await;
    }
    let prefix = format!("ws-session-{}", std::process::id());
    paho(
        "session.py",
        ws,
        "5",
        &prefix,
        &["--transport", "websockets"],
    )
    .await;
}

#[tokio::test]
async fn paho_over_tls_and_websocket_over_tls() {
    let (cluster, _pki, ca) = node_with_tls().await;
    let node = &cluster.nodes[0];
    for protocol in ["311", "5"] {
        let prefix = format!("tls{protocol}-{}", std::process::id());
        paho(
            "pubsub.py",
            &node.tls_addr,
            protocol,
            &prefix,
            &["--ca", &ca],
        )
        .await;
        let prefix = format!("wss{protocol}-{}", std::process::id());
        paho(
            "pubsub.py",
            &node.wss_addr,
            protocol,
            &prefix,
            &["--transport", "websockets", "--ca", &ca],
        )
        .await;
    }
}

#[tokio::test]
async fn a_websocket_client_on_another_path_is_refused() {
    let (cluster, _pki, _) = node_with_tls().await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pubsub.py");
    let port = broker_support::port_of(&cluster.nodes[0].ws_addr).to_string();
    let output = timeout(
        PROCESS_TIMEOUT,
        Command::new("python3")
            .arg(&path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["--port", &port, "--protocol", "5", "--prefix", "wrongpath"])
            .args([
                "--timeout",
                "10",
                "--transport",
                "websockets",
                "--ws-path",
                "/other",
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("finished")
    .expect("run python3");
    assert!(!output.status.success(), "a connection on /other must fail");
}
