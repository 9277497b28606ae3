//! Matching one topic against a trie of 100,000 filters shaped like a device fleet's.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use raftmq::mqtt::topic::parse_subscription_filter;
use raftmq::router::{Match, TopicTrie};

const FILTERS: usize = 100_000;

/// The options a subscription would carry; the broker's real type is about this size.
#[derive(Clone, Copy)]
struct Options {
    qos: u8,
    identifier: u32,
}

/// A fixed-seed generator, so every run benches the same topics.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// (subscription text, subscriber): mostly one device's own telemetry, then status
/// wildcards, whole-site feeds, shared alarm consumers and fleet trackers.
fn subscriptions() -> Vec<(String, String)> {
    let mut all = Vec::with_capacity(FILTERS + 3);
    for n in 0..70_000 {
        all.push((format!("devices/{n}/telemetry"), format!("device-{n}")));
    }
    for n in 0..15_000 {
        all.push((format!("devices/{n}/+/status"), format!("device-{n}")));
    }
    for k in 0..10_000 {
        all.push((format!("site/{k}/#"), format!("site-{k}")));
    }
    for k in 0..4_000 {
        let group = k % 20;
        for worker in 0..3 {
            all.push((
                format!("$share/alarms{group}/site/{k}/+/alarm"),
                format!("worker-{group}-{worker}"),
            ));
        }
    }
    for m in 0..999 {
        all.push((format!("fleet/{m}/+/position"), format!("tracker-{m}")));
    }
    for monitor in 0..3 {
        all.push((
            "devices/+/telemetry".to_owned(),
            format!("monitor-{monitor}"),
        ));
    }
    all
}

fn topics() -> Vec<String> {
    let mut rng = Lcg(7);
    (0..4096)
        .map(|_| match rng.below(8) {
            0..=2 => format!("devices/{}/telemetry", rng.below(100_000)),
            3 => format!("devices/{}/fw/status", rng.below(30_000)),
            4 => format!("site/{}/building/{}/temp", rng.below(12_000), rng.below(10)),
            5 => format!("site/{}/pump{}/alarm", rng.below(5_000), rng.below(4)),
            6 => format!("fleet/{}/truck{}/position", rng.below(1_500), rng.below(50)),
            _ => format!("unknown/{}/reading", rng.below(1_000)),
        })
        .collect()
}

fn build() -> TopicTrie<String, Options> {
    let mut trie = TopicTrie::new();
    for (identifier, (text, subscriber)) in (1..).zip(subscriptions()) {
        if let Ok(filter) = parse_subscription_filter(&text) {
            trie.insert(&filter, subscriber, Options { qos: 1, identifier });
        }
    }
    trie
}

fn matching(c: &mut Criterion) {
    let trie = build();
    let topics = topics();
    let mut next = topics.iter().cycle();

    c.bench_function("for_each_match, 100k filters", |b| {
        b.iter(|| {
            let topic = next.next().map_or("", String::as_str);
            let mut reached = 0u64;
            trie.for_each_match(black_box(topic), |found| match found {
                Match::Subscriber(m) => {
                    reached += u64::from(m.value.qos) + u64::from(m.value.identifier)
                }
                Match::Shared(m) => reached += m.members.len() as u64,
            });
            reached
        })
    });

    c.bench_function("matches (collected), 100k filters", |b| {
        b.iter(|| {
            let topic = next.next().map_or("", String::as_str);
            let found = trie.matches(black_box(topic));
            found.subscribers.len() + found.shared.len()
        })
    });
}

criterion_group!(benches, matching);
criterion_main!(benches);
