//! A cluster of real `raftmq` node processes on loopback, each with its own data
//! directory: what the Raft bench runs against and what the cluster tests kill, restart,
//! wipe and re-add. Children are killed when the cluster is dropped, so nothing outlives
//! the bench or test that started it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cluster::admin;
use crate::cluster::network::ClusterAccess;
use crate::cluster::proto::pb;
use crate::config::{ClusterAccessArgs, ClusterSecretArgs, ClusterTlsArgs};

/// One node process and where it lives.
pub struct LocalNode {
    pub cluster_addr: String,
    /// The node's MQTT listener, `127.0.0.1:port`.
    pub mqtt_addr: String,
    /// The node's MQTT over WebSocket listener.
    pub ws_addr: String,
    /// The node's TLS and WebSocket-over-TLS listeners: they run only when the node is
    /// given a certificate (`--tls-cert`, `--tls-key` in `extra`).
    pub tls_addr: String,
    pub wss_addr: String,
    /// The node's HTTP listener (health, clients, drain).
    pub http_addr: String,
    /// The node's dashboard listener (the page, and the HTTP listener's routes).
    pub dashboard_addr: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
}

impl LocalNode {
    /// The node's HTTP API, with the token the node made in its data directory on first
    /// start.
    pub fn api(&self) -> anyhow::Result<crate::admin::client::Api> {
        let file = crate::admin::token::default_file(&self.data_dir);
        let token = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        Ok(crate::admin::client::Api::new(
            self.http_addr.clone(),
            Some(token.trim().to_string()),
        ))
    }
}

/// A set of node processes started from one binary.
pub struct LocalCluster {
    binary: PathBuf,
    root: tempfile::TempDir,
    extra: Vec<String>,
    /// What the nodes require of calls to their cluster port, from `extra`.
    access: ClusterAccess,
    pub nodes: Vec<LocalNode>,
}

/// Ports handed out come from below the kernel's ephemeral range (32768–60999 by
/// default): a port the kernel picked for us (bind to port 0) is free only until some
/// outgoing connection takes it as its local port, and the tests make thousands of those
/// while nodes start. Here the only competition is this process's own earlier picks.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1 that was free a moment ago and that no other caller in this
/// process has been given.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // Start at a random place, so processes run one after another rarely meet.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        rand::random::<u32>() % span,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::AcqRel) % span;
        let port = PORT_RANGE.start + offset as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port in {PORT_RANGE:?} on 127.0.0.1")
}

impl LocalCluster {
    /// Keeps the nodes' logs and data when the cluster is dropped, and says where.
    fn keep_files(&mut self) {
        let Ok(replacement) = tempfile::tempdir() else {
            return;
        };
        let root = std::mem::replace(&mut self.root, replacement);
        eprintln!("node logs and data kept in {}", root.keep().display());
    }

    /// Starts `size` nodes: the first bootstraps, the others join it at start. Returns once
    /// every node is a voter. `extra` is passed to every node (Raft timeouts, snapshot
    /// threshold, ...).
    pub async fn start(binary: &Path, size: usize, extra: &[String]) -> anyhow::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("raftmq-cluster-")
            .tempdir()?;
        let mut cluster = LocalCluster {
            binary: binary.to_path_buf(),
            root,
            extra: extra.to_vec(),
            access: access_in(extra)?,
            nodes: Vec::new(),
        };
        for i in 0..size {
            let join = if i == 0 {
                None
            } else {
                Some(cluster.nodes[0].cluster_addr.clone())
            };
            cluster.add_node(join.as_deref(), true)?;
        }
        if let Err(e) = cluster.wait_for_voters(size, Duration::from_secs(60)).await {
            cluster.keep_files();
            return Err(e);
        }
        Ok(cluster)
    }

    /// Starts one more node process. With `join`, it joins that member at start; without,
    /// it bootstraps when `bootstrap` is set and otherwise waits for `raftmq cluster join`.
    pub fn add_node(&mut self, join: Option<&str>, bootstrap: bool) -> anyhow::Result<usize> {
        let index = self.nodes.len();
        let port = free_port()?;
        let cluster_addr = format!("127.0.0.1:{port}");
        let mqtt_addr = format!("127.0.0.1:{}", free_port()?);
        let ws_addr = format!("127.0.0.1:{}", free_port()?);
        let tls_addr = format!("127.0.0.1:{}", free_port()?);
        let wss_addr = format!("127.0.0.1:{}", free_port()?);
        let http_addr = format!("127.0.0.1:{}", free_port()?);
        let dashboard_addr = format!("127.0.0.1:{}", free_port()?);
        let data_dir = self.root.path().join(format!("node{index}"));
        let log_path = self.root.path().join(format!("node{index}.log"));
        let mut args = vec![
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--cluster-listen".to_string(),
            cluster_addr.clone(),
            "--mqtt-listen".to_string(),
            mqtt_addr.clone(),
            "--ws-listen".to_string(),
            ws_addr.clone(),
            "--tls-listen".to_string(),
            tls_addr.clone(),
            "--wss-listen".to_string(),
            wss_addr.clone(),
            "--http-listen".to_string(),
            http_addr.clone(),
            "--dashboard-listen".to_string(),
            dashboard_addr.clone(),
            format!("--bootstrap={bootstrap}"),
        ];
        // A stopped node drains first; nothing here waits on a balancer, so by default it
        // does not linger (a test that measures draining passes its own value).
        if !self.extra.iter().any(|a| a.starts_with("--drain-grace-ms")) {
            args.extend(["--drain-grace-ms".to_string(), "0".to_string()]);
        }
        // The tests' clients connect without credentials unless a test says otherwise.
        if !self
            .extra
            .iter()
            .any(|a| a.starts_with("--allow-anonymous"))
        {
            args.push("--allow-anonymous=true".to_string());
        }
        if let Some(seed) = join {
            args.extend(["--join".to_string(), seed.to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        self.nodes.push(LocalNode {
            cluster_addr,
            mqtt_addr,
            ws_addr,
            tls_addr,
            wss_addr,
            http_addr,
            dashboard_addr,
            data_dir,
            log_path,
            child: None,
            args,
        });
        self.spawn(index)?;
        Ok(index)
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[index];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log_path)?;
        let child = Command::new(&self.binary)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// SIGKILL: the process dies without a chance to flush anything.
    pub fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit; SIGKILL after that.
    pub fn stop(&mut self, index: usize) -> anyhow::Result<()> {
        let Some(mut child) = self.nodes[index].child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        bail!("node {index} did not stop within 30 s after SIGTERM")
    }

    /// Starts a stopped node again, on the same data directory and address.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index)?;
        self.spawn(index)
    }

    /// Kills the node and deletes its data directory (it will come back as a new node).
    pub fn wipe(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index)?;
        match std::fs::remove_dir_all(&self.nodes[index].data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Replaces the node's start arguments (for example to rejoin after a wipe).
    pub fn set_join(&mut self, index: usize, join: Option<&str>, bootstrap: bool) {
        let node = &mut self.nodes[index];
        node.args.retain(|a| !a.starts_with("--bootstrap"));
        if let Some(at) = node.args.iter().position(|a| a == "--join") {
            node.args.drain(at..at + 2);
        }
        node.args.push(format!("--bootstrap={bootstrap}"));
        if let Some(seed) = join {
            node.args.extend(["--join".to_string(), seed.to_string()]);
        }
    }

    /// What calls to the nodes' cluster ports carry: the secret and TLS identity the
    /// nodes were given (`--cluster-secret`, `--cluster-tls-*` in the extra arguments).
    pub fn access(&self) -> &ClusterAccess {
        &self.access
    }

    pub fn is_running(&self, index: usize) -> bool {
        self.nodes[index].child.is_some()
    }

    pub async fn status(&self, index: usize) -> anyhow::Result<pb::StatusResponse> {
        Ok(admin::status(&self.nodes[index].cluster_addr, &self.access).await?)
    }

    /// The index of the node that a running node names as leader and that agrees itself.
    pub async fn leader(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            if let Ok(status) = self.status(i).await
                && status.role == "Leader"
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits until some running node reports `voters` voters and a leader.
    pub async fn wait_for_voters(&self, voters: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await
                && let Ok(status) = self.status(leader).await
                && status.members.iter().filter(|m| m.voter).count() == voters
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "no leader with {voters} voters after {timeout:?}; logs in {}",
                    self.root.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node has applied the same state (equal digests and
    /// applied indexes), and returns that digest.
    pub async fn wait_converged(&self, timeout: Duration) -> anyhow::Result<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                if node.child.is_some()
                    && let Ok(status) = self.status(i).await
                {
                    seen.push((status.applied, status.state_digest));
                }
            }
            let running = self.nodes.iter().filter(|n| n.child.is_some()).count();
            if seen.len() == running && !seen.is_empty() && seen.windows(2).all(|w| w[0] == w[1]) {
                return Ok(seen[0].1);
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes did not converge after {timeout:?}: {seen:?}; logs in {}",
                    self.root.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the node logs are.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// The value of `flag` in `args`, given as `--flag value` or `--flag=value`.
fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(at, arg)| {
        if arg == flag {
            args.get(at + 1).cloned()
        } else {
            arg.strip_prefix(&prefix).map(str::to_string)
        }
    })
}

/// The cluster access the node arguments `args` set up.
fn access_in(args: &[String]) -> anyhow::Result<ClusterAccess> {
    let path = |flag| flag_value(args, flag).map(PathBuf::from);
    let settings = ClusterAccessArgs {
        secret: ClusterSecretArgs {
            cluster_secret: flag_value(args, "--cluster-secret"),
            cluster_secret_file: path("--cluster-secret-file"),
        },
        tls: ClusterTlsArgs {
            cluster_tls_cert: path("--cluster-tls-cert"),
            cluster_tls_key: path("--cluster-tls-key"),
            cluster_tls_ca: path("--cluster-tls-ca"),
            cluster_tls_server_name: flag_value(args, "--cluster-tls-server-name"),
        },
    };
    Ok(settings.access()?)
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A failing test keeps the nodes' logs and data for the post-mortem.
        if std::thread::panicking() {
            self.keep_files();
        }
    }
}
