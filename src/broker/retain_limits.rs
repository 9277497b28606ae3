//! Limits on the retained store, checked where a message enters the cluster: how many
//! retained messages the cluster keeps and how large one may be. A message past them is
//! still published to the current subscribers, only not retained (as EMQX's retainer
//! does), and counted (`raftmq_messages_dropped_total{reason="not_retained"}`). The count is read from the replicated state before the proposal,
//! so racing publishers on several nodes can pass the cap by the few in flight at once.

use crate::cluster::command::Message;
use crate::cluster::state::BrokerReader;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct RetainLimits {
    /// Retained messages the cluster keeps at most (0: no limit).
    max_messages: u64,
    /// The largest payload retained, bytes (0: no limit).
    max_payload: usize,
}

impl RetainLimits {
    pub(crate) fn new(max_messages: u64, max_payload: usize) -> RetainLimits {
        RetainLimits {
            max_messages,
            max_payload,
        }
    }

    /// Clears the message's RETAIN flag if retaining it would pass a limit; returns
    /// whether it did. Deleting a retained message (an empty payload) and replacing one
    /// are always allowed.
    pub(crate) fn apply(&self, state: &BrokerReader, client: &str, message: &mut Message) -> bool {
        if !message.retain || message.payload.is_empty() {
            return false;
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
        too_large || too_many
    }
}
