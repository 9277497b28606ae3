//! Persistent sessions' outbound queues: entries in sequence order, the in-flight window
//! (packet ids assigned here, deterministically, so a new owner resends under the same
//! ids: DESIGN §3 rule 5), `Ack` and `Received`, and the queue limit.
//!
//! An entry waits in `QUEUED` (keyed by sequence number) until the window has room, then
//! moves to `IN_FLIGHT` (keyed by packet id) with the next free id. Entries enter the
//! window in sequence order and only when nothing older waits, so every in-flight entry is
//! older than every queued one.
//!
//! Overflow: at most `max_queue` entries, and `max_queue_bytes` payload bytes (0: no byte
//! limit), wait beyond the window; a new entry past either drops the *oldest waiting*
//! entries (in-flight ones are being delivered and stay), counted in
//! [`QueueRecord::dropped`]. With `max_queue` 0, or a payload larger than the byte limit
//! alone, the new entry itself is dropped.

use raftmq_storage::StoreError;

use super::Apply;
use super::tables::{
    CorruptState, EntryStage, HOLDERS, IN_FLIGHT, QUEUED, QUEUES, QueueEntry, QueueRecord,
    SessionRecord, client_key, client_packet_key, client_seq_key, decode, holder_key,
};
use crate::cluster::command::{Delivery, Millis, OutboundEntry, Outcome, Stage, Target};

impl Apply<'_, '_> {
    pub(super) fn load_queue(&self, client_id: &str) -> Result<QueueRecord, StoreError> {
        Ok(self
            .get(QUEUES, &client_key(client_id))?
            .unwrap_or_default())
    }

    pub(super) fn save_queue(
        &mut self,
        client_id: &str,
        queue: &QueueRecord,
    ) -> Result<(), StoreError> {
        self.put(QUEUES, &client_key(client_id), queue)
    }

    /// Appends an entry (holding a new reference to its message) to a persistent session's
    /// queue; returns it if it went straight into the in-flight window.
    pub(super) fn enqueue(
        &mut self,
        client_id: &str,
        session: &SessionRecord,
        mut entry: QueueEntry,
    ) -> Result<Option<OutboundEntry>, StoreError> {
        // The entry holds its message before anything is dropped to make room: the
        // oldest waiting entry may be another copy of the same message (a session reached
        // through a shared and an ordinary subscription), whose release must not delete
        // the message while it is still being routed.
        if let Some(message_id) = entry.message_id {
            self.add_ref(message_id)?;
        }
        let mut queue = self.load_queue(client_id)?;
        entry.seq = queue.next_seq;
        queue.next_seq += 1;
        let window = u32::from(session.receive_maximum);
        let outbound = if queue.queued == 0 && queue.in_flight < window {
            let packet_id = self.free_packet_id(client_id, &mut queue)?;
            entry.stage = EntryStage::InFlight {
                packet_id,
                stage: Stage::AwaitingAck,
            };
            let outbound = entry.outbound();
            // Delivered now if the session has a connection (the caller emits it).
            entry.sent = session.owner.is_some();
            self.put(IN_FLIGHT, &client_packet_key(client_id, packet_id), &entry)?;
            queue.in_flight += 1;
            outbound
        } else {
            // Past the limit: make room by dropping the oldest waiting entries (more than
            // one if the limit shrank since they were queued).
            let bytes = u64::from(entry.bytes);
            let max_bytes = session.max_queue_bytes;
            let over_bytes = |queue: &QueueRecord| {
                max_bytes > 0 && queue.queued_bytes.saturating_add(bytes) > max_bytes
            };
            let fits_alone = max_bytes == 0 || bytes <= max_bytes;
            while fits_alone
                && queue.queued > 0
                && (queue.queued >= session.max_queue || over_bytes(&queue))
            {
                if !self.drop_oldest(client_id, &mut queue)? {
                    break;
                }
            }
            if queue.queued >= session.max_queue || over_bytes(&queue) {
                queue.dropped += 1;
                self.save_queue(client_id, &queue)?;
                if let Some(message_id) = entry.message_id {
                    // Not deleted here even at zero: the publish settles its message.
                    self.unref(message_id)?;
                }
                return Ok(None);
            }
            entry.stage = EntryStage::Queued;
            self.put(QUEUED, &client_seq_key(client_id, entry.seq), &entry)?;
            self.hold(client_id, &entry);
            queue.queued += 1;
            queue.queued_bytes += u64::from(entry.bytes);
            None
        };
        self.save_queue(client_id, &queue)?;
        Ok(outbound)
    }

    /// The oldest waiting entry, if any.
    fn first_queued(&self, client_id: &str) -> Result<Option<QueueEntry>, StoreError> {
        let from = client_seq_key(client_id, 0);
        let to = client_seq_key(client_id, u64::MAX);
        match self.tx.scan_range(QUEUED, &from, &to, 1)?.first() {
            Some((_, raw)) => Ok(Some(decode(raw)?)),
            None => Ok(None),
        }
    }

    /// Takes a waiting entry out of `QUEUED` (its message reference stays with the caller).
    fn unqueue(&mut self, client_id: &str, entry: &QueueEntry, queue: &mut QueueRecord) {
        self.remove(QUEUED, &client_seq_key(client_id, entry.seq));
        self.unhold(client_id, entry);
        queue.queued = queue.queued.saturating_sub(1);
        queue.queued_bytes = queue.queued_bytes.saturating_sub(u64::from(entry.bytes));
    }

    /// Drops the oldest waiting entry for overflow; false if there was none to drop.
    fn drop_oldest(
        &mut self,
        client_id: &str,
        queue: &mut QueueRecord,
    ) -> Result<bool, StoreError> {
        let Some(oldest) = self.first_queued(client_id)? else {
            // The count said otherwise; the entries are the truth.
            queue.queued = 0;
            queue.queued_bytes = 0;
            return Ok(false);
        };
        self.unqueue(client_id, &oldest, queue);
        queue.dropped += 1;
        if let Some(message_id) = oldest.message_id {
            self.drop_ref(message_id)?;
        }
        Ok(true)
    }

    /// Moves waiting entries into the in-flight window while it has room; entries whose
    /// message expired meanwhile are dropped instead (MQTT 5.0 §3.3.2.3.3: not sent once
    /// expired). The promoted entries are appended to `promoted`.
    pub(super) fn promote(
        &mut self,
        client_id: &str,
        session: &SessionRecord,
        queue: &mut QueueRecord,
        now: Millis,
        promoted: &mut Vec<OutboundEntry>,
        sent: bool,
    ) -> Result<(), StoreError> {
        let window = u32::from(session.receive_maximum);
        while queue.queued > 0 && queue.in_flight < window {
            let Some(mut entry) = self.first_queued(client_id)? else {
                queue.queued = 0;
                queue.queued_bytes = 0;
                break;
            };
            self.unqueue(client_id, &entry, queue);
            if entry.expires_at.is_some_and(|at| at <= now) {
                queue.expired += 1;
                if let Some(message_id) = entry.message_id {
                    self.drop_ref(message_id)?;
                }
                continue;
            }
            let packet_id = self.free_packet_id(client_id, queue)?;
            entry.stage = EntryStage::InFlight {
                packet_id,
                stage: Stage::AwaitingAck,
            };
            promoted.extend(entry.outbound());
            entry.sent = sent;
            self.put(IN_FLIGHT, &client_packet_key(client_id, packet_id), &entry)?;
            queue.in_flight += 1;
        }
        Ok(())
    }

    /// The next packet id not in flight, cycling through 1..=65535 from the queue's cursor.
    /// Called only while the window (at most 65535) has room, so one is free.
    fn free_packet_id(&self, client_id: &str, queue: &mut QueueRecord) -> Result<u16, StoreError> {
        for _ in 0..u16::MAX {
            let id = queue.next_packet_id.max(1);
            queue.next_packet_id = id.checked_add(1).unwrap_or(1);
            if self
                .tx
                .get(IN_FLIGHT, &client_packet_key(client_id, id))?
                .is_none()
            {
                return Ok(id);
            }
        }
        Err(CorruptState::NoFreePacketId {
            client_id: client_id.to_owned(),
            in_flight: queue.in_flight,
        }
        .into())
    }

    /// The session's in-flight entries in queue order.
    /// The session's in-flight entries for a new connection to send, each marked sent
    /// from now on (the outcome carries them to that connection).
    pub(super) fn in_flight_entries(
        &mut self,
        client_id: &str,
    ) -> Result<Vec<OutboundEntry>, StoreError> {
        let mut entries = Vec::new();
        for (key, raw) in self.tx.scan_prefix(IN_FLIGHT, &client_key(client_id))? {
            let mut entry: QueueEntry = decode(&raw)?;
            entries.extend(entry.outbound());
            if !entry.sent {
                entry.sent = true;
                self.put(IN_FLIGHT, &key, &entry)?;
            }
        }
        entries.sort_by_key(|entry| entry.seq);
        Ok(entries)
    }

    pub(super) fn ack(
        &mut self,
        client_id: &str,
        epoch: u64,
        packet_ids: &[u16],
    ) -> Result<Outcome, StoreError> {
        let session = match self.session_for(client_id, epoch)? {
            Ok(session) => session,
            Err(fenced) => return Ok(fenced),
        };
        let now = self.meta.clock;
        let mut queue = self.load_queue(client_id)?;
        let mut released = Vec::new();
        for &packet_id in packet_ids {
            let key = client_packet_key(client_id, packet_id);
            let entry: Option<QueueEntry> = self.get(IN_FLIGHT, &key)?;
            let Some(entry) = entry else { continue };
            self.remove(IN_FLIGHT, &key);
            queue.in_flight = queue.in_flight.saturating_sub(1);
            if let Some(message_id) = entry.message_id {
                self.drop_ref(message_id)?;
            }
            released.push(packet_id);
        }
        let mut promoted = Vec::new();
        // The promoted entries go to the session's connection like any new delivery: from
        // the owner node's apply, in log order. (Handed back in the outcome instead, they
        // could arrive after messages published behind this ack, out of order.)
        let owner = session.owner;
        self.promote(
            client_id,
            &session,
            &mut queue,
            now,
            &mut promoted,
            owner.is_some(),
        )?;
        self.save_queue(client_id, &queue)?;
        let deliveries = match owner {
            Some(node) => promoted
                .into_iter()
                .map(|entry| Delivery::Queued {
                    target: Target {
                        node,
                        client_id: client_id.to_owned(),
                        epoch: session.epoch,
                    },
                    entry,
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Outcome::Acked {
            released,
            deliveries,
        })
    }

    pub(super) fn received(
        &mut self,
        client_id: &str,
        epoch: u64,
        packet_id: u16,
    ) -> Result<Outcome, StoreError> {
        if let Err(fenced) = self.session_for(client_id, epoch)? {
            return Ok(fenced);
        }
        let key = client_packet_key(client_id, packet_id);
        let entry: Option<QueueEntry> = self.get(IN_FLIGHT, &key)?;
        let Some(mut entry) = entry.filter(|entry| entry.qos == 2) else {
            return Ok(Outcome::Received { known: false });
        };
        if let EntryStage::InFlight {
            packet_id,
            stage: Stage::AwaitingAck,
        } = entry.stage
        {
            entry.stage = EntryStage::InFlight {
                packet_id,
                stage: Stage::AwaitingComp,
            };
            // The client has the message: only PUBREL/PUBCOMP remain, which need no payload.
            if let Some(message_id) = entry.message_id.take() {
                self.drop_ref(message_id)?;
            }
            self.put(IN_FLIGHT, &key, &entry)?;
        }
        Ok(Outcome::Received { known: true })
    }

    /// Records that a waiting entry holds an expiring message, so `Tick` can find it.
    pub(super) fn hold(&mut self, client_id: &str, entry: &QueueEntry) {
        if let (Some(message_id), Some(_)) = (entry.message_id, entry.expires_at) {
            self.mark(HOLDERS, &holder_key(message_id, client_id, entry.seq));
        }
    }

    pub(super) fn unhold(&mut self, client_id: &str, entry: &QueueEntry) {
        if let (Some(message_id), Some(_)) = (entry.message_id, entry.expires_at) {
            self.remove(HOLDERS, &holder_key(message_id, client_id, entry.seq));
        }
    }
}
