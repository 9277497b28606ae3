//! The session's limits: output a client does not take, a transient session's waiting
//! line, subscriptions per session, and the size of client ids and topics.

use super::*;

#[test]
fn qos0_messages_past_the_clients_output_limit_are_dropped_and_counted() {
    let limits = Limits {
        max_output_buffer: 64,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    let _ = sent(&mut s);
    // Nothing taken by the client: the outbox fills to the limit, the rest is dropped.
    for _ in 0..100 {
        s.deliver_direct(direct(0), 0);
    }
    let kept = s.output_len();
    assert!((64..64 + 16).contains(&kept), "{kept} bytes kept");
    assert!(s.dropped_qos0() > 80, "{} dropped", s.dropped_qos0());
    // QoS 1 is never dropped for output: it waits in its window and line.
    s.deliver_direct(direct(1), 0);
    assert!(s.output_len() > kept);
    // Once the client took its output, QoS 0 flows again; unless the node sheds it.
    let dropped = s.dropped_qos0();
    let _ = sent(&mut s);
    s.deliver_direct(direct(0), 0);
    assert_eq!(s.dropped_qos0(), dropped);
    s.shed_qos0(true);
    s.deliver_direct(direct(0), 0);
    assert_eq!(s.dropped_qos0(), dropped + 1);
    assert!(s.output_backlogged(128), "twice the limit is a backlog");
}

#[test]
fn a_transient_sessions_waiting_line_is_bounded_in_bytes() {
    let limits = Limits {
        max_inflight: 1,
        max_queued_bytes: 3,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, None, limits);
    // One in flight, then one-byte payloads: three wait, each further one drops the
    // oldest waiting.
    for _ in 0..6 {
        s.deliver_direct(direct(1), 0);
    }
    assert_eq!(s.dropped(), 2);
    let big = DirectMessage {
        message: Arc::new(command::Message::new(
            "t",
            Bytes::from_static(b"four"),
            1,
            false,
        )),
        ..direct(1)
    };
    s.deliver_direct(big, 0);
    assert_eq!(
        s.dropped(),
        3,
        "too big for the line: dropped, the waiting ones kept"
    );
}

#[test]
fn filters_past_the_subscription_limit_get_quota_exceeded() {
    let limits = Limits {
        max_subscriptions: 2,
        ..Limits::default()
    };
    let mut s = session(Protocol::V5, Some(60), limits);
    s.set_subscriptions(["held".to_owned()]);
    let _ = sent(&mut s);
    let options = SubscriptionOptions::default();
    let subscribe = |filters: &[&str], packet_id: u16| {
        Packet::Subscribe(Subscribe {
            packet_id: id(packet_id),
            filters: filters.iter().map(|f| ((*f).to_owned(), options)).collect(),
            properties: Default::default(),
        })
    };
    let mut actions = Vec::new();
    // "held" again is no new subscription; "a" is the second; "b" is one too many.
    s.packet(subscribe(&["held", "a", "b"], 1), 0, &mut actions);
    let proposed = proposals(&mut actions);
    assert!(matches!(&proposed[..], [(Command::Subscribe(c), _)]
        if c.filters.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>() == ["held", "a"]));
    s.outcome(
        Awaiting::SubAck(id(1)),
        Ok(Outcome::Subscribed {
            reasons: vec![0, 0x80],
            deliveries: Vec::new(),
        }),
        &mut actions,
    );
    assert!(matches!(&sent(&mut s)[..], [Packet::SubAck(a)] if a.reasons
        == [ReasonCode::Success, ReasonCode::UnspecifiedError, ReasonCode::QuotaExceeded]));
    // The cluster refused "a": it does not count, so "b" fits now.
    s.packet(subscribe(&["b"], 2), 0, &mut actions);
    assert_eq!(proposals(&mut actions).len(), 1);
    // Unsubscribing makes room too.
    s.packet(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(3),
            filters: vec!["held".to_owned()],
            properties: Default::default(),
        }),
        0,
        &mut actions,
    );
    let _ = proposals(&mut actions);
    s.packet(subscribe(&["c"], 4), 0, &mut actions);
    assert_eq!(proposals(&mut actions).len(), 1);
    s.packet(subscribe(&["d"], 5), 0, &mut actions);
    assert!(proposals(&mut actions).is_empty());
    assert!(matches!(&sent(&mut s)[..], [Packet::SubAck(a)] if a.reasons
        == [ReasonCode::QuotaExceeded]));
    assert_eq!(
        s.take_traffic().limits[LimitHit::Subscriptions as usize],
        2,
        "\"b\" the first time, then \"d\""
    );
}

#[test]
fn topics_and_client_ids_over_the_limits_are_refused() {
    let limits = Limits {
        max_client_id_len: 8,
        max_topic_len: 16,
        max_topic_levels: 3,
        ..Limits::default()
    };
    let mut connect = Connect {
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 10,
        client_id: "123456789".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    let refused = accept_connect(&connect, &limits, 1, 0, || "x".into()).unwrap_err();
    assert_eq!(refused.reason, ReasonCode::ClientIdentifierNotValid);
    connect.client_id = "12345678".into();
    assert!(accept_connect(&connect, &limits, 1, 0, || "x".into()).is_ok());

    // A filter too long or too deep is refused in its place; the others go to the log.
    for (protocol, code) in [
        (Protocol::V5, ReasonCode::TopicFilterInvalid),
        (Protocol::V311, ReasonCode::UnspecifiedError),
    ] {
        let mut s = session(protocol, None, limits);
        let mut actions = Vec::new();
        let options = SubscriptionOptions::default;
        let subscribe = Subscribe {
            packet_id: id(4),
            filters: vec![
                ("a/b/c/d".into(), options()),
                ("ok/#".into(), options()),
                ("x".repeat(17), options()),
            ],
            properties: Properties::default(),
        };
        s.packet(Packet::Subscribe(subscribe), 5, &mut actions);
        let (command, awaiting) = proposals(&mut actions).pop().expect("proposed");
        let Command::Subscribe(sub) = command else {
            panic!()
        };
        assert_eq!(sub.filters.len(), 1);
        assert_eq!(sub.filters[0].0, "ok/#");
        let applied = Outcome::Subscribed {
            reasons: vec![0],
            deliveries: Vec::new(),
        };
        s.outcome(awaiting, Ok(applied), &mut actions);
        assert!(
            matches!(&sent(&mut s)[..],
            [Packet::SubAck(a)] if a.reasons == [code, ReasonCode::Success, code]),
            "{protocol:?}"
        );
        assert_eq!(s.take_traffic().limits[LimitHit::Topic as usize], 2);
    }

    let mut s = session(Protocol::V5, None, limits);
    let mut actions = Vec::new();
    s.packet(
        Packet::Publish(publish(QoS::AtLeastOnce, Some(1), "a/b/c/d")),
        5,
        &mut actions,
    );
    assert!(proposals(&mut actions).is_empty(), "nothing proposed");
    assert!(matches!(&sent(&mut s)[..],
        [Packet::Disconnect(d)] if d.reason == ReasonCode::TopicNameInvalid));
}
