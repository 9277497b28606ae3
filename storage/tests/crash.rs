//! Crash test for the log store: a child process appends entries, saves votes and purges,
//! printing each acknowledgement only after the store returned; the parent SIGKILLs it at
//! a random moment, reopens the store and checks that everything acknowledged is there and
//! that the log has no hole. Many rounds on the same directory, bounded in time.
//!
//! A SIGKILL leaves the page cache intact, so this catches acknowledging before writing,
//! torn batches and broken recovery, not a missing fsync; the Jepsen harness's
//! lose-unfsynced-writes nemesis is the test for that.
//!
//! `RAFTMQ_CRASH_SEED` replays a run; `RAFTMQ_CRASH_ROUNDS` sets the number of rounds.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kv, KvOp, log_id, set};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{EntryPayload, RaftLogReader, Vote};

const CHILD_ENV: &str = "RAFTMQ_STORAGE_CRASH_CHILD";
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(dir) => child(Path::new(&dir)),
        Err(_) => parent(),
    }
}

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key_for(index: u64) -> String {
    format!("k{index}")
}

fn value_for(index: u64) -> String {
    format!("v{index}")
}

fn child(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let storage = raftmq_storage::Storage::open(dir).expect("open");
        let mut log = storage.log_store::<Kv>().expect("log store");
        let state = log.get_log_state().await.expect("log state");
        let mut next = state.last_log_id.map_or(1, |id| id.index + 1);
        let mut term = log
            .read_vote()
            .await
            .expect("vote")
            .map_or(1, |v| v.leader_id().term);
        let seed = u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rng = Rng(seed);
        let stdout = std::io::stdout();
        for round in 0u64.. {
            if round % 7 == 0 {
                term += 1;
                log.save_vote(&Vote::new(term, 1)).await.expect("save vote");
                writeln!(stdout.lock(), "VOTE {term}").expect("stdout");
            }
            let count = 1 + rng.below(40);
            let entries: Vec<_> = (next..next + count)
                .map(|i| set(term, i, &key_for(i), &value_for(i)))
                .collect();
            log.blocking_append(entries).await.expect("append");
            next += count;
            writeln!(stdout.lock(), "ACK {}", next - 1).expect("stdout");
            if round % 23 == 22 && next > 200 {
                let upto = next - 150;
                log.purge(log_id(term, upto)).await.expect("purge");
                writeln!(stdout.lock(), "PURGE {upto}").expect("stdout");
            }
        }
    });
}

#[derive(Default)]
struct Acked {
    vote: u64,
    index: u64,
    purged: u64,
}

fn parent() {
    let seed = std::env::var("RAFTMQ_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let rounds: u32 = std::env::var("RAFTMQ_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    println!("crash test: seed {seed}, up to {rounds} rounds");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("own binary");
    let started = Instant::now();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut done = 0;
    while done < rounds && started.elapsed() < TIME_LIMIT {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let shared = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut acked = shared.lock().expect("lock");
                let (what, n) = line
                    .split_once(' ')
                    .expect("a line of the child's protocol");
                let n: u64 = n.parse().expect("a number");
                match what {
                    "VOTE" => acked.vote = acked.vote.max(n),
                    "ACK" => acked.index = acked.index.max(n),
                    "PURGE" => acked.purged = acked.purged.max(n),
                    other => panic!("unexpected line from the child: {other}"),
                }
            }
        });
        std::thread::sleep(Duration::from_millis(30 + rng.below(300)));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        reader.join().expect("reader thread");
        verify(dir.path(), &acked.lock().expect("lock"), done);
        done += 1;
    }
    let acked = acked.lock().expect("lock");
    assert!(done >= 5, "only {done} rounds ran within the time limit");
    assert!(acked.index > 0, "the child never acknowledged anything");
    println!(
        "crash test: {done} rounds in {:.1} s, {} entries and term {} acknowledged, log purged to {}",
        started.elapsed().as_secs_f64(),
        acked.index,
        acked.vote,
        acked.purged
    );
    println!("1 passed, 0 failed");
}

fn verify(dir: &Path, acked: &Acked, round: u32) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let storage = common::reopen(dir);
        let mut log = storage.log_store::<Kv>().expect("log store");
        let vote = log.read_vote().await.expect("read vote");
        let term = vote.map_or(0, |v| v.leader_id().term);
        assert!(
            term >= acked.vote,
            "round {round}: vote term {term} < acknowledged {}",
            acked.vote
        );
        let state = log.get_log_state().await.expect("log state");
        let last = state.last_log_id.map_or(0, |id| id.index);
        let purged = state.last_purged_log_id.map_or(0, |id| id.index);
        assert!(
            last >= acked.index,
            "round {round}: last index {last} < acknowledged {}",
            acked.index
        );
        assert!(
            purged >= acked.purged,
            "round {round}: purged to {purged} < acknowledged {}",
            acked.purged
        );
        let entries = log
            .try_get_log_entries(purged + 1..=last)
            .await
            .expect("read entries");
        assert_eq!(
            entries.len() as u64,
            last - purged,
            "round {round}: a hole in the log"
        );
        for (entry, index) in entries.iter().zip(purged + 1..) {
            assert_eq!(
                entry.log_id.index, index,
                "round {round}: entries out of order"
            );
            let expected = KvOp::Set {
                key: key_for(index),
                value: value_for(index),
            };
            assert!(
                matches!(&entry.payload, EntryPayload::Normal(op) if *op == expected),
                "round {round}: entry {index} holds {:?}",
                entry.payload
            );
        }
    });
}
