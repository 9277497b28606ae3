//! The session checker (workload `session`: connect / disconnect / takeover cycles over a
//! pool of client ids). Two promises are checked.
//!
//! **`session_present` tells the truth.** A clean start never finds a session. A resume
//! (clean_start=false) must find one when a persistent session certainly exists: an earlier
//! connect of that client completed `:ok` (before this one was invoked) with an expiry long
//! enough not to lapse during the test (≥ [`NEVER_EXPIRES`] s), and no connect that might
//! have taken effect after it (one `:ok` later, or an `:info` one, which may take effect at
//! any time) had a shorter expiry that could have let the session end. It must find none when
//! no other connect of that client was invoked before it completed. Anything else (only
//! `:info` connects before it, short expiries) is left `unchecked`.
//!
//! **A taken-over connection is dead.** When connection B of client C completes its connect
//! `:ok` at position p, and B certainly came after connection A of C (A was established —
//! its connect ok, or a delivery on it — before B was invoked), then A must receive nothing
//! whose publish was invoked after p.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::Report;
use super::ops::{Call, MAX_EXAMPLES, Malformed, calls, need_bool, need_str, need_u64};
use crate::history::{History, Op, OpType};

/// A session expiry (seconds) at least this long is taken not to lapse within a test.
pub(crate) const NEVER_EXPIRES: u64 = 60;

struct Connect<'a> {
    call: Call<'a>,
    client: &'a str,
    clean_start: bool,
    expiry: u64,
    conn: u64,
    /// `session_present` of an `:ok` connect.
    present: Option<bool>,
}

/// An `:ok` delivery, with the connection it arrived on.
struct Receive<'a> {
    /// Its position in the history.
    at: usize,
    op: &'a Op,
    client: &'a str,
    conn: u64,
    publisher: u64,
    seq: u64,
}

/// A client's `:ok` connects in invocation order (`invoked`: their invocation positions), and
/// for each k the earliest `:ok` completion among connects k.. (`suffix`: its position and
/// that connect's invocation position), so that the first connection to take over one
/// established at position e is found by binary search.
struct Takeovers {
    invoked: Vec<usize>,
    suffix: Vec<(usize, usize)>,
}

/// What a connect's `session_present` must be, if anything can be said.
fn expected_present(x: &Connect<'_>, others: &[&Connect<'_>]) -> Option<bool> {
    if x.clean_start {
        return Some(false);
    }
    let done = x.call.ok_at()?;
    // No other connect of this client could have taken effect before this one.
    if others.iter().all(|y| y.call.invoked_at > done) {
        return Some(false);
    }
    // The latest connect that certainly left a persistent session before this one began.
    let base = others
        .iter()
        .filter(|e| {
            e.expiry >= NEVER_EXPIRES && e.call.ok_at().is_some_and(|q| q < x.call.invoked_at)
        })
        .max_by_key(|e| e.call.invoked_at)?;
    // Any connect that may have taken effect after it, and before this one, must keep the
    // session persistent too.
    let shortened = others.iter().any(|y| {
        let may_follow = match y.call.outcome() {
            OpType::Ok => y.call.ok_at().is_some_and(|q| q > base.call.invoked_at),
            OpType::Fail => false,
            _ => true, // :info or never completed: may take effect at any time
        };
        y.call.invoked_at != base.call.invoked_at
            && y.call.invoked_at < done
            && may_follow
            && y.expiry < NEVER_EXPIRES
    });
    if shortened { None } else { Some(true) }
}

/// Checks session-present flags and takeovers; see the module docs.
pub fn session(history: &History) -> Report {
    let mut malformed = Malformed::default();
    let all = calls(history, &["connect", "publish", "receive"], &mut malformed);

    let mut connects: Vec<Connect<'_>> = Vec::new();
    let mut publish_at: HashMap<(u64, u64), usize> = HashMap::new();
    let mut receives: Vec<Receive<'_>> = Vec::new();

    for call in &all {
        let op = call.invoke;
        match op.f.as_str() {
            "connect" => {
                let read = || -> Result<Connect<'_>, String> {
                    let present = match call.ok_op() {
                        Some(done) => Some(need_bool(done, "session_present")?),
                        None => None,
                    };
                    Ok(Connect {
                        call: *call,
                        client: need_str(op, "client")?,
                        clean_start: need_bool(op, "clean_start")?,
                        expiry: need_u64(op, "expiry")?,
                        conn: need_u64(op, "conn")?,
                        present,
                    })
                };
                match read() {
                    Ok(c) => connects.push(c),
                    Err(e) => malformed.note(op, e),
                }
            }
            "publish" => match (need_u64(op, "publisher"), need_u64(op, "seq")) {
                (Ok(p), Ok(s)) => {
                    if publish_at.insert((p, s), call.invoked_at).is_some() {
                        malformed.note(op, format!("publisher {p} published seq {s} twice"));
                    }
                }
                (Err(e), _) | (_, Err(e)) => malformed.note(op, e),
            },
            _ => {
                let Some(done) = call.ok_op() else { continue };
                let read = || -> Result<_, String> {
                    Ok((
                        need_str(done, "client")?,
                        need_u64(done, "conn")?,
                        need_u64(done, "publisher")?,
                        need_u64(done, "seq")?,
                    ))
                };
                match read() {
                    Ok((client, conn, publisher, seq)) => receives.push(Receive {
                        at: call.ok_at().unwrap_or(call.invoked_at),
                        op: done,
                        client,
                        conn,
                        publisher,
                        seq,
                    }),
                    Err(e) => malformed.note(done, e),
                }
            }
        }
    }

    let mut by_client: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_conn: HashMap<u64, usize> = HashMap::new();
    for (i, c) in connects.iter().enumerate() {
        by_client.entry(c.client).or_default().push(i);
        if by_conn.insert(c.conn, i).is_some() {
            malformed.note(
                c.call.invoke,
                format!("connection number {} used twice", c.conn),
            );
        }
    }

    // Rule 1: session_present.
    let mut violations: Vec<Value> = Vec::new();
    let mut violation_count = 0u64;
    let (mut ok_connects, mut checked_clean, mut checked_resume, mut unchecked) =
        (0u64, 0u64, 0u64, 0u64);
    for members in by_client.values() {
        for &xi in members {
            let Some(x) = connects.get(xi) else { continue };
            let Some(present) = x.present else { continue };
            ok_connects += 1;
            let others: Vec<&Connect<'_>> = members
                .iter()
                .filter(|&&j| j != xi)
                .filter_map(|&j| connects.get(j))
                .collect();
            let Some(expected) = expected_present(x, &others) else {
                unchecked += 1;
                continue;
            };
            if x.clean_start {
                checked_clean += 1;
            } else {
                checked_resume += 1;
            }
            if present != expected {
                violation_count += 1;
                let what = match (x.clean_start, expected) {
                    (true, _) => "clean start reported a session present",
                    (false, true) => "persistent session missing on resume",
                    (false, false) => "session present although none can exist",
                };
                if violations.len() < MAX_EXAMPLES {
                    violations.push(json!({
                        "violation": what,
                        "client": x.client,
                        "conn": x.conn,
                        "index": x.call.invoke.index,
                        "clean_start": x.clean_start,
                        "expiry": x.expiry,
                        "session_present": present,
                    }));
                }
            }
        }
    }

    // Rule 2: takeovers. A connection is established by its connect's :ok or by any
    // delivery on it, whichever comes first.
    let mut established: HashMap<u64, usize> = HashMap::new();
    for c in &connects {
        if let Some(at) = c.call.ok_at() {
            established.insert(c.conn, at);
        }
    }
    for r in &receives {
        let e = established.entry(r.conn).or_insert(r.at);
        *e = (*e).min(r.at);
    }
    // Per client, its :ok connects by invocation, with the suffix minimum of completion, so
    // that "the first takeover after position e" is a binary search.
    let mut takeovers: HashMap<&str, Takeovers> = HashMap::new();
    for (client, members) in &by_client {
        let mut oks: Vec<&Connect<'_>> = members
            .iter()
            .filter_map(|&j| connects.get(j))
            .filter(|c| c.call.ok_at().is_some())
            .collect();
        oks.sort_by_key(|c| c.call.invoked_at);
        let invoked: Vec<usize> = oks.iter().map(|c| c.call.invoked_at).collect();
        let mut suffix: Vec<(usize, usize)> = vec![(usize::MAX, usize::MAX); oks.len()];
        let mut best = (usize::MAX, usize::MAX);
        for (k, c) in oks.iter().enumerate().rev() {
            let q = c.call.ok_at().unwrap_or(usize::MAX);
            if q < best.0 {
                best = (q, c.call.invoked_at);
            }
            if let Some(slot) = suffix.get_mut(k) {
                *slot = best;
            }
        }
        takeovers.insert(client, Takeovers { invoked, suffix });
    }
    let taken_over = |client: &str, conn: u64| -> Option<(usize, usize)> {
        let since = *established.get(&conn)?;
        let t = takeovers.get(client)?;
        let k = t.invoked.partition_point(|&i| i <= since);
        t.suffix.get(k).copied().filter(|&(q, _)| q != usize::MAX)
    };

    let mut takeover_violations: Vec<Value> = Vec::new();
    let mut takeover_count = 0u64;
    let (mut receives_checked, mut receives_unmatched) = (0u64, 0u64);
    for r in &receives {
        let (client, conn, publisher, seq) = (r.client, r.conn, r.publisher, r.seq);
        let owner = by_conn.get(&conn).and_then(|&i| connects.get(i));
        let (Some(&pub_at), Some(owner)) = (publish_at.get(&(publisher, seq)), owner) else {
            receives_unmatched += 1;
            continue;
        };
        if owner.client != client {
            malformed.note(
                r.op,
                format!(
                    "receive for client {client} on connection {conn} of client {}",
                    owner.client
                ),
            );
            continue;
        }
        receives_checked += 1;
        if let Some((at, by_at)) = taken_over(client, conn)
            && pub_at > at
        {
            takeover_count += 1;
            if takeover_violations.len() < MAX_EXAMPLES {
                let by = history.ops.get(by_at);
                takeover_violations.push(json!({
                    "violation": "delivered to a connection after it was taken over",
                    "client": client,
                    "conn": conn,
                    "taken_over_by_conn": by.and_then(|o| o.u64_field("conn")),
                    "takeover_connect_index": by.map(|o| o.index),
                    "takeover_ok_index": history.ops.get(at).map(|o| o.index),
                    "receive_index": r.op.index,
                    "publisher": publisher,
                    "seq": seq,
                    "publish_index": history.ops.get(pub_at).map(|o| o.index),
                }));
            }
        }
    }

    let total = violation_count + takeover_count;
    let found = (total > 0).then(|| {
        format!(
            "{violation_count} wrong session_present, {takeover_count} deliveries after takeover"
        )
    });
    let (valid, reason) = malformed.verdict(
        found,
        &[(
            checked_resume == 0,
            "no resume (clean_start=false) connect could be checked",
        )],
    );
    let details = json!({
        "reason": reason,
        "connects": connects.len(),
        "ok_connects": ok_connects,
        "checked_clean_start": checked_clean,
        "checked_resume": checked_resume,
        "unchecked": unchecked,
        "session_present_violations": violation_count,
        "receives_checked": receives_checked,
        "receives_unmatched": receives_unmatched,
        "takeover_violations": takeover_count,
        "examples": {
            "session_present": violations,
            "takeover": takeover_violations,
        },
        "malformed": malformed.to_json(),
    });
    Report::new("session", valid, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Validity;
    use crate::checker::testkit::Hist;
    use serde_json::json;

    fn cv(client: &str, clean: bool, expiry: u64, conn: u64) -> Value {
        json!({"client": client, "clean_start": clean, "expiry": expiry, "conn": conn})
    }

    fn with_present(mut v: Value, present: bool) -> Value {
        v["session_present"] = json!(present);
        v
    }

    /// A connect that completes at once.
    fn connect(
        h: &mut Hist,
        p: u64,
        client: &str,
        clean: bool,
        expiry: u64,
        conn: u64,
        present: bool,
    ) {
        let v = cv(client, clean, expiry, conn);
        h.invoke(p, "connect", v.clone());
        h.ok(p, "connect", with_present(v, present));
    }

    fn disconnect(h: &mut Hist, p: u64, client: &str, conn: u64) {
        h.call(
            p,
            OpType::Ok,
            "disconnect",
            json!({"client": client, "conn": conn}),
        );
    }

    fn publish(h: &mut Hist, p: u64, seq: u64) {
        let v = json!({"client": "pub", "publisher": 9, "topic": "s/c1", "seq": seq, "qos": 1});
        h.call(p, OpType::Ok, "publish", v);
    }

    fn receive(h: &mut Hist, client: &str, conn: u64, seq: u64) {
        let v = json!({"client": client, "conn": conn, "topic": "s/c1", "publisher": 9,
                       "seq": seq, "qos": 1, "dup": false});
        h.call(50, OpType::Ok, "receive", v);
    }

    #[test]
    fn present_after_persistent_session_is_valid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        disconnect(&mut h, 1, "c1", 1);
        h.nemesis("start-kill");
        connect(&mut h, 1, "c1", false, 300, 2, true);
        connect(&mut h, 1, "c1", true, 300, 3, false);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.checker, "session");
        assert_eq!(r.details["checked_resume"], 2);
        assert_eq!(r.details["checked_clean_start"], 1);
    }

    #[test]
    fn missing_session_is_invalid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", true, 300, 1, false);
        disconnect(&mut h, 1, "c1", 1);
        connect(&mut h, 1, "c1", false, 300, 2, false);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        let v = &r.details["examples"]["session_present"][0];
        assert_eq!(v["violation"], "persistent session missing on resume");
        assert_eq!(v["conn"], 2);
    }

    #[test]
    fn clean_start_with_session_present_is_invalid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        connect(&mut h, 1, "c1", false, 300, 2, true);
        connect(&mut h, 1, "c1", true, 300, 3, true);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(
            r.details["examples"]["session_present"][0]["violation"],
            "clean start reported a session present"
        );
    }

    #[test]
    fn session_present_on_a_first_connect_is_invalid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, true);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
    }

    #[test]
    fn uncertain_or_short_lived_sessions_are_unchecked() {
        // Only an :info connect before: either answer is fine.
        let mut h = Hist::new();
        h.invoke(1, "connect", cv("c1", false, 300, 1));
        h.info(1, "connect", cv("c1", false, 300, 1));
        connect(&mut h, 2, "c1", false, 300, 2, false);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Unknown, "{}", r.details);
        assert_eq!(r.details["unchecked"], 1);

        // A connect with a short expiry in between may have let the session end.
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        connect(&mut h, 1, "c1", false, 0, 2, true);
        disconnect(&mut h, 1, "c1", 2);
        connect(&mut h, 1, "c1", false, 300, 3, false);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.details["unchecked"], 1);
        assert_eq!(r.details["checked_resume"], 2);
    }

    #[test]
    fn concurrent_connect_may_create_the_session() {
        // conn 2 is invoked before conn 1 completes and may have created the session.
        let mut h = Hist::new();
        h.invoke(1, "connect", cv("c1", false, 300, 1));
        h.invoke(2, "connect", cv("c1", true, 300, 2));
        h.ok(1, "connect", with_present(cv("c1", false, 300, 1), true));
        h.ok(2, "connect", with_present(cv("c1", true, 300, 2), false));
        connect(&mut h, 1, "c1", false, 300, 3, true);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.details["unchecked"], 1);
    }

    #[test]
    fn delivery_after_takeover_is_invalid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        connect(&mut h, 2, "c1", false, 300, 2, true); // takes over conn 1
        publish(&mut h, 3, 1);
        receive(&mut h, "c1", 1, 1);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        let v = &r.details["examples"]["takeover"][0];
        assert_eq!(v["conn"], 1);
        assert_eq!(v["taken_over_by_conn"], 2);
        assert_eq!(v["seq"], 1);
    }

    #[test]
    fn delivery_published_before_takeover_is_valid() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        publish(&mut h, 3, 1);
        connect(&mut h, 2, "c1", false, 300, 2, true); // takes over conn 1
        receive(&mut h, "c1", 1, 1); // in flight before the takeover
        publish(&mut h, 3, 2);
        receive(&mut h, "c1", 2, 2); // the new connection may receive anything
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.details["receives_checked"], 2);
    }

    #[test]
    fn concurrent_connects_are_not_takeovers() {
        // Neither connect certainly came after the other: no takeover order is known.
        let mut h = Hist::new();
        h.invoke(1, "connect", cv("c1", false, 300, 1));
        h.invoke(2, "connect", cv("c1", false, 300, 2));
        h.ok(2, "connect", with_present(cv("c1", false, 300, 2), false));
        h.ok(1, "connect", with_present(cv("c1", false, 300, 1), true));
        publish(&mut h, 3, 1);
        receive(&mut h, "c1", 1, 1);
        connect(&mut h, 1, "c1", false, 300, 3, true);
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
    }

    #[test]
    fn malformed_connect_is_unknown() {
        let mut h = Hist::new();
        connect(&mut h, 1, "c1", false, 300, 1, false);
        connect(&mut h, 1, "c1", false, 300, 2, true);
        h.call(1, OpType::Ok, "connect", json!({"client": "c1", "conn": 3}));
        let r = session(&h.history);
        assert_eq!(r.valid, Validity::Unknown, "{}", r.details);
        assert_eq!(r.details["malformed"]["count"], 1);
    }
}
