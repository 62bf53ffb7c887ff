//! Watches fanned out: one store watch per resource, shared by every API watch of that resource,
//! as kube-apiserver's watch cache serves its watches from one etcd watch per resource.
//!
//! A resource's [`Hub`] keeps a window of its most recent batches, so a watch that starts a
//! little behind the newest revision (a client resuming from the list it just read) is served
//! from the window and then from the live feed, with no store watch of its own. A watch that
//! starts before the window, or that falls so far behind that the feed runs past it, reads from
//! a store watch of its own instead ([`Source::Direct`]): it never misses an event, and the
//! store answers 410 if the history it needs is compacted. Store progress is asked for every
//! [`PROGRESS_EVERY`]; its notifications reach every watch (the source of bookmarks).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use ballast_proto::mvccpb;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::registry::{list_prefix, Registry};
use crate::storage::{StorageError, StorageResult, WatchStream};

/// How often the store is asked for progress (the source of bookmarks).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Events a hub keeps for watches that start behind it.
const WINDOW: usize = 1024;

/// Batches queued for one watch before it counts as fallen behind (and moves to its own store
/// watch).
const QUEUE: usize = 1024;

/// How long a broken store watch waits before it is opened again.
const REOPEN_AFTER: Duration = Duration::from_millis(200);

/// One response of the store: events in revision order, or none (a progress notification: every
/// event up to `revision` has been sent).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub revision: i64,
    pub events: Vec<Arc<Event>>,
}

/// A store event as a hub shares it among its watches, with a place where the API layer keeps
/// what it derives from the event (the object decoded, converted and encoded): a hundred
/// watches of one resource then decode and encode each event once, not a hundred times.
#[derive(Debug)]
pub struct Event {
    pub raw: mvccpb::Event,
    memo: Mutex<Vec<(MemoKey, Arc<dyn Any + Send + Sync>)>>,
}

/// Which derivation a memo holds: the (group, version) the object is served as, since one
/// store watch serves every version of a resource.
pub type MemoKey = (&'static str, &'static str);

impl Event {
    pub fn new(raw: mvccpb::Event) -> Self {
        Self {
            raw,
            memo: Mutex::new(Vec::new()),
        }
    }

    /// What `derive` makes of this event for `key`, made by the first watch that asks (the
    /// others wait for it and share the result).
    pub fn memo<T: Any + Send + Sync>(
        &self,
        key: MemoKey,
        derive: impl FnOnce(&mvccpb::Event) -> T,
    ) -> Arc<T> {
        let mut memo = self.memo.lock();
        if let Some(found) = memo.iter().find(|(k, _)| *k == key) {
            if let Ok(found) = found.1.clone().downcast::<T>() {
                return found;
            }
        }
        let made = Arc::new(derive(&self.raw));
        memo.retain(|(k, _)| *k != key);
        memo.push((key, made.clone()));
        made
    }
}

impl Deref for Event {
    type Target = mvccpb::Event;

    fn deref(&self) -> &mvccpb::Event {
        &self.raw
    }
}

impl Batch {
    /// The revision every event up to which this batch completes: its last event's, or for a
    /// progress notification the store's. (A batch's header revision may run ahead of its
    /// events while the store catches a watch up.)
    fn through(&self) -> i64 {
        self.events
            .last()
            .and_then(|e| e.kv.as_ref())
            .map_or(self.revision, |kv| kv.mod_revision)
    }

    /// The batch without the events a watch has seen or does not look at, at the revision the
    /// whole batch completes (so that a batch with none left is a progress notification).
    fn after(&self, after: i64, prefix: &[u8]) -> Batch {
        Batch {
            revision: self.through(),
            events: self
                .events
                .iter()
                .filter(|e| {
                    e.kv.as_ref()
                        .is_some_and(|kv| kv.mod_revision > after && kv.key.starts_with(prefix))
                })
                .cloned()
                .collect(),
        }
    }
}

/// The shared watches, one per resource.
#[derive(Debug)]
pub struct Fanout {
    /// Held while a hub starts, so that a resource never gets two.
    hubs: tokio::sync::Mutex<HashMap<&'static str, Arc<Hub>>>,
    /// Events each hub keeps for watches that start behind it.
    window: usize,
    /// Batches queued for one watch before it counts as fallen behind.
    queue: usize,
}

impl Default for Fanout {
    fn default() -> Self {
        Self::new(WINDOW, QUEUE)
    }
}

#[derive(Debug)]
struct Hub {
    state: Mutex<HubState>,
}

#[derive(Debug)]
struct HubState {
    /// The newest batches with events, oldest first.
    recent: VecDeque<Arc<Batch>>,
    /// Events in `recent`, and how many it keeps.
    events: usize,
    window: usize,
    /// Every event of the resource from this revision on is in `recent`.
    from: i64,
    /// The live feed; None once the hub has stopped (its history was compacted away).
    feed: Option<broadcast::Sender<Arc<Batch>>>,
}

impl HubState {
    fn push(&mut self, batch: Batch) {
        let batch = Arc::new(batch);
        if !batch.events.is_empty() {
            self.events += batch.events.len();
            self.recent.push_back(batch.clone());
            while self.events > self.window {
                let Some(old) = self.recent.pop_front() else {
                    break;
                };
                self.events -= old.events.len();
                self.from = old.through() + 1;
            }
        }
        if let Some(feed) = &self.feed {
            // No receivers is fine: the hub keeps watching for the next watch.
            let _ = feed.send(batch);
        }
    }
}

impl Fanout {
    /// Hubs that keep `window` events and let a watch fall `queue` batches behind.
    pub fn new(window: usize, queue: usize) -> Self {
        Self {
            hubs: Default::default(),
            window,
            queue,
        }
    }

    /// The events of `resource` (in `namespace`, if given) after revision `after` (0: from
    /// now). Fails as the store's watch would: [`StorageError::Compacted`] below the compacted
    /// revision.
    pub async fn subscribe(
        &self,
        registry: &Registry,
        resource: &'static str,
        namespace: Option<&str>,
        after: i64,
    ) -> StorageResult<Subscription> {
        let prefix = list_prefix(resource, namespace);
        // A hub's window may reach back past the store's compaction; a watch from there is
        // answered as the store would answer it (410), so that its client lists again.
        if after > 0 {
            registry.check_history(after).await?;
        }
        let joined = {
            let mut hubs = self.hubs.lock().await;
            let hub = match hubs.get(resource) {
                Some(hub) if hub.running() => hub.clone(),
                _ => {
                    let hub = Hub::start(registry, resource, after, self).await?;
                    hubs.insert(resource, hub.clone());
                    hub
                }
            };
            hub.join(after)
        };
        let source = match joined {
            Some(source) => source,
            None => Source::Direct(Direct::open(registry, &prefix, after).await?),
        };
        Ok(Subscription {
            registry: registry.clone(),
            prefix,
            after,
            source,
        })
    }
}

impl Hub {
    /// Opens the resource's store watch after `after` (or the current revision) and starts
    /// feeding it to subscribers.
    async fn start(
        registry: &Registry,
        resource: &str,
        after: i64,
        limits: &Fanout,
    ) -> StorageResult<Arc<Hub>> {
        let after = match after {
            0 => registry.current_revision().await?,
            after => after,
        };
        let prefix = list_prefix(resource, None);
        let watch = Direct::open(registry, &prefix, after).await?;
        let (feed, _) = broadcast::channel(limits.queue);
        let hub = Arc::new(Hub {
            state: Mutex::new(HubState {
                recent: VecDeque::new(),
                events: 0,
                window: limits.window,
                from: after + 1,
                feed: Some(feed),
            }),
        });
        tokio::spawn(hub.clone().run(registry.clone(), prefix, after, watch));
        Ok(hub)
    }

    fn running(&self) -> bool {
        self.state.lock().feed.is_some()
    }

    /// A watch's source from this hub: the window's batches after `after`, then the live
    /// feed; None if the window does not reach back to `after` or the hub has stopped.
    fn join(&self, after: i64) -> Option<Source> {
        let state = self.state.lock();
        let feed = state.feed.as_ref()?;
        if after > 0 && after + 1 < state.from {
            return None;
        }
        let backlog = match after {
            0 => VecDeque::new(),
            _ => state.recent.iter().cloned().collect(),
        };
        Some(Source::Shared {
            backlog,
            feed: feed.subscribe(),
        })
    }

    /// Feeds the store watch to subscribers until its history is compacted away (a broken
    /// stream is opened again by `Direct`).
    async fn run(
        self: Arc<Self>,
        registry: Registry,
        prefix: String,
        mut after: i64,
        mut watch: Direct,
    ) {
        while let Ok(batch) = watch.next(&registry, &prefix, after).await {
            after = after.max(batch.through());
            self.state.lock().push(batch);
        }
        // The history the hub needs is gone: its watches move to store watches of their own,
        // which answer them as the store does (410 when theirs is gone too), and the next
        // watch of the resource starts a new hub.
        self.state.lock().feed = None;
    }
}

/// A broken store watch opened again after `after`; fails only when that history is gone.
async fn reopen(registry: &Registry, prefix: &str, after: i64) -> StorageResult<WatchStream> {
    loop {
        tokio::time::sleep(REOPEN_AFTER).await;
        match registry.watch(prefix, after).await {
            Err(e @ StorageError::Compacted { .. }) => return Err(e),
            Err(_) => continue,
            ok => return ok,
        }
    }
}

/// One API watch's events.
#[derive(Debug)]
pub struct Subscription {
    registry: Registry,
    prefix: String,
    /// Every event up to this revision has been returned.
    after: i64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// From a hub: its window's batches, then its live feed.
    Shared {
        backlog: VecDeque<Arc<Batch>>,
        feed: broadcast::Receiver<Arc<Batch>>,
    },
    /// A store watch of its own.
    Direct(Direct),
}

impl Subscription {
    /// The next batch of this watch's events (possibly none: progress up to its `revision`),
    /// or the error that ends the watch.
    pub async fn next(&mut self) -> StorageResult<Batch> {
        loop {
            let batch = match &mut self.source {
                Source::Shared { backlog, feed } => match backlog.pop_front() {
                    Some(batch) => batch,
                    None => match feed.recv().await {
                        Ok(batch) => batch,
                        // Fallen behind the feed, or the hub stopped: go on from a store watch
                        // of its own, after the last event returned.
                        Err(_) => {
                            let direct = Direct::open(&self.registry, &self.prefix, self.after);
                            self.source = Source::Direct(direct.await?);
                            continue;
                        }
                    },
                },
                Source::Direct(direct) => Arc::new(
                    direct
                        .next(&self.registry, &self.prefix, self.after)
                        .await?,
                ),
            };
            let progress = batch.events.is_empty();
            let seen = self.after;
            let batch = batch.after(seen, self.prefix.as_bytes());
            self.after = seen.max(batch.revision);
            // Events only elsewhere, or ones this watch has: nothing to say (a progress
            // notification is passed on, even at the watch's own revision: a bookmark).
            if batch.events.is_empty() && !(progress && batch.revision >= seen) {
                continue;
            }
            return Ok(batch);
        }
    }
}

/// A watch's own store watch, with its progress requests and its reopening when it breaks.
#[derive(Debug)]
struct Direct {
    stream: WatchStream,
    progress: tokio::time::Interval,
}

impl Direct {
    async fn open(registry: &Registry, prefix: &str, after: i64) -> StorageResult<Self> {
        let stream = registry.watch(prefix, after).await?;
        let mut progress = tokio::time::interval(PROGRESS_EVERY);
        progress.reset();
        Ok(Self { stream, progress })
    }

    async fn next(
        &mut self,
        registry: &Registry,
        prefix: &str,
        after: i64,
    ) -> StorageResult<Batch> {
        loop {
            let resp = tokio::select! {
                resp = self.stream.next() => resp,
                _ = self.progress.tick() => {
                    self.stream.request_progress();
                    continue;
                }
            };
            match resp {
                Some(Ok(resp)) => {
                    return Ok(Batch {
                        revision: resp.header.map_or(0, |h| h.revision),
                        events: resp
                            .events
                            .into_iter()
                            .map(Event::new)
                            .map(Arc::new)
                            .collect(),
                    })
                }
                Some(Err(e @ StorageError::Compacted { .. })) => return Err(e),
                // The store's stream broke: open it again after the last event returned.
                Some(Err(_)) | None => self.stream = reopen(registry, prefix, after).await?,
            }
        }
    }
}
