//! A linearizability search in the style of Wing & Gong, with Lowe's memoization: the
//! register checker's engine, kept apart from the register model so each stays small.
//!
//! The history becomes a doubly-linked list of call and return events in real-time order.
//! The search walks it from the head: at a call it tries to linearize that operation (apply
//! it to the model, lift its call and return out of the list, start again from the head);
//! at a return it has met an operation that had to take effect by then and did not, so it
//! backtracks — undoes the last linearization and tries the next candidate. Configurations
//! already explored (the set of linearized ops as a bitset, plus the model state) are
//! cached and never explored twice. Operations that never completed (`:info`) return at
//! +infinity and are optional: the search succeeds once every completed operation is
//! linearized. A bound on cached states keeps pathological histories from running forever;
//! hitting it is an inconclusive answer, never a positive one.

use std::collections::HashSet;
use std::hash::Hash;

/// An operation to linearize. `call` and `ret` are history positions; `ret` is `None` for an
/// operation that may take effect at any point after `call`, or never.
#[derive(Debug, Clone)]
pub(crate) struct Entry<O> {
    pub(crate) call: usize,
    pub(crate) ret: Option<usize>,
    pub(crate) op: O,
}

/// How many model states are shown for an operation that could not be linearized.
const MAX_STATES_SHOWN: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<S> {
    Linearizable {
        explored: usize,
    },
    /// `entry` (an index into the entries) is the operation the search got furthest in the
    /// history without being able to linearize, and `states` the model states it met there.
    NotLinearizable {
        entry: usize,
        states: Vec<S>,
        explored: usize,
    },
    /// The bound was hit before an answer.
    Exhausted {
        explored: usize,
    },
}

const HEAD: usize = 0;

/// Searches for a linearization of `entries` from `init`, where `step` applies an operation
/// to a state (`None`: not possible in that state). Gives up after caching `max_states`
/// configurations.
pub(crate) fn check<S, O>(
    entries: &[Entry<O>],
    init: S,
    step: impl Fn(&S, &O) -> Option<S>,
    max_states: usize,
) -> Outcome<S>
where
    S: Clone + Eq + Hash,
{
    let n = entries.len();
    // Nodes: HEAD = 0, entry k's call = 2k+1 and return = 2k+2, TAIL = 2n+1.
    let tail = 2 * n + 1;
    let call_node = |k: usize| 2 * k + 1;
    let mut order: Vec<(usize, usize, usize)> = Vec::with_capacity(2 * n);
    for (k, e) in entries.iter().enumerate() {
        order.push((e.call, 0, call_node(k)));
        // Returns at +infinity keep their invocation order, after everything else.
        let (at, tie) = match e.ret {
            Some(r) => (r, 1),
            None => (usize::MAX, 1 + e.call),
        };
        order.push((at, tie, call_node(k) + 1));
    }
    order.sort_unstable();
    let mut next = vec![tail; 2 * n + 2];
    let mut prev = vec![HEAD; 2 * n + 2];
    let mut last = HEAD;
    for &(_, _, node) in &order {
        next[last] = node;
        prev[node] = last;
        last = node;
    }
    next[last] = tail;
    prev[tail] = last;

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, S)> = HashSet::new();
    let mut stack: Vec<(usize, S)> = Vec::new();
    let mut state = init;
    let mut required = entries.iter().filter(|e| e.ret.is_some()).count();
    let mut entry = next[HEAD];
    // The furthest return the search was stuck at: (its position, entry, states seen there).
    let mut stuck: Option<(usize, usize, Vec<S>)> = None;
    let max_steps = max_states.saturating_mul(64).max(1 << 16);
    let mut steps = 0usize;

    loop {
        if required == 0 {
            return Outcome::Linearizable {
                explored: cache.len(),
            };
        }
        steps += 1;
        if steps > max_steps {
            return Outcome::Exhausted {
                explored: cache.len(),
            };
        }
        let is_call = entry != tail && entry % 2 == 1;
        if is_call {
            let k = (entry - 1) / 2;
            let Some(e) = entries.get(k) else {
                return Outcome::Exhausted {
                    explored: cache.len(),
                };
            };
            if let Some(new_state) = step(&state, &e.op) {
                linearized[k / 64] |= 1 << (k % 64);
                let key = (linearized.clone(), new_state.clone());
                if !cache.contains(&key) {
                    if cache.len() >= max_states {
                        return Outcome::Exhausted {
                            explored: cache.len(),
                        };
                    }
                    cache.insert(key);
                    stack.push((entry, std::mem::replace(&mut state, new_state)));
                    if e.ret.is_some() {
                        required -= 1;
                    }
                    // Lift the call and its return out of the list.
                    for node in [entry, entry + 1] {
                        next[prev[node]] = next[node];
                        prev[next[node]] = prev[node];
                    }
                    entry = next[HEAD];
                    continue;
                }
                linearized[k / 64] &= !(1 << (k % 64));
            }
            entry = next[entry];
        } else {
            if entry != tail {
                let k = (entry - 2) / 2;
                let at = entries.get(k).and_then(|e| e.ret).unwrap_or(usize::MAX);
                match &mut stuck {
                    Some((best, bk, states)) if *best == at && *bk == k => {
                        if states.len() < MAX_STATES_SHOWN && !states.contains(&state) {
                            states.push(state.clone());
                        }
                    }
                    Some((best, _, _)) if *best >= at => {}
                    _ => stuck = Some((at, k, vec![state.clone()])),
                }
            }
            let Some((node, saved)) = stack.pop() else {
                let (entry, states) = stuck.map(|(_, k, s)| (k, s)).unwrap_or_default();
                return Outcome::NotLinearizable {
                    entry,
                    states,
                    explored: cache.len(),
                };
            };
            let k = (node - 1) / 2;
            linearized[k / 64] &= !(1 << (k % 64));
            if entries.get(k).is_some_and(|e| e.ret.is_some()) {
                required += 1;
            }
            state = saved;
            // Put the return, then the call, back where they were.
            for node in [node + 1, node] {
                next[prev[node]] = node;
                prev[next[node]] = node;
            }
            entry = next[node];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register of small integers; 0 is "empty".
    #[derive(Debug, Clone, Copy)]
    enum Op {
        W(u8),
        R(u8),
    }

    fn step(s: &u8, op: &Op) -> Option<u8> {
        match *op {
            Op::W(v) => Some(v),
            Op::R(v) => (v == *s).then_some(*s),
        }
    }

    fn e(call: usize, ret: Option<usize>, op: Op) -> Entry<Op> {
        Entry { call, ret, op }
    }

    #[test]
    fn empty_history_is_linearizable() {
        let out = check::<u8, Op>(&[], 0, step, 10);
        assert!(matches!(out, Outcome::Linearizable { .. }));
    }

    #[test]
    fn sequential_and_concurrent() {
        // w1 [0,3] overlaps r1 [1,2]: fine.
        let h = [e(0, Some(3), Op::W(1)), e(1, Some(2), Op::R(1))];
        assert!(matches!(
            check(&h, 0, step, 100),
            Outcome::Linearizable { .. }
        ));
        // w1 [0,1] then r0 [2,3]: stale.
        let h = [e(0, Some(1), Op::W(1)), e(2, Some(3), Op::R(0))];
        match check(&h, 0, step, 100) {
            Outcome::NotLinearizable { entry, states, .. } => {
                assert_eq!(entry, 1);
                assert_eq!(states, vec![1]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn optional_ops_may_be_skipped_or_taken() {
        let h = [e(0, None, Op::W(1)), e(2, Some(3), Op::R(0))];
        assert!(matches!(
            check(&h, 0, step, 100),
            Outcome::Linearizable { .. }
        ));
        let h = [e(0, None, Op::W(1)), e(2, Some(3), Op::R(1))];
        assert!(matches!(
            check(&h, 0, step, 100),
            Outcome::Linearizable { .. }
        ));
        // ... but never before their invocation.
        let h = [e(0, Some(1), Op::R(1)), e(2, None, Op::W(1))];
        assert!(matches!(
            check(&h, 0, step, 100),
            Outcome::NotLinearizable { .. }
        ));
    }

    #[test]
    fn the_bound_gives_up() {
        let h: Vec<_> = (0..10)
            .map(|i| e(i, Some(100 + i), Op::W(i as u8)))
            .collect();
        assert!(matches!(check(&h, 0, step, 3), Outcome::Exhausted { .. }));
    }
}
