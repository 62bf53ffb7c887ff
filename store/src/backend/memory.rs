//! An in-memory [`Backend`] for tests and simulations: one `BTreeMap` per keyspace behind a lock.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::{Backend, Batch, BatchOp, Cursor, Space};
use crate::error::BackendError;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
pub struct MemoryBackend {
    spaces: [RwLock<Map>; 4],
    bytes: AtomicU64,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Entries fetched per lock acquisition; the lock is never held between calls.
const CHUNK: usize = 64;

#[derive(Debug)]
pub struct MemoryCursor<'a> {
    map: &'a RwLock<Map>,
    buf: Vec<(Vec<u8>, Vec<u8>)>,
    pos: usize,
    /// True once the buffer holds the last entries of the map.
    exhausted: bool,
}

impl MemoryCursor<'_> {
    fn fill(&mut self, from: Bound<&[u8]>) {
        let map = self.map.read();
        self.buf.clear();
        self.buf.extend(
            map.range::<[u8], _>((from, Bound::Unbounded))
                .take(CHUNK)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        self.exhausted = self.buf.len() < CHUNK;
        self.pos = 0;
    }
}

impl Cursor for MemoryCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.fill(Bound::Included(key));
    }

    fn next(&mut self) {
        self.pos += 1;
        if self.pos >= self.buf.len() && !self.exhausted {
            let last = self.buf.last().map(|(k, _)| k.clone()).unwrap_or_default();
            self.fill(Bound::Excluded(&last));
        }
    }

    fn valid(&self) -> bool {
        self.pos < self.buf.len()
    }

    fn key(&self) -> &[u8] {
        &self.buf[self.pos].0
    }

    fn value(&self) -> &[u8] {
        &self.buf[self.pos].1
    }

    fn status(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

impl Backend for MemoryBackend {
    type Cursor<'a> = MemoryCursor<'a>;

    fn cursor(&self, space: Space) -> MemoryCursor<'_> {
        MemoryCursor {
            map: &self.spaces[space.index()],
            buf: Vec::new(),
            pos: 0,
            exhausted: true,
        }
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.spaces[space.index()].read().get(key).cloned())
    }

    fn write(&self, batch: Batch, _sync: bool) -> Result<(), BackendError> {
        // Take every lock first so that no reader sees half a batch.
        let mut guards: Vec<_> = self.spaces.iter().map(|s| s.write()).collect();
        let mut delta: i64 = 0;
        for op in batch.ops {
            match op {
                BatchOp::Put { space, key, value } => {
                    delta += (key.len() + value.len()) as i64;
                    if let Some(old) = guards[space.index()].insert(key.clone(), value) {
                        delta -= (key.len() + old.len()) as i64;
                    }
                }
                BatchOp::Delete { space, key } => {
                    if let Some(old) = guards[space.index()].remove(&key) {
                        delta -= (key.len() + old.len()) as i64;
                    }
                }
            }
        }
        if delta >= 0 {
            self.bytes.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn reclaim(&self, _space: Space, _from: &[u8], _to: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }

    fn checkpoint(&self, _dir: &std::path::Path) -> Result<(), BackendError> {
        Err(BackendError::Io(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the memory backend has no files to checkpoint",
        )))
    }
}
