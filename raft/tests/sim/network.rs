//! The simulated network: an in-process router that delays, loses and partitions messages.

use super::*;

// ---------------------------------------------------------------------------------------------
// The network.

/// Who is up, who can reach whom, and how long and how reliably messages travel.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) state: Mutex<RouterState>,
    pub(crate) world: Arc<World>,
}

#[derive(Debug)]
pub(crate) struct RouterState {
    /// The running members.
    pub(crate) up: BTreeMap<NodeId, SimRaft>,
    /// Each member's side of the partition (0 when there is none); sides cannot talk.
    pub(crate) side: BTreeMap<NodeId, u8>,
    /// The probability that a message is lost.
    pub(crate) loss: f64,
    pub(crate) rng: StdRng,
}

/// Why a message got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    Unreachable(String),
    Timeout,
}

impl Router {
    /// One message's delay (0.1-8 ms), and whether it is lost.
    pub(crate) fn send(&self) -> (Duration, bool) {
        let mut state = self.state.lock();
        let delay = Duration::from_micros(state.rng.gen_range(100..=8000));
        let loss = state.loss;
        let lost = loss > 0.0 && state.rng.gen_bool(loss);
        let mut stats = self.world.stats.lock();
        stats.messages += 1;
        stats.lost += u64::from(lost);
        (delay, lost)
    }

    /// The member `to` as `from` can reach it now, if it can.
    pub(crate) fn connect(&self, from: NodeId, to: NodeId) -> Option<SimRaft> {
        let state = self.state.lock();
        let side = |id| state.side.get(&id).copied().unwrap_or(0);
        if !state.up.contains_key(&from) || side(from) != side(to) {
            return None;
        }
        state.up.get(&to).cloned()
    }
}

/// The network as one incarnation of a member sees it.
#[derive(Debug, Clone)]
pub(crate) struct SimNetwork {
    pub(crate) from: NodeId,
    pub(crate) alive: Arc<AtomicBool>,
    pub(crate) router: Arc<Router>,
}

impl RaftNetworkFactory<SimConfig> for SimNetwork {
    type Network = SimPeer;

    async fn new_client(&mut self, target: NodeId, _node: &MemberNode) -> SimPeer {
        SimPeer {
            net: self.clone(),
            target,
        }
    }
}

/// One peer, as openraft's replication and election see it.
#[derive(Debug)]
pub(crate) struct SimPeer {
    pub(crate) net: SimNetwork,
    pub(crate) target: NodeId,
}

impl SimPeer {
    /// Delivers a request after its delay, runs it on the target, and delivers the answer after
    /// its own delay. A lost message is noticed after the RPC's timeout (at most a second).
    pub(crate) async fn call<Resp, Err, Fut>(
        &self,
        what: &str,
        ttl: Duration,
        rpc: impl FnOnce(SimRaft) -> Fut,
    ) -> Result<Resp, Failure>
    where
        Fut: Future<Output = Result<Resp, Err>>,
        Err: Display,
    {
        let timeout = ttl.min(Duration::from_secs(1));
        let router = &self.net.router;
        let (delay, lost) = router.send();
        let line = format!(
            "n{} -> n{}: {what} in {delay:?}{}",
            self.net.from,
            self.target,
            if lost { ", lost" } else { "" }
        );
        router.world.trace.lock().detail(line);
        tokio::time::sleep(delay).await;
        if lost {
            tokio::time::sleep(timeout).await;
            return Err(Failure::Timeout);
        }
        let reachable = if self.net.alive.load(Ordering::SeqCst) {
            router.connect(self.net.from, self.target)
        } else {
            None
        };
        let Some(raft) = reachable else {
            return Err(Failure::Unreachable(format!(
                "n{} cannot reach n{}",
                self.net.from, self.target
            )));
        };
        let resp = rpc(raft)
            .await
            .map_err(|e| Failure::Unreachable(format!("n{}: {e}", self.target)))?;
        let (delay, lost) = router.send();
        tokio::time::sleep(delay).await;
        if lost || router.connect(self.target, self.net.from).is_none() {
            tokio::time::sleep(timeout).await;
            return Err(Failure::Timeout);
        }
        Ok(resp)
    }
}

pub(crate) fn rpc_error(failure: Failure) -> RPCError<SimConfig> {
    match failure {
        Failure::Unreachable(why) => {
            RPCError::Unreachable(Unreachable::new(&io::Error::other(why)))
        }
        Failure::Timeout => RPCError::Network(NetworkError::new(&io::Error::other("timed out"))),
    }
}

impl RaftNetworkV2<SimConfig> for SimPeer {
    type SnapshotData = Arc<Image>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("append", option.soft_ttl(), |raft| async move {
            raft.append_entries(rpc).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("vote", option.soft_ttl(), |raft| async move {
            raft.vote(rpc).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<SimConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<SimConfig>, RPCError<SimConfig>> {
        self.call("transfer leader", option.soft_ttl(), |raft| async move {
            raft.handle_transfer_leader(req).await
        })
        .await
        .map_err(rpc_error)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<SimConfig>, StreamingError<SimConfig>> {
        let index = snapshot.meta.last_log_id.as_ref().map_or(0, |id| id.index);
        let resp = self
            .call("snapshot", option.soft_ttl(), |raft| async move {
                raft.install_full_snapshot(vote, snapshot).await
            })
            .await
            .map_err(|failure| match rpc_error(failure) {
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                other => StreamingError::Network(NetworkError::new(&other)),
            })?;
        self.net.router.world.stats.lock().snapshots_sent += 1;
        self.net.router.world.event(format!(
            "n{} sent n{} a snapshot up to {index}",
            self.net.from, self.target
        ));
        Ok(resp)
    }
}
