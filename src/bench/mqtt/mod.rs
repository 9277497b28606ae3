//! `raftmq bench pub|sub|pubsub|conn`: MQTT load generators against any broker, with a
//! client written on the crate's own codec ([`crate::mqtt`]) so that the bench drives the
//! broker instead of measuring its own client: packets are encoded into one buffer per
//! connection and written together, and a PUBLISH is stamped in place, so nothing is
//! allocated per message sent.
//!
//! - [`args`]: the command line, checked into a plan before anything connects.
//! - `connection`: opening a client (source address, TLS, CONNECT) and its read/write step.
//! - `publisher`, `subscriber`: the two roles; `flow` runs them as a publish/subscribe
//!   run, `idle` runs the `conn` scenario.
//! - `payload`: the stamp at the front of every message; `tally`: lost and duplicate
//!   accounting; `pattern`: `--topic` patterns.
//! - `stats`: counters, the live line and latency percentiles; `report`: the summary.
//! - `limits`: the open-file limit.

pub mod args;
mod connection;
mod flow;
mod idle;
mod limits;
mod pattern;
mod payload;
mod publisher;
mod report;
mod stats;
mod subscriber;
mod tally;

use std::path::PathBuf;

use thiserror::Error;

pub use args::{ClientArgs, Scenario};
pub use limits::OpenFiles;
pub use pattern::PatternError;
pub use report::{Connections, Messages, Summary};
pub use stats::Latency;

/// Why a bench could not run at all; failures of single clients are counted in the
/// summary instead.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("--{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("--ca {path}: {message}")]
    Ca { path: PathBuf, message: String },
}

impl Scenario {
    pub fn client(&self) -> &ClientArgs {
        match self {
            Scenario::Pub(a) => &a.client,
            Scenario::Sub(a) => &a.client,
            Scenario::PubSub(a) => &a.client,
            Scenario::Conn(a) => &a.client,
        }
    }
}

/// Runs `scenario` to its end, printing a live line every second on stderr, and returns
/// its summary.
pub async fn run(scenario: &Scenario) -> Result<Summary, BenchError> {
    match scenario {
        Scenario::Conn(args) => idle::run(args::ConnPlan::new(args)?).await,
        _ => flow::run(args::FlowPlan::new(scenario)?).await,
    }
}

/// `raftmq bench pub|sub|pubsub|conn`: runs and prints the summary on stdout, as one JSON
/// object with `--json`.
pub async fn command(scenario: &Scenario) -> anyhow::Result<()> {
    let summary = run(scenario).await?;
    if scenario.client().json {
        println!("{}", summary.to_json());
    } else {
        println!("{summary}");
    }
    Ok(())
}
