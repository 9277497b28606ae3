//! The `raftmq` command: parses the command line and runs what it names.

use clap::Parser;

/// raftmq — an MQTT 3.1.1 / 5.0 broker cluster whose sessions survive the loss of any node.
///
/// This build contains the MQTT codec and the subscription router only; the broker that
/// listens on 1883 arrives with the broker issue (see README, "Status").
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!(
        "raftmq {}: the broker is not built yet; this release holds the codec and router \
         (see README, \"Status\")",
        env!("CARGO_PKG_VERSION")
    )
}
