//! A member's disks: the raft log in memory ([`SimLog`]) and Ballast's state machine on an
//! in-memory host ([`SimHost`]), both writing nothing once the member has crashed.

use super::*;

// ---------------------------------------------------------------------------------------------
// The log store.

/// A member's raft log on its simulated disk, which survives the member's crashes.
#[derive(Debug, Default)]
pub(crate) struct LogDisk {
    pub(crate) vote: Option<Vote>,
    pub(crate) committed: Option<LogId>,
    pub(crate) purged: Option<LogId>,
    /// Entries by index, each with its payload's digest.
    pub(crate) entries: BTreeMap<u64, (Entry, u64)>,
}

impl LogDisk {
    pub(crate) fn view(&self) -> LogView {
        LogView {
            first: self.purged.map_or(0, |id| id.index + 1),
            entries: self
                .entries
                .values()
                .map(|(entry, payload)| (entry.log_id(), *payload))
                .collect(),
        }
    }
}

/// openraft's log storage over a [`LogDisk`], for one incarnation of a member: once the member has
/// crashed it writes nothing more (a dead process cannot).
#[derive(Debug, Clone)]
pub(crate) struct SimLog {
    pub(crate) id: NodeId,
    pub(crate) disk: Arc<Mutex<LogDisk>>,
    pub(crate) alive: Arc<AtomicBool>,
    pub(crate) world: Arc<World>,
    pub(crate) bug: Bug,
    /// Draws how long each append's flush takes.
    pub(crate) flush_rng: Arc<Mutex<StdRng>>,
}

pub(crate) fn crashed_error() -> io::Error {
    io::Error::other("the member has crashed")
}

impl SimLog {
    pub(crate) fn check_alive(&self) -> io::Result<()> {
        if self.alive.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(crashed_error())
        }
    }
}

impl RaftLogReader<SimConfig> for SimLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self
            .disk
            .lock()
            .entries
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.disk.lock().vote)
    }
}

impl RaftLogStorage<SimConfig> for SimLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<SimConfig>, io::Error> {
        let disk = self.disk.lock();
        let last = disk
            .entries
            .last_key_value()
            .map(|(_, (entry, _))| entry.log_id());
        Ok(LogState {
            last_purged_log_id: disk.purged,
            last_log_id: last.or(disk.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.check_alive()?;
        self.disk.lock().vote = Some(*vote);
        self.world.checker.lock().saved_vote(self.id, vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.check_alive()?;
        self.disk.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.disk.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<SimConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.check_alive()?;
        {
            let mut disk = self.disk.lock();
            for mut entry in entries {
                if let EntryPayload::Normal(Command::Store(req)) = &mut entry.payload {
                    if self
                        .bug
                        .hits(Bug::AlterLogEntry, self.id, entry.log_id.index)
                    {
                        corrupt(req);
                    }
                }
                let payload = digest(&entry.payload);
                disk.entries.insert(entry.index(), (entry, payload));
            }
        }
        // The entries are readable at once (openraft requires it); the flush takes 0-2 ms.
        let flush = Duration::from_millis(self.flush_rng.lock().gen_range(0..=2));
        if flush.is_zero() {
            callback.io_completed(Ok(()));
        } else {
            spawn(async move {
                tokio::time::sleep(flush).await;
                callback.io_completed(Ok(()));
            });
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.check_alive()?;
        let from = last_log_id.map_or(0, |id| id.index + 1);
        self.disk.lock().entries.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.check_alive()?;
        let mut disk = self.disk.lock();
        disk.entries = disk.entries.split_off(&(log_id.index + 1));
        disk.purged = Some(log_id);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine: Ballast's own (`state_machine.rs`), on a host that keeps it in memory.

/// A snapshot's data: every entry of every keyspace of a member's store, which is what a RocksDB
/// checkpoint holds. Taken between two applies, so it is exactly the state at its log id.
pub(crate) struct Image {
    pub(crate) spaces: Vec<Keyspace>,
}

/// One keyspace's entries, in key order.
pub(crate) type Keyspace = (Space, Vec<(Vec<u8>, Vec<u8>)>);

impl Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: usize = self.spaces.iter().map(|(_, kvs)| kvs.len()).sum();
        write!(f, "Image({entries} entries)")
    }
}

impl Image {
    pub(crate) fn of(store: &MemStore) -> Self {
        // The memory backend's cursors do not read one point in time (RocksDB's checkpoint does):
        // copied while the store's thread removes compacted versions, the image could hold the
        // versions it removes and the progress record that says they are gone, which a later
        // compaction trusts. So the copy waits until the store's thread is done.
        store.wait_compacted(store.compact_revision());
        let spaces = Space::ALL
            .into_iter()
            .map(|space| {
                let mut cursor = store.backend().cursor(space);
                let mut kvs = Vec::new();
                cursor.seek(b"");
                while cursor.valid() {
                    kvs.push((cursor.key().to_vec(), cursor.value().to_vec()));
                    cursor.next();
                }
                (space, kvs)
            })
            .collect();
        Self { spaces }
    }

    /// A store opened on a copy of the image (the store recovers its revision and applied
    /// position from it, as it does when opening a RocksDB checkpoint).
    pub(crate) fn restore(&self) -> io::Result<MemStore> {
        let backend = MemoryBackend::new();
        let mut batch = Batch::default();
        for (space, kvs) in &self.spaces {
            for (key, value) in kvs {
                batch.put(*space, key.clone(), value.clone());
            }
        }
        backend.write(batch, true).map_err(io::Error::other)?;
        Store::with_backend(backend, store_options()).map_err(io::Error::other)
    }
}

pub(crate) fn store_options() -> StoreOptions {
    // As a replica opens its store: the log is the durable record, and only the leader expires leases.
    // Leases as short as one second of simulated time.
    StoreOptions {
        sync: false,
        expire_leases: false,
        min_lease_ttl: 1,
        clock: Arc::new(SimClock::new()),
        ..StoreOptions::default()
    }
}

pub(crate) fn empty_store() -> MemStore {
    MemStore::in_memory(store_options()).expect("a memory store opens")
}

/// What a member keeps besides its log: its store (which a crash may lose, as the store is not
/// synced) and its last snapshot (which survives).
#[derive(Debug)]
pub(crate) struct SmDisk {
    pub(crate) cell: Arc<StoreCell<MemoryBackend>>,
    pub(crate) snapshot: Mutex<Option<(SnapshotMeta, Arc<Image>)>>,
}

impl SmDisk {
    pub(crate) fn store(&self) -> MemStore {
        self.cell.get()
    }
}

/// The state machine's host for one incarnation of a member: its store and snapshot in memory, all
/// work done at once on the simulation's one thread, and every applied batch reported to the
/// checks. Once the member has crashed it does nothing more.
#[derive(Debug)]
pub(crate) struct SimHost {
    pub(crate) id: NodeId,
    pub(crate) disk: Arc<SmDisk>,
    pub(crate) log: Arc<Mutex<LogDisk>>,
    pub(crate) alive: Arc<AtomicBool>,
    pub(crate) world: Arc<World>,
    pub(crate) bug: Bug,
}

impl SimHost {
    pub(crate) fn check_alive(&self) -> io::Result<()> {
        if self.alive.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(crashed_error())
        }
    }

    /// The digest of the entry at `log_id` and the lease it revokes, as this member's log holds it
    /// (or, the digest alone, as any log held it).
    pub(crate) fn payload(
        &self,
        log_id: &LogId,
        checker: &Checker,
    ) -> Option<(u64, Option<LeaseId>)> {
        let log = self.log.lock();
        log.entries
            .get(&log_id.index)
            .filter(|(entry, _)| entry.log_id == *log_id)
            .map(|(entry, payload)| (*payload, leases::revoked_by(&entry.payload)))
            .or_else(|| checker.entries.get(log_id).map(|payload| (*payload, None)))
    }
}

impl StoreHost for SimHost {
    type Backend = MemoryBackend;
    type Snapshot = Arc<Image>;

    async fn run<R: Send + 'static>(
        &self,
        _heavy: bool,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<R> {
        // Checked after the state machine's last await: the member may have crashed meanwhile.
        self.check_alive()?;
        Ok(work())
    }

    async fn take_snapshot(&self, store: &MemStore, meta: &SnapshotMeta) -> io::Result<Arc<Image>> {
        self.check_alive()?;
        let image = Arc::new(Image::of(store));
        *self.disk.snapshot.lock() = Some((meta.clone(), image.clone()));
        self.world.stats.lock().snapshots_built += 1;
        Ok(image)
    }

    async fn install_snapshot(
        &self,
        meta: &SnapshotMeta,
        image: Arc<Image>,
    ) -> io::Result<MemStore> {
        self.check_alive()?;
        let (applied, _) = decode_applied(self.disk.store().applied())?;
        if meta.last_log_id < applied {
            // openraft asked to take the store back: what readers saw would be undone.
            self.world.checker.lock().fail(format!(
                "state-machine safety: n{} was asked to install a snapshot up to {} over its applied {}",
                self.id,
                meta.last_log_id.map_or(0, |id| id.index),
                applied.map_or(0, |id| id.index),
            ));
        }
        let store = image.restore()?;
        *self.disk.snapshot.lock() = Some((meta.clone(), image));
        Ok(store)
    }

    fn installed(&self, meta: &SnapshotMeta, _old: MemStore) -> io::Result<()> {
        let hash = self.disk.store().hash_kv(0).map_err(io::Error::other)?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.world.checker.lock().store_hash(self.id, index, hash);
        self.world
            .event(format!("n{} installs a snapshot up to {index}", self.id));
        Ok(())
    }

    async fn current_snapshot(&self) -> io::Result<Option<(SnapshotMeta, Arc<Image>)>> {
        Ok(self.disk.snapshot.lock().clone())
    }

    fn before_apply(&self, log_id: &LogId, req: &mut WriteRequest) {
        if self.bug.hits(Bug::CorruptApply, self.id, log_id.index) {
            corrupt(req);
        }
    }

    fn applied(&self, store: &MemStore, replies: &[(LogId, Reply)]) {
        if !self.alive.load(Ordering::SeqCst) {
            return;
        }
        let hash = store.hash_kv(0).expect("a memory store hashes");
        let now = self.world.now_ms();
        let mut checker = self.world.checker.lock();
        for (log_id, reply) in replies {
            match self.payload(log_id, &checker) {
                Some((payload, revokes)) => {
                    checker.applied(self.id, log_id, payload, digest(reply));
                    if let (Some(lease), Reply::Store(Ok(_))) = (revokes, reply) {
                        if !checker.leases.revoked_yet(lease) {
                            self.world.stats.lock().expiries += 1;
                        }
                        checker.revoked(lease, now, self.id);
                    }
                }
                None => checker.fail(format!(
                    "state-machine safety: n{} applied {log_id}, which no log holds",
                    self.id
                )),
            }
        }
        if let Some((last, _)) = replies.last() {
            checker.store_hash(self.id, last.index, hash);
        }
    }
}
