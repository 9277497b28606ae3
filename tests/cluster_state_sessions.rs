//! The replicated state machine's session rules on the real store: resume and fresh start,
//! takeover, epoch fencing, transient sessions, wills, session expiry, the clock bound,
//! `NodeDown`, restart and the notifier.

mod cluster_state_support;

use std::sync::{Arc, Mutex};

use cluster_state_support::*;
use raftmq::cluster::command::{
    Command, Connect, Delivery, Disconnect, Outcome, Takeover, WillMessage,
};
use raftmq::cluster::state::{BrokerState, MAX_CLOCK_STEP, NODE_DOWN_LIMIT, TICK_LIMIT};

fn delivered_to(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|delivery| match delivery {
            Delivery::Queued { target, .. } | Delivery::Direct { target, .. } => {
                target.client_id.clone()
            }
        })
        .collect()
}

#[tokio::test]
async fn a_session_resumes_with_session_present_and_a_fresh_start_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let first = connect(&mut node, persistent("c", 1)).await;
    node.one(subscribe("c", first, &[("a/#", options(1))]))
        .await;
    node.one(disconnect("c", first, false, T0)).await;
    node.one(broker_publish(message("a/b", "x", 1))).await;

    let outcome = node.one(Command::Connect(persistent("c", 2))).await;
    let Outcome::Connected {
        epoch: second,
        session_present,
        taken_over,
        resend,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(session_present);
    assert!(second > first);
    assert_eq!(taken_over, None, "the session was offline");
    assert_eq!(
        resend.len(),
        1,
        "the message queued while offline is in flight"
    );
    assert_eq!(node.reader().subscriptions("c").unwrap().len(), 1);

    let fresh = node
        .one(Command::Connect(Connect {
            clean_start: true,
            ..persistent("c", 2)
        }))
        .await;
    let Outcome::Connected {
        session_present,
        resend,
        ..
    } = fresh
    else {
        panic!("{fresh:?}")
    };
    assert!(!session_present);
    assert!(resend.is_empty());
    assert!(node.reader().subscriptions("c").unwrap().is_empty());
    assert!(node.reader().in_flight("c").unwrap().is_empty());
    assert_eq!(node.reader().stored_messages().unwrap(), 0);
    assert_eq!(node.reader().session_count().unwrap(), 1);
}

#[tokio::test]
async fn a_second_connect_takes_the_session_over_and_fences_the_old_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let old = connect(&mut node, persistent("c", 1)).await;
    let outcome = node.one(Command::Connect(persistent("c", 2))).await;
    let Outcome::Connected {
        epoch: new,
        taken_over,
        session_present,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(session_present);
    assert_eq!(
        taken_over,
        Some(Takeover {
            node: 1,
            epoch: old
        })
    );
    assert_eq!(node.reader().session("c").unwrap().unwrap().owner, Some(2));
    assert_eq!(
        node.one(subscribe("c", old, &[("a", options(1))])).await,
        Outcome::Fenced {
            current_epoch: Some(new)
        }
    );
}

#[tokio::test]
async fn every_client_command_with_a_stale_epoch_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let old = connect(&mut node, persistent("c", 1)).await;
    let current = connect(&mut node, persistent("c", 1)).await;
    let fenced = Outcome::Fenced {
        current_epoch: Some(current),
    };
    let stale = vec![
        disconnect("c", old, true, T0),
        subscribe("c", old, &[("a", options(1))]),
        unsubscribe("c", old, &["a"]),
        client_publish("c", old, 1, message("a", "x", 1)),
        ack("c", old, &[1]),
        Command::Received {
            client_id: "c".into(),
            epoch: old,
            packet_id: 1,
        },
        Command::Release {
            client_id: "c".into(),
            epoch: old,
            packet_id: 1,
        },
    ];
    let before = node.tables();
    for outcome in node.apply(stale).await {
        assert_eq!(outcome, fenced);
    }
    assert_eq!(node.tables(), before, "fenced commands change nothing");

    // An offline session has no connection: its last epoch is fenced too.
    node.one(disconnect("c", current, false, T0)).await;
    assert_eq!(
        node.one(subscribe("c", current, &[("a", options(1))]))
            .await,
        fenced
    );
    assert_eq!(
        node.one(ack("nobody", 1, &[1])).await,
        Outcome::Fenced {
            current_epoch: None
        }
    );
}

#[tokio::test]
async fn epochs_are_never_reused_by_a_later_session_of_the_same_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let first = connect(&mut node, transient("c", 1)).await;
    node.one(disconnect("c", first, false, T0)).await;
    assert_eq!(node.reader().session("c").unwrap(), None);
    let second = connect(&mut node, transient("c", 1)).await;
    assert_ne!(first, second);
    assert!(matches!(
        node.one(subscribe("c", first, &[("a", options(0))])).await,
        Outcome::Fenced { .. }
    ));
}

#[tokio::test]
async fn transient_sessions_get_direct_deliveries_and_end_with_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = connect(&mut node, transient("t", 3)).await;
    node.one(subscribe("t", epoch, &[("a", options(2))])).await;
    let outcome = node.one(broker_publish(message("a", "x", 1))).await;
    let Outcome::Published {
        matched,
        deliveries,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(matched, 1);
    let [Delivery::Direct { target, qos, .. }] = deliveries.as_slice() else {
        panic!("{deliveries:?}")
    };
    assert_eq!(
        (target.node, target.client_id.as_str(), target.epoch),
        (3, "t", epoch)
    );
    assert_eq!(*qos, 1);
    assert!(node.reader().queued("t").unwrap().is_empty());
    assert!(node.reader().in_flight("t").unwrap().is_empty());
    assert_eq!(
        node.reader().stored_messages().unwrap(),
        0,
        "nothing stored for it"
    );

    let outcome = node.one(disconnect("t", epoch, false, T0)).await;
    assert_eq!(
        outcome,
        Outcome::Disconnected {
            session_ended: true,
            deliveries: Vec::new()
        }
    );
    assert_eq!(node.reader().session("t").unwrap(), None);
    assert_eq!(node.reader().session_count().unwrap(), 0);
    assert!(node.reader().subscriptions("t").unwrap().is_empty());
    let outcome = node.one(broker_publish(message("a", "x", 1))).await;
    assert!(matches!(outcome, Outcome::Published { matched: 0, .. }));
}

#[tokio::test]
async fn a_will_is_published_on_abnormal_close_and_dropped_on_normal_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let watcher = connect(&mut node, transient("w", 1)).await;
    node.one(subscribe("w", watcher, &[("wills/#", options(1))]))
        .await;

    let polite = connect(
        &mut node,
        Connect {
            will: Some(will("wills/polite", 0)),
            ..persistent("polite", 1)
        },
    )
    .await;
    let outcome = node.one(disconnect("polite", polite, false, T0)).await;
    assert!(
        matches!(outcome, Outcome::Disconnected { ref deliveries, .. } if deliveries.is_empty())
    );
    assert_eq!(node.reader().will("polite").unwrap(), None);

    let rude = connect(
        &mut node,
        Connect {
            will: Some(will("wills/rude", 0)),
            ..persistent("rude", 1)
        },
    )
    .await;
    let outcome = node.one(disconnect("rude", rude, true, T0)).await;
    let Outcome::Disconnected {
        session_ended: false,
        deliveries,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(delivered_to(&deliveries), ["w"]);
}

#[tokio::test]
async fn a_delayed_will_waits_and_a_reconnect_before_its_time_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let watcher = connect(&mut node, persistent("w", 1)).await;
    node.one(subscribe("w", watcher, &[("wills/#", options(1))]))
        .await;

    for (client, reconnect) in [("late", false), ("back", true)] {
        let epoch = connect(
            &mut node,
            Connect {
                will: Some(will(&format!("wills/{client}"), 10)),
                ..persistent(client, 1)
            },
        )
        .await;
        let outcome = node.one(disconnect(client, epoch, true, T0)).await;
        assert!(
            matches!(outcome, Outcome::Disconnected { ref deliveries, .. } if deliveries.is_empty())
        );
        assert_eq!(
            node.reader().session(client).unwrap().unwrap().will_due,
            Some(T0 + 10_000)
        );
        if reconnect {
            connect(&mut node, persistent(client, 2)).await;
        }
    }
    let outcome = node.one(Command::Tick { now: T0 + 5_000 }).await;
    assert!(matches!(
        outcome,
        Outcome::Ticked {
            wills_published: 0,
            ..
        }
    ));
    let outcome = node.one(Command::Tick { now: T0 + 10_000 }).await;
    let Outcome::Ticked {
        wills_published,
        deliveries,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        wills_published, 1,
        "only the will of the client that stayed away"
    );
    assert_eq!(delivered_to(&deliveries), ["w"]);
    let queued = node.reader().in_flight("w").unwrap();
    let topic = node
        .reader()
        .message(queued[0].message_id.unwrap())
        .unwrap()
        .unwrap()
        .message
        .topic;
    assert_eq!(topic, "wills/late");
    assert_eq!(node.reader().will("back").unwrap(), None);
}

#[tokio::test]
async fn takeover_publishes_the_old_connections_will_only_without_delay() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let watcher = connect(&mut node, transient("w", 1)).await;
    node.one(subscribe("w", watcher, &[("wills/#", options(1))]))
        .await;
    for (client, delay, published) in [("v311", 0, true), ("delayed", 30, false)] {
        connect(
            &mut node,
            Connect {
                will: Some(will(&format!("wills/{client}"), delay)),
                ..persistent(client, 1)
            },
        )
        .await;
        let outcome = node.one(Command::Connect(persistent(client, 2))).await;
        let Outcome::Connected { deliveries, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(!deliveries.is_empty(), published, "{client}");
    }
}

#[tokio::test]
async fn an_offline_session_expires_on_a_tick_after_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let watcher = connect(&mut node, persistent("w", 1)).await;
    node.one(subscribe("w", watcher, &[("wills/#", options(1))]))
        .await;
    let epoch = connect(
        &mut node,
        Connect {
            session_expiry: 30,
            // The will's delay outlasts the session: it goes out when the session ends.
            will: Some(will("wills/c", 3600)),
            ..persistent("c", 1)
        },
    )
    .await;
    node.one(subscribe("c", epoch, &[("a", options(1))])).await;
    node.one(disconnect("c", epoch, true, T0)).await;
    assert_eq!(
        node.reader().session("c").unwrap().unwrap().expires_at,
        Some(T0 + 30_000)
    );

    let outcome = node.one(Command::Tick { now: T0 + 29_999 }).await;
    assert!(
        matches!(outcome, Outcome::Ticked { ref expired_sessions, .. } if expired_sessions.is_empty())
    );
    assert!(node.reader().session("c").unwrap().is_some());

    let outcome = node.one(Command::Tick { now: T0 + 30_000 }).await;
    let Outcome::Ticked {
        expired_sessions,
        deliveries,
        wills_published,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(expired_sessions, ["c"]);
    assert_eq!(
        wills_published, 0,
        "published by the session's end, not as due"
    );
    assert_eq!(delivered_to(&deliveries), ["w"]);
    assert_eq!(node.reader().session("c").unwrap(), None);
    assert!(node.reader().subscriptions("c").unwrap().is_empty());
    let outcome = node.one(broker_publish(message("a", "x", 1))).await;
    assert!(matches!(outcome, Outcome::Published { matched: 0, .. }));
}

#[tokio::test]
async fn one_tick_moves_the_clock_a_bounded_step_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let epoch = connect(
        &mut node,
        Connect {
            session_expiry: 150,
            ..persistent("c", 1)
        },
    )
    .await;
    node.one(disconnect("c", epoch, false, T0)).await;

    let day = 24 * 3600 * 1000;
    let clock = |outcome: Outcome| match outcome {
        Outcome::Ticked { clock, .. } => clock,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        clock(node.one(Command::Tick { now: T0 + day }).await),
        T0 + MAX_CLOCK_STEP
    );
    assert!(
        node.reader().session("c").unwrap().is_some(),
        "not expired by a jump"
    );
    assert_eq!(
        clock(node.one(Command::Tick { now: T0 }).await),
        T0 + MAX_CLOCK_STEP
    );
    assert_eq!(
        clock(node.one(Command::Tick { now: T0 + day }).await),
        T0 + 2 * MAX_CLOCK_STEP
    );
    assert!(node.reader().session("c").unwrap().is_some());
    node.one(Command::Tick { now: T0 + day }).await;
    assert_eq!(
        node.reader().session("c").unwrap(),
        None,
        "expired at 150 s"
    );
}

#[tokio::test]
async fn node_down_takes_its_sessions_offline_and_leaves_others_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let watcher = connect(&mut node, persistent("w", 2)).await;
    node.one(subscribe("w", watcher, &[("wills/#", options(1))]))
        .await;
    let kept = connect(
        &mut node,
        Connect {
            will: Some(will("wills/kept", 0)),
            ..persistent("kept", 1)
        },
    )
    .await;
    connect(&mut node, transient("gone", 1)).await;

    let outcome = node.one(Command::NodeDown { node: 1, now: T0 }).await;
    let Outcome::NodeDowned {
        sessions,
        remaining,
        deliveries,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!((sessions, remaining), (2, false));
    assert_eq!(
        delivered_to(&deliveries),
        ["w"],
        "the will of the dropped connection"
    );
    let session = node.reader().session("kept").unwrap().unwrap();
    assert_eq!(session.owner, None);
    assert_eq!(node.reader().session("gone").unwrap(), None);
    assert_eq!(node.reader().session("w").unwrap().unwrap().owner, Some(2));
    assert!(matches!(
        node.one(subscribe("kept", kept, &[("a", options(1))]))
            .await,
        Outcome::Fenced { .. }
    ));
}

#[tokio::test]
async fn node_down_does_bounded_work_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let connects = (0..=NODE_DOWN_LIMIT)
        .map(|i| Command::Connect(transient(&format!("c{i}"), 7)))
        .collect();
    node.apply(connects).await;
    let outcome = node.one(Command::NodeDown { node: 7, now: T0 }).await;
    assert!(
        matches!(outcome, Outcome::NodeDowned { remaining: true, sessions, .. } if sessions as usize == NODE_DOWN_LIMIT)
    );
    let outcome = node.one(Command::NodeDown { node: 7, now: T0 }).await;
    assert!(matches!(
        outcome,
        Outcome::NodeDowned {
            remaining: false,
            sessions: 1,
            ..
        }
    ));
    assert_eq!(node.reader().session_count().unwrap(), 0);
}

#[tokio::test]
async fn a_v5_disconnect_may_change_the_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = connect(&mut node, persistent("c", 1)).await;
    let outcome = node
        .one(Command::Disconnect(Disconnect {
            client_id: "c".into(),
            epoch,
            publish_will: false,
            session_expiry: Some(0),
            now: T0,
        }))
        .await;
    assert!(matches!(
        outcome,
        Outcome::Disconnected {
            session_ended: true,
            ..
        }
    ));
    assert_eq!(node.reader().session("c").unwrap(), None);
}

#[tokio::test]
async fn the_subscription_index_is_rebuilt_when_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let epoch = connect(&mut node, persistent("c", 1)).await;
    node.one(subscribe(
        "c",
        epoch,
        &[("a/+", options(1)), ("$share/g/b", options(1))],
    ))
    .await;
    node.close();

    let mut node = Node::open(dir.path()).await;
    for topic in ["a/x", "b"] {
        let outcome = node.one(broker_publish(message(topic, "x", 1))).await;
        assert!(
            matches!(outcome, Outcome::Published { matched: 1, .. }),
            "{topic}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn the_notifier_sees_every_outcome_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let state = BrokerState::new().with_notifier(Box::new(move |outcome| {
        sink.lock().unwrap().push(outcome.clone());
    }));
    let mut node = Node::open_with(dir.path(), state).await;
    let outcomes = node
        .apply_batches(vec![
            vec![
                Command::Connect(persistent("c", 1)),
                Command::Tick { now: T0 },
            ],
            vec![broker_publish(message("a", "x", 1))],
        ])
        .await
        .concat();
    assert_eq!(*seen.lock().unwrap(), outcomes);
    assert_eq!(outcomes.len(), 3);
}

#[tokio::test]
async fn invalid_commands_are_rejected_without_effect() {
    use raftmq::cluster::command::Rejection;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let before = node.tables();
    let outcomes = node
        .apply(vec![
            Command::Connect(Connect {
                protocol: 3,
                ..persistent("c", 1)
            }),
            Command::Connect(Connect {
                receive_maximum: 0,
                ..persistent("c", 1)
            }),
            Command::Connect(Connect {
                will: Some(WillMessage {
                    delay: 0,
                    message: message("a/+", "x", 1),
                }),
                ..persistent("c", 1)
            }),
            broker_publish(message("a", "x", 0)),
            broker_publish(message("a", "x", 3)),
            broker_publish(message("a/#", "x", 1)),
        ])
        .await;
    let reasons: Vec<_> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Rejected { reason } => *reason,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            Rejection::UnknownProtocol,
            Rejection::ZeroReceiveMaximum,
            Rejection::InvalidTopic,
            Rejection::Qos0Publish,
            Rejection::InvalidQos,
            Rejection::InvalidTopic,
        ]
    );
    assert_eq!(node.tables(), before);
}

#[tokio::test]
async fn one_tick_expires_a_bounded_number_of_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    node.one(Command::Tick { now: T0 }).await;
    let clients: Vec<String> = (0..=TICK_LIMIT).map(|i| format!("c{i}")).collect();
    let connects = clients
        .iter()
        .map(|client| {
            Command::Connect(Connect {
                session_expiry: 1,
                ..persistent(client, 1)
            })
        })
        .collect();
    node.apply(connects).await;
    let disconnects = clients
        .iter()
        .map(|client| {
            let epoch = node.reader().session(client).unwrap().unwrap().epoch;
            disconnect(client, epoch, false, T0)
        })
        .collect();
    node.apply(disconnects).await;
    let expired = |outcome: Outcome| match outcome {
        Outcome::Ticked {
            expired_sessions, ..
        } => expired_sessions.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        expired(node.one(Command::Tick { now: T0 + 1_000 }).await),
        TICK_LIMIT
    );
    assert_eq!(
        expired(node.one(Command::Tick { now: T0 + 1_000 }).await),
        1
    );
    assert_eq!(node.reader().session_count().unwrap(), 0);
}

/// The operator's `Evict`: without `remove_session` it names the connection to close and
/// changes nothing; with it the session, its subscriptions, queue and will are gone (the
/// will not published), online or offline; an unknown client is reported as such.
#[tokio::test]
async fn evict_closes_the_connection_and_removes_the_session_if_asked() {
    use raftmq::cluster::command::Evict;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).await;
    let evict = |client: &str, remove_session: bool| {
        Command::Evict(Evict {
            client_id: client.into(),
            remove_session,
            now: T0,
        })
    };
    let online = connect(
        &mut node,
        Connect {
            will: Some(will("w", 0)),
            ..persistent("c", 1)
        },
    )
    .await;
    node.one(subscribe("c", online, &[("a/#", options(1))]))
        .await;
    // Subscribed to the will's topic: a published will would be delivered to it.
    let watcher = connect(&mut node, persistent("watcher", 1)).await;
    node.one(subscribe("watcher", watcher, &[("w", options(1))]))
        .await;
    let before = node.tables();
    let outcome = node.one(evict("c", false)).await;
    assert_eq!(
        outcome,
        Outcome::Evicted {
            client_id: "c".into(),
            existed: true,
            connection: Some(Takeover {
                node: 1,
                epoch: online
            }),
            deliveries: Vec::new(),
        }
    );
    assert_eq!(node.tables(), before, "a kick alone changes no state");

    let outcome = node.one(evict("c", true)).await;
    let Outcome::Evicted {
        existed: true,
        connection: Some(_),
        deliveries,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(deliveries.is_empty(), "no will published: {deliveries:?}");
    let reader = node.reader();
    assert_eq!(reader.session("c").unwrap(), None);
    assert!(reader.subscriptions("c").unwrap().is_empty());
    assert_eq!(reader.will("c").unwrap(), None);
    // Its connection's later Disconnect is fenced.
    let late = node.one(disconnect("c", online, true, T0)).await;
    assert!(matches!(late, Outcome::Fenced { .. }), "{late:?}");

    let offline = connect(&mut node, persistent("d", 2)).await;
    node.one(disconnect("d", offline, false, T0)).await;
    let outcome = node.one(evict("d", true)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Evicted {
                existed: true,
                connection: None,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(node.reader().session("d").unwrap(), None);
    assert_eq!(node.reader().session_count().unwrap(), 1, "the watcher's");

    let outcome = node.one(evict("nobody", true)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Evicted {
                existed: false,
                connection: None,
                ..
            }
        ),
        "{outcome:?}"
    );
}
