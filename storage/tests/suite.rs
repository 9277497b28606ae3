//! openraft's storage conformance suite against the real sled-backed stores.

mod common;

use common::{Kv, KvApp};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use raftmq_storage::{LogStore, StateMachineStore, Storage};

struct SledBuilder;

impl StoreBuilder<Kv, LogStore<Kv>, StateMachineStore<Kv, KvApp>, tempfile::TempDir>
    for SledBuilder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            LogStore<Kv>,
            StateMachineStore<Kv, KvApp>,
        ),
        StorageError<u64>,
    > {
        let dir = tempfile::tempdir()
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        let open = || -> Result<_, raftmq_storage::StoreError> {
            let storage = Storage::open(dir.path())?;
            Ok((
                storage.log_store()?,
                storage.state_machine(KvApp::default())?,
            ))
        };
        let (log, sm) =
            open().map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("storage suite failed: {e}");
    }
}
