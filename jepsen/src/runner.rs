//! One test, start to verdict: take (or build) the release `raftmq` binary, start the
//! nodes in the store directory, run the workload with the nemesis for the time limit,
//! heal everything, wait for the cluster to recover, drain the subscribers, check the
//! history, and write the store (`store/<workload>/<timestamp>/`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::time::Instant;

use crate::checker::{self, Report, Validity};
use crate::convergence::Diverged;
use crate::crashes;
use crate::db::{Db, DbOptions};
use crate::history::{History, edn};
use crate::nemesis::{self, Coverage, Fault, Schedule};
use crate::network::NetMode;
use crate::nodes::NodeView;
use crate::recorder::Recorder;
use crate::workload::queue::{self, QueueConfig};
use crate::workload::retained::{Registers, RetainedConfig};
use crate::workload::session::{self, SessionConfig};

/// The workloads `--workload` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    QueueQos1,
    QueueQos2,
    Retained,
    Session,
}

impl Workload {
    pub fn parse(name: &str) -> Option<Workload> {
        match name {
            "queue-qos1" => Some(Workload::QueueQos1),
            "queue-qos2" => Some(Workload::QueueQos2),
            "retained" => Some(Workload::Retained),
            "session" => Some(Workload::Session),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::QueueQos1 => "queue-qos1",
            Workload::QueueQos2 => "queue-qos2",
            Workload::Retained => "retained",
            Workload::Session => "session",
        }
    }
}

/// Everything a test run needs.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub workload: Workload,
    pub faults: Vec<Fault>,
    pub nodes: usize,
    pub time_limit: Duration,
    pub seed: u64,
    /// The raftmq binary; built (release) when absent.
    pub binary: Option<PathBuf>,
    pub store: PathBuf,
    pub command_line: String,
    pub snapshot_threshold: u64,
    /// How links between nodes are cut (nftables: this process must run in the harness's
    /// network namespace).
    pub net: NetMode,
    /// Appended to every node's command line.
    pub node_args: Vec<String>,
}

/// The verdict and where the store is.
pub struct Outcome {
    pub valid: Validity,
    pub store: PathBuf,
    pub reports: Vec<Report>,
}

/// Runs one test. An `Err` means the harness itself failed (exit code 2).
pub async fn run(config: &TestConfig) -> anyhow::Result<Outcome> {
    let binary = match &config.binary {
        Some(binary) => binary.clone(),
        None => build_release()?,
    };
    let store = config.store.join(config.workload.name()).join(timestamp());
    std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    std::fs::write(store.join("seed"), config.seed.to_string())?;
    std::fs::write(store.join("command"), &config.command_line)?;
    println!("store: {}", store.display());

    let options = DbOptions {
        nodes: config.nodes,
        snapshot_threshold: config.snapshot_threshold,
        node_args: config.node_args.clone(),
        lazyfs: config.faults.contains(&Fault::LoseUnfsynced),
        net: config.net,
    };
    let mut db = Db::start(&binary, &store, &options)
        .await
        .context("starting the cluster")?;
    let recorder = Recorder::new();
    recorder.nemesis("network", json!({"mode": config.net.name()}));
    let rng = StdRng::seed_from_u64(config.seed);
    let nodes = db.client_view()?;
    let mut faults = Faults {
        db: &mut db,
        recorder: &recorder,
        config,
        rng,
    };
    let ran = match config.workload {
        Workload::QueueQos1 | Workload::QueueQos2 => {
            run_queue(config, nodes, &recorder, &mut faults).await
        }
        Workload::Retained => run_retained(config, nodes, &recorder, &mut faults).await,
        Workload::Session => run_session(config, nodes, &recorder, &mut faults).await,
    };
    db.teardown();
    let crashes = db.crashes()?.to_vec();
    // A harness failure mid-run still leaves the history and an unknown verdict behind.
    let (coverage, recovered) = ran.unwrap_or_else(|e| (Coverage::default(), Err(e)));

    let history = recorder.history();
    history.write_jsonl(&store.join("history.jsonl"))?;
    history.write_edn(&store.join("history.edn"))?;
    // Plots are for reading the run, not part of the verdict.
    if let Err(e) = crate::plot::write_plots(&history, config.workload.name(), &store) {
        eprintln!("plots not written: {e:#}");
    }
    let mut reports = match config.workload {
        Workload::QueueQos1 | Workload::QueueQos2 => {
            vec![checker::queue(&history), checker::order(&history)]
        }
        Workload::Retained => vec![checker::register(&history)],
        Workload::Session => vec![checker::session(&history)],
    };
    let snapshot_installs = count_in_logs(&store, nemesis::SNAPSHOT_INSTALLED);
    reports.push(coverage_report(
        &config.faults,
        &coverage,
        snapshot_installs,
        &history,
    ));
    reports.push(crashes::report(&crashes));
    if let Err(e) = &recovered {
        // Diverged replicas are a finding; a cluster that did not come back in time is not
        // (it may be slow), but neither is it a pass.
        let valid = if e.downcast_ref::<Diverged>().is_some() {
            Validity::Invalid
        } else {
            Validity::Unknown
        };
        reports.push(Report {
            checker: "recovery".into(),
            valid,
            details: json!({"error": e.to_string()}),
        });
    }
    let valid = checker::combine(&reports);
    write_results(&store, valid, config.net, &reports)?;
    Ok(Outcome {
        valid,
        store,
        reports,
    })
}

/// The nemesis's side of a run.
struct Faults<'a> {
    db: &'a mut Db,
    recorder: &'a Recorder,
    config: &'a TestConfig,
    rng: StdRng,
}

impl Faults<'_> {
    /// Runs the nemesis until `until`, then heals and waits for the cluster to recover
    /// (every node back, one leader, everyone caught up): what happened, and whether
    /// it recovered.
    async fn run(&mut self, until: Instant) -> anyhow::Result<(Coverage, anyhow::Result<()>)> {
        let coverage = nemesis::run(
            self.db,
            self.recorder,
            &self.config.faults,
            Schedule::default(),
            &mut self.rng,
            until,
        )
        .await
        .context("the nemesis")?;
        let db = &*self.db;
        let recovered = async {
            db.wait_voters(db.nodes.len(), Duration::from_secs(60))
                .await?;
            db.wait_converged(Duration::from_secs(60)).await
        }
        .await;
        self.recorder.nemesis("recovered", json!(recovered.is_ok()));
        Ok((coverage, recovered))
    }
}

type Ran = anyhow::Result<(Coverage, anyhow::Result<()>)>;

/// queue-qos1/2: subscribers first, publishers and faults for the time limit, then the
/// subscribers drain.
async fn run_queue(
    config: &TestConfig,
    nodes: NodeView,
    recorder: &Recorder,
    faults: &mut Faults<'_>,
) -> Ran {
    let workload = QueueConfig {
        qos: if config.workload == Workload::QueueQos2 {
            2
        } else {
            1
        },
        ..QueueConfig::default()
    };
    let subscribers = queue::start_subscribers(&workload, nodes.clone(), recorder.clone())
        .await
        .context("starting the subscribers")?;
    let until = Instant::now() + config.time_limit;
    let publishers = tokio::spawn({
        let (workload, recorder) = (workload.clone(), recorder.clone());
        async move { queue::publish(&workload, nodes, recorder, until).await }
    });
    let ran = faults.run(until).await;
    publishers.await.context("the publishers")?;
    subscribers
        .drain(
            Duration::from_secs(5),
            Instant::now() + Duration::from_secs(60),
        )
        .await;
    ran
}

/// retained: every key seeded, readers and writers and faults for the time limit, then
/// a final read of every key.
async fn run_retained(
    config: &TestConfig,
    nodes: NodeView,
    recorder: &Recorder,
    faults: &mut Faults<'_>,
) -> Ran {
    let registers = Registers::new(RetainedConfig::default(), nodes, recorder.clone());
    registers
        .seed(Duration::from_secs(30))
        .await
        .context("seeding the registers")?;
    let until = Instant::now() + config.time_limit;
    let workers = tokio::spawn({
        let registers = registers.clone();
        async move { registers.run(until).await }
    });
    let ran = faults.run(until).await;
    workers.await.context("the workers")?;
    registers.final_reads(Duration::from_secs(30)).await;
    ran
}

/// How many lines of the nodes' logs (`n*.log` in the store) contain `needle`.
fn count_in_logs(store: &Path, needle: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(store) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('n') && name.ends_with(".log")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.lines().filter(|l| l.contains(needle)).count())
        .sum()
}

/// session: connection cycles and publishers for the time limit.
async fn run_session(
    config: &TestConfig,
    nodes: NodeView,
    recorder: &Recorder,
    faults: &mut Faults<'_>,
) -> Ran {
    let until = Instant::now() + config.time_limit;
    let workers = tokio::spawn({
        let recorder = recorder.clone();
        async move { session::run(&SessionConfig::default(), nodes, recorder, until).await }
    });
    let ran = faults.run(until).await;
    workers.await.context("the session workers")?;
    ran
}

/// The requested faults must really have happened, or the run proves little: at least
/// one leader kill when `kill` was asked for, each requested family at least once, and a
/// snapshot installed on a node that fell behind when nodes were killed or replaced.
fn coverage_report(
    faults: &[Fault],
    coverage: &Coverage,
    snapshot_installs: usize,
    history: &History,
) -> Report {
    let mut missing = Vec::new();
    let snapshot_expected = faults
        .iter()
        .any(|f| matches!(f, Fault::Kill | Fault::Membership));
    if snapshot_expected && snapshot_installs == 0 {
        missing.push("snapshot-install");
    }
    for fault in faults {
        let happened = match fault {
            Fault::Kill => coverage.kills > 0 && coverage.leader_kills > 0,
            Fault::Pause => coverage.pauses > 0,
            Fault::Partition => coverage.partitions > 0,
            Fault::Clients => coverage.client_cuts > 0,
            Fault::Delay => coverage.delays > 0,
            Fault::Reset => coverage.resets > 0,
            Fault::Membership => coverage.joins + coverage.removals > 0,
            Fault::LoseUnfsynced => coverage.unfsynced_losses > 0,
        };
        if !happened {
            missing.push(fault.name());
        }
    }
    let ops = history.ops.len();
    Report {
        checker: "coverage".into(),
        valid: if missing.is_empty() {
            Validity::Valid
        } else {
            Validity::Unknown
        },
        details: json!({"coverage": coverage, "snapshot_installs": snapshot_installs,
                        "missing": missing, "ops": ops}),
    }
}

fn write_results(
    store: &Path,
    valid: Validity,
    net: NetMode,
    reports: &[Report],
) -> anyhow::Result<()> {
    let results = json!({
        "valid": valid,
        "net": net.name(),
        "checkers": reports.iter().map(|r| (r.checker.clone(), json!({"valid": r.valid, "details": r.details}))).collect::<serde_json::Map<_, _>>(),
    });
    std::fs::write(
        store.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    // EDN: `:valid?` as Jepsen spells it, `:unknown` for an undecided verdict.
    let verdict = match valid {
        Validity::Valid => "true",
        Validity::Invalid => "false",
        Validity::Unknown => ":unknown",
    };
    let mut text = format!("{{:valid? {verdict},\n :net :{}", net.name());
    for report in reports {
        let v = match report.valid {
            Validity::Valid => "true",
            Validity::Invalid => "false",
            Validity::Unknown => ":unknown",
        };
        text.push_str(&format!(
            ",\n :{} {{:valid? {v}, :details {}}}",
            report.checker,
            edn(&report.details)
        ));
    }
    text.push_str("}\n");
    std::fs::write(store.join("results.edn"), text)?;
    Ok(())
}

/// `cargo build --release --bin raftmq` in the workspace; the binary's path.
pub fn build_release() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace root")?
        .to_path_buf();
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "--bin", "raftmq"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "cargo build --release failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("release").join("raftmq"))
}

/// UTC `YYYYMMDDTHHMMSS.mmm`, for the store directory.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_413), (2025, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
