//! One publisher connection: stamped PUBLISHes to its topic at `--rate` (or as fast as
//! its window and the socket take), at most `--inflight` unacknowledged, with the QoS 1
//! and QoS 2 flows; it stops sending at the deadline and waits a bounded time for the
//! acknowledgements still owed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;

use super::connection::{ClientError, Connection, Phase, Wake};
use super::payload::{Clock, Stamp, template};
use super::stats::{Counters, histogram, record};
use super::tally::SeqSet;
use crate::mqtt::{Ack, Packet, PacketId, Properties, Publish, QoS};

/// How long after the deadline a publisher waits for its last acknowledgements.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(10);

/// How long DISCONNECT and the close may take.
pub(crate) const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// Bytes queued before the batch is written: enough to fill a socket buffer in one call,
/// little enough to keep reading acknowledgements in between.
const BATCH_BYTES: usize = 64 * 1024;

/// A rate-limited publisher further behind than this forgets the messages it missed
/// rather than bursting to catch up.
const MAX_LAG: Duration = Duration::from_secs(1);

pub(crate) struct PublisherPlan {
    pub(crate) index: usize,
    pub(crate) topic_no: usize,
    pub(crate) topic: String,
    pub(crate) qos: QoS,
    pub(crate) payload_size: usize,
    /// Messages per second; 0 for no limit.
    pub(crate) rate: f64,
    /// The window: `--inflight`, lowered to the broker's Receive Maximum.
    pub(crate) inflight: u16,
    pub(crate) run: u32,
    pub(crate) clock: Clock,
}

/// What one publisher did.
pub(crate) struct PublisherReport {
    pub(crate) index: usize,
    pub(crate) topic_no: usize,
    /// The window it ran with: `--inflight`, or the broker's lower Receive Maximum.
    pub(crate) window: u16,
    pub(crate) published: u64,
    /// PUBACK (QoS 1) or PUBREC (QoS 2) without an error reason.
    pub(crate) acked: u64,
    /// The sequence numbers every subscriber of the topic must receive: those the broker
    /// acknowledged, or for QoS 0 every one sent.
    pub(crate) owed: SeqSet,
    pub(crate) ack_latency: Histogram<u64>,
}

/// One packet identifier's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Sent {
        seq: u64,
        at: Instant,
    },
    /// QoS 2: PUBREC came and PUBREL went; waiting for PUBCOMP.
    Released,
}

/// The packet identifiers in flight: twice the window of them, handed out in turn, so an
/// identifier is rarely asked for again right after it was freed.
struct Window {
    slots: Vec<Slot>,
    next: usize,
    open: usize,
    limit: usize,
}

impl Window {
    fn new(limit: u16) -> Window {
        let limit = usize::from(limit.max(1));
        Window {
            slots: vec![Slot::Free; (2 * limit).min(usize::from(u16::MAX))],
            next: 0,
            open: 0,
            limit,
        }
    }

    fn is_full(&self) -> bool {
        self.open >= self.limit
    }

    fn take(&mut self, seq: u64, at: Instant) -> Option<PacketId> {
        if self.is_full() {
            return None;
        }
        for _ in 0..self.slots.len() {
            let i = self.next;
            self.next = (self.next + 1) % self.slots.len();
            if self.slots[i] == Slot::Free {
                self.slots[i] = Slot::Sent { seq, at };
                self.open += 1;
                return u16::try_from(i + 1).ok().and_then(PacketId::new);
            }
        }
        None
    }

    fn get(&self, id: PacketId) -> Slot {
        self.slots
            .get(usize::from(id.get()) - 1)
            .copied()
            .unwrap_or(Slot::Free)
    }

    fn set(&mut self, id: PacketId, slot: Slot) {
        if let Some(s) = self.slots.get_mut(usize::from(id.get()) - 1) {
            if *s != Slot::Free && slot == Slot::Free {
                self.open -= 1;
            }
            *s = slot;
        }
    }
}

struct Publisher<'a> {
    plan: &'a PublisherPlan,
    counters: &'a Counters,
    window: Window,
    report: PublisherReport,
}

/// Runs one publisher on `conn` until the run's deadline and its last acknowledgements
/// (or a failure, or [`Phase::Stop`]), then disconnects.
pub(crate) async fn run(
    mut conn: Connection,
    plan: PublisherPlan,
    counters: Arc<Counters>,
    mut phase: watch::Receiver<Phase>,
) -> PublisherReport {
    let mut publisher = Publisher {
        plan: &plan,
        counters: &counters,
        window: Window::new(plan.inflight),
        report: PublisherReport {
            index: plan.index,
            topic_no: plan.topic_no,
            window: plan.inflight,
            published: 0,
            acked: 0,
            owed: SeqSet::default(),
            ack_latency: histogram(),
        },
    };
    let outcome = publisher.drive(&mut conn, &mut phase).await;
    let open = publisher.window.open as i64;
    counters.inflight.fetch_sub(open, Ordering::Relaxed);
    match outcome {
        Ok(()) => conn.close(CLOSE_WITHIN).await,
        Err(e) => counters.error(format!("publisher: {}", e.label()), true),
    }
    let mut report = publisher.report;
    if plan.qos == QoS::AtMostOnce {
        report.owed = SeqSet::up_to(report.published);
    }
    report
}

impl Publisher<'_> {
    async fn drive(
        &mut self,
        conn: &mut Connection,
        phase: &mut watch::Receiver<Phase>,
    ) -> Result<(), ClientError> {
        let deadline = loop {
            let now = *phase.borrow();
            match now {
                Phase::Run { deadline } => break deadline,
                Phase::Stop => return Ok(()),
                Phase::Setup => {}
            }
            if conn.wait(None, phase).await? == Wake::Stop {
                return Ok(());
            }
            self.take_packets(conn)?;
        };
        let plan = self.plan;
        let qos0 = plan.qos == QoS::AtMostOnce;
        let payload = template(plan.payload_size);
        let payload_len = payload.len();
        let mut packet = Packet::Publish(Publish {
            dup: false,
            qos: plan.qos,
            retain: false,
            topic: plan.topic.clone(),
            packet_id: None,
            properties: Properties::default(),
            payload,
        });
        let interval = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
        let mut next_due = Instant::now();
        let ack_deadline = deadline + ACK_WAIT;
        let mut seq = 0u64;
        loop {
            let now = Instant::now();
            let sending = now < deadline;
            if !sending && (self.window.open == 0 || now >= ack_deadline) {
                return Ok(());
            }
            let mut sent = 0u64;
            while sending && conn.backlog() < BATCH_BYTES && (qos0 || !self.window.is_full()) {
                if let Some(interval) = interval {
                    if now < next_due {
                        break;
                    }
                    next_due += interval;
                }
                let at = Instant::now();
                let id = if qos0 {
                    None
                } else {
                    match self.window.take(seq + 1, at) {
                        Some(id) => Some(id),
                        None => break,
                    }
                };
                seq += 1;
                if let Packet::Publish(publish) = &mut packet {
                    publish.packet_id = id;
                }
                let stamp = Stamp {
                    run: plan.run,
                    publisher: plan.index as u32,
                    topic: plan.topic_no as u32,
                    seq,
                    sent_ns: plan.clock.at(at),
                };
                stamp.write(conn.queue_with_tail(&packet, payload_len)?);
                sent += 1;
            }
            if interval.is_some() && now.saturating_duration_since(next_due) > MAX_LAG {
                next_due = now;
            }
            if sent > 0 {
                self.report.published += sent;
                self.counters.published.fetch_add(sent, Ordering::Relaxed);
                if !qos0 {
                    self.counters
                        .inflight
                        .fetch_add(sent as i64, Ordering::Relaxed);
                }
            }
            // Only a publisher held back by its rate has a reason to wake before the
            // deadline; one held back by its window or its backlog wakes on input/output.
            let held_by_rate = interval.is_some()
                && conn.backlog() < BATCH_BYTES
                && (qos0 || !self.window.is_full());
            let wake = match (sending, held_by_rate) {
                (false, _) => ack_deadline,
                (true, true) => next_due.min(deadline),
                (true, false) => deadline,
            };
            if conn.wait(Some(wake), phase).await? == Wake::Stop {
                return Ok(());
            }
            self.take_packets(conn)?;
        }
    }

    /// Handles every packet read: acknowledgements free the window.
    fn take_packets(&mut self, conn: &mut Connection) -> Result<(), ClientError> {
        let (mut acked, mut freed) = (0u64, 0i64);
        while let Some(packet) = conn.next_packet()? {
            match packet {
                Packet::PubAck(ack) => {
                    if let Slot::Sent { seq, at } = self.window.get(ack.packet_id) {
                        self.window.set(ack.packet_id, Slot::Free);
                        freed += 1;
                        acked += self.acknowledged(&ack, seq, at, "PUBACK");
                    } else {
                        self.counters
                            .error("PUBACK for no message in flight".into(), false);
                    }
                }
                Packet::PubRec(ack) => match self.window.get(ack.packet_id) {
                    Slot::Sent { seq, at } => {
                        let ok = self.acknowledged(&ack, seq, at, "PUBREC");
                        acked += ok;
                        if ok == 1 {
                            self.window.set(ack.packet_id, Slot::Released);
                            conn.queue(&Packet::PubRel(Ack::new(ack.packet_id)))?;
                        } else {
                            self.window.set(ack.packet_id, Slot::Free);
                            freed += 1;
                        }
                    }
                    // A repeated PUBREC: answer it again.
                    Slot::Released => conn.queue(&Packet::PubRel(Ack::new(ack.packet_id)))?,
                    Slot::Free => self
                        .counters
                        .error("PUBREC for no message in flight".into(), false),
                },
                Packet::PubComp(ack) => {
                    if self.window.get(ack.packet_id) == Slot::Released {
                        self.window.set(ack.packet_id, Slot::Free);
                        freed += 1;
                    }
                }
                Packet::PingResp => {}
                Packet::Disconnect(d) => return Err(ClientError::Disconnected(d.reason)),
                other => return Err(ClientError::Unexpected(other.packet_type())),
            }
        }
        if acked > 0 {
            self.report.acked += acked;
            self.counters.acked.fetch_add(acked, Ordering::Relaxed);
        }
        if freed > 0 {
            self.counters.inflight.fetch_sub(freed, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Records the acknowledgement of message `seq`, sent at `at`; 1 when it succeeded.
    fn acknowledged(&mut self, ack: &Ack, seq: u64, at: Instant, packet: &str) -> u64 {
        if ack.reason.is_error() {
            self.counters.error(
                format!("{packet} {:?} (0x{:02x})", ack.reason, ack.reason.as_u8()),
                false,
            );
            return 0;
        }
        record(&mut self.report.ack_latency, at.elapsed());
        self.report.owed.insert(seq);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_hands_out_distinct_ids_up_to_its_limit() {
        let at = Instant::now();
        let mut window = Window::new(3);
        let ids: Vec<PacketId> = (1..=3).filter_map(|seq| window.take(seq, at)).collect();
        assert_eq!(ids.len(), 3);
        assert!(window.is_full());
        assert_eq!(window.take(4, at), None);
        assert_eq!(window.get(ids[1]), Slot::Sent { seq: 2, at });
        window.set(ids[1], Slot::Free);
        let again = window.take(4, at).unwrap();
        assert!(!ids.contains(&again), "a freed id is not reused at once");
        assert_eq!(window.open, 3);
    }

    #[test]
    fn a_released_slot_still_counts_until_pubcomp() {
        let at = Instant::now();
        let mut window = Window::new(1);
        let id = window.take(1, at).unwrap();
        window.set(id, Slot::Released);
        assert!(window.is_full());
        window.set(id, Slot::Free);
        assert!(!window.is_full());
    }

    #[test]
    fn unknown_ids_from_the_wire_are_free_slots() {
        let mut window = Window::new(2);
        let far = PacketId::new(60_000).unwrap();
        assert_eq!(window.get(far), Slot::Free);
        window.set(far, Slot::Free);
        assert_eq!(window.open, 0);
    }
}
