//! Time and departures in the log: the leader proposes `Tick { now }` at a fixed interval
//! (expiry of sessions, delayed wills and messages), and `NodeDown` for a node removed
//! from the cluster. Only the leader stamps time, and `apply` bounds how far one tick may
//! move the state's clock, so a leader whose clock jumps cannot expire everything at once.

use std::time::Duration;

use openraft::ServerState;

use super::command::{Command, Millis, Outcome};
use super::proposer::Proposer;
use super::types::{NodeId, TypeConfig};

/// How often the leader proposes a tick.
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch on this node's clock (only ever read by a proposer).
pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Proposes a tick every [`TICK_INTERVAL`] while this node leads. A tick lost to a
/// leadership change is harmless: the next leader's next tick covers the time.
pub(crate) async fn run_ticker(raft: openraft::Raft<TypeConfig>, proposer: Proposer) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let leading = raft.metrics().borrow().state == ServerState::Leader;
        if leading && let Err(e) = proposer.propose(Command::Tick { now: now() }).await {
            tracing::debug!("tick not committed: {e}");
        }
    }
}

/// Proposes `NodeDown` for `node` until the state says none of its sessions remain (each
/// command does bounded work). Gives up after a bounded number of attempts on errors: the
/// sessions then stay until the next removal or their own expiry.
pub(crate) async fn node_down(proposer: &Proposer, node: NodeId) {
    for _ in 0..1000 {
        match proposer
            .propose(Command::NodeDown { node, now: now() })
            .await
        {
            Ok(Outcome::NodeDowned {
                remaining: false, ..
            }) => return,
            Ok(Outcome::NodeDowned {
                remaining: true, ..
            }) => {}
            Ok(other) => {
                tracing::warn!(node, "unexpected outcome of NodeDown: {other:?}");
                return;
            }
            Err(e) => {
                tracing::warn!(node, "NodeDown not committed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
