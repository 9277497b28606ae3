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

use raftmq::local_cluster::LocalCluster;
use tokio::process::Command;
use tokio::time::timeout;

const PROCESS_TIMEOUT: Duration = Duration::from_secs(40);

/// A CA and a server certificate for 127.0.0.1; returns the CA's PEM path and the
/// node's certificate and key paths.
fn certificates(dir: &Path) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "raftmq interop CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("certificate");
    let paths = ["ca.pem", "node.crt", "node.key"].map(|f| dir.join(f).display().to_string());
    std::fs::write(&paths[0], ca.pem()).expect("write");
    std::fs::write(&paths[1], cert.pem()).expect("write");
    std::fs::write(&paths[2], key.serialize_pem()).expect("write");
    let [ca, cert, key] = paths;
    (ca, cert, key)
}

async fn node_with_tls(dir: &Path) -> (LocalCluster, String) {
    let (ca, cert, key) = certificates(dir);
    let cluster = broker_support::cluster_with(1, &["--tls-cert", &cert, "--tls-key", &key]).await;
    (cluster, ca)
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
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, _) = node_with_tls(dir.path()).await;
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
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, ca) = node_with_tls(dir.path()).await;
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
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, _) = node_with_tls(dir.path()).await;
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
