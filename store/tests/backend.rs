//! The backend conformance suite: every `Backend` must order keys bytewise, seek and step like a
//! RocksDB iterator, apply batches atomically (later ops in a batch win), and answer point reads.
//! Also: a storage failure (injected by a countdown) stops the store, and reopening finds exactly
//! the last committed state.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use ballast_store::backend::{
    Backend, Batch, Cursor, MemoryBackend, RocksBackend, RocksOptions, Space,
};
use ballast_store::{BackendError, PutRequest, RangeRequest, Store, StoreError};

fn collect<B: Backend>(b: &B, space: Space, from: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = b.cursor(space);
    c.seek(from);
    let mut out = vec![];
    while c.valid() {
        out.push((c.key().to_vec(), c.value().to_vec()));
        c.next();
    }
    c.status().unwrap();
    out
}

fn conformance<B: Backend>(b: &B) {
    let mut batch = Batch::default();
    // More than one memory-cursor chunk, keys with 0x00 and 0xff bytes, an overwrite in one batch.
    for i in 0..200u32 {
        batch.put(Space::Kv, i.to_be_bytes().to_vec(), vec![1]);
    }
    batch.put(Space::Kv, vec![0xff, 0x00], b"x".to_vec());
    batch.put(Space::Kv, vec![0x00], b"zero".to_vec());
    batch.put(Space::Kv, vec![0x00], b"zero2".to_vec());
    batch.put(Space::Meta, b"m".to_vec(), b"meta".to_vec());
    batch.delete(Space::Kv, 5u32.to_be_bytes().to_vec());
    b.write(batch, true).unwrap();

    let all = collect(b, Space::Kv, b"");
    assert_eq!(all.len(), 201, "200 + 2 keys - 1 deleted");
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "bytewise order");
    assert_eq!(
        all[0],
        (vec![0x00], b"zero2".to_vec()),
        "the later op in a batch wins"
    );
    assert_eq!(all.last().unwrap().0, vec![0xff, 0x00]);
    // Seek lands on the first key >= the target, even between keys.
    let from = collect(b, Space::Kv, &[0, 0, 0, 4, 1]);
    assert_eq!(from[0].0, 6u32.to_be_bytes().to_vec());
    assert!(collect(b, Space::Kv, &[0xff, 0x01]).is_empty());
    // Keyspaces are separate.
    assert_eq!(
        collect(b, Space::Meta, b""),
        vec![(b"m".to_vec(), b"meta".to_vec())]
    );
    assert!(collect(b, Space::Rev, b"").is_empty());
    assert_eq!(b.get(Space::Meta, b"m").unwrap(), Some(b"meta".to_vec()));
    assert_eq!(b.get(Space::Kv, b"m").unwrap(), None);
    // A cursor made before a write is not confused by it (it may or may not see it).
    let mut c = b.cursor(Space::Kv);
    c.seek(b"");
    let mut del = Batch::default();
    del.delete(Space::Kv, vec![0x00]);
    b.write(del, false).unwrap();
    let mut n = 0;
    while c.valid() {
        n += 1;
        c.next();
    }
    assert!(n == 200 || n == 201);
    assert_eq!(b.get(Space::Kv, &[0x00]).unwrap(), None);
    assert!(b.size() > 0);
}

#[test]
fn memory_backend_conforms() {
    conformance(&MemoryBackend::new());
}

#[test]
fn rocks_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&RocksBackend::open(dir.path(), &RocksOptions::default()).unwrap());
}

/// A backend whose writes start failing once a countdown runs out.
struct Faulty<B: Backend> {
    inner: B,
    writes_left: AtomicUsize,
}

impl<B: Backend> Backend for Faulty<B> {
    type Cursor<'a> = B::Cursor<'a>;
    fn cursor(&self, space: Space) -> Self::Cursor<'_> {
        self.inner.cursor(space)
    }
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(space, key)
    }
    fn write(&self, batch: Batch, sync: bool) -> Result<(), BackendError> {
        if self.writes_left.fetch_sub(1, Ordering::SeqCst) == 0 {
            self.writes_left.store(0, Ordering::SeqCst);
            return Err(BackendError::Io(std::io::Error::other(
                "injected write failure",
            )));
        }
        self.inner.write(batch, sync)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn reclaim(&self, space: Space, from: &[u8], to: &[u8]) -> Result<(), BackendError> {
        self.inner.reclaim(space, from, to)
    }
    fn checkpoint(&self, dir: &std::path::Path) -> Result<(), BackendError> {
        self.inner.checkpoint(dir)
    }
}

#[test]
fn failed_write_stops_the_store_and_loses_nothing_committed() {
    for countdown in [0usize, 1, 7, 30] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ballast_store::ManualClock::default();
        let opts = common::test_options(&clock);
        let backend = Faulty {
            inner: RocksBackend::open(dir.path(), &opts.rocks).unwrap(),
            writes_left: AtomicUsize::new(countdown),
        };
        let store = Store::with_backend(backend, opts.clone()).unwrap();
        let mut committed = vec![];
        let mut failed = false;
        for i in 0..40 {
            match store.put(PutRequest::new(format!("k{i:02}"), i.to_string())) {
                Ok(resp) => committed.push((i, resp.revision)),
                Err(e) => {
                    assert!(e.is_fatal(), "{e}");
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "countdown {countdown} never fired");
        assert_eq!(committed.len(), countdown);
        // After a storage failure the store refuses work rather than guess.
        assert!(matches!(
            store.put(PutRequest::new("after", "x")),
            Err(StoreError::Backend(_))
        ));
        assert!(store.range(&RangeRequest::key("k00")).is_err());
        drop(store);
        let store = Store::open(dir.path(), opts).unwrap();
        let kvs = store.range(&RangeRequest::prefix("k")).unwrap().kvs;
        assert_eq!(
            kvs.len(),
            committed.len(),
            "countdown {countdown}: exactly the committed writes"
        );
        assert_eq!(store.revision(), committed.last().map_or(1, |c| c.1));
    }
}
