//! A small builder for hand-written histories in the checkers' unit tests: each call appends
//! one op, numbered and timestamped in order, as the harness would record it.

use serde_json::Value;

use crate::history::{History, Op, OpType, Process};

pub(crate) struct Hist {
    pub(crate) history: History,
}

impl Hist {
    pub(crate) fn new() -> Hist {
        Hist {
            history: History::default(),
        }
    }

    /// Position the next op will get.
    pub(crate) fn next(&self) -> usize {
        self.history.ops.len()
    }

    pub(crate) fn push(&mut self, kind: OpType, process: Process, f: &str, value: Value) -> usize {
        let at = self.next();
        self.history.push(Op {
            index: 0,
            kind,
            process,
            f: f.to_owned(),
            value,
            time: at as u64 * 1_000_000,
            node: None,
            error: None,
        });
        at
    }

    pub(crate) fn invoke(&mut self, p: u64, f: &str, value: Value) -> usize {
        self.push(OpType::Invoke, Process::Client(p), f, value)
    }

    pub(crate) fn ok(&mut self, p: u64, f: &str, value: Value) -> usize {
        self.push(OpType::Ok, Process::Client(p), f, value)
    }

    pub(crate) fn fail(&mut self, p: u64, f: &str, value: Value) -> usize {
        self.push(OpType::Fail, Process::Client(p), f, value)
    }

    pub(crate) fn info(&mut self, p: u64, f: &str, value: Value) -> usize {
        self.push(OpType::Info, Process::Client(p), f, value)
    }

    /// An invocation immediately followed by its completion.
    pub(crate) fn call(&mut self, p: u64, kind: OpType, f: &str, value: Value) -> usize {
        self.invoke(p, f, value.clone());
        self.push(kind, Process::Client(p), f, value)
    }

    pub(crate) fn nemesis(&mut self, f: &str) -> usize {
        self.push(OpType::Info, Process::Nemesis, f, Value::Null)
    }
}
