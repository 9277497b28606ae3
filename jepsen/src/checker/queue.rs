//! The queue checker (workloads `queue-qos1`, `queue-qos2`): the broker's central promise to
//! persistent subscribers. Every publish the broker acknowledged must reach every subscriber
//! whose subscription was in place when it was published — across crashes, partitions and
//! reconnects — nothing may arrive that was never published (or was refused), and a QoS 2
//! message must not arrive twice.
//!
//! A publish is *expected* at subscriber S when its topic matches a filter of S whose
//! `subscribe` completed `:ok` before the publish was invoked. Lost messages are classified
//! per (subscriber, publisher) against the seqs that publisher got through to S: `prefix`
//! (below the lowest delivered), `middle`, `postfix` (above the highest, or nothing at all
//! delivered) — a lost middle is a hole in the log, a lost postfix is a tail that never
//! arrived. Publishes that ended `:info` may or may not have happened: received ones are
//! `recovered`, the others `indeterminate`, and neither is an error.
//!
//! A received message is `unexpected` when no publish of it was invoked, when its publish
//! ended `:fail`, when it arrived under another topic than it was published to, or when its
//! topic matches none of the filters the subscriber ever asked for. A message received more
//! than once is a duplicate: allowed (and counted) at QoS 1, a violation when a QoS 2 publish
//! was delivered at QoS 2 more than once (the harness already dropped the DUP resends a QoS 2
//! client discards); a QoS 2 publish that the subscription downgraded to QoS 1 (the
//! receives' `qos` is 1) is at-least-once like any QoS 1 message.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use super::Report;
use super::ops::{Call, MAX_EXAMPLES, Malformed, calls, need_str, need_u64};
use super::topic::matches;
use crate::history::{History, OpType};

/// A message's identity: (publisher, seq).
type Key = (u64, u64);

struct Publish<'a> {
    call: Call<'a>,
    topic: &'a str,
    qos: u64,
}

struct Delivery<'a> {
    index: u64,
    topic: Option<&'a str>,
    qos: Option<u64>,
}

struct Subscription<'a> {
    filter: &'a str,
    /// Where the subscribe completed `:ok`, if it did.
    ok_at: Option<usize>,
}

#[derive(Default)]
struct Counts {
    expected: u64,
    deliveries: u64,
    lost: u64,
    lost_prefix: u64,
    lost_middle: u64,
    lost_postfix: u64,
    unexpected: u64,
    duplicated_qos1: u64,
    duplicated_qos2: u64,
    recovered: u64,
    indeterminate: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.expected += o.expected;
        self.deliveries += o.deliveries;
        self.lost += o.lost;
        self.lost_prefix += o.lost_prefix;
        self.lost_middle += o.lost_middle;
        self.lost_postfix += o.lost_postfix;
        self.unexpected += o.unexpected;
        self.duplicated_qos1 += o.duplicated_qos1;
        self.duplicated_qos2 += o.duplicated_qos2;
        self.recovered += o.recovered;
        self.indeterminate += o.indeterminate;
    }

    fn to_json(&self) -> Value {
        json!({
            "expected": self.expected,
            "received": self.deliveries,
            "lost": self.lost,
            "lost_prefix": self.lost_prefix,
            "lost_middle": self.lost_middle,
            "lost_postfix": self.lost_postfix,
            "unexpected": self.unexpected,
            "duplicated_qos1": self.duplicated_qos1,
            "duplicated_qos2": self.duplicated_qos2,
            "recovered": self.recovered,
            "indeterminate": self.indeterminate,
        })
    }
}

#[derive(Default)]
struct Examples {
    lost: Vec<Value>,
    unexpected: Vec<Value>,
    duplicated_qos1: Vec<Value>,
    duplicated_qos2: Vec<Value>,
}

fn example(list: &mut Vec<Value>, value: Value) {
    if list.len() < MAX_EXAMPLES {
        list.push(value);
    }
}

/// Checks a queue workload's history; see the module docs.
pub fn queue(history: &History) -> Report {
    let mut malformed = Malformed::default();
    let all = calls(
        history,
        &["publish", "receive", "subscribe"],
        &mut malformed,
    );

    let mut publishes: BTreeMap<Key, Publish<'_>> = BTreeMap::new();
    let mut subscriptions: BTreeMap<&str, Vec<Subscription<'_>>> = BTreeMap::new();
    // subscriber -> message -> its deliveries, in history order
    let mut received: BTreeMap<&str, BTreeMap<Key, Vec<Delivery<'_>>>> = BTreeMap::new();
    let (mut ok_publishes, mut info_publishes, mut fail_publishes, mut deliveries) =
        (0u64, 0u64, 0u64, 0u64);

    for call in &all {
        let op = call.invoke;
        match op.f.as_str() {
            "publish" => {
                let read = || -> Result<(Key, &str, u64), String> {
                    let key = (need_u64(op, "publisher")?, need_u64(op, "seq")?);
                    Ok((key, need_str(op, "topic")?, need_u64(op, "qos")?))
                };
                let (key, topic, qos) = match read() {
                    Ok(v) => v,
                    Err(e) => {
                        malformed.note(op, e);
                        continue;
                    }
                };
                if publishes.contains_key(&key) {
                    malformed.note(
                        op,
                        format!("publisher {} published seq {} twice", key.0, key.1),
                    );
                    continue;
                }
                match call.outcome() {
                    OpType::Ok => ok_publishes += 1,
                    OpType::Fail => fail_publishes += 1,
                    _ => info_publishes += 1,
                }
                publishes.insert(
                    key,
                    Publish {
                        call: *call,
                        topic,
                        qos,
                    },
                );
            }
            "subscribe" => match (need_str(op, "client"), need_str(op, "filter")) {
                (Ok(client), Ok(filter)) => {
                    subscriptions.entry(client).or_default().push(Subscription {
                        filter,
                        ok_at: call.ok_at(),
                    })
                }
                (Err(e), _) | (_, Err(e)) => malformed.note(op, e),
            },
            _ => {
                // receive: only deliveries that completed :ok count
                let Some(done) = call.ok_op() else { continue };
                let read = || -> Result<(&str, Key), String> {
                    Ok((
                        need_str(done, "client")?,
                        (need_u64(done, "publisher")?, need_u64(done, "seq")?),
                    ))
                };
                match read() {
                    Ok((client, key)) => {
                        deliveries += 1;
                        received
                            .entry(client)
                            .or_default()
                            .entry(key)
                            .or_default()
                            .push(Delivery {
                                index: done.index,
                                topic: done.str_field("topic"),
                                qos: done.u64_field("qos"),
                            });
                    }
                    Err(e) => malformed.note(done, e),
                }
            }
        }
    }

    let subscribers: BTreeSet<&str> = subscriptions
        .keys()
        .chain(received.keys())
        .copied()
        .collect();
    let no_subs = Vec::new();
    let no_receipts = BTreeMap::new();
    let mut total = Counts::default();
    let mut examples = Examples::default();
    let mut per_subscriber = serde_json::Map::new();

    for &subscriber in &subscribers {
        let subs = subscriptions.get(subscriber).unwrap_or(&no_subs);
        let got = received.get(subscriber).unwrap_or(&no_receipts);
        let mut counts = Counts {
            deliveries: got.values().map(|d| d.len() as u64).sum(),
            ..Counts::default()
        };

        // The seqs of each publisher that reached this subscriber, to classify losses.
        let mut span: HashMap<u64, (u64, u64)> = HashMap::new();
        for &(publisher, seq) in got.keys() {
            let e = span.entry(publisher).or_insert((seq, seq));
            e.0 = e.0.min(seq);
            e.1 = e.1.max(seq);
        }

        for (&(publisher, seq), p) in &publishes {
            let expected = subs.iter().any(|s| {
                s.ok_at.is_some_and(|at| at < p.call.invoked_at) && matches(s.filter, p.topic)
            });
            let delivered = got.contains_key(&(publisher, seq));
            match p.call.outcome() {
                OpType::Ok if expected => {
                    counts.expected += 1;
                    if !delivered {
                        let class = match span.get(&publisher) {
                            Some(&(lo, _)) if seq < lo => "prefix",
                            Some(&(_, hi)) if seq < hi => "middle",
                            _ => "postfix",
                        };
                        counts.lost += 1;
                        match class {
                            "prefix" => counts.lost_prefix += 1,
                            "middle" => counts.lost_middle += 1,
                            _ => counts.lost_postfix += 1,
                        }
                        example(
                            &mut examples.lost,
                            json!({
                                "subscriber": subscriber, "publisher": publisher, "seq": seq,
                                "topic": p.topic, "class": class, "publish_index": p.call.invoke.index,
                            }),
                        );
                    }
                }
                OpType::Fail => {}
                OpType::Ok => {}
                _ => {
                    if delivered {
                        counts.recovered += 1;
                    } else if expected {
                        counts.indeterminate += 1;
                    }
                }
            }
        }

        for (&(publisher, seq), ds) in got {
            let first = ds.first().map(|d| d.index);
            let mut unexpected = |reason: &str, topic: Option<&str>| {
                counts.unexpected += 1;
                example(
                    &mut examples.unexpected,
                    json!({
                        "subscriber": subscriber, "publisher": publisher, "seq": seq,
                        "topic": topic, "reason": reason, "receive_index": first,
                        "deliveries": ds.len(),
                    }),
                );
            };
            let Some(p) = publishes.get(&(publisher, seq)) else {
                unexpected("never published", ds.first().and_then(|d| d.topic));
                continue;
            };
            if p.call.outcome() == OpType::Fail {
                unexpected("its publish failed", Some(p.topic));
                continue;
            }
            if ds.iter().any(|d| d.topic.is_some_and(|t| t != p.topic)) {
                unexpected(
                    "delivered under another topic than published",
                    Some(p.topic),
                );
                continue;
            }
            if !subs.iter().any(|s| matches(s.filter, p.topic)) {
                unexpected(
                    "its topic matches none of the subscriber's filters",
                    Some(p.topic),
                );
                continue;
            }
            if ds.len() > 1 {
                // Exactly-once holds for a QoS 2 publish delivered at QoS 2; a subscription
                // granted QoS 1 legitimately downgrades it to at-least-once.
                let at_qos2 = ds.iter().filter(|d| d.qos.unwrap_or(p.qos) >= 2).count();
                let ex = json!({
                    "subscriber": subscriber, "publisher": publisher, "seq": seq, "topic": p.topic,
                    "qos": p.qos, "deliveries": ds.len(),
                    "receive_indices": ds.iter().map(|d| d.index).collect::<Vec<_>>(),
                });
                if p.qos >= 2 && at_qos2 >= 2 {
                    counts.duplicated_qos2 += 1;
                    example(&mut examples.duplicated_qos2, ex);
                } else {
                    counts.duplicated_qos1 += 1;
                    example(&mut examples.duplicated_qos1, ex);
                }
            }
        }

        total.add(&counts);
        per_subscriber.insert(subscriber.to_owned(), counts.to_json());
    }

    let has_subscriber = subscriptions.values().flatten().any(|s| s.ok_at.is_some());
    let found = (total.lost + total.unexpected + total.duplicated_qos2 > 0).then(|| {
        format!(
            "{} lost, {} unexpected, {} duplicated at QoS 2",
            total.lost, total.unexpected, total.duplicated_qos2
        )
    });
    let (valid, reason) = malformed.verdict(
        found,
        &[
            (ok_publishes == 0, "no publish completed :ok"),
            (!has_subscriber, "no subscribe completed :ok"),
            (
                total.expected == 0,
                "no :ok publish was expected at any subscriber",
            ),
        ],
    );

    let details = json!({
        "reason": reason,
        "ok_publishes": ok_publishes,
        "info_publishes": info_publishes,
        "fail_publishes": fail_publishes,
        "received": deliveries,
        "expected": total.expected,
        "lost": total.lost,
        "lost_prefix": total.lost_prefix,
        "lost_middle": total.lost_middle,
        "lost_postfix": total.lost_postfix,
        "unexpected": total.unexpected,
        "duplicated_qos1": total.duplicated_qos1,
        "duplicated_qos2": total.duplicated_qos2,
        "recovered": total.recovered,
        "indeterminate": total.indeterminate,
        "subscribers": per_subscriber,
        "examples": {
            "lost": examples.lost,
            "unexpected": examples.unexpected,
            "duplicated_qos1": examples.duplicated_qos1,
            "duplicated_qos2": examples.duplicated_qos2,
        },
        "malformed": malformed.to_json(),
    });
    Report::new("queue", valid, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Validity;
    use crate::checker::testkit::Hist;
    use serde_json::json;

    /// A history builder that knows the queue workload's ops. Processes: subscribers use
    /// 100+, publishers use their publisher number (each op completes before the next).
    struct Q {
        h: Hist,
    }

    impl Q {
        fn new() -> Q {
            Q { h: Hist::new() }
        }

        fn subscribe(&mut self, client: &str, filter: &str) {
            self.h.call(
                100,
                OpType::Ok,
                "subscribe",
                json!({"client": client, "filter": filter, "qos": 2}),
            );
        }

        fn publish(&mut self, publisher: u64, seq: u64, topic: &str, qos: u64, kind: OpType) {
            let v = json!({"client": format!("pub{publisher}"), "publisher": publisher,
                           "topic": topic, "seq": seq, "qos": qos});
            self.h.call(publisher, kind, "publish", v);
        }

        fn receive(&mut self, client: &str, publisher: u64, seq: u64, topic: &str, qos: u64) {
            let v = json!({"client": client, "topic": topic, "publisher": publisher,
                           "seq": seq, "qos": qos, "dup": false, "conn": 1});
            self.h.call(200, OpType::Ok, "receive", v);
        }

        fn check(&self) -> Report {
            queue(&self.h.history)
        }
    }

    fn n(report: &Report, field: &str) -> u64 {
        report.details[field].as_u64().unwrap()
    }

    #[test]
    fn clean_history_is_valid() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.subscribe("s2", "q/+");
        q.h.nemesis("start-partition");
        for seq in 1..=3 {
            q.publish(1, seq, "q/a", 1, OpType::Ok);
            q.receive("s1", 1, seq, "q/a", 1);
            q.receive("s2", 1, seq, "q/a", 1);
        }
        let r = q.check();
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(r.checker, "queue");
        assert_eq!(n(&r, "ok_publishes"), 3);
        assert_eq!(n(&r, "received"), 6);
        assert_eq!(n(&r, "expected"), 6);
        assert_eq!(n(&r, "lost"), 0);
    }

    #[test]
    fn lost_messages_are_invalid_and_classified() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        for seq in 1..=5 {
            q.publish(1, seq, "q/a", 1, OpType::Ok);
        }
        q.publish(2, 1, "q/b", 1, OpType::Ok);
        q.receive("s1", 1, 2, "q/a", 1);
        q.receive("s1", 1, 4, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(n(&r, "lost"), 4);
        assert_eq!(n(&r, "lost_prefix"), 1); // seq 1
        assert_eq!(n(&r, "lost_middle"), 1); // seq 3
        assert_eq!(n(&r, "lost_postfix"), 2); // seq 5, and publisher 2 with nothing delivered
        assert_eq!(r.details["subscribers"]["s1"]["lost"], 4);
        let lost = r.details["examples"]["lost"].as_array().unwrap();
        let class_of = |p: u64, s: u64| {
            lost.iter()
                .find(|e| e["publisher"] == p && e["seq"] == s)
                .map(|e| e["class"].as_str().unwrap().to_owned())
        };
        assert_eq!(class_of(1, 1).as_deref(), Some("prefix"));
        assert_eq!(class_of(1, 3).as_deref(), Some("middle"));
        assert_eq!(class_of(1, 5).as_deref(), Some("postfix"));
        assert_eq!(class_of(2, 1).as_deref(), Some("postfix"));
        assert_eq!(lost[0]["subscriber"], "s1");
        assert_eq!(lost[0]["topic"], "q/a");
    }

    #[test]
    fn qos1_duplicate_is_valid_but_counted() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 1, 1, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(n(&r, "duplicated_qos1"), 1);
        assert_eq!(n(&r, "duplicated_qos2"), 0);
    }

    #[test]
    fn qos2_duplicate_is_invalid() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 2, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 2);
        q.receive("s1", 1, 1, "q/a", 2);
        let r = q.check();
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(n(&r, "duplicated_qos2"), 1);
        assert_eq!(r.details["examples"]["duplicated_qos2"][0]["deliveries"], 2);
    }

    #[test]
    fn qos2_publish_downgraded_to_qos1_may_repeat() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 2, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 1, 1, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(n(&r, "duplicated_qos1"), 1);
    }

    #[test]
    fn message_never_published_is_invalid() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 1, 7, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(n(&r, "unexpected"), 1);
        assert_eq!(r.details["examples"]["unexpected"][0]["seq"], 7);
        assert_eq!(
            r.details["examples"]["unexpected"][0]["reason"],
            "never published"
        );
    }

    #[test]
    fn received_failed_publish_is_invalid() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.publish(1, 2, "q/a", 1, OpType::Fail);
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 1, 2, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(n(&r, "unexpected"), 1);
        assert_eq!(n(&r, "fail_publishes"), 1);
        assert_eq!(
            r.details["examples"]["unexpected"][0]["reason"],
            "its publish failed"
        );
    }

    #[test]
    fn message_outside_the_subscription_is_invalid() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.publish(1, 2, "other", 1, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 1, 2, "other", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Invalid, "{}", r.details);
        assert_eq!(n(&r, "unexpected"), 1);
    }

    #[test]
    fn info_publishes_are_indeterminate_or_recovered() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.publish(1, 2, "q/a", 1, OpType::Info);
        q.publish(3, 1, "q/a", 1, OpType::Info);
        q.h.invoke(
            4,
            "publish",
            json!({"publisher": 4, "seq": 1, "topic": "q/a", "qos": 1}),
        );
        q.receive("s1", 1, 1, "q/a", 1);
        q.receive("s1", 3, 1, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(n(&r, "info_publishes"), 3);
        assert_eq!(n(&r, "indeterminate"), 2); // (1,2) and the open (4,1)
        assert_eq!(n(&r, "recovered"), 1);
        assert_eq!(n(&r, "lost"), 0);
    }

    #[test]
    fn publish_before_the_subscription_is_not_expected() {
        let mut q = Q::new();
        // Publish 1 is invoked while the subscribe is still in flight.
        q.h.invoke(
            100,
            "subscribe",
            json!({"client": "s1", "filter": "q/#", "qos": 1}),
        );
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.h.ok(
            100,
            "subscribe",
            json!({"client": "s1", "filter": "q/#", "qos": 1}),
        );
        q.publish(1, 2, "q/a", 1, OpType::Ok);
        q.receive("s1", 1, 2, "q/a", 1);
        let r = q.check();
        assert_eq!(r.valid, Validity::Valid, "{}", r.details);
        assert_eq!(n(&r, "expected"), 1);
        // ... but it is expected once the subscription is in place.
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.publish(1, 2, "q/a", 1, OpType::Ok);
        q.receive("s1", 1, 2, "q/a", 1);
        assert_eq!(q.check().valid, Validity::Invalid);
    }

    #[test]
    fn nothing_to_check_is_unknown() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Info);
        assert_eq!(q.check().valid, Validity::Unknown);
        let mut q = Q::new();
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        assert_eq!(q.check().valid, Validity::Unknown);
        assert_eq!(queue(&History::default()).valid, Validity::Unknown);
    }

    #[test]
    fn malformed_ops_make_it_unknown() {
        let mut q = Q::new();
        q.subscribe("s1", "q/#");
        q.publish(1, 1, "q/a", 1, OpType::Ok);
        q.receive("s1", 1, 1, "q/a", 1);
        q.h.call(
            5,
            OpType::Ok,
            "publish",
            json!({"publisher": 5, "topic": "q/a"}),
        );
        q.h.call(200, OpType::Ok, "receive", json!("garbage"));
        let r = q.check();
        assert_eq!(r.valid, Validity::Unknown, "{}", r.details);
        assert_eq!(r.details["malformed"]["count"], 2);
        assert!(r.details["reason"].as_str().unwrap().contains("malformed"));
    }
}
