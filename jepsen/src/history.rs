//! The history of a test: every operation as Jepsen records it — an `:invoke` when a
//! process starts it, then `:ok` (it happened), `:fail` (it certainly did not) or `:info`
//! (unknown: it may have happened, now or later). A process whose operation ended `:info`
//! is retired and the client continues under a new process id, as in Jepsen, so that
//! every process has at most one operation open.
//!
//! Written as `history.jsonl` (one JSON object per line) and `history.edn` (one EDN map per
//! line, keywords for keys and for `:type`/`:f`, as Jepsen's `history.edn`).
//!
//! ## Values, by `f`
//! The checkers read these fields (all in `value`, a JSON object):
//! - `publish`: `client` (client id), `publisher` (the publisher's number), `topic`,
//!   `seq` (the publisher's sequence number, unique per publisher), `qos` (1 or 2).
//!   `:ok` = PUBACK/PUBCOMP with success; `:fail` = an error reason code (not stored);
//!   `:info` = the connection ended first (it may be stored).
//! - `receive`: a delivery to a subscriber (`invoke` and `ok` at the same instant):
//!   `client` (the subscriber's client id), `topic`, `publisher`, `seq`, `qos`, `dup`.
//!   Deliveries a QoS 2 client must discard (a DUP resend of a packet id it has received
//!   and not yet released) are not recorded.
//! - `subscribe`: `client`, `filter`, `qos`. `:ok` = SUBACK granted.
//! - `connect`: `client`, `clean_start`, `expiry` (session expiry, s), `conn` (the
//!   connection's number, unique in the test); on `:ok` also `session_present`.
//! - `disconnect`: `client`, `conn`.
//! - `write` (retained register): `key` (topic), `value` (an integer). `:ok` = PUBACK.
//! - `read` (retained register): `key`; on `:ok`, `value` (integer, or null when no
//!   retained message).
//! - nemesis operations (process `nemesis`, type `info`): `f` is `start-<fault>` /
//!   `stop-<fault>`, `value` says what was done (nodes, links).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Jepsen's operation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who performed an operation: a client process or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    #[serde(with = "nemesis_name")]
    Nemesis,
}

mod nemesis_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("nemesis")
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let name = String::deserialize(d)?;
        if name == "nemesis" {
            Ok(())
        } else {
            Err(serde::de::Error::custom(format!(
                "unknown process {name:?}"
            )))
        }
    }
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, from 0.
    pub index: u64,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub process: Process,
    /// What was done: `publish`, `receive`, `read`, `start-kill`, ...
    pub f: String,
    pub value: Value,
    /// Nanoseconds since the test started.
    pub time: u64,
    /// The node the operation went to (`n1`, `n2`, ...), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// A field of the value, if it is an object holding it.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.value.get(name)
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }

    pub fn u64_field(&self, name: &str) -> Option<u64> {
        self.field(name).and_then(Value::as_u64)
    }

    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.time)
    }
}

/// A whole history, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Appends an operation, numbering it.
    pub fn push(&mut self, mut op: Op) {
        op.index = self.ops.len() as u64;
        self.ops.push(op);
    }

    /// The completion of each invocation: for the op at `ops[i]` (an invoke), the index of
    /// the next op of the same process, if any.
    pub fn completions(&self) -> Vec<Option<usize>> {
        let mut open: std::collections::HashMap<Process, usize> = Default::default();
        let mut done = vec![None; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            if op.process == Process::Nemesis {
                continue;
            }
            match op.kind {
                OpType::Invoke => {
                    open.insert(op.process, i);
                }
                _ => {
                    if let Some(inv) = open.remove(&op.process) {
                        done[inv] = Some(i);
                    }
                }
            }
        }
        done
    }

    /// Reads a `history.jsonl`.
    pub fn read_jsonl(path: &Path) -> anyhow::Result<History> {
        let text = std::fs::read_to_string(path)?;
        let mut history = History::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
            history.ops.push(op);
        }
        Ok(history)
    }

    pub fn write_jsonl(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in &self.ops {
            serde_json::to_writer(&mut out, op)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    pub fn write_edn(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in &self.ops {
            out.write_all(op_edn(op).as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }
}

/// One op as an EDN map, in Jepsen's key order.
pub fn op_edn(op: &Op) -> String {
    let kind = match op.kind {
        OpType::Invoke => ":invoke",
        OpType::Ok => ":ok",
        OpType::Fail => ":fail",
        OpType::Info => ":info",
    };
    let process = match op.process {
        Process::Client(p) => p.to_string(),
        Process::Nemesis => ":nemesis".to_owned(),
    };
    let mut s = format!(
        "{{:type {kind}, :f :{}, :value {}, :time {}, :process {process}, :index {}",
        op.f,
        edn(&op.value),
        op.time,
        op.index
    );
    if let Some(node) = &op.node {
        s.push_str(&format!(", :node {}", edn_string(node)));
    }
    if let Some(error) = &op.error {
        s.push_str(&format!(", :error {}", edn_string(error)));
    }
    s.push('}');
    s
}

/// A JSON value as EDN: objects become maps with keyword keys, arrays vectors.
pub fn edn(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => edn_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(edn).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!(":{} {}", keyword(k), edn(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// A map key as a keyword: `_` becomes `-`, as Clojure spells them.
fn keyword(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '_' => '-',
            c if c.is_alphanumeric() || "-?!*+<>=.".contains(c) => c,
            _ => '-',
        })
        .collect()
}

fn edn_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(kind: OpType, process: Process, f: &str, value: Value) -> Op {
        Op {
            index: 0,
            kind,
            process,
            f: f.into(),
            value,
            time: 5,
            node: Some("n1".into()),
            error: None,
        }
    }

    #[test]
    fn edn_lines_look_like_jepsen() {
        let line = op_edn(&op(
            OpType::Invoke,
            Process::Client(3),
            "publish",
            json!({"topic": "q/0", "seq": 7, "clean_start": false}),
        ));
        assert_eq!(
            line,
            r#"{:type :invoke, :f :publish, :value {:clean-start false, :seq 7, :topic "q/0"}, :time 5, :process 3, :index 0, :node "n1"}"#
        );
        let nemesis = op_edn(&op(
            OpType::Info,
            Process::Nemesis,
            "start-kill",
            json!(["n1", "n2"]),
        ));
        assert!(nemesis.contains(":process :nemesis"), "{nemesis}");
        assert!(nemesis.contains(r#":value ["n1" "n2"]"#), "{nemesis}");
    }

    #[test]
    fn jsonl_round_trips_and_pairs_completions() {
        let mut history = History::default();
        history.push(op(
            OpType::Invoke,
            Process::Client(0),
            "read",
            json!({"key": "a"}),
        ));
        history.push(op(
            OpType::Info,
            Process::Nemesis,
            "start-kill",
            json!("n1"),
        ));
        history.push(op(
            OpType::Ok,
            Process::Client(0),
            "read",
            json!({"key": "a", "value": 1}),
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        history.write_jsonl(&path).unwrap();
        let back = History::read_jsonl(&path).unwrap();
        assert_eq!(back, history);
        assert_eq!(back.completions(), vec![Some(2), None, None]);
    }
}
