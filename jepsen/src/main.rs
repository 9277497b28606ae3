//! `cargo run -p jepsen -- test ...`: one Jepsen-style test of raftmq. Exit codes: 0 the
//! history is valid, 1 it is not, 2 unknown (the harness failed, or could not decide —
//! never reported as a pass). With `--net nftables` the process runs itself again inside
//! a network namespace of its own (`netfilter`) and reports that run's exit code.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jepsen::checker::Validity;
use jepsen::nemesis::Fault;
use jepsen::netfilter;
use jepsen::network::NetMode;
use jepsen::runner::{self, TestConfig, Workload};

#[derive(Parser)]
#[command(name = "jepsen", about = "Jepsen-style consistency tests of raftmq")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one test and prints the verdict.
    Test {
        /// queue-qos1 | queue-qos2 | retained | session
        #[arg(long)]
        workload: String,
        /// Comma-separated fault families: kill, pause, partition, clients, delay, reset,
        /// membership, lose-unfsynced-writes (or none).
        #[arg(long, default_value = "kill,partition")]
        nemesis: String,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Seconds of workload under faults (recovery and drain come after).
        #[arg(long, default_value_t = 60)]
        time_limit: u64,
        /// Seed of the nemesis's choices (random when absent; recorded in the store).
        #[arg(long)]
        seed: Option<u64>,
        /// The raftmq binary; by default `cargo build --release` builds it.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where test results go.
        #[arg(long, default_value = "store")]
        store: PathBuf,
        /// Snapshot every this many entries (small, so that snapshots are installed).
        #[arg(long, default_value_t = 500)]
        snapshot_threshold: u64,
        /// How links between nodes are cut: proxy (the harness's TCP proxy, no root), or
        /// nftables (packets dropped by nftables rules in a network namespace the harness
        /// creates; root, with unshare, nft and ip).
        #[arg(long, default_value = "proxy")]
        net: String,
        /// One more argument for every node's command line (repeatable), e.g.
        /// `--node-arg=--unsafe-no-fsync`.
        #[arg(long = "node-arg", allow_hyphen_values = true)]
        node_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Cmd::Test {
        workload,
        nemesis,
        nodes,
        time_limit,
        seed,
        binary,
        store,
        snapshot_threshold,
        net,
        node_args,
    } = cli.command;
    let Some(workload) = Workload::parse(&workload) else {
        eprintln!("unknown workload {workload:?} (queue-qos1, queue-qos2, retained, session)");
        return ExitCode::from(2);
    };
    let mut faults = Vec::new();
    for name in nemesis
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "none")
    {
        match Fault::parse(name) {
            Some(fault) => faults.push(fault),
            None => {
                eprintln!(
                    "unknown nemesis {name:?} (kill, pause, partition, clients, delay, reset, membership, lose-unfsynced-writes, none)"
                );
                return ExitCode::from(2);
            }
        }
    }
    if nodes < 3 {
        eprintln!("--nodes must be at least 3");
        return ExitCode::from(2);
    }
    let Some(net) = NetMode::parse(&net) else {
        eprintln!("unknown network mode {net:?} (proxy, nftables)");
        return ExitCode::from(2);
    };
    if net == NetMode::Nftables && !netfilter::in_namespace() {
        if netfilter::marked() {
            eprintln!(
                "--net nftables: {} is set, but this is not the harness's namespace",
                netfilter::IN_NAMESPACE
            );
            return ExitCode::from(2);
        }
        return in_namespace(binary.as_deref());
    }
    if net == NetMode::Nftables
        && let Err(e) = netfilter::loopback_up()
    {
        eprintln!("--net nftables: {e:#}");
        return ExitCode::from(2);
    }
    let config = TestConfig {
        workload,
        faults,
        nodes,
        time_limit: Duration::from_secs(time_limit),
        seed: seed.unwrap_or_else(rand::random),
        binary,
        store,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        snapshot_threshold,
        net,
        node_args,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(runner::run(&config)) {
        Ok(outcome) => {
            for report in &outcome.reports {
                println!(
                    "{:<10} {:?} {}",
                    report.checker, report.valid, report.details
                );
            }
            println!(
                "verdict: {:?} (store {})",
                outcome.valid,
                outcome.store.display()
            );
            match outcome.valid {
                Validity::Valid => ExitCode::SUCCESS,
                Validity::Invalid => ExitCode::from(1),
                Validity::Unknown => ExitCode::from(2),
            }
        }
        Err(e) => {
            eprintln!("the harness failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs this very command again in a network namespace of its own, with the raftmq binary
/// built here first (the namespace has no network for cargo), and returns its exit code.
fn in_namespace(binary: Option<&Path>) -> ExitCode {
    if let Some(why) = netfilter::unavailable() {
        eprintln!("--net nftables cannot run here: {why}");
        return ExitCode::from(2);
    }
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if binary.is_none() {
        match runner::build_release() {
            Ok(built) => args.extend([OsString::from("--binary"), built.into_os_string()]),
            Err(e) => {
                eprintln!("the harness failed: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("the harness failed: its own executable: {e}");
            return ExitCode::from(2);
        }
    };
    match netfilter::run_in_namespace(&exe, &args) {
        Ok(status) => {
            // Killed by a signal, or an exit code out of range: unknown.
            let code = status.code().and_then(|c| u8::try_from(c).ok());
            ExitCode::from(code.unwrap_or(2))
        }
        Err(e) => {
            eprintln!("the harness failed: {e:#}");
            ExitCode::from(2)
        }
    }
}
