//! The fixed packets of the cross-check, for 3.1.1 and 5.0.

use super::*;

pub(crate) fn id(value: u16) -> PacketId {
    NonZeroU16::new(value).expect("not zero")
}

pub(crate) fn users(pairs: &[(&str, &str)]) -> UserProperties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A reason string and two user properties with the same key, which must both survive, in
/// order.
pub(crate) fn ack_properties() -> Properties {
    Properties {
        reason_string: Some("pourquoi ☃".to_owned()),
        user_properties: users(&[("k", "v1"), ("k", "v2")]),
        ..Properties::default()
    }
}

pub(crate) fn allowed_reasons(kind: PacketType) -> Vec<ReasonCode> {
    ReasonCode::ALL
        .into_iter()
        .filter(|reason| reason.allowed_in(kind))
        .collect()
}

pub(crate) fn publish(qos: QoS, dup: bool, retain: bool, topic: &str, payload: &[u8]) -> Publish {
    Publish {
        dup,
        qos,
        retain,
        topic: topic.to_owned(),
        packet_id: (qos != QoS::AtMostOnce).then_some(id(0xbeef)),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

pub(crate) fn v4_connect(will: bool, username: Option<&str>, password: Option<&str>) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: Protocol::V311,
        clean_start: !will,
        keep_alive: if will { 65_535 } else { 0 },
        client_id: "clïent-1".to_owned(),
        will: will.then(|| Will {
            topic: "clients/clïent-1/state".to_owned(),
            payload: Bytes::from_static(b"\x00offline\xff"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: username.map(str::to_owned),
        password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        properties: Properties::default(),
    }))
}

pub(crate) fn v4_cases() -> Vec<Packet> {
    let mut cases = vec![
        v4_connect(true, Some("üser"), Some("pässwörd")),
        v4_connect(false, None, None),
        v4_connect(true, Some("user"), None),
    ];
    for reason in [
        ReasonCode::Success,
        ReasonCode::UnsupportedProtocolVersion,
        ReasonCode::ClientIdentifierNotValid,
        ReasonCode::ServerUnavailable,
        ReasonCode::BadUserNameOrPassword,
        ReasonCode::NotAuthorized,
    ] {
        cases.push(Packet::ConnAck(ConnAck {
            session_present: reason == ReasonCode::Success,
            reason,
            properties: Properties::default(),
        }));
    }
    cases.extend([
        Packet::Publish(publish(QoS::AtMostOnce, false, false, "a/b", b"")),
        Packet::Publish(publish(QoS::AtMostOnce, false, true, "ä/€/😀", b"\x00\x01")),
        Packet::Publish(publish(QoS::AtLeastOnce, true, false, "/", &[0xff; 200])),
        Packet::Publish(publish(QoS::ExactlyOnce, true, true, "x", b"payload")),
        Packet::PubAck(Ack::new(id(1))),
        Packet::PubRec(Ack::new(id(0x0102))),
        Packet::PubRel(Ack::new(id(0x8000))),
        Packet::PubComp(Ack::new(id(u16::MAX))),
        Packet::Subscribe(Subscribe {
            packet_id: id(42),
            filters: [
                ("a/+/c", QoS::AtMostOnce),
                ("#", QoS::AtLeastOnce),
                ("$share/g/ü/#", QoS::ExactlyOnce),
            ]
            .into_iter()
            .map(|(filter, qos)| {
                let options = SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                };
                (filter.to_owned(), options)
            })
            .collect(),
            properties: Properties::default(),
        }),
        Packet::SubAck(SubAck {
            packet_id: id(42),
            reasons: vec![
                ReasonCode::GRANTED_QOS0,
                ReasonCode::GrantedQoS1,
                ReasonCode::GrantedQoS2,
                ReasonCode::UnspecifiedError,
            ],
            properties: Properties::default(),
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(43),
            filters: vec!["a/+/c".to_owned(), "#".to_owned(), "ü".to_owned()],
            properties: Properties::default(),
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: id(43),
            reasons: Vec::new(),
            properties: Properties::default(),
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ]);
    cases
}

pub(crate) fn v5_connect() -> Connect {
    Connect {
        protocol: Protocol::V5,
        clean_start: false,
        keep_alive: 60,
        client_id: "dévice-42".to_owned(),
        will: Some(Will {
            topic: "dévices/42/status".to_owned(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties {
                will_delay_interval: Some(30),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(3600),
                content_type: Some("text/plain; charset=utf-8".to_owned()),
                response_topic: Some("replies/42".to_owned()),
                correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
                user_properties: users(&[("will", "yes")]),
                ..Properties::default()
            },
        }),
        username: Some("ålice".to_owned()),
        password: Some(Bytes::from_static("sëcret".as_bytes())),
        properties: Properties {
            session_expiry_interval: Some(u32::MAX),
            receive_maximum: Some(20),
            maximum_packet_size: Some(65_536),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: users(&[("k1", "v1"), ("k1", "v2"), ("", "")]),
            authentication_method: Some("SCRAM-SHA-1".to_owned()),
            authentication_data: Some(Bytes::from_static(b"\x01\x02\x03")),
            ..Properties::default()
        },
    }
}

/// The variant of [`Packet`] that holds one kind of acknowledgement.
pub(crate) type MakeAck = fn(Ack) -> Packet;

pub(crate) fn v5_cases() -> Vec<Packet> {
    let mut cases = Vec::new();

    let full = v5_connect();
    cases.push(Packet::Connect(Box::new(full.clone())));
    cases.push(Packet::Connect(Box::new(Connect {
        clean_start: true,
        keep_alive: 0,
        client_id: String::new(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
        ..full.clone()
    })));
    // 5.0 allows a password without a user name (§3.1.2.9).
    cases.push(Packet::Connect(Box::new(Connect {
        username: None,
        will: full.will.clone().map(|w| Will {
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Properties::default(),
            ..w
        }),
        ..full
    })));

    cases.push(Packet::ConnAck(ConnAck {
        session_present: true,
        reason: ReasonCode::Success,
        properties: Properties {
            session_expiry_interval: Some(0),
            receive_maximum: Some(65_535),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(1_048_576),
            assigned_client_identifier: Some("auto-ß1".to_owned()),
            topic_alias_maximum: Some(0),
            reason_string: Some("welcome".to_owned()),
            user_properties: users(&[("region", "eu")]),
            wildcard_subscription_available: Some(true),
            subscription_identifier_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(120),
            response_information: Some("resp/".to_owned()),
            server_reference: Some("other:1883".to_owned()),
            authentication_method: Some("SCRAM-SHA-1".to_owned()),
            authentication_data: Some(Bytes::from_static(b"final")),
            ..Properties::default()
        },
    }));
    for reason in allowed_reasons(PacketType::ConnAck) {
        cases.push(Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: Properties::default(),
        }));
    }

    cases.push(Packet::Publish(publish(
        QoS::AtMostOnce,
        false,
        false,
        "a",
        b"",
    )));
    cases.push(Packet::Publish(Publish {
        properties: Properties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(86_400),
            topic_alias: Some(3),
            response_topic: Some("r/ü".to_owned()),
            correlation_data: Some(Bytes::from_static(&[0, 255, 7])),
            user_properties: users(&[("a", "1"), ("b", "2")]),
            subscription_identifiers: vec![1, 268_435_455],
            content_type: Some("application/json".to_owned()),
            ..Properties::default()
        },
        ..publish(QoS::AtLeastOnce, true, true, "ä/€/😀", br#"{"v":1}"#)
    }));
    cases.push(Packet::Publish(publish(
        QoS::ExactlyOnce,
        false,
        true,
        "x/y",
        &[0x5a; 300],
    )));
    // A topic alias stands for the topic, which is then empty (§3.3.2.3.4).
    cases.push(Packet::Publish(Publish {
        properties: Properties {
            topic_alias: Some(u16::MAX),
            ..Properties::default()
        },
        ..publish(QoS::AtLeastOnce, false, false, "", b"aliased")
    }));

    let acks: [(PacketType, MakeAck); 4] = [
        (PacketType::PubAck, Packet::PubAck),
        (PacketType::PubRec, Packet::PubRec),
        (PacketType::PubRel, Packet::PubRel),
        (PacketType::PubComp, Packet::PubComp),
    ];
    for (kind, make) in acks {
        for reason in allowed_reasons(kind) {
            for properties in [Properties::default(), ack_properties()] {
                cases.push(make(Ack {
                    packet_id: id(0x1234),
                    reason,
                    properties,
                }));
            }
        }
    }

    cases.push(Packet::Subscribe(Subscribe {
        packet_id: id(7),
        filters: vec![
            (
                "a/+/c".to_owned(),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: false,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                "$share/grp/ü/#".to_owned(),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: false,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendIfNewSubscription,
                },
            ),
            ("#".to_owned(), SubscriptionOptions::default()),
        ],
        properties: Properties {
            subscription_identifiers: vec![16_384],
            user_properties: users(&[("s", "t")]),
            ..Properties::default()
        },
    }));
    cases.push(Packet::Subscribe(Subscribe {
        packet_id: id(8),
        filters: vec![("one".to_owned(), SubscriptionOptions::default())],
        properties: Properties::default(),
    }));
    for properties in [Properties::default(), ack_properties()] {
        cases.push(Packet::SubAck(SubAck {
            packet_id: id(7),
            reasons: allowed_reasons(PacketType::SubAck),
            properties: properties.clone(),
        }));
        cases.push(Packet::UnsubAck(UnsubAck {
            packet_id: id(9),
            reasons: allowed_reasons(PacketType::UnsubAck),
            properties,
        }));
    }
    for properties in [
        Properties::default(),
        Properties {
            user_properties: users(&[("u", "v")]),
            ..Properties::default()
        },
    ] {
        cases.push(Packet::Unsubscribe(Unsubscribe {
            packet_id: id(9),
            filters: vec!["a/+/c".to_owned(), "ü/#".to_owned()],
            properties,
        }));
    }
    cases.push(Packet::PingReq);
    cases.push(Packet::PingResp);

    // A DISCONNECT with properties: rumqttc mishandles the shorter forms (see the quirks),
    // and 0x8C (Bad authentication method), which it does not know.
    for reason in allowed_reasons(PacketType::Disconnect) {
        if reason == ReasonCode::BadAuthenticationMethod {
            continue;
        }
        cases.push(Packet::Disconnect(Disconnect {
            reason,
            properties: Properties {
                session_expiry_interval: Some(10),
                reason_string: Some("bye ☃".to_owned()),
                user_properties: users(&[("k", "v")]),
                server_reference: Some("elsewhere".to_owned()),
                ..Properties::default()
            },
        }));
    }
    cases
}
