//! openraft's own storage test suite (`openraft::testing::log::Suite`: vote, log state, append,
//! truncate, purge, membership, applied state, snapshots) against Ballast's raft log (`LogStore`,
//! RocksDB with group commit) and state machine (`StateMachine` on its RocksDB host,
//! `Checkpoints`), each built fresh in a temporary data directory.

use std::sync::Arc;

use ballast_raft::checkpoints::{self, Checkpoints};
use ballast_raft::layout::RAFT_LOG_DIR;
use ballast_raft::log_store::LogStore;
use ballast_raft::metrics::Metrics;
use ballast_raft::state_machine::{StateMachine, StoreCell};
use ballast_raft::types::TypeConfig;
use ballast_store::{DiskStore, StoreOptions};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

/// A member's log and state machine, opened as `Replica::open` opens them.
struct MemberStorage;

impl StoreBuilder<TypeConfig, LogStore, StateMachine<Checkpoints>, TempDir> for MemberStorage {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachine<Checkpoints>), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        checkpoints::recover_install(dir.path()).expect("a fresh data directory");
        let opts = StoreOptions {
            sync: false,
            expire_leases: false,
            ..StoreOptions::default()
        };
        let store = DiskStore::open(
            checkpoints::store_dir(dir.path()).expect("the store directory"),
            opts.clone(),
        )
        .expect("the store opens");
        let metrics = Arc::new(Metrics::default());
        let sm = StateMachine::new(
            Arc::new(StoreCell::new(store)),
            Checkpoints::new(dir.path().to_path_buf(), opts),
            metrics.clone(),
        )
        .expect("the state machine opens");
        let log = LogStore::open(&dir.path().join(RAFT_LOG_DIR), metrics).expect("the log opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime
        .block_on(Suite::test_all(MemberStorage))
        .expect("openraft's storage suite passes");
}
