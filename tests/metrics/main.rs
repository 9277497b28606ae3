//! `/metrics`, `$SYS` and the JSON logs, against real raftmq node processes on loopback:
//! - `scrape`: known traffic (rumqttc 5.0: 10 QoS 1 and 5 QoS 0 messages to a subscriber,
//!   a retained message nobody receives, a refused login) moves each counter by exactly
//!   that much; Raft's indexes and the histograms have samples; `/metrics` needs the API
//!   token unless `--metrics-public=true`.
//! - `sys`: the `$SYS` topics of every node of a cluster reach a `$SYS` subscriber, never
//!   a `#` one, and clients cannot publish under `$SYS`.
//! - `logs`: with `--log-format json` every line is JSON, and a client's connect and
//!   disconnect lines carry its real address, listener, protocol and reason.

#[path = "../broker_support/mod.rs"]
mod broker_support;

mod client;
mod logs;
mod scrape;
mod sys;

use std::collections::HashMap;
use std::time::Duration;

use raftmq::local_cluster::LocalNode;

/// How long any single step may take on a loaded 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// One scrape: each sample's `name{labels}` and value.
#[derive(Debug, Clone)]
pub(crate) struct Samples(HashMap<String, f64>);

impl Samples {
    /// Parses the text exposition; panics on a line that is not a sample or a comment.
    pub(crate) fn parse(text: &str) -> Samples {
        let mut samples = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|e| panic!("not a value in {line:?}: {e}"));
            samples.insert(key.to_string(), value);
        }
        Samples(samples)
    }

    /// The value of `key` (`name` or `name{label="value"}`); panics if it is missing.
    pub(crate) fn get(&self, key: &str) -> f64 {
        *self
            .0
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in the scrape"))
    }
}

/// `/metrics` of `node`, with its API token.
pub(crate) async fn scrape(node: &LocalNode) -> Samples {
    let api = node.api().expect("the node's API");
    let text = api.get("/metrics").await.expect("GET /metrics");
    Samples::parse(&text)
}
