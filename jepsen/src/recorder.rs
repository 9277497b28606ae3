//! Records operations into the history as they happen, from any task: one clock (the
//! test's start), one sequence, and process ids handed out so that a process retired by
//! an `:info` is never reused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::time::Instant;

use crate::history::{History, Op, OpType, Process};

/// Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    started: Instant,
    history: Mutex<History>,
    next_process: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            inner: Arc::new(Inner {
                started: Instant::now(),
                history: Mutex::new(History::default()),
                next_process: AtomicU64::new(0),
            }),
        }
    }

    /// A fresh client process id.
    pub fn process(&self) -> Process {
        Process::Client(self.inner.next_process.fetch_add(1, Ordering::Relaxed))
    }

    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.inner.started.elapsed().as_nanos() as u64
    }

    pub fn started(&self) -> Instant {
        self.inner.started
    }

    /// Appends one op.
    pub fn record(
        &self,
        kind: OpType,
        process: Process,
        f: &str,
        value: Value,
        node: Option<String>,
        error: Option<String>,
    ) {
        let op = Op {
            index: 0,
            kind,
            process,
            f: f.to_owned(),
            value,
            time: self.now(),
            node,
            error,
        };
        self.inner
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
    }

    pub fn invoke(&self, process: Process, f: &str, value: Value, node: Option<String>) {
        self.record(OpType::Invoke, process, f, value, node, None);
    }

    /// A nemesis event (`:info`, process `:nemesis`).
    pub fn nemesis(&self, f: &str, value: Value) {
        self.record(OpType::Info, Process::Nemesis, f, value, None, None);
    }

    /// A copy of the history so far.
    pub fn history(&self) -> History {
        self.inner
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
