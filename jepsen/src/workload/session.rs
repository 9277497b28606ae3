//! `session`: connect / disconnect / takeover cycles over a small pool of client ids.
//! More workers than client ids, each taking a random id, so connections of one client
//! overlap and the newer takes the session over from the older. Each connection asks for
//! a clean start or a resume, with a long session expiry (or, for the last client id only,
//! sometimes none), subscribes to its client's topic, receives for a while, and ends
//! (dropped without DISCONNECT, or taken over by the broker). Publishers send unique payloads to the clients' topics meanwhile.
//! Judged by the `session` checker (`session_present` tells the truth; a taken-over
//! connection receives nothing published after the takeover).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::json;
use tokio::time::{Instant, sleep_until};

use crate::client::{Event, Session, SessionOptions};
use crate::history::{OpType, Process};
use crate::nodes::NodeView;
use crate::recorder::Recorder;
use crate::workload::queue::{self, QueueConfig, record_connection, record_delivery};

/// How the workload runs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Client ids `jepsen-s-<k>`.
    pub clients: usize,
    pub workers: usize,
    /// How long a connection is held once up.
    pub hold: (Duration, Duration),
    pub connect_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            clients: 3,
            workers: 5,
            hold: (Duration::from_millis(300), Duration::from_millis(2500)),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The publishers' side: one topic per client id, QoS 1.
pub fn publishers(config: &SessionConfig) -> QueueConfig {
    QueueConfig {
        qos: 1,
        prefix: "jepsen/s".into(),
        topics: config.clients,
        publishers: 2,
        subscribers: 0,
        interval: Duration::from_millis(20),
        op_timeout: Duration::from_secs(5),
    }
}

/// Runs the workers and the publishers until `until`.
pub async fn run(config: &SessionConfig, nodes: NodeView, recorder: Recorder, until: Instant) {
    let connections = Arc::new(AtomicU64::new(0));
    let mut tasks: Vec<_> = (0..config.workers)
        .map(|_| {
            let (config, nodes, recorder, connections) = (
                config.clone(),
                nodes.clone(),
                recorder.clone(),
                connections.clone(),
            );
            tokio::spawn(async move { worker(&config, nodes, recorder, connections, until).await })
        })
        .collect();
    let publishing = publishers(config);
    tasks.push(tokio::spawn(async move {
        queue::publish(&publishing, nodes, recorder, until).await
    }));
    for task in tasks {
        let _ = task.await;
    }
}

async fn worker(
    config: &SessionConfig,
    nodes: NodeView,
    recorder: Recorder,
    connections: Arc<AtomicU64>,
    until: Instant,
) {
    let mut process = recorder.process();
    while Instant::now() < until {
        let node = nodes.random();
        let (k, clean_start, expiry, hold) = {
            let mut rng = rand::rng();
            let hold = rng.random_range(config.hold.0.as_millis()..=config.hold.1.as_millis());
            let k = rng.random_range(0..config.clients);
            // Only the last client id ever asks for no expiry: a connect that might end
            // the session leaves the other clients' resumes unjudgeable.
            let expiry = if k + 1 == config.clients && rng.random_bool(0.5) {
                0
            } else {
                3600
            };
            (
                k,
                rng.random_bool(0.25),
                expiry,
                Duration::from_millis(hold as u64),
            )
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let options = SessionOptions {
            client_id: format!("jepsen-s-{k}"),
            clean_start,
            expiry,
            keep_alive: Duration::from_secs(10),
            reconnect: false,
        };
        let session = Session::start(options.clone(), nodes.clone(), node);
        let ends = Instant::now() + hold;
        connection(config, session, &options, &recorder, &mut process, ends).await;
        let pause = Duration::from_millis(rand::rng().random_range(0..200));
        tokio::time::sleep(pause).await;
    }
}

/// One connection, from its connect to its end (recorded).
async fn connection(
    config: &SessionConfig,
    mut session: Session,
    options: &SessionOptions,
    recorder: &Recorder,
    process: &mut Process,
    ends: Instant,
) {
    let connect_by = Instant::now() + config.connect_timeout;
    let mut conn = None;
    let mut connecting = None;
    let mut subscribed = false;
    loop {
        let deadline = if conn.is_some() { ends } else { connect_by };
        let event = tokio::select! {
            event = session.events.recv() => event,
            () = sleep_until(deadline) => None,
        };
        let Some(event) = event else {
            // Held long enough, or the connect hung: the connection is dropped.
            break;
        };
        match &event {
            Event::Delivery { conn, publish } => {
                record_delivery(recorder, *process, &options.client_id, *conn, publish);
                continue;
            }
            Event::ConnAck {
                ok: true, conn: c, ..
            } => conn = Some(*c),
            Event::Connecting { conn: c, .. } => connecting = Some(*c),
            _ => {}
        }
        let ended = matches!(
            event,
            Event::Closed { .. } | Event::Abandoned { .. } | Event::ConnAck { ok: false, .. }
        );
        if record_connection(recorder, *process, options, &event) {
            *process = recorder.process();
        }
        if ended {
            session.stop().await;
            return;
        }
        if conn.is_some() && !subscribed {
            subscribed = true;
            let topic = format!("jepsen/s/{}", &options.client_id["jepsen-s-".len()..]);
            // Not recorded as an operation: the checker judges connects and deliveries.
            let _ = session.client.subscribe(topic, QoS::AtLeastOnce).await;
        }
    }
    match conn {
        Some(conn) => {
            let value = json!({"client": options.client_id, "conn": conn});
            recorder.invoke(*process, "disconnect", value.clone(), None);
            session.stop().await;
            recorder.record(OpType::Ok, *process, "disconnect", value, None, None);
        }
        None => {
            session.stop().await;
            // The connect never answered: it may still take effect.
            let value = json!({"client": options.client_id, "clean_start": options.clean_start,
                               "expiry": options.expiry, "conn": connecting});
            recorder.record(
                OpType::Info,
                *process,
                "connect",
                value,
                None,
                Some("no CONNACK in time".into()),
            );
            *process = recorder.process();
        }
    }
}
