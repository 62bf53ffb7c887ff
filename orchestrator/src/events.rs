//! Events as client-go's recorder sends them: never in the way of the work (recorded into a
//! bounded queue, published beside it, dropped when the queue is full, as client-go's
//! broadcaster drops them), and rate-limited per object and reason by client-go's
//! `EventSourceObjectSpamFilter` (a burst of 25, then one per 5 minutes), so that a ReplicaSet
//! making 10,000 pods records 25 SuccessfulCreate events, not 10,000 writes.
//!
//! kube-runtime's `Recorder` does the publishing (and its own series aggregation); this module
//! adds the queue and the spam filter it does not have.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Semaphore};

/// client-go's spam filter: burst and refill.
const BURST: f64 = 25.0;
const REFILL_EVERY: Duration = Duration::from_secs(300);

/// Events waiting to be published before new ones are dropped.
const QUEUE: usize = 1000;

/// Publishes in flight at once.
const PUBLISHERS: usize = 8;

/// A token bucket per key (client-go's `EventSourceObjectSpamFilter`), time passed in.
#[derive(Debug, Default)]
pub struct SpamFilter {
    buckets: HashMap<String, (f64, Instant)>,
}

impl SpamFilter {
    /// Whether an event with this key may be sent at `now` (taking a token if so).
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        let (tokens, last) = self.buckets.entry(key.to_string()).or_insert((BURST, now));
        let refill =
            now.saturating_duration_since(*last).as_secs_f64() / REFILL_EVERY.as_secs_f64();
        *tokens = (*tokens + refill).min(BURST);
        *last = now;
        if self.buckets.len() > 10_000 {
            // Full buckets say nothing a new bucket would not: forget them.
            let full_after = REFILL_EVERY.mul_f64(BURST);
            self.buckets
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < full_after);
        }
        match self.buckets.get_mut(key) {
            Some((tokens, _)) if *tokens >= 1.0 => {
                *tokens -= 1.0;
                true
            }
            _ => false,
        }
    }
}

/// Where a component records its events.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<(Event, ObjectReference)>,
    filter: Arc<Mutex<SpamFilter>>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink").finish_non_exhaustive()
    }
}

impl EventSink {
    /// A sink publishing through `recorder` from a task of its own (it ends with the sink).
    pub fn new(recorder: Recorder) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Event, ObjectReference)>(QUEUE);
        tokio::spawn(async move {
            let limit = Arc::new(Semaphore::new(PUBLISHERS));
            while let Some((event, reference)) = rx.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    if let Err(e) = recorder.publish(&event, &reference).await {
                        tracing::debug!(%e, reason = event.reason, "event not recorded");
                    }
                    drop(permit);
                });
            }
        });
        Self {
            tx,
            filter: Arc::default(),
        }
    }

    /// Records `event` about `reference` unless the spam filter or a full queue drops it.
    pub fn record(&self, event: Event, reference: ObjectReference) {
        let key = format!(
            "{}/{}/{}/{}/{:?}/{}",
            reference.kind.as_deref().unwrap_or(""),
            reference.namespace.as_deref().unwrap_or(""),
            reference.name.as_deref().unwrap_or(""),
            reference.uid.as_deref().unwrap_or(""),
            event.type_,
            event.reason,
        );
        if !self.filter.lock().allow(&key, Instant::now()) {
            return;
        }
        if self.tx.try_send((event, reference)).is_err() {
            tracing::debug!("event queue full: event dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_25_then_one_per_5_minutes() {
        let mut filter = SpamFilter::default();
        let t0 = Instant::now();
        let sent = (0..100).filter(|_| filter.allow("rs/a", t0)).count();
        assert_eq!(sent, 25);
        assert!(!filter.allow("rs/a", t0 + Duration::from_secs(299)));
        assert!(filter.allow("rs/a", t0 + Duration::from_secs(301)));
        assert!(!filter.allow("rs/a", t0 + Duration::from_secs(302)));
        // Another object (or reason) has its own bucket.
        assert!(filter.allow("rs/b", t0));
    }
}
