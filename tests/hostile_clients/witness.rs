//! The well-behaved clients every attack runs next to: a rumqttc 3.1.1 publisher that sends
//! a numbered QoS 1 message every few milliseconds for as long as the attack lasts, and a
//! rumqttc 5.0 subscriber of those messages. At the end every message published must have
//! been PUBACKed within [`ACK_LATENCY`] and delivered exactly once, and neither client may
//! have lost its connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet as P5;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::WAIT;

/// How long the broker may take to PUBACK a witness publish while under attack.
pub(crate) const ACK_LATENCY: Duration = Duration::from_secs(5);
/// The pace of the witness publisher.
const PERIOD: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Ledger {
    /// When each message was handed to the client, by number.
    published_at: Vec<Instant>,
    /// Messages the client wrote, in order (rumqttc reports their packet ids in order).
    written: usize,
    pkid_to_message: HashMap<u16, usize>,
    acked_at: HashMap<usize, Instant>,
    /// Message numbers the subscriber got, in arrival order.
    received: Vec<usize>,
    errors: Vec<String>,
}

/// The two clients and the publisher's pump.
pub(crate) struct Witness {
    tag: String,
    ledger: Arc<Mutex<Ledger>>,
    changed: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    /// Held so that the event loops keep running (they end when every handle is gone).
    _clients: (rumqttc::AsyncClient, rumqttc::v5::AsyncClient),
    pump: Option<JoinHandle<()>>,
    loops: Vec<JoinHandle<()>>,
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|p| p.into_inner())
}

impl Witness {
    /// Connects both clients to the broker on `127.0.0.1:port`, subscribes and starts
    /// publishing.
    pub(crate) async fn start(port: u16, tag: &str) -> Witness {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (bump, changed) = watch::channel(0u64);
        let bump = Arc::new(bump);
        let topic = format!("{tag}/witness");
        let mut loops = Vec::new();

        let mut options = rumqttc::v5::MqttOptions::new(format!("{tag}-wsub"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (subscriber, mut events) = rumqttc::v5::AsyncClient::new(options, 16);
        let (subacked_tx, subacked) = tokio::sync::oneshot::channel();
        loops.push(tokio::spawn({
            let (ledger, bump) = (ledger.clone(), bump.clone());
            async move {
                let mut subacked_tx = Some(subacked_tx);
                loop {
                    match events.poll().await {
                        Ok(rumqttc::v5::Event::Incoming(P5::Publish(p))) => {
                            let n = std::str::from_utf8(&p.payload)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .expect("a witness message is its number");
                            lock(&ledger).received.push(n);
                            bump.send_modify(|v| *v += 1);
                        }
                        Ok(rumqttc::v5::Event::Incoming(P5::SubAck(_))) => {
                            if let Some(tx) = subacked_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            lock(&ledger).errors.push(format!("subscriber: {e}"));
                            bump.send_modify(|v| *v += 1);
                            return;
                        }
                    }
                }
            }
        }));
        subscriber
            .subscribe(topic.clone(), rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
            .await
            .expect("queue the witness SUBSCRIBE");
        timeout(WAIT, subacked)
            .await
            .expect("witness SUBACK in time")
            .expect("witness subscriber running");

        let mut options = rumqttc::MqttOptions::new(format!("{tag}-wpub"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (publisher, mut events) = rumqttc::AsyncClient::new(options, 16);
        loops.push(tokio::spawn({
            let (ledger, bump) = (ledger.clone(), bump.clone());
            async move {
                loop {
                    let event = events.poll().await;
                    let mut book = lock(&ledger);
                    match event {
                        Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => {
                            let n = book.written;
                            book.written += 1;
                            book.pkid_to_message.insert(pkid, n);
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(ack))) => {
                            match book.pkid_to_message.remove(&ack.pkid) {
                                Some(n) => {
                                    book.acked_at.insert(n, Instant::now());
                                }
                                None => book.errors.push(format!("PUBACK {} unasked", ack.pkid)),
                            }
                        }
                        Ok(_) => continue,
                        Err(e) => {
                            book.errors.push(format!("publisher: {e}"));
                            drop(book);
                            bump.send_modify(|v| *v += 1);
                            return;
                        }
                    }
                    drop(book);
                    bump.send_modify(|v| *v += 1);
                }
            }
        }));

        let (stop, mut stopped) = watch::channel(false);
        let pump = tokio::spawn({
            let (ledger, publisher) = (ledger.clone(), publisher.clone());
            async move {
                let mut next = Instant::now();
                for n in 0.. {
                    lock(&ledger).published_at.push(Instant::now());
                    publisher
                        .publish(&topic, rumqttc::QoS::AtLeastOnce, false, n.to_string())
                        .await
                        .expect("queue a witness PUBLISH");
                    next += PERIOD;
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                }
            }
        });
        let witness = Witness {
            tag: tag.to_string(),
            ledger,
            changed,
            stop,
            _clients: (publisher, subscriber),
            pump: Some(pump),
            loops,
        };
        witness.served().await;
        witness
    }

    /// Waits until `done` holds for the ledger, or fails with `what` after `within`.
    async fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&Ledger) -> bool) {
        let deadline = Instant::now() + within;
        let mut changed = self.changed.clone();
        loop {
            {
                let book = lock(&self.ledger);
                assert!(book.errors.is_empty(), "{}: {:?}", self.tag, book.errors);
                if done(&book) {
                    return;
                }
            }
            if timeout_at(deadline, changed.changed()).await.is_err() {
                let book = lock(&self.ledger);
                panic!(
                    "{}: {what} within {within:?}: {} published, {} acked, {} received",
                    self.tag,
                    book.published_at.len(),
                    book.acked_at.len(),
                    book.received.len()
                );
            }
        }
    }

    /// The witness is served now: a message published from now on is PUBACKed and
    /// delivered within [`WAIT`].
    pub(crate) async fn served(&self) {
        let from = lock(&self.ledger).published_at.len();
        self.wait_for(WAIT, "a new message acked and delivered", |book| {
            book.acked_at.keys().any(|n| *n >= from) && book.received.iter().any(|n| *n >= from)
        })
        .await;
    }

    /// Stops publishing and checks the whole run: every message PUBACKed within
    /// [`ACK_LATENCY`] and delivered exactly once. Returns how many were published and the
    /// longest PUBACK wait.
    pub(crate) async fn finish(mut self) -> (usize, Duration) {
        self.stop.send_replace(true);
        if let Some(pump) = self.pump.take() {
            timeout(WAIT, pump)
                .await
                .expect("the witness publisher stops in time")
                .expect("the witness publisher did not panic");
        }
        let published = lock(&self.ledger).published_at.len();
        self.wait_for(WAIT, "every message acked and delivered", |book| {
            book.acked_at.len() == published && book.received.len() >= published
        })
        .await;
        let book = lock(&self.ledger);
        let mut received = book.received.clone();
        received.sort_unstable();
        let expected: Vec<usize> = (0..published).collect();
        assert_eq!(
            received, expected,
            "{}: each acknowledged message delivered exactly once",
            self.tag
        );
        let slowest = (0..published)
            .map(|n| book.acked_at[&n] - book.published_at[n])
            .max()
            .unwrap_or_default();
        assert!(
            slowest <= ACK_LATENCY,
            "{}: a PUBACK took {slowest:?}",
            self.tag
        );
        (published, slowest)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        if let Some(pump) = &self.pump {
            pump.abort();
        }
        for task in &self.loops {
            task.abort();
        }
    }
}
