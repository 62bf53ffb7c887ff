//! The faults a seed injects, one drawn per step: partitions (of a member, of a leader, long ones
//! outlasting the leases' TTLs), message loss, crashes and early elections.

use super::*;

impl Sim {
    pub(crate) fn pick(&mut self, ids: &[NodeId]) -> Option<NodeId> {
        (!ids.is_empty()).then(|| ids[self.rng.gen_range(0..ids.len())])
    }

    pub(crate) fn set_sides(&mut self, side: BTreeMap<NodeId, u8>, what: String) {
        self.router.state.lock().side = side;
        self.world.stats.lock().partitions += 1;
        self.world.event(what);
    }

    /// At most one fault per step, drawn by the seeded RNG.
    pub(crate) async fn fault(&mut self) {
        if self.loss_until.is_some_and(|until| until <= Instant::now()) {
            self.loss_until = None;
            self.router.state.lock().loss = 0.0;
            self.world.event("message loss ends");
        }
        if self
            .partition_until
            .is_some_and(|until| until <= Instant::now())
        {
            self.partition_until = None;
            self.router.state.lock().side.clear();
            self.world.event("long partition healed");
        }
        let roll = self.rng.gen_range(0..10_000);
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        match roll {
            0..=39 => {
                let id = self.pick(&ids).expect("members");
                self.set_sides(
                    BTreeMap::from([(id, 1)]),
                    format!("partition: n{id} isolated"),
                );
            }
            40..=79 => {
                if let Some(id) = self.pick(&self.leaders()) {
                    self.set_sides(
                        BTreeMap::from([(id, 1)]),
                        format!("partition: leader n{id} isolated"),
                    );
                }
            }
            80..=99 => {
                let side: BTreeMap<NodeId, u8> = ids
                    .iter()
                    .map(|&id| (id, self.rng.gen_range(0..2)))
                    .collect();
                let what = format!("partition: sides {side:?}");
                self.set_sides(side, what);
            }
            100..=199
                if self.partition_until.is_none() && !self.router.state.lock().side.is_empty() =>
            {
                self.router.state.lock().side.clear();
                self.world.event("partition healed");
            }
            200..=229 => {
                let loss = self.rng.gen_range(0.1..0.5);
                let until = Instant::now() + Duration::from_millis(self.rng.gen_range(200..2000));
                self.router.state.lock().loss = loss;
                self.loss_until = Some(until);
                self.world
                    .event(format!("message loss {:.0}%", loss * 100.0));
            }
            230..=259 => {
                if let Some(id) = self.pick(&self.running()) {
                    self.crash(id).await;
                }
            }
            260..=279 => {
                // A follower's election timer fires early (openraft's `trigger().elect()`).
                let followers: Vec<NodeId> = self
                    .running()
                    .into_iter()
                    .filter(|id| !self.leaders().contains(id))
                    .collect();
                if let Some(id) = self.pick(&followers) {
                    let raft = self.raft(id);
                    self.world.event(format!("n{id} campaigns"));
                    let _ = raft.trigger().elect(false).await;
                }
            }
            280..=294 if self.partition_until.is_none() => {
                // A leader cut off for longer than any lease's TTL: the majority elects another
                // leader, which must keep the leases its clients keep alive.
                if let Some(id) = self.pick(&self.leaders()) {
                    let millis = self.rng.gen_range(1500..3500);
                    self.partition_until = Some(Instant::now() + Duration::from_millis(millis));
                    self.set_sides(
                        BTreeMap::from([(id, 1)]),
                        format!("partition: leader n{id} isolated for {millis} ms"),
                    );
                }
            }
            _ => {}
        }
    }
}
