//! The real parts of the drill: test certificates, the shipped balancer configurations
//! rendered onto loopback ports, the balancer processes, and the nodes behind them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftmq::local_cluster::LocalCluster;

use crate::broker_support::certs::{ANY_VERSION, Pki, client_config};
use crate::broker_support::{TEST_NODE_ARGS, raftmq_binary, wait_serving};

/// The test CA, the balancer's server certificate for 127.0.0.1 / localhost, and the
/// files the balancers read.
pub(crate) struct Certs {
    pub(crate) pki: Pki,
    /// Certificate then key, the form HAProxy's `crt` takes.
    pub(crate) combined: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

pub(crate) fn certs(dir: &Path) -> Certs {
    let pki = Pki::new("raftmq drill CA");
    let leaf = pki.server("raftmq drill balancer");
    let files = pki.server_files(&leaf);
    let combined = dir.join("server-combined.pem");
    std::fs::write(&combined, format!("{}{}", leaf.cert_pem, leaf.key_pem))
        .expect("write combined PEM");
    Certs {
        combined,
        cert: files.cert,
        key: files.key,
        pki,
    }
}

/// A TLS client configuration that trusts only the test CA.
pub(crate) fn client_tls(certs: &Certs) -> Arc<rustls::ClientConfig> {
    client_config(&[certs.pki.ca_cert()], ANY_VERSION, None)
}

/// Three nodes that expect PROXY headers on their MQTT and WebSocket listeners (from
/// loopback, the default trusted network), as deploy/cluster/ configures them. Returns
/// once every node's /health/ready answers 200.
pub(crate) async fn proxied_cluster(drain_grace_ms: u64) -> LocalCluster {
    let mut args: Vec<String> = TEST_NODE_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--mqtt-proxy-protocol=true",
            "--ws-proxy-protocol=true",
            "--drain-grace-ms",
        ]
        .map(String::from),
    );
    args.push(drain_grace_ms.to_string());
    let cluster = LocalCluster::start(&raftmq_binary(), 3, &args)
        .await
        .expect("start raftmq nodes");
    for node in &cluster.nodes {
        wait_ready(&node.http_addr, Duration::from_secs(30)).await;
    }
    cluster
}

/// Waits until `GET /health/ready` on `http` answers 200.
pub(crate) async fn wait_ready(http: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match raftmq::admin::client::Api::new(http, None)
            .get("/health/ready")
            .await
        {
            Ok(_) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "{http} not ready within {timeout:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    raftmq::local_cluster::free_port().expect("free port")
}

/// A balancer process, killed when dropped.
pub(crate) struct Balancer {
    child: Child,
    pub(crate) mqtt: String,
    pub(crate) mqtt_tls: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Replaces `from` by `to` in `text`, insisting that the shipped file still has it: a
/// config change that the drill no longer exercises must fail here, not pass unseen.
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the shipped config no longer has `{from}`"
    );
    text.replace(from, to)
}

/// `deploy/haproxy/haproxy.cfg` with its frontends on free loopback ports, its servers at
/// the nodes' addresses (each server's health check at its node's HTTP port) and the
/// test certificate; everything else as shipped.
pub(crate) async fn haproxy(cluster: &LocalCluster, certs: &Certs) -> Balancer {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mqtt, mqtt_tls, ws) = (free_port(), free_port(), free_port());
    let mut config = repo_file("deploy/haproxy/haproxy.cfg");
    config = swap(config, "bind :1883\n", &format!("bind 127.0.0.1:{mqtt}\n"));
    config = swap(
        config,
        "bind :8883 ssl crt /etc/haproxy/certs/raftmq.pem",
        &format!(
            "bind 127.0.0.1:{mqtt_tls} ssl crt {}",
            certs.combined.display()
        ),
    );
    config = swap(config, "bind :8083\n", &format!("bind 127.0.0.1:{ws}\n"));
    // This machine caps open files at 20,000.
    config = swap(config, "maxconn 50000", "maxconn 2000");
    for (i, node) in cluster.nodes.iter().enumerate() {
        let http_port = crate::broker_support::port_of(&node.http_addr);
        for (port, addr) in [(1883, &node.mqtt_addr), (8083, &node.ws_addr)] {
            config = swap(
                config,
                &format!("10.0.0.1{}:{port}\n", i + 1),
                &format!("{addr} port {http_port}\n"),
            );
        }
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, &config).expect("write haproxy.cfg");
    let check = Command::new("haproxy")
        .args(["-c", "-q", "-f"])
        .arg(&path)
        .output()
        .expect("run haproxy (Debian package `haproxy`; .ci/run installs it)");
    assert!(
        check.status.success(),
        "haproxy -c refused the rendered config: {}\n{config}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log file");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start haproxy");
    let balancer = Balancer {
        child,
        mqtt: format!("127.0.0.1:{mqtt}"),
        mqtt_tls: format!("127.0.0.1:{mqtt_tls}"),
        _dir: dir,
    };
    // Through the balancer: its health checks must have found the nodes up.
    wait_serving(&balancer.mqtt, Duration::from_secs(30)).await;
    balancer
}

/// `deploy/nginx/nginx.conf` on loopback ports, the same way.
pub(crate) async fn nginx(cluster: &LocalCluster, certs: &Certs) -> Balancer {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mqtt, mqtt_tls, ws) = (free_port(), free_port(), free_port());
    let mut config = repo_file("deploy/nginx/nginx.conf");
    config = swap(config, "listen 1883;", &format!("listen 127.0.0.1:{mqtt};"));
    config = swap(
        config,
        "listen 8883 ssl;",
        &format!("listen 127.0.0.1:{mqtt_tls} ssl;"),
    );
    config = swap(config, "listen 8083;", &format!("listen 127.0.0.1:{ws};"));
    config = swap(
        config,
        "/etc/nginx/certs/raftmq.crt",
        &certs.cert.display().to_string(),
    );
    config = swap(
        config,
        "/etc/nginx/certs/raftmq.key",
        &certs.key.display().to_string(),
    );
    config = swap(
        config,
        "/var/log/nginx/mqtt.log",
        &dir.path().join("mqtt.log").display().to_string(),
    );
    config = swap(config, "worker_processes auto;", "worker_processes 1;");
    config = swap(
        config,
        "worker_connections 65536;",
        "worker_connections 1024;",
    );
    // Debian installs the stream module here (package libnginx-mod-stream).
    config = swap(
        config,
        "load_module modules/ngx_stream_module.so;",
        "load_module /usr/lib/nginx/modules/ngx_stream_module.so;",
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        for (port, addr) in [(1883, &node.mqtt_addr), (8083, &node.ws_addr)] {
            config = swap(
                config,
                &format!("server 10.0.0.1{}:{port} ", i + 1),
                &format!("server {addr} "),
            );
        }
    }
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, &config).expect("write nginx.conf");
    let globals = format!(
        "daemon off; master_process off; pid {}; error_log {} info;",
        dir.path().join("nginx.pid").display(),
        dir.path().join("error.log").display()
    );
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .args(["-g", &globals])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "start nginx (Debian packages nginx and libnginx-mod-stream; .ci/run installs them)",
        );
    let balancer = Balancer {
        child,
        mqtt: format!("127.0.0.1:{mqtt}"),
        mqtt_tls: format!("127.0.0.1:{mqtt_tls}"),
        _dir: dir,
    };
    wait_serving(&balancer.mqtt, Duration::from_secs(30)).await;
    balancer
}
