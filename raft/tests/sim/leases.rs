//! Leases in the simulation (issue 23): clients grant short leases (1-2 s of simulated time),
//! attach keys to them and keep them alive through the members; every member runs a leader's
//! lease duties with Ballast's own code (`ballast_raft::leadership`: countdowns restarted when a
//! leadership begins, expiry only while a quorum hears from the leader, proposed straight into
//! its own log with its term, and leadership confirmed before a keep-alive is answered), while the
//! simulation isolates leaders for longer than the TTLs. [`Checker::kept`] and
//! [`Checker::revoked`] check the lease property: a lease (and so its keys) is never revoked
//! before the end of an acknowledged grant or keep-alive (send time plus TTL; one clock, so no
//! drift allowance).

pub(super) use ballast_raft::leadership::{self, LeaderWatch};
use ballast_raft::metrics::Metrics;
use ballast_store::{Clock, LeaseId, Millis, StoreError};

use super::*;

/// How long a member's keep-alive may wait for its leadership to be confirmed.
const CONFIRM_TIMEOUT: Duration = Duration::from_millis(2500);
/// `--election-timeout` as the simulation's raft configuration is scaled from it.
const ELECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a member's expiry loop looks for expired leases (as `replica.rs`'s does).
const EXPIRY_INTERVAL: Duration = Duration::from_millis(250);
/// Leases the clients hold at once, at most.
const MAX_LEASES: usize = 3;

/// The store's lease clock on simulated time.
#[derive(Debug)]
pub(super) struct SimClock {
    origin: Instant,
}

impl SimClock {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Millis {
        self.origin.elapsed().as_millis() as Millis
    }
}

/// The lease a command revokes, if it does.
pub(super) fn revoked_by(payload: &Payload) -> Option<LeaseId> {
    match payload {
        EntryPayload::Normal(Command::ExpireLease { lease, .. })
        | EntryPayload::Normal(Command::Store(WriteRequest::LeaseRevoke(lease))) => Some(*lease),
        _ => None,
    }
}

/// What the lease checks remember.
#[derive(Debug, Default)]
pub(super) struct LeaseHistory {
    /// Per lease, the latest end of an acknowledged grant or keep-alive (simulated ms), and who
    /// acknowledged it.
    kept: BTreeMap<LeaseId, (u64, String)>,
    /// Per lease, when its revocation was first applied, and by whom.
    revoked: BTreeMap<LeaseId, (u64, NodeId)>,
}

impl LeaseHistory {
    pub(super) fn revoked_yet(&self, lease: LeaseId) -> bool {
        self.revoked.contains_key(&lease)
    }
}

impl Checker {
    /// A grant or keep-alive of `lease` sent at `sent` (simulated ms) was acknowledged with `ttl` seconds.
    pub(super) fn kept(&mut self, lease: LeaseId, sent: u64, ttl: i64, what: String) {
        let until = sent + ttl as u64 * 1000;
        if let Some(&(at, by)) = self.leases.revoked.get(&lease) {
            if at < until {
                self.fail(format!(
                    "lease safety: {what} of lease {lease:x} (sent at {sent} ms, TTL {ttl} s) was \
                     acknowledged, but n{by} applied its revocation at {at} ms"
                ));
            }
        }
        let kept = self
            .leases
            .kept
            .entry(lease)
            .or_insert((until, what.clone()));
        if kept.0 < until {
            *kept = (until, what);
        }
    }

    /// `member` applied the revocation of `lease` at `at` (simulated ms).
    pub(super) fn revoked(&mut self, lease: LeaseId, at: u64, member: NodeId) {
        if self.leases.revoked.contains_key(&lease) {
            return;
        }
        self.leases.revoked.insert(lease, (at, member));
        if let Some((until, what)) = self.leases.kept.get(&lease) {
            if at < *until {
                let violation = format!(
                    "lease safety: n{member} applied the revocation of lease {lease:x} at {at} ms, \
                     but {what} keeps it until {until} ms"
                );
                self.fail(violation);
            }
        }
    }
}

/// The clients' leases: those they believe alive, each with the member its client keeps it alive
/// through (as an etcd client keeps its keep-alive stream on one endpoint until it fails), and the
/// next id to grant.
#[derive(Debug, Default)]
pub(super) struct LeaseClients {
    live: Arc<Mutex<BTreeMap<LeaseId, NodeId>>>,
    next: LeaseId,
}

/// A running member's lease duties: what `replica.rs`'s `watch_leader` and `lease_loop` do.
#[derive(Debug, Clone)]
pub(super) struct Duties {
    pub(super) metrics: Arc<Metrics>,
    pub(super) cell: Arc<StoreCell<MemoryBackend>>,
    /// Set by the planted bug that skips restarting countdowns on a new leadership.
    pub(super) stale_countdowns: bool,
}

impl Duties {
    /// Follows raft's metrics into the member's own (`LeaderWatch`), as `watch_leader` does.
    pub(super) fn observe(&self, watch: &mut LeaderWatch, m: &RaftMetrics<SimConfig>) {
        let leading = m.state == ServerState::Leader;
        if self.stale_countdowns {
            // The planted bug: leadership noted, countdowns left as an earlier leader set them.
            self.metrics.term.store(m.current_term, Ordering::Relaxed);
            self.metrics.leading.store(leading, Ordering::Release);
            return;
        }
        watch.observe(
            m.current_leader,
            leading,
            m.current_term,
            &self.metrics,
            &self.cell.get(),
        );
    }

    /// The expiry loop, as `lease_loop` runs it, for one incarnation of a member.
    pub(super) fn spawn_expiry(&self, id: NodeId, raft: SimRaft, alive: Arc<AtomicBool>) {
        let duties = self.clone();
        spawn(async move {
            loop {
                tokio::time::sleep(EXPIRY_INTERVAL).await;
                if !alive.load(Ordering::SeqCst) {
                    return;
                }
                let raft_metrics = raft.metrics().borrow_watched().clone();
                let Some(term) = leadership::leading_with_quorum(
                    &duties.metrics,
                    &raft_metrics,
                    id,
                    ELECTION_TIMEOUT,
                ) else {
                    continue;
                };
                leadership::expire_leases(&raft, &duties.cell.get(), term).await;
            }
        });
    }
}

impl Sim {
    /// One lease operation: a grant (with a key attached) while the clients hold few leases,
    /// otherwise a keep-alive of one of them through a member that believes it leads (or any).
    pub(super) fn lease_op(&mut self) {
        if self.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            return;
        }
        let live: Vec<LeaseId> = self.leases.live.lock().keys().copied().collect();
        if live.len() < MAX_LEASES && (live.is_empty() || self.rng.gen_bool(0.3)) {
            self.grant();
        } else {
            let lease = live[self.rng.gen_range(0..live.len())];
            self.keep_alive(lease);
        }
    }

    /// A member to send a client's request to: one that believes it leads, or, now and then or
    /// when none does, any running member.
    fn client_target(&mut self) -> Option<NodeId> {
        let leaders = self.leaders();
        if !leaders.is_empty() && self.rng.gen_bool(0.8) {
            return self.pick(&leaders);
        }
        self.pick(&self.running())
    }

    fn grant(&mut self) {
        let Some(target) = self.client_target() else {
            return;
        };
        self.leases.next += 1;
        let lease = 0x1000 + self.leases.next;
        let ttl = self.rng.gen_range(1..=2);
        let raft = self.raft(target);
        let (world, in_flight, live) = (
            self.world.clone(),
            self.in_flight.clone(),
            self.leases.live.clone(),
        );
        self.world.stats.lock().writes += 2;
        in_flight.fetch_add(1, Ordering::SeqCst);
        spawn(async move {
            let sent = world.now_ms();
            let grant = Command::Store(WriteRequest::LeaseGrant { id: lease, ttl });
            if client_write(target, &raft, grant, &world).await.is_some() {
                world.stats.lock().lease_grants += 1;
                world
                    .checker
                    .lock()
                    .kept(lease, sent, ttl, format!("n{target}'s grant"));
                live.lock().insert(lease, target);
                let put = PutRequest {
                    lease,
                    ..PutRequest::new(format!("lease-{lease:x}"), "held")
                };
                client_write(
                    target,
                    &raft,
                    Command::Store(WriteRequest::Put(put)),
                    &world,
                )
                .await;
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    fn keep_alive(&mut self, lease: LeaseId) {
        let pinned = self.leases.live.lock().get(&lease).copied();
        let target = match pinned.filter(|id| self.members[id].running.is_some()) {
            Some(id) => id,
            None => match self.client_target() {
                Some(id) => id,
                None => return,
            },
        };
        // Where the client goes if this member does not answer.
        let fallback = self.client_target().unwrap_or(target);
        let running = self.members[&target].running.as_ref().expect("running");
        let (raft, duties) = (running.raft.clone(), running.duties.clone());
        let unconfirmed = self.params.bug == Bug::UnconfirmedKeepAlive;
        let (world, in_flight, live) = (
            self.world.clone(),
            self.in_flight.clone(),
            self.leases.live.clone(),
        );
        in_flight.fetch_add(1, Ordering::SeqCst);
        spawn(async move {
            let sent = world.now_ms();
            let confirmed = if unconfirmed {
                // The planted bug: the member answers on its own belief that it leads.
                Ok(())
            } else {
                leadership::confirm_leadership(&raft, &duties.metrics, CONFIRM_TIMEOUT).await
            };
            let leads = duties.metrics.leading.load(Ordering::Acquire);
            if confirmed.is_err() || !leads {
                if let Some(pin) = live.lock().get_mut(&lease) {
                    *pin = fallback;
                }
            } else {
                match duties.cell.get().lease_keep_alive(lease) {
                    Ok(ttl) => {
                        if let Some(pin) = live.lock().get_mut(&lease) {
                            *pin = target;
                        }
                        world.stats.lock().keep_alives += 1;
                        world.checker.lock().kept(
                            lease,
                            sent,
                            ttl,
                            format!("n{target}'s keep-alive"),
                        );
                    }
                    Err(StoreError::LeaseNotFound) => {
                        live.lock().remove(&lease);
                    }
                    Err(err) => world.checker.lock().fail(format!(
                        "n{target}'s keep-alive of lease {lease:x} failed: {err}"
                    )),
                }
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
