//! The nemesis: faults injected into the running cluster, one at a time, with quiet
//! periods between them, each recorded in the history as `start-<fault>` and
//! `stop-<fault>` (process `:nemesis`), and all of them healed at the end.
//!
//! - `kill`: SIGKILL of one node, the leader, a minority, or every node; restarted when
//!   the fault ends. The first kill is the leader's, the second a follower's kept down
//!   until the log was compacted past it (it catches up from a snapshot).
//! - `pause`: SIGSTOP of the leader or a follower; SIGCONT when it ends.
//! - `partition`: one node isolated, the leader in the minority, the leader in the
//!   majority, halves, or one node's outgoing traffic stopped (one-way); the links are cut
//!   as the network mode does it (`network`: the proxy, or nftables rules).
//! - `clients`: the clients cut off one node (its connections reset, new ones refused),
//!   so their sessions move to another node while Raft stays healthy.
//! - `delay`: latency and jitter on every link through the proxy, or on one node's (in
//!   the nftables mode only client links cross the proxy, so only they are delayed).
//! - `membership`: a node added (it joins and catches up, and once a voter the clients
//!   use it), or one removed (the clients stop using it first), wiped and dropped (a
//!   later addition is a new node under a new number): one change at a time, never
//!   below 3 voters.
//! - `reset`: the open connections of one node (cluster and clients; clients only in the
//!   nftables mode), or of every client, reset once a second.
//! - `lose-unfsynced-writes`: every node (always first), the leader, a follower or a
//!   minority stopped, every write their data directories' FUSE layers
//!   ([`crate::lazyfs`]) hold unfsynced dropped, killed, restarted when the fault ends:
//!   a power loss of those nodes. A plain SIGKILL leaves the page cache intact, so only
//!   this catches a missing fsync.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::db::Db;
use crate::proxy::Endpoint;
use crate::recorder::Recorder;

/// The fault families a test may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    Kill,
    Pause,
    Partition,
    Clients,
    Delay,
    Reset,
    Membership,
    LoseUnfsynced,
}

impl Fault {
    pub fn parse(name: &str) -> Option<Fault> {
        match name {
            "kill" => Some(Fault::Kill),
            "pause" => Some(Fault::Pause),
            "partition" => Some(Fault::Partition),
            "clients" => Some(Fault::Clients),
            "delay" => Some(Fault::Delay),
            "reset" => Some(Fault::Reset),
            "membership" => Some(Fault::Membership),
            "lose-unfsynced-writes" => Some(Fault::LoseUnfsynced),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Clients => "clients",
            Fault::Delay => "delay",
            Fault::Reset => "reset",
            Fault::Membership => "membership",
            Fault::LoseUnfsynced => "lose-unfsynced-writes",
        }
    }
}

/// What the nemesis did, for the coverage check.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Coverage {
    pub kills: usize,
    pub leader_kills: usize,
    /// Followers kept down until the log was compacted past them.
    pub lagging_kills: usize,
    /// A lagging follower's log says it installed a snapshot.
    pub snapshot_installed: bool,
    pub pauses: usize,
    pub partitions: usize,
    pub client_cuts: usize,
    pub delays: usize,
    pub resets: usize,
    pub joins: usize,
    pub removals: usize,
    /// `lose-unfsynced-writes` faults, and the unfsynced bytes they dropped.
    pub unfsynced_losses: usize,
    pub unfsynced_bytes_dropped: u64,
}

/// Timing of the rotation.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub quiet: (Duration, Duration),
    pub fault: (Duration, Duration),
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            quiet: (Duration::from_secs(3), Duration::from_secs(6)),
            fault: (Duration::from_secs(3), Duration::from_secs(8)),
        }
    }
}

fn between(rng: &mut StdRng, (low, high): (Duration, Duration)) -> Duration {
    let (low, high) = (low.as_millis() as u64, high.as_millis() as u64);
    Duration::from_millis(rng.random_range(low..=high.max(low)))
}

/// Injects faults from `faults` in turn until `until`, then heals everything.
pub async fn run(
    db: &mut Db,
    recorder: &Recorder,
    faults: &[Fault],
    schedule: Schedule,
    rng: &mut StdRng,
    until: Instant,
) -> anyhow::Result<Coverage> {
    let mut coverage = Coverage::default();
    let mut turn = 0;
    while Instant::now() < until {
        sleep(between(rng, schedule.quiet).min(until - Instant::now())).await;
        if Instant::now() >= until || faults.is_empty() {
            break;
        }
        // Every family in turn (so a short test still sees each), the variant at random.
        let fault = faults[turn % faults.len()];
        turn += 1;
        let hold = between(rng, schedule.fault);
        match fault {
            Fault::Kill => kill(db, recorder, rng, hold, &mut coverage).await?,
            Fault::Pause => pause(db, recorder, rng, hold, &mut coverage).await?,
            Fault::Partition => partition(db, recorder, rng, hold, &mut coverage).await?,
            Fault::Clients => clients(db, recorder, rng, hold, &mut coverage).await,
            Fault::Delay => delay(db, recorder, rng, hold, &mut coverage).await,
            Fault::Reset => reset(db, recorder, rng, hold, &mut coverage).await,
            Fault::Membership => membership(db, recorder, rng, &mut coverage).await?,
            Fault::LoseUnfsynced => {
                lose_unfsynced(db, recorder, rng, hold, &mut coverage).await?;
            }
        }
    }
    heal(db, recorder)?;
    Ok(coverage)
}

/// Restarts every node, continues paused ones and removes every network fault.
pub fn heal(db: &mut Db, recorder: &Recorder) -> anyhow::Result<()> {
    for i in 0..db.nodes.len() {
        if db.nodes[i].paused {
            db.pause(i, false)?;
        }
        if !db.nodes[i].is_running() {
            db.restart(i)?;
        }
    }
    db.heal_network()?;
    recorder.nemesis("heal", json!("all"));
    Ok(())
}

/// A random minority of `n` nodes (never empty with 3 or more).
fn minority(rng: &mut StdRng, n: usize) -> Vec<usize> {
    let mut shuffled: Vec<usize> = (0..n).collect();
    shuffled.shuffle(rng);
    shuffled.truncate((n - 1) / 2);
    shuffled
}

fn names(db: &Db, indexes: &[usize]) -> Vec<String> {
    indexes.iter().map(|&i| db.nodes[i].name()).collect()
}

async fn kill(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let all: Vec<usize> = (0..db.nodes.len()).collect();
    let leader = db.leader().await;
    if coverage.leader_kills > 0 && !coverage.snapshot_installed {
        return lagging_kill(db, recorder, leader, coverage).await;
    }
    // The leader first, so that even a short run kills one (the coverage check needs it).
    let pick = if coverage.leader_kills == 0 {
        1
    } else {
        rng.random_range(0..4)
    };
    let (variant, targets) = match pick {
        0 => ("one", vec![*all.choose(rng).unwrap_or(&0)]),
        1 if leader.is_some() => ("leader", leader.into_iter().collect()),
        2 => ("minority", minority(rng, all.len())),
        3 => ("all", all.clone()),
        _ => ("one", vec![*all.choose(rng).unwrap_or(&0)]),
    };
    recorder.nemesis(
        "start-kill",
        json!({"variant": variant, "nodes": names(db, &targets)}),
    );
    for &i in &targets {
        db.kill(i)?;
    }
    coverage.kills += 1;
    if variant == "leader" || targets.iter().any(|t| Some(*t) == leader) {
        coverage.leader_kills += 1;
    }
    sleep(hold).await;
    for &i in &targets {
        db.restart(i)?;
    }
    recorder.nemesis("stop-kill", json!({"nodes": names(db, &targets)}));
    Ok(())
}

/// What a node logs when it installed a snapshot sent by the leader.
pub const SNAPSHOT_INSTALLED: &str = "snapshot installed from the leader";

/// How long a lagging kill waits for the log to move past the killed node.
const LAGGING_KILL_MAX: Duration = Duration::from_secs(40);

/// Kills a follower and keeps it down until the leader's log was compacted past the
/// follower's last entry, so that it can only catch up from a snapshot: the coverage
/// check wants one snapshot installed per run that kills nodes.
async fn lagging_kill(
    db: &mut Db,
    recorder: &Recorder,
    leader: Option<usize>,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let Some(leader) = leader else {
        return Ok(());
    };
    let target = (0..db.nodes.len()).find(|i| *i != leader).unwrap_or(leader);
    let Some(last) = db.status(target).await.and_then(|s| s.last_log_index) else {
        return Ok(());
    };
    recorder.nemesis(
        "start-kill",
        json!({"variant": "lagging", "nodes": names(db, &[target]), "last_log_index": last}),
    );
    db.kill(target)?;
    coverage.kills += 1;
    coverage.lagging_kills += 1;
    // Compacted past `last`: a snapshot at least one threshold (the entries kept behind
    // it) and one more beyond.
    // A threshold more as margin, and a moment for the purge that follows the snapshot.
    let wanted = last + 3 * db.snapshot_threshold();
    let deadline = Instant::now() + LAGGING_KILL_MAX;
    let mut reached = None;
    while Instant::now() < deadline {
        let snapshot = db.status(leader).await.and_then(|s| s.snapshot_index);
        if snapshot.is_some_and(|s| s >= wanted) {
            reached = snapshot;
            sleep(Duration::from_secs(1)).await;
            break;
        }
        sleep(Duration::from_millis(500)).await;
    }
    let log = db.nodes[target].log_path.clone();
    let installs = || {
        std::fs::read_to_string(&log)
            .map(|text| text.matches(SNAPSHOT_INSTALLED).count())
            .unwrap_or(0)
    };
    let before = installs();
    db.restart(target)?;
    // Until it shows, later kills are lagging ones again.
    let seen_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < seen_by && installs() == before {
        sleep(Duration::from_millis(500)).await;
    }
    coverage.snapshot_installed = installs() > before;
    recorder.nemesis(
        "stop-kill",
        json!({"nodes": names(db, &[target]), "leader_snapshot": reached,
               "snapshot_installed": coverage.snapshot_installed}),
    );
    Ok(())
}

async fn lose_unfsynced(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let all: Vec<usize> = (0..db.nodes.len()).collect();
    let leader = db.leader().await;
    let followers: Vec<usize> = all.iter().copied().filter(|i| Some(*i) != leader).collect();
    // The first takes every node at once, a power loss of the whole cluster: with one
    // node at a time a majority still holds every committed entry, and a missing fsync
    // shows only by chance.
    let (variant, targets) = match leader {
        _ if coverage.unfsynced_losses == 0 || rng.random_bool(0.1) => ("all", all.clone()),
        _ if rng.random_bool(0.15) => ("minority", minority(rng, all.len())),
        Some(leader) if rng.random_bool(0.5) => ("leader", vec![leader]),
        _ => ("follower", vec![*followers.choose(rng).unwrap_or(&0)]),
    };
    let dropped = db.lose_unfsynced(&targets)?;
    // Recorded once done (microseconds later), with the evidence that it removed data.
    recorder.nemesis(
        "start-lose-unfsynced-writes",
        json!({"variant": variant, "nodes": names(db, &targets), "dropped_bytes": dropped}),
    );
    coverage.unfsynced_losses += 1;
    coverage.unfsynced_bytes_dropped += dropped;
    sleep(hold).await;
    for &i in &targets {
        db.restart(i)?;
    }
    recorder.nemesis(
        "stop-lose-unfsynced-writes",
        json!({"nodes": names(db, &targets)}),
    );
    Ok(())
}

async fn pause(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let leader = db.leader().await;
    let followers: Vec<usize> = (0..db.nodes.len()).filter(|i| Some(*i) != leader).collect();
    let (variant, target) = match leader {
        Some(leader) if rng.random_bool(0.5) => ("leader", leader),
        _ => ("follower", *followers.choose(rng).unwrap_or(&0)),
    };
    recorder.nemesis(
        "start-pause",
        json!({"variant": variant, "nodes": names(db, &[target])}),
    );
    db.pause(target, true)?;
    coverage.pauses += 1;
    sleep(hold).await;
    db.pause(target, false)?;
    recorder.nemesis("stop-pause", json!({"nodes": names(db, &[target])}));
    Ok(())
}

async fn partition(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let n = db.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let leader = db.leader().await;
    let others = |x: usize| all.iter().copied().filter(|i| *i != x).collect::<Vec<_>>();
    let random = *all.choose(rng).unwrap_or(&0);
    let (variant, minority) = match rng.random_range(0..5) {
        0 => ("isolate-one", vec![random]),
        1 if leader.is_some() => ("leader-minority", leader.into_iter().collect()),
        2 if leader.is_some() => {
            // A follower cut off: the leader keeps its majority.
            let follower = others(leader.unwrap_or(0));
            ("leader-majority", vec![*follower.choose(rng).unwrap_or(&0)])
        }
        3 => {
            let mut shuffled = all.clone();
            shuffled.shuffle(rng);
            shuffled.truncate(n / 2);
            ("halves", shuffled)
        }
        4 => ("one-way", vec![random]),
        _ => ("isolate-one", vec![random]),
    };
    let majority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !minority.contains(i))
        .collect();
    let links = db.links();
    for &a in &minority {
        for &b in &majority {
            links.cut(db.nodes[a].number, db.nodes[b].number, variant == "one-way")?;
        }
    }
    recorder.nemesis(
        "start-partition",
        json!({"variant": variant, "minority": names(db, &minority),
               "majority": names(db, &majority), "net": db.net.name()}),
    );
    coverage.partitions += 1;
    sleep(hold).await;
    links.heal()?;
    recorder.nemesis("stop-partition", json!({"variant": variant}));
    Ok(())
}

async fn clients(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) {
    let leader = db.leader().await;
    let all: Vec<usize> = (0..db.nodes.len()).collect();
    let (variant, target) = match leader {
        Some(leader) if rng.random_bool(0.5) => ("leader", leader),
        _ => ("one", *all.choose(rng).unwrap_or(&0)),
    };
    let faults = db.proxy.faults();
    faults.partition(Endpoint::Clients, Endpoint::Node(db.nodes[target].number));
    recorder.nemesis(
        "start-clients",
        json!({"variant": variant, "nodes": names(db, &[target])}),
    );
    coverage.client_cuts += 1;
    sleep(hold).await;
    faults.heal();
    recorder.nemesis("stop-clients", json!({"nodes": names(db, &[target])}));
}

async fn delay(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) {
    let all: Vec<usize> = (0..db.nodes.len()).collect();
    let latency = Duration::from_millis(rng.random_range(20..=150));
    let jitter = Duration::from_millis(rng.random_range(0..=50));
    let (variant, target) = if rng.random_bool(0.5) {
        ("all", None)
    } else {
        ("one", Some(*all.choose(rng).unwrap_or(&0)))
    };
    let faults = db.proxy.faults();
    faults.delay(
        target.map(|i| Endpoint::Node(db.nodes[i].number)),
        latency,
        jitter,
    );
    let nodes = target.map_or_else(|| names(db, &all), |i| names(db, &[i]));
    recorder.nemesis(
        "start-delay",
        json!({"variant": variant, "nodes": nodes,
               "delay_ms": latency.as_millis() as u64, "jitter_ms": jitter.as_millis() as u64}),
    );
    coverage.delays += 1;
    sleep(hold).await;
    faults.heal();
    recorder.nemesis("stop-delay", json!({"nodes": nodes}));
}

async fn reset(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    hold: Duration,
    coverage: &mut Coverage,
) {
    let all: Vec<usize> = (0..db.nodes.len()).collect();
    let (variant, endpoint, nodes) = if rng.random_bool(0.3) {
        ("clients", Endpoint::Clients, Vec::new())
    } else {
        let i = *all.choose(rng).unwrap_or(&0);
        ("node", Endpoint::Node(db.nodes[i].number), names(db, &[i]))
    };
    recorder.nemesis("start-reset", json!({"variant": variant, "nodes": nodes}));
    let faults = db.proxy.faults();
    let ends = Instant::now() + hold;
    while Instant::now() < ends {
        faults.reset(endpoint);
        coverage.resets += 1;
        sleep(Duration::from_secs(1).min(ends - Instant::now())).await;
    }
    recorder.nemesis("stop-reset", json!({"nodes": nodes}));
}

/// The smallest voter count a removal may leave.
const MIN_VOTERS: usize = 3;

async fn membership(
    db: &mut Db,
    recorder: &Recorder,
    rng: &mut StdRng,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    let voters = db.nodes.len();
    if voters > MIN_VOTERS {
        let leader = db.leader().await;
        let all: Vec<usize> = (0..voters).collect();
        let (variant, target) = match leader {
            Some(leader) if rng.random_bool(0.3) => ("remove-leader", leader),
            _ => ("remove", *all.choose(rng).unwrap_or(&0)),
        };
        let name = db.nodes[target].name();
        recorder.nemesis(
            "start-membership",
            json!({"variant": variant, "nodes": [name]}),
        );
        db.remove_node(target).await?;
        coverage.removals += 1;
        db.wait_voters(voters - 1, Duration::from_secs(60)).await?;
        recorder.nemesis(
            "stop-membership",
            json!({"nodes": [name], "voters": voters - 1}),
        );
    } else {
        recorder.nemesis("start-membership", json!({"variant": "add"}));
        let index = db.add_node().await?;
        let name = db.nodes[index].name();
        db.wait_voters(voters + 1, Duration::from_secs(90)).await?;
        db.admit(index);
        coverage.joins += 1;
        recorder.nemesis(
            "stop-membership",
            json!({"nodes": [name], "voters": voters + 1}),
        );
    }
    Ok(())
}
