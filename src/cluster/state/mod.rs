//! The broker's replicated state machine: [`BrokerState`] applies each [`CommandBatch`]
//! to the `storage` crate's tables, deterministically (DESIGN §2, §3).
//!
//! Same commands, same state bytes and same outcomes on every node: `apply` reads no
//! clock (time comes in commands, and the state keeps its own clock moved only by `Tick`),
//! draws no random numbers, and iterates only ordered collections. The subscription trie
//! is an in-memory index derived from the state and rebuilt by `reset`.
//!
//! The handlers are split by role, each an `impl Apply` block: `session` (connect,
//! disconnect, session end, node down), `subscribe`, `publish` (routing and fan-out),
//! `shared` (shared-subscription members), `queue` (outbound queues, packet ids, acks),
//! `retained` (stored messages and the retained store), `expiry` (the clock and `Tick`).
//! `tables` lays out the tables, `index` is the in-memory subscription index, and
//! `reader` holds the read helpers for the rest of the broker.

mod access;
mod expiry;
mod index;
mod publish;
mod queue;
mod reader;
mod retained;
mod session;
mod shared;
mod subscribe;
mod tables;

use openraft::LogId;
use raftmq_storage::{Application, StateReader, StateTx, StoreError, Table};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::acl::AclHandle;
use crate::cluster::command::{BatchOutcome, Command, CommandBatch, Millis, Outcome};
use crate::cluster::types::TypeConfig;

pub use expiry::{MAX_CLOCK_STEP, TICK_LIMIT};
pub use index::{Merged, Subscribers, SubscriptionIndex};
pub use reader::{BrokerReader, QueueTotals};
pub use session::NODE_DOWN_LIMIT;
pub use tables::{
    BrokerMeta, CorruptState, EntryStage, MessageRefs, QueueEntry, QueueRecord, SessionRecord,
    ShareRef, StoredMessage, SubscriptionRecord, UserRecord,
};

use index::RouteTable;
use tables::{BROKER, META_KEY, decode, encode};

/// Called with every outcome once its batch is in the store, in log order: the node wakes
/// the connections that outcome concerns.
pub type Notifier = Box<dyn Fn(&Outcome) + Send + Sync>;

/// The broker's `Application` for the storage crate's state-machine store.
pub struct BrokerState {
    index: SubscriptionIndex,
    notifier: Option<Notifier>,
    /// The live ACL the node's connections consult: its cluster part follows `SetAcl`.
    acl: Option<AclHandle>,
}

impl BrokerState {
    pub fn new() -> Self {
        BrokerState {
            index: SubscriptionIndex::default(),
            notifier: None,
            acl: None,
        }
    }

    /// Calls `notifier` with every applied outcome (see [`Notifier`]).
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Keeps `acl`'s cluster rules equal to the state's, entry by entry.
    pub fn with_acl(mut self, acl: AclHandle) -> Self {
        self.acl = Some(acl);
        self
    }

    /// The subscription index, shared: it follows this state machine's applies and resets.
    pub fn index(&self) -> SubscriptionIndex {
        self.index.clone()
    }
}

impl Default for BrokerState {
    fn default() -> Self {
        BrokerState::new()
    }
}

impl Application<TypeConfig> for BrokerState {
    fn apply(
        &mut self,
        tx: &mut StateTx<'_>,
        _log_id: &LogId<u64>,
        batch: &CommandBatch,
    ) -> Result<BatchOutcome, StoreError> {
        // Held for the whole entry: QoS 0 routing on this node waits for at most one
        // entry's worth of commands, and never sees half of one.
        let mut table = self.index.write();
        let mut apply = Apply::begin(tx, &mut table, self.acl.as_ref())?;
        let mut outcomes = Vec::with_capacity(batch.0.len());
        for command in &batch.0 {
            outcomes.push(apply.command(command)?);
        }
        apply.finish()?;
        Ok(BatchOutcome(outcomes))
    }

    fn empty_response(&self) -> BatchOutcome {
        BatchOutcome(Vec::new())
    }

    fn committed(&mut self, responses: &[BatchOutcome]) {
        if let Some(notify) = &self.notifier {
            for outcome in responses.iter().flat_map(|batch| &batch.0) {
                notify(outcome);
            }
        }
    }

    fn reset(&mut self, state: &StateReader) -> Result<(), StoreError> {
        let rebuilt = RouteTable::load(state)?;
        *self.index.write() = rebuilt;
        if let Some(acl) = &self.acl {
            acl.set_cluster_rules(&access::stored_rules(state)?);
        }
        Ok(())
    }
}

/// One log entry being applied: the store's transaction, the subscription index, and the
/// broker-wide record, written back once at the end.
pub(crate) struct Apply<'s, 't> {
    tx: &'s mut StateTx<'t>,
    index: &'s mut RouteTable,
    acl: Option<&'s AclHandle>,
    meta: BrokerMeta,
    meta_at_start: BrokerMeta,
}

impl<'s, 't> Apply<'s, 't> {
    fn begin(
        tx: &'s mut StateTx<'t>,
        index: &'s mut RouteTable,
        acl: Option<&'s AclHandle>,
    ) -> Result<Self, StoreError> {
        let meta = match tx.get(BROKER, META_KEY)? {
            Some(raw) => decode(&raw)?,
            None => BrokerMeta {
                next_epoch: 1,
                next_message_id: 1,
                ..BrokerMeta::default()
            },
        };
        Ok(Apply {
            tx,
            index,
            acl,
            meta,
            meta_at_start: meta,
        })
    }

    fn finish(self) -> Result<(), StoreError> {
        if self.meta != self.meta_at_start {
            self.tx.insert(BROKER, META_KEY, encode(&self.meta)?);
        }
        Ok(())
    }

    /// The one dispatch over commands.
    fn command(&mut self, command: &Command) -> Result<Outcome, StoreError> {
        match command {
            Command::Connect(connect) => self.connect(connect),
            Command::Disconnect(disconnect) => self.disconnect(disconnect),
            Command::Subscribe(subscribe) => self.subscribe(subscribe),
            Command::Unsubscribe {
                client_id,
                epoch,
                filters,
            } => self.unsubscribe(client_id, *epoch, filters),
            Command::Publish(publish) => self.publish(publish),
            Command::Ack {
                client_id,
                epoch,
                packet_ids,
            } => self.ack(client_id, *epoch, packet_ids),
            Command::Received {
                client_id,
                epoch,
                packet_id,
            } => self.received(client_id, *epoch, *packet_id),
            Command::Release {
                client_id,
                epoch,
                packet_id,
            } => self.release(client_id, *epoch, *packet_id),
            Command::Tick { now } => self.tick(*now),
            Command::NodeDown { node, now } => self.node_down(*node, *now),
            Command::HandOver(hand_over) => self.hand_over_unfinished(hand_over),
            Command::User(change) => self.change_users(change),
            Command::SetAcl { rules } => self.set_acl(rules),
            Command::Evict(evict) => self.evict(evict),
        }
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.tx.get(table, key)?.map(|raw| decode(&raw)).transpose()
    }

    fn put<T: Serialize>(&mut self, table: Table, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.tx.insert(table, key, encode(value)?);
        Ok(())
    }

    /// Marks `key` present in an index table.
    fn mark(&mut self, table: Table, key: &[u8]) {
        self.tx.insert(table, key, Vec::new());
    }

    fn remove(&mut self, table: Table, key: &[u8]) {
        self.tx.remove(table, key);
    }

    fn next_epoch(&mut self) -> u64 {
        let epoch = self.meta.next_epoch;
        self.meta.next_epoch += 1;
        epoch
    }

    fn next_message_id(&mut self) -> u64 {
        let id = self.meta.next_message_id;
        self.meta.next_message_id += 1;
        id
    }

    /// The time a command happens at: its stamp, kept within [clock, clock + the largest
    /// step a tick may take], so a proposer whose clock is off can neither date things
    /// before the state's present nor far into its future. Before the first tick the
    /// state has no clock and the stamp is taken as it is.
    fn time(&self, now: Millis) -> Millis {
        if self.meta.clock == 0 {
            return now;
        }
        now.clamp(
            self.meta.clock,
            self.meta.clock.saturating_add(MAX_CLOCK_STEP),
        )
    }
}

/// `seconds` after `from`, on the millisecond clock.
fn after(from: Millis, seconds: u32) -> Millis {
    from.saturating_add(u64::from(seconds) * 1000)
}
