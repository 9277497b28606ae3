//! `raftmq bench raft`: committed commands per second and commit latency of the Raft log
//! on a 3-node loopback cluster with fsync on, for several numbers of concurrent
//! proposers. Each proposer sends one command at a time to a node (round-robin over the
//! nodes, so most go through a follower and are forwarded) and waits for its outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Mutex;

use crate::cluster::command::{Command, CommandBatch, Message, Publish};
use crate::cluster::network::ClusterNetwork;
use crate::cluster::proto::{self, pb};
use crate::local_cluster::LocalCluster;

#[derive(Args, Debug)]
pub struct RaftBenchArgs {
    /// Nodes in the cluster the bench starts.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Numbers of concurrent proposers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    pub proposers: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Use these running nodes (host:port of their cluster service) instead of starting a cluster.
    #[arg(long, value_delimiter = ',')]
    pub connect: Vec<String>,
    /// The raftmq binary to start nodes from [default: this one].
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// The command every proposal carries.
    #[arg(long, value_enum, default_value = "publish")]
    pub workload: Workload,
    /// Print each run as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// What each proposal carries.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A QoS 1 publish of 64 bytes that no persistent session subscribes to: the path of
    /// every QoS 1 PUBLISH a client sends (forwarding, group commit, replication, fsync on
    /// every node, apply with its subscription lookup), with no state written by apply.
    Publish,
    /// The same publish, retained: apply also stores the message and replaces the topic's
    /// previous retained one (about five writes to the state tree per command).
    Retained,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Publish => "publish",
            Workload::Retained => "retained",
        }
    }
}

/// The command proposer `proposer` sends as its `seq`th: one topic per proposer, so the
/// state stays bounded, published by the broker itself.
fn command(workload: Workload, proposer: usize, seq: u64) -> Command {
    let now = crate::cluster::clock::now();
    let mut payload = [0u8; 64];
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    Command::Publish(Publish {
        from: None,
        packet_id: None,
        message: Message::new(
            format!("bench/{proposer}"),
            bytes::Bytes::copy_from_slice(&payload),
            1,
            workload == Workload::Retained,
        ),
        now,
    })
}

struct Run {
    proposers: usize,
    committed: u64,
    failed: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

pub async fn run(args: &RaftBenchArgs) -> anyhow::Result<()> {
    let _cluster;
    let targets = if args.connect.is_empty() {
        let binary = match &args.binary {
            Some(path) => path.clone(),
            None => std::env::current_exe()?,
        };
        eprintln!(
            "starting a {}-node cluster from {}",
            args.nodes,
            binary.display()
        );
        let cluster = LocalCluster::start(&binary, args.nodes, &[]).await?;
        let addrs = cluster
            .nodes
            .iter()
            .map(|n| n.cluster_addr.clone())
            .collect();
        _cluster = Some(cluster);
        addrs
    } else {
        _cluster = None;
        args.connect.clone()
    };
    if !args.json {
        println!("workload: {}", args.workload.name());
        println!(
            "{:>10} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9}",
            "proposers", "commands/s", "failed", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms"
        );
    }
    for &proposers in &args.proposers {
        let run = one_run(
            &targets,
            args.workload,
            proposers,
            Duration::from_secs(args.duration),
        )
        .await?;
        let mut sorted = run.latencies_us.clone();
        sorted.sort_unstable();
        let rate = run.committed as f64 / run.elapsed.as_secs_f64();
        let (p50, p90, p99, p999) = (
            percentile(&sorted, 50.0),
            percentile(&sorted, 90.0),
            percentile(&sorted, 99.0),
            percentile(&sorted, 99.9),
        );
        if args.json {
            println!(
                "{{\"workload\":\"{}\",\"proposers\":{},\"commands_per_sec\":{rate:.0},\"committed\":{},\"failed\":{},\"p50_ms\":{p50:.3},\"p90_ms\":{p90:.3},\"p99_ms\":{p99:.3},\"p999_ms\":{p999:.3}}}",
                args.workload.name(),
                run.proposers,
                run.committed,
                run.failed
            );
        } else {
            println!(
                "{:>10} {rate:>12.0} {:>8} {p50:>9.2} {p90:>9.2} {p99:>9.2} {p999:>9.2}",
                run.proposers, run.failed
            );
        }
    }
    Ok(())
}

async fn one_run(
    targets: &[String],
    workload: Workload,
    proposers: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let network = ClusterNetwork::default();
    let results = Arc::new(Mutex::new((0u64, 0u64, Vec::new())));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for p in 0..proposers {
        let mut client = network.client(&targets[p % targets.len()])?;
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let batch =
                    match proto::encode("batch", &CommandBatch(vec![command(workload, p, seq)])) {
                        Ok(bytes) => bytes,
                        Err(_) => break,
                    };
                let sent = Instant::now();
                let mut request = tonic::Request::new(pb::ProposeRequest {
                    batch: batch.into(),
                    forwarded: false,
                });
                request.set_timeout(Duration::from_secs(10));
                match client.propose(request).await {
                    Ok(_) => {
                        ok += 1;
                        latencies.push(sent.elapsed().as_micros() as u64);
                    }
                    Err(_) => failed += 1,
                }
            }
            let mut shared = results.lock().await;
            shared.0 += ok;
            shared.1 += failed;
            shared.2.extend(latencies);
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed();
    let (committed, failed, latencies_us) = std::mem::take(&mut *results.lock().await);
    Ok(Run {
        proposers,
        committed,
        failed,
        elapsed,
        latencies_us,
    })
}
