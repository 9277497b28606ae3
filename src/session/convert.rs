//! Between the codec's packets and the log's records: an application message as
//! published, a will, and a PUBLISH as delivered to a subscriber.
//!
//! The log keeps its own serde types (`cluster::command`), so the codec stays free of
//! serde; these functions are the one place the two meet.

use std::num::NonZeroU16;

use crate::cluster::command::{Message, Millis, WillMessage};
use crate::mqtt::{Properties, Publish, QoS, Will};

/// The message a client published, with the properties that travel to subscribers.
pub(crate) fn message_from_publish(publish: &Publish, topic: String) -> Message {
    let p = &publish.properties;
    Message {
        topic,
        payload: publish.payload.clone(),
        qos: publish.qos.bits(),
        retain: publish.retain,
        expiry_interval: p.message_expiry_interval,
        payload_format_utf8: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
    }
}

/// The will of a CONNECT, as the log keeps it.
pub(crate) fn will_from_connect(will: &Will) -> WillMessage {
    let p = &will.properties;
    WillMessage {
        delay: p.will_delay_interval.unwrap_or(0),
        message: Message {
            topic: will.topic.clone(),
            payload: will.payload.clone(),
            qos: will.qos.bits(),
            retain: will.retain,
            expiry_interval: p.message_expiry_interval,
            payload_format_utf8: p.payload_format_indicator,
            content_type: p.content_type.clone(),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
        },
    }
}

/// Seconds left before `expires_at` at `now`, rounded up; `None` if it has passed.
pub(crate) fn remaining_expiry(expires_at: Millis, now: Millis) -> Option<u32> {
    let left = expires_at.checked_sub(now).filter(|left| *left > 0)?;
    Some(u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX))
}

/// How one message is delivered to one subscriber.
pub(crate) struct Delivered<'a> {
    pub(crate) message: &'a Message,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) dup: bool,
    pub(crate) packet_id: Option<NonZeroU16>,
    pub(crate) subscription_ids: &'a [u32],
    /// The remaining message expiry interval, when the message has one.
    pub(crate) expiry: Option<u32>,
}

/// The PUBLISH packet of a delivery; `topic` is the name to send (empty when a topic alias
/// stands for it) and `alias` the alias to carry.
pub(crate) fn publish_packet(d: &Delivered<'_>, topic: String, alias: Option<u16>) -> Publish {
    let m = d.message;
    Publish {
        dup: d.dup,
        qos: d.qos,
        retain: d.retain,
        topic,
        packet_id: d.packet_id,
        payload: m.payload.clone(),
        properties: Properties {
            payload_format_indicator: m.payload_format_utf8,
            message_expiry_interval: d.expiry,
            content_type: m.content_type.clone(),
            response_topic: m.response_topic.clone(),
            correlation_data: m.correlation_data.clone(),
            subscription_identifiers: d.subscription_ids.to_vec(),
            user_properties: m.user_properties.clone(),
            topic_alias: alias,
            ..Properties::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_expiry_rounds_up_and_ends_at_zero() {
        assert_eq!(remaining_expiry(10_000, 9_999), Some(1));
        assert_eq!(remaining_expiry(10_000, 5_000), Some(5));
        assert_eq!(remaining_expiry(10_000, 4_001), Some(6));
        assert_eq!(remaining_expiry(10_000, 10_000), None);
        assert_eq!(remaining_expiry(10_000, 20_000), None);
    }
}
