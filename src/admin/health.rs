//! Readiness, as a load balancer needs it: send this node clients only if it can serve
//! them now. Pure: the checks take what the cluster and the broker report, so each reason
//! is tested without a cluster.

use serde::Serialize;

use crate::broker::BrokerStatus;
use crate::cluster::node::RaftHealth;

/// The answer of `GET /health/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// Why not, one line per failed check; empty when ready.
    pub reasons: Vec<String>,
    pub leader: Option<u64>,
    pub applied: Option<u64>,
    pub committed: Option<u64>,
    pub draining: bool,
}

/// Ready when the node trusts a leader, is a member, has applied what it knows to be
/// committed (within `max_lag` entries), has its listeners accepting sessions (start-up
/// recovery done), and is not draining.
pub fn readiness(raft: &RaftHealth, broker: &BrokerStatus, max_lag: u64) -> Readiness {
    let mut reasons = Vec::new();
    if raft.leader.is_none() {
        reasons.push(
            "no leader known (an election, or this node is cut off from the majority)".into(),
        );
    }
    if !raft.member {
        reasons.push("not a member of the cluster".into());
    }
    let lag = raft
        .committed
        .unwrap_or(0)
        .saturating_sub(raft.applied.unwrap_or(0));
    if lag > max_lag {
        reasons.push(format!(
            "applied index trails the committed index by {lag} entries (limit {max_lag})"
        ));
    }
    if !broker.accepting {
        reasons.push("MQTT listeners not accepting sessions yet (start-up recovery)".into());
    }
    if broker.draining {
        reasons.push("draining".into());
    }
    Readiness {
        ready: reasons.is_empty(),
        reasons,
        leader: raft.leader,
        applied: raft.applied,
        committed: raft.committed,
        draining: broker.draining,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> (RaftHealth, BrokerStatus) {
        (
            RaftHealth {
                leader: Some(1),
                member: true,
                voter: true,
                applied: Some(100),
                committed: Some(100),
            },
            BrokerStatus {
                accepting: true,
                draining: false,
                connections: 0,
            },
        )
    }

    #[test]
    fn a_healthy_node_is_ready() {
        let (raft, broker) = healthy();
        let report = readiness(&raft, &broker, 10);
        assert!(report.ready, "{report:?}");
        assert!(report.reasons.is_empty());
    }

    #[test]
    fn each_failed_check_makes_the_node_unready_and_says_why() {
        type Break = Box<dyn Fn(&mut RaftHealth, &mut BrokerStatus)>;
        let cases: Vec<(&str, Break)> = vec![
            ("no leader", Box::new(|r, _| r.leader = None)),
            ("not a member", Box::new(|r, _| r.member = false)),
            ("trails", Box::new(|r, _| r.applied = Some(50))),
            ("not accepting", Box::new(|_, b| b.accepting = false)),
            ("draining", Box::new(|_, b| b.draining = true)),
        ];
        for (reason, break_it) in cases {
            let (mut raft, mut broker) = healthy();
            break_it(&mut raft, &mut broker);
            let report = readiness(&raft, &broker, 10);
            assert!(!report.ready, "{reason}: {report:?}");
            assert_eq!(report.reasons.len(), 1, "{reason}: {report:?}");
            assert!(report.reasons[0].contains(reason), "{reason}: {report:?}");
        }
    }

    #[test]
    fn a_lag_within_the_limit_is_ready() {
        let (mut raft, broker) = healthy();
        raft.applied = Some(90);
        assert!(readiness(&raft, &broker, 10).ready);
        raft.applied = Some(89);
        assert!(!readiness(&raft, &broker, 10).ready);
    }
}
