//! The nemesis: faults injected into the running cluster, one at a time, with quiet
//! periods between them, each recorded in the history as `start-<fault>` and
//! `stop-<fault>` (process `:nemesis`), and all of them healed at the end.
//!
//! - `kill`: SIGKILL of one node, the leader, a minority, or every node; restarted when
//!   the fault ends.
//! - `pause`: SIGSTOP of the leader or a follower; SIGCONT when it ends.
//! - `partition`: through the proxy between the nodes: one node isolated, the leader in
//!   the minority, the leader in the majority, halves, or one node's outgoing traffic
//!   stalled (one-way).

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
}

impl Fault {
    pub fn parse(name: &str) -> Option<Fault> {
        match name {
            "kill" => Some(Fault::Kill),
            "pause" => Some(Fault::Pause),
            "partition" => Some(Fault::Partition),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
        }
    }
}

/// What the nemesis did, for the coverage check.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Coverage {
    pub kills: usize,
    pub leader_kills: usize,
    pub pauses: usize,
    pub partitions: usize,
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
    db.proxy.faults().heal();
    recorder.nemesis("heal", json!("all"));
    Ok(())
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
    // The leader first, so that even a short run kills one (the coverage check needs it).
    let pick = if coverage.leader_kills == 0 {
        1
    } else {
        rng.random_range(0..4)
    };
    let (variant, targets) = match pick {
        0 => ("one", vec![*all.choose(rng).unwrap_or(&0)]),
        1 if leader.is_some() => ("leader", leader.into_iter().collect()),
        2 => {
            let mut shuffled = all.clone();
            shuffled.shuffle(rng);
            shuffled.truncate((all.len() - 1) / 2);
            ("minority", shuffled)
        }
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
    let faults = db.proxy.faults();
    for &a in &minority {
        for &b in &majority {
            let (a, b) = (
                Endpoint::Node(db.nodes[a].number),
                Endpoint::Node(db.nodes[b].number),
            );
            if variant == "one-way" {
                faults.block(a, b);
            } else {
                faults.partition(a, b);
            }
        }
    }
    recorder.nemesis(
        "start-partition",
        json!({"variant": variant, "minority": names(db, &minority),
               "majority": names(db, &majority)}),
    );
    coverage.partitions += 1;
    sleep(hold).await;
    faults.heal();
    recorder.nemesis("stop-partition", json!({"variant": variant}));
    Ok(())
}
