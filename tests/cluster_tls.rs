//! Mutual TLS on the cluster port, with real node processes on loopback and certificates
//! made with rcgen: a 3-node cluster forms and carries MQTT traffic between nodes over
//! mTLS, while a client without a certificate, a client whose certificate another CA
//! signed, a plaintext gRPC client, a plaintext node trying to join, the command line
//! without the TLS options, and an MQTT client that finds the port are all refused — and
//! the refusals are in the nodes' logs with the peer's address.

mod broker_support;

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_support::certs::{ANY_VERSION, Pki, ServerFiles, client_config};
use broker_support::{cluster_with, raftmq_binary};
use raftmq::cluster::network::{ClusterAccess, ClusterNetwork};
use raftmq::cluster::proto::pb;
use raftmq::cluster::tls::{ClusterTls, ClusterTlsFiles};
use raftmq::local_cluster::{LocalCluster, free_port};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::net::TcpStream;

/// The node arguments that turn on mutual TLS with `files`, signed by the CA in `ca`.
fn tls_args(files: &ServerFiles, ca: &Path) -> Vec<String> {
    vec![
        "--cluster-tls-cert".into(),
        files.cert.display().to_string(),
        "--cluster-tls-key".into(),
        files.key.display().to_string(),
        "--cluster-tls-ca".into(),
        ca.display().to_string(),
    ]
}

/// The cluster TLS of a holder of `files`, trusting the CA in `ca`.
fn load_tls(files: &ServerFiles, ca: &Path) -> ClusterTls {
    ClusterTls::load(&ClusterTlsFiles {
        cert: files.cert.clone(),
        key: files.key.clone(),
        ca: ca.to_path_buf(),
        server_name: None,
    })
    .expect("the certificate files load")
}

/// A client of the cluster port that dials with `tls` and carries no secret.
fn tls_network(tls: ClusterTls) -> ClusterNetwork {
    ClusterNetwork::new(
        None,
        ClusterAccess {
            tls: Some(Arc::new(tls)),
            ..ClusterAccess::default()
        },
    )
}

/// A transport failure, as a refused handshake reaches a client: TLS 1.3 lets the
/// client finish its side before the server has checked its certificate, so the refusal
/// comes as the connection closing or being reset, the reason only in the server's log.
fn is_transport_failure(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
    )
}

/// A status call to `addr` through `network`.
async fn status(network: &ClusterNetwork, addr: &str) -> Result<pb::StatusResponse, tonic::Status> {
    let mut client = network.client(addr)?;
    let mut request = tonic::Request::new(pb::StatusRequest {});
    request.set_timeout(Duration::from_secs(10));
    Ok(client.status(request).await?.into_inner())
}

/// Waits until the log at `path` has a line containing every one of `needles`.
async fn wait_for_log(path: &Path, needles: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = log
            .lines()
            .find(|line| needles.iter().all(|n| line.contains(n)))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needles:?} in {} within {timeout:?}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A QoS 1 message published on one node reaches a subscriber on another.
async fn message_crosses_nodes(cluster: &LocalCluster) {
    let connect = |id: &str, addr: &str| {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        let mut options = MqttOptions::new(id, host, port.parse().expect("port"));
        options.set_keep_alive(Duration::from_secs(30));
        AsyncClient::new(options, 16)
    };
    let topic = format!("mtls/{}", std::process::id());
    let (subscriber, mut sub_events) = connect("mtls-sub", &cluster.nodes[0].mqtt_addr);
    subscriber
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .expect("queue SUBSCRIBE");
    let step = Duration::from_secs(20);
    tokio::time::timeout(step, async {
        loop {
            match sub_events.poll().await.expect("subscriber connection") {
                Event::Incoming(Packet::SubAck(_)) => return,
                _ => continue,
            }
        }
    })
    .await
    .expect("SUBACK");
    let (publisher, mut pub_events) = connect("mtls-pub", &cluster.nodes[1].mqtt_addr);
    publisher
        .publish(&topic, QoS::AtLeastOnce, false, "over mTLS")
        .await
        .expect("queue PUBLISH");
    let driver = tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    let received = tokio::time::timeout(step, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) =
                sub_events.poll().await.expect("subscriber connection")
            {
                return p;
            }
        }
    })
    .await
    .expect("the message reaches the subscriber on the other node");
    driver.abort();
    assert_eq!(received.topic, topic);
    assert_eq!(&received.payload[..], b"over mTLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_port_admits_only_nodes_with_a_certificate_from_the_cluster_ca() {
    let pki = Pki::new("raftmq cluster CA");
    let ca = pki.ca_file();
    let node_files = pki.files(&pki.node("raftmq-node"), "node");
    let args = tls_args(&node_files, &ca);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    // Forming at all needs mTLS both ways: joins, votes and appends go over it, and the
    // cluster's own status calls here present the node certificate.
    let cluster = cluster_with(3, &extra).await;
    assert!(cluster.access().tls.is_some());
    message_crosses_nodes(&cluster).await;
    cluster
        .wait_converged(Duration::from_secs(30))
        .await
        .expect("every node applied the same state");
    let addr = cluster.nodes[1].cluster_addr.clone();
    let log = cluster.nodes[1].log_path.clone();

    // No client certificate: the handshake is refused, nothing reaches the service.
    let anonymous = load_tls(&node_files, &ca).with_client_config(client_config(
        &[pki.ca_cert()],
        ANY_VERSION,
        None,
    ));
    let refused = status(&tls_network(anonymous), &addr).await.unwrap_err();
    assert!(is_transport_failure(&refused), "{refused:?}");
    eprintln!("without a client certificate: {refused}");
    wait_for_log(
        &log,
        &[
            "cluster connection refused",
            "127.0.0.1:",
            "TLS handshake failed",
        ],
        Duration::from_secs(10),
    )
    .await;

    // A certificate from another CA, through the node's own client.
    let other = Pki::new("another CA");
    let intruder = other.files(&other.node("intruder"), "intruder");
    let status_err = status(&tls_network(load_tls(&intruder, &ca)), &addr)
        .await
        .unwrap_err();
    assert!(is_transport_failure(&status_err), "{status_err:?}");
    wait_for_log(
        &log,
        &["cluster connection refused", "127.0.0.1:", "UnknownIssuer"],
        Duration::from_secs(10),
    )
    .await;

    // Plaintext gRPC: refused, and told why.
    let plaintext = status(&ClusterNetwork::default(), &addr).await.unwrap_err();
    assert_eq!(
        plaintext.code(),
        tonic::Code::PermissionDenied,
        "{plaintext:?}"
    );
    assert!(
        format!("{plaintext:?}").contains("requires mutual TLS"),
        "{plaintext:?}"
    );

    // A node trusted by the CA and the CLI's own certificate work; so does the command
    // line with the options, and not without them.
    let operator = pki.files(&pki.client("operator"), "operator");
    let mut with_tls = vec!["cluster", "status", "--node", &addr];
    let operator_args = tls_args(&operator, &ca);
    with_tls.extend(operator_args.iter().map(String::as_str));
    let output = Process::new(raftmq_binary())
        .args(&with_tls)
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("voter"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Process::new(raftmq_binary())
        .args(["cluster", "status", "--node", &addr])
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("requires mutual TLS"), "{stderr}");
    let output = Process::new(raftmq_binary())
        .args(["cluster", "status", "--node", &addr, "--cluster-tls-cert"])
        .arg(&operator.cert)
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--cluster-tls-ca"), "{stderr}");

    // An MQTT client that finds the cluster port gets no session.
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x04, b'e',
        b'v', b'i', b'l',
    ];
    stream.write_all(&connect).await.expect("send CONNECT");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the cluster port closes the connection");
    assert!(
        read.is_err() || answer.is_empty(),
        "nothing comes back: {answer:?}"
    );

    // The cluster was not disturbed by any of it.
    assert!(cluster.leader().await.is_some());
}

/// A child process killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_the_secret_still_counts_and_a_plaintext_node_cannot_join() {
    const SECRET: &str = "a-shared-cluster-secret";
    let pki = Pki::new("raftmq cluster CA");
    let ca = pki.ca_file();
    let node_files = pki.files(&pki.node("raftmq-node"), "node");
    let mut args = tls_args(&node_files, &ca);
    args.extend(["--cluster-secret".to_string(), SECRET.to_string()]);
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let cluster = cluster_with(1, &extra).await;
    let seed = cluster.nodes[0].cluster_addr.clone();

    // A certificate from the cluster's CA is not enough without the secret.
    let no_secret = tls_network(load_tls(&node_files, &ca));
    let refused = status(&no_secret, &seed).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let knows = ClusterNetwork::new(None, cluster.access().clone());
    assert!(status(&knows, &seed).await.is_ok());

    // The name peers are verified against can be set: the node's certificate names
    // localhost, and not some other host.
    let cli = |server_name: &str| {
        let mut command = Process::new(raftmq_binary());
        command
            .args([
                "cluster",
                "status",
                "--node",
                &seed,
                "--cluster-secret",
                SECRET,
            ])
            .args(tls_args(&node_files, &ca))
            .args(["--cluster-tls-server-name", server_name]);
        command.output().expect("run the CLI")
    };
    assert!(cli("localhost").status.success());
    let wrong = cli("elsewhere.example");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(stderr.contains("not valid for name"), "{stderr}");

    // A node without TLS settings keeps failing to join, and says why.
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("plain.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = || format!("127.0.0.1:{}", free_port().expect("free port"));
    let _plain = Killed(
        Process::new(raftmq_binary())
            .args(["--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--cluster-listen", &port()])
            .args(["--mqtt-listen", &port()])
            .args([
                "--ws-listen",
                "off",
                "--http-listen",
                "off",
                "--dashboard-listen",
                "off",
            ])
            .args(["--allow-anonymous=true", "--join", &seed])
            .args(["--cluster-secret", SECRET])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start the plaintext node"),
    );
    let line = wait_for_log(
        &log_path,
        &["join failed", "requires mutual TLS"],
        Duration::from_secs(30),
    )
    .await;
    eprintln!("the plaintext node says: {line}");
    wait_for_log(
        &cluster.nodes[0].log_path,
        &["cluster connection refused", "127.0.0.1:", "not TLS"],
        Duration::from_secs(10),
    )
    .await;
    let status = cluster.status(0).await.expect("status");
    assert_eq!(status.members.len(), 1, "the plaintext node is no member");
}
