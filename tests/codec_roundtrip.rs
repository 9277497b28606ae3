//! Property tests of the MQTT codec: every packet type, in MQTT 3.1.1 and in MQTT 5.0,
//! survives encode → decode unchanged; the decoder takes exactly the encoded frame from the
//! buffer (not a byte more, not a byte less) and, fed the same bytes one at a time, reports
//! an incomplete frame until the last byte. Generators produce only what the protocol
//! version can carry: no properties or reason codes in 3.1.1; in 5.0 every property allowed
//! in the packet (table 2-4) with values in range, and every reason code allowed in it
//! (table 2-6). The last tests check what encoding a v5 packet for a 3.1.1 client drops, as
//! `Packet::encode` documents.

use std::num::NonZeroU16;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use raftmq::mqtt::{
    Ack, Auth, Codec, ConnAck, Connect, DEFAULT_MAX_PACKET_SIZE, Disconnect, EncodeError, Packet,
    PacketId, PacketType, Properties, PropertyContext, PropertyId, Protocol, Publish, QoS,
    ReasonCode, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
    Will,
};

/// A PINGREQ, appended after every frame to show that decoding stops at the frame's end.
const PINGREQ: [u8; 2] = [0xc0, 0x00];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Encodes `packet` in `protocol` and checks that it decodes back to itself, whole and one
/// byte at a time, on a codec that already knows the protocol.
fn round_trip(packet: &Packet, protocol: Protocol) -> Result<(), TestCaseError> {
    round_trip_on(packet, protocol, || {
        Codec::for_protocol(protocol, DEFAULT_MAX_PACKET_SIZE)
    })
}

/// As [`round_trip`], with codecs made by `new_codec`.
fn round_trip_on(
    packet: &Packet,
    protocol: Protocol,
    new_codec: impl Fn() -> Codec,
) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    let size = packet
        .encode(protocol, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("{packet:?} does not encode: {e}")))?;
    prop_assert_eq!(size, buf.len(), "encode must return the size it wrote");
    let wire = buf.clone().freeze();

    let mut codec = new_codec();
    buf.extend_from_slice(&PINGREQ);
    prop_assert_eq!(codec.decode(&mut buf), Ok(Some(packet.clone())));
    prop_assert_eq!(
        &buf[..],
        &PINGREQ[..],
        "the decoder must take exactly one frame"
    );
    prop_assert_eq!(codec.decode(&mut buf), Ok(Some(Packet::PingReq)));
    prop_assert!(buf.is_empty());

    let mut codec = new_codec();
    let mut buf = BytesMut::new();
    for (i, byte) in wire.iter().enumerate() {
        buf.put_u8(*byte);
        let decoded = codec.decode(&mut buf);
        if i + 1 < wire.len() {
            prop_assert_eq!(decoded, Ok(None), "after {} of {} bytes", i + 1, wire.len());
            prop_assert_eq!(buf.len(), i + 1, "an incomplete frame must stay buffered");
        } else {
            prop_assert_eq!(decoded, Ok(Some(packet.clone())));
            prop_assert!(buf.is_empty());
        }
    }
    Ok(())
}

/// A CONNECT also round-trips on a server codec, which learns the protocol from it.
fn connect_round_trip(connect: Connect) -> Result<(), TestCaseError> {
    let protocol = connect.protocol;
    let packet = Packet::Connect(Box::new(connect));
    round_trip(&packet, protocol)?;
    round_trip_on(&packet, protocol, || Codec::new(DEFAULT_MAX_PACKET_SIZE))?;

    let mut codec = Codec::new(DEFAULT_MAX_PACKET_SIZE);
    let mut buf = BytesMut::new();
    packet.encode(protocol, &mut buf).expect("encodes");
    prop_assert_eq!(codec.protocol(), None);
    prop_assert!(codec.decode(&mut buf).expect("decodes").is_some());
    prop_assert_eq!(codec.protocol(), Some(protocol));
    Ok(())
}

/// Any character but U+0000, with ASCII, multi-byte characters of every UTF-8 length and
/// the whole code space all well represented.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => select(vec!['é', 'ß', 'Ω', 'я', '€', '中', '\u{FEFF}', '😀', '𝄞', '\u{10FFFF}']),
        2 => any::<char>().prop_map(|c| if c == '\0' { '\u{1}' } else { c }),
    ]
}

/// A UTF-8 string as MQTT allows it (§1.5.4): anything without U+0000.
fn text() -> impl Strategy<Value = String> {
    vec(text_char(), 0..12).prop_map(String::from_iter)
}

/// A character allowed in a topic name: no wildcard, no U+0000.
fn topic_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => text_char().prop_map(|c| if matches!(c, '+' | '#') { '_' } else { c }),
        1 => Just('/'),
    ]
}

/// A topic name (§4.7): not empty, no wildcards.
fn topic_name() -> impl Strategy<Value = String> {
    vec(topic_char(), 1..16).prop_map(String::from_iter)
}

/// One level of a topic filter: a single-level wildcard or literal text (possibly empty).
fn filter_level() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("+".to_owned()),
        3 => vec(topic_char().prop_filter("one level", |c| *c != '/'), 0..6)
            .prop_map(String::from_iter),
    ]
}

/// A well-formed topic filter (§4.7.1), sometimes ending in `#`, sometimes shared.
fn topic_filter() -> impl Strategy<Value = String> {
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

fn packet_id() -> impl Strategy<Value = PacketId> {
    prop_oneof![
        1 => Just(1u16),
        1 => Just(u16::MAX),
        6 => 1..=u16::MAX,
    ]
    .prop_map(|id| NonZeroU16::new(id).expect("never zero"))
}

/// Binary data: short, or long enough to need a two-byte remaining length.
fn binary() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..48),
        1 => vec(any::<u8>(), 120..400),
    ]
    .prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn any_u16() -> impl Strategy<Value = u16> {
    prop_oneof![1 => Just(0), 1 => Just(u16::MAX), 4 => any::<u16>()]
}

fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0), 1 => Just(u32::MAX), 4 => any::<u32>()]
}

/// A subscription identifier (§3.8.2.1.2): 1 to 268,435,455, with the values where its
/// variable byte integer grows by a byte.
fn subscription_identifier() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => select(vec![1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]),
        3 => 1..=268_435_455u32,
    ]
}

/// The reason codes table 2-6 allows in a packet of type `kind`.
fn reason_in(kind: PacketType) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = ReasonCode::ALL
        .into_iter()
        .filter(|reason| reason.allowed_in(kind))
        .collect();
    assert!(!allowed.is_empty(), "no reason code is allowed in {kind}");
    select(allowed)
}

/// The value of one property, before it goes into its field of [`Properties`].
#[derive(Debug, Clone)]
enum Value {
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
fn value_of(id: PropertyId, context: PropertyContext) -> BoxedStrategy<Value> {
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
fn set(props: &mut Properties, id: PropertyId, value: Value) {
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
fn v5_properties(context: PropertyContext) -> BoxedStrategy<Properties> {
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
fn properties(protocol: Protocol, context: PropertyContext) -> BoxedStrategy<Properties> {
    match protocol {
        Protocol::V311 => Just(Properties::default()).boxed(),
        Protocol::V5 => v5_properties(context),
    }
}

fn will(protocol: Protocol) -> impl Strategy<Value = Will> {
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

fn connect(protocol: Protocol) -> impl Strategy<Value = Connect> {
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
const V311_CONNACK_REASONS: [ReasonCode; 6] = [
    ReasonCode::Success,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::ClientIdentifierNotValid,
    ReasonCode::ServerUnavailable,
    ReasonCode::BadUserNameOrPassword,
    ReasonCode::NotAuthorized,
];

fn connack(protocol: Protocol) -> impl Strategy<Value = ConnAck> {
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

fn publish(protocol: Protocol) -> impl Strategy<Value = Publish> {
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

fn ack(kind: PacketType, protocol: Protocol) -> impl Strategy<Value = Ack> {
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

fn subscription_options(protocol: Protocol) -> BoxedStrategy<SubscriptionOptions> {
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

fn subscribe(protocol: Protocol) -> impl Strategy<Value = Subscribe> {
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

fn suback(protocol: Protocol) -> impl Strategy<Value = SubAck> {
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

fn unsubscribe(protocol: Protocol) -> impl Strategy<Value = Unsubscribe> {
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

fn unsuback(protocol: Protocol) -> impl Strategy<Value = UnsubAck> {
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

fn disconnect(protocol: Protocol) -> impl Strategy<Value = Disconnect> {
    let reason = match protocol {
        Protocol::V311 => Just(ReasonCode::Success).boxed(),
        Protocol::V5 => reason_in(PacketType::Disconnect).boxed(),
    };
    (reason, properties(protocol, PropertyContext::Disconnect))
        .prop_map(|(reason, properties)| Disconnect { reason, properties })
}

fn auth() -> impl Strategy<Value = Auth> {
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
fn v5_packet_with_a_v311_form() -> impl Strategy<Value = Packet> {
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_round_trips(v311 in connect(Protocol::V311), v5 in connect(Protocol::V5)) {
        connect_round_trip(v311)?;
        connect_round_trip(v5)?;
    }

    #[test]
    fn connack_round_trips(v311 in connack(Protocol::V311), v5 in connack(Protocol::V5)) {
        round_trip(&Packet::ConnAck(v311), Protocol::V311)?;
        round_trip(&Packet::ConnAck(v5), Protocol::V5)?;
    }

    #[test]
    fn publish_round_trips(v311 in publish(Protocol::V311), v5 in publish(Protocol::V5)) {
        round_trip(&Packet::Publish(v311), Protocol::V311)?;
        round_trip(&Packet::Publish(v5), Protocol::V5)?;
    }

    #[test]
    fn puback_round_trips(
        v311 in ack(PacketType::PubAck, Protocol::V311),
        v5 in ack(PacketType::PubAck, Protocol::V5),
    ) {
        round_trip(&Packet::PubAck(v311), Protocol::V311)?;
        round_trip(&Packet::PubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn pubrec_round_trips(
        v311 in ack(PacketType::PubRec, Protocol::V311),
        v5 in ack(PacketType::PubRec, Protocol::V5),
    ) {
        round_trip(&Packet::PubRec(v311), Protocol::V311)?;
        round_trip(&Packet::PubRec(v5), Protocol::V5)?;
    }

    #[test]
    fn pubrel_round_trips(
        v311 in ack(PacketType::PubRel, Protocol::V311),
        v5 in ack(PacketType::PubRel, Protocol::V5),
    ) {
        round_trip(&Packet::PubRel(v311), Protocol::V311)?;
        round_trip(&Packet::PubRel(v5), Protocol::V5)?;
    }

    #[test]
    fn pubcomp_round_trips(
        v311 in ack(PacketType::PubComp, Protocol::V311),
        v5 in ack(PacketType::PubComp, Protocol::V5),
    ) {
        round_trip(&Packet::PubComp(v311), Protocol::V311)?;
        round_trip(&Packet::PubComp(v5), Protocol::V5)?;
    }

    #[test]
    fn subscribe_round_trips(v311 in subscribe(Protocol::V311), v5 in subscribe(Protocol::V5)) {
        round_trip(&Packet::Subscribe(v311), Protocol::V311)?;
        round_trip(&Packet::Subscribe(v5), Protocol::V5)?;
    }

    #[test]
    fn suback_round_trips(v311 in suback(Protocol::V311), v5 in suback(Protocol::V5)) {
        round_trip(&Packet::SubAck(v311), Protocol::V311)?;
        round_trip(&Packet::SubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn unsubscribe_round_trips(
        v311 in unsubscribe(Protocol::V311),
        v5 in unsubscribe(Protocol::V5),
    ) {
        round_trip(&Packet::Unsubscribe(v311), Protocol::V311)?;
        round_trip(&Packet::Unsubscribe(v5), Protocol::V5)?;
    }

    #[test]
    fn unsuback_round_trips(v311 in unsuback(Protocol::V311), v5 in unsuback(Protocol::V5)) {
        round_trip(&Packet::UnsubAck(v311), Protocol::V311)?;
        round_trip(&Packet::UnsubAck(v5), Protocol::V5)?;
    }

    #[test]
    fn disconnect_round_trips(
        v311 in disconnect(Protocol::V311),
        v5 in disconnect(Protocol::V5),
    ) {
        round_trip(&Packet::Disconnect(v311), Protocol::V311)?;
        round_trip(&Packet::Disconnect(v5), Protocol::V5)?;
    }

    #[test]
    fn auth_round_trips_in_v5(auth in auth()) {
        round_trip(&Packet::Auth(auth), Protocol::V5)?;
    }

    /// Encoding a v5 packet for a 3.1.1 client gives exactly the bytes of the packet with
    /// what 3.1.1 cannot carry taken out, and decodes (in 3.1.1) to that packet.
    #[test]
    fn v311_encoding_drops_only_what_v311_cannot_carry(packet in v5_packet_with_a_v311_form()) {
        let expected = v311_form(&packet);
        let mut dropped = BytesMut::new();
        packet.encode(Protocol::V311, &mut dropped).expect("encodes for 3.1.1");
        let mut reference = BytesMut::new();
        expected.encode(Protocol::V311, &mut reference).expect("encodes for 3.1.1");
        prop_assert_eq!(&dropped, &reference);
        round_trip(&expected, Protocol::V311)?;
    }
}

#[test]
fn ping_round_trips() {
    for protocol in [Protocol::V311, Protocol::V5] {
        for packet in [Packet::PingReq, Packet::PingResp] {
            round_trip(&packet, protocol).expect("round trip");
        }
    }
}

/// A remaining length takes one to four bytes (§2.1.4 of 3.1.1, §2.1.4 of 5.0); frames
/// whose length sits on each side of every step decode whole, and not a byte early.
#[test]
fn remaining_length_boundaries_round_trip() {
    let topic = "t";
    let fixed = 2 + topic.len();
    for (remaining, header) in [
        (127, 2),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let packet = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.to_owned(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(vec![0xa5; remaining - fixed]),
        });
        let mut buf = BytesMut::new();
        let size = packet.encode(Protocol::V311, &mut buf).expect("encodes");
        assert_eq!(size, header + remaining, "remaining length {remaining}");

        let mut codec = Codec::for_protocol(Protocol::V311, 4 * 1024 * 1024);
        let last = buf.split_off(buf.len() - 1);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(None),
            "one byte short of {remaining}"
        );
        buf.unsplit(last);
        assert_eq!(codec.decode(&mut buf), Ok(Some(packet)));
        assert!(buf.is_empty());
    }
}

/// The 3.1.1 return code a v5 CONNACK reason is sent as, per the mapping documented on
/// `ConnectReturnCode`: load and availability become "server unavailable", other refusals
/// their nearest code.
fn v311_connack_reason(reason: ReasonCode) -> ReasonCode {
    use ReasonCode as R;
    match reason {
        R::Success => R::Success,
        R::UnsupportedProtocolVersion => R::UnsupportedProtocolVersion,
        R::ClientIdentifierNotValid => R::ClientIdentifierNotValid,
        R::BadUserNameOrPassword | R::BadAuthenticationMethod => R::BadUserNameOrPassword,
        R::NotAuthorized | R::Banned => R::NotAuthorized,
        _ => R::ServerUnavailable,
    }
}

/// A 3.1.1 SUBACK knows granted QoS 0, 1, 2 and failure 0x80 (§3.9.3 of 3.1.1).
fn v311_suback_reason(reason: ReasonCode) -> ReasonCode {
    use ReasonCode as R;
    match reason {
        R::Success | R::GrantedQoS1 | R::GrantedQoS2 => reason,
        _ => R::UnspecifiedError,
    }
}

/// `packet` as 3.1.1 can carry it: no properties, no reasons in acknowledgements, UNSUBACK
/// or DISCONNECT, only the QoS of subscription options, and CONNACK and SUBACK codes mapped
/// to their 3.1.1 values.
fn v311_form(packet: &Packet) -> Packet {
    let plain_ack = |ack: &Ack| Ack::new(ack.packet_id);
    match packet {
        Packet::ConnAck(p) => Packet::ConnAck(ConnAck {
            session_present: p.session_present,
            reason: v311_connack_reason(p.reason),
            properties: Properties::default(),
        }),
        Packet::Publish(p) => Packet::Publish(Publish {
            properties: Properties::default(),
            ..p.clone()
        }),
        Packet::PubAck(p) => Packet::PubAck(plain_ack(p)),
        Packet::PubRec(p) => Packet::PubRec(plain_ack(p)),
        Packet::PubRel(p) => Packet::PubRel(plain_ack(p)),
        Packet::PubComp(p) => Packet::PubComp(plain_ack(p)),
        Packet::Subscribe(p) => Packet::Subscribe(Subscribe {
            packet_id: p.packet_id,
            filters: p
                .filters
                .iter()
                .map(|(filter, options)| {
                    let qos_only = SubscriptionOptions {
                        qos: options.qos,
                        ..SubscriptionOptions::default()
                    };
                    (filter.clone(), qos_only)
                })
                .collect(),
            properties: Properties::default(),
        }),
        Packet::SubAck(p) => Packet::SubAck(SubAck {
            packet_id: p.packet_id,
            reasons: p.reasons.iter().copied().map(v311_suback_reason).collect(),
            properties: Properties::default(),
        }),
        Packet::Unsubscribe(p) => Packet::Unsubscribe(Unsubscribe {
            properties: Properties::default(),
            ..p.clone()
        }),
        Packet::UnsubAck(p) => Packet::UnsubAck(UnsubAck {
            packet_id: p.packet_id,
            reasons: Vec::new(),
            properties: Properties::default(),
        }),
        Packet::PingReq => Packet::PingReq,
        Packet::PingResp => Packet::PingResp,
        Packet::Disconnect(_) => Packet::Disconnect(Disconnect::default()),
        Packet::Connect(_) | Packet::Auth(_) => panic!("{packet:?} has no 3.1.1 form here"),
    }
}

fn encoded(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(protocol, &mut buf).expect("encodes");
    buf.to_vec()
}

fn id(value: u16) -> PacketId {
    NonZeroU16::new(value).expect("not zero")
}

fn reason_string(text: &str) -> Properties {
    Properties {
        reason_string: Some(text.to_owned()),
        ..Properties::default()
    }
}

#[test]
fn v311_suback_sends_every_failure_as_0x80() {
    let suback = Packet::SubAck(SubAck {
        packet_id: id(10),
        reasons: vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::NotAuthorized,
            ReasonCode::GrantedQoS2,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded,
        ],
        properties: reason_string("no"),
    });
    assert_eq!(
        encoded(&suback, Protocol::V311),
        [0x90, 0x08, 0x00, 0x0a, 0x01, 0x80, 0x02, 0x80, 0x00, 0x80]
    );
    assert_eq!(
        encoded(&suback, Protocol::V5),
        [
            0x90, 0x0e, 0x00, 0x0a, 0x05, 0x1f, 0x00, 0x02, b'n', b'o', 0x01, 0x87, 0x02, 0x8f,
            0x00, 0x97
        ]
    );
}

#[test]
fn v311_acknowledgements_are_the_packet_id_alone() {
    let ack = Ack {
        packet_id: id(0x1234),
        reason: ReasonCode::NoMatchingSubscribers,
        properties: reason_string("x"),
    };
    assert_eq!(
        encoded(&Packet::PubAck(ack.clone()), Protocol::V311),
        [0x40, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubRec(ack.clone()), Protocol::V311),
        [0x50, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubAck(ack.clone()), Protocol::V5),
        [0x40, 0x08, 0x12, 0x34, 0x10, 0x04, 0x1f, 0x00, 0x01, b'x']
    );
    let not_found = Ack {
        packet_id: id(0x1234),
        reason: ReasonCode::PacketIdentifierNotFound,
        properties: Properties::default(),
    };
    assert_eq!(
        encoded(&Packet::PubRel(not_found.clone()), Protocol::V311),
        [0x62, 0x02, 0x12, 0x34]
    );
    assert_eq!(
        encoded(&Packet::PubComp(not_found.clone()), Protocol::V311),
        [0x70, 0x02, 0x12, 0x34]
    );
    // 5.0 §3.4.2.1: without properties the property length is left out, and with Success
    // the reason code too.
    assert_eq!(
        encoded(&Packet::PubComp(not_found), Protocol::V5),
        [0x70, 0x03, 0x12, 0x34, 0x92]
    );
    assert_eq!(
        encoded(&Packet::PubAck(Ack::new(id(7))), Protocol::V5),
        [0x40, 0x02, 0x00, 0x07]
    );
}

#[test]
fn v311_connack_maps_v5_reasons_to_return_codes() {
    for (reason, code) in [
        (ReasonCode::Success, 0),
        (ReasonCode::UnsupportedProtocolVersion, 1),
        (ReasonCode::ClientIdentifierNotValid, 2),
        (ReasonCode::ServerUnavailable, 3),
        (ReasonCode::ServerBusy, 3),
        (ReasonCode::QuotaExceeded, 3),
        (ReasonCode::BadUserNameOrPassword, 4),
        (ReasonCode::BadAuthenticationMethod, 4),
        (ReasonCode::NotAuthorized, 5),
        (ReasonCode::Banned, 5),
    ] {
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: reason_string("why"),
        });
        assert_eq!(
            encoded(&connack, Protocol::V311),
            [0x20, 0x02, 0x00, code],
            "{reason:?}"
        );
    }
}

#[test]
fn v311_drops_disconnect_reasons_unsuback_reasons_and_properties() {
    let disconnect = Packet::Disconnect(Disconnect {
        reason: ReasonCode::ServerShuttingDown,
        properties: reason_string("bye"),
    });
    assert_eq!(encoded(&disconnect, Protocol::V311), [0xe0, 0x00]);
    assert_eq!(
        encoded(&disconnect, Protocol::V5),
        [0xe0, 0x08, 0x8b, 0x06, 0x1f, 0x00, 0x03, b'b', b'y', b'e']
    );

    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: id(3),
        reasons: vec![ReasonCode::NoSubscriptionExisted, ReasonCode::Success],
        properties: reason_string("r"),
    });
    assert_eq!(encoded(&unsuback, Protocol::V311), [0xb0, 0x02, 0x00, 0x03]);

    let publish = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b".to_owned(),
        packet_id: Some(id(5)),
        properties: Properties {
            message_expiry_interval: Some(60),
            subscription_identifiers: vec![1, 128],
            ..Properties::default()
        },
        payload: Bytes::from_static(b"hi"),
    });
    assert_eq!(
        encoded(&publish, Protocol::V311),
        [
            0x3b, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x05, b'h', b'i'
        ]
    );
}

#[test]
fn v311_subscription_options_carry_only_the_qos() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![(
            "a/+".to_owned(),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        )],
        properties: Properties {
            subscription_identifiers: vec![9],
            ..Properties::default()
        },
    });
    assert_eq!(
        encoded(&subscribe, Protocol::V311),
        [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'+', 0x01]
    );
    assert_eq!(
        encoded(&subscribe, Protocol::V5),
        [
            0x82, 0x0b, 0x00, 0x01, 0x02, 0x0b, 0x09, 0x00, 0x03, b'a', b'/', b'+', 0x2d
        ]
    );
}

#[test]
fn v311_refuses_what_it_cannot_express_and_leaves_the_buffer_alone() {
    let mut buf = BytesMut::from(&b"kept"[..]);
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties::default(),
    });
    assert_eq!(
        auth.encode(Protocol::V311, &mut buf),
        Err(EncodeError::NotInProtocol {
            packet: PacketType::Auth,
            protocol: Protocol::V311,
        })
    );
    assert_eq!(&buf[..], b"kept");

    let connect = Packet::Connect(Box::new(Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 0,
        client_id: "c".to_owned(),
        will: None,
        username: None,
        password: Some(Bytes::from_static(b"secret")),
        properties: Properties::default(),
    }));
    assert_eq!(
        connect.encode(Protocol::V311, &mut buf),
        Err(EncodeError::PasswordWithoutUsername)
    );
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn connect_is_encoded_in_its_own_protocol() {
    let connect = |protocol| {
        Packet::Connect(Box::new(Connect {
            protocol,
            clean_start: true,
            keep_alive: 10,
            client_id: "c".to_owned(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }))
    };
    let v311 = connect(Protocol::V311);
    let v5 = connect(Protocol::V5);
    assert_eq!(encoded(&v311, Protocol::V5), encoded(&v311, Protocol::V311));
    assert_eq!(encoded(&v5, Protocol::V311), encoded(&v5, Protocol::V5));
    assert_eq!(
        encoded(&v311, Protocol::V311),
        [
            0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a, 0x00, 0x01,
            b'c'
        ]
    );
    assert_eq!(
        encoded(&v5, Protocol::V5),
        [
            0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x0a, 0x00, 0x00,
            0x01, b'c'
        ]
    );
}
