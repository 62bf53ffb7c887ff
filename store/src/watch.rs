//! Watches: the hub that fans committed events out to watchers, and the sync loop that replays
//! history from disk for watchers that start in the past or fell behind.
//!
//! A watcher is either *synced* (it has every event up to the published revision, and the writer
//! hands it new events directly) or *unsynced* (the sync thread reads its missing revisions from the
//! `Rev` keyspace). Each watcher has a bounded channel; a writer never waits for a reader: when the
//! channel is full the watcher turns unsynced and catches up from disk later. So a slow watcher costs
//! at most `capacity` buffered responses, however far behind it is (etcd's "victim" watchers).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::mpsc;

use crate::backend::{Backend, Cursor, Space};
use crate::encoding::{decode_rev_key, decode_rev_value, kv_key, rev_key, Record};
use crate::error::{BackendError, Result};
use crate::range::{get_version, kv_from_record, KeyRange};
use crate::types::{Event, EventType, KeyValue};

pub type WatchId = i64;

/// What to watch: a key, a range or a prefix (as in [`crate::RangeRequest`]), from a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchRequest {
    pub key: Bytes,
    pub range_end: Bytes,
    /// Inclusive; 0 = from the next revision.
    pub start_revision: i64,
    pub prev_kv: bool,
    /// etcd's NOPUT filter.
    pub no_put: bool,
    /// etcd's NODELETE filter.
    pub no_delete: bool,
}

/// A batch of events for one watcher. Events come in revision order, never split one revision
/// across responses. An empty `events` is a progress notification; `canceled` with
/// `compact_revision` set means the watcher's start was compacted away and it is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchResponse {
    pub watch_id: WatchId,
    /// The header revision: the store revision when the response was made.
    pub revision: i64,
    pub events: Vec<Event>,
    pub compact_revision: i64,
    pub canceled: bool,
}

/// Responses are grouped up to this many events, but never split a revision.
const MAX_EVENTS_PER_RESPONSE: usize = 1000;

#[derive(Debug)]
struct WatcherState {
    req: WatchRequest,
    tx: mpsc::Sender<WatchResponse>,
    /// While unsynced: the first revision this watcher has not been given. (A synced watcher has
    /// everything up to the published revision.)
    next_rev: i64,
    synced: bool,
}

impl WatcherState {
    fn wants(&self, ev: &Event) -> bool {
        match ev.kind {
            EventType::Put => !self.req.no_put,
            EventType::Delete => !self.req.no_delete,
        }
    }

    fn group(&self) -> (Bytes, Bytes) {
        (self.req.key.clone(), self.req.range_end.clone())
    }

    fn shape(&self, ev: &Event) -> Event {
        let mut ev = ev.clone();
        if !self.req.prev_kv {
            ev.prev_kv = None;
        }
        ev
    }
}

#[derive(Debug, Default)]
struct HubState {
    next_id: WatchId,
    watchers: HashMap<WatchId, WatcherState>,
    /// Synced watchers by their exact key range: a revision is matched once per range, so a write
    /// no watcher cares about costs one check per distinct range, not one per watcher.
    groups: HashMap<(Bytes, Bytes), BTreeSet<WatchId>>,
    unsynced: BTreeSet<WatchId>,
    current_rev: i64,
    compact_rev: i64,
    shutdown: bool,
}

impl HubState {
    fn mark_synced(&mut self, id: WatchId) {
        let Some(w) = self.watchers.get_mut(&id) else {
            return;
        };
        w.synced = true;
        self.unsynced.remove(&id);
        self.groups.entry(w.group()).or_default().insert(id);
    }

    fn mark_unsynced(&mut self, id: WatchId) {
        let Some(w) = self.watchers.get_mut(&id) else {
            return;
        };
        w.synced = false;
        self.unsynced.insert(id);
        let group = w.group();
        self.leave_group(group, id);
    }

    fn leave_group(&mut self, group: (Bytes, Bytes), id: WatchId) {
        if let Some(ids) = self.groups.get_mut(&group) {
            ids.remove(&id);
            if ids.is_empty() {
                self.groups.remove(&group);
            }
        }
    }

    fn remove(&mut self, id: WatchId) -> bool {
        self.unsynced.remove(&id);
        let Some(w) = self.watchers.remove(&id) else {
            return false;
        };
        self.leave_group(w.group(), id);
        true
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStats {
    pub watchers: usize,
    pub unsynced: usize,
    /// Responses sitting in watcher channels, summed.
    pub buffered: usize,
}

#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    wake: Condvar,
    capacity: usize,
}

impl Hub {
    pub fn new(current_rev: i64, compact_rev: i64, capacity: usize) -> Self {
        let state = HubState {
            next_id: 1,
            current_rev,
            compact_rev,
            ..HubState::default()
        };
        Self {
            state: Mutex::new(state),
            wake: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn watch(self: &Arc<Self>, req: WatchRequest) -> Watcher {
        let (tx, rx) = mpsc::channel(self.capacity);
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id += 1;
        let synced = req.start_revision == 0 || req.start_revision > st.current_rev;
        let next_rev = req.start_revision;
        let start_revision = if req.start_revision == 0 {
            st.current_rev + 1
        } else {
            req.start_revision
        };
        st.watchers.insert(
            id,
            WatcherState {
                req,
                tx,
                next_rev,
                synced: false,
            },
        );
        if synced {
            st.mark_synced(id);
        } else {
            st.unsynced.insert(id);
            self.wake.notify_all();
        }
        Watcher {
            id,
            start_revision,
            rx,
            hub: self.clone(),
        }
    }

    pub fn cancel(&self, id: WatchId) -> bool {
        self.state.lock().remove(id)
    }

    /// Sends a progress notification (an empty response at the current revision) if the watcher has
    /// every event up to it, as etcd does; an unsynced watcher gets none.
    pub fn progress(&self, id: WatchId) -> bool {
        let st = self.state.lock();
        match st.watchers.get(&id) {
            Some(w) if w.synced => {
                w.tx.try_send(WatchResponse {
                    watch_id: id,
                    revision: st.current_rev,
                    events: vec![],
                    compact_revision: 0,
                    canceled: false,
                })
                .is_ok()
            }
            _ => false,
        }
    }

    pub fn set_compacted(&self, rev: i64) {
        let mut st = self.state.lock();
        st.compact_rev = st.compact_rev.max(rev);
        self.wake.notify_all();
    }

    /// Publishes a commit: `revisions` are the new revisions' events in order, `current` the store
    /// revision after them. Runs on the writer's thread and never blocks on a watcher.
    pub fn publish(&self, revisions: &[(i64, Vec<Event>)], current: i64) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        st.current_rev = current;
        let mut newly_unsynced = Vec::new();
        let mut closed = Vec::new();
        for ((key, end), ids) in &st.groups {
            let range = KeyRange::new(key, end);
            let matching: Vec<(i64, Vec<&Event>)> = revisions
                .iter()
                .filter_map(|(rev, events)| {
                    let hit: Vec<&Event> = events
                        .iter()
                        .filter(|e| range.contains(&e.kv.key))
                        .collect();
                    (!hit.is_empty()).then_some((*rev, hit))
                })
                .collect();
            if matching.is_empty() {
                continue;
            }
            for &id in ids {
                let w = st.watchers.get_mut(&id).expect("grouped watchers exist");
                for (rev, events) in &matching {
                    if *rev < w.req.start_revision {
                        continue;
                    }
                    let picked: Vec<Event> = events
                        .iter()
                        .filter(|e| w.wants(e))
                        .map(|e| w.shape(e))
                        .collect();
                    if picked.is_empty() {
                        continue;
                    }
                    let resp = WatchResponse {
                        watch_id: id,
                        revision: *rev,
                        events: picked,
                        compact_revision: 0,
                        canceled: false,
                    };
                    match w.tx.try_send(resp) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            // Not delivered: the sync thread resumes from this revision, from disk.
                            w.next_rev = *rev;
                            newly_unsynced.push(id);
                            break;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            closed.push(id);
                            break;
                        }
                    }
                }
            }
        }
        for id in closed {
            st.remove(id);
        }
        if !newly_unsynced.is_empty() {
            for id in newly_unsynced {
                st.mark_unsynced(id);
            }
            self.wake.notify_all();
        }
    }

    pub fn stats(&self) -> WatchStats {
        let st = self.state.lock();
        WatchStats {
            watchers: st.watchers.len(),
            unsynced: st.unsynced.len(),
            buffered: st
                .watchers
                .values()
                .map(|w| self.capacity - w.tx.capacity())
                .sum(),
        }
    }

    /// Ends every watch: each [`Watcher`] gets what was already sent to it, then `None`. (Its
    /// sender goes here; the watcher itself keeps the hub alive, so dropping the hub would not.)
    pub fn shutdown(&self) {
        let mut st = self.state.lock();
        st.shutdown = true;
        st.watchers.clear();
        st.groups.clear();
        st.unsynced.clear();
        drop(st);
        self.wake.notify_all();
    }
}

/// A live watch. Dropping it cancels the watch.
#[derive(Debug)]
pub struct Watcher {
    id: WatchId,
    start_revision: i64,
    rx: mpsc::Receiver<WatchResponse>,
    hub: Arc<Hub>,
}

impl Watcher {
    pub fn id(&self) -> WatchId {
        self.id
    }

    /// The first revision this watch reports: its request's start revision, or for a start of 0
    /// the revision after the store's current one when it was made.
    pub fn start_revision(&self) -> i64 {
        self.start_revision
    }

    /// The next response; `None` once the watch is canceled (or the store closed).
    pub async fn recv(&mut self) -> Option<WatchResponse> {
        self.rx.recv().await
    }

    /// As [`Watcher::recv`], for threads outside an async runtime.
    pub fn blocking_recv(&mut self) -> Option<WatchResponse> {
        self.rx.blocking_recv()
    }

    pub fn try_recv(&mut self) -> Option<WatchResponse> {
        self.rx.try_recv().ok()
    }

    /// True once the watch has ended and every response was received.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed() && self.rx.is_empty()
    }

    /// Asks for a progress notification; see [`Hub::progress`].
    pub fn request_progress(&self) -> bool {
        self.hub.progress(self.id)
    }

    /// A handle that asks for progress notifications while another task waits in [`Watcher::recv`].
    pub fn progress_requester(&self) -> ProgressRequester {
        ProgressRequester {
            id: self.id,
            hub: self.hub.clone(),
        }
    }
}

/// See [`Watcher::progress_requester`]. Asking after the watcher is gone does nothing.
#[derive(Debug, Clone)]
pub struct ProgressRequester {
    id: WatchId,
    hub: Arc<Hub>,
}

impl ProgressRequester {
    pub fn request(&self) -> bool {
        self.hub.progress(self.id)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.hub.cancel(self.id);
    }
}

/// The sync thread's body: replays history to unsynced watchers until the hub shuts down.
pub(crate) fn sync_loop<B: Backend>(hub: Arc<Hub>, backend: &B) {
    loop {
        let ids: Vec<WatchId> = {
            let mut st = hub.state.lock();
            while st.unsynced.is_empty() && !st.shutdown {
                hub.wake.wait(&mut st);
            }
            if st.shutdown {
                return;
            }
            st.unsynced.iter().copied().collect()
        };
        let mut progressed = false;
        for id in ids {
            match sync_one(&hub, backend, id) {
                Ok(p) => progressed |= p,
                Err(err) => {
                    tracing::error!(%err, "watch history read failed; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        if !progressed {
            // Every unsynced watcher's channel is full: wait for readers (or a new watcher).
            let mut st = hub.state.lock();
            if !st.shutdown {
                hub.wake.wait_for(&mut st, Duration::from_millis(10));
            }
        }
    }
}

/// Moves one unsynced watcher forward as far as its channel allows. Returns whether it made progress.
fn sync_one<B: Backend>(hub: &Hub, backend: &B, id: WatchId) -> Result<bool, BackendError> {
    let mut progressed = false;
    loop {
        let (from, to, req, room, compact_floor) = {
            let mut st = hub.state.lock();
            let (compact_rev, current_rev) = (st.compact_rev, st.current_rev);
            let Some(w) = st.watchers.get_mut(&id) else {
                return Ok(progressed);
            };
            if w.tx.is_closed() {
                st.remove(id);
                return Ok(true);
            }
            let room = w.tx.capacity();
            if room == 0 {
                return Ok(progressed);
            }
            let from = w.next_rev.max(w.req.start_revision);
            if from < compact_rev {
                let resp = WatchResponse {
                    watch_id: id,
                    revision: current_rev,
                    events: vec![],
                    compact_revision: compact_rev,
                    canceled: true,
                };
                if w.tx.try_send(resp).is_ok() {
                    st.remove(id);
                }
                return Ok(true);
            }
            if from > current_rev {
                st.mark_synced(id);
                return Ok(true);
            }
            (from, current_rev, w.req.clone(), room, compact_rev)
        };
        let read = read_history(backend, &req, from, to, room, compact_floor);
        let mut st = hub.state.lock();
        if st.compact_rev > from {
            // A compaction ran while we read: what we read may have holes. Start over (and cancel).
            continue;
        }
        let (batches, scanned_to) = read?;
        let Some(w) = st.watchers.get_mut(&id) else {
            return Ok(true);
        };
        for events in batches {
            let resp = WatchResponse {
                watch_id: id,
                revision: to,
                events,
                compact_revision: 0,
                canceled: false,
            };
            // Cannot fail for lack of room: only this thread sends to an unsynced watcher.
            if w.tx.try_send(resp).is_err() {
                return Ok(true);
            }
        }
        w.next_rev = scanned_to + 1;
        progressed = true;
    }
}

/// Reads the events for `req` in revisions `[from, to]` from the `Rev` keyspace, grouped into at
/// most `max_responses` responses. Returns them and the last revision fully examined.
fn read_history<B: Backend>(
    backend: &B,
    req: &WatchRequest,
    from: i64,
    to: i64,
    max_responses: usize,
    compacted: i64,
) -> Result<(Vec<Vec<Event>>, i64), BackendError> {
    let range = KeyRange::new(&req.key, &req.range_end);
    let mut out: Vec<Vec<Event>> = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut current_rev = from;
    let mut cursor = backend.cursor(Space::Rev);
    cursor.seek(&rev_key(from, 0));
    let mut scanned_to = to;
    while cursor.valid() {
        let (rev, sub) = decode_rev_key(cursor.key())?;
        if rev > to {
            break;
        }
        if rev != current_rev {
            // A revision boundary: the response being built may close here.
            if current.len() >= MAX_EVENTS_PER_RESPONSE {
                out.push(std::mem::take(&mut current));
                if out.len() == max_responses {
                    scanned_to = current_rev;
                    return Ok((out, scanned_to));
                }
            }
            current_rev = rev;
        }
        let (is_delete, user_key) = decode_rev_value(cursor.value())?;
        let wanted = range.contains(user_key)
            && if is_delete {
                !req.no_delete
            } else {
                !req.no_put
            };
        if wanted {
            current.extend(history_event(
                backend,
                user_key,
                (rev, sub),
                is_delete,
                req.prev_kv,
                compacted,
            )?);
        }
        cursor.next();
    }
    cursor.status()?;
    if !current.is_empty() {
        out.push(current);
    }
    Ok((out, scanned_to))
}

/// The event for the `sub`-th change of `rev`; `None` for a put whose version a compaction at or
/// above `rev` already removed (it was superseded within its own revision).
fn history_event<B: Backend>(
    backend: &B,
    user_key: &[u8],
    (rev, sub): (i64, u32),
    is_delete: bool,
    prev_kv: bool,
    compacted: i64,
) -> Result<Option<Event>, BackendError> {
    let key = Bytes::copy_from_slice(user_key);
    let exact = kv_key(user_key, rev, sub);
    let kv = if is_delete {
        KeyValue {
            key: key.clone(),
            mod_revision: rev,
            ..KeyValue::default()
        }
    } else {
        let Some(raw) = backend.get(Space::Kv, &exact)? else {
            if rev <= compacted {
                return Ok(None);
            }
            return Err(BackendError::Corrupt {
                space: "kv",
                what: "revision log names a missing version",
            });
        };
        kv_from_record(key.clone(), rev, Record::decode(&raw)?).ok_or(BackendError::Corrupt {
            space: "kv",
            what: "put event names a tombstone",
        })?
    };
    // As etcd: an event's previous key-value is the key as of the revision before the event's
    // (so a key put and deleted in one txn gives a DELETE without prev_kv), and a creation has none.
    let created = !is_delete && kv.create_revision == rev;
    let prev = if prev_kv && !created {
        get_version(backend, user_key, rev - 1)?
    } else {
        None
    };
    Ok(Some(Event {
        kind: if is_delete {
            EventType::Delete
        } else {
            EventType::Put
        },
        kv,
        prev_kv: prev,
    }))
}
