//! `retained`: the retained message of each of a few topics as a register. A write is a
//! retained QoS 1 PUBLISH of a unique integer, `:ok` on PUBACK; a read is a fresh
//! connection's SUBSCRIBE, whose value is the retained message the broker sends with it
//! (RETAIN flag set), or null if none came within a moment of the SUBACK. Every key is
//! written once before the workers start (a read of null afterwards is an anomaly, not
//! the initial state), and read once more after the faults healed. Judged by the
//! `register` checker (linearizability, per key).
//!
//! Each operation opens its own connection (clean start, no session) to a random node:
//! a connection that fails before the PUBLISH or the SUBSCRIBE went out makes the
//! operation `:fail` (it certainly did not happen); a write whose connection ends before
//! the PUBACK is `:info`, and its process retires.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rumqttc::v5::mqttbytes::QoS;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use crate::client::{Event, Session, SessionOptions};
use crate::history::{OpType, Process};
use crate::nodes::{NodeView, Target};
use crate::recorder::Recorder;

/// How the workload runs.
#[derive(Debug, Clone)]
pub struct RetainedConfig {
    pub keys: usize,
    pub workers: usize,
    /// Pause between one worker's operations.
    pub interval: Duration,
    /// How long an operation may take before it is indeterminate.
    pub op_timeout: Duration,
    /// How long a read waits after the SUBACK for the retained message.
    pub read_wait: Duration,
}

impl Default for RetainedConfig {
    fn default() -> Self {
        RetainedConfig {
            keys: 3,
            workers: 5,
            interval: Duration::from_millis(10),
            op_timeout: Duration::from_secs(5),
            read_wait: Duration::from_secs(2),
        }
    }
}

fn key(k: usize) -> String {
    format!("jepsen/r/{k}")
}

/// What the workers share: the nodes, the recorder, and the counters that keep values
/// and client ids unique.
#[derive(Clone)]
pub struct Registers {
    config: RetainedConfig,
    nodes: NodeView,
    recorder: Recorder,
    values: Arc<AtomicI64>,
    clients: Arc<AtomicU64>,
}

/// How one operation ended: its type, the value read (reads), and why (not `:ok`).
struct Done {
    kind: OpType,
    read: Option<Value>,
    error: Option<String>,
}

impl Done {
    fn failed(kind: OpType, error: impl Into<String>) -> Done {
        Done {
            kind,
            read: None,
            error: Some(error.into()),
        }
    }
}

impl Registers {
    pub fn new(config: RetainedConfig, nodes: NodeView, recorder: Recorder) -> Self {
        Registers {
            config,
            nodes,
            recorder,
            values: Arc::new(AtomicI64::new(1)),
            clients: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes every key once (retrying until a write is acknowledged, within `within`).
    pub async fn seed(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut process = self.recorder.process();
        for k in 0..self.config.keys {
            loop {
                anyhow::ensure!(Instant::now() < deadline, "could not seed {}", key(k));
                match self.write(&mut process, k, self.nodes.random()).await {
                    OpType::Ok => break,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
        Ok(())
    }

    /// Runs the workers until `until`.
    pub async fn run(&self, until: Instant) {
        let workers: Vec<_> = (0..self.config.workers)
            .map(|_| {
                let registers = self.clone();
                tokio::spawn(async move { registers.worker(until).await })
            })
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
    }

    /// Reads every key once more (after the faults healed), retrying failed reads.
    pub async fn final_reads(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut process = self.recorder.process();
        for k in 0..self.config.keys {
            // The view as it is now, in turn, until a read succeeds.
            for node in self.nodes.all().into_iter().cycle() {
                if Instant::now() >= deadline || self.read(&mut process, k, node).await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn worker(&self, until: Instant) {
        let mut process = self.recorder.process();
        while Instant::now() < until {
            let node = self.nodes.random();
            let (k, write) = {
                let mut rng = rand::rng();
                (rng.random_range(0..self.config.keys), rng.random_bool(0.5))
            };
            if write {
                self.write(&mut process, k, node).await;
            } else {
                self.read(&mut process, k, node).await;
            }
            tokio::time::sleep(self.config.interval).await;
        }
    }

    /// One recorded write of a new value to key `k` through `node`.
    async fn write(&self, process: &mut Process, k: usize, node: Target) -> OpType {
        let value = self.values.fetch_add(1, Ordering::Relaxed);
        let op = json!({"key": key(k), "value": value});
        let at = Some(node.name());
        self.recorder
            .invoke(*process, "write", op.clone(), at.clone());
        let done = self.write_once(k, node, value).await;
        self.recorder
            .record(done.kind, *process, "write", op, at, done.error);
        if done.kind == OpType::Info {
            *process = self.recorder.process();
        }
        done.kind
    }

    /// One recorded read of key `k` through `node`; whether it ended `:ok`.
    async fn read(&self, process: &mut Process, k: usize, node: Target) -> bool {
        let op = json!({"key": key(k)});
        let at = Some(node.name());
        self.recorder
            .invoke(*process, "read", op.clone(), at.clone());
        let done = self.read_once(k, node).await;
        let mut value = op;
        if let Some(read) = done.read {
            value["value"] = read;
        }
        self.recorder
            .record(done.kind, *process, "read", value, at, done.error);
        if done.kind == OpType::Info {
            *process = self.recorder.process();
        }
        done.kind == OpType::Ok
    }

    fn session(&self, node: Target) -> Session {
        let n = self.clients.fetch_add(1, Ordering::Relaxed);
        let options = SessionOptions {
            client_id: format!("jepsen-reg-{n}"),
            clean_start: true,
            expiry: 0,
            keep_alive: Duration::from_secs(10),
            reconnect: false,
        };
        Session::start(options, self.nodes.clone(), node)
    }

    async fn write_once(&self, k: usize, node: Target, value: i64) -> Done {
        let deadline = Instant::now() + self.config.op_timeout;
        let mut session = self.session(node);
        let done = match connected(&mut session, deadline).await {
            Err(e) => Done::failed(OpType::Fail, e),
            Ok(()) => {
                let payload = Bytes::from(value.to_string());
                if session
                    .publish(&key(k), QoS::AtLeastOnce, true, payload)
                    .await
                {
                    acknowledged(&mut session, deadline).await
                } else {
                    Done::failed(OpType::Fail, "the client stopped before the PUBLISH")
                }
            }
        };
        session.stop().await;
        done
    }

    async fn read_once(&self, k: usize, node: Target) -> Done {
        let deadline = Instant::now() + self.config.op_timeout;
        let mut session = self.session(node);
        let done = match connected(&mut session, deadline).await {
            Err(e) => Done::failed(OpType::Fail, e),
            Ok(()) => match session.client.subscribe(key(k), QoS::AtLeastOnce).await {
                Err(e) => Done::failed(OpType::Fail, format!("subscribe: {e}")),
                Ok(()) => retained(&mut session, deadline, self.config.read_wait).await,
            },
        };
        session.stop().await;
        done
    }
}

/// Waits for the session's first CONNACK; any other end is an error.
async fn connected(session: &mut Session, deadline: Instant) -> Result<(), String> {
    loop {
        match timeout(deadline - Instant::now(), session.events.recv()).await {
            Err(_) => return Err("connect timed out".into()),
            Ok(None) => return Err("the client stopped".into()),
            Ok(Some(Event::ConnAck { ok: true, .. })) => return Ok(()),
            Ok(Some(Event::ConnAck { ok: false, .. })) => return Err("CONNECT refused".into()),
            Ok(Some(Event::Abandoned { error, .. } | Event::Closed { error, .. })) => {
                return Err(format!("connect: {error}"));
            }
            Ok(Some(_)) => {}
        }
    }
}

/// The outcome of the one PUBLISH sent on this connection.
async fn acknowledged(session: &mut Session, deadline: Instant) -> Done {
    loop {
        match timeout(deadline - Instant::now(), session.events.recv()).await {
            Err(_) => return Done::failed(OpType::Info, "timed out"),
            Ok(None) => return Done::failed(OpType::Info, "the client stopped"),
            Ok(Some(Event::PubAck { ok: true, .. })) => {
                return Done {
                    kind: OpType::Ok,
                    read: None,
                    error: None,
                };
            }
            Ok(Some(Event::PubAck { ok: false, .. })) => {
                return Done::failed(OpType::Fail, "PUBACK with an error");
            }
            Ok(Some(Event::Closed { error, .. } | Event::Abandoned { error, .. })) => {
                return Done::failed(OpType::Info, error);
            }
            Ok(Some(_)) => {}
        }
    }
}

/// The retained message delivered with the subscription: the SUBACK, then the first
/// PUBLISH with the RETAIN flag, or nothing for `wait`. A read the connection did not
/// survive observed nothing: `:fail`.
async fn retained(session: &mut Session, deadline: Instant, wait: Duration) -> Done {
    let mut subscribed_until: Option<Instant> = None;
    loop {
        let until = subscribed_until.unwrap_or(deadline);
        let event = match timeout(
            until.saturating_duration_since(Instant::now()),
            session.events.recv(),
        )
        .await
        {
            Err(_) if subscribed_until.is_some() => {
                return Done {
                    kind: OpType::Ok,
                    read: Some(Value::Null),
                    error: None,
                };
            }
            Err(_) => return Done::failed(OpType::Fail, "no SUBACK in time"),
            Ok(None) => return Done::failed(OpType::Fail, "the client stopped"),
            Ok(Some(event)) => event,
        };
        match event {
            Event::SubAck { ok: true } => subscribed_until = Some(Instant::now() + wait),
            Event::SubAck { ok: false } => return Done::failed(OpType::Fail, "SUBACK refused"),
            Event::Delivery { publish, .. } if publish.retain => {
                let text = String::from_utf8_lossy(&publish.payload).into_owned();
                let read = text
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(text));
                return Done {
                    kind: OpType::Ok,
                    read: Some(read),
                    error: None,
                };
            }
            Event::Closed { error, .. } | Event::Abandoned { error, .. } => {
                return Done::failed(OpType::Fail, error);
            }
            _ => {}
        }
    }
}
