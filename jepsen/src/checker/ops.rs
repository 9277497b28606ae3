//! Pairs each client invocation with its completion, and reads typed fields out of op
//! values. Every checker needs both, and both must cope with histories that are not what
//! they should be: a checker that meets an op it cannot read records it here (as
//! [`Malformed`]) and ends `Unknown` with the reason, instead of panicking or guessing.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Validity;
use crate::history::{History, Op, OpType, Process};

/// How many examples of one kind of anomaly a report shows.
pub(crate) const MAX_EXAMPLES: usize = 10;

/// One client operation: its invocation and, if it ended, its completion. Positions are
/// indices into `History::ops` (history order is real-time order).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) invoke: &'a Op,
    pub(crate) invoked_at: usize,
    pub(crate) completion: Option<(&'a Op, usize)>,
}

impl<'a> Call<'a> {
    /// How it ended; an operation still open when the history ends is indeterminate.
    pub(crate) fn outcome(&self) -> OpType {
        self.completion.map_or(OpType::Info, |(op, _)| op.kind)
    }

    /// Where it ended `:ok`, if it did.
    pub(crate) fn ok_at(&self) -> Option<usize> {
        match self.completion {
            Some((op, at)) if op.kind == OpType::Ok => Some(at),
            _ => None,
        }
    }

    /// Where it ended, `None` if it never did.
    pub(crate) fn completed_at(&self) -> Option<usize> {
        self.completion.map(|(_, at)| at)
    }

    /// The completion op, if it ended `:ok`.
    pub(crate) fn ok_op(&self) -> Option<&'a Op> {
        match self.completion {
            Some((op, _)) if op.kind == OpType::Ok => Some(op),
            _ => None,
        }
    }
}

/// Ops a checker could not make sense of: a count and the first few, with reasons.
#[derive(Debug, Default)]
pub(crate) struct Malformed {
    count: usize,
    examples: Vec<Value>,
}

impl Malformed {
    pub(crate) fn note(&mut self, op: &Op, reason: impl Into<String>) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(json!({
                "index": op.index,
                "f": op.f,
                "type": op.kind,
                "reason": reason.into(),
            }));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "count": self.count, "examples": self.examples })
    }

    /// The verdict every checker reaches the same way. An anomaly (`found`, its
    /// description) makes the history invalid, unless malformed ops cast doubt on what was
    /// found (unknown). Malformed ops alone make it unknown, and so does the first of
    /// `undecided` whose condition holds (nothing could be judged). Else it is valid.
    pub(crate) fn verdict(
        &self,
        found: Option<String>,
        undecided: &[(bool, &str)],
    ) -> (Validity, Option<String>) {
        if let Some(why) = found {
            return if self.is_empty() {
                (Validity::Invalid, Some(why))
            } else {
                (
                    Validity::Unknown,
                    Some(format!("{}; also found {why}", self.reason())),
                )
            };
        }
        if !self.is_empty() {
            return (Validity::Unknown, Some(self.reason()));
        }
        match undecided.iter().find(|(holds, _)| *holds) {
            Some((_, why)) => (Validity::Unknown, Some((*why).to_owned())),
            None => (Validity::Valid, None),
        }
    }

    /// A one-line reason for an `Unknown` verdict.
    pub(crate) fn reason(&self) -> String {
        let first = self
            .examples
            .first()
            .map(|e| {
                format!(
                    "; first at index {}: {}",
                    e["index"],
                    e["reason"].as_str().unwrap_or("?")
                )
            })
            .unwrap_or_default();
        format!("{} malformed op(s){first}", self.count)
    }
}

/// The client operations whose `f` is one of `fs`, in invocation order, each with its
/// completion. Pairing problems that involve one of `fs` (a completion with no open
/// invocation, a completion of a different `f`, a second invocation while one is open) are
/// noted in `malformed`; the unpaired invocation is kept as never completed.
pub(crate) fn calls<'a>(
    history: &'a History,
    fs: &[&str],
    malformed: &mut Malformed,
) -> Vec<Call<'a>> {
    let relevant = |f: &str| fs.contains(&f);
    let mut out: Vec<Call<'a>> = Vec::new();
    // process -> (position of its open invocation, its slot in `out` if relevant)
    let mut open: HashMap<u64, (usize, Option<usize>)> = HashMap::new();
    for (at, op) in history.ops.iter().enumerate() {
        let Process::Client(process) = op.process else {
            continue;
        };
        if op.kind == OpType::Invoke {
            if let Some((prev, _)) = open.get(&process)
                && let Some(prev_op) = history.ops.get(*prev)
                && (relevant(&prev_op.f) || relevant(&op.f))
            {
                malformed.note(op, "invoked while the process still had an open operation");
            }
            let slot = if relevant(&op.f) {
                out.push(Call {
                    invoke: op,
                    invoked_at: at,
                    completion: None,
                });
                Some(out.len() - 1)
            } else {
                None
            };
            open.insert(process, (at, slot));
            continue;
        }
        match open.remove(&process) {
            None => {
                if relevant(&op.f) {
                    malformed.note(op, "completion without an open invocation");
                }
            }
            Some((inv_at, slot)) => {
                let inv_f = history.ops.get(inv_at).map_or("", |o| o.f.as_str());
                if inv_f != op.f {
                    if relevant(inv_f) || relevant(&op.f) {
                        malformed.note(op, format!("completes an invocation of {inv_f:?}"));
                    }
                    continue;
                }
                if let Some(call) = slot.and_then(|s| out.get_mut(s)) {
                    call.completion = Some((op, at));
                }
            }
        }
    }
    out
}

/// A required unsigned field of an op's value.
pub(crate) fn need_u64(op: &Op, name: &str) -> Result<u64, String> {
    op.u64_field(name)
        .ok_or_else(|| missing(op, name, "an unsigned integer"))
}

/// A required string field of an op's value.
pub(crate) fn need_str<'a>(op: &'a Op, name: &str) -> Result<&'a str, String> {
    op.str_field(name)
        .ok_or_else(|| missing(op, name, "a string"))
}

/// A required boolean field of an op's value.
pub(crate) fn need_bool(op: &Op, name: &str) -> Result<bool, String> {
    op.field(name)
        .and_then(Value::as_bool)
        .ok_or_else(|| missing(op, name, "a boolean"))
}

fn missing(op: &Op, name: &str, what: &str) -> String {
    match op.field(name) {
        None => format!("{} {:?} has no `{name}`", op.f, op.kind),
        Some(v) => format!("{} {:?}: `{name}` is {v}, not {what}", op.f, op.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testkit::Hist;
    use serde_json::json;

    #[test]
    fn pairs_by_process_and_skips_the_nemesis() {
        let mut h = Hist::new();
        h.invoke(1, "publish", json!({"seq": 1}));
        h.invoke(2, "publish", json!({"seq": 2}));
        h.nemesis("start-kill");
        h.ok(2, "publish", json!({"seq": 2}));
        h.info(1, "publish", json!({"seq": 1}));
        h.invoke(3, "publish", json!({"seq": 3}));
        h.fail(3, "publish", json!({"seq": 3}));
        h.invoke(4, "publish", json!({"seq": 4}));
        let mut bad = Malformed::default();
        let calls = calls(&h.history, &["publish"], &mut bad);
        assert!(bad.is_empty());
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[0].outcome(), OpType::Info);
        assert_eq!(calls[0].completed_at(), Some(4));
        assert_eq!(calls[1].ok_at(), Some(3));
        assert_eq!(calls[2].outcome(), OpType::Fail);
        assert_eq!(calls[2].ok_at(), None);
        assert_eq!(calls[3].outcome(), OpType::Info);
        assert_eq!(calls[3].completed_at(), None);
    }

    #[test]
    fn notes_pairing_problems_only_for_relevant_ops() {
        let mut h = Hist::new();
        h.ok(1, "publish", json!({}));
        h.invoke(2, "connect", json!({}));
        h.ok(2, "publish", json!({}));
        h.ok(3, "connect", json!({}));
        let mut bad = Malformed::default();
        let calls = calls(&h.history, &["publish"], &mut bad);
        assert!(calls.is_empty());
        assert_eq!(bad.count, 2, "{}", bad.to_json());
        assert!(bad.reason().contains("index 0"), "{}", bad.reason());
    }

    #[test]
    fn field_readers_explain_what_is_wrong() {
        let mut h = Hist::new();
        h.invoke(1, "publish", json!({"seq": "x", "topic": "t"}));
        let op = &h.history.ops[0];
        assert!(
            need_u64(op, "seq")
                .unwrap_err()
                .contains("not an unsigned integer")
        );
        assert!(need_u64(op, "qos").unwrap_err().contains("has no `qos`"));
        assert_eq!(need_str(op, "topic").unwrap(), "t");
        assert!(need_bool(op, "dup").is_err());
    }
}
