//! Auto-compaction (etcd's `--auto-compaction-mode` and `--auto-compaction-retention`).

use std::collections::VecDeque;
use std::time::Duration;

use ballast_store::WriteRequest;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::node::Node;

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
    pub fn parse(mode: &str, retention: &str) -> Result<Self, String> {
        let retention = retention.trim();
        if retention == "0" || retention.is_empty() {
            return Ok(AutoCompaction::Off);
        }
        match mode {
            "periodic" => {
                // etcd reads a bare number as hours.
                let d = match retention.parse::<f64>() {
                    Ok(hours) if hours > 0.0 => Duration::from_secs_f64(hours * 3600.0),
                    Ok(_) => return Err(format!("invalid --auto-compaction-retention {retention:?}")),
                    Err(_) => crate::config::parse_duration(retention)?,
                };
                Ok(AutoCompaction::Periodic(d))
            }
            "revision" => match retention.parse::<i64>() {
                Ok(n) if n > 0 => Ok(AutoCompaction::Revision(n)),
                _ => Err(format!("--auto-compaction-retention must be a positive revision count, not {retention:?}")),
            },
            other => Err(format!("--auto-compaction-mode must be periodic or revision, not {other:?}")),
        }
    }

    /// Runs until the member stops.
    pub async fn run(self, node: Node) {
        match self {
            AutoCompaction::Off => {}
            AutoCompaction::Revision(keep) => {
                let mut tick = tokio::time::interval(REVISION_CHECK);
                loop {
                    tick.tick().await;
                    let target = node.store().revision() - keep;
                    if target > node.store().compact_revision() && !compact(&node, target).await {
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
                    samples.push_back((now, node.store().revision()));
                    let mut target = None;
                    while let Some(&(at, rev)) = samples.front() {
                        if now.duration_since(at) < retention {
                            break;
                        }
                        target = Some(rev);
                        samples.pop_front();
                    }
                    if let Some(rev) = target {
                        if rev > node.store().compact_revision() && !compact(&node, rev).await {
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
async fn compact(node: &Node, rev: i64) -> bool {
    if !node.replica().is_leader() {
        return true;
    }
    match node.propose(WriteRequest::Compact(rev)).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etcds_forms() {
        assert_eq!(
            AutoCompaction::parse("periodic", "0").unwrap(),
            AutoCompaction::Off
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "1").unwrap(),
            AutoCompaction::Periodic(Duration::from_secs(3600))
        );
        assert_eq!(
            AutoCompaction::parse("periodic", "30m").unwrap(),
            AutoCompaction::Periodic(Duration::from_secs(1800))
        );
        assert_eq!(
            AutoCompaction::parse("revision", "1000").unwrap(),
            AutoCompaction::Revision(1000)
        );
        assert!(AutoCompaction::parse("revision", "1h").is_err());
        assert!(AutoCompaction::parse("weekly", "1").is_err());
    }
}
