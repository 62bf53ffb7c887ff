//! The simulation's deterministic runtime: openraft's seeded tokio runtime with FIFO watch
//! channels, and the digests the trace and the checks use.

use super::*;

// ---------------------------------------------------------------------------------------------
// The deterministic runtime.

/// [`Seeded`] with its watch channels replaced by [`FifoWatch`]. tokio's `watch` spreads waiting
/// receivers over eight lists picked by tokio's own RNG, which stable Rust cannot seed (that needs
/// `--cfg tokio_unstable`), so the tasks one change wakes would run in an order that differs from
/// process to process, and so would everything after.
#[derive(Debug)]
pub(crate) struct SimRuntime(Seeded);

impl AsyncRuntime for SimRuntime {
    type JoinError = <Seeded as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Seeded as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Seeded as AsyncRuntime>::Sleep;
    type Instant = <Seeded as AsyncRuntime>::Instant;
    type TimeoutError = <Seeded as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Seeded as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <Seeded as AsyncRuntime>::ThreadLocalRng;
    type Mpsc = <Seeded as AsyncRuntime>::Mpsc;
    type Watch = FifoWatch;
    type Oneshot = <Seeded as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Seeded as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Seeded::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Seeded::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Seeded::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Seeded::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Seeded::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Seeded::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        Seeded::thread_rng()
    }

    fn new(threads: usize) -> Self {
        Self(Seeded::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Seeded::spawn_blocking(f)
    }
}

/// A watch channel (one value, a version, receivers waiting for a newer version) that wakes its
/// waiting receivers in the order they started waiting.
pub(crate) struct FifoWatch;

pub(crate) struct WatchShared<T> {
    pub(crate) value: parking_lot::RwLock<T>,
    pub(crate) state: Mutex<WatchState>,
}

pub(crate) struct WatchState {
    pub(crate) version: u64,
    pub(crate) senders: usize,
    pub(crate) receivers: usize,
    pub(crate) waiting: Vec<std::task::Waker>,
}

impl<T> WatchShared<T> {
    /// Publishes a change: a new version, and every waiting receiver woken, oldest first.
    pub(crate) fn changed(&self) {
        let waiting = {
            let mut state = self.state.lock();
            state.version += 1;
            std::mem::take(&mut state.waiting)
        };
        waiting.into_iter().for_each(std::task::Waker::wake);
    }
}

pub(crate) struct FifoSender<T>(Arc<WatchShared<T>>);

pub(crate) struct FifoReceiver<T> {
    pub(crate) shared: Arc<WatchShared<T>>,
    pub(crate) seen: u64,
}

impl<T> Clone for FifoSender<T> {
    fn clone(&self) -> Self {
        self.0.state.lock().senders += 1;
        Self(self.0.clone())
    }
}

impl<T> Drop for FifoSender<T> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.state.lock();
            state.senders -= 1;
            if state.senders > 0 {
                return;
            }
            std::mem::take(&mut state.waiting)
        };
        // The last sender is gone: waiting receivers learn the channel is closed.
        waiting.into_iter().for_each(std::task::Waker::wake);
    }
}

impl<T> Clone for FifoReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().receivers += 1;
        Self {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for FifoReceiver<T> {
    fn drop(&mut self) {
        self.shared.state.lock().receivers -= 1;
    }
}

impl Watch for FifoWatch {
    type Sender<T: OptionalSend + OptionalSync> = FifoSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = FifoReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = parking_lot::RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let state = WatchState {
            version: 0,
            senders: 1,
            receivers: 1,
            waiting: Vec::new(),
        };
        let shared = Arc::new(WatchShared {
            value: parking_lot::RwLock::new(init),
            state: Mutex::new(state),
        });
        (FifoSender(shared.clone()), FifoReceiver { shared, seen: 0 })
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<FifoWatch, T> for FifoSender<T> {
    fn send(&self, value: T) -> Result<(), WatchSendError<T>> {
        // As tokio's: refused, and the value left as it was, once every receiver is gone.
        if self.0.state.lock().receivers == 0 {
            return Err(WatchSendError(value));
        }
        *self.0.value.write() = value;
        self.0.changed();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = modify(&mut self.0.value.write());
        if modified {
            self.0.changed();
        }
        modified
    }

    fn borrow_watched(&self) -> parking_lot::RwLockReadGuard<'_, T> {
        self.0.value.read()
    }

    fn subscribe(&self) -> FifoReceiver<T> {
        let seen = {
            let mut state = self.0.state.lock();
            state.receivers += 1;
            state.version
        };
        FifoReceiver {
            shared: self.0.clone(),
            seen,
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<FifoWatch, T> for FifoReceiver<T> {
    async fn changed(&mut self) -> Result<(), WatchRecvError> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.state.lock();
            if state.version != self.seen {
                self.seen = state.version;
                return std::task::Poll::Ready(Ok(()));
            }
            if state.senders == 0 {
                return std::task::Poll::Ready(Err(WatchRecvError(())));
            }
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await
    }

    fn borrow_watched(&self) -> parking_lot::RwLockReadGuard<'_, T> {
        self.shared.value.read()
    }

    fn borrow_and_update(&mut self) -> parking_lot::RwLockReadGuard<'_, T> {
        let value = self.shared.value.read();
        self.seen = self.shared.state.lock().version;
        value
    }
}

/// Spawns a task on the seeded runtime, so that the task's own randomness is seeded too.
pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) {
    drop(SimRuntime::spawn(task));
}

/// FNV-1a, continuing from `hash`: stable across runs and builds, unlike `DefaultHasher`.
pub(crate) fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A value's fingerprint: the hash of its encoding (the one members write and send).
pub(crate) fn digest<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    fnv(FNV_START, &encode(value))
}

/// A bug planted in the simulated storage or state machine, to show the checks catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    None,
    /// The log store loses the vote at every crash (a vote written without being synced).
    ForgetVote,
    /// Member 1's state machine applies some puts with another value.
    CorruptApply,
    /// Member 1's log store changes some puts' values as it appends them.
    AlterLogEntry,
    /// Members answer keep-alives without confirming that they still lead (issue 23's bug 3).
    UnconfirmedKeepAlive,
    /// A new leader does not restart the lease countdowns (`LeaderWatch` skipped).
    StaleCountdowns,
}

impl Bug {
    /// Whether `bug` is the one planted and hits this member's entry at `index` (a third of member
    /// 1's entries).
    pub(crate) fn hits(self, bug: Bug, member: NodeId, index: u64) -> bool {
        self == bug && member == 1 && index % 3 == 1
    }
}

/// Gives a put a value its client never sent (for the planted bugs).
pub(crate) fn corrupt(req: &mut WriteRequest) {
    if let WriteRequest::Put(put) = req {
        put.value = format!("corrupted {}", String::from_utf8_lossy(&put.value)).into();
    }
}
