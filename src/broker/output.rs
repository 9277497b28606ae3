//! The bytes this node has encoded for its clients and they have not yet taken, all
//! connections together. Each connection keeps its own backlog under
//! `--max-output-buffer` (its QoS 0 messages are dropped past it); this total is the
//! node-wide cap (`--max-buffered-bytes`): past it every client's QoS 0 messages are
//! dropped until the slow ones have taken some or gone (counted as
//! `raftmq_messages_dropped_total{reason="slow_reader"}`; the total is
//! `raftmq_output_buffered_bytes`). QoS 1/2 messages are never
//! dropped here: a persistent session's wait in the replicated queue, a transient
//! session's in its bounded waiting line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node-wide total and its cap.
#[derive(Debug)]
pub(crate) struct OutputBudget {
    limit: u64,
    total: AtomicU64,
}

impl OutputBudget {
    pub(crate) fn new(limit: u64) -> Arc<OutputBudget> {
        Arc::new(OutputBudget {
            limit,
            total: AtomicU64::new(0),
        })
    }

    /// Whether clients together hold more than the cap.
    pub(crate) fn over(&self) -> bool {
        self.total.load(Ordering::Relaxed) > self.limit
    }

    /// Bytes waiting for all clients of the node.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// A connection's share, empty.
    pub(crate) fn share(self: &Arc<Self>) -> OutputShare {
        OutputShare {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// One connection's part of the total, given back when the connection ends.
#[derive(Debug)]
pub(crate) struct OutputShare {
    budget: Arc<OutputBudget>,
    held: u64,
}

impl OutputShare {
    /// The connection now holds `bytes` for its client; returns whether the node is over
    /// its cap.
    pub(crate) fn set(&mut self, bytes: u64) -> bool {
        if bytes > self.held {
            self.budget
                .total
                .fetch_add(bytes - self.held, Ordering::Relaxed);
        } else if bytes < self.held {
            self.budget
                .total
                .fetch_sub(self.held - bytes, Ordering::Relaxed);
        }
        self.held = bytes;
        self.budget.over()
    }
}

impl Drop for OutputShare {
    fn drop(&mut self) {
        self.budget.total.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total_and_give_it_back_when_dropped() {
        let budget = OutputBudget::new(100);
        let mut a = budget.share();
        let mut b = budget.share();
        assert!(!a.set(60));
        assert!(b.set(50), "110 bytes are over a cap of 100");
        assert_eq!(budget.total(), 110);
        assert!(!b.set(10));
        assert_eq!(budget.total(), 70);
        drop(a);
        assert_eq!(budget.total(), 10);
    }
}
