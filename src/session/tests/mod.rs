//! The session driven without sockets: packets and outcomes in, packets and actions out.

use std::num::NonZeroU16;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::cluster::command::{self, OutboundEntry, Stage};
use crate::mqtt::{
    Ack, Codec, Connect, Properties, Publish, QoS, Subscribe, SubscriptionOptions, Unsubscribe,
};

mod limits;

fn id(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero")
}

fn plan(protocol: Protocol, expiry: Option<u32>, limits: &Limits) -> ConnectPlan {
    let properties = Properties {
        session_expiry_interval: expiry,
        ..Properties::default()
    };
    let connect = Connect {
        protocol,
        clean_start: expiry.is_none(),
        keep_alive: 10,
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
        properties,
    };
    accept_connect(&connect, limits, 1, 0, || "x".into()).expect("accepted")
}

fn session(protocol: Protocol, expiry: Option<u32>, limits: Limits) -> Session {
    let plan = plan(protocol, expiry, &limits);
    let mut session = Session::start(&plan, limits, 42, false);
    let sent = sent(&mut session);
    assert!(matches!(sent.as_slice(), [Packet::ConnAck(_)]), "{sent:?}");
    session
}

/// Decodes what the session wrote.
fn sent(session: &mut Session) -> Vec<Packet> {
    let mut codec = Codec::for_protocol(session.protocol(), usize::MAX);
    let mut out = session.outbox();
    let mut packets = Vec::new();
    while let Some(packet) = codec
        .decode(&mut out)
        .expect("the session writes valid packets")
    {
        packets.push(packet);
    }
    packets
}

fn publish(qos: QoS, packet_id: Option<u16>, topic: &str) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload: Bytes::from_static(b"p"),
    }
}

fn published(matched: u32) -> Result<Outcome, ProposeError> {
    Ok(Outcome::Published {
        duplicate: false,
        matched,
        deliveries: Vec::new(),
    })
}

/// The proposals among `actions`, with what each awaits.
fn proposals(actions: &mut Vec<Action>) -> Vec<(Command, Awaiting)> {
    std::mem::take(actions)
        .into_iter()
        .filter_map(|a| match a {
            Action::Propose(c, w) => Some((c, w)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_qos1_publish_is_acknowledged_only_once_applied() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(7), "a")),
        0,
        &mut actions,
    );
    assert!(sent(&mut s).is_empty(), "no PUBACK before the outcome");
    let (command, awaiting) = proposals(&mut actions).pop().expect("proposed");
    let Command::Publish(p) = command else {
        panic!("{command:?}")
    };
    assert_eq!((p.packet_id, p.from.map(|f| f.epoch)), (Some(7), Some(42)));
    s.outcome(awaiting, published(0), &mut actions);
    let Packet::PubAck(ack) = &sent(&mut s)[0] else {
        panic!()
    };
    assert_eq!(
        (ack.packet_id, ack.reason),
        (id(7), ReasonCode::NoMatchingSubscribers)
    );
}

#[test]
fn a_qos2_publish_goes_pubrec_then_pubrel_through_the_log_then_pubcomp() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::ExactlyOnce, Some(3), "a")),
        0,
        &mut actions,
    );
    let (_, awaiting) = proposals(&mut actions).pop().expect("proposed");
    s.outcome(awaiting, published(1), &mut actions);
    assert!(matches!(sent(&mut s)[0], Packet::PubRec(_)));
    // A resend before PUBREL is answered without the cluster.
    s.packet(
        Packet::Publish(publish(QoS::ExactlyOnce, Some(3), "a")),
        0,
        &mut actions,
    );
    assert!(proposals(&mut actions).is_empty());
    assert!(matches!(sent(&mut s)[0], Packet::PubRec(_)));
    s.packet(Packet::PubRel(Ack::new(id(3))), 0, &mut actions);
    let (command, awaiting) = proposals(&mut actions).pop().expect("release proposed");
    assert!(matches!(command, Command::Release { packet_id: 3, .. }));
    s.outcome(
        awaiting,
        Ok(Outcome::Released { known: true }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[0], Packet::PubComp(a) if a.reason == ReasonCode::Success));
    // PUBREL for an id nobody knows: PUBCOMP 0x92.
    s.packet(Packet::PubRel(Ack::new(id(9))), 0, &mut actions);
    let (_, awaiting) = proposals(&mut actions).pop().expect("release proposed");
    s.outcome(
        awaiting,
        Ok(Outcome::Released { known: false }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[0],
        Packet::PubComp(a) if a.reason == ReasonCode::PacketIdentifierNotFound));
}

#[test]
fn a_fenced_command_closes_with_session_taken_over() {
    let mut s = session(Protocol::V5, Some(60), Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(1), "a")),
        0,
        &mut actions,
    );
    let (_, awaiting) = proposals(&mut actions).pop().expect("proposed");
    s.outcome(
        awaiting,
        Ok(Outcome::Fenced {
            current_epoch: Some(43),
        }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::SessionTakenOver));
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(SessionEnd::TakenOver)]
    ));
    assert!(s.is_closed());
}

#[test]
fn an_administrative_close_says_0x98_in_5_0_and_publishes_the_will() {
    let mut s = session(Protocol::V5, Some(60), Limits::default());
    let mut actions = Vec::new();
    s.administrative_close(&mut actions);
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::AdministrativeAction));
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(SessionEnd::Disconnect {
            publish_will: true,
            ..
        })]
    ));
    // 3.1.1 has no server DISCONNECT: the connection just closes.
    let mut v3 = session(Protocol::V311, Some(60), Limits::default());
    v3.administrative_close(&mut Vec::new());
    assert!(sent(&mut v3).is_empty());
    assert!(v3.is_closed());
}

#[test]
fn an_unknown_outcome_closes_rather_than_acknowledging() {
    let mut s = session(Protocol::V311, Some(60), Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(1), "a")),
        0,
        &mut actions,
    );
    let (_, awaiting) = proposals(&mut actions).pop().expect("proposed");
    s.outcome(
        awaiting,
        Err(ProposeError::Unknown("leader lost".into())),
        &mut actions,
    );
    assert!(sent(&mut s).is_empty(), "3.1.1: no PUBACK, no DISCONNECT");
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(SessionEnd::Disconnect {
            publish_will: true,
            ..
        })]
    ));
    assert_eq!(s.close_reason(), Some(CloseReason::ClusterError));
}

#[test]
fn more_unacknowledged_publishes_than_the_receive_maximum_is_an_error() {
    let limits = Limits {
        receive_maximum: 2,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    let mut actions = Vec::new();
    for n in 1..=3 {
        s.packet(
            Packet::Publish(publish(QoS::AtLeastOnce, Some(n), "a")),
            0,
            &mut actions,
        );
    }
    assert_eq!(proposals(&mut actions).len(), 2);
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::ReceiveMaximumExceeded));
}

#[test]
fn a_packet_id_reused_across_qos_flows_is_a_protocol_error() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::ExactlyOnce, Some(5), "a")),
        0,
        &mut actions,
    );
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(5), "a")),
        0,
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::ProtocolError));
}

#[test]
fn topic_aliases_from_the_client_are_resolved_and_checked() {
    let limits = Limits {
        topic_alias_maximum: 2,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    let mut actions = Vec::new();
    let mut first = publish(QoS::AtMostOnce, None, "long/topic");
    first.properties.topic_alias = Some(1);
    s.packet(Packet::Publish(first), 0, &mut actions);
    let mut second = publish(QoS::AtMostOnce, None, "");
    second.properties.topic_alias = Some(1);
    s.packet(Packet::Publish(second), 0, &mut actions);
    let topics: Vec<String> = std::mem::take(&mut actions)
        .into_iter()
        .filter_map(|a| match a {
            Action::RouteQos0(m) => Some(m.topic.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["long/topic", "long/topic"]);
    let mut bad = publish(QoS::AtMostOnce, None, "x");
    bad.properties.topic_alias = Some(3);
    s.packet(Packet::Publish(bad), 0, &mut actions);
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::TopicAliasInvalid));
}

#[test]
fn publishing_to_sys_topics_is_refused() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(1), "$SYS/x")),
        0,
        &mut actions,
    );
    assert!(actions.is_empty());
    assert!(matches!(&sent(&mut s)[..],
        [Packet::PubAck(a)] if a.reason == ReasonCode::NotAuthorized));
    let traffic = s.take_traffic();
    assert_eq!(traffic.dropped[DropReason::NotAuthorized as usize], 1);
    assert_eq!(traffic.packets_of(crate::mqtt::PacketType::PubAck), 1);
    assert!(s.take_traffic().is_empty(), "taken");
}

#[test]
fn subscribe_is_answered_with_the_applied_reasons() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    let mut subscribe = Subscribe {
        packet_id: id(4),
        filters: vec![("a/#".into(), SubscriptionOptions::default())],
        properties: Properties::default(),
    };
    subscribe.properties.subscription_identifiers = vec![11];
    s.packet(Packet::Subscribe(subscribe), 5, &mut actions);
    let (command, awaiting) = proposals(&mut actions).pop().expect("proposed");
    let Command::Subscribe(sub) = command else {
        panic!()
    };
    assert_eq!(sub.subscription_id, Some(11));
    s.outcome(
        awaiting,
        Ok(Outcome::Subscribed {
            reasons: vec![1],
            deliveries: Vec::new(),
        }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[..],
        [Packet::SubAck(a)] if a.reasons == [ReasonCode::GrantedQoS1]));
}

fn message(topic: &str) -> Arc<command::Message> {
    Arc::new(command::Message::new(
        topic,
        Bytes::from_static(b"m"),
        1,
        false,
    ))
}

fn direct(qos: u8) -> DirectMessage {
    DirectMessage {
        qos,
        retain: false,
        subscription_ids: vec![3],
        expires_at: None,
        message: message("t"),
        share: None,
    }
}

fn shared_direct(qos: u8, topic: &str) -> DirectMessage {
    DirectMessage {
        message: message(topic),
        share: Some(command::ShareRef {
            group: "g".into(),
            filter: "#".into(),
        }),
        ..direct(qos)
    }
}

fn unfinished_topics(s: &Session) -> Vec<String> {
    s.unfinished_shared()
        .iter()
        .map(|u| u.message.topic.clone())
        .collect()
}

#[test]
fn shared_messages_the_client_has_not_acknowledged_are_left_for_another_member() {
    let limits = Limits {
        max_inflight: 3,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    s.deliver_direct(shared_direct(1, "acked"), 0);
    s.deliver_direct(shared_direct(2, "received"), 0);
    s.deliver_direct(direct(1), 0);
    s.deliver_direct(shared_direct(1, "waiting"), 0);
    // QoS 0 is at most once: never handed over.
    s.deliver_direct(shared_direct(0, "qos0"), 0);
    sent(&mut s);
    assert_eq!(unfinished_topics(&s), ["acked", "received", "waiting"]);

    let mut actions = Vec::new();
    s.packet(Packet::PubAck(Ack::new(id(1))), 0, &mut actions);
    // "waiting" took the freed slot; still unacknowledged.
    assert_eq!(unfinished_topics(&s), ["received", "waiting"]);
    // A PUBREC means the client has the QoS 2 message: only PUBREL/PUBCOMP remain.
    s.packet(Packet::PubRec(Ack::new(id(2))), 0, &mut actions);
    assert_eq!(unfinished_topics(&s), ["waiting"]);
    assert!(
        proposals(&mut actions).is_empty(),
        "transient: nothing proposed"
    );
}

#[test]
fn a_transient_sessions_window_holds_the_rest_back_until_acked() {
    let limits = Limits {
        max_inflight: 2,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    for _ in 0..3 {
        s.deliver_direct(direct(1), 0);
    }
    let ids: Vec<u16> = sent(&mut s)
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => p.packet_id.map(NonZeroU16::get),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [1, 2]);
    let mut actions = Vec::new();
    s.packet(Packet::PubAck(Ack::new(id(1))), 0, &mut actions);
    let next = sent(&mut s);
    assert!(matches!(&next[..], [Packet::Publish(p)] if p.packet_id == Some(id(3))));
    // Transient acks stay local.
    s.flush(&mut actions);
    assert!(actions.is_empty());
}

fn queued(packet_id: u16, dup: bool, stage: Stage) -> QueuedMessage {
    QueuedMessage {
        entry: OutboundEntry {
            seq: 1,
            packet_id,
            stage,
            dup,
            qos: 2,
            retain: false,
            subscription_ids: Vec::new(),
            message_id: Some(1),
        },
        message: Some(message("q")),
        expires_at: None,
    }
}

#[test]
fn queued_entries_keep_their_ids_and_their_acks_go_back_as_one_command() {
    let mut s = session(Protocol::V5, Some(60), Limits::default());
    s.deliver_queued(queued(7, true, Stage::AwaitingAck), 0);
    s.deliver_queued(queued(8, false, Stage::AwaitingComp), 0);
    let out = sent(&mut s);
    assert!(matches!(&out[0], Packet::Publish(p) if p.dup && p.packet_id == Some(id(7))));
    assert!(matches!(&out[1], Packet::PubRel(a) if a.packet_id == id(8)));
    let mut actions = Vec::new();
    // PUBREC of a queued QoS 2 entry: PUBREL only after the cluster recorded it.
    s.packet(Packet::PubRec(Ack::new(id(7))), 0, &mut actions);
    assert!(sent(&mut s).is_empty());
    let (command, awaiting) = proposals(&mut actions).pop().expect("received proposed");
    assert!(matches!(command, Command::Received { packet_id: 7, .. }));
    s.outcome(
        awaiting,
        Ok(Outcome::Received { known: true }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[..], [Packet::PubRel(a)] if a.packet_id == id(7)));
    s.packet(Packet::PubComp(Ack::new(id(7))), 0, &mut actions);
    s.packet(Packet::PubComp(Ack::new(id(8))), 0, &mut actions);
    s.flush(&mut actions);
    let (command, _) = proposals(&mut actions).pop().expect("acks proposed");
    assert!(matches!(command, Command::Ack { packet_ids, .. } if packet_ids == [7, 8]));
}

#[test]
fn a_message_larger_than_the_client_accepts_is_dropped_and_counted_delivered() {
    let mut limits_plan = plan(Protocol::V5, Some(60), &Limits::default());
    limits_plan.client_max_packet_size = 20;
    let mut s = Session::start(&limits_plan, Limits::default(), 1, false);
    sent(&mut s);
    let mut big = queued(5, false, Stage::AwaitingAck);
    big.message = Some(Arc::new(command::Message::new(
        "t",
        Bytes::from(vec![0u8; 100]),
        1,
        false,
    )));
    s.deliver_queued(big, 0);
    assert!(sent(&mut s).is_empty());
    let traffic = s.take_traffic();
    assert_eq!(traffic.dropped[DropReason::TooLarge as usize], 1);
    assert_eq!(traffic.messages, [0, 0, 0], "nothing sent");
    let mut actions = Vec::new();
    s.flush(&mut actions);
    assert!(matches!(&proposals(&mut actions)[..],
        [(Command::Ack { packet_ids, .. }, _)] if packet_ids == &[5]));
}

#[test]
fn expiry_is_sent_as_the_remaining_interval_and_expired_messages_are_not_sent() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut m = direct(0);
    m.expires_at = Some(10_000);
    s.deliver_direct(m.clone(), 4_000);
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Publish(p)] if p.properties.message_expiry_interval == Some(6)));
    s.deliver_direct(m, 10_000);
    assert!(sent(&mut s).is_empty());
}

#[test]
fn outbound_topic_aliases_are_used_up_to_the_clients_maximum() {
    let mut p = plan(Protocol::V5, None, &Limits::default());
    p.client_topic_alias_maximum = 1;
    let mut s = Session::start(&p, Limits::default(), 1, false);
    sent(&mut s);
    s.deliver_direct(direct(0), 0);
    s.deliver_direct(direct(0), 0);
    let mut other = direct(0);
    other.message = message("other");
    s.deliver_direct(other, 0);
    let out: Vec<(String, Option<u16>)> = sent(&mut s)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.topic, p.properties.topic_alias)),
            _ => None,
        })
        .collect();
    assert_eq!(
        out,
        [
            ("t".to_string(), Some(1)),
            (String::new(), Some(1)),
            ("other".to_string(), None)
        ]
    );
}

#[test]
fn disconnect_reasons_decide_the_will() {
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Disconnect(crate::mqtt::Disconnect::new(
            ReasonCode::DisconnectWithWillMessage,
        )),
        0,
        &mut actions,
    );
    assert!(matches!(
        actions.as_slice(),
        [Action::Close(SessionEnd::Disconnect {
            publish_will: true,
            ..
        })]
    ));
    let mut s = session(Protocol::V5, None, Limits::default());
    let mut actions = Vec::new();
    let mut d = crate::mqtt::Disconnect::new(ReasonCode::Success);
    d.properties.session_expiry_interval = Some(30);
    s.packet(Packet::Disconnect(d), 0, &mut actions);
    // A session with expiry 0 cannot be extended at DISCONNECT.
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::ProtocolError));
}

#[test]
fn a_second_connect_is_a_protocol_error() {
    let mut s = session(Protocol::V311, None, Limits::default());
    let mut actions = Vec::new();
    let connect = Connect {
        protocol: Protocol::V311,
        clean_start: true,
        keep_alive: 0,
        client_id: "c".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    s.packet(Packet::Connect(Box::new(connect)), 0, &mut actions);
    assert!(sent(&mut s).is_empty(), "3.1.1 closes without a packet");
    assert!(matches!(actions.as_slice(), [Action::Close(_)]));
}

#[test]
fn acks_gathered_before_disconnect_are_proposed_before_the_session_closes() {
    let mut s = session(Protocol::V5, Some(60), Limits::default());
    s.deliver_queued(queued(7, false, Stage::AwaitingAck), 0);
    sent(&mut s);
    let mut actions = Vec::new();
    s.packet(Packet::PubRec(Ack::new(id(7))), 0, &mut actions);
    actions.clear();
    s.deliver_queued(queued(8, false, Stage::AwaitingAck), 0);
    let mut one = queued(8, false, Stage::AwaitingAck);
    one.entry.qos = 1;
    s.deliver_queued(one, 0);
    s.packet(Packet::PubAck(Ack::new(id(8))), 0, &mut actions);
    s.packet(
        Packet::Disconnect(crate::mqtt::Disconnect::new(ReasonCode::Success)),
        0,
        &mut actions,
    );
    assert!(
        matches!(&actions[..], [
        Action::Propose(Command::Ack { packet_ids, .. }, Awaiting::Acks),
        Action::Close(SessionEnd::Disconnect { publish_will: false, .. }),
    ] if packet_ids == &[8]),
        "{actions:?}"
    );
}

#[test]
fn a_publish_reusing_an_id_whose_release_is_pending_is_a_new_message() {
    let mut s = session(Protocol::V311, Some(60), Limits::default());
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::ExactlyOnce, Some(4), "a")),
        0,
        &mut actions,
    );
    let (_, awaiting) = proposals(&mut actions).pop().expect("proposed");
    s.outcome(awaiting, published(1), &mut actions);
    s.packet(Packet::PubRel(Ack::new(id(4))), 0, &mut actions);
    s.packet(
        Packet::Publish(publish(QoS::ExactlyOnce, Some(4), "b")),
        0,
        &mut actions,
    );
    let proposed = proposals(&mut actions);
    assert!(
        matches!(&proposed[..], [
        (Command::Release { packet_id: 4, .. }, _),
        (Command::Publish(p), Awaiting::PubRec(_)),
    ] if p.message.topic == "b"),
        "{proposed:?}"
    );
}
