//! The replicated state machine: openraft's `RaftStateMachine` on a sled tree per state
//! generation, applying commands through the application's [`Application`], with
//! snapshots streamed to and from files.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    RaftTypeConfig, Snapshot, SnapshotMeta, StorageError, StoredMembership,
};
use tokio::io::AsyncSeekExt;

use crate::StoreError;
use crate::encoding::{decode, encode};
use crate::log_store::LogTypeConfig;
use crate::observer::Observer;
use crate::snapshot::{SnapshotReader, SnapshotWriter, remove_if_present};
use crate::state::{Application, StateReader, StateTx, Table};

pub(crate) const ROOT_TREE: &str = "sm_root";
const GENERATION_KEY: &[u8] = b"generation";
const SNAPSHOT_KEY: &[u8] = b"snapshot";
const APPLIED_KEY: &[u8] = b"applied";
const MEMBERSHIP_KEY: &[u8] = b"membership";
const STATE_TREE_PREFIX: &str = "sm.";
/// Records per sled batch while installing a snapshot.
const INSTALL_BATCH: usize = 1024;

/// The type configurations whose state this store keeps: those of the log store, with
/// snapshots held in files.
pub trait StateTypeConfig: LogTypeConfig + RaftTypeConfig<SnapshotData = tokio::fs::File> {}

impl<C> StateTypeConfig for C where C: LogTypeConfig + RaftTypeConfig<SnapshotData = tokio::fs::File>
{}

type Meta<C> = SnapshotMeta<u64, <C as RaftTypeConfig>::Node>;
type Membership<C> = StoredMembership<u64, <C as RaftTypeConfig>::Node>;

/// The state-machine store.
pub struct StateMachineStore<C: RaftTypeConfig, A> {
    db: sled::Db,
    root: sled::Tree,
    generation: u64,
    state: Arc<RwLock<sled::Tree>>,
    snapshot_dir: PathBuf,
    app: A,
    observer: Observer,
    _types: PhantomData<C>,
}

fn state_tree_name(generation: u64) -> String {
    format!("{STATE_TREE_PREFIX}{generation}")
}

fn sm_err(verb: ErrorVerb) -> impl FnOnce(StoreError) -> StorageError<u64> {
    move |e| e.raft(ErrorSubject::StateMachine, verb)
}

fn snap_err(verb: ErrorVerb) -> impl FnOnce(StoreError) -> StorageError<u64> {
    move |e| e.raft(ErrorSubject::Snapshot(None), verb)
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(e.to_string()))
}

/// The snapshot that `get_current_snapshot` serves, as recorded in `sm_root`.
fn current_snapshot<C: StateTypeConfig>(
    root: &sled::Tree,
) -> Result<Option<(Meta<C>, String)>, StoreError> {
    root.get(SNAPSHOT_KEY)?.map(|raw| decode(&raw)).transpose()
}

impl<C: StateTypeConfig, A: Application<C>> StateMachineStore<C, A> {
    pub(crate) fn open(
        db: &sled::Db,
        snapshot_dir: PathBuf,
        app: A,
        observer: Observer,
    ) -> Result<Self, StoreError> {
        let root = db.open_tree(ROOT_TREE)?;
        let generation = match root.get(GENERATION_KEY)? {
            Some(raw) => decode(&raw)?,
            None => 0,
        };
        let current = state_tree_name(generation);
        // Trees of other generations are what a crash left of an unfinished install, or
        // of an old generation not yet dropped.
        for name in db.tree_names() {
            if name.starts_with(STATE_TREE_PREFIX.as_bytes()) && name != current.as_bytes() {
                db.drop_tree(name)?;
            }
        }
        let tree = db.open_tree(&current)?;
        let keep = current_snapshot::<C>(&root)?.map(|(_, file)| file);
        remove_stale_files(&snapshot_dir, keep.as_deref())?;
        let mut store = StateMachineStore {
            db: db.clone(),
            root,
            generation,
            state: Arc::new(RwLock::new(tree)),
            snapshot_dir,
            app,
            observer,
            _types: PhantomData,
        };
        let reader = store.reader();
        store.app.reset(&reader)?;
        Ok(store)
    }

    /// Read access to the current state, valid across snapshot installs.
    pub fn reader(&self) -> StateReader {
        StateReader {
            current: self.state.clone(),
        }
    }

    /// The application, for reading its in-memory indexes.
    pub fn app(&self) -> &A {
        &self.app
    }

    fn tree(&self) -> sled::Tree {
        match self.state.read() {
            Ok(tree) => tree.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn applied(&self) -> Result<(Option<LogId<u64>>, Membership<C>), StoreError> {
        let reader = self.reader();
        let applied = match reader.get(Table::META, APPLIED_KEY)? {
            Some(raw) => decode(&raw)?,
            None => None,
        };
        let membership = match reader.get(Table::META, MEMBERSHIP_KEY)? {
            Some(raw) => decode(&raw)?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }

    /// Streams the current state into a new snapshot file. Runs while `apply` cannot (it
    /// holds `&mut self`), which is what makes the view consistent; the state tree is
    /// iterated on a blocking thread so the runtime's other tasks go on meanwhile.
    async fn dump(&mut self) -> Result<(Meta<C>, PathBuf), StoreError> {
        let (last_log_id, last_membership) = self.applied()?;
        let id = self.db.generate_id()?;
        let snapshot_id = match last_log_id {
            Some(log_id) => format!("{}-{}-{id}", log_id.leader_id.term, log_id.index),
            None => format!("0-0-{id}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let path = self.snapshot_dir.join(format!("{}.snap", meta.snapshot_id));
        let tree = self.tree();
        let header = meta.clone();
        let path = tokio::task::spawn_blocking(move || -> Result<PathBuf, StoreError> {
            let mut writer = SnapshotWriter::create(&path, &header)?;
            for item in tree.iter() {
                let (k, v) = item?;
                if let Err(e) = writer.record(&k, &v) {
                    writer.abandon();
                    return Err(e);
                }
            }
            writer.finish()
        })
        .await
        .map_err(join_err)??;
        Ok((meta, path))
    }

    async fn install(
        &mut self,
        meta: &Meta<C>,
        snapshot: tokio::fs::File,
    ) -> Result<(), StoreError> {
        let mut snapshot = snapshot;
        snapshot.seek(std::io::SeekFrom::Start(0)).await?;
        let input = snapshot.into_std().await;
        let next_generation = self.generation + 1;
        let new_name = state_tree_name(next_generation);
        self.db.drop_tree(&new_name)?;
        let new_tree = self.db.open_tree(&new_name)?;
        let path = self.snapshot_dir.join(format!("{}.snap", meta.snapshot_id));

        // Load the records into the new generation and keep a copy as our own snapshot
        // file, on a blocking thread: a large snapshot must not stall the runtime.
        let load_tree = new_tree.clone();
        let load_meta = meta.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<PathBuf, StoreError> {
            let (mut reader, file_meta) = SnapshotReader::open::<Meta<C>>(input)?;
            if file_meta != load_meta {
                return Err(StoreError::CorruptSnapshot(
                    "metadata differs from the one sent".into(),
                ));
            }
            let mut writer = SnapshotWriter::create(&path, &load_meta)?;
            let mut batch = sled::Batch::default();
            let mut pending = 0;
            loop {
                let record = match reader.next() {
                    Ok(record) => record,
                    Err(e) => {
                        writer.abandon();
                        return Err(e);
                    }
                };
                let Some((key, value)) = record else { break };
                writer.record(&key, &value)?;
                batch.insert(key, value);
                pending += 1;
                if pending == INSTALL_BATCH {
                    load_tree.apply_batch(std::mem::take(&mut batch))?;
                    pending = 0;
                }
            }
            // The records include the store's own table (last applied, membership), taken
            // from the same view as the metadata checked above.
            load_tree.apply_batch(batch)?;
            writer.finish()
        })
        .await
        .map_err(join_err)?;
        let path = match loaded {
            Ok(path) => path,
            Err(e) => {
                self.db.drop_tree(&new_name)?;
                return Err(e);
            }
        };

        // The switch: one batch on sm_root, flushed. Before it the old state is in force.
        let file = file_name(&path);
        let mut flip = sled::Batch::default();
        flip.insert(GENERATION_KEY, encode(&next_generation)?);
        flip.insert(SNAPSHOT_KEY, encode(&(meta, &file))?);
        self.root.apply_batch(flip)?;
        self.observer.flush(&self.db).await?;

        let old_name = state_tree_name(self.generation);
        match self.state.write() {
            Ok(mut tree) => *tree = new_tree,
            Err(poisoned) => *poisoned.into_inner() = new_tree,
        }
        self.generation = next_generation;
        self.db.drop_tree(old_name)?;
        remove_stale_files(&self.snapshot_dir, Some(&file))?;
        let reader = self.reader();
        self.app.reset(&reader)?;
        self.observer.snapshot_installed();
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes every file of the snapshot directory but `keep`: unfinished writes (`.tmp`),
/// unfinished receipts (`.part`) and superseded snapshots.
fn remove_stale_files(dir: &Path, keep: Option<&str>) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if Some(name.to_string_lossy().as_ref()) != keep {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

impl<C: StateTypeConfig, A: Application<C>> RaftStateMachine<C> for StateMachineStore<C, A> {
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership<C>), StorageError<u64>> {
        self.applied().map_err(sm_err(ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<u64>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let tree = self.tree();
        let mut tx = StateTx::new(&tree);
        let mut responses = Vec::new();
        let mut last = None;
        for entry in entries {
            last = Some(entry.log_id);
            let response = match &entry.payload {
                EntryPayload::Blank => self.app.empty_response(),
                EntryPayload::Normal(data) => self
                    .app
                    .apply(&mut tx, &entry.log_id, data)
                    .map_err(sm_err(ErrorVerb::Write))?,
                EntryPayload::Membership(membership) => {
                    let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
                    tx.put_meta(
                        MEMBERSHIP_KEY,
                        encode(&stored).map_err(sm_err(ErrorVerb::Write))?,
                    );
                    self.app.empty_response()
                }
            };
            responses.push(response);
        }
        if let Some(last) = last {
            tx.put_meta(
                APPLIED_KEY,
                encode(&Some(last)).map_err(sm_err(ErrorVerb::Write))?,
            );
        }
        // One batch: the state changes and last_applied land together or not at all.
        tree.apply_batch(tx.into_batch())
            .map_err(|e| sm_err(ErrorVerb::Write)(e.into()))?;
        self.app.committed(&responses);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            dumped: Some(self.dump().await),
            db: self.db.clone(),
            root: self.root.clone(),
            snapshot_dir: self.snapshot_dir.clone(),
            observer: self.observer.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<u64>> {
        let result = async {
            let id = self.db.generate_id()?;
            let path = self.snapshot_dir.join(format!("incoming-{id}.part"));
            let file = tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await?;
            Ok(Box::new(file))
        };
        result.await.map_err(snap_err(ErrorVerb::Write))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, C::Node>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<u64>> {
        self.install(meta, *snapshot)
            .await
            .map_err(snap_err(ErrorVerb::Write))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<u64>> {
        open_current(&self.root, &self.snapshot_dir)
            .await
            .map_err(snap_err(ErrorVerb::Read))
    }
}

async fn open_current<C: StateTypeConfig>(
    root: &sled::Tree,
    dir: &Path,
) -> Result<Option<Snapshot<C>>, StoreError> {
    let Some((meta, file)) = current_snapshot::<C>(root)? else {
        return Ok(None);
    };
    let snapshot = tokio::fs::File::open(dir.join(file)).await?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(snapshot),
    }))
}

/// Finishes a snapshot that [`StateMachineStore`] already streamed to disk: records it as
/// the current one and serves it.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    dumped: Option<Result<(Meta<C>, PathBuf), StoreError>>,
    db: sled::Db,
    root: sled::Tree,
    snapshot_dir: PathBuf,
    observer: Observer,
}

impl<C: StateTypeConfig> RaftSnapshotBuilder<C> for SnapshotBuilder<C> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<u64>> {
        let result = async {
            let (meta, path) = match self.dumped.take() {
                Some(dumped) => dumped?,
                None => {
                    return Err(StoreError::CorruptSnapshot(
                        "snapshot builder used twice".into(),
                    ));
                }
            };
            let file = file_name(&path);
            self.root.insert(SNAPSHOT_KEY, encode(&(&meta, &file))?)?;
            self.observer.flush(&self.db).await?;
            self.observer.snapshot_built();
            remove_stale_files(&self.snapshot_dir, Some(&file))?;
            let snapshot = tokio::fs::File::open(&path).await?;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(snapshot),
            })
        };
        result.await.map_err(snap_err(ErrorVerb::Write))
    }
}
