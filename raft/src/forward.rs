//! What a follower hands to the leader (`Peer.Forward`).
//!
//! Writes travel in batches, as etcd's proposals do in its raft stream: one RPC per write cost
//! the two members about 50 µs of HTTP/2 and tonic per write, a third of a put's CPU with 256
//! clients spread over 3 members. A [`WriteForwarder`] queues the writes of its member and sends
//! everything queued whenever fewer than [`MAX_IN_FLIGHT`] batches are on their way, so a lone
//! write leaves at once and a crowd waits at most one round trip to share one RPC. The leader
//! proposes a batch with one message to openraft's core (`client_write_many`) and answers each
//! write on its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ballast_proto::raftpb::peer_client::PeerClient;
use ballast_proto::raftpb::Blob;
use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio::sync::{oneshot, Semaphore};

use crate::codec::{decode, encode};
use crate::metrics::Metrics;
use crate::network::{addressed, Network};
use crate::types::{Command, MemberNode, NodeId};
use crate::wire::{LeaderReply, LeaderRequest, ReplicaError};

/// Batches on their way to the leader at once, from one member.
const MAX_IN_FLIGHT: usize = 4;
/// Writes in one batch at most (a batch is one message).
const MAX_BATCH: usize = 512;

type Answer = Result<LeaderReply, ReplicaError>;

struct Pending {
    leader_id: NodeId,
    leader: MemberNode,
    command: Command,
    answer: oneshot::Sender<Answer>,
}

/// The write queue of one member. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WriteForwarder {
    shared: Arc<Shared>,
}

struct Shared {
    network: Network,
    metrics: Arc<Metrics>,
    /// Bounds each RPC.
    timeout: Duration,
    queue: Mutex<VecDeque<Pending>>,
    in_flight: Arc<Semaphore>,
}

impl WriteForwarder {
    pub(crate) fn new(network: Network, metrics: Arc<Metrics>, timeout: Duration) -> Self {
        WriteForwarder {
            shared: Arc::new(Shared {
                network,
                metrics,
                timeout,
                queue: Mutex::default(),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            }),
        }
    }

    /// Has `leader` commit `command`; answers as [`call`] would for a lone
    /// [`LeaderRequest::Write`].
    pub(crate) async fn write(
        &self,
        leader_id: NodeId,
        leader: &MemberNode,
        command: Command,
    ) -> Answer {
        let (answer, answered) = oneshot::channel();
        self.shared.queue.lock().push_back(Pending {
            leader_id,
            leader: leader.clone(),
            command,
            answer,
        });
        self.dispatch();
        answered.await.map_err(|_| ReplicaError::Stopped)?
    }

    /// Sends what is queued while fewer than [`MAX_IN_FLIGHT`] batches are on their way;
    /// otherwise the next batch to come back does. A write is queued before its caller tries, and
    /// a batch gives back its place before it looks, so no write is left waiting with no one to
    /// send it.
    fn dispatch(&self) {
        loop {
            let Ok(permit) = Arc::clone(&self.shared.in_flight).try_acquire_owned() else {
                return;
            };
            let batch: Vec<Pending> = {
                let mut queue = self.shared.queue.lock();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                return;
            }
            // In a task of its own: a caller that goes away must not strand the others.
            let this = self.clone();
            tokio::spawn(async move {
                this.send(batch).await;
                drop(permit);
                this.dispatch();
            });
        }
    }

    async fn send(&self, batch: Vec<Pending>) {
        // Writes queued across a change of leader go to the leader each was meant for (the
        // caller looks again if that one no longer leads).
        let mut by_leader: BTreeMap<NodeId, Vec<Pending>> = BTreeMap::new();
        for write in batch {
            by_leader.entry(write.leader_id).or_default().push(write);
        }
        join_all(
            by_leader
                .into_values()
                .map(|writes| self.send_to_leader(writes)),
        )
        .await;
    }

    async fn send_to_leader(&self, writes: Vec<Pending>) {
        let (leader_id, leader) = (writes[0].leader_id, writes[0].leader.clone());
        let (commands, answers): (Vec<_>, Vec<_>) =
            writes.into_iter().map(|w| (w.command, w.answer)).unzip();
        let count = commands.len();
        self.shared.metrics.writes_per_forward.observe(count as f64);
        let req = LeaderRequest::Writes(commands);
        match call(
            &self.shared.network,
            leader_id,
            &leader,
            &req,
            self.shared.timeout,
        )
        .await
        {
            Ok(LeaderReply::Writes(results)) if results.len() == count => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result.map(LeaderReply::Write));
                }
            }
            other => {
                let err = match other {
                    Err(err) => err,
                    Ok(reply) => ReplicaError::Other(format!(
                        "unexpected reply from the leader to {count} writes: {reply:?}"
                    )),
                };
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
    }
}

/// One `Peer.Forward` RPC to `leader`. A leader that could not be reached is
/// [`ReplicaError::NoLeader`]: the caller looks for the leader again. A connection lost once the
/// request may have reached the leader is [`ReplicaError::Timeout`] for work that must not run
/// twice (writes, membership changes): the leader may have committed it, so the caller must not
/// send it again, and like etcd the client is told the outcome is unknown.
pub(crate) async fn call(
    network: &Network,
    leader_id: NodeId,
    leader: &MemberNode,
    req: &LeaderRequest,
    timeout: Duration,
) -> Answer {
    let channel = network.channel(leader).map_err(ReplicaError::Other)?;
    let mut client = PeerClient::new(channel).max_decoding_message_size(usize::MAX);
    let mut request = addressed(
        Blob {
            data: encode(req).into(),
        },
        leader_id,
    );
    request.set_timeout(timeout);
    let reply = match client.forward(request).await {
        Ok(reply) => reply,
        Err(status) if status.code() == tonic::Code::Unavailable => {
            return Err(if req.may_repeat() || never_delivered(&status) {
                ReplicaError::NoLeader
            } else {
                ReplicaError::Timeout
            });
        }
        // The URL now serves another member: the request was refused unread.
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            return Err(ReplicaError::NoLeader)
        }
        // A request that may be sent again is, to whoever leads by then.
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
            return Err(if req.may_repeat() {
                ReplicaError::NoLeader
            } else {
                ReplicaError::Timeout
            })
        }
        Err(status) => return Err(ReplicaError::Other(status.message().to_owned())),
    };
    decode::<Answer>("forwarded reply", &reply.into_inner().data)
        .map_err(|e| ReplicaError::Other(e.to_string()))?
}

/// Whether an Unavailable RPC certainly did not reach the leader's service: the connection was
/// never made, or the leader refused the stream before reading it (HTTP/2 REFUSED_STREAM). Other
/// causes (the connection dropped, a keep-alive ping went unanswered) leave it unknown.
fn never_delivered(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>()
            || err
                .downcast_ref::<h2::Error>()
                .is_some_and(|e| e.reason() == Some(h2::Reason::REFUSED_STREAM))
        {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_undelivered_rpc_counts_as_undelivered() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connect = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(connect.code(), tonic::Code::Unavailable);
        assert!(never_delivered(&connect));
        let refused_stream =
            tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(never_delivered(&refused_stream));
        // What a dropped connection or an unanswered keep-alive ping gives.
        assert!(!never_delivered(&tonic::Status::unavailable(
            "connection closed"
        )));
        let reset = tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::CANCEL)));
        assert!(!never_delivered(&reset));
    }
}
