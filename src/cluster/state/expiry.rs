//! The state's clock and `Tick`: sessions whose expiry passed end, delayed wills whose time
//! came are published, and expired messages leave queues and the retained store.
//!
//! Each kind of expiry is an index keyed by due time (big-endian) then id, read oldest
//! first with `scan_range` up to the clock, at most [`TICK_LIMIT`] at a time: one tick does
//! bounded work, and what is left waits for the next.

use raftmq_storage::StoreError;

use super::Apply;
use super::tables::{
    HOLDERS, KeyReader, MESSAGE_EXPIRY, MESSAGES, QUEUED, QueueEntry, SESSION_EXPIRY, SESSIONS,
    SessionRecord, StoredMessage, WILL_DUE, client_key, client_seq_key,
};
use crate::cluster::command::{Millis, Outcome};

/// The largest step one `Tick` moves the state's clock (DESIGN §8): a leader whose clock
/// jumps a day ahead expires a minute's worth per tick, not a day's at once, and a clock
/// that goes back moves nothing.
pub const MAX_CLOCK_STEP: Millis = 60_000;

/// Sessions, wills, and message expiries (messages plus the queue entries holding them)
/// handled per `Tick`, each.
pub const TICK_LIMIT: usize = 1000;

impl Apply<'_, '_> {
    pub(super) fn tick(&mut self, now: Millis) -> Result<Outcome, StoreError> {
        // The first tick sets the clock; later ones move it within the bound.
        self.meta.clock = self.time(now);
        let clock = self.meta.clock;
        let end = clock.saturating_add(1).to_be_bytes();
        let mut deliveries = Vec::new();

        let mut expired_sessions = Vec::new();
        for (key, _) in self.tx.scan_range(SESSION_EXPIRY, &[], &end, TICK_LIMIT)? {
            let mut reader = KeyReader::new(SESSION_EXPIRY, &key);
            let at = reader.u64()?;
            let client_id = reader.client()?;
            self.remove(SESSION_EXPIRY, &key);
            let session: Option<SessionRecord> = self.get(SESSIONS, &client_key(&client_id))?;
            if let Some(session) = session.filter(|s| s.owner.is_none() && s.expires_at == Some(at))
            {
                self.end_session(&client_id, session, true, clock, &mut deliveries)?;
                expired_sessions.push(client_id);
            }
        }

        let mut wills_published = 0;
        for (key, _) in self.tx.scan_range(WILL_DUE, &[], &end, TICK_LIMIT)? {
            let mut reader = KeyReader::new(WILL_DUE, &key);
            let due = reader.u64()?;
            let client_id = reader.client()?;
            self.remove(WILL_DUE, &key);
            let session_key = client_key(&client_id);
            let session: Option<SessionRecord> = self.get(SESSIONS, &session_key)?;
            let Some(mut session) = session.filter(|s| s.will_due == Some(due)) else {
                continue;
            };
            session.will_due = None;
            self.put(SESSIONS, &session_key, &session)?;
            if let Some(will) = self.take_will(&client_id)? {
                self.publish_will(&client_id, will, clock, &mut deliveries)?;
                wills_published += 1;
            }
        }

        let expired_messages = self.expire_messages(&end)?;
        Ok(Outcome::Ticked {
            clock,
            expired_sessions,
            wills_published,
            expired_messages,
            deliveries,
        })
    }

    /// Removes expired messages from the retained store and from the queues that hold them
    /// waiting. In-flight entries keep theirs: delivery has started. Returns how many
    /// retained messages and queue entries were removed.
    fn expire_messages(&mut self, end: &[u8]) -> Result<u32, StoreError> {
        let mut budget = TICK_LIMIT;
        let mut removed = 0;
        for (key, _) in self.tx.scan_range(MESSAGE_EXPIRY, &[], end, TICK_LIMIT)? {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let mut reader = KeyReader::new(MESSAGE_EXPIRY, &key);
            reader.u64()?;
            let id = reader.u64()?;
            let stored: Option<StoredMessage> = self.get(MESSAGES, &id.to_be_bytes())?;
            let Some(stored) = stored else {
                self.remove(MESSAGE_EXPIRY, &key);
                continue;
            };
            if self.unretain(&stored.message.topic, id)? {
                removed += 1;
            }
            let from = id.to_be_bytes();
            let to = (id + 1).to_be_bytes();
            let holders = self.tx.scan_range(HOLDERS, &from, &to, budget)?;
            let finished = holders.len() < budget;
            budget -= holders.len();
            for (holder, _) in holders {
                self.remove(HOLDERS, &holder);
                let mut reader = KeyReader::new(HOLDERS, &holder);
                reader.u64()?;
                let client_id = reader.client()?;
                let seq = reader.u64()?;
                let entry_key = client_seq_key(&client_id, seq);
                let entry: Option<QueueEntry> = self.get(QUEUED, &entry_key)?;
                if entry.is_none() {
                    continue;
                }
                self.remove(QUEUED, &entry_key);
                let mut queue = self.load_queue(&client_id)?;
                queue.queued = queue.queued.saturating_sub(1);
                if let Some(entry) = &entry {
                    queue.queued_bytes = queue.queued_bytes.saturating_sub(u64::from(entry.bytes));
                }
                queue.expired += 1;
                self.save_queue(&client_id, &queue)?;
                self.drop_ref(id)?;
                removed += 1;
            }
            // Done with this message once no waiting entry holds it; in-flight entries
            // release it when acknowledged.
            if finished {
                self.remove(MESSAGE_EXPIRY, &key);
            }
        }
        Ok(removed)
    }
}
