//! Loss and duplicate accounting: which sequence numbers one subscriber received from
//! each publisher's stream, kept as runs of consecutive numbers, so memory grows with the
//! number of gaps and not with the number of messages.

use std::collections::{BTreeMap, HashMap};

/// One publisher's stream on one topic, as its stamps name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StreamKey {
    pub(crate) run: u32,
    pub(crate) publisher: u32,
    pub(crate) topic: u32,
}

/// A set of sequence numbers as disjoint, non-adjacent runs `start..end`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqSet {
    runs: BTreeMap<u64, u64>,
    len: u64,
}

impl SeqSet {
    /// The numbers `1..=n`.
    pub(crate) fn up_to(n: u64) -> SeqSet {
        let mut set = SeqSet::default();
        if n > 0 {
            set.runs.insert(1, n.saturating_add(1));
            set.len = n;
        }
        set
    }

    /// Adds `seq`; `false` when it was already there (a duplicate).
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        let end = seq.saturating_add(1);
        // The common case: the next number of the highest run.
        if let Some(mut last) = self.runs.last_entry()
            && *last.get() == seq
        {
            *last.get_mut() = end;
            self.len += 1;
            return true;
        }
        let below = self.runs.range(..=seq).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = below
            && seq < e
        {
            return false;
        }
        let mut start = seq;
        if let Some((s, e)) = below
            && e == seq
        {
            start = s;
        }
        let mut new_end = end;
        if let Some(e) = self.runs.remove(&end) {
            new_end = e;
        }
        self.runs.insert(start, new_end);
        self.len += 1;
        true
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The lowest and highest numbers held.
    pub(crate) fn bounds(&self) -> Option<(u64, u64)> {
        let (&low, _) = self.runs.first_key_value()?;
        let (_, &end) = self.runs.last_key_value()?;
        Some((low, end - 1))
    }

    /// How many of `low..=high` are missing.
    pub(crate) fn missing(&self, low: u64, high: u64) -> u64 {
        if high < low {
            return 0;
        }
        let held: u64 = self
            .runs
            .range(..=high)
            .map(|(&s, &e)| {
                let (s, e) = (s.max(low), e.min(high.saturating_add(1)));
                e.saturating_sub(s)
            })
            .sum();
        (high - low + 1) - held
    }

    /// How many numbers of `other` this set lacks.
    pub(crate) fn missing_of(&self, other: &SeqSet) -> u64 {
        other
            .runs
            .iter()
            .map(|(&start, &end)| self.missing(start, end - 1))
            .sum()
    }

    /// How many numbers are missing between the lowest and the highest held: the losses a
    /// subscriber can see without knowing where the stream started or ended.
    pub(crate) fn gaps(&self) -> u64 {
        self.bounds()
            .map_or(0, |(low, high)| (high - low + 1) - self.len)
    }
}

/// What one subscriber received, stream by stream.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    streams: HashMap<StreamKey, SeqSet>,
    pub(crate) duplicates: u64,
}

impl Tally {
    /// Records one received message; `false` when this subscriber already had it.
    pub(crate) fn record(&mut self, key: StreamKey, seq: u64) -> bool {
        let new = self.streams.entry(key).or_default().insert(seq);
        if !new {
            self.duplicates += 1;
        }
        new
    }

    /// Messages of `key` that the publisher was owed delivery of (`owed`: those the
    /// broker acknowledged) and that never arrived.
    pub(crate) fn lost_of(&self, key: StreamKey, owed: &SeqSet) -> u64 {
        match self.streams.get(&key) {
            Some(set) => set.missing_of(owed),
            None => owed.len(),
        }
    }

    /// Gaps inside every stream seen, for a subscriber that does not know the publishers.
    pub(crate) fn gaps(&self) -> u64 {
        self.streams.values().map(SeqSet::gaps).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The same questions answered from a plain set.
    fn naive_missing(set: &BTreeSet<u64>, low: u64, high: u64) -> u64 {
        (low..=high).filter(|n| !set.contains(n)).count() as u64
    }

    #[test]
    fn in_order_numbers_stay_one_run() {
        let mut set = SeqSet::default();
        for n in 1..=1000 {
            assert!(set.insert(n));
        }
        assert_eq!(set.runs.len(), 1);
        assert_eq!(set.len(), 1000);
        assert_eq!(set.bounds(), Some((1, 1000)));
        assert_eq!(set.missing(1, 1000), 0);
        assert_eq!(set.missing(1, 1005), 5);
        assert_eq!(set.gaps(), 0);
    }

    #[test]
    fn a_gap_filled_late_merges_the_runs() {
        let mut set = SeqSet::default();
        for n in [1, 2, 4, 5, 7] {
            assert!(set.insert(n));
        }
        assert_eq!(set.gaps(), 2);
        assert_eq!(set.missing(1, 7), 2);
        assert!(set.insert(3));
        assert!(set.insert(6));
        assert_eq!(set.runs.len(), 1);
        assert_eq!(set.gaps(), 0);
    }

    #[test]
    fn up_to_is_one_run_and_an_owed_set_is_checked_run_by_run() {
        assert_eq!(SeqSet::up_to(0).len(), 0);
        let all = SeqSet::up_to(10);
        assert_eq!((all.len(), all.bounds()), (10, Some((1, 10))));
        let mut some = SeqSet::default();
        for n in [2, 3, 9] {
            some.insert(n);
        }
        assert_eq!(some.missing_of(&all), 7);
        assert_eq!(all.missing_of(&some), 0);
    }

    #[test]
    fn duplicates_are_refused_wherever_they_fall() {
        let mut set = SeqSet::default();
        for n in [10, 11, 12, 20, 21] {
            set.insert(n);
        }
        for dup in [10, 11, 12, 20, 21] {
            assert!(!set.insert(dup), "{dup}");
        }
        assert_eq!(set.len(), 5);
    }

    #[test]
    fn agrees_with_a_plain_set_on_scrambled_input() {
        let mut set = SeqSet::default();
        let mut naive = BTreeSet::new();
        // A fixed scramble of 1..=500 with repeats and holes: no randomness in a unit test.
        for i in 0..1500u64 {
            let n = (i * 7919) % 600 + 1;
            if n % 37 == 0 {
                continue;
            }
            assert_eq!(set.insert(n), naive.insert(n), "insert {n}");
            if i % 97 == 0 {
                let high = n + 13;
                assert_eq!(set.missing(3, high), naive_missing(&naive, 3, high));
            }
        }
        assert_eq!(set.len(), naive.len() as u64);
        let (low, high) = set.bounds().unwrap();
        assert_eq!(set.gaps(), naive_missing(&naive, low, high));
        assert_eq!(set.missing(1, 700), naive_missing(&naive, 1, 700));
    }

    #[test]
    fn the_tally_counts_lost_and_duplicate_messages_per_stream() {
        let a = StreamKey {
            run: 1,
            publisher: 0,
            topic: 0,
        };
        let b = StreamKey { publisher: 1, ..a };
        let silent = StreamKey { publisher: 2, ..a };
        let mut tally = Tally::default();
        for n in [1, 2, 3, 5] {
            assert!(tally.record(a, n));
        }
        assert!(!tally.record(a, 2));
        for n in [1, 2] {
            tally.record(b, n);
        }
        assert!(!tally.record(b, 1));
        assert_eq!(tally.duplicates, 2);
        // a was owed 1..=6: 4 and 6 lost; b owed 1..=2: nothing lost; silent owed 1..=3.
        assert_eq!(tally.lost_of(a, &SeqSet::up_to(6)), 2);
        assert_eq!(tally.lost_of(b, &SeqSet::up_to(2)), 0);
        assert_eq!(tally.lost_of(silent, &SeqSet::up_to(3)), 3);
        // Only what the broker acknowledged is owed: 6 was refused, so only 4 is lost.
        let mut acknowledged = SeqSet::default();
        for n in [1, 2, 3, 4, 5] {
            acknowledged.insert(n);
        }
        assert_eq!(tally.lost_of(a, &acknowledged), 1);
        assert_eq!(tally.lost_of(a, &SeqSet::default()), 0);
        // Without the publishers' counts only the hole at 4 shows.
        assert_eq!(tally.gaps(), 1);
    }
}
