//! Every name in a member's data directory, in one place (`ballast snapshot restore` builds one
//! from these too).
//!
//! ```text
//! <data-dir>/
//!   identity            the member and cluster ids (server/src/identity.rs)
//!   alarms              alarms kept per member before they were replicated (read once, removed)
//!   raft/               the raft log (its own RocksDB)
//!   kv/                 the store (RocksDB), until a snapshot is installed
//!   kv-<term>-<index>/  the store installed from a snapshot
//!   store               names the current store directory when it is not `kv`
//!   snapshots/
//!     snap-<term>-<index>/   a checkpoint of the store, with `ballast-snapshot-meta`
//!     recv-<id>/             a snapshot being received from the leader
//!   snapshot-tmp-<pid>-<n>/  a checkpoint being streamed to a client (`Maintenance.Snapshot`)
//! ```

/// The member and cluster ids.
pub const IDENTITY_FILE: &str = "identity";
/// Alarms as a member kept them before they were replicated.
pub const ALARMS_FILE: &str = "alarms";
/// The raft log.
pub const RAFT_LOG_DIR: &str = "raft";
/// The store directory until a snapshot is installed.
pub const STORE_DIR: &str = "kv";
/// How an installed snapshot's store directory starts (`kv-<term>-<index>`).
pub const INSTALLED_STORE_PREFIX: &str = "kv-";
/// Names the current store directory when it is not [`STORE_DIR`].
pub const STORE_POINTER: &str = "store";
/// Where snapshots are kept.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// How a snapshot's directory starts (`snap-<term>-<index>`).
pub const SNAPSHOT_PREFIX: &str = "snap-";
/// How a snapshot being received starts (`recv-<id>`).
pub const RECEIVING_PREFIX: &str = "recv-";
/// A snapshot's metadata file, inside its directory.
pub const SNAPSHOT_META: &str = "ballast-snapshot-meta";
/// How a checkpoint being streamed to a client starts (`snapshot-tmp-<pid>-<n>`); a restart removes
/// any left behind.
pub const SNAPSHOT_TMP_PREFIX: &str = "snapshot-tmp-";
