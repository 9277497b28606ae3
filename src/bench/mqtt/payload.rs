//! What a bench message carries in its first bytes — which run and publisher sent it, on
//! which topic, its sequence number there and when it left — so that a subscriber can
//! measure latency and find lost and duplicate messages from the message alone, even one
//! published by another `raftmq bench` process.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Marks a payload as a bench message (and its layout's version); anything else a
/// subscriber receives is counted as foreign and not measured.
const MAGIC: [u8; 4] = *b"RQB1";

/// Bytes the stamp takes at the front of every payload; `--payload-size` cannot go below.
pub(crate) const STAMP_LEN: usize = 32;

/// The header of one bench message. Layout, big-endian: magic (4), run (4), publisher (4),
/// topic (4), sequence number (8), send time in ns (8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Random per bench process: messages left over from an earlier run (a persistent
    /// session's queue) are told apart from this run's.
    pub(crate) run: u32,
    pub(crate) publisher: u32,
    pub(crate) topic: u32,
    /// 1 for the publisher's first message on the topic, then one more for each.
    pub(crate) seq: u64,
    /// [`Clock::now_ns`] when the message was queued for sending.
    pub(crate) sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `payload`; a shorter payload
    /// is left alone and `false` returned (the bench never builds one).
    pub(crate) fn write(&self, payload: &mut [u8]) -> bool {
        let Some(head) = payload.get_mut(..STAMP_LEN) else {
            return false;
        };
        head[0..4].copy_from_slice(&MAGIC);
        head[4..8].copy_from_slice(&self.run.to_be_bytes());
        head[8..12].copy_from_slice(&self.publisher.to_be_bytes());
        head[12..16].copy_from_slice(&self.topic.to_be_bytes());
        head[16..24].copy_from_slice(&self.seq.to_be_bytes());
        head[24..32].copy_from_slice(&self.sent_ns.to_be_bytes());
        true
    }

    /// The stamp at the front of `payload`, or `None` when it is not a bench message (or
    /// carries a sequence number no publisher sends: 0, or the largest, which leaves no
    /// room to count up to it).
    pub(crate) fn read(payload: &[u8]) -> Option<Stamp> {
        let head = payload.get(..STAMP_LEN)?;
        if head[0..4] != MAGIC {
            return None;
        }
        let u32_at = |at: usize| head[at..at + 4].try_into().ok().map(u32::from_be_bytes);
        let u64_at = |at: usize| head[at..at + 8].try_into().ok().map(u64::from_be_bytes);
        let seq = u64_at(16).filter(|&seq| seq != 0 && seq != u64::MAX)?;
        Some(Stamp {
            run: u32_at(4)?,
            publisher: u32_at(8)?,
            topic: u32_at(12)?,
            seq,
            sent_ns: u64_at(24)?,
        })
    }
}

/// The zero-filled payload a publisher encodes every message from; the stamp is then
/// written over the encoded copy, so no message costs an allocation.
pub(crate) fn template(size: usize) -> Bytes {
    Bytes::from(vec![0u8; size.max(STAMP_LEN)])
}

/// Nanoseconds since the Unix epoch, read from the monotonic clock anchored to the wall
/// clock once: steady within the process (a wall-clock step cannot bend a latency), and
/// comparable between bench processes on one machine up to the difference of their two
/// anchor readings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    anchor: Instant,
    anchor_unix_ns: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            anchor: Instant::now(),
            anchor_unix_ns: u64::try_from(unix.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.at(Instant::now())
    }

    /// The time of `instant` on this clock (the anchor's, for an instant before it).
    pub(crate) fn at(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.anchor).as_nanos();
        self.anchor_unix_ns
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            run: 0xdead_beef,
            publisher: 7,
            topic: 3,
            seq: u64::MAX - 1,
            sent_ns: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn a_stamp_reads_back_from_a_padded_payload() {
        let mut payload = template(100).to_vec();
        assert_eq!(payload.len(), 100);
        assert!(stamp().write(&mut payload));
        assert_eq!(Stamp::read(&payload), Some(stamp()));
        assert!(payload[STAMP_LEN..].iter().all(|&b| b == 0), "padding kept");
    }

    #[test]
    fn the_template_is_never_shorter_than_the_stamp() {
        assert_eq!(template(0).len(), STAMP_LEN);
        let mut payload = template(STAMP_LEN).to_vec();
        assert!(stamp().write(&mut payload));
        assert_eq!(Stamp::read(&payload), Some(stamp()));
    }

    #[test]
    fn short_or_foreign_payloads_are_not_stamps() {
        let mut short = vec![0u8; STAMP_LEN - 1];
        assert!(!stamp().write(&mut short));
        assert_eq!(Stamp::read(&short), None);
        assert_eq!(Stamp::read(b""), None);
        let mut foreign = template(64).to_vec();
        assert!(stamp().write(&mut foreign));
        foreign[0] = b'x';
        assert_eq!(Stamp::read(&foreign), None);
        for seq in [0, u64::MAX] {
            let mut odd = template(64).to_vec();
            assert!(Stamp { seq, ..stamp() }.write(&mut odd));
            assert_eq!(Stamp::read(&odd), None, "seq {seq}");
        }
    }

    #[test]
    fn the_clock_moves_forward_from_the_wall_clock() {
        let clock = Clock::new();
        let a = clock.now_ns();
        let b = clock.now_ns();
        assert!(b >= a);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        assert!(
            a.abs_diff(wall) < 1_000_000_000,
            "anchored to the wall clock"
        );
    }
}
