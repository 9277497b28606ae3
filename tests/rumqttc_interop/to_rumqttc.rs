//! Our packets as rumqttc's types: field by field, property by property, reason by reason.

use super::*;

pub(crate) fn q4(qos: QoS) -> rumqttc::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::mqttbytes::QoS::ExactlyOnce,
    }
}

pub(crate) fn pkid(id: Option<PacketId>) -> u16 {
    id.map_or(0, NonZeroU16::get)
}

/// rumqttc keeps passwords as strings and an absent user name or password as "".
pub(crate) fn login(connect: &Connect) -> Option<(String, String)> {
    if connect.username.is_none() && connect.password.is_none() {
        return None;
    }
    let password = connect.password.as_ref().map_or(String::new(), |p| {
        String::from_utf8(p.to_vec()).expect("rumqttc passwords are strings")
    });
    Some((connect.username.clone().unwrap_or_default(), password))
}

pub(crate) fn to_r4(packet: &Packet) -> r4::Packet {
    match packet {
        Packet::Connect(c) => r4::Packet::Connect(r4::Connect {
            protocol: rumqttc::mqttbytes::Protocol::V4,
            keep_alive: c.keep_alive,
            client_id: c.client_id.clone(),
            clean_session: c.clean_start,
            last_will: c.will.as_ref().map(|w| r4::LastWill {
                topic: w.topic.clone(),
                message: w.payload.clone(),
                qos: q4(w.qos),
                retain: w.retain,
            }),
            login: login(c).map(|(username, password)| r4::Login { username, password }),
        }),
        Packet::ConnAck(c) => r4::Packet::ConnAck(r4::ConnAck {
            session_present: c.session_present,
            code: match c.reason {
                ReasonCode::Success => r4::ConnectReturnCode::Success,
                ReasonCode::UnsupportedProtocolVersion => {
                    r4::ConnectReturnCode::RefusedProtocolVersion
                }
                ReasonCode::ClientIdentifierNotValid => r4::ConnectReturnCode::BadClientId,
                ReasonCode::ServerUnavailable => r4::ConnectReturnCode::ServiceUnavailable,
                ReasonCode::BadUserNameOrPassword => r4::ConnectReturnCode::BadUserNamePassword,
                ReasonCode::NotAuthorized => r4::ConnectReturnCode::NotAuthorized,
                other => panic!("{other:?} is no 3.1.1 return code"),
            },
        }),
        Packet::Publish(p) => r4::Packet::Publish(r4::Publish {
            dup: p.dup,
            qos: q4(p.qos),
            retain: p.retain,
            topic: p.topic.clone(),
            pkid: pkid(p.packet_id),
            payload: p.payload.clone(),
        }),
        Packet::PubAck(a) => r4::Packet::PubAck(r4::PubAck::new(a.packet_id.get())),
        Packet::PubRec(a) => r4::Packet::PubRec(r4::PubRec::new(a.packet_id.get())),
        Packet::PubRel(a) => r4::Packet::PubRel(r4::PubRel::new(a.packet_id.get())),
        Packet::PubComp(a) => r4::Packet::PubComp(r4::PubComp::new(a.packet_id.get())),
        Packet::Subscribe(s) => r4::Packet::Subscribe(r4::Subscribe {
            pkid: s.packet_id.get(),
            filters: s
                .filters
                .iter()
                .map(|(path, options)| r4::SubscribeFilter::new(path.clone(), q4(options.qos)))
                .collect(),
        }),
        Packet::SubAck(s) => r4::Packet::SubAck(r4::SubAck::new(
            s.packet_id.get(),
            s.reasons
                .iter()
                .map(|reason| match reason {
                    ReasonCode::Success => r4::SubscribeReasonCode::Success(q4(QoS::AtMostOnce)),
                    ReasonCode::GrantedQoS1 => {
                        r4::SubscribeReasonCode::Success(q4(QoS::AtLeastOnce))
                    }
                    ReasonCode::GrantedQoS2 => {
                        r4::SubscribeReasonCode::Success(q4(QoS::ExactlyOnce))
                    }
                    ReasonCode::UnspecifiedError => r4::SubscribeReasonCode::Failure,
                    other => panic!("{other:?} is no 3.1.1 SUBACK code"),
                })
                .collect(),
        )),
        Packet::Unsubscribe(u) => r4::Packet::Unsubscribe(r4::Unsubscribe {
            pkid: u.packet_id.get(),
            topics: u.filters.clone(),
        }),
        Packet::UnsubAck(u) => r4::Packet::UnsubAck(r4::UnsubAck::new(u.packet_id.get())),
        Packet::PingReq => r4::Packet::PingReq,
        Packet::PingResp => r4::Packet::PingResp,
        Packet::Disconnect(_) => r4::Packet::Disconnect,
        Packet::Auth(_) => panic!("AUTH does not exist in 3.1.1"),
    }
}

pub(crate) fn q5(qos: QoS) -> rumqttc::v5::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

pub(crate) fn flag(value: Option<bool>) -> Option<u8> {
    value.map(u8::from)
}

pub(crate) fn nonempty(props: &Properties) -> Option<&Properties> {
    (!props.is_empty()).then_some(props)
}

pub(crate) fn connect_properties(p: &Properties) -> Option<r5::ConnectProperties> {
    nonempty(p).map(|p| r5::ConnectProperties {
        session_expiry_interval: p.session_expiry_interval,
        receive_maximum: p.receive_maximum,
        max_packet_size: p.maximum_packet_size,
        topic_alias_max: p.topic_alias_maximum,
        request_response_info: flag(p.request_response_information),
        request_problem_info: flag(p.request_problem_information),
        user_properties: p.user_properties.clone(),
        authentication_method: p.authentication_method.clone(),
        authentication_data: p.authentication_data.clone(),
    })
}

pub(crate) fn will_properties(p: &Properties) -> Option<r5::LastWillProperties> {
    nonempty(p).map(|p| r5::LastWillProperties {
        delay_interval: p.will_delay_interval,
        payload_format_indicator: flag(p.payload_format_indicator),
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
    })
}

pub(crate) fn connack_properties(p: &Properties) -> Option<r5::ConnAckProperties> {
    nonempty(p).map(|p| r5::ConnAckProperties {
        session_expiry_interval: p.session_expiry_interval,
        receive_max: p.receive_maximum,
        max_qos: p.maximum_qos.map(QoS::bits),
        retain_available: flag(p.retain_available),
        max_packet_size: p.maximum_packet_size,
        assigned_client_identifier: p.assigned_client_identifier.clone(),
        topic_alias_max: p.topic_alias_maximum,
        reason_string: p.reason_string.clone(),
        user_properties: p.user_properties.clone(),
        wildcard_subscription_available: flag(p.wildcard_subscription_available),
        subscription_identifiers_available: flag(p.subscription_identifier_available),
        shared_subscription_available: flag(p.shared_subscription_available),
        server_keep_alive: p.server_keep_alive,
        response_information: p.response_information.clone(),
        server_reference: p.server_reference.clone(),
        authentication_method: p.authentication_method.clone(),
        authentication_data: p.authentication_data.clone(),
    })
}

pub(crate) fn publish_properties(p: &Properties) -> Option<r5::PublishProperties> {
    nonempty(p).map(|p| r5::PublishProperties {
        payload_format_indicator: flag(p.payload_format_indicator),
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: p.topic_alias,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        subscription_identifiers: p
            .subscription_identifiers
            .iter()
            .map(|&id| id as usize)
            .collect(),
        content_type: p.content_type.clone(),
    })
}

pub(crate) fn subscribe_properties(p: &Properties) -> Option<r5::SubscribeProperties> {
    assert!(p.subscription_identifiers.len() <= 1, "one per SUBSCRIBE");
    nonempty(p).map(|p| r5::SubscribeProperties {
        id: p.subscription_identifiers.first().map(|&id| id as usize),
        user_properties: p.user_properties.clone(),
    })
}

pub(crate) fn disconnect_properties(p: &Properties) -> Option<r5::DisconnectProperties> {
    nonempty(p).map(|p| r5::DisconnectProperties {
        session_expiry_interval: p.session_expiry_interval,
        reason_string: p.reason_string.clone(),
        user_properties: p.user_properties.clone(),
        server_reference: p.server_reference.clone(),
    })
}

pub(crate) type UserProperties = Vec<(String, String)>;

/// The reason string and user properties that acknowledgements carry, which rumqttc gives a
/// type of their own in every packet.
pub(crate) fn reason_and_users(p: &Properties) -> Option<(Option<String>, UserProperties)> {
    nonempty(p).map(|p| (p.reason_string.clone(), p.user_properties.clone()))
}

pub(crate) fn connack_code(reason: ReasonCode) -> r5::ConnectReturnCode {
    use r5::ConnectReturnCode as C;
    match reason {
        ReasonCode::Success => C::Success,
        ReasonCode::UnspecifiedError => C::UnspecifiedError,
        ReasonCode::MalformedPacket => C::MalformedPacket,
        ReasonCode::ProtocolError => C::ProtocolError,
        ReasonCode::ImplementationSpecificError => C::ImplementationSpecificError,
        ReasonCode::UnsupportedProtocolVersion => C::UnsupportedProtocolVersion,
        ReasonCode::ClientIdentifierNotValid => C::ClientIdentifierNotValid,
        ReasonCode::BadUserNameOrPassword => C::BadUserNamePassword,
        ReasonCode::NotAuthorized => C::NotAuthorized,
        ReasonCode::ServerUnavailable => C::ServerUnavailable,
        ReasonCode::ServerBusy => C::ServerBusy,
        ReasonCode::Banned => C::Banned,
        ReasonCode::BadAuthenticationMethod => C::BadAuthenticationMethod,
        ReasonCode::TopicNameInvalid => C::TopicNameInvalid,
        ReasonCode::PacketTooLarge => C::PacketTooLarge,
        ReasonCode::QuotaExceeded => C::QuotaExceeded,
        ReasonCode::PayloadFormatInvalid => C::PayloadFormatInvalid,
        ReasonCode::RetainNotSupported => C::RetainNotSupported,
        ReasonCode::QoSNotSupported => C::QoSNotSupported,
        ReasonCode::UseAnotherServer => C::UseAnotherServer,
        ReasonCode::ServerMoved => C::ServerMoved,
        ReasonCode::ConnectionRateExceeded => C::ConnectionRateExceeded,
        other => panic!("{other:?} is no CONNACK reason"),
    }
}

pub(crate) fn puback_reason(reason: ReasonCode) -> r5::PubAckReason {
    use r5::PubAckReason as R;
    match reason {
        ReasonCode::Success => R::Success,
        ReasonCode::NoMatchingSubscribers => R::NoMatchingSubscribers,
        ReasonCode::UnspecifiedError => R::UnspecifiedError,
        ReasonCode::ImplementationSpecificError => R::ImplementationSpecificError,
        ReasonCode::NotAuthorized => R::NotAuthorized,
        ReasonCode::TopicNameInvalid => R::TopicNameInvalid,
        ReasonCode::PacketIdentifierInUse => R::PacketIdentifierInUse,
        ReasonCode::QuotaExceeded => R::QuotaExceeded,
        ReasonCode::PayloadFormatInvalid => R::PayloadFormatInvalid,
        other => panic!("{other:?} is no PUBACK reason"),
    }
}

pub(crate) fn pubrec_reason(reason: ReasonCode) -> r5::PubRecReason {
    use r5::PubRecReason as R;
    match reason {
        ReasonCode::Success => R::Success,
        ReasonCode::NoMatchingSubscribers => R::NoMatchingSubscribers,
        ReasonCode::UnspecifiedError => R::UnspecifiedError,
        ReasonCode::ImplementationSpecificError => R::ImplementationSpecificError,
        ReasonCode::NotAuthorized => R::NotAuthorized,
        ReasonCode::TopicNameInvalid => R::TopicNameInvalid,
        ReasonCode::PacketIdentifierInUse => R::PacketIdentifierInUse,
        ReasonCode::QuotaExceeded => R::QuotaExceeded,
        ReasonCode::PayloadFormatInvalid => R::PayloadFormatInvalid,
        other => panic!("{other:?} is no PUBREC reason"),
    }
}

pub(crate) fn pubrel_reason(reason: ReasonCode) -> r5::PubRelReason {
    match reason {
        ReasonCode::Success => r5::PubRelReason::Success,
        ReasonCode::PacketIdentifierNotFound => r5::PubRelReason::PacketIdentifierNotFound,
        other => panic!("{other:?} is no PUBREL reason"),
    }
}

pub(crate) fn pubcomp_reason(reason: ReasonCode) -> r5::PubCompReason {
    match reason {
        ReasonCode::Success => r5::PubCompReason::Success,
        ReasonCode::PacketIdentifierNotFound => r5::PubCompReason::PacketIdentifierNotFound,
        other => panic!("{other:?} is no PUBCOMP reason"),
    }
}

pub(crate) fn suback_code(reason: ReasonCode) -> r5::SubscribeReasonCode {
    use r5::SubscribeReasonCode as R;
    match reason {
        ReasonCode::Success => R::Success(q5(QoS::AtMostOnce)),
        ReasonCode::GrantedQoS1 => R::Success(q5(QoS::AtLeastOnce)),
        ReasonCode::GrantedQoS2 => R::Success(q5(QoS::ExactlyOnce)),
        // rumqttc also has `Failure`, which it encodes as 0x80 but decodes as `Unspecified`.
        ReasonCode::UnspecifiedError => R::Unspecified,
        ReasonCode::ImplementationSpecificError => R::ImplementationSpecific,
        ReasonCode::NotAuthorized => R::NotAuthorized,
        ReasonCode::TopicFilterInvalid => R::TopicFilterInvalid,
        ReasonCode::PacketIdentifierInUse => R::PkidInUse,
        ReasonCode::QuotaExceeded => R::QuotaExceeded,
        ReasonCode::SharedSubscriptionsNotSupported => R::SharedSubscriptionsNotSupported,
        ReasonCode::SubscriptionIdentifiersNotSupported => R::SubscriptionIdNotSupported,
        ReasonCode::WildcardSubscriptionsNotSupported => R::WildcardSubscriptionsNotSupported,
        other => panic!("{other:?} is no SUBACK reason"),
    }
}

pub(crate) fn unsuback_reason(reason: ReasonCode) -> r5::UnsubAckReason {
    use r5::UnsubAckReason as R;
    match reason {
        ReasonCode::Success => R::Success,
        ReasonCode::NoSubscriptionExisted => R::NoSubscriptionExisted,
        ReasonCode::UnspecifiedError => R::UnspecifiedError,
        ReasonCode::ImplementationSpecificError => R::ImplementationSpecificError,
        ReasonCode::NotAuthorized => R::NotAuthorized,
        ReasonCode::TopicFilterInvalid => R::TopicFilterInvalid,
        ReasonCode::PacketIdentifierInUse => R::PacketIdentifierInUse,
        other => panic!("{other:?} is no UNSUBACK reason"),
    }
}

pub(crate) fn disconnect_reason(reason: ReasonCode) -> r5::DisconnectReasonCode {
    r5::DisconnectReasonCode::try_from(reason.as_u8())
        .unwrap_or_else(|_| panic!("rumqttc has no DISCONNECT reason {reason:?}"))
}

pub(crate) fn retain_rule(handling: RetainHandling) -> r5::RetainForwardRule {
    match handling {
        RetainHandling::SendAtSubscribe => r5::RetainForwardRule::OnEverySubscribe,
        RetainHandling::SendIfNewSubscription => r5::RetainForwardRule::OnNewSubscribe,
        RetainHandling::DoNotSend => r5::RetainForwardRule::Never,
    }
}

pub(crate) fn to_r5(packet: &Packet) -> r5::Packet {
    match packet {
        Packet::Connect(c) => r5::Packet::Connect(
            r5::Connect {
                keep_alive: c.keep_alive,
                client_id: c.client_id.clone(),
                clean_start: c.clean_start,
                properties: connect_properties(&c.properties),
            },
            c.will.as_ref().map(|w| r5::LastWill {
                topic: Bytes::from(w.topic.clone()),
                message: w.payload.clone(),
                qos: q5(w.qos),
                retain: w.retain,
                properties: will_properties(&w.properties),
            }),
            login(c).map(|(username, password)| r5::Login { username, password }),
        ),
        Packet::ConnAck(c) => r5::Packet::ConnAck(r5::ConnAck {
            session_present: c.session_present,
            code: connack_code(c.reason),
            properties: connack_properties(&c.properties),
        }),
        Packet::Publish(p) => r5::Packet::Publish(r5::Publish {
            dup: p.dup,
            qos: q5(p.qos),
            retain: p.retain,
            topic: Bytes::from(p.topic.clone()),
            pkid: pkid(p.packet_id),
            payload: p.payload.clone(),
            properties: publish_properties(&p.properties),
        }),
        Packet::PubAck(a) => r5::Packet::PubAck(r5::PubAck {
            pkid: a.packet_id.get(),
            reason: puback_reason(a.reason),
            properties: reason_and_users(&a.properties).map(|(reason_string, user_properties)| {
                r5::PubAckProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::PubRec(a) => r5::Packet::PubRec(r5::PubRec {
            pkid: a.packet_id.get(),
            reason: pubrec_reason(a.reason),
            properties: reason_and_users(&a.properties).map(|(reason_string, user_properties)| {
                r5::PubRecProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::PubRel(a) => r5::Packet::PubRel(r5::PubRel {
            pkid: a.packet_id.get(),
            reason: pubrel_reason(a.reason),
            properties: reason_and_users(&a.properties).map(|(reason_string, user_properties)| {
                r5::PubRelProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::PubComp(a) => r5::Packet::PubComp(r5::PubComp {
            pkid: a.packet_id.get(),
            reason: pubcomp_reason(a.reason),
            properties: reason_and_users(&a.properties).map(|(reason_string, user_properties)| {
                r5::PubCompProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::Subscribe(s) => r5::Packet::Subscribe(r5::Subscribe {
            pkid: s.packet_id.get(),
            filters: s
                .filters
                .iter()
                .map(|(path, options)| r5::Filter {
                    path: path.clone(),
                    qos: q5(options.qos),
                    nolocal: options.no_local,
                    preserve_retain: options.retain_as_published,
                    retain_forward_rule: retain_rule(options.retain_handling),
                })
                .collect(),
            properties: subscribe_properties(&s.properties),
        }),
        Packet::SubAck(s) => r5::Packet::SubAck(r5::SubAck {
            pkid: s.packet_id.get(),
            return_codes: s.reasons.iter().copied().map(suback_code).collect(),
            properties: reason_and_users(&s.properties).map(|(reason_string, user_properties)| {
                r5::SubAckProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::Unsubscribe(u) => r5::Packet::Unsubscribe(r5::Unsubscribe {
            pkid: u.packet_id.get(),
            filters: u.filters.clone(),
            properties: nonempty(&u.properties).map(|p| r5::UnsubscribeProperties {
                user_properties: p.user_properties.clone(),
            }),
        }),
        Packet::UnsubAck(u) => r5::Packet::UnsubAck(r5::UnsubAck {
            pkid: u.packet_id.get(),
            reasons: u.reasons.iter().copied().map(unsuback_reason).collect(),
            properties: reason_and_users(&u.properties).map(|(reason_string, user_properties)| {
                r5::UnsubAckProperties {
                    reason_string,
                    user_properties,
                }
            }),
        }),
        Packet::PingReq => r5::Packet::PingReq(r5::PingReq),
        Packet::PingResp => r5::Packet::PingResp(r5::PingResp),
        Packet::Disconnect(d) => r5::Packet::Disconnect(r5::Disconnect {
            reason_code: disconnect_reason(d.reason),
            properties: disconnect_properties(&d.properties),
        }),
        // rumqttc 0.25 does not export the types of an AUTH's fields: see `auth_interop`.
        Packet::Auth(_) => panic!("an rumqttc AUTH can only be made by decoding one"),
    }
}
