use std::collections::BTreeMap;

use serde_json::Value;

use super::summary::{FaultWindow, MAX_LATENCY_POINTS, Outcome, sample};
use super::*;
use crate::history::{Op, OpType, Process};

/// Appends an op at `ms` milliseconds since the start.
fn at(history: &mut History, ms: u64, kind: OpType, process: Process, f: &str) {
    history.push(Op {
        index: 0,
        kind,
        process,
        f: f.to_owned(),
        value: Value::Null,
        time: ms * 1_000_000,
        node: None,
        error: None,
    });
}

fn client(history: &mut History, p: u64, f: &str, kind: OpType, from_ms: u64, to_ms: u64) {
    at(history, from_ms, OpType::Invoke, Process::Client(p), f);
    at(history, to_ms, kind, Process::Client(p), f);
}

/// Publishes with every outcome, deliveries, and a kill that stops and a partition that
/// does not, over about three seconds.
fn sample_history() -> History {
    let mut h = History::default();
    at(&mut h, 0, OpType::Info, Process::Nemesis, "start-kill");
    client(&mut h, 0, "publish", OpType::Ok, 10, 25);
    client(&mut h, 1, "receive", OpType::Ok, 30, 30);
    client(&mut h, 0, "publish", OpType::Info, 200, 1_200);
    at(&mut h, 1_300, OpType::Info, Process::Nemesis, "stop-kill");
    client(&mut h, 2, "publish", OpType::Fail, 1_400, 1_401);
    at(
        &mut h,
        1_500,
        OpType::Info,
        Process::Nemesis,
        "start-partition",
    );
    client(&mut h, 2, "read", OpType::Ok, 2_000, 2_100);
    at(&mut h, 2_200, OpType::Info, Process::Nemesis, "heal");
    client(&mut h, 1, "receive", OpType::Ok, 3_000, 3_000);
    h
}

/// Asserts `path` is a PNG of the plots' size, read from its IHDR chunk.
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 24, "{} is too short", path.display());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT), "{}", path.display());
}

fn plots_of(history: &History) -> Vec<PathBuf> {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_plots(history, "queue-qos1", dir.path()).unwrap();
    assert_eq!(
        paths,
        vec![
            dir.path().join("rate.png"),
            dir.path().join("latency-raw.png")
        ]
    );
    for path in &paths {
        assert_png(path);
    }
    paths
}

#[test]
fn writes_both_plots() {
    plots_of(&sample_history());
}

#[test]
fn empty_history_still_plots() {
    plots_of(&History::default());
}

#[test]
fn nemesis_only_history_with_an_unstopped_fault_plots() {
    let mut h = History::default();
    at(&mut h, 500, OpType::Info, Process::Nemesis, "start-pause");
    plots_of(&h);
    let summary = Summary::of(&h);
    assert_eq!(summary.families, vec!["pause"]);
    assert_eq!(
        summary.faults,
        vec![FaultWindow {
            family: 0,
            start: 0.5,
            stop: 0.5
        }]
    );
}

#[test]
fn summary_pairs_ops_and_windows_faults() {
    let summary = Summary::of(&sample_history());
    assert_eq!(summary.fs, vec!["publish", "read", "receive"]);
    assert_eq!(summary.families, vec!["kill", "partition"]);
    // The partition never stopped: it runs to the last op.
    assert_eq!(
        summary.faults,
        vec![
            FaultWindow {
                family: 0,
                start: 0.0,
                stop: 1.3
            },
            FaultWindow {
                family: 1,
                start: 1.5,
                stop: 3.0
            },
        ]
    );
    // Deliveries count towards the rate, not the latencies.
    assert_eq!(summary.completions[&(2, Outcome::Ok)], vec![0.03, 3.0]);
    assert!(!summary.latencies.keys().any(|&(f, _)| f == 2));
    assert_eq!(summary.latencies[&(0, Outcome::Ok)], vec![(0.01, 15.0)]);
    assert_eq!(summary.latencies[&(0, Outcome::Info)], vec![(0.2, 1000.0)]);
    assert_eq!(summary.latencies[&(0, Outcome::Fail)], vec![(1.4, 1.0)]);
    assert_eq!(summary.latencies[&(1, Outcome::Ok)], vec![(2.0, 100.0)]);
}

#[test]
fn sampling_caps_points_and_keeps_rare_series() {
    let mut series = BTreeMap::new();
    series.insert((0, Outcome::Ok), vec![(0.0, 1.0); 250_000]);
    series.insert((0, Outcome::Fail), vec![(0.0, 1.0); 2]);
    sample(&mut series, MAX_LATENCY_POINTS);
    let total: usize = series.values().map(Vec::len).sum();
    assert!(total <= MAX_LATENCY_POINTS + series.len(), "{total}");
    assert_eq!(series[&(0, Outcome::Fail)].len(), 1);
}

#[test]
fn unpaired_completions_are_counted_but_have_no_latency() {
    let mut h = History::default();
    at(&mut h, 5, OpType::Ok, Process::Client(0), "publish");
    at(&mut h, 7, OpType::Invoke, Process::Client(1), "publish");
    let summary = Summary::of(&h);
    assert_eq!(summary.completions.len(), 1);
    assert!(summary.latencies.is_empty());
}
