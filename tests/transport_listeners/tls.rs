//! MQTT over TLS: server authentication with a CA-signed certificate, mutual TLS (the
//! client certificate's CN becomes the identity `/clients` shows), and certificate reloads
//! that reach new connections without touching established ones.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use raftmq::local_cluster::LocalCluster;
use raftmq::mqtt::Protocol;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ProtocolVersion};
use serde_json::Value;
use tokio::time::Instant;

use crate::broker_support::certs::{ANY_VERSION, Pki, TLS12_ONLY, client_config};
use crate::broker_support::{cluster_with, raftmq_binary};
use crate::http::wait_client;
use crate::rumqtt::TlsClient;
use crate::unique;
use crate::wire::{self, Wire, connect_packet, server_certificate};

/// One node whose TLS listener serves `pki`'s certificate "raftmq-node", with `extra`
/// arguments.
async fn tls_node(pki: &Pki, extra: &[String]) -> LocalCluster {
    let files = pki.server_files(&pki.server("raftmq-node"));
    let args: Vec<String> = files
        .args()
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cluster_with(1, &args).await
}

/// The arguments that make the node require (or, `optional`, accept) client certificates
/// signed by `pki`'s CA.
fn client_ca_args(pki: &Pki, optional: bool) -> Vec<String> {
    vec![
        "--tls-client-ca".into(),
        pki.ca_file().display().to_string(),
        format!("--tls-client-cert-optional={optional}"),
    ]
}

/// The TLS version a handshake with `config` settles on.
async fn negotiated(addr: &str, config: Arc<ClientConfig>) -> ProtocolVersion {
    let stream = wire::tls(addr, config).await.expect("TLS handshake");
    stream
        .get_ref()
        .1
        .protocol_version()
        .expect("a version after the handshake")
}

/// The client gets no session: the handshake fails, or the node closes the connection
/// right after it (TLS 1.3 clients finish before the server has checked their certificate)
/// without answering CONNECT.
async fn refused_without_connack(addr: &str, config: Arc<ClientConfig>, why: &str) {
    let stream = match wire::tls(addr, config).await {
        Err(_) => return,
        Ok(stream) => stream,
    };
    let mut wire = Wire::new(stream, Protocol::V5);
    let id = unique("refused");
    let connack = wire
        .try_connect(connect_packet(Protocol::V5, &id, None))
        .await;
    assert!(connack.is_none(), "{why}: got {connack:?}");
}

#[tokio::test]
async fn mqtt_over_tls_with_a_ca_signed_certificate() {
    let pki = Pki::new("raftmq test CA");
    let cluster = tls_node(&pki, &[]).await;
    let node = &cluster.nodes[0];
    let trusted = client_config(&[pki.ca_cert()], ANY_VERSION, None);
    let tls12 = client_config(&[pki.ca_cert()], TLS12_ONLY, None);

    for (config, version) in [(&trusted, "1.3"), (&tls12, "1.2")] {
        let id = unique(&format!("tls{version}"));
        let mut client = TlsClient::connected(&id, &node.tls_addr, config.clone()).await;
        let topic = format!("{id}/t");
        client.subscribe(&topic).await;
        client.publish_and_receive(&topic, "over TLS").await;
        let listed = wait_client(node, &id).await;
        assert_eq!(listed["listener"], "tls", "{listed}");
        assert_eq!(
            listed["identity"],
            Value::Null,
            "no client certificate: {listed}"
        );
    }
    assert_eq!(
        negotiated(&node.tls_addr, trusted).await,
        ProtocolVersion::TLSv1_3
    );
    assert_eq!(
        negotiated(&node.tls_addr, tls12).await,
        ProtocolVersion::TLSv1_2
    );

    let stranger = Pki::new("another CA");
    let untrusting = client_config(&[stranger.ca_cert()], ANY_VERSION, None);
    let error = wire::tls(&node.tls_addr, untrusting.clone())
        .await
        .expect_err("a client that does not trust the CA must fail the handshake");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    let error = TlsClient::refused(&unique("untrusting"), &node.tls_addr, untrusting).await;
    assert!(error.contains("UnknownIssuer"), "rumqttc: {error}");
}

#[tokio::test]
async fn mutual_tls_identifies_clients_by_certificate() {
    let pki = Pki::new("raftmq device CA");
    let cluster = tls_node(&pki, &client_ca_args(&pki, false)).await;
    let node = &cluster.nodes[0];
    let device = pki.client("device-42");

    let id = unique("mtls");
    let config = client_config(&[pki.ca_cert()], ANY_VERSION, Some(&device));
    let mut client = TlsClient::connected(&id, &node.tls_addr, config).await;
    client.subscribe(&format!("{id}/t")).await;
    client
        .publish_and_receive(&format!("{id}/t"), "signed")
        .await;
    let listed = wait_client(node, &id).await;
    assert_eq!(listed["identity"], "device-42", "{listed}");
    assert_eq!(listed["listener"], "tls", "{listed}");
    assert_eq!(listed["via"], Value::Null, "{listed}");

    for versions in [ANY_VERSION, TLS12_ONLY] {
        let anonymous = client_config(&[pki.ca_cert()], versions, None);
        refused_without_connack(&node.tls_addr, anonymous, "no client certificate").await;
    }
    let foreign = Pki::new("some other CA").client("device-42");
    let impostor = client_config(&[pki.ca_cert()], ANY_VERSION, Some(&foreign));
    refused_without_connack(&node.tls_addr, impostor, "certificate of another CA").await;
}

#[tokio::test]
async fn optional_client_certificates() {
    let pki = Pki::new("raftmq optional CA");
    let cluster = tls_node(&pki, &client_ca_args(&pki, true)).await;
    let node = &cluster.nodes[0];

    let anonymous = unique("anonymous");
    let config = client_config(&[pki.ca_cert()], ANY_VERSION, None);
    let _anonymous_client = TlsClient::connected(&anonymous, &node.tls_addr, config).await;
    let listed = wait_client(node, &anonymous).await;
    assert_eq!(listed["identity"], Value::Null, "{listed}");
    assert_eq!(listed["listener"], "tls", "{listed}");

    let named = unique("named");
    let device = pki.client("device-7");
    let config = client_config(&[pki.ca_cert()], ANY_VERSION, Some(&device));
    let _named_client = TlsClient::connected(&named, &node.tls_addr, config).await;
    let listed = wait_client(node, &named).await;
    assert_eq!(listed["identity"], "device-7", "{listed}");

    // Optional means "may be absent", not "may be wrong".
    let foreign = Pki::new("some other CA").client("device-7");
    let impostor = client_config(&[pki.ca_cert()], ANY_VERSION, Some(&foreign));
    refused_without_connack(&node.tls_addr, impostor, "certificate of another CA").await;
}

/// Polls new TLS connections until the node presents `expected`.
async fn wait_presented(addr: &str, config: &Arc<ClientConfig>, expected: &CertificateDer<'_>) {
    let within = Duration::from_secs(10);
    let deadline = Instant::now() + within;
    loop {
        let stream = wire::tls(addr, config.clone())
            .await
            .expect("TLS handshake");
        if server_certificate(&stream) == *expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node still presents its old certificate {within:?} after the change"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The pid of the node process started with `data_dir` (`LocalCluster` does not expose
/// it): the one process of the raftmq binary whose arguments name that directory.
fn node_pid(data_dir: &Path) -> u32 {
    let binary = raftmq_binary().display().to_string();
    let dir = data_dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first() == Some(&binary.as_bytes()) && args.contains(&dir.as_bytes()) {
            found.push(pid);
        }
    }
    assert_eq!(found.len(), 1, "node processes for {dir}: {found:?}");
    found[0]
}

#[tokio::test]
async fn a_replaced_certificate_reaches_new_connections_only() {
    let pki = Pki::new("raftmq reload CA");
    let cert_a = pki.server("raftmq-a");
    let files = pki.server_files(&cert_a);
    let args = files.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = cluster_with(1, &args).await;
    let node = &cluster.nodes[0];
    let trusted = client_config(&[pki.ca_cert()], ANY_VERSION, None);
    wait_presented(&node.tls_addr, &trusted, &cert_a.cert).await;

    let id = unique("reload");
    let topic = format!("{id}/t");
    let stream = wire::tls(&node.tls_addr, trusted.clone())
        .await
        .expect("TLS handshake");
    let old_session = server_certificate(&stream);
    let mut established = Wire::connected(stream, &id).await;
    established.subscribe(&topic).await;

    // The file-change path.
    let cert_b = pki.server("raftmq-b");
    files.replace(&cert_b);
    wait_presented(&node.tls_addr, &trusted, &cert_b.cert).await;
    established.publish(&topic, b"after reload").await;
    assert_eq!(
        &established.expect_publish().await.payload[..],
        b"after reload"
    );

    // The SIGHUP path: new files with the old modification times, which polling cannot
    // see. First let any reload the previous change started settle (one poll is 2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cert_c = pki.server("raftmq-c");
    files.replace_keeping_mtimes(&cert_c);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stream = wire::tls(&node.tls_addr, trusted.clone())
        .await
        .expect("TLS handshake");
    assert_eq!(
        server_certificate(&stream),
        cert_b.cert,
        "the test's premise: polling does not notice files whose times did not change"
    );
    let pid = node_pid(&node.data_dir);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}: {status}");
    wait_presented(&node.tls_addr, &trusted, &cert_c.cert).await;

    // The connection made under certificate A carried on through both reloads.
    assert_eq!(old_session, cert_a.cert);
    established.publish(&topic, b"after SIGHUP").await;
    assert_eq!(
        &established.expect_publish().await.payload[..],
        b"after SIGHUP"
    );
    established.ping().await;
}
