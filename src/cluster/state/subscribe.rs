//! `Subscribe` and `Unsubscribe`: the session's subscriptions in the state and in the
//! subscription index, retained messages on subscribe, and shared members leaving.

use raftmq_storage::StoreError;

use super::Apply;
use super::index::share_ref;
use super::tables::{SUBSCRIPTIONS, SubscriptionRecord, subscription_key};
use crate::cluster::command::{Outcome, RetainHandling, Subscribe};
use crate::mqtt::topic::parse_subscription_filter;

/// SUBACK failure: 3.1.1's only failure code, v5's "unspecified error".
const FAILURE: u8 = 0x80;
/// v5 SUBACK "topic filter invalid".
const TOPIC_FILTER_INVALID: u8 = 0x8F;
/// UNSUBACK "success".
const SUCCESS: u8 = 0x00;
/// v5 UNSUBACK "no subscription existed".
const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;

impl Apply<'_, '_> {
    pub(super) fn subscribe(&mut self, subscribe: &Subscribe) -> Result<Outcome, StoreError> {
        let session = match self.session_for(&subscribe.client_id, subscribe.epoch)? {
            Ok(session) => session,
            Err(fenced) => return Ok(fenced),
        };
        let client_id = subscribe.client_id.as_str();
        let now = self.time(subscribe.now);
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut deliveries = Vec::new();
        for (text, options) in &subscribe.filters {
            if options.qos > 2 {
                reasons.push(FAILURE);
                continue;
            }
            let Ok(filter) = parse_subscription_filter(text) else {
                reasons.push(if session.protocol == 5 {
                    TOPIC_FILTER_INVALID
                } else {
                    FAILURE
                });
                continue;
            };
            let record = SubscriptionRecord {
                options: *options,
                subscription_id: subscribe.subscription_id,
            };
            let key = subscription_key(client_id, text);
            let is_new = self.tx.get(SUBSCRIPTIONS, &key)?.is_none();
            self.put(SUBSCRIPTIONS, &key, &record)?;
            self.index.insert(&filter, client_id, record);
            reasons.push(options.qos);
            // Retained messages are never sent for a shared subscription (MQTT 5.0
            // §3.8.3.1); DESIGN §3 rule 6: they are read as of this command.
            let send_retained = filter.share_group().is_none()
                && match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNewSubscription => is_new,
                    RetainHandling::DoNotSend => false,
                };
            if send_retained {
                self.send_retained(client_id, filter.filter(), record, now, &mut deliveries)?;
            }
        }
        Ok(Outcome::Subscribed {
            reasons,
            deliveries,
        })
    }

    pub(super) fn unsubscribe(
        &mut self,
        client_id: &str,
        epoch: u64,
        filters: &[String],
    ) -> Result<Outcome, StoreError> {
        if let Err(fenced) = self.session_for(client_id, epoch)? {
            return Ok(fenced);
        }
        let now = self.meta.clock;
        let mut reasons = Vec::with_capacity(filters.len());
        let mut deliveries = Vec::new();
        for text in filters {
            let key = subscription_key(client_id, text);
            if self.tx.get(SUBSCRIPTIONS, &key)?.is_none() {
                reasons.push(NO_SUBSCRIPTION_EXISTED);
                continue;
            }
            self.remove(SUBSCRIPTIONS, &key);
            if let Ok(filter) = parse_subscription_filter(text) {
                self.index.remove(&filter, client_id);
                if let Some(share) = share_ref(&filter) {
                    self.leave_group(client_id, &share, now, &mut deliveries)?;
                }
            }
            reasons.push(SUCCESS);
        }
        Ok(Outcome::Unsubscribed {
            reasons,
            deliveries,
        })
    }
}
