//! The raft log in its own RocksDB (`<data-dir>/raft`): column family `logs` (be64 index -> entry)
//! and `meta` (vote, committed, last purged).
//!
//! Appends are group-committed: `append` writes its batch without syncing (so the entries are
//! readable at once, as openraft requires) and queues its flush callback to the `ballast-log-sync`
//! thread, which takes every callback queued meanwhile, syncs the WAL once, and only then reports
//! them all durable. RocksDB's WAL keeps writes in order, so one sync covers every earlier append.
//! The vote is written with its own sync before `save_vote` returns.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{mpsc, Arc};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use rocksdb::{
    ColumnFamilyDescriptor, DBRecoveryMode, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};

use crate::codec::{decode, encode, LOG_FORMAT};
use crate::metrics::Metrics;
use crate::types::{Entry, LogId, TypeConfig, Vote};

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"purged";
/// The log's format version ([`LOG_FORMAT`]).
const KEY_FORMAT: &[u8] = b"format";

/// The log. Cheap to clone: clones share the database and the sync thread.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    metrics: Arc<Metrics>,
    syncer: Arc<Syncer>,
}

/// The sync thread; the last clone of the log stops it and waits for it (so that the database is
/// closed when the log is dropped, and can be opened again).
struct Syncer {
    tx: Option<mpsc::Sender<IOFlushed<TypeConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.db.path())
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> io::Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // The log is written once and read back only by lagging followers: keep it out of the way.
        opts.set_max_total_wal_size(64 << 20);
        // A record that fails its checksum is refused (the member does not start) rather than
        // ending the replay there, which RocksDB's default (point in time) does silently, losing
        // every acknowledged entry after it. An incomplete record at the very end (an append cut
        // by a crash before its sync) is dropped; `warn_of_torn_tail` says so first.
        opts.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        warn_of_torn_tail(path);
        let cfs =
            [CF_LOGS, CF_META].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            io::Error::other(format!("opening the raft log in {}: {e}", path.display()))
        })?;
        let db = Arc::new(db);
        let (syncs, rx) = mpsc::channel();
        let (sync_db, sync_metrics) = (db.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name("ballast-log-sync".into())
            .spawn(move || sync_loop(&sync_db, &rx, &sync_metrics))?;
        let store = Self {
            db,
            metrics,
            syncer: Arc::new(Syncer {
                tx: Some(syncs),
                thread: Some(thread),
            }),
        };
        store.check_format(path)?;
        Ok(store)
    }

    /// Refuses a log written in another format ([`LOG_FORMAT`]); marks a new one (or one from
    /// before formats were versioned, which is format 1) with this build's.
    fn check_format(&self, path: &Path) -> io::Result<()> {
        match self.get_meta::<u32>(KEY_FORMAT, "log format")? {
            Some(format) if format == LOG_FORMAT => Ok(()),
            Some(format) => Err(io::Error::other(format!(
                "the raft log in {} is in format {format}; this ballast reads format {LOG_FORMAT}",
                path.display()
            ))),
            None => self.put_meta(KEY_FORMAT, &LOG_FORMAT, true),
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> io::Result<Option<T>> {
        match self
            .db
            .get_cf(self.cf(CF_META), key)
            .map_err(io::Error::other)?
        {
            Some(bytes) => Ok(Some(decode(what, &bytes)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T, sync: bool) -> io::Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db
            .put_cf_opt(self.cf(CF_META), key, encode(value), &opts)
            .map_err(io::Error::other)
    }

    fn last_entry(&self) -> io::Result<Option<LogId>> {
        match self
            .db
            .iterator_cf(self.cf(CF_LOGS), IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (_, value) = item.map_err(io::Error::other)?;
                Ok(Some(decode::<Entry>("log entry", &value)?.log_id()))
            }
            None => Ok(None),
        }
    }
}

/// Logs a warning if the newest WAL file ends in an incomplete record (see `wal_tail`).
fn warn_of_torn_tail(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // WAL files are `<number>.log`; the newest is the one being appended to at a crash.
    let newest = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name.strip_suffix(".log")?.parse::<u64>().ok()?, e.path()))
        })
        .max();
    let Some((_, wal)) = newest else { return };
    let Ok(bytes) = std::fs::read(&wal) else {
        return;
    };
    if let Some(intact) = crate::wal_tail::torn_tail(&bytes) {
        tracing::warn!(
            wal = %wal.display(),
            intact,
            dropped = bytes.len() - intact,
            "raft log: torn record at the end of the WAL (an append cut by a crash before its sync, or a disk that lost synced data); dropping it"
        );
    }
}

fn sync_loop(db: &DB, rx: &mpsc::Receiver<IOFlushed<TypeConfig>>, metrics: &Metrics) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let result = db.flush_wal(true);
        metrics
            .wal_fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.appends_per_sync.observe(waiting.len() as f64);
        for callback in waiting {
            callback.io_completed(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| io::Error::other(e.to_string())),
            );
        }
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&x) => x,
            Bound::Excluded(&x) => x + 1,
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let from = index_key(start);
        for item in self.db.iterator_cf(
            self.cf(CF_LOGS),
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (key, value) = item.map_err(io::Error::other)?;
            let index = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| io::Error::other("malformed log key"))?,
            );
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = decode("log entry", &value)?;
            if entry.index() != index {
                return Err(io::Error::other(format!(
                    "log entry at {index} says it is {}",
                    entry.index()
                )));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(KEY_VOTE, "vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_PURGED, "purged log id")?;
        let last_log_id = self.last_entry()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(KEY_VOTE, vote, true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: it is a hint that lets a restart re-apply sooner; the log is the truth.
        self.put_meta(KEY_COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .get_meta::<Option<LogId>>(KEY_COMMITTED, "committed log id")?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOGS);
        for entry in entries {
            batch.put_cf(cf, index_key(entry.index()), encode(&entry));
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(false);
        self.db.write_opt(batch, &opts).map_err(io::Error::other)?;
        let stopped = || io::Error::other("log sync thread stopped");
        self.syncer
            .tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(callback)
            .map_err(|_| stopped())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        // Removed from the end backwards in one batch: never a hole.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_LOGS), index_key(from), index_key(u64::MAX));
        self.db.write(batch).map_err(io::Error::other)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // The purge point first: entries at or before it are ignored from then on.
        self.put_meta(KEY_PURGED, &log_id, false)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_LOGS),
            index_key(0),
            index_key(log_id.index() + 1),
        );
        self.db.write(batch).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::storage::{IOFlushed, RaftLogStorage};
    use openraft::vote::RaftLeaderIdExt;
    use openraft::RaftLogReader;

    use super::*;

    fn entry(term: u64, index: u64) -> Entry {
        let leader = openraft::impls::leader_id_adv::LeaderId::new_committed(term, 1);
        Entry::new_blank(openraft::LogId::new(leader, index))
    }

    async fn append(log: &mut LogStore, entries: Vec<Entry>) {
        let (tx, rx) = <TypeConfig as openraft::type_config::TypeConfigExt>::oneshot();
        log.append(entries, IOFlushed::signal(tx)).await.unwrap();
        // The callback fires only once the sync thread has made the entries durable.
        rx.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn appends_truncates_purges_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut log = LogStore::open(dir.path(), metrics.clone()).unwrap();
        assert_eq!(log.get_log_state().await.unwrap().last_log_id, None);
        append(&mut log, (1..=10).map(|i| entry(1, i)).collect()).await;
        append(&mut log, vec![entry(2, 11)]).await;
        assert!(metrics.wal_fsync_seconds.count() >= 1);
        let got: Vec<u64> = log
            .try_get_log_entries(3..6)
            .await
            .unwrap()
            .iter()
            .map(|e| e.index())
            .collect();
        assert_eq!(got, [3, 4, 5]);

        log.truncate_after(Some(entry(1, 8).log_id()))
            .await
            .unwrap();
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(entry(1, 8).log_id())
        );
        log.purge(entry(1, 4).log_id()).await.unwrap();
        let vote = openraft::impls::Vote::new(3, 2);
        log.save_vote(&vote).await.unwrap();
        drop(log);

        let mut log = LogStore::open(dir.path(), metrics).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(entry(1, 4).log_id()), Some(entry(1, 8).log_id()))
        );
        let got: Vec<u64> = log
            .try_get_log_entries(0..100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.index())
            .collect();
        assert_eq!(
            got,
            [5, 6, 7, 8],
            "purged up to 4, truncated after 8, no hole"
        );
        assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    }
}
