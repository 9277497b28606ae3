//! `queue-qos1` / `queue-qos2`: publishers send unique payloads `"<publisher> <seq>"` to
//! several topics, one operation at a time each; persistent subscribers (clean start off,
//! long session expiry) receive everything under `jepsen/q/#`, move to a random node from
//! time to time, and drain at the end. Judged by the `queue` and `order` checkers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::json;
use tokio::time::{Instant, sleep_until, timeout};

use crate::client::{Event, Session, SessionOptions};
use crate::history::OpType;
use crate::nodes::NodeView;
use crate::recorder::Recorder;

/// How the workload runs.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub qos: u8,
    /// The publishers' topics are `<prefix>/<n>`.
    pub prefix: String,
    pub topics: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// Pause between one publisher's operations.
    pub interval: Duration,
    /// How long an operation may take before it is indeterminate.
    pub op_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            qos: 1,
            prefix: "jepsen/q".into(),
            topics: 4,
            publishers: 4,
            subscribers: 3,
            interval: Duration::from_millis(20),
            op_timeout: Duration::from_secs(5),
        }
    }
}

fn qos_of(qos: u8) -> QoS {
    if qos == 2 {
        QoS::ExactlyOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// The running subscribers, to be drained once the publishers and the faults stopped.
pub struct Subscribers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_churn: tokio::sync::watch::Sender<bool>,
    last_delivery: Arc<std::sync::Mutex<Instant>>,
}

/// Connects and subscribes every subscriber (recorded), then keeps them receiving.
pub async fn start_subscribers(
    config: &QueueConfig,
    nodes: NodeView,
    recorder: Recorder,
) -> anyhow::Result<Subscribers> {
    let (stop_churn, churn_rx) = tokio::sync::watch::channel(false);
    let last_delivery = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut tasks = Vec::new();
    for k in 0..config.subscribers {
        let options = SessionOptions {
            client_id: format!("jepsen-sub-{k}"),
            clean_start: false,
            expiry: 3600,
            keep_alive: Duration::from_secs(10),
            reconnect: true,
        };
        let mut session = Session::start(options.clone(), nodes.clone(), nodes.nth(k));
        let mut process = recorder.process();
        // Subscribe once, on the first connection (the session keeps it).
        let mut connected = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while connected.is_none() {
            let event = timeout(deadline - Instant::now(), session.events.recv())
                .await
                .map_err(|_| anyhow::anyhow!("subscriber {k} could not connect"))?
                .ok_or_else(|| anyhow::anyhow!("subscriber {k} stopped"))?;
            if record_connection(&recorder, process, &options, &event) {
                process = recorder.process();
            }
            if let Event::ConnAck { ok: true, conn, .. } = event {
                connected = Some(conn);
            }
        }
        let filter = "jepsen/q/#";
        let value = json!({"client": options.client_id, "filter": filter, "qos": config.qos});
        recorder.invoke(process, "subscribe", value.clone(), None);
        session
            .client
            .subscribe(filter, qos_of(config.qos))
            .await
            .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
        let acked = loop {
            match timeout(Duration::from_secs(10), session.events.recv()).await {
                Ok(Some(Event::SubAck { ok })) => break ok,
                Ok(Some(other)) => {
                    if record_connection(&recorder, process, &options, &other) {
                        process = recorder.process();
                    }
                }
                _ => break false,
            }
        };
        let kind = if acked { OpType::Ok } else { OpType::Fail };
        recorder.record(kind, process, "subscribe", value, None, None);
        anyhow::ensure!(acked, "subscriber {k}: SUBACK refused");
        tasks.push(tokio::spawn(receive(
            session,
            options,
            nodes.clone(),
            recorder.clone(),
            churn_rx.clone(),
            last_delivery.clone(),
        )));
    }
    Ok(Subscribers {
        tasks,
        stop_churn,
        last_delivery,
    })
}

/// Records connection events of a session (connect invoke / ok / fail / info,
/// disconnects); `true` when the process must retire (an indeterminate connect).
pub(crate) fn record_connection(
    recorder: &Recorder,
    process: crate::history::Process,
    options: &SessionOptions,
    event: &Event,
) -> bool {
    let base = |conn: u64| {
        json!({"client": options.client_id, "clean_start": options.clean_start,
               "expiry": options.expiry, "conn": conn})
    };
    match event {
        Event::Connecting { conn, node } => {
            recorder.invoke(process, "connect", base(*conn), Some(node.name()));
        }
        Event::ConnAck {
            conn,
            session_present,
            ok,
        } => {
            let mut value = base(*conn);
            value["session_present"] = json!(session_present);
            let kind = if *ok { OpType::Ok } else { OpType::Fail };
            recorder.record(kind, process, "connect", value, None, None);
        }
        Event::Closed { conn, error } => {
            let value = json!({"client": options.client_id, "conn": conn});
            recorder.invoke(process, "disconnect", value.clone(), None);
            recorder.record(
                OpType::Ok,
                process,
                "disconnect",
                value,
                None,
                Some(error.clone()),
            );
        }
        Event::Abandoned { conn, error } => {
            recorder.record(
                OpType::Info,
                process,
                "connect",
                base(*conn),
                None,
                Some(error.clone()),
            );
            return true;
        }
        _ => {}
    }
    false
}

async fn receive(
    mut session: Session,
    options: SessionOptions,
    nodes: NodeView,
    recorder: Recorder,
    mut stop_churn: tokio::sync::watch::Receiver<bool>,
    last_delivery: Arc<std::sync::Mutex<Instant>>,
) {
    let mut process = recorder.process();
    let mut next_move = Instant::now() + churn_interval();
    loop {
        let churning = !*stop_churn.borrow();
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { return };
                if let Event::Delivery { conn, publish } = &event {
                    *last_delivery.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                    record_delivery(&recorder, process, &options.client_id, *conn, publish);
                } else if record_connection(&recorder, process, &options, &event) {
                    process = recorder.process();
                }
            }
            _ = sleep_until(next_move), if churning => {
                session.move_to(nodes.random());
                next_move = Instant::now() + churn_interval();
            }
            changed = stop_churn.changed(), if churning => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

fn churn_interval() -> Duration {
    Duration::from_millis(rand::rng().random_range(3000..8000))
}

pub(crate) fn record_delivery(
    recorder: &Recorder,
    process: crate::history::Process,
    client: &str,
    conn: u64,
    publish: &rumqttc::v5::mqttbytes::v5::Publish,
) {
    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
    let payload = String::from_utf8_lossy(&publish.payload).into_owned();
    let mut parts = payload.split(' ').map(str::parse::<u64>);
    let (publisher, seq) = match (parts.next(), parts.next()) {
        (Some(Ok(p)), Some(Ok(s))) => (json!(p), json!(s)),
        _ => (json!(null), json!(payload)),
    };
    let qos = match publish.qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    };
    let value = json!({"client": client, "topic": topic, "publisher": publisher, "seq": seq,
                       "qos": qos, "dup": publish.dup, "conn": conn});
    recorder.invoke(process, "receive", value.clone(), None);
    recorder.record(OpType::Ok, process, "receive", value, None, None);
}

impl Subscribers {
    /// Stops moving the subscribers and waits until nothing was delivered for `quiet`
    /// (at most until `deadline`); then stops them.
    pub async fn drain(self, quiet: Duration, deadline: Instant) {
        let _ = self.stop_churn.send(true);
        loop {
            let last = *self.last_delivery.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if now >= deadline || now.duration_since(last) >= quiet {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Runs the publishers until `until`.
pub async fn publish(config: &QueueConfig, nodes: NodeView, recorder: Recorder, until: Instant) {
    let tasks: Vec<_> = (0..config.publishers)
        .map(|j| {
            tokio::spawn(publisher(
                j as u64,
                config.clone(),
                nodes.clone(),
                recorder.clone(),
                until,
            ))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

async fn publisher(
    number: u64,
    config: QueueConfig,
    nodes: NodeView,
    recorder: Recorder,
    until: Instant,
) {
    // Clean sessions: after an indeterminate publish nothing is resent behind the
    // harness's back, so every acknowledgement belongs to the operation waiting for it.
    let options = SessionOptions {
        client_id: format!("jepsen-pub-{number}"),
        clean_start: true,
        expiry: 0,
        keep_alive: Duration::from_secs(10),
        reconnect: true,
    };
    let first = nodes.nth(number as usize);
    let mut session = Session::start(options.clone(), nodes.clone(), first);
    let mut process = recorder.process();
    let mut node = first;
    let mut connected = false;
    let mut seq = 0u64;
    while Instant::now() < until {
        if !connected {
            match timeout(config.op_timeout, session.events.recv()).await {
                Ok(Some(Event::ConnAck { ok: true, .. })) => connected = true,
                Ok(Some(Event::Connecting { node: n, .. })) => node = n,
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => return,
            }
            continue;
        }
        seq += 1;
        let topic = format!(
            "{}/{}",
            config.prefix,
            rand::rng().random_range(0..config.topics)
        );
        let value = json!({"client": options.client_id, "publisher": number, "topic": topic,
                           "seq": seq, "qos": config.qos});
        let node_name = Some(node.name());
        recorder.invoke(process, "publish", value.clone(), node_name.clone());
        let payload = Bytes::from(format!("{number} {seq}"));
        let outcome = if session
            .publish(&topic, qos_of(config.qos), false, payload)
            .await
        {
            await_ack(&mut session, config.qos, config.op_timeout).await
        } else {
            Outcome::Info("the client stopped".into())
        };
        match outcome {
            Outcome::Ok => recorder.record(OpType::Ok, process, "publish", value, node_name, None),
            Outcome::Fail(e) => {
                recorder.record(OpType::Fail, process, "publish", value, node_name, Some(e))
            }
            Outcome::Info(e) => {
                recorder.record(OpType::Info, process, "publish", value, node_name, Some(e));
                // Retired, as in Jepsen; the client starts over on a random node.
                process = recorder.process();
                connected = false;
                session.move_to(nodes.random());
            }
        }
        tokio::time::sleep(config.interval).await;
    }
    session.stop().await;
}

enum Outcome {
    Ok,
    Fail(String),
    Info(String),
}

/// Waits for the acknowledgement of the PUBLISH just queued.
async fn await_ack(session: &mut Session, qos: u8, within: Duration) -> Outcome {
    let deadline = Instant::now() + within;
    let mut pkid = None;
    loop {
        let event = match timeout(deadline - Instant::now(), session.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => return Outcome::Info("the client stopped".into()),
            Err(_) => return Outcome::Info("timed out".into()),
        };
        match event {
            Event::Sent { pkid: id } if pkid.is_none() => pkid = Some(id),
            Event::PubAck { pkid: id, ok } if Some(id) == pkid && qos == 1 => {
                return if ok {
                    Outcome::Ok
                } else {
                    Outcome::Fail("PUBACK with an error".into())
                };
            }
            Event::PubRec {
                pkid: id,
                ok: false,
            } if Some(id) == pkid => {
                return Outcome::Fail("PUBREC with an error".into());
            }
            Event::PubComp { pkid: id } if Some(id) == pkid && qos == 2 => return Outcome::Ok,
            Event::Closed { error, .. } => return Outcome::Info(error),
            Event::ConnAck { ok: false, .. } => return Outcome::Info("reconnect refused".into()),
            Event::Abandoned { error, .. } => return Outcome::Info(error),
            _ => {}
        }
    }
}
