//! The clients' writes: a seeded mix of puts, deletes, txns and compactions, sent to a member that
//! believes it leads, and their acknowledgements recorded for the checker.

use super::*;

impl Sim {
    pub(crate) fn command(&mut self) -> WriteRequest {
        let key = format!("k{}", self.rng.gen_range(0..KEYS));
        self.next_value += 1;
        let value = format!("v{}", self.next_value);
        match self.rng.gen_range(0..100) {
            0..=54 => WriteRequest::Put(PutRequest {
                prev_kv: self.rng.gen_bool(0.3),
                ..PutRequest::new(key, value)
            }),
            55..=69 => WriteRequest::DeleteRange(DeleteRangeRequest {
                prev_kv: true,
                ..DeleteRangeRequest::key(key)
            }),
            70..=96 => {
                let version = self.rng.gen_range(0..4);
                WriteRequest::Txn(TxnRequest {
                    compare: vec![Compare::new(
                        key.clone(),
                        CompareResult::Equal,
                        CompareTarget::Version(version),
                    )],
                    success: vec![RequestOp::Put(PutRequest::new(key.clone(), value))],
                    failure: vec![RequestOp::Range(RangeRequest::key(key))],
                })
            }
            _ => {
                // Compact below some member's current revision (or past it: refused, deterministically).
                let id = self.rng.gen_range(1..=self.nodes.len() as NodeId);
                let rev = self.members[&id].sm.store().revision();
                WriteRequest::Compact((rev - self.rng.gen_range(0..20)).max(1))
            }
        }
    }

    /// Sends a write to a member that believes it leads (or any member, which refuses it).
    pub(crate) fn submit_write(&mut self) {
        if self.in_flight.load(Ordering::SeqCst) >= MAX_IN_FLIGHT {
            return;
        }
        let leaders = self.leaders();
        let target = match self.pick(&leaders) {
            Some(id) => id,
            None => match self.pick(&self.running()) {
                Some(id) => id,
                None => return,
            },
        };
        let command = Command::Store(self.command());
        let raft = self.raft(target);
        self.world.stats.lock().writes += 1;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let (world, in_flight) = (self.world.clone(), self.in_flight.clone());
        spawn(async move {
            client_write(target, &raft, command, &world).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// One client write; the log id it was committed at, if the member answered.
pub(crate) async fn client_write(
    member: NodeId,
    raft: &SimRaft,
    command: Command,
    world: &World,
) -> Option<LogId> {
    let payload = digest(&Payload::Normal(command.clone()));
    let answer = tokio::time::timeout(Duration::from_secs(5), raft.client_write(command)).await;
    let Ok(Ok(resp)) = answer else { return None };
    world
        .checker
        .lock()
        .acked(member, &resp.log_id, payload, digest(&resp.data));
    world.stats.lock().acked += 1;
    world.event(format!("n{member} acknowledged a write at {}", resp.log_id));
    Some(resp.log_id)
}
