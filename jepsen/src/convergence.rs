//! Whether the nodes agree after the heal: every running node answering with a leader,
//! at the same applied index, with the same state digest. Nodes at the same applied index
//! with different digests, observation after observation, have diverged: a replica lost
//! or invented a committed entry (what a missing fsync does after a power loss), and the
//! run is invalid, where a cluster that is merely slow to come back is only unknown.

use raftmq::cluster::proto::pb::StatusResponse;

/// Observations in a row of every node at the same applied index with different state
/// digests, after which they have diverged. A status reads the digest and the applied
/// index one after the other, so a single observation may straddle an entry (the leader
/// still commits now and then: session expiry, will delays); ten in a row do not.
pub const DIVERGED_AFTER: usize = 10;

/// Nodes that applied the same log index yet hold different states (node:applied/leader/
/// digest for each).
#[derive(Debug)]
pub struct Diverged(pub String);

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the nodes diverged: different states at one applied index (node:applied/leader/digest): {}",
            self.0
        )
    }
}

impl std::error::Error for Diverged {}

/// What one round of statuses says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Every node answered, with a leader, the same applied index and the same digest.
    Converged,
    /// Every node answered, with a leader, the same applied index, different digests.
    Split,
    /// Not there yet: a node did not answer, has no leader, or is behind.
    Pending,
}

/// Judges one round: `statuses` from the nodes that answered, of `running` nodes.
pub fn observe(statuses: &[StatusResponse], running: usize) -> Observation {
    let all = statuses.len() == running && statuses.iter().all(|s| s.leader.is_some());
    let same_index = statuses.windows(2).all(|w| w[0].applied == w[1].applied);
    let same_state = statuses
        .windows(2)
        .all(|w| w[0].state_digest == w[1].state_digest);
    match (all && same_index, same_state) {
        (true, true) => Observation::Converged,
        (true, false) => Observation::Split,
        (false, _) => Observation::Pending,
    }
}

/// Rounds of observations, in order: how many `Split` ones in a row ended it.
#[derive(Debug, Default)]
pub struct Rounds {
    split: usize,
}

impl Rounds {
    pub fn record(&mut self, observation: Observation) {
        self.split = match observation {
            Observation::Split => self.split + 1,
            _ => 0,
        };
    }

    /// Whether the last [`DIVERGED_AFTER`] rounds were all `Split`.
    pub fn diverged(&self) -> bool {
        self.split >= DIVERGED_AFTER
    }
}

/// One round as the error message shows it.
pub fn describe(statuses: &[StatusResponse]) -> String {
    statuses
        .iter()
        .map(|s| {
            format!(
                "{}:{:?}/{:?}/{:08x}",
                s.node_id, s.applied, s.leader, s.state_digest
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(node: u64, applied: u64, digest: u32) -> StatusResponse {
        StatusResponse {
            node_id: node,
            leader: Some(1),
            applied: Some(applied),
            state_digest: digest,
            ..Default::default()
        }
    }

    #[test]
    fn rounds_are_judged_by_index_digest_leader_and_answers() {
        let agree = [status(1, 7, 0xaa), status(2, 7, 0xaa), status(3, 7, 0xaa)];
        assert_eq!(observe(&agree, 3), Observation::Converged);
        let split = [status(1, 7, 0xaa), status(2, 7, 0xbb), status(3, 7, 0xaa)];
        assert_eq!(observe(&split, 3), Observation::Split);
        let behind = [status(1, 7, 0xaa), status(2, 6, 0xbb), status(3, 7, 0xaa)];
        assert_eq!(observe(&behind, 3), Observation::Pending);
        assert_eq!(
            observe(&agree[..2], 3),
            Observation::Pending,
            "a node silent"
        );
        let mut leaderless = agree.clone();
        leaderless[0].leader = None;
        assert_eq!(observe(&leaderless, 3), Observation::Pending);
        assert_eq!(describe(&split[..1]), "1:Some(7)/Some(1)/000000aa");
    }

    #[test]
    fn only_an_unbroken_run_of_splits_is_a_divergence() {
        let mut rounds = Rounds::default();
        for _ in 0..DIVERGED_AFTER - 1 {
            rounds.record(Observation::Split);
        }
        assert!(!rounds.diverged());
        rounds.record(Observation::Pending);
        for _ in 0..DIVERGED_AFTER - 1 {
            rounds.record(Observation::Split);
        }
        assert!(
            !rounds.diverged(),
            "a catching-up round in between starts again"
        );
        rounds.record(Observation::Split);
        assert!(rounds.diverged());
    }
}
