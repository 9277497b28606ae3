//! The state-machine store: apply, restart, snapshot transfer between two nodes, and a
//! corrupt snapshot refused without touching the state in force.

mod common;

use common::{Kv, KvApp, KvOp, VALUES, log_id, set};
use openraft::RaftSnapshotBuilder;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use raftmq_storage::Storage;
use tokio::io::AsyncWriteExt;

async fn apply_sets(
    sm: &mut raftmq_storage::StateMachineStore<Kv, KvApp>,
    range: std::ops::Range<u64>,
) {
    let entries: Vec<_> = range
        .map(|i| set(1, i, &format!("k{}", i % 50), &format!("v{i}")))
        .collect();
    sm.apply(entries).await.unwrap();
}

#[tokio::test]
async fn apply_answers_in_order_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let digest = {
        let storage = Storage::open(dir.path()).unwrap();
        let mut sm = storage.state_machine::<Kv, _>(KvApp::default()).unwrap();
        let responses = sm
            .apply(vec![
                set(1, 1, "a", "1"),
                set(1, 2, "a", "2"),
                common::set(1, 3, "b", "x"),
                openraft::Entry {
                    log_id: log_id(1, 4),
                    payload: openraft::EntryPayload::Normal(KvOp::Delete { key: "b".into() }),
                },
            ])
            .await
            .unwrap();
        assert_eq!(
            responses,
            vec![None, Some("1".into()), None, Some("x".into())]
        );
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 4)));
        sm.reader().digest().unwrap()
    };
    let storage = common::reopen(dir.path());
    let mut sm = storage.state_machine::<Kv, _>(KvApp::default()).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 4)));
    assert_eq!(sm.reader().get(VALUES, b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(sm.reader().get(VALUES, b"b").unwrap(), None);
    assert_eq!(sm.reader().digest().unwrap(), digest);
    assert_eq!(
        sm.app().keys,
        1,
        "reset rebuilt the in-memory index at open"
    );
}

#[tokio::test]
async fn a_snapshot_moves_the_whole_state_to_another_node() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Storage::open(a_dir.path()).unwrap();
    let mut a_sm = a.state_machine::<Kv, _>(KvApp::default()).unwrap();
    apply_sets(&mut a_sm, 1..2001).await;
    let mut builder = a_sm.get_snapshot_builder().await;
    // Writes after the builder was taken are not in the snapshot: the view is consistent.
    apply_sets(&mut a_sm, 2001..2002).await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 2000)));

    let b = Storage::open(b_dir.path()).unwrap();
    let mut b_sm = b.state_machine::<Kv, _>(KvApp::default()).unwrap();
    apply_sets(&mut b_sm, 1..5).await; // stale state that the snapshot must replace
    let mut incoming = b_sm.begin_receiving_snapshot().await.unwrap();
    let bytes = tokio::fs::read(
        a_dir
            .path()
            .join("snapshots")
            .join(format!("{}.snap", snapshot.meta.snapshot_id)),
    )
    .await
    .unwrap();
    // Sent in chunks, as the network does.
    for chunk in bytes.chunks(777) {
        incoming.write_all(chunk).await.unwrap();
    }
    incoming.flush().await.unwrap();
    b_sm.install_snapshot(&snapshot.meta, incoming)
        .await
        .unwrap();
    assert_eq!(b_sm.applied_state().await.unwrap().0, Some(log_id(1, 2000)));
    assert_eq!(
        b_sm.reader().get(VALUES, b"k0").unwrap(),
        Some(b"v2000".to_vec())
    );
    assert_eq!(b_sm.app().keys, 50);

    // Same state as the source had at the snapshot: rebuild the source at that point.
    let c_dir = tempfile::tempdir().unwrap();
    let c = Storage::open(c_dir.path()).unwrap();
    let mut c_sm = c.state_machine::<Kv, _>(KvApp::default()).unwrap();
    apply_sets(&mut c_sm, 1..2001).await;
    assert_eq!(
        b_sm.reader().digest().unwrap(),
        c_sm.reader().digest().unwrap()
    );

    // The installed snapshot is served, and survives a restart of the receiver.
    let current = b_sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);
    drop(b_sm);
    drop(b);
    let b = common::reopen(b_dir.path());
    let mut b_sm = b.state_machine::<Kv, _>(KvApp::default()).unwrap();
    assert_eq!(
        b_sm.get_current_snapshot().await.unwrap().unwrap().meta,
        snapshot.meta
    );
    assert_eq!(
        b_sm.reader().digest().unwrap(),
        c_sm.reader().digest().unwrap()
    );
    let leftovers: Vec<_> = std::fs::read_dir(b_dir.path().join("snapshots"))
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1, "only the current snapshot file is kept");
}

#[tokio::test]
async fn a_corrupt_snapshot_is_refused_and_the_old_state_stays() {
    let a_dir = tempfile::tempdir().unwrap();
    let a = Storage::open(a_dir.path()).unwrap();
    let mut a_sm = a.state_machine::<Kv, _>(KvApp::default()).unwrap();
    apply_sets(&mut a_sm, 1..300).await;
    let snapshot = a_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = tokio::fs::read(
        a_dir
            .path()
            .join("snapshots")
            .join(format!("{}.snap", snapshot.meta.snapshot_id)),
    )
    .await
    .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;

    let b_dir = tempfile::tempdir().unwrap();
    let b = Storage::open(b_dir.path()).unwrap();
    let mut b_sm = b.state_machine::<Kv, _>(KvApp::default()).unwrap();
    apply_sets(&mut b_sm, 1..10).await;
    let before = b_sm.reader().digest().unwrap();
    let mut incoming = b_sm.begin_receiving_snapshot().await.unwrap();
    incoming.write_all(&bytes).await.unwrap();
    assert!(
        b_sm.install_snapshot(&snapshot.meta, incoming)
            .await
            .is_err()
    );
    assert_eq!(b_sm.reader().digest().unwrap(), before);
    assert_eq!(b_sm.applied_state().await.unwrap().0, Some(log_id(1, 9)));
    assert!(b_sm.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn purge_keeps_the_log_contiguous_and_remembers_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let mut log = storage.log_store::<Kv>().unwrap();
    use openraft::storage::RaftLogStorageExt;
    log.blocking_append((1..=100).map(|i| set(1, i, "k", "v")))
        .await
        .unwrap();
    log.purge(log_id(1, 60)).await.unwrap();
    drop(log);
    drop(storage);
    let storage = common::reopen(dir.path());
    let mut log = storage.log_store::<Kv>().unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 60)));
    assert_eq!(state.last_log_id, Some(log_id(1, 100)));
    use openraft::RaftLogReader;
    let entries = log.try_get_log_entries(0..=100).await.unwrap();
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (61..=100).collect::<Vec<_>>());
}

#[derive(Default)]
struct Flushes(std::sync::atomic::AtomicUsize);

impl raftmq_storage::StorageObserver for Flushes {
    fn flushed(&self, _took: std::time::Duration) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn snapshot_built(&self) {}
    fn snapshot_installed(&self) {}
}

#[tokio::test]
async fn unsafe_no_fsync_skips_every_flush_and_keeps_the_writes() {
    for unsafe_no_fsync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let flushes = std::sync::Arc::new(Flushes::default());
        let options = raftmq_storage::OpenOptions { unsafe_no_fsync };
        let storage = Storage::open_with(dir.path(), options)
            .unwrap()
            .with_observer(flushes.clone());
        let mut log = storage.log_store::<Kv>().unwrap();
        let vote = openraft::Vote::new(3, 1);
        log.save_vote(&vote).await.unwrap();
        storage.flush().await.unwrap();
        let counted = flushes.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(counted == 0, unsafe_no_fsync, "{counted} flushes");
        assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    }
}
