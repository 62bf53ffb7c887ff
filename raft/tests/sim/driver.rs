//! The driver: one seed's members, faults, client writes and the convergence at the end.

use super::*;

// ---------------------------------------------------------------------------------------------
// The driver.

/// What a run does: how many steps, with which planted bug, and whether votes are checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) steps: u64,
    pub(crate) bug: Bug,
    pub(crate) check_votes: bool,
}

impl Params {
    pub(crate) fn new(steps: u64) -> Self {
        Self {
            steps,
            bug: Bug::None,
            check_votes: true,
        }
    }
}

/// A member's disks, and the member itself while it runs.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) log: Arc<Mutex<LogDisk>>,
    pub(crate) sm: Arc<SmDisk>,
    pub(crate) flush_rng: Arc<Mutex<StdRng>>,
    pub(crate) running: Option<Running>,
    pub(crate) restart_at: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) raft: SimRaft,
    pub(crate) alive: Arc<AtomicBool>,
    pub(crate) duties: Duties,
}

/// How a seed ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) seed: u64,
    pub(crate) stats: Stats,
    pub(crate) trace_hash: u64,
    pub(crate) trace_tail: VecDeque<String>,
    pub(crate) violation: Option<String>,
}

/// One seed's run: the members and their disks, the network, the checks and the seeded choices.
pub(crate) struct Sim {
    pub(crate) params: Params,
    pub(crate) rng: StdRng,
    pub(crate) config: Arc<Config>,
    pub(crate) world: Arc<World>,
    pub(crate) router: Arc<Router>,
    pub(crate) nodes: BTreeMap<NodeId, MemberNode>,
    pub(crate) members: BTreeMap<NodeId, Member>,
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// When the current burst of message loss ends.
    pub(crate) loss_until: Option<Instant>,
    /// When the current long partition (of a leader, longer than the leases' TTLs) heals.
    pub(crate) partition_until: Option<Instant>,
    pub(crate) next_value: u64,
    pub(crate) leases: LeaseClients,
}

pub(crate) fn raft_config() -> Arc<Config> {
    let config = Config {
        cluster_name: "ballast-sim".into(),
        // Ballast's ratios (`--election-timeout` t of 10 heartbeats: min t/4, max 3t/4), scaled down.
        heartbeat_interval: 50,
        election_timeout_min: 125,
        election_timeout_max: 375,
        // Small, so that snapshots are taken, sent to lagging members and logs purged.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(30),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        max_payload_entries: 16,
        install_snapshot_timeout: 1000,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid config"))
}

impl Sim {
    pub(crate) fn new(seed: u64, params: Params) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let size = if rng.gen_bool(0.7) { 3 } else { 5 };
        let world = Arc::new(World {
            checker: Mutex::new(Checker::new(params.check_votes)),
            trace: Mutex::new(Trace::new(seed)),
            stats: Mutex::new(Stats::default()),
        });
        let router_rng = StdRng::seed_from_u64(rng.gen());
        let router = Arc::new(Router {
            state: Mutex::new(RouterState {
                up: BTreeMap::new(),
                side: BTreeMap::new(),
                loss: 0.0,
                rng: router_rng,
            }),
            world: world.clone(),
        });
        let nodes: BTreeMap<NodeId, MemberNode> = (1..=size)
            .map(|id| {
                (
                    id,
                    MemberNode {
                        name: format!("n{id}"),
                        peer_urls: vec![format!("sim://n{id}")],
                        client_urls: vec![],
                    },
                )
            })
            .collect();
        let members = nodes
            .keys()
            .map(|&id| {
                let member = Member {
                    log: Arc::default(),
                    sm: Arc::new(SmDisk {
                        cell: Arc::new(StoreCell::new(empty_store())),
                        snapshot: Mutex::new(None),
                    }),
                    flush_rng: Arc::new(Mutex::new(StdRng::seed_from_u64(rng.gen()))),
                    running: None,
                    restart_at: None,
                };
                (id, member)
            })
            .collect();
        world.event(format!("seed {seed}: {size} members, bug {:?}", params.bug));
        Self {
            params,
            rng,
            config: raft_config(),
            world,
            router,
            nodes,
            members,
            in_flight: Arc::new(AtomicUsize::new(0)),
            loss_until: None,
            partition_until: None,
            next_value: 0,
            leases: LeaseClients::default(),
        }
    }

    pub(crate) async fn run(mut self, seed: u64) -> Outcome {
        let violation = self.drive().await.err();
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            if self.members[&id].running.is_some() {
                self.stop(id).await;
            }
        }
        let mut stats = self.world.stats.lock().clone();
        stats.sim_millis = self.world.trace.lock().start.elapsed().as_millis() as u64;
        let trace = self.world.trace.lock();
        Outcome {
            seed,
            stats,
            trace_hash: trace.hash,
            trace_tail: trace.tail.clone(),
            violation,
        }
    }

    pub(crate) async fn drive(&mut self) -> Result<(), String> {
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.start(id).await?;
        }
        for member in self.members.values() {
            let raft = &member.running.as_ref().expect("just started").raft;
            // Every initial member initializes, as `Replica::open` does; all but one are refused.
            let _ = raft.initialize(self.nodes.clone()).await;
        }
        for step in 0..self.params.steps {
            let pause = Duration::from_millis(self.rng.gen_range(1..=10));
            tokio::time::sleep(pause).await;
            self.world.stats.lock().steps += 1;
            self.fault().await;
            self.restart_due().await?;
            if self.rng.gen_bool(0.25) {
                self.submit_write();
            }
            if self.rng.gen_bool(0.06) {
                self.lease_op();
            }
            self.check().map_err(|v| format!("step {step}: {v}"))?;
            self.trace_states(step);
        }
        self.converge().await
    }

    /// Puts every running member's state in the trace, so that replays are compared step by step.
    pub(crate) fn trace_states(&self, step: u64) {
        let states: Vec<String> = self
            .members
            .iter()
            .filter_map(|(id, member)| {
                let m = member
                    .running
                    .as_ref()?
                    .raft
                    .metrics()
                    .borrow_watched()
                    .clone();
                let applied = m.last_applied.map_or(0, |id| id.index);
                Some(format!(
                    "n{id} {:?} {} log {:?} applied {applied}",
                    m.state, m.vote, m.last_log_index
                ))
            })
            .collect();
        self.world
            .trace
            .lock()
            .detail(format!("step {step}: {}", states.join(", ")));
    }

    /// Runs the checks over the logs as they are now, and reports the first violation found.
    pub(crate) fn check(&self) -> Result<(), String> {
        let logs: BTreeMap<NodeId, LogView> = self
            .members
            .iter()
            .map(|(&id, member)| (id, member.log.lock().view()))
            .collect();
        let mut checker = self.world.checker.lock();
        checker.check_logs(&logs);
        match checker.violations.first() {
            Some(violation) => Err(violation.clone()),
            None => Ok(()),
        }
    }

    pub(crate) async fn start(&mut self, id: NodeId) -> Result<(), String> {
        let member = self.members.get_mut(&id).expect("a member");
        let alive = Arc::new(AtomicBool::new(true));
        let log = SimLog {
            id,
            disk: member.log.clone(),
            alive: alive.clone(),
            world: self.world.clone(),
            bug: self.params.bug,
            flush_rng: member.flush_rng.clone(),
        };
        let host = SimHost {
            id,
            disk: member.sm.clone(),
            log: member.log.clone(),
            alive: alive.clone(),
            world: self.world.clone(),
            bug: self.params.bug,
        };
        let duties = Duties {
            metrics: Arc::default(),
            cell: member.sm.cell.clone(),
            stale_countdowns: self.params.bug == Bug::StaleCountdowns,
        };
        let sm = StateMachine::new(member.sm.cell.clone(), host, duties.metrics.clone())
            .map_err(|e| format!("n{id} cannot open its store: {e}"))?;
        let network = SimNetwork {
            from: id,
            alive: alive.clone(),
            router: self.router.clone(),
        };
        let raft = Raft::new(id, self.config.clone(), network, log, sm)
            .await
            .map_err(|e| format!("n{id} cannot start: {e}"))?;
        self.router.state.lock().up.insert(id, raft.clone());
        watch_metrics(id, &raft, alive.clone(), self.world.clone(), duties.clone());
        duties.spawn_expiry(id, raft.clone(), alive.clone());
        member.running = Some(Running {
            raft,
            alive,
            duties,
        });
        member.restart_at = None;
        Ok(())
    }

    /// Stops a member as a crash would: at once, writing nothing more.
    pub(crate) async fn stop(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        let Some(running) = member.running.take() else {
            return;
        };
        running.alive.store(false, Ordering::SeqCst);
        self.router.state.lock().up.remove(&id);
        self.world.checker.lock().crashed(id);
        let _ = running.raft.shutdown().await;
    }

    pub(crate) async fn crash(&mut self, id: NodeId) {
        self.stop(id).await;
        // A process crash keeps the store (RocksDB's WAL survives it); losing the machine loses
        // what was not synced, and the store is not: it restarts from its last snapshot.
        let lose_store = self.rng.gen_bool(0.3);
        let down = if self.rng.gen_bool(0.3) {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.gen_range(50..2000))
        };
        let member = self.members.get_mut(&id).expect("a member");
        if lose_store {
            member.sm.cell.replace(empty_store());
        }
        if self.params.bug == Bug::ForgetVote {
            member.log.lock().vote = None;
        }
        member.restart_at = Some(Instant::now() + down);
        self.world.stats.lock().crashes += 1;
        let what = if lose_store {
            "losing its store"
        } else {
            "keeping its store"
        };
        self.world.event(format!(
            "n{id} crashes, {what}, down for {} ms",
            down.as_millis()
        ));
    }

    pub(crate) async fn restart_due(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let due: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| m.restart_at.is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.world.event(format!("n{id} restarts"));
            self.start(id).await?;
        }
        Ok(())
    }

    pub(crate) fn running(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, m)| m.running.is_some())
            .map(|(&id, _)| id)
            .collect()
    }

    /// A running member's raft handle.
    pub(crate) fn raft(&self, id: NodeId) -> SimRaft {
        let running = self.members[&id].running.as_ref();
        running.expect("running").raft.clone()
    }

    /// The running members that believe they lead.
    pub(crate) fn leaders(&self) -> Vec<NodeId> {
        let leads = |m: &Member| {
            m.running
                .as_ref()
                .is_some_and(|r| r.raft.metrics().borrow_watched().state == ServerState::Leader)
        };
        self.members
            .iter()
            .filter(|(_, m)| leads(m))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Heals everything, restarts every member, and waits until they all hold the same store,
    /// which must hold every acknowledged write.
    pub(crate) async fn converge(&mut self) -> Result<(), String> {
        self.world
            .event("converging: faults healed, every member restarted");
        {
            let mut router = self.router.state.lock();
            router.side.clear();
            router.loss = 0.0;
        }
        self.loss_until = None;
        self.partition_until = None;
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            if self.members[&id].running.is_none() {
                self.start(id).await?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let poll = Duration::from_millis(100);
        // Writes still in flight end (or time out) first, so that the final write is the last entry.
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(poll).await;
            self.check()?;
        }
        let last = loop {
            if Instant::now() > deadline {
                return Err("no leader accepted the final write within 60 s of healing".into());
            }
            tokio::time::sleep(poll).await;
            self.check()?;
            let Some(&leader) = self.leaders().first() else {
                continue;
            };
            let raft = self.raft(leader);
            let command = Command::Store(WriteRequest::Put(PutRequest::new("final", "write")));
            if let Some(log_id) = client_write(leader, &raft, command, &self.world).await {
                break log_id;
            }
        };
        loop {
            tokio::time::sleep(poll).await;
            self.check()?;
            let states = self.final_states()?;
            let first = *states.values().next().expect("members");
            let converged = states.values().all(|s| *s == first);
            if converged && first.0.as_ref().is_some_and(|id| id.index >= last.index) {
                return self.check_acked(first.0.as_ref().map_or(0, |id| id.index));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "members did not converge within 60 s of healing: {states:?}"
                ));
            }
        }
    }

    /// Each member's store: its applied log id and its `hash_kv`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn final_states(
        &self,
    ) -> Result<BTreeMap<NodeId, (Option<LogId>, (u32, i64, i64))>, String> {
        let mut states = BTreeMap::new();
        for (&id, member) in &self.members {
            let store = member.sm.store();
            let (applied, _) = decode_applied(store.applied()).map_err(|e| e.to_string())?;
            states.insert(id, (applied, store.hash_kv(0).map_err(|e| e.to_string())?));
        }
        Ok(states)
    }

    /// Durability, at the end: every acknowledged write is below every member's applied index
    /// (all equal, their stores identical) and is the entry applied at its index.
    pub(crate) fn check_acked(&self, applied: u64) -> Result<(), String> {
        let checker = self.world.checker.lock();
        for log_id in &checker.acked {
            let agreed = checker.applied.get(&log_id.index).map(|a| &a.log_id);
            if log_id.index > applied || agreed != Some(log_id) {
                return Err(format!("durability: acknowledged {log_id} is not in the final state (applied {applied}, {agreed:?})"));
            }
        }
        self.world.event(format!(
            "converged at index {applied} with {} acknowledged writes",
            checker.acked.len()
        ));
        Ok(())
    }
}

/// Follows one incarnation of a member: its leaderships (into its lease duties too), its vote,
/// and whether its raft keeps running (openraft stops a member whose storage fails or whose own assertions fail, and a panic
/// in its task would otherwise go unnoticed).
pub(crate) fn watch_metrics(
    id: NodeId,
    raft: &SimRaft,
    alive: Arc<AtomicBool>,
    world: Arc<World>,
    duties: Duties,
) {
    let mut metrics = raft.metrics();
    spawn(async move {
        let mut leadership = leases::LeaderWatch::default();
        loop {
            if !alive.load(Ordering::SeqCst) {
                return;
            }
            let m = metrics.borrow_watched().clone();
            duties.observe(&mut leadership, &m);
            let elected = world
                .checker
                .lock()
                .saw_metrics(id, &m, &mut world.stats.lock());
            if elected {
                world.event(format!(
                    "n{id} leads with vote {} (last log {:?})",
                    m.vote, m.last_log_index
                ));
            }
            if let Err(fatal) = &m.running_state {
                world
                    .checker
                    .lock()
                    .fail(format!("health: n{id}'s raft stopped: {fatal}"));
                return;
            }
            if metrics.changed().await.is_err() {
                if alive.load(Ordering::SeqCst) {
                    world.checker.lock().fail(format!(
                        "health: n{id}'s raft stopped by itself (its task panicked)"
                    ));
                }
                return;
            }
        }
    });
}
