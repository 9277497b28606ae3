//! The broker under test for the MQTT integration tests: a single raftmq node, a cluster
//! of raftmq node processes, or — with `RAFTMQ_TEST_BROKER=mosquitto` — Mosquitto, the
//! reference broker, to check that a test's expectations are the spec's and not ours.
//!
//! The `broker_features_cluster` test target runs the feature tests on a 3-node cluster
//! instead of a single node (also chosen with `RAFTMQ_TEST_BROKER=cluster`): each client a
//! test connects goes to the next node in turn, so publishers and subscribers sit on
//! different nodes and a client that reconnects comes back through another node.
//!
//! Each test file that uses it declares `mod broker_support;`; not every file uses every
//! helper.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raftmq::local_cluster::LocalCluster;

pub(crate) mod certs;
pub(crate) mod proxy_header;

/// Raft timeouts that hold on a loaded 2-core machine while tests run in parallel.
pub(crate) const TEST_NODE_ARGS: &[&str] = &[
    "--raft-heartbeat-ms",
    "150",
    "--raft-election-min-ms",
    "1000",
    "--raft-election-max-ms",
    "1500",
];

pub(crate) fn raftmq_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raftmq"))
}

/// Which broker `Broker::single` starts.
pub(crate) fn testing_mosquitto() -> bool {
    std::env::var("RAFTMQ_TEST_BROKER").is_ok_and(|v| v == "mosquitto")
}

/// Whether `Broker::single` starts a 3-node cluster and spreads clients over it.
pub(crate) fn testing_cluster() -> bool {
    env!("CARGO_CRATE_NAME") == "broker_features_cluster"
        || std::env::var("RAFTMQ_TEST_BROKER").is_ok_and(|v| v == "cluster")
}

/// Nodes of the cluster a feature test runs on in cluster mode.
pub(crate) const FEATURE_CLUSTER_SIZE: usize = 3;

/// One broker reachable on loopback.
pub(crate) enum Broker {
    Raftmq(LocalCluster),
    /// A cluster standing in for one broker: every `addr` call names the next node.
    Spread {
        cluster: LocalCluster,
        next: std::sync::atomic::AtomicUsize,
    },
    Mosquitto {
        child: Child,
        port: u16,
        _dir: tempfile::TempDir,
    },
}

impl Broker {
    /// A single-node broker: raftmq, or Mosquitto when `RAFTMQ_TEST_BROKER=mosquitto`.
    pub(crate) async fn single() -> Broker {
        Broker::single_with(&[]).await
    }

    /// A single-node broker; raftmq gets `args` (e.g. `["--max-queued-messages", "5"]`),
    /// Mosquitto ignores them.
    pub(crate) async fn single_with(args: &[&str]) -> Broker {
        if testing_mosquitto() {
            return Broker::mosquitto();
        }
        if testing_cluster() {
            return Broker::Spread {
                cluster: cluster_with(FEATURE_CLUSTER_SIZE, args).await,
                next: std::sync::atomic::AtomicUsize::new(0),
            };
        }
        Broker::Raftmq(cluster_with(1, args).await)
    }

    /// Mosquitto 2 on a free loopback port, anonymous access allowed, persistence off.
    pub(crate) fn mosquitto() -> Broker {
        let port = raftmq::local_cluster::free_port().expect("free port");
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_keepalive 65535\n"
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (Debian package `mosquitto`; .ci/run installs it)");
        wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(10));
        Broker::Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }

    /// `host:port` of the MQTT listener (node `index` of a raftmq cluster). A spread
    /// cluster ignores `index` and names its nodes in turn.
    pub(crate) fn addr(&self, index: usize) -> String {
        match self {
            Broker::Raftmq(cluster) => cluster.nodes[index].mqtt_addr.clone(),
            Broker::Spread { cluster, next } => {
                let turn = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                cluster.nodes[turn % cluster.nodes.len()].mqtt_addr.clone()
            }
            Broker::Mosquitto { port, .. } => format!("127.0.0.1:{port}"),
        }
    }

    pub(crate) fn port(&self, index: usize) -> u16 {
        port_of(&self.addr(index))
    }

    pub(crate) fn is_mosquitto(&self) -> bool {
        matches!(self, Broker::Mosquitto { .. })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Mosquitto { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raftmq cluster of `size` node processes, every MQTT listener accepting.
pub(crate) async fn cluster(size: usize) -> LocalCluster {
    cluster_with(size, &[]).await
}

/// `size` node processes with the tests' Raft timeouts and `extra` arguments, started
/// (not yet checked to serve MQTT).
pub(crate) async fn start_nodes(size: usize, extra: &[&str]) -> LocalCluster {
    let args: Vec<String> = TEST_NODE_ARGS
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    LocalCluster::start(&raftmq_binary(), size, &args)
        .await
        .expect("start raftmq nodes")
}

/// A raftmq cluster whose every node also gets `extra` arguments.
pub(crate) async fn cluster_with(size: usize, extra: &[&str]) -> LocalCluster {
    let cluster = start_nodes(size, extra).await;
    for node in &cluster.nodes {
        wait_serving(&node.mqtt_addr, SERVING_DEADLINE).await;
    }
    cluster
}

/// How long a started node may take until it answers CONNECT.
pub(crate) const SERVING_DEADLINE: Duration = Duration::from_secs(30);

/// Waits until the broker at `addr` accepts a CONNECT. A node listens from the start but
/// refuses CONNECT ("server unavailable") until it has recovered its old sessions and
/// knows a leader: a port that accepts TCP is not yet a node that serves clients.
pub(crate) async fn wait_serving(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for attempt in 0.. {
        match probe_connect(addr, attempt).await {
            Ok(()) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{addr} answered no CONNECT within {timeout:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One 3.1.1 CONNECT (clean session, its own client id) and, if accepted, DISCONNECT.
async fn probe_connect(addr: &str, attempt: u32) -> Result<(), String> {
    use raftmq::mqtt::{Codec, Connect, Packet, Protocol, ReasonCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let step = Duration::from_secs(5);
    let mut stream = tokio::time::timeout(step, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "TCP connect timed out".to_string())?
        .map_err(|e| format!("TCP connect: {e}"))?;
    let connect = Packet::Connect(Box::new(Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 10,
        client_id: format!("probe-{}-{attempt}", std::process::id()),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }));
    let mut out = bytes::BytesMut::new();
    connect
        .encode(Protocol::V311, &mut out)
        .map_err(|e| format!("encode CONNECT: {e}"))?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut codec = Codec::for_protocol(Protocol::V311, usize::MAX);
    let mut buf = bytes::BytesMut::new();
    let reply = tokio::time::timeout(step, async {
        loop {
            if let Some(packet) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
                return Ok::<_, String>(packet);
            }
            if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("closed before CONNACK".to_string());
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK in time".to_string())??;
    match reply {
        Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => {
            let _ = stream.write_all(&[0xe0, 0x00]).await;
            Ok(())
        }
        other => Err(format!("refused: {other:?}")),
    }
}

pub(crate) fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("host:port")
}

/// Waits until `addr` accepts TCP connections.
pub(crate) fn wait_for_port(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{addr} never accepted a connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a `raftmq` command run by [`cli`] may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// `raftmq <args> --http <node> --token-file <node's token file>`, with `stdin` fed to
/// it; its output, whatever its exit status.
pub(crate) async fn cli(
    node: &raftmq::local_cluster::LocalNode,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let token_file = raftmq::admin::token::default_file(&node.data_dir);
    let mut command = tokio::process::Command::new(raftmq_binary());
    command
        .args(args)
        .arg("--http")
        .arg(&node.http_addr)
        .arg("--token-file")
        .arg(&token_file)
        // Nothing from the environment running the tests picks another node or token.
        .env_remove("RAFTMQ_HTTP")
        .env_remove("RAFTMQ_API_TOKEN")
        .env_remove("RAFTMQ_API_TOKEN_FILE");
    run_process(command, stdin, CLI_TIMEOUT).await
}

/// Runs `command` with `stdin` fed to it (then closed) or none, for at most `limit`; its
/// output, whatever its exit status.
pub(crate) async fn run_process(
    mut command: tokio::process::Command,
    stdin: Option<&str>,
    limit: Duration,
) -> std::process::Output {
    let name = format!("{:?}", command.as_std());
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        tokio::io::AsyncWriteExt::write_all(&mut pipe, text.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write to {name}'s stdin: {e}"));
        // Closing stdin ends what reads it to the end (`mosquitto_pub -l`).
        drop(pipe);
    }
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish in {limit:?}"))
        .unwrap_or_else(|e| panic!("wait for {name}: {e}"))
}

/// [`cli`] that must succeed; its standard output.
pub(crate) async fn cli_ok(
    node: &raftmq::local_cluster::LocalNode,
    args: &[&str],
    stdin: Option<&str>,
) -> String {
    let output = cli(node, args, stdin).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "raftmq {args:?} failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
