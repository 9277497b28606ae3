//! What the plots show, read once from a history: each client op's completion time and
//! latency by series (`f` and outcome), and the nemesis's fault windows. Pure data, no
//! drawing, so that pairing and windowing are tested without decoding images.

use std::collections::{BTreeMap, HashMap};

use crate::history::{History, Op, OpType, Process};

/// Above this many latency points, each series keeps every n-th point: drawing stays fast
/// on a long run, and a rare series (a few `fail`s) keeps at least its first point.
pub(super) const MAX_LATENCY_POINTS: usize = 100_000;
/// Deliveries to subscribers: invoked and completed at the same instant, so they have a
/// rate but no latency.
const DELIVERY: &str = "receive";

/// How a client op completed; an `invoke` is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Outcome {
    Ok,
    Info,
    Fail,
}

impl Outcome {
    fn of(kind: OpType) -> Option<Outcome> {
        match kind {
            OpType::Invoke => None,
            OpType::Ok => Some(Outcome::Ok),
            OpType::Info => Some(Outcome::Info),
            OpType::Fail => Some(Outcome::Fail),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Info => "info",
            Outcome::Fail => "fail",
        }
    }
}

/// Index into [`Summary::fs`], and the outcome.
pub(super) type SeriesKey = (usize, Outcome);

/// A fault from its start to its stop, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FaultWindow {
    pub(super) family: usize,
    pub(super) start: f64,
    pub(super) stop: f64,
}

/// What the plots need from a history, read once.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// Client `f`s, most frequent first and deliveries last (they are not on the latency
    /// plot): the busiest series get the most distinct shades, and an `f` looks the same in
    /// both plots.
    pub(super) fs: Vec<String>,
    /// Fault families (`kill`, `partition`, ...) in order of first appearance.
    pub(super) families: Vec<String>,
    pub(super) faults: Vec<FaultWindow>,
    /// Time of the last op, in seconds.
    pub(super) end: f64,
    /// Completion time (s) of every client op, by series.
    pub(super) completions: BTreeMap<SeriesKey, Vec<f64>>,
    /// (invocation time in s, latency in ms) of every completed client op but deliveries.
    pub(super) latencies: BTreeMap<SeriesKey, Vec<(f64, f64)>>,
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

impl Summary {
    pub(super) fn of(history: &History) -> Summary {
        let ops = &history.ops;
        let end = seconds(ops.iter().map(|op| op.time).max().unwrap_or(0));
        let fs = client_fs(ops);
        let f_index: HashMap<&str, usize> = fs
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_str(), i))
            .collect();
        let (families, faults) = fault_windows(ops, end);

        let mut completions: BTreeMap<SeriesKey, Vec<f64>> = BTreeMap::new();
        for op in ops.iter().filter(|op| op.process != Process::Nemesis) {
            if let Some(outcome) = Outcome::of(op.kind) {
                let key = (f_index[op.f.as_str()], outcome);
                completions.entry(key).or_default().push(seconds(op.time));
            }
        }

        let mut latencies: BTreeMap<SeriesKey, Vec<(f64, f64)>> = BTreeMap::new();
        for (invoke, done) in ops.iter().zip(history.completions()) {
            let Some(done) = done.map(|i| &ops[i]) else {
                continue;
            };
            let Some(outcome) = Outcome::of(done.kind) else {
                continue;
            };
            if invoke.f != DELIVERY {
                let ms = done.time.saturating_sub(invoke.time) as f64 / 1e6;
                let key = (f_index[invoke.f.as_str()], outcome);
                latencies
                    .entry(key)
                    .or_default()
                    .push((seconds(invoke.time), ms));
            }
        }
        sample(&mut latencies, MAX_LATENCY_POINTS);

        Summary {
            fs,
            families,
            faults,
            end,
            completions,
            latencies,
        }
    }

    pub(super) fn label(&self, (f, outcome): SeriesKey) -> String {
        format!("{} {}", self.fs[f], outcome.name())
    }

    /// The x range: at least one second, so that an empty history still has an axis.
    pub(super) fn x_range(&self) -> std::ops::Range<f64> {
        0.0..self.end.max(1.0)
    }
}

fn client_fs(ops: &[Op]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for op in ops.iter().filter(|op| op.process != Process::Nemesis) {
        *counts.entry(op.f.as_str()).or_default() += 1;
    }
    let mut fs: Vec<(&str, usize)> = counts.into_iter().collect();
    fs.sort_by_key(|&(f, count)| (f == DELIVERY, std::cmp::Reverse(count), f));
    fs.into_iter().map(|(f, _)| f.to_owned()).collect()
}

/// The fault families in order of first appearance, and each `start-<family>` paired with
/// the next `stop-<family>`, or with `end` when there is none.
fn fault_windows(ops: &[Op], end: f64) -> (Vec<String>, Vec<FaultWindow>) {
    let mut families: Vec<String> = Vec::new();
    let mut faults = Vec::new();
    let mut open: BTreeMap<usize, f64> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.process == Process::Nemesis) {
        let (name, starts) = match (op.f.strip_prefix("start-"), op.f.strip_prefix("stop-")) {
            (Some(name), _) => (name, true),
            (_, Some(name)) => (name, false),
            _ => continue,
        };
        let family = families.iter().position(|f| f == name).unwrap_or_else(|| {
            families.push(name.to_owned());
            families.len() - 1
        });
        if starts {
            // A second start before the stop extends the first window.
            open.entry(family).or_insert(seconds(op.time));
        } else if let Some(start) = open.remove(&family) {
            faults.push(FaultWindow {
                family,
                start,
                stop: seconds(op.time),
            });
        }
    }
    faults.extend(open.into_iter().map(|(family, start)| FaultWindow {
        family,
        start,
        stop: end,
    }));
    faults.sort_by(|a, b| a.start.total_cmp(&b.start));
    (families, faults)
}

/// Keeps every n-th point of each series so that at most about `max` remain in all.
pub(super) fn sample(series: &mut BTreeMap<SeriesKey, Vec<(f64, f64)>>, max: usize) {
    let total: usize = series.values().map(Vec::len).sum();
    let stride = total.div_ceil(max.max(1));
    if stride <= 1 {
        return;
    }
    for points in series.values_mut() {
        let mut i = 0;
        points.retain(|_| {
            i += 1;
            (i - 1) % stride == 0
        });
    }
}
