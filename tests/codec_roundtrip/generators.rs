//! proptest strategies for every packet, producing only what each protocol version can carry.

use super::*;

/// Any character but U+0000, with ASCII, multi-byte characters of every UTF-8 length and
/// the whole code space all well represented.
pub(crate) fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => select(vec!['é', 'ß', 'Ω', 'я', '€', '中', '\u{FEFF}', '😀', '𝄞', '\u{10FFFF}']),
        2 => any::<char>().prop_map(|c| if c == '\0' { '\u{1}' } else { c }),
    ]
}

/// A UTF-8 string as MQTT allows it (§1.5.4): anything without U+0000.
pub(crate) fn text() -> impl Strategy<Value = String> {
    vec(text_char(), 0..12).prop_map(String::from_iter)
}

/// A character allowed in a topic name: no wildcard, no U+0000.
pub(crate) fn topic_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => text_char().prop_map(|c| if matches!(c, '+' | '#') { '_' } else { c }),
        1 => Just('/'),
    ]
}

/// A topic name (§4.7): not empty, no wildcards.
pub(crate) fn topic_name() -> impl Strategy<Value = String> {
    vec(topic_char(), 1..16).prop_map(String::from_iter)
}

/// One level of a topic filter: a single-level wildcard or literal text (possibly empty).
pub(crate) fn filter_level() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("+".to_owned()),
        3 => vec(topic_char().prop_filter("one level", |c| *c != '/'), 0..6)
            .prop_map(String::from_iter),
    ]
}

/// A well-formed topic filter (§4.7.1), sometimes ending in `#`, sometimes shared.
pub(crate) fn topic_filter() -> impl Strategy<Value = String> {
    let plain = (vec(filter_level(), 1..4), any::<bool>())
        .prop_map(|(levels, multi)| {
            let mut filter = levels.join("/");
            if multi {
                filter.push_str("/#");
            }
            filter
        })
        .boxed();
    prop_oneof![
        1 => Just("#".to_owned()),
        6 => plain.clone(),
        1 => ("[a-z]{1,6}", plain).prop_map(|(group, f)| format!("$share/{group}/{f}")),
    ]
}

pub(crate) fn packet_id() -> impl Strategy<Value = PacketId> {
    prop_oneof![
        1 => Just(1u16),
        1 => Just(u16::MAX),
        6 => 1..=u16::MAX,
    ]
    .prop_map(|id| NonZeroU16::new(id).expect("never zero"))
}

/// Binary data: short, or long enough to need a two-byte remaining length.
pub(crate) fn binary() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..48),
        1 => vec(any::<u8>(), 120..400),
    ]
    .prop_map(Bytes::from)
}

pub(crate) fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

pub(crate) fn any_u16() -> impl Strategy<Value = u16> {
    prop_oneof![1 => Just(0), 1 => Just(u16::MAX), 4 => any::<u16>()]
}

pub(crate) fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0), 1 => Just(u32::MAX), 4 => any::<u32>()]
}

/// A subscription identifier (§3.8.2.1.2): 1 to 268,435,455, with the values where its
/// variable byte integer grows by a byte.
pub(crate) fn subscription_identifier() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => select(vec![1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]),
        3 => 1..=268_435_455u32,
    ]
}

/// The reason codes table 2-6 allows in a packet of type `kind`.
pub(crate) fn reason_in(kind: PacketType) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = ReasonCode::ALL
        .into_iter()
        .filter(|reason| reason.allowed_in(kind))
        .collect();
    assert!(!allowed.is_empty(), "no reason code is allowed in {kind}");
    select(allowed)
}

/// The value of one property, before it goes into its field of [`Properties`].
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Flag(bool),
    Two(u16),
    Four(u32),
    Text(String),
    Binary(Bytes),
    QoS(QoS),
    SubscriptionIds(Vec<u32>),
    UserProperties(Vec<(String, String)>),
}

/// A valid value of property `id` in `context` (table 2-4 and the rules of each property in
/// §3).
pub(crate) fn value_of(id: PropertyId, context: PropertyContext) -> BoxedStrategy<Value> {
    use PropertyId as Id;
    match id {
        Id::PayloadFormatIndicator
        | Id::RequestProblemInformation
        | Id::RequestResponseInformation
        | Id::RetainAvailable
        | Id::WildcardSubscriptionAvailable
        | Id::SubscriptionIdentifierAvailable
        | Id::SharedSubscriptionAvailable => any::<bool>().prop_map(Value::Flag).boxed(),
        Id::ServerKeepAlive | Id::TopicAliasMaximum => any_u16().prop_map(Value::Two).boxed(),
        // Zero is a protocol error for both (§3.1.2.11.3, §3.3.2.3.4).
        Id::ReceiveMaximum | Id::TopicAlias => (1..=u16::MAX).prop_map(Value::Two).boxed(),
        Id::MessageExpiryInterval | Id::SessionExpiryInterval | Id::WillDelayInterval => {
            any_u32().prop_map(Value::Four).boxed()
        }
        // Zero is a protocol error (§3.1.2.11.4).
        Id::MaximumPacketSize => (1..=u32::MAX).prop_map(Value::Four).boxed(),
        Id::ContentType
        | Id::AssignedClientIdentifier
        | Id::AuthenticationMethod
        | Id::ResponseInformation
        | Id::ServerReference
        | Id::ReasonString => text().prop_map(Value::Text).boxed(),
        // A Response Topic is a topic name, without wildcards (§3.3.2.3.5).
        Id::ResponseTopic => topic_name().prop_map(Value::Text).boxed(),
        Id::CorrelationData | Id::AuthenticationData => binary().prop_map(Value::Binary).boxed(),
        // A server that supports QoS 2 leaves Maximum QoS out (§3.2.2.3.4).
        Id::MaximumQoS => select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])
            .prop_map(Value::QoS)
            .boxed(),
        // One per matching subscription in PUBLISH (§3.3.2.3.8), one at most in SUBSCRIBE.
        Id::SubscriptionIdentifier => {
            let count = if context == PropertyContext::Publish {
                1..5
            } else {
                1..2
            };
            vec(subscription_identifier(), count)
                .prop_map(Value::SubscriptionIds)
                .boxed()
        }
        Id::UserProperty => vec((text(), text()), 1..4)
            .prop_map(Value::UserProperties)
            .boxed(),
    }
}

/// Stores `value` in the field of property `id`. The match has no catch-all, so a property
/// added to the codec does not compile here until it is generated too.
pub(crate) fn set(props: &mut Properties, id: PropertyId, value: Value) {
    use PropertyId as Id;
    let flag = |v: &Value| match v {
        Value::Flag(b) => Some(*b),
        other => panic!("{id:?} is a flag, not {other:?}"),
    };
    let two = |v: &Value| match v {
        Value::Two(n) => Some(*n),
        other => panic!("{id:?} is a two-byte integer, not {other:?}"),
    };
    let four = |v: &Value| match v {
        Value::Four(n) => Some(*n),
        other => panic!("{id:?} is a four-byte integer, not {other:?}"),
    };
    let text = |v: &Value| match v {
        Value::Text(s) => Some(s.clone()),
        other => panic!("{id:?} is a string, not {other:?}"),
    };
    let binary = |v: &Value| match v {
        Value::Binary(b) => Some(b.clone()),
        other => panic!("{id:?} is binary data, not {other:?}"),
    };
    match id {
        Id::PayloadFormatIndicator => props.payload_format_indicator = flag(&value),
        Id::MessageExpiryInterval => props.message_expiry_interval = four(&value),
        Id::ContentType => props.content_type = text(&value),
        Id::ResponseTopic => props.response_topic = text(&value),
        Id::CorrelationData => props.correlation_data = binary(&value),
        Id::SubscriptionIdentifier => match value {
            Value::SubscriptionIds(ids) => props.subscription_identifiers = ids,
            other => panic!("{id:?} is a list of identifiers, not {other:?}"),
        },
        Id::SessionExpiryInterval => props.session_expiry_interval = four(&value),
        Id::AssignedClientIdentifier => props.assigned_client_identifier = text(&value),
        Id::ServerKeepAlive => props.server_keep_alive = two(&value),
        Id::AuthenticationMethod => props.authentication_method = text(&value),
        Id::AuthenticationData => props.authentication_data = binary(&value),
        Id::RequestProblemInformation => props.request_problem_information = flag(&value),
        Id::WillDelayInterval => props.will_delay_interval = four(&value),
        Id::RequestResponseInformation => props.request_response_information = flag(&value),
        Id::ResponseInformation => props.response_information = text(&value),
        Id::ServerReference => props.server_reference = text(&value),
        Id::ReasonString => props.reason_string = text(&value),
        Id::ReceiveMaximum => props.receive_maximum = two(&value),
        Id::TopicAliasMaximum => props.topic_alias_maximum = two(&value),
        Id::TopicAlias => props.topic_alias = two(&value),
        Id::MaximumQoS => match value {
            Value::QoS(q) => props.maximum_qos = Some(q),
            other => panic!("{id:?} is a QoS, not {other:?}"),
        },
        Id::RetainAvailable => props.retain_available = flag(&value),
        Id::UserProperty => match value {
            Value::UserProperties(pairs) => props.user_properties = pairs,
            other => panic!("{id:?} is a list of pairs, not {other:?}"),
        },
        Id::MaximumPacketSize => props.maximum_packet_size = four(&value),
        Id::WildcardSubscriptionAvailable => {
            props.wildcard_subscription_available = flag(&value);
        }
        Id::SubscriptionIdentifierAvailable => {
            props.subscription_identifier_available = flag(&value);
        }
        Id::SharedSubscriptionAvailable => props.shared_subscription_available = flag(&value),
    }
}

/// A random set of the properties allowed in `context`, each present or not.
pub(crate) fn v5_properties(context: PropertyContext) -> BoxedStrategy<Properties> {
    let ids: Vec<PropertyId> = PropertyId::ALL
        .into_iter()
        .filter(|id| id.allowed_in(context))
        .collect();
    let values: Vec<_> = ids
        .iter()
        .map(|&id| proptest::option::weighted(0.4, value_of(id, context)))
        .collect();
    let some = values.prop_map(move |values| {
        let mut props = Properties::default();
        for (&id, value) in ids.iter().zip(values) {
            if let Some(value) = value {
                set(&mut props, id, value);
            }
        }
        // Authentication Data needs an Authentication Method (§3.1.2.11.10).
        if props.authentication_data.is_some() && props.authentication_method.is_none() {
            props.authentication_method = Some("SCRAM-SHA-256".to_owned());
        }
        props
    });
    prop_oneof![1 => Just(Properties::default()), 4 => some].boxed()
}

/// Properties for `context` in `protocol`: always empty in 3.1.1, which has none.
pub(crate) fn properties(
    protocol: Protocol,
    context: PropertyContext,
) -> BoxedStrategy<Properties> {
    match protocol {
        Protocol::V311 => Just(Properties::default()).boxed(),
        Protocol::V5 => v5_properties(context),
    }
}

pub(crate) fn will(protocol: Protocol) -> impl Strategy<Value = Will> {
    (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        properties(protocol, PropertyContext::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

pub(crate) fn connect(protocol: Protocol) -> impl Strategy<Value = Connect> {
    (
        any::<bool>(),
        any_u16(),
        text(),
        proptest::option::of(will(protocol)),
        proptest::option::of(text()),
        proptest::option::of(binary()),
        properties(protocol, PropertyContext::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // 3.1.1 has no password without a user name (§3.1.2.9); 5.0 does.
                let password = match (protocol, &username) {
                    (Protocol::V311, None) => None,
                    _ => password,
                };
                Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }
            },
        )
}

/// The CONNACK reasons that have a 3.1.1 return code of their own (§3.2.2.3 of 3.1.1).
pub(crate) const V311_CONNACK_REASONS: [ReasonCode; 6] = [
    ReasonCode::Success,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::ClientIdentifierNotValid,
    ReasonCode::ServerUnavailable,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::NotAuthorized,
];

pub(crate) fn connack(protocol: Protocol) -> impl Strategy<Value = ConnAck> {
    let reason = match protocol {
        Protocol::V311 => select(V311_CONNACK_REASONS.to_vec()).boxed(),
        Protocol::V5 => reason_in(PacketType::ConnAck).boxed(),
    };
    (
        any::<bool>(),
        reason,
        properties(protocol, PropertyContext::ConnAck),
    )
        .prop_map(|(session_present, reason, properties)| ConnAck {
            // A refusal never has a session (§3.2.2.1.1 of 5.0, §3.2.2.2 of 3.1.1).
            session_present: session_present && reason == ReasonCode::Success,
            reason,
            properties,
        })
}

pub(crate) fn publish(protocol: Protocol) -> impl Strategy<Value = Publish> {
    let topic = match protocol {
        Protocol::V311 => topic_name().boxed(),
        Protocol::V5 => prop_oneof![6 => topic_name(), 1 => Just(String::new())].boxed(),
    };
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic,
        packet_id(),
        properties(protocol, PropertyContext::Publish),
        binary(),
        1..=u16::MAX,
    )
        .prop_map(
            |(qos, dup, retain, topic, id, mut properties, payload, alias)| {
                // A v5 PUBLISH may leave the topic out only for a Topic Alias (§3.3.2.1).
                if topic.is_empty() && properties.topic_alias.is_none() {
                    properties.topic_alias = Some(alias);
                }
                let at_least_once = qos != QoS::AtMostOnce;
                Publish {
                    // DUP must be 0 at QoS 0 (§3.3.1.1).
                    dup: dup && at_least_once,
                    qos,
                    retain,
                    topic,
                    packet_id: at_least_once.then_some(id),
                    properties,
                    payload,
                }
            },
        )
}

pub(crate) fn ack(kind: PacketType, protocol: Protocol) -> impl Strategy<Value = Ack> {
    let context = match kind {
        PacketType::PubAck => PropertyContext::PubAck,
        PacketType::PubRec => PropertyContext::PubRec,
        PacketType::PubRel => PropertyContext::PubRel,
        PacketType::PubComp => PropertyContext::PubComp,
        other => panic!("{other} is not an acknowledgement"),
    };
    let reason = match protocol {
        Protocol::V311 => Just(ReasonCode::Success).boxed(),
        Protocol::V5 => reason_in(kind).boxed(),
    };
    (packet_id(), reason, properties(protocol, context)).prop_map(
        |(packet_id, reason, properties)| Ack {
            packet_id,
            reason,
            properties,
        },
    )
}

pub(crate) fn subscription_options(protocol: Protocol) -> BoxedStrategy<SubscriptionOptions> {
    match protocol {
        Protocol::V311 => qos()
            .prop_map(|qos| SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            })
            .boxed(),
        Protocol::V5 => (
            qos(),
            any::<bool>(),
            any::<bool>(),
            select(vec![
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendIfNewSubscription,
                RetainHandling::DoNotSend,
            ]),
        )
            .prop_map(
                |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published,
                    retain_handling,
                },
            )
            .boxed(),
    }
}

pub(crate) fn subscribe(protocol: Protocol) -> impl Strategy<Value = Subscribe> {
    (
        packet_id(),
        vec((topic_filter(), subscription_options(protocol)), 1..6),
        properties(protocol, PropertyContext::Subscribe),
    )
        .prop_map(|(packet_id, filters, properties)| Subscribe {
            packet_id,
            filters,
            properties,
        })
}

pub(crate) fn suback(protocol: Protocol) -> impl Strategy<Value = SubAck> {
    let reason = match protocol {
        Protocol::V311 => select(vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ])
        .boxed(),
        Protocol::V5 => reason_in(PacketType::SubAck).boxed(),
    };
    (
        packet_id(),
        vec(reason, 1..8),
        properties(protocol, PropertyContext::SubAck),
    )
        .prop_map(|(packet_id, reasons, properties)| SubAck {
            packet_id,
            reasons,
            properties,
        })
}

pub(crate) fn unsubscribe(protocol: Protocol) -> impl Strategy<Value = Unsubscribe> {
    (
        packet_id(),
        vec(topic_filter(), 1..6),
        properties(protocol, PropertyContext::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| Unsubscribe {
            packet_id,
            filters,
            properties,
        })
}

pub(crate) fn unsuback(protocol: Protocol) -> impl Strategy<Value = UnsubAck> {
    // A 3.1.1 UNSUBACK is the packet identifier alone (§3.11 of 3.1.1).
    let reasons = match protocol {
        Protocol::V311 => Just(Vec::new()).boxed(),
        Protocol::V5 => vec(reason_in(PacketType::UnsubAck), 1..8).boxed(),
    };
    (
        packet_id(),
        reasons,
        properties(protocol, PropertyContext::UnsubAck),
    )
        .prop_map(|(packet_id, reasons, properties)| UnsubAck {
            packet_id,
            reasons,
            properties,
        })
}

pub(crate) fn disconnect(protocol: Protocol) -> impl Strategy<Value = Disconnect> {
    let reason = match protocol {
        Protocol::V311 => Just(ReasonCode::Success).boxed(),
        Protocol::V5 => reason_in(PacketType::Disconnect).boxed(),
    };
    (reason, properties(protocol, PropertyContext::Disconnect))
        .prop_map(|(reason, properties)| Disconnect { reason, properties })
}

pub(crate) fn auth() -> impl Strategy<Value = Auth> {
    (
        reason_in(PacketType::Auth),
        v5_properties(PropertyContext::Auth),
    )
        .prop_map(|(reason, mut properties)| {
            // Only the bare Success form may leave the Authentication Method out
            // (§3.15.2.1, §3.15.2.2.2).
            let bare = reason == ReasonCode::Success && properties.is_empty();
            if !bare && properties.authentication_method.is_none() {
                properties.authentication_method = Some("SCRAM-SHA-256".to_owned());
            }
            Auth { reason, properties }
        })
}

/// Any v5 packet that also exists in 3.1.1, but CONNECT (which is always encoded in its
/// own protocol).
pub(crate) fn v5_packet_with_a_v311_form() -> impl Strategy<Value = Packet> {
    let v5 = Protocol::V5;
    prop_oneof![
        connack(v5).prop_map(Packet::ConnAck),
        publish(v5)
            .prop_filter("3.1.1 has no topic alias", |p| !p.topic.is_empty())
            .prop_map(Packet::Publish),
        ack(PacketType::PubAck, v5).prop_map(Packet::PubAck),
        ack(PacketType::PubRec, v5).prop_map(Packet::PubRec),
        ack(PacketType::PubRel, v5).prop_map(Packet::PubRel),
        ack(PacketType::PubComp, v5).prop_map(Packet::PubComp),
        subscribe(v5).prop_map(Packet::Subscribe),
        suback(v5).prop_map(Packet::SubAck),
        unsubscribe(v5).prop_map(Packet::Unsubscribe),
        unsuback(v5).prop_map(Packet::UnsubAck),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v5).prop_map(Packet::Disconnect),
    ]
}
