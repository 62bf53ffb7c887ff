//! The storage-backend seam: an ordered byte-key store with atomic write batches and forward cursors.
//! The MVCC logic is written once against [`Backend`]; [`RocksBackend`] keeps data on disk and
//! [`MemoryBackend`] in memory, and both pass the same test suite.

mod memory;
#[cfg(feature = "rocks")]
mod rocks;

pub use memory::MemoryBackend;
#[cfg(feature = "rocks")]
pub use rocks::RocksBackend;

/// Tuning knobs for the RocksDB backend.
#[derive(Debug, Clone)]
pub struct RocksOptions {
    /// Shared block cache, bytes.
    pub block_cache_bytes: usize,
    /// Memtable size per column family, bytes.
    pub write_buffer_bytes: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
        }
    }
}

use crate::error::BackendError;

/// The separate keyspaces (RocksDB column families) the store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// `(user key, revision)` -> record: every retained version of every key.
    Kv,
    /// `(revision, sub)` -> event kind + user key: the revision log watches replay.
    Rev,
    /// Lease ids and lease-to-key attachments.
    Lease,
    /// Counters: current revision, compaction progress, the caller's applied position.
    Meta,
}

impl Space {
    pub const ALL: [Space; 4] = [Space::Kv, Space::Rev, Space::Lease, Space::Meta];

    pub fn name(self) -> &'static str {
        match self {
            Space::Kv => "kv",
            Space::Rev => "rev",
            Space::Lease => "lease",
            Space::Meta => "meta",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One change in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
}

/// Changes applied all together or not at all.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub ops: Vec<BatchOp>,
}

impl Batch {
    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put { space, key, value });
    }

    pub fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete { space, key });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// A forward cursor over one keyspace, shaped like RocksDB's raw iterator. A cursor sees the data
/// as of some moment at or after its creation; the store's reads never depend on which, because
/// every read is bounded by a revision that was already committed.
pub trait Cursor {
    /// Positions at the first entry `>= key`.
    fn seek(&mut self, key: &[u8]);
    fn next(&mut self);
    fn valid(&self) -> bool;
    /// Only while `valid()`.
    fn key(&self) -> &[u8];
    /// Only while `valid()`.
    fn value(&self) -> &[u8];
    /// The error that made the cursor invalid, if any.
    fn status(&self) -> Result<(), BackendError>;
}

/// An ordered key-value store with atomic batches.
pub trait Backend: Send + Sync + 'static {
    type Cursor<'a>: Cursor
    where
        Self: 'a;

    fn cursor(&self, space: Space) -> Self::Cursor<'_>;
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;
    /// Applies the batch atomically. With `sync`, the call returns only once the batch is durable.
    fn write(&self, batch: Batch, sync: bool) -> Result<(), BackendError>;
    /// Bytes the data takes on disk (or in memory).
    fn size(&self) -> u64;
    /// A hint that `[from, to)` of `space` just lost many entries and its space can be reclaimed now.
    fn reclaim(&self, space: Space, from: &[u8], to: &[u8]) -> Result<(), BackendError>;
    /// Writes a consistent copy of the whole database into the new directory `dir`, which the same
    /// backend can open. Backends without files refuse.
    fn checkpoint(&self, dir: &std::path::Path) -> Result<(), BackendError>;
}
