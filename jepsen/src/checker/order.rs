//! The order checker: MQTT promises that a subscriber sees one publisher's messages on one
//! topic in the order they were published (MQTT 5.0 §4.6). Publishers number their
//! messages with increasing seqs, so per (subscriber, publisher, topic) the seqs of *first*
//! deliveries, in history order, must increase strictly. Re-deliveries of a seq already seen
//! (QoS 1 resends after a reconnect) are ignored: only where a message first arrived says
//! anything about order. Losses are the queue checker's business, so gaps are fine.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::Report;
use super::ops::{Malformed, calls, need_str, need_u64};
use crate::history::History;

/// At most this many violations are listed in the details (all are counted).
const MAX_LISTED: usize = 1000;

/// Checks per-publisher, per-topic delivery order; see the module docs.
pub fn order(history: &History) -> Report {
    let mut malformed = Malformed::default();
    let receives = calls(history, &["receive"], &mut malformed);

    // (subscriber, publisher, topic) -> highest first-delivered seq so far, and where
    let mut highest: HashMap<(&str, u64, &str), (u64, u64)> = HashMap::new();
    let mut seen: HashSet<(&str, u64, &str, u64)> = HashSet::new();
    let mut first_deliveries: BTreeMap<&str, u64> = BTreeMap::new();
    let mut count = 0u64;
    let mut violations: Vec<Value> = Vec::new();
    let mut violation_count = 0u64;

    for call in &receives {
        let Some(op) = call.ok_op() else { continue };
        let read = || -> Result<(&str, u64, &str, u64), String> {
            Ok((
                need_str(op, "client")?,
                need_u64(op, "publisher")?,
                need_str(op, "topic")?,
                need_u64(op, "seq")?,
            ))
        };
        let (subscriber, publisher, topic, seq) = match read() {
            Ok(v) => v,
            Err(e) => {
                malformed.note(op, e);
                continue;
            }
        };
        count += 1;
        if !seen.insert((subscriber, publisher, topic, seq)) {
            continue; // a re-delivery
        }
        *first_deliveries.entry(subscriber).or_default() += 1;
        let group = (subscriber, publisher, topic);
        match highest.get(&group) {
            Some(&(max, max_index)) if seq < max => {
                violation_count += 1;
                if violations.len() < MAX_LISTED {
                    violations.push(json!({
                        "subscriber": subscriber,
                        "publisher": publisher,
                        "topic": topic,
                        "seq": seq,
                        "after": max,
                        "index": op.index,
                        "after_index": max_index,
                    }));
                }
            }
            _ => {
                highest.insert(group, (seq, op.index));
            }
        }
    }

    let found = (violation_count > 0)
        .then(|| format!("{violation_count} message(s) delivered after a later one"));
    let (valid, reason) = malformed.verdict(found, &[(count == 0, "no receive completed :ok")]);
    let details = json!({
        "reason": reason,
        "received": count,
        "first_deliveries": first_deliveries,
        "streams": highest.len(),
        "violation_count": violation_count,
        "violations": violations,
        "malformed": malformed.to_json(),
    });
    Report::new("order", valid, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Validity;
    use crate::checker::testkit::Hist;
    use crate::history::OpType;
    use serde_json::json;

    fn receive(h: &mut Hist, client: &str, publisher: u64, topic: &str, seq: u64) {
        let v = json!({"client": client, "topic": topic, "publisher": publisher,
                       "seq": seq, "qos": 1, "dup": false, "conn": 1});
        h.call(7, OpType::Ok, "receive", v);
    }

    #[test]
    fn in_order_is_valid() {
        let mut h = Hist::new();
        receive(&mut h, "s1", 1, "q/a", 1);
        receive(&mut h, "s1", 1, "q/a", 3); // gaps are the queue checker's concern
        receive(&mut h, "s2", 1, "q/a", 2);
        receive(&mut h, "s1", 1, "q/a", 4);
        let r = order(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.checker, "order");
        assert_eq!(r.details["received"], 4);
    }

    #[test]
    fn reordering_is_invalid() {
        let mut h = Hist::new();
        receive(&mut h, "s1", 1, "q/a", 1);
        receive(&mut h, "s1", 1, "q/a", 3);
        receive(&mut h, "s1", 1, "q/a", 2);
        let r = order(&h.history);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        let v = &r.details["violations"][0];
        assert_eq!(v["subscriber"], "s1");
        assert_eq!(v["publisher"], 1);
        assert_eq!(v["topic"], "q/a");
        assert_eq!(v["seq"], 2);
        assert_eq!(v["after"], 3);
        assert_eq!(v["index"], 5);
    }

    #[test]
    fn redeliveries_are_ignored() {
        let mut h = Hist::new();
        receive(&mut h, "s1", 1, "q/a", 1);
        receive(&mut h, "s1", 1, "q/a", 2);
        receive(&mut h, "s1", 1, "q/a", 1); // a QoS 1 resend after reconnecting
        receive(&mut h, "s1", 1, "q/a", 3);
        receive(&mut h, "s1", 1, "q/a", 2);
        let r = order(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.details["first_deliveries"]["s1"], 3);
    }

    #[test]
    fn streams_are_independent() {
        let mut h = Hist::new();
        receive(&mut h, "s1", 1, "q/a", 5);
        receive(&mut h, "s1", 1, "q/b", 1);
        receive(&mut h, "s1", 2, "q/a", 1);
        receive(&mut h, "s2", 1, "q/a", 1);
        let r = order(&h.history);
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.details["streams"], 4);
    }

    #[test]
    fn no_receives_or_malformed_is_unknown() {
        assert_eq!(order(&History::default()).valid, Validity::Unknown);
        let mut h = Hist::new();
        receive(&mut h, "s1", 1, "q/a", 1);
        h.call(7, OpType::Ok, "receive", json!({"client": "s1", "seq": 2}));
        let r = order(&h.history);
        assert_eq!(r.valid, Validity::Unknown, "{}", r.details);
    }
}
