//! The register checker (workload `retained`): the retained message of each topic must
//! behave as a linearizable register — a read sees the last write that took effect before
//! it, in an order consistent with real time. Keys are independent (linearizability is
//! compositional), so each topic is checked alone with the search in [`super::wgl`].
//!
//! Writes store an integer; reads return it, or null when nothing is retained (the initial
//! state). `:fail` ops did not happen and are dropped. An `:info` write may take effect at
//! any point after its invocation, or never; an `:info` read observed nothing and is
//! dropped. A key whose search hits the state bound is `Unknown`, never `Valid`.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::ops::{Malformed, calls, need_str};
use super::wgl::{self, Entry, Outcome};
use super::{Report, Validity};
use crate::history::{History, Op, OpType};

/// The most configurations the search may cache for one key before giving up.
pub(crate) const MAX_STATES: usize = 500_000;

/// A register operation: what was written, or what was read (`None`: nothing retained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegOp {
    Write(i64),
    Read(Option<i64>),
}

fn step(state: &Option<i64>, op: &RegOp) -> Option<Option<i64>> {
    match *op {
        RegOp::Write(v) => Some(Some(v)),
        RegOp::Read(seen) => (seen == *state).then_some(*state),
    }
}

/// Checks every key of a retained-register history for linearizability.
pub fn register(history: &History) -> Report {
    register_bounded(history, MAX_STATES)
}

struct KeyOps<'a> {
    entries: Vec<Entry<RegOp>>,
    /// The invocation of each entry, for reporting.
    invokes: Vec<&'a Op>,
    info_writes: u64,
    dropped: u64,
    unobserved_info_writes: u64,
}

impl KeyOps<'_> {
    /// Drops `:info` writes whose value no read returned. Such a write can always be taken
    /// never to have happened: in any linearization that includes it, no read falls between
    /// it and the next write (none returned its value), so removing it changes nothing any
    /// read saw. Dropping them keeps the search from trying every subset of them.
    fn drop_unobserved_info_writes(&mut self) {
        let observed: HashSet<i64> = self
            .entries
            .iter()
            .filter_map(|e| match e.op {
                RegOp::Read(v) => v,
                RegOp::Write(_) => None,
            })
            .collect();
        let keep: Vec<bool> = self
            .entries
            .iter()
            .map(|e| match e.op {
                RegOp::Write(v) => e.ret.is_some() || observed.contains(&v),
                RegOp::Read(_) => true,
            })
            .collect();
        let mut k = keep.iter();
        self.entries.retain(|_| k.next().copied().unwrap_or(true));
        let mut k = keep.iter();
        self.invokes.retain(|_| k.next().copied().unwrap_or(true));
        self.unobserved_info_writes += keep.iter().filter(|&&b| !b).count() as u64;
    }
}

/// [`register`] with a chosen bound on explored states per key.
pub(crate) fn register_bounded(history: &History, max_states: usize) -> Report {
    let mut malformed = Malformed::default();
    let all = calls(history, &["read", "write"], &mut malformed);
    let mut keys: BTreeMap<&str, KeyOps<'_>> = BTreeMap::new();

    for call in &all {
        let op = call.invoke;
        let key = match need_str(op, "key") {
            Ok(k) => k,
            Err(e) => {
                malformed.note(op, e);
                continue;
            }
        };
        let ops = keys.entry(key).or_insert_with(|| KeyOps {
            entries: Vec::new(),
            invokes: Vec::new(),
            info_writes: 0,
            dropped: 0,
            unobserved_info_writes: 0,
        });
        let outcome = call.outcome();
        if outcome == OpType::Fail {
            ops.dropped += 1;
            continue;
        }
        let reg_op = if op.f == "write" {
            match op.field("value").and_then(Value::as_i64) {
                Some(v) => RegOp::Write(v),
                None => {
                    malformed.note(op, "write without an integer `value`");
                    continue;
                }
            }
        } else {
            let Some(done) = call.ok_op() else {
                ops.dropped += 1; // an :info read observed nothing
                continue;
            };
            match done.field("value") {
                Some(Value::Null) => RegOp::Read(None),
                Some(v) => match v.as_i64() {
                    Some(v) => RegOp::Read(Some(v)),
                    None => {
                        malformed.note(done, format!("read returned {v}, not an integer or null"));
                        continue;
                    }
                },
                None => {
                    malformed.note(done, "read :ok without a `value`");
                    continue;
                }
            }
        };
        let ret = match outcome {
            OpType::Ok => call.completed_at(),
            _ => {
                ops.info_writes += 1;
                None
            }
        };
        ops.entries.push(Entry {
            call: call.invoked_at,
            ret,
            op: reg_op,
        });
        ops.invokes.push(op);
    }

    for ops in keys.values_mut() {
        ops.drop_unobserved_info_writes();
    }

    let (mut valid_keys, mut invalid_keys, mut unknown_keys) = (0u64, 0u64, 0u64);
    let mut per_key = serde_json::Map::new();
    let mut first_invalid: Option<Value> = None;
    for (key, ops) in &keys {
        let writes = ops
            .entries
            .iter()
            .filter(|e| matches!(e.op, RegOp::Write(_)))
            .count();
        let mut detail = json!({
            "ops": ops.entries.len(),
            "writes": writes,
            "reads": ops.entries.len() - writes,
            "info_writes": ops.info_writes,
            "dropped": ops.dropped,
            "unobserved_info_writes": ops.unobserved_info_writes,
        });
        let (verdict, explored) = match wgl::check(&ops.entries, None, step, max_states) {
            Outcome::Linearizable { explored } => {
                valid_keys += 1;
                (Validity::Valid, explored)
            }
            Outcome::Exhausted { explored } => {
                unknown_keys += 1;
                detail["reason"] = json!(format!("search bound of {max_states} states reached"));
                (Validity::Unknown, explored)
            }
            Outcome::NotLinearizable {
                entry,
                states,
                explored,
            } => {
                invalid_keys += 1;
                let culprit = unlinearizable(ops, entry, &states);
                if first_invalid.is_none() {
                    let mut c = culprit.clone();
                    c["key"] = json!(key);
                    first_invalid = Some(c);
                }
                detail["first_unlinearizable"] = culprit;
                (Validity::Invalid, explored)
            }
        };
        detail["valid"] = json!(verdict);
        detail["explored_states"] = json!(explored);
        per_key.insert((*key).to_owned(), detail);
    }

    let found = (invalid_keys > 0).then(|| format!("{invalid_keys} key(s) not linearizable"));
    let bound = format!("{unknown_keys} key(s) hit the search bound");
    let (valid, reason) = malformed.verdict(
        found,
        &[
            (keys.is_empty(), "no read or write ops"),
            (unknown_keys > 0, &bound),
        ],
    );
    let details = json!({
        "reason": reason,
        "keys": keys.len(),
        "valid_keys": valid_keys,
        "invalid_keys": invalid_keys,
        "unknown_keys": unknown_keys,
        "first_invalid": first_invalid,
        "per_key": per_key,
        "malformed": malformed.to_json(),
    });
    Report::new("register", valid, details)
}

/// Describes the operation the search could not linearize.
fn unlinearizable(ops: &KeyOps<'_>, entry: usize, states: &[Option<i64>]) -> Value {
    let (Some(e), Some(inv)) = (ops.entries.get(entry), ops.invokes.get(entry)) else {
        return json!({ "reason": "no operation identified" });
    };
    let (f, value) = match e.op {
        RegOp::Write(v) => ("write", json!(v)),
        RegOp::Read(v) => ("read", json!(v)),
    };
    json!({
        "index": inv.index,
        "process": inv.process,
        "f": f,
        "value": value,
        "register_could_hold": states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testkit::Hist;
    use serde_json::json;

    fn w(v: i64) -> Value {
        json!({"key": "r/a", "value": v})
    }

    fn r() -> Value {
        json!({"key": "r/a"})
    }

    fn read_ok(h: &mut Hist, p: u64, v: Option<i64>) -> usize {
        h.ok(p, "read", json!({"key": "r/a", "value": v}))
    }

    #[test]
    fn linearizable_concurrent_history_is_valid() {
        let mut h = Hist::new();
        h.invoke(1, "read", r());
        h.invoke(2, "write", w(1));
        h.invoke(3, "read", r());
        read_ok(&mut h, 1, None); // before the write took effect
        read_ok(&mut h, 3, Some(1)); // after it
        h.ok(2, "write", w(1));
        h.invoke(1, "read", r());
        read_ok(&mut h, 1, Some(1));
        h.nemesis("start-kill");
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Valid, "{}", rep.details);
        assert_eq!(rep.checker, "register");
        assert_eq!(rep.details["per_key"]["r/a"]["ops"], 4);
    }

    #[test]
    fn stale_read_is_invalid() {
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", w(1));
        h.call(1, OpType::Ok, "write", w(2));
        h.invoke(2, "read", r());
        let at = read_ok(&mut h, 2, Some(1));
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Invalid, "{}", rep.details);
        let c = &rep.details["per_key"]["r/a"]["first_unlinearizable"];
        assert_eq!(c["index"], at as u64 - 1, "{c}");
        assert_eq!(c["f"], "read");
        assert_eq!(c["value"], 1);
        assert_eq!(c["register_could_hold"], json!([2]));
        assert_eq!(rep.details["first_invalid"]["key"], "r/a");
    }

    #[test]
    fn read_of_nothing_after_write_is_invalid() {
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", w(1));
        h.invoke(2, "read", r());
        read_ok(&mut h, 2, None);
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Invalid, "{}", rep.details);
    }

    #[test]
    fn read_of_a_value_never_written_is_invalid() {
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", w(1));
        h.invoke(2, "read", r());
        read_ok(&mut h, 2, Some(7));
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Invalid, "{}", rep.details);
        assert_eq!(
            rep.details["per_key"]["r/a"]["first_unlinearizable"]["value"],
            7
        );
    }

    #[test]
    fn info_write_observed_later_is_valid() {
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", w(1));
        h.call(2, OpType::Info, "write", w(2));
        h.invoke(3, "read", r());
        read_ok(&mut h, 3, Some(1)); // not yet
        h.invoke(3, "read", r());
        read_ok(&mut h, 3, Some(2)); // now it took effect
        h.call(4, OpType::Info, "read", r()); // dropped
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Valid, "{}", rep.details);
        assert_eq!(rep.details["per_key"]["r/a"]["info_writes"], 1);
        assert_eq!(rep.details["per_key"]["r/a"]["dropped"], 1);
        assert_eq!(rep.details["per_key"]["r/a"]["unobserved_info_writes"], 0);
        // Once it is seen it cannot be unseen (nothing else wrote 1 again).
        h.invoke(3, "read", r());
        read_ok(&mut h, 3, Some(1));
        assert_eq!(register(&h.history).valid, Validity::Invalid);
    }

    #[test]
    fn unobserved_info_writes_are_dropped() {
        let mut h = Hist::new();
        for v in 10..40 {
            h.call(v as u64, OpType::Info, "write", w(v));
        }
        h.call(1, OpType::Ok, "write", w(1));
        h.invoke(2, "read", r());
        read_ok(&mut h, 2, Some(2)); // never written: must be invalid, and found quickly
        let rep = register_bounded(&h.history, 10_000);
        assert_eq!(rep.valid, Validity::Invalid, "{}", rep.details);
        assert_eq!(rep.details["per_key"]["r/a"]["unobserved_info_writes"], 30);
        assert_eq!(rep.details["per_key"]["r/a"]["ops"], 2);
    }

    #[test]
    fn failed_write_must_not_be_observed() {
        let mut h = Hist::new();
        h.call(1, OpType::Fail, "write", w(5));
        h.invoke(2, "read", r());
        read_ok(&mut h, 2, Some(5));
        assert_eq!(register(&h.history).valid, Validity::Invalid);
    }

    #[test]
    fn overlapping_writes_read_either_is_valid() {
        for seen in [1, 2] {
            let mut h = Hist::new();
            h.invoke(1, "write", w(1));
            h.invoke(2, "write", w(2));
            h.ok(1, "write", w(1));
            h.ok(2, "write", w(2));
            h.invoke(3, "read", r());
            read_ok(&mut h, 3, Some(seen));
            h.invoke(3, "read", r());
            read_ok(&mut h, 3, Some(seen));
            let rep = register(&h.history);
            assert_eq!(rep.valid, Validity::Valid, "saw {seen}: {}", rep.details);
        }
        // ... but not one then the other, with no write in between.
        let mut h = Hist::new();
        h.invoke(1, "write", w(1));
        h.invoke(2, "write", w(2));
        h.ok(1, "write", w(1));
        h.ok(2, "write", w(2));
        h.invoke(3, "read", r());
        read_ok(&mut h, 3, Some(2));
        h.invoke(3, "read", r());
        read_ok(&mut h, 3, Some(1));
        assert_eq!(register(&h.history).valid, Validity::Invalid);
    }

    /// A random concurrent history of a real register (each op takes effect at one instant
    /// between its invocation and completion; some writes end :info, applied or not).
    fn simulated(ops: usize, seed: u64) -> History {
        let mut rng = seed;
        let mut rand = move |n: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        let mut h = Hist::new();
        let mut register: Option<i64> = None;
        let mut next_value = 0i64;
        // per process slot: its process id, and its open op (is_write, value, applied, seen)
        type Open = Option<(bool, i64, bool, Option<i64>)>;
        let mut slots: Vec<(u64, Open)> = (0..5).map(|p| (p, None)).collect();
        let mut next_process = 5;
        let mut invoked = 0;
        while invoked < ops || slots.iter().any(|s| s.1.is_some()) {
            let slot = &mut slots[rand(5) as usize];
            let p = slot.0;
            match slot.1 {
                None if invoked < ops => {
                    invoked += 1;
                    if rand(2) == 0 {
                        next_value += 1;
                        h.invoke(p, "write", w(next_value));
                        slot.1 = Some((true, next_value, false, None));
                    } else {
                        h.invoke(p, "read", r());
                        slot.1 = Some((false, 0, false, None));
                    }
                }
                None => {}
                Some((is_write, v, false, _)) => {
                    if is_write {
                        register = Some(v);
                    }
                    slot.1 = Some((is_write, v, true, register));
                }
                Some((true, v, true, _)) => {
                    if rand(10) == 0 {
                        h.info(p, "write", w(v));
                        slot.0 = next_process;
                        next_process += 1;
                    } else {
                        h.ok(p, "write", w(v));
                    }
                    slot.1 = None;
                }
                Some((false, _, true, seen)) => {
                    read_ok(&mut h, p, seen);
                    slot.1 = None;
                }
            }
        }
        h.history
    }

    #[test]
    fn simulated_register_histories_are_valid() {
        for seed in 0..5 {
            let history = simulated(400, seed);
            let rep = register(&history);
            assert_eq!(rep.valid, Validity::Valid, "seed {seed}: {}", rep.details);
        }
    }

    #[test]
    fn keys_are_independent() {
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", json!({"key": "a", "value": 1}));
        h.call(1, OpType::Ok, "read", json!({"key": "b", "value": null}));
        h.call(1, OpType::Ok, "read", json!({"key": "a", "value": 1}));
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Valid, "{}", rep.details);
        assert_eq!(rep.details["keys"], 2);
    }

    #[test]
    fn search_bound_is_unknown_not_valid() {
        let mut h = Hist::new();
        for p in 1..=6 {
            h.invoke(p, "write", w(p as i64));
        }
        for p in 1..=6 {
            h.ok(p, "write", w(p as i64));
        }
        h.invoke(9, "read", r());
        read_ok(&mut h, 9, Some(3));
        assert_eq!(register(&h.history).valid, Validity::Valid);
        let rep = register_bounded(&h.history, 2);
        assert_eq!(rep.valid, Validity::Unknown, "{}", rep.details);
        assert_eq!(rep.details["per_key"]["r/a"]["valid"], "unknown");
    }

    #[test]
    fn no_keys_or_malformed_is_unknown() {
        assert_eq!(register(&History::default()).valid, Validity::Unknown);
        let mut h = Hist::new();
        h.call(1, OpType::Ok, "write", w(1));
        h.call(1, OpType::Ok, "write", json!({"key": "r/a", "value": "x"}));
        h.call(1, OpType::Ok, "read", json!({"key": "r/a"}));
        let rep = register(&h.history);
        assert_eq!(rep.valid, Validity::Unknown, "{}", rep.details);
        assert_eq!(rep.details["malformed"]["count"], 2);
    }
}
