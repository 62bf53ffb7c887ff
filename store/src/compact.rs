//! Physical compaction: after `Compact(rev)` is committed (reads below `rev` already fail), a
//! background thread deletes superseded versions in small batches, so writes and reads never wait
//! for it. Progress is persisted, and a compaction cut short by a crash resumes on reopen.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::backend::{Backend, Batch, Cursor, Space};
use crate::encoding::{
    decode_kv_key, decode_rev_key, decode_rev_value, kv_key_at, rev_key, Record, META_COMPACT_DONE,
    META_COMPACT_POS,
};
use crate::error::BackendError;
use crate::store::Inner;

#[derive(Debug, Default)]
struct State {
    /// The newest compaction committed.
    target: i64,
    /// The newest compaction physically finished.
    done: i64,
    shutdown: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Compactor {
    state: Mutex<State>,
    cv: Condvar,
}

impl Compactor {
    pub fn new(target: i64, done: i64) -> Self {
        Self {
            state: Mutex::new(State {
                target,
                done,
                shutdown: false,
            }),
            cv: Condvar::new(),
        }
    }

    pub fn schedule(&self, rev: i64) {
        let mut st = self.state.lock();
        st.target = st.target.max(rev);
        self.cv.notify_all();
    }

    /// Blocks until history below `rev` is physically gone (or the store shuts down).
    pub fn wait(&self, rev: i64) {
        let mut st = self.state.lock();
        while st.done < rev && !st.shutdown {
            self.cv.wait(&mut st);
        }
    }

    pub fn done(&self) -> i64 {
        self.state.lock().done
    }

    pub fn shutdown(&self) {
        self.state.lock().shutdown = true;
        self.cv.notify_all();
    }
}

pub(crate) fn compact_loop<B: Backend>(inner: Arc<Inner<B>>) {
    loop {
        let (from, to) = {
            let mut st = inner.compactor.state.lock();
            while st.target <= st.done && !st.shutdown {
                inner.compactor.cv.wait(&mut st);
            }
            if st.shutdown {
                return;
            }
            (st.done, st.target)
        };
        match compact_physically(&inner, from, to) {
            Ok(true) => {
                let mut st = inner.compactor.state.lock();
                st.done = st.done.max(to);
                inner.compactor.cv.notify_all();
            }
            Ok(false) => return,
            Err(err) => {
                tracing::error!(%err, "physical compaction failed; the store stops compacting");
                inner.fail();
                inner.compactor.shutdown();
                return;
            }
        }
    }
}

/// Removes every version that no read at or above `to` can see, for keys changed in `[from, to]`.
/// The revision log keeps revision `to` itself, which a watch from `to` replays.
/// Returns false if the store shut down midway.
fn compact_physically<B: Backend>(
    inner: &Inner<B>,
    from: i64,
    to: i64,
) -> Result<bool, BackendError> {
    let backend = &inner.backend;
    let mut pos = match backend.get(Space::Meta, META_COMPACT_POS)? {
        Some(p) if decode_rev_key(&p).is_ok_and(|(rev, _)| rev >= from) => p,
        _ => rev_key(from, 0),
    };
    let batch_size = inner.opts.compaction_batch.max(1);
    let end = rev_key(to + 1, 0);
    // Keys already handled in this compaction (each is handled completely at once); bounded so a
    // compaction over a huge window cannot hold every key in memory.
    let mut handled: HashSet<Vec<u8>> = HashSet::new();
    loop {
        if inner.compactor.state.lock().shutdown {
            return Ok(false);
        }
        let mut batch = Batch::default();
        let mut keys = BTreeSet::new();
        let mut cursor = backend.cursor(Space::Rev);
        cursor.seek(&pos);
        let mut last = None;
        while cursor.valid() && cursor.key() < &end[..] && keys.len() < batch_size {
            let (_, user_key) = decode_rev_value(cursor.value())?;
            keys.insert(user_key.to_vec());
            if decode_rev_key(cursor.key())?.0 < to {
                batch.delete(Space::Rev, cursor.key().to_vec());
            }
            last = Some(cursor.key().to_vec());
            cursor.next();
        }
        cursor.status()?;
        let finished = !cursor.valid() || cursor.key() >= &end[..];
        drop(cursor);
        if handled.len() > 1_000_000 {
            handled.clear();
        }
        for key in keys {
            if !handled.contains(&key) {
                drop_superseded(backend, &key, from, to, &mut batch)?;
                handled.insert(key);
            }
        }
        if finished {
            batch.put(
                Space::Meta,
                META_COMPACT_DONE.to_vec(),
                to.to_be_bytes().to_vec(),
            );
            batch.delete(Space::Meta, META_COMPACT_POS.to_vec());
            backend.write(batch, false)?;
            return Ok(true);
        }
        pos = last.expect("a full batch has a last entry");
        // Resume just after the last entry handled.
        pos.push(0);
        batch.put(Space::Meta, META_COMPACT_POS.to_vec(), pos[..12].to_vec());
        backend.write(batch, false)?;
    }
}

/// Deletes the versions of `user_key` older than its newest one at or below `to`, and that one too
/// if it is a tombstone. The compaction to `from` finished, so at most one version at or below
/// `from` is left: the walk stops there instead of stepping over the deletions it left behind
/// (which RocksDB keeps as tombstones until its own compaction).
fn drop_superseded<B: Backend>(
    backend: &B,
    user_key: &[u8],
    from: i64,
    to: i64,
    batch: &mut Batch,
) -> Result<(), BackendError> {
    let mut cursor = backend.cursor(Space::Kv);
    cursor.seek(&kv_key_at(user_key, to));
    let mut first = true;
    while cursor.valid() {
        let (key, rev) = decode_kv_key(cursor.key())?;
        if key != user_key {
            break;
        }
        if !first || Record::decode(cursor.value())? == Record::Tombstone {
            batch.delete(Space::Kv, cursor.key().to_vec());
        }
        if rev <= from {
            break;
        }
        first = false;
        cursor.next();
    }
    cursor.status()
}
