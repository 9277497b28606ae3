//! The system under test: raftmq node processes on loopback, each behind the harness's
//! fault-injecting proxy (`proxy`) for its MQTT port and, in the proxy network mode, for
//! its cluster port.
//!
//! Node `i` (1-based) leaves for the other nodes from `127.0.0.(10+i)`
//! (`--cluster-source-ip`). In the proxy mode, the proxy in front of node `j` thus knows
//! which node a connection comes from and can cut one link, or one direction of it; nodes
//! advertise their proxy's address, so every Raft message and forwarded proposal crosses
//! it. In the nftables mode (inside the harness's network namespace), node `i` also
//! listens for the cluster on `127.0.0.(10+i)` and advertises that, so nftables rules cut
//! links by source and destination address (`network`, `netfilter`). Clients reach node
//! `j` through its MQTT proxy in both modes, picking nodes from the [`NodeView`]. The
//! harness's own control calls (status, membership) go to the real cluster port.
//!
//! With the `lose-unfsynced-writes` nemesis, node `j`'s data directory is a mount of the
//! [`crate::lazyfs`] layer at `nj.mnt`, over `nj` in the store.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use raftmq::cluster::admin;
use raftmq::cluster::network::ClusterAccess;
use raftmq::local_cluster::free_port;
use tokio::time::Instant;

use crate::convergence::{self, Diverged, Observation, Rounds};
use crate::crashes::{self, Crash};
use crate::lazyfs::{self, LazyFs};
use crate::netfilter::Netfilter;
use crate::network::{Links, MAX_NODE, NetMode, node_ip};
use crate::nodes::{NodeView, Target};
use crate::proxy::{Endpoint, Proxy, source_by_ip};

/// Raft timings of the nodes under test (heartbeat, election min, election max, ms):
/// as the broker tests use on a loaded 2-core machine.
const RAFT_TIMINGS: [u64; 3] = [150, 1000, 1500];

/// One node process and its addresses.
pub struct Node {
    /// 1-based, as in `n1`.
    pub number: usize,
    /// The real cluster gRPC address (for the harness's control calls).
    pub cluster_addr: SocketAddr,
    /// What the other nodes use: the proxy in front of `cluster_addr` (proxy mode), or
    /// `cluster_addr` itself (nftables mode).
    pub advertised: SocketAddr,
    /// What clients use: the proxy in front of the MQTT listener.
    pub mqtt_addr: SocketAddr,
    /// The node's data, in the store (under the FUSE layer's mount, if any).
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// The FUSE layer the node's data directory is mounted through.
    layer: Option<LazyFs>,
    /// SIGSTOPped.
    pub paused: bool,
}

impl Node {
    pub fn name(&self) -> String {
        format!("n{}", self.number)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The node as clients reach it.
    pub fn target(&self) -> Target {
        Target {
            number: self.number,
            addr: self.mqtt_addr,
        }
    }
}

/// How the nodes under test run.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub nodes: usize,
    pub snapshot_threshold: u64,
    /// Appended to every node's command line (e.g. `--unsafe-no-fsync`).
    pub node_args: Vec<String>,
    /// Every data directory on the [`crate::lazyfs`] layer.
    pub lazyfs: bool,
    /// How links between nodes are cut.
    pub net: NetMode,
}

/// The cluster under test.
pub struct Db {
    binary: PathBuf,
    root: PathBuf,
    pub nodes: Vec<Node>,
    pub proxy: Proxy,
    /// How links between nodes are cut.
    pub net: NetMode,
    /// The nftables mode's rules.
    netfilter: Option<Netfilter>,
    /// The nodes the clients use: members that are ready.
    clients: Option<NodeView>,
    /// Node numbers ever used (a wiped node comes back under a new number).
    next_number: usize,
    options: DbOptions,
    /// Node processes found dead that the harness had not killed.
    crashes: Vec<Crash>,
}

impl Db {
    /// Starts `options.nodes` nodes under `root` (node 1 bootstraps, the others join it)
    /// and waits until they are all voters. The nftables mode must run in the harness's
    /// namespace.
    pub async fn start(binary: &Path, root: &Path, options: &DbOptions) -> anyhow::Result<Db> {
        if options.lazyfs {
            lazyfs::sweep_stale_mounts();
        }
        let net = options.net;
        let netfilter = match net {
            NetMode::Proxy => None,
            NetMode::Nftables => Some(Netfilter::create()?),
        };
        let mut db = Db {
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            nodes: Vec::new(),
            proxy: Proxy::new(),
            net,
            netfilter,
            clients: None,
            next_number: 1,
            options: options.clone(),
            crashes: Vec::new(),
        };
        for _ in 0..options.nodes {
            db.add_node().await?;
        }
        db.wait_voters(options.nodes, Duration::from_secs(60))
            .await?;
        db.clients = NodeView::new(db.nodes.iter().map(Node::target).collect());
        Ok(db)
    }

    /// The nodes the clients pick from (shared: it follows membership changes).
    pub fn client_view(&self) -> anyhow::Result<NodeView> {
        self.clients.clone().context("no nodes started")
    }

    /// Node `index`, a voter now, is offered to the clients.
    pub fn admit(&self, index: usize) {
        if let Some(view) = &self.clients {
            view.add(self.nodes[index].target());
        }
    }

    /// The links between nodes, for cutting.
    pub fn links(&self) -> Links<'_> {
        match &self.netfilter {
            Some(netfilter) => Links::Nftables(netfilter),
            None => Links::Proxy(self.proxy.faults()),
        }
    }

    /// Removes every network fault: the proxy's (client links too) and the link cuts.
    pub fn heal_network(&self) -> anyhow::Result<()> {
        self.proxy.faults().heal();
        self.links().heal()
    }

    /// Starts one more node that joins the first running one (or bootstraps, if it is the
    /// first). Returns its index in `nodes`.
    pub async fn add_node(&mut self) -> anyhow::Result<usize> {
        let number = self.next_number;
        self.next_number += 1;
        anyhow::ensure!(
            number <= MAX_NODE,
            "at most {MAX_NODE} node numbers per test"
        );
        let own_ip = node_ip(number)?;
        let (cluster_addr, advertised) = match self.net {
            NetMode::Proxy => self.behind_proxy(number).await?,
            NetMode::Nftables => {
                let own = SocketAddr::new(own_ip.into(), free_port()?);
                (own, own)
            }
        };
        let (mqtt_real, mqtt_addr) = self.behind_proxy(number).await?;
        let data_dir = self.root.join(format!("n{number}"));
        let layer = if self.options.lazyfs {
            let mountpoint = self.root.join(format!("n{number}.mnt"));
            Some(LazyFs::mount(&data_dir, &mountpoint)?)
        } else {
            None
        };
        let node_dir = layer
            .as_ref()
            .map_or(data_dir.clone(), |l| l.mountpoint().to_path_buf());
        let log_path = self.root.join(format!("n{number}.log"));
        let seed = self
            .nodes
            .iter()
            .find(|n| n.is_running())
            .map(|n| n.advertised.to_string());
        let [heartbeat, election_min, election_max] = RAFT_TIMINGS;
        let mut args: Vec<String> = [
            "--data-dir",
            &node_dir.display().to_string(),
            "--cluster-listen",
            &cluster_addr.to_string(),
            "--cluster-advertise",
            &advertised.to_string(),
            "--cluster-source-ip",
            &own_ip.to_string(),
            "--mqtt-listen",
            &mqtt_real.to_string(),
            "--ws-listen",
            "off",
            "--http-listen",
            "off",
            "--dashboard-listen",
            "off",
            "--drain-grace-ms",
            "0",
            "--raft-heartbeat-ms",
            &heartbeat.to_string(),
            "--raft-election-min-ms",
            &election_min.to_string(),
            "--raft-election-max-ms",
            &election_max.to_string(),
            "--snapshot-threshold",
            &self.options.snapshot_threshold.to_string(),
            // The workloads' clients connect without credentials.
            "--allow-anonymous=true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match seed {
            Some(seed) => args.extend(["--join".to_string(), seed]),
            None => args.push("--bootstrap=true".to_string()),
        }
        args.extend(self.options.node_args.iter().cloned());
        self.nodes.push(Node {
            number,
            cluster_addr,
            advertised,
            mqtt_addr,
            data_dir,
            log_path,
            args,
            child: None,
            layer,
            paused: false,
        });
        let index = self.nodes.len() - 1;
        self.spawn(index)?;
        Ok(index)
    }

    /// A free port on 127.0.0.1 for node `number` to listen on, and the address of a new
    /// proxy listener in front of it.
    async fn behind_proxy(&self, number: usize) -> anyhow::Result<(SocketAddr, SocketAddr)> {
        let real: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let proxy = self
            .proxy
            .listen(
                format!("127.0.0.1:{}", free_port()?).parse()?,
                real,
                Endpoint::Node(number),
                source_by_ip,
            )
            .await?;
        Ok((real, proxy))
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[index];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log_path)?;
        let child = Command::new(&self.binary)
            .args(&node.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Takes node `index` out of the cluster (it asks the leader to remove it), stops it
    /// and wipes its data directory; it is dropped from `nodes` (its log stays in the
    /// store). A node that comes back later is a new node, under a new number.
    pub async fn remove_node(&mut self, index: usize) -> anyhow::Result<()> {
        // No new client operation goes to a node on its way out.
        if let Some(view) = &self.clients {
            view.remove(self.nodes[index].number);
        }
        let addr = self.nodes[index].cluster_addr.to_string();
        let left = tokio::time::timeout(
            Duration::from_secs(40),
            admin::leave(&addr, &ClusterAccess::default()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("leave timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from));
        if let Err(e) = left {
            self.admit(index);
            anyhow::bail!("{} could not leave: {e}", self.nodes[index].name());
        }
        self.kill(index)?;
        let mut node = self.nodes.remove(index);
        if let Some(layer) = node.layer.take() {
            let mountpoint = layer.mountpoint().to_path_buf();
            layer.unmount()?;
            std::fs::remove_dir(&mountpoint)?;
        }
        std::fs::remove_dir_all(&node.data_dir)
            .with_context(|| format!("wiping {}", node.data_dir.display()))?;
        Ok(())
    }

    /// Snapshots are built every this many entries.
    pub fn snapshot_threshold(&self) -> u64 {
        self.options.snapshot_threshold
    }

    /// The status of node `index`, if it answers within 2 s.
    pub async fn status(&self, index: usize) -> Option<raftmq::cluster::proto::pb::StatusResponse> {
        let addr = self.nodes[index].cluster_addr.to_string();
        tokio::time::timeout(
            Duration::from_secs(2),
            admin::status(&addr, &ClusterAccess::default()),
        )
        .await
        .ok()
        .and_then(Result::ok)
    }

    /// Whether node `index`'s process died by itself: if so, it is recorded as a crash
    /// and forgotten (a restart starts it again).
    fn reap(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[index];
        let Some(child) = node.child.as_mut() else {
            return Ok(());
        };
        if let Some(status) = child.try_wait()? {
            node.child = None;
            node.paused = false;
            if crashes::is_crash(status) {
                self.crashes
                    .push(Crash::new(node.name(), status, &node.log_path));
            }
        }
        Ok(())
    }

    /// The nodes that died on their own so far (every running node checked now).
    pub fn crashes(&mut self) -> anyhow::Result<&[Crash]> {
        for i in 0..self.nodes.len() {
            self.reap(i)?;
        }
        Ok(&self.crashes)
    }

    /// SIGKILL (a paused node is killed too).
    pub fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        self.reap(index)?;
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill()?;
            child.wait()?;
        }
        self.nodes[index].paused = false;
        Ok(())
    }

    /// SIGSTOP of `indexes`, every write not fsynced dropped from their FUSE layers,
    /// SIGKILL: what a power loss does to those nodes' disks. The bytes dropped.
    pub fn lose_unfsynced(&mut self, indexes: &[usize]) -> anyhow::Result<u64> {
        for &i in indexes {
            anyhow::ensure!(
                self.nodes[i].layer.is_some(),
                "{} has no FUSE layer",
                self.nodes[i].name()
            );
        }
        // All stopped first, so that none writes between the loss and its death.
        for &i in indexes {
            if !self.nodes[i].paused {
                self.pause(i, true)?;
            }
        }
        let lose = |db: &Db| -> u64 {
            indexes
                .iter()
                .filter_map(|&i| db.nodes[i].layer.as_ref())
                .map(LazyFs::lose)
                .sum()
        };
        let dropped = lose(self);
        for &i in indexes {
            self.kill(i)?;
        }
        // Writes a layer had received but not handled yet when it lost the rest.
        Ok(dropped + lose(self))
    }

    /// Starts a killed node again on its data directory.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.reap(index)?;
        if self.nodes[index].child.is_none() {
            self.spawn(index)?;
        }
        Ok(())
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&mut self, index: usize, stop: bool) -> anyhow::Result<()> {
        let Some(pid) = self.nodes[index].pid() else {
            return Ok(());
        };
        let signal = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        // kill(2) itself would need `unsafe`, which the workspace forbids: the command.
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        self.nodes[index].paused = stop;
        Ok(())
    }

    /// The index of the node that says it leads, among running, unpaused nodes.
    pub async fn leader(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_running() || node.paused {
                continue;
            }
            let status = tokio::time::timeout(
                Duration::from_secs(2),
                admin::status(&node.cluster_addr.to_string(), &ClusterAccess::default()),
            )
            .await;
            if let Ok(Ok(status)) = status
                && status.role == "Leader"
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits until a running node reports `voters` voters and a leader.
    pub async fn wait_voters(&self, voters: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            for node in self.nodes.iter().filter(|n| n.is_running() && !n.paused) {
                if let Ok(Ok(status)) = tokio::time::timeout(
                    Duration::from_secs(2),
                    admin::status(&node.cluster_addr.to_string(), &ClusterAccess::default()),
                )
                .await
                    && status.leader.is_some()
                    && status.members.iter().filter(|m| m.voter).count() == voters
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                anyhow::bail!("the cluster did not reach {voters} voters with a leader");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every running node has applied the same index as the leader has
    /// committed, and they agree on the state digest (`convergence`). The error is a
    /// [`Diverged`] if they stayed apart at one index up to the deadline (the run is
    /// invalid), else a timeout.
    pub async fn wait_converged(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        let mut rounds = Rounds::default();
        while Instant::now() < deadline {
            let mut statuses = Vec::new();
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    admin::status(&node.cluster_addr.to_string(), &ClusterAccess::default()),
                )
                .await
                {
                    Ok(Ok(status)) => statuses.push(status),
                    _ => break,
                }
            }
            let running = self.nodes.iter().filter(|n| n.is_running()).count();
            let observation = convergence::observe(&statuses, running);
            if observation == Observation::Converged {
                return Ok(());
            }
            rounds.record(observation);
            last = convergence::describe(&statuses);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if rounds.diverged() {
            return Err(Diverged(last).into());
        }
        anyhow::bail!("the nodes did not converge (node:applied/leader/digest): {last}")
    }

    /// Kills every node and stops the proxy; the data stays for the store. (The nftables
    /// table goes when the `Db` is dropped.)
    pub fn teardown(&mut self) {
        for i in 0..self.nodes.len() {
            if let Err(e) = self.reap(i) {
                eprintln!("checking {}'s process: {e}", self.nodes[i].name());
            }
            if self.nodes[i].paused {
                let _ = self.pause(i, false);
            }
            let _ = self.kill(i);
            if let Some(layer) = self.nodes[i].layer.take()
                && let Err(e) = layer.unmount()
            {
                eprintln!("unmounting {}'s data directory: {e}", self.nodes[i].name());
            }
        }
        self.proxy.shutdown();
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.teardown();
    }
}
