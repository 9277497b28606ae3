//! Limits on the retained store, checked where a message enters the cluster: how many
//! retained messages the cluster keeps and how large one may be. A message past them is
//! still published to the current subscribers, only not retained (as EMQX's retainer
//! does), and counted. The count is read from the replicated state before the proposal,
//! so racing publishers on several nodes can pass the cap by the few in flight at once.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::command::Message;
use crate::cluster::state::BrokerReader;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct RetainLimits {
    /// Retained messages the cluster keeps at most (0: no limit).
    max_messages: u64,
    /// The largest payload retained, bytes (0: no limit).
    max_payload: usize,
    /// Messages published without being retained because of these limits.
    refused: AtomicU64,
}

impl RetainLimits {
    pub(crate) fn new(max_messages: u64, max_payload: usize) -> RetainLimits {
        RetainLimits {
            max_messages,
            max_payload,
            refused: AtomicU64::new(0),
        }
    }

    /// Clears the message's RETAIN flag if retaining it would pass a limit. Deleting a
    /// retained message (an empty payload) and replacing one are always allowed.
    pub(crate) fn apply(&self, state: &BrokerReader, client: &str, message: &mut Message) {
        if !message.retain || message.payload.is_empty() {
            return;
        }
        let too_large = self.max_payload > 0 && message.payload.len() > self.max_payload;
        let too_many = !too_large
            && self.max_messages > 0
            && state
                .retained_count()
                .is_ok_and(|count| count >= self.max_messages)
            && state.is_retained(&message.topic).is_ok_and(|held| !held);
        if too_large || too_many {
            message.retain = false;
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                client,
                topic = %message.topic,
                bytes = message.payload.len(),
                "published but not retained: {}",
                if too_large {
                    "payload over --max-retained-payload"
                } else {
                    "retained store at --max-retained-messages"
                }
            );
        }
    }

    /// Messages published without being retained because of these limits, since start.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}
