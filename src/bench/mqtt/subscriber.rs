//! One subscriber connection: subscribes to its topic, acknowledges every QoS 1/2
//! message, and measures each one by its stamp — end-to-end latency, and the sequence
//! numbers that find lost and duplicate messages — until the coordinator stops it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{oneshot, watch};

use super::connection::{ClientError, Connection, Phase, Wake};
use super::payload::{Clock, Stamp};
use super::publisher::CLOSE_WITHIN;
use super::stats::{Counters, histogram, record};
use super::tally::{StreamKey, Tally};
use crate::mqtt::{
    Ack, Packet, PacketId, Properties, Publish, QoS, Subscribe, SubscriptionOptions,
};

pub(crate) struct SubscriberPlan {
    pub(crate) index: usize,
    pub(crate) topic_no: usize,
    pub(crate) filter: String,
    pub(crate) qos: QoS,
    /// Only stamps of this run are measured (others are foreign); `None` measures all.
    pub(crate) run: Option<u32>,
    pub(crate) clock: Clock,
    /// How long SUBACK may take.
    pub(crate) suback_within: Duration,
}

/// What one subscriber saw.
pub(crate) struct SubscriberReport {
    pub(crate) topic_no: usize,
    /// Whether SUBACK came: only then does the subscriber count in what was owed.
    pub(crate) subscribed: bool,
    /// Every PUBLISH delivered (a QoS 2 message once, however often it was sent).
    pub(crate) received: u64,
    /// Deliveries without a stamp of the measured run.
    pub(crate) foreign: u64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) tally: Tally,
    pub(crate) first_received: Option<Instant>,
    pub(crate) last_received: Option<Instant>,
}

struct Subscriber<'a> {
    plan: &'a SubscriberPlan,
    counters: &'a Counters,
    /// QoS 2 packet identifiers PUBREC'd and not yet released: a PUBLISH sent again
    /// under one of them is not a new message.
    awaiting_release: HashSet<u16>,
    report: SubscriberReport,
}

/// Runs one subscriber on `conn`: `ready` is sent when its SUBACK grants the
/// subscription (dropped unsent when it fails). Ends at [`Phase::Stop`] or a failure.
pub(crate) async fn run(
    mut conn: Connection,
    plan: SubscriberPlan,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
    ready: oneshot::Sender<()>,
) -> SubscriberReport {
    let mut subscriber = Subscriber {
        plan: &plan,
        counters: &counters,
        awaiting_release: HashSet::new(),
        report: SubscriberReport {
            topic_no: plan.topic_no,
            subscribed: false,
            received: 0,
            foreign: 0,
            latency: histogram(),
            tally: Tally::default(),
            first_received: None,
            last_received: None,
        },
    };
    match subscriber.drive(&mut conn, &mut phase, ready).await {
        Ok(()) => conn.close(CLOSE_WITHIN).await,
        Err(e) => counters.error(format!("subscriber: {}", e.label()), true),
    }
    subscriber.report
}

impl Subscriber<'_> {
    async fn drive(
        &mut self,
        conn: &mut Connection,
        phase: &mut watch::Receiver<Phase>,
        ready: oneshot::Sender<()>,
    ) -> Result<(), ClientError> {
        let options = SubscriptionOptions {
            qos: self.plan.qos,
            ..SubscriptionOptions::default()
        };
        conn.queue(&Packet::Subscribe(Subscribe {
            packet_id: PacketId::MIN,
            filters: vec![(self.plan.filter.clone(), options)],
            properties: Properties::default(),
        }))?;
        let suback_deadline = Instant::now() + self.plan.suback_within;
        let mut ready = Some(ready);
        loop {
            let until = ready.is_some().then_some(suback_deadline);
            match conn.wait(until, phase).await? {
                Wake::Stop => return Ok(()),
                Wake::Timer if ready.is_some() => return Err(ClientError::Timeout("SUBACK")),
                _ => {}
            }
            let (mut received, mut new) = (0u64, 0u64);
            while let Some(packet) = conn.next_packet()? {
                match packet {
                    Packet::Publish(publish) => {
                        if self.acknowledge(conn, &publish)? {
                            received += 1;
                            new += u64::from(self.measure(&publish));
                        }
                    }
                    Packet::PubRel(ack) => {
                        self.awaiting_release.remove(&ack.packet_id.get());
                        conn.queue(&Packet::PubComp(Ack::new(ack.packet_id)))?;
                    }
                    Packet::SubAck(suback) => {
                        if let Some(refused) = suback.reasons.iter().find(|r| r.is_error()) {
                            return Err(ClientError::SubscribeRefused(*refused));
                        }
                        if let Some(ready) = ready.take() {
                            self.report.subscribed = true;
                            let _ = ready.send(());
                        }
                    }
                    Packet::PingResp => {}
                    Packet::Disconnect(d) => return Err(ClientError::Disconnected(d.reason)),
                    other => return Err(ClientError::Unexpected(other.packet_type())),
                }
            }
            if received > 0 {
                let now = Instant::now();
                self.report.first_received.get_or_insert(now);
                self.report.last_received = Some(now);
                self.counters
                    .received
                    .fetch_add(received, Ordering::Relaxed);
                self.counters.received_new.fetch_add(new, Ordering::Relaxed);
            }
        }
    }

    /// Queues the acknowledgement `publish` asks for; `false` for a QoS 2 message sent
    /// again before its PUBREL, which was delivered already.
    fn acknowledge(
        &mut self,
        conn: &mut Connection,
        publish: &Publish,
    ) -> Result<bool, ClientError> {
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => conn.queue(&Packet::PubAck(Ack::new(id)))?,
            (QoS::ExactlyOnce, Some(id)) => {
                conn.queue(&Packet::PubRec(Ack::new(id)))?;
                return Ok(self.awaiting_release.insert(id.get()));
            }
            _ => {}
        }
        Ok(true)
    }

    /// Measures one delivery; `true` when it is a message of the measured run this
    /// subscriber had not had before.
    fn measure(&mut self, publish: &Publish) -> bool {
        let now_ns = self.plan.clock.now_ns();
        self.report.received += 1;
        let stamp = match Stamp::read(&publish.payload) {
            Some(stamp) if self.plan.run.is_none_or(|run| run == stamp.run) => stamp,
            _ => {
                self.report.foreign += 1;
                return false;
            }
        };
        let key = StreamKey {
            run: stamp.run,
            publisher: stamp.publisher,
            topic: stamp.topic,
        };
        if !self.report.tally.record(key, stamp.seq) {
            return false;
        }
        let latency = Duration::from_nanos(now_ns.saturating_sub(stamp.sent_ns));
        record(&mut self.report.latency, latency);
        true
    }
}
