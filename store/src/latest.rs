//! The newest version of recently written keys, in memory, so that a point read or a put's
//! lookup of the key's current version need not seek RocksDB's memtable and levels (that seek
//! was a tenth of a member's CPU under point reads and writes).
//!
//! Only the writer fills it, under the store's write lock, after its batch is in the backend and
//! before the batch's revision is published: so an entry is always the key's newest version, and
//! a reader at a revision it holds never misses a newer one. An entry newer than a read's revision
//! is not an answer; the read goes to the backend, as on a miss. Compaction needs nothing: it
//! never removes a key's newest version, except a tombstone, which answers "no key" either way.

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::types::KeyValue;

/// A key's newest version: its revision, and the key-value (`None`: deleted at that revision).
type Newest = (i64, Option<KeyValue>);

/// Bytes an entry holds, roughly: key (twice: map key and in the value), value, bookkeeping.
#[derive(Debug, Clone, Copy)]
struct ByBytes;

impl Weighter<Bytes, Newest> for ByBytes {
    fn weight(&self, key: &Bytes, newest: &Newest) -> u64 {
        const OVERHEAD: usize = 96;
        (OVERHEAD + 2 * key.len() + newest.1.as_ref().map_or(0, |kv| kv.value.len())) as u64
    }
}

pub(crate) struct Latest {
    cache: Option<Cache<Bytes, Newest, ByBytes>>,
}

impl std::fmt::Debug for Latest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (len, weight) = self
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.len(), c.weight()));
        f.debug_struct("Latest")
            .field("keys", &len)
            .field("bytes", &weight)
            .finish()
    }
}

impl Latest {
    /// A cache of about `bytes` bytes; 0 keeps nothing.
    pub fn new(bytes: u64) -> Self {
        // quick_cache wants an estimate of the entry count: small keys and values.
        let estimated = (bytes / 512).max(16) as usize;
        Self {
            cache: (bytes > 0).then(|| Cache::with_weighter(estimated, bytes, ByBytes)),
        }
    }

    /// The newest version of `key` at or below `rev`, if known: `Some(None)` means no live key.
    pub fn at(&self, key: &[u8], rev: i64) -> Option<Option<KeyValue>> {
        let (at, kv) = self.cache.as_ref()?.get(key)?;
        (at <= rev).then_some(kv)
    }

    /// Records `key`'s newest version. Writer only (see the module's comment).
    pub fn record(&self, key: &Bytes, rev: i64, kv: Option<&KeyValue>) {
        let Some(cache) = &self.cache else { return };
        // Copies: the request's bytes may be slices of a much larger buffer (a gRPC frame, a
        // raft entry), which a shared reference would keep alive.
        let key = Bytes::copy_from_slice(key);
        let kv = kv.map(|kv| KeyValue {
            key: key.clone(),
            value: Bytes::copy_from_slice(&kv.value),
            ..kv.clone()
        });
        cache.insert(key, (rev, kv));
    }
}
