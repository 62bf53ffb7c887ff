//! Auto-compaction (etcd's `--auto-compaction-mode` and `--auto-compaction-retention`).

use std::collections::VecDeque;
use std::time::Duration;

use ballast_store::WriteRequest;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::member::Member;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    Off,
    /// Keep this much history (by time).
    Periodic(Duration),
    /// Keep this many revisions.
    Revision(i64),
}

/// How often revision mode looks at the revision (etcd: every 5 minutes).
const REVISION_CHECK: Duration = Duration::from_secs(300);

impl AutoCompaction {
    /// Runs until the member stops.
    pub async fn run(self, member: Member) {
        match self {
            AutoCompaction::Off => {}
            AutoCompaction::Revision(keep) => {
                let mut tick = tokio::time::interval(REVISION_CHECK);
                loop {
                    tick.tick().await;
                    let target = member.store().revision() - keep;
                    if target > member.store().compact_revision() && !compact(&member, target).await
                    {
                        return;
                    }
                }
            }
            AutoCompaction::Periodic(retention) => {
                // Sample the revision ten times per retention period; compact to the newest sample
                // that is at least one retention period old.
                let step = (retention / 10).max(Duration::from_secs(1));
                let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
                let mut tick = tokio::time::interval(step);
                loop {
                    tick.tick().await;
                    let now = Instant::now();
                    samples.push_back((now, member.store().revision()));
                    let mut target = None;
                    while let Some(&(at, rev)) = samples.front() {
                        if now.duration_since(at) < retention {
                            break;
                        }
                        target = Some(rev);
                        samples.pop_front();
                    }
                    if let Some(rev) = target {
                        if rev > member.store().compact_revision() && !compact(&member, rev).await {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// False once the member has stopped. Only the leader compacts (etcd pauses the compactor on
/// every other member): N members each proposing the same compaction would log it N times.
async fn compact(member: &Member, rev: i64) -> bool {
    if !member.replica().is_leader() {
        return true;
    }
    match member.propose(WriteRequest::Compact(rev)).await {
        Ok(_) => {
            tracing::info!(revision = rev, "auto-compaction done");
            true
        }
        Err(ApiError::Stopped) => false,
        Err(err) => {
            tracing::warn!(revision = rev, %err, "auto-compaction failed");
            true
        }
    }
}
