//! The `etcdserverpb.Watch` service: one bidirectional stream carries many watches.
//!
//! Each stream has a control task reading requests, and one forwarding task per watch that moves the
//! store watcher's responses onto the stream's outbound channel. Watch ids are the stream's own
//! (client-chosen, or the lowest free one from 0, as etcd assigns them); the store's watcher ids
//! never reach the wire.
//!
//! A progress request is answered with one response with watch id -1 (as etcd 3.4 does) whose
//! revision is the lowest that every watch on the stream has been brought up to: the control task
//! asks each store watcher for a progress notification, the forwarding tasks hand those back to a
//! shared round instead of the client, and the last one in sends the answer. A watch that is
//! catching up from disk cannot vouch for any revision, so while one is, the answer is deferred
//! and the round tried again every `PROGRESS_RETRY` until every watch can (etcd 3.5.8's deferred
//! progress; the Kubernetes watch cache waits for these answers).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ballast_proto::pb;
use ballast_store::{ProgressRequester, WatchRequest, Watcher};
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::member::Member;

/// Responses buffered per stream before forwarding tasks wait for the client.
const STREAM_BUFFER: usize = 128;

/// How often a deferred progress request is tried again.
const PROGRESS_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct WatchService {
    member: Member,
    /// How often watches created with `progress_notify` get an empty response (etcd: 10 minutes).
    progress_interval: Duration,
}

impl WatchService {
    pub fn new(member: Member, progress_interval: Duration) -> Self {
        Self {
            member,
            progress_interval,
        }
    }
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::watch_server::Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<WatchStream>, Status> {
        // The stream's token speaks for every watch created on it, checked again at each
        // create (as etcd): a token that expired or was invalidated since creates nothing.
        self.member.caller(request.metadata())?;
        let mut token = MetadataMap::new();
        if let Some(value) = request.metadata().get("token") {
            token.insert("token", value.clone());
        }
        Ok(Response::new(self.open(request.into_inner(), token)))
    }
}

impl WatchService {
    /// One watch stream fed by `inbound`, answered on the returned stream: the gRPC method's
    /// body, and what an in-process client (the orchestrator's stacked storage) calls directly,
    /// with no gRPC between. `token` is the stream's `token` metadata, if auth is on.
    pub fn open<S>(&self, inbound: S, token: MetadataMap) -> WatchStream
    where
        S: Stream<Item = Result<pb::WatchRequest, Status>> + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let stream = StreamState {
            member: self.member.clone(),
            token,
            out: tx,
            watches: HashMap::new(),
            next_id: 0,
            round: Arc::default(),
            deferred: false,
        };
        tokio::spawn(stream.run(inbound, self.progress_interval));
        Box::pin(ReceiverStream::new(rx))
    }
}

/// A progress request being answered: the watches still to report, and the lowest revision so far.
#[derive(Debug, Default)]
struct Round {
    remaining: usize,
    min_rev: i64,
    active: bool,
}

struct WatchEntry {
    task: JoinHandle<()>,
    progress_notify: bool,
    progress: Arc<Progress>,
}

/// Lets the control task ask a watch for progress, and tells its forwarding task whether an answer
/// belongs to the stream's round or is the watch's own `progress_notify`.
struct Progress {
    /// Replaced when the watch moves to a new store (see `WatchRelay::run`).
    requester: Mutex<ProgressRequester>,
    /// Progress answers owed to the stream's round.
    round_acks: Mutex<usize>,
}

struct StreamState {
    member: Member,
    /// The stream's `token` metadata, if it had one.
    token: MetadataMap,
    out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    watches: HashMap<i64, WatchEntry>,
    next_id: i64,
    round: Arc<Mutex<Round>>,
    /// A progress request is owed but a watch could not vouch for a revision yet.
    deferred: bool,
}

impl StreamState {
    async fn run<S>(mut self, mut inbound: S, progress_interval: Duration)
    where
        S: Stream<Item = Result<pb::WatchRequest, Status>> + Unpin,
    {
        let mut ticker = tokio::time::interval(progress_interval);
        ticker.tick().await;
        let mut retry = tokio::time::interval(PROGRESS_RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = inbound.next() => match msg {
                    Some(Ok(req)) => {
                        if !self.handle(req).await {
                            break;
                        }
                    }
                    // The client went away or sent garbage: end the stream and every watch on it.
                    Some(Err(_)) | None => break,
                },
                _ = ticker.tick() => self.notify_progress(),
                _ = retry.tick(), if self.deferred => {
                    if !self.progress_round().await {
                        break;
                    }
                }
                _ = self.out.closed() => break,
            }
            let before = self.watches.len();
            self.watches.retain(|_, w| !w.task.is_finished());
            if self.watches.len() != before {
                self.round.lock().active = false;
            }
        }
        for (_, w) in self.watches.drain() {
            w.task.abort();
        }
    }

    /// Returns false once the client can no longer be answered.
    async fn handle(&mut self, req: pb::WatchRequest) -> bool {
        use pb::watch_request::RequestUnion;
        match req.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => {
                if let Some(w) = self.watches.remove(&cancel.watch_id) {
                    w.task.abort();
                    // Its answer to a round under way will never come.
                    self.round.lock().active = false;
                    let header = self.member.current_header();
                    let resp = pb::WatchResponse {
                        header: Some(header),
                        watch_id: cancel.watch_id,
                        canceled: true,
                        ..Default::default()
                    };
                    return self.send(resp).await;
                }
                true
            }
            Some(RequestUnion::ProgressRequest(_)) => self.progress_round().await,
            None => true,
        }
    }

    async fn create(&mut self, create: pb::WatchCreateRequest) -> bool {
        let header = self.member.current_header();
        let refuse = |reason: String| pb::WatchResponse {
            header: Some(header),
            watch_id: -1,
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..Default::default()
        };
        // etcd's watch stream refuses an inverted range and a watch id already in use.
        if !create.range_end.is_empty()
            && create.range_end.as_ref() != b"\0"
            && create.key >= create.range_end
        {
            return self
                .send(refuse("mvcc: watcher range is empty".into()))
                .await;
        }
        let readable = |auth: &ballast_store::AuthState, user: Option<&str>| {
            auth.check(
                user,
                &create.key,
                &create.range_end,
                ballast_store::Access::Read,
            )
        };
        let permitted = self
            .member
            .caller(&self.token)
            .and_then(|caller| self.member.permit(&caller, readable));
        if permitted.is_err() {
            // etcd 3.4 answers with the watch id asked for, and keeps the stream.
            // The reason is the gRPC error's own text, which etcd's client maps back to the error.
            let denied = refuse(format!(
                "rpc error: code = PermissionDenied desc = {}",
                ballast_store::StoreError::PermissionDenied
            ));
            return self
                .send(pb::WatchResponse {
                    watch_id: create.watch_id,
                    ..denied
                })
                .await;
        }
        let id = if create.watch_id != 0 {
            if self.watches.contains_key(&create.watch_id) {
                return self
                    .send(refuse(
                        "mvcc: duplicate watch ID provided on the WatchStream".into(),
                    ))
                    .await;
            }
            create.watch_id
        } else {
            while self.watches.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id += 1;
            self.next_id - 1
        };
        let req = match convert::watch_request(&create) {
            Ok(req) => req,
            Err(err) => return self.send(refuse(err.to_string())).await,
        };
        let watcher = match self.member.store().watch(req.clone()) {
            Ok(w) => w,
            Err(err) => return self.send(refuse(err.to_string())).await,
        };
        let created = pb::WatchResponse {
            header: Some(header),
            watch_id: id,
            created: true,
            ..Default::default()
        };
        if !self.send(created).await {
            return false;
        }
        let progress = Arc::new(Progress {
            requester: Mutex::new(watcher.progress_requester()),
            round_acks: Mutex::new(0),
        });
        let fwd = WatchRelay {
            member: self.member.clone(),
            req,
            out: self.out.clone(),
            id,
            fragment: create.fragment,
            max_bytes: self.member.options().max_request_bytes,
            progress: progress.clone(),
            round: self.round.clone(),
        };
        let task = tokio::spawn(fwd.run(watcher));
        self.watches.insert(
            id,
            WatchEntry {
                task,
                progress_notify: create.progress_notify,
                progress,
            },
        );
        true
    }

    /// Answers a progress request; see the module comment.
    async fn progress_round(&mut self) -> bool {
        self.deferred = false;
        if self.watches.is_empty() {
            let resp = pb::WatchResponse {
                header: Some(self.member.current_header()),
                watch_id: -1,
                ..Default::default()
            };
            return self.send(resp).await;
        }
        let round = self.round.clone();
        let mut round = round.lock();
        if round.active {
            // The round under way answers this request too.
            return true;
        }
        *round = Round {
            remaining: self.watches.len(),
            min_rev: i64::MAX,
            active: true,
        };
        let mut abandoned = false;
        for w in self.watches.values() {
            let mut acks = w.progress.round_acks.lock();
            *acks += 1;
            if !w.progress.requester.lock().request() {
                // Not synced (or its buffer is full): no revision can be promised now; the round
                // is abandoned and tried again later. Answers already requested go to a later
                // round (each is a revision its watch has delivered, so a safe lower bound).
                *acks -= 1;
                round.active = false;
                abandoned = true;
                break;
            }
        }
        drop(round);
        self.deferred = abandoned;
        true
    }

    fn notify_progress(&self) {
        for w in self.watches.values().filter(|w| w.progress_notify) {
            w.progress.requester.lock().request();
        }
    }

    async fn send(&self, resp: pb::WatchResponse) -> bool {
        self.out.send(Ok(resp)).await.is_ok()
    }
}

/// What to do with a progress answer from the store.
enum Ack {
    /// It is the watch's own progress notification: forward it.
    Notify,
    /// It belonged to a round that needs no answer yet (or was abandoned).
    Swallowed,
    /// It completed the round: send this instead.
    Answer(pb::WatchResponse),
}

/// Relays one watch's events from the store to the client's stream, following the store across
/// snapshot installs.
struct WatchRelay {
    member: Member,
    /// What the client asked for, to watch on from where it got to on a new store.
    req: WatchRequest,
    out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    id: i64,
    fragment: bool,
    max_bytes: usize,
    progress: Arc<Progress>,
    round: Arc<Mutex<Round>>,
}

impl WatchRelay {
    /// Forwards the watcher's responses until the client goes or the watch is canceled. When the
    /// store closes under it (a snapshot install replaced the store; etcd keeps such watches too),
    /// it watches on in the new store from the first revision it has not forwarded; when the
    /// member is stopping, the new watch fails and the stream ends with the member.
    async fn run(self, mut watcher: Watcher) {
        let mut next = watcher.start_revision();
        loop {
            while let Some(resp) = watcher.recv().await {
                if !self.forward(resp, &mut next).await {
                    return;
                }
            }
            let req = WatchRequest {
                start_revision: next,
                ..self.req.clone()
            };
            match self.member.store().watch(req) {
                Ok(w) => {
                    tracing::debug!(
                        watch_id = self.id,
                        from = next,
                        "watch moved to the installed store"
                    );
                    *self.progress.requester.lock() = w.progress_requester();
                    self.reask_progress(&w);
                    watcher = w;
                }
                Err(_) => return,
            }
        }
    }

    /// Sends one store response on; false once the watch is over (canceled, or the client gone).
    /// `next` becomes the first revision not yet accounted for.
    async fn forward(&self, resp: ballast_store::WatchResponse, next: &mut i64) -> bool {
        if resp.canceled {
            let header = self.member.header(resp.revision);
            let reason = ballast_store::StoreError::Compacted.to_string();
            let msg = pb::WatchResponse {
                header: Some(header),
                watch_id: self.id,
                canceled: true,
                compact_revision: resp.compact_revision,
                cancel_reason: reason,
                ..Default::default()
            };
            let _ = self.out.send(Ok(msg)).await;
            return false;
        }
        match resp.events.last() {
            Some(last) => *next = last.kv.mod_revision + 1,
            // A progress notification: every event up to its revision has been delivered.
            None => *next = (*next).max(resp.revision + 1),
        }
        if resp.events.is_empty() {
            match self.round_ack(resp.revision) {
                Ack::Notify => {}
                Ack::Swallowed => return true,
                Ack::Answer(msg) => return self.out.send(Ok(msg)).await.is_ok(),
            }
        }
        let header = self.member.header(resp.revision);
        let events: Vec<_> = resp.events.into_iter().map(convert::event).collect();
        for msg in self.split(header, events) {
            if self.out.send(Ok(msg)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// A progress answer the closed watcher owed the stream's round is asked of its successor; if
    /// that one cannot vouch for a revision yet (it is replaying history), the round is abandoned,
    /// as `progress_round` does for such a watch.
    fn reask_progress(&self, successor: &Watcher) {
        {
            let mut acks = self.progress.round_acks.lock();
            if *acks == 0 {
                return;
            }
            if successor.request_progress() {
                *acks = 1;
                return;
            }
            *acks = 0;
        }
        // Not under the acks lock: `progress_round` takes the round's lock first.
        self.round.lock().active = false;
    }

    /// Takes a progress answer owed to the stream's round, and makes the round's answer if it was
    /// the last one. The answer goes after every event this watch forwarded so far; the other
    /// watches answered only after forwarding theirs.
    fn round_ack(&self, rev: i64) -> Ack {
        {
            let mut acks = self.progress.round_acks.lock();
            if *acks == 0 {
                return Ack::Notify;
            }
            *acks -= 1;
        }
        let mut round = self.round.lock();
        if !round.active {
            return Ack::Swallowed;
        }
        round.min_rev = round.min_rev.min(rev);
        round.remaining -= 1;
        if round.remaining > 0 {
            return Ack::Swallowed;
        }
        round.active = false;
        Ack::Answer(pb::WatchResponse {
            header: Some(self.member.header(round.min_rev)),
            watch_id: -1,
            ..Default::default()
        })
    }

    /// One response, or with `fragment` set, as many as keep each under the request size limit
    /// (every part but the last flagged `fragment`).
    fn split(
        &self,
        header: pb::ResponseHeader,
        events: Vec<ballast_proto::mvccpb::Event>,
    ) -> Vec<pb::WatchResponse> {
        let whole = pb::WatchResponse {
            header: Some(header),
            watch_id: self.id,
            events,
            ..Default::default()
        };
        if !self.fragment || whole.encoded_len() <= self.max_bytes {
            return vec![whole];
        }
        let mut parts = Vec::new();
        let mut current = pb::WatchResponse {
            header: Some(header),
            watch_id: self.id,
            ..Default::default()
        };
        let mut size = current.encoded_len();
        for ev in whole.events {
            let len = ev.encoded_len() + 8;
            if !current.events.is_empty() && size + len > self.max_bytes {
                let mut done = std::mem::replace(
                    &mut current,
                    pb::WatchResponse {
                        header: Some(header),
                        watch_id: self.id,
                        ..Default::default()
                    },
                );
                done.fragment = true;
                parts.push(done);
                size = current.encoded_len();
            }
            size += len;
            current.events.push(ev);
        }
        parts.push(current);
        parts
    }
}
