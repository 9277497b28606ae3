//! The `pub`, `sub` and `pubsub` runs: connect the subscribers and wait for their SUBACKs
//! (SUBACK means routed, so everything published afterwards is owed to them), connect the
//! publishers, start them together, stop them at the deadline, let the subscribers drain,
//! and turn what every task saw into the summary. Every wait is bounded: the run ends
//! even when the broker stops answering.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use super::BenchError;
use super::args::{ClientArgs, FlowPlan};
use super::connection::{Connection, Endpoint, Phase};
use super::limits::{OpenFiles, raise_open_files};
use super::payload::Clock;
use super::publisher::{self, ACK_WAIT, CLOSE_WITHIN, PublisherPlan, PublisherReport};
use super::report::{Connections, Messages, Summary};
use super::stats::{Counters, Latency, histogram, merge, spawn_live};
use super::subscriber::{self, SubscriberPlan, SubscriberReport};
use super::tally::StreamKey;
use crate::mqtt::Protocol;

/// Handshakes under way at once while clients connect.
const SETUP_CONCURRENCY: usize = 64;

/// The longest drain, however steadily messages keep coming.
const DRAIN_CAP: Duration = Duration::from_secs(30);

/// Grace for a task past the time it should have ended by itself, before it is aborted.
pub(crate) const JOIN_SLACK: Duration = Duration::from_secs(5);

/// Read buffer growth of a busy connection.
const BUSY_READ_CHUNK: usize = 64 * 1024;

/// What the run's tasks share.
struct Shared {
    endpoint: Endpoint,
    counters: Arc<Counters>,
    gate: Semaphore,
}

pub(crate) async fn run(plan: FlowPlan) -> Result<Summary, BenchError> {
    let open_files = raise_open_files();
    let shared = Arc::new(Shared {
        endpoint: Endpoint::new(&plan.client).await?,
        counters: Arc::new(Counters::default()),
        gate: Semaphore::new(SETUP_CONCURRENCY),
    });
    let counters = shared.counters.clone();
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let run: u32 = rand::random();
    let clock = Clock::new();
    let live = spawn_live(counters.clone(), true);
    let opening = Instant::now();

    let mut subscribers = Vec::with_capacity(plan.subscribers);
    let mut subscribed = Vec::with_capacity(plan.subscribers);
    for j in 0..plan.subscribers {
        let topic_no = j % plan.topics;
        let sub_plan = SubscriberPlan {
            index: j,
            topic_no,
            filter: plan.pattern.filter(topic_no),
            qos: plan.qos,
            run: (plan.publishers > 0).then_some(run),
            clock,
            suback_within: shared.endpoint.timeout,
        };
        let (ready, ready_rx) = oneshot::channel();
        subscribed.push(ready_rx);
        let task = connect_subscriber(shared.clone(), sub_plan, phase_rx.clone(), ready);
        subscribers.push(tokio::spawn(task));
    }
    let mut ready_per_topic = vec![0u64; plan.topics];
    for (j, ready) in subscribed.into_iter().enumerate() {
        if ready.await.is_ok() {
            ready_per_topic[j % plan.topics] += 1;
        }
    }

    let mut publishers = Vec::with_capacity(plan.publishers);
    let mut connected = Vec::with_capacity(plan.publishers);
    for i in 0..plan.publishers {
        let topic_no = i % plan.topics;
        let pub_plan = PublisherPlan {
            index: i,
            topic_no,
            topic: plan.pattern.topic(i, topic_no),
            qos: plan.qos,
            payload_size: plan.payload_size,
            rate: plan.rate,
            inflight: plan.inflight,
            run,
            clock,
        };
        let (ready, ready_rx) = oneshot::channel();
        connected.push(ready_rx);
        let socket = plan.subscribers + i;
        let task = connect_publisher(shared.clone(), socket, pub_plan, phase_rx.clone(), ready);
        publishers.push(tokio::spawn(task));
    }
    for ready in connected {
        let _ = ready.await;
    }
    let opening_s = opening.elapsed();

    let started = Instant::now();
    let deadline = started + plan.duration;
    phase_tx.send_replace(Phase::Run { deadline });
    let end = deadline + ACK_WAIT + CLOSE_WITHIN + JOIN_SLACK;
    let (pub_reports, mut abandoned) = join_until(publishers, end).await;
    tokio::time::sleep_until(deadline.into()).await;

    let expected = (plan.publishers > 0 && plan.subscribers > 0).then(|| {
        pub_reports
            .iter()
            .map(|p| p.owed.len() * ready_per_topic[p.topic_no])
            .sum::<u64>()
    });
    let drain_started = Instant::now();
    if plan.subscribers > 0 {
        drain(&counters, expected, plan.drain).await;
    }
    let drain_s = drain_started.elapsed();
    phase_tx.send_replace(Phase::Stop);
    let end = Instant::now() + CLOSE_WITHIN + JOIN_SLACK;
    let (sub_reports, late) = join_until(subscribers, end).await;
    abandoned += late;
    live.abort();

    let messages = messages(
        &plan,
        run,
        started,
        drain_s,
        expected,
        &pub_reports,
        &sub_reports,
    );
    Ok(summary(
        &plan, &shared, open_files, opening_s, messages, abandoned,
    ))
}

async fn connect_subscriber(
    shared: Arc<Shared>,
    plan: SubscriberPlan,
    phase: watch::Receiver<Phase>,
    ready: oneshot::Sender<()>,
) -> Option<SubscriberReport> {
    let name = format!("sub-{}", plan.index);
    let conn = connect(&shared, plan.index, &name).await?.0;
    Some(subscriber::run(conn, plan, shared.counters.clone(), phase, ready).await)
}

async fn connect_publisher(
    shared: Arc<Shared>,
    socket: usize,
    mut plan: PublisherPlan,
    phase: watch::Receiver<Phase>,
    ready: oneshot::Sender<()>,
) -> Option<PublisherReport> {
    let name = format!("pub-{}", plan.index);
    let (conn, receive_maximum) = connect(&shared, socket, &name).await?;
    if let Some(max) = receive_maximum {
        plan.inflight = plan.inflight.min(max);
    }
    let _ = ready.send(());
    Some(publisher::run(conn, plan, shared.counters.clone(), phase).await)
}

/// Connects one client through the setup gate, counting the outcome; with the broker's
/// Receive Maximum (5.0).
async fn connect(shared: &Shared, socket: usize, name: &str) -> Option<(Connection, Option<u16>)> {
    let _permit = shared.gate.acquire().await.ok()?;
    let counters = &shared.counters;
    if counters.open_file_limit.load(Ordering::Relaxed) {
        return None;
    }
    counters.attempted.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    match Connection::establish(&shared.endpoint, socket, name, BUSY_READ_CHUNK).await {
        Ok((conn, connack)) => {
            counters.connected(started.elapsed());
            Some((conn, connack.properties.receive_maximum))
        }
        Err(e) => {
            counters.connect_failure(&e);
            None
        }
    }
}

/// Waits for each task until `deadline`, aborting those still running then. Returns the
/// reports and how many tasks were aborted or panicked.
pub(crate) async fn join_until<T>(
    handles: Vec<JoinHandle<Option<T>>>,
    deadline: Instant,
) -> (Vec<T>, u64) {
    let mut reports = Vec::with_capacity(handles.len());
    let mut abandoned = 0;
    for mut handle in handles {
        match tokio::time::timeout_at(deadline.into(), &mut handle).await {
            Ok(Ok(Some(report))) => reports.push(report),
            Ok(Ok(None)) => {}
            Ok(Err(_)) => abandoned += 1,
            Err(_) => {
                handle.abort();
                abandoned += 1;
            }
        }
    }
    (reports, abandoned)
}

/// Lets the subscribers read until everything owed arrived, nothing arrived for `quiet`,
/// or [`DRAIN_CAP`] passed.
async fn drain(counters: &Counters, expected: Option<u64>, quiet: Duration) {
    let started = Instant::now();
    let mut last = counters.received.load(Ordering::Relaxed);
    let mut last_change = started;
    loop {
        let done = expected.is_some_and(|e| counters.received_new.load(Ordering::Relaxed) >= e);
        if done || last_change.elapsed() >= quiet || started.elapsed() >= DRAIN_CAP {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = counters.received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
}

fn per_second(count: u64, over: Duration) -> f64 {
    let seconds = over.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn messages(
    plan: &FlowPlan,
    run: u32,
    started: Instant,
    drain: Duration,
    expected: Option<u64>,
    pubs: &[PublisherReport],
    subs: &[SubscriberReport],
) -> Messages {
    let published = pubs.iter().map(|p| p.published).sum();
    let acked = pubs.iter().map(|p| p.acked).sum();
    let received = subs.iter().map(|s| s.received).sum();
    let mut latency = histogram();
    for s in subs {
        merge(&mut latency, &s.latency);
    }
    let mut ack_latency = histogram();
    for p in pubs {
        merge(&mut ack_latency, &p.ack_latency);
    }
    let lost = if plan.publishers > 0 {
        // Each subscriber owes every acknowledged message of every publisher of its topic.
        subs.iter()
            .filter(|s| s.subscribed)
            .flat_map(|s| pubs.iter().map(move |p| (s, p)))
            .filter(|(s, p)| s.topic_no == p.topic_no)
            .map(|(s, p)| {
                let key = StreamKey {
                    run,
                    publisher: p.index as u32,
                    topic: p.topic_no as u32,
                };
                s.tally.lost_of(key, &p.owed)
            })
            .sum()
    } else {
        subs.iter().map(|s| s.tally.gaps()).sum()
    };
    // From the start to the last delivery; without publishers of its own, the run does
    // not know when publishing started, and counts from the first delivery.
    let from = match plan.publishers {
        0 => subs.iter().filter_map(|s| s.first_received).min(),
        _ => Some(started),
    };
    let last = subs.iter().filter_map(|s| s.last_received).max();
    let receiving = match (from, last) {
        (Some(from), Some(last)) => last.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    Messages {
        qos: plan.qos.bits(),
        publishers: plan.publishers,
        subscribers: plan.subscribers,
        topics: plan.topics,
        payload_size: plan.payload_size,
        rate: plan.rate,
        inflight: pubs.iter().map(|p| p.window).max().unwrap_or(plan.inflight),
        duration_s: plan.duration.as_secs_f64(),
        published,
        acked,
        received,
        published_per_s: per_second(published, plan.duration),
        acked_per_s: per_second(acked, plan.duration),
        received_per_s: per_second(received, receiving),
        expected,
        lost,
        duplicates: subs.iter().map(|s| s.tally.duplicates).sum(),
        foreign: subs.iter().map(|s| s.foreign).sum(),
        latency_ms: Latency::of(&latency),
        ack_latency_ms: Latency::of(&ack_latency),
        drain_s: drain.as_secs_f64(),
    }
}

/// The summary's common part, for every scenario.
pub(crate) fn base_summary(
    scenario: &str,
    endpoint: &Endpoint,
    client: &ClientArgs,
    open_files: OpenFiles,
    counters: &Counters,
    opening: Duration,
    abandoned: u64,
) -> Summary {
    let established = counters.connected.load(Ordering::Relaxed);
    let mut errors = counters.error_kinds();
    if abandoned > 0 {
        errors.insert("task aborted at the end".into(), abandoned);
    }
    let limit_hit = counters.open_file_limit.load(Ordering::Relaxed).then(|| {
        let limit = open_files
            .limit
            .map_or("unlimited".into(), |n| n.to_string());
        format!("hit the open-file limit ({limit}); opened no more connections")
    });
    Summary {
        scenario: scenario.to_string(),
        broker: endpoint.addr.to_string(),
        mqtt_version: match endpoint.protocol {
            Protocol::V311 => 3,
            Protocol::V5 => 5,
        },
        tls: client.tls,
        clean_sessions: !client.persistent,
        open_files,
        connections: Connections {
            attempted: counters.attempted.load(Ordering::Relaxed),
            established,
            failed: counters.connect_failed.load(Ordering::Relaxed),
            failures: counters.connect_failures(),
            opening_s: opening.as_secs_f64(),
            per_second: per_second(established, opening),
            latency_ms: counters.connect_latency(),
            held_s: None,
            dropped: counters.dropped.load(Ordering::Relaxed),
            open_file_limit_hit: limit_hit,
        },
        messages: None,
        errors,
    }
}

fn summary(
    plan: &FlowPlan,
    shared: &Shared,
    open_files: OpenFiles,
    opening: Duration,
    messages: Messages,
    abandoned: u64,
) -> Summary {
    let mut summary = base_summary(
        plan.scenario,
        &shared.endpoint,
        &plan.client,
        open_files,
        &shared.counters,
        opening,
        abandoned,
    );
    summary.messages = Some(messages);
    summary
}
