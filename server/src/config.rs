//! `ballast kv`'s flags: etcd's names and defaults where etcd has them.

use std::path::PathBuf;
use std::time::Duration;

use crate::compaction::AutoCompaction;
use crate::error::OpenError;
use crate::member::{MemberOptions, DEFAULT_MAX_REQUEST_BYTES};
use crate::serve::ServeOptions;

#[derive(clap::Args, Debug, Clone)]
pub struct KvArgs {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Path to the data directory (default: "<name>.ballast").
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated URLs to listen on for client traffic.
    #[arg(long, default_value = "http://localhost:2379")]
    pub listen_client_urls: String,
    /// Comma-separated client URLs of this member, as advertised to the cluster.
    #[arg(long, default_value = "http://localhost:2379")]
    pub advertise_client_urls: String,
    /// Comma-separated URLs to listen on for peer traffic.
    #[arg(long, default_value = "http://localhost:2380")]
    pub listen_peer_urls: String,
    /// Comma-separated peer URLs of this member, as advertised to the cluster.
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
    /// The bootstrap cluster: "name=peer-url,..." (default: this member alone).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// "new" to bootstrap a cluster, "existing" to join one.
    #[arg(long, default_value = "new")]
    pub initial_cluster_state: String,
    /// Token that makes the ids of one cluster's members unique.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// Largest client request accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
    /// Raise a NOSPACE alarm when the database exceeds this size (0 = 2 GiB).
    #[arg(long, default_value_t = 0)]
    pub quota_backend_bytes: u64,
    /// Most operations in one txn.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,
    /// "periodic" (retention is a duration) or "revision" (retention is a revision count).
    #[arg(long, default_value = "periodic")]
    pub auto_compaction_mode: String,
    /// Auto-compaction retention: "0" is off; periodic takes hours ("1") or a duration ("30m").
    #[arg(long, default_value = "0")]
    pub auto_compaction_retention: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, default_value_t = crate::member::DEFAULT_SNAPSHOT_COUNT)]
    pub snapshot_count: u64,
    /// Interval of progress notifications for watches that ask for them.
    #[arg(long = "experimental-watch-progress-notify-interval", default_value = "10m", value_parser = parse_duration)]
    pub watch_progress_notify_interval: Duration,
}

/// Parses "90s", "10m", "1h", "250ms" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--auto-compaction-mode` and `--auto-compaction-retention`, as etcd reads them.
pub fn auto_compaction(mode: &str, retention: &str) -> Result<AutoCompaction, String> {
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
                Err(_) => parse_duration(retention)?,
            };
            Ok(AutoCompaction::Periodic(d))
        }
        "revision" => match retention.parse::<i64>() {
            Ok(n) if n > 0 => Ok(AutoCompaction::Revision(n)),
            _ => Err(format!(
                "--auto-compaction-retention must be a positive revision count, not {retention:?}"
            )),
        },
        other => Err(format!(
            "--auto-compaction-mode must be periodic or revision, not {other:?}"
        )),
    }
}

fn urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

impl KvArgs {
    pub fn member_options(&self) -> Result<MemberOptions, OpenError> {
        let peer_urls = urls(&self.initial_advertise_peer_urls);
        let mut initial_cluster: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(cluster) = &self.initial_cluster {
            for entry in cluster.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let (name, url) = entry.split_once('=').ok_or_else(|| {
                    OpenError::Config(format!(
                        "--initial-cluster entry {entry:?} is not name=peer-url"
                    ))
                })?;
                match initial_cluster.iter_mut().find(|(n, _)| n == name) {
                    Some((_, urls)) => urls.push(url.to_owned()),
                    None => initial_cluster.push((name.to_owned(), vec![url.to_owned()])),
                }
            }
            match initial_cluster.iter().find(|(n, _)| *n == self.name) {
                None => {
                    return Err(OpenError::Config(format!(
                        "--initial-cluster has no member named {:?}",
                        self.name
                    )))
                }
                Some((_, urls)) => {
                    let (mut mine, mut advertised) = (urls.clone(), peer_urls.clone());
                    mine.sort();
                    advertised.sort();
                    if mine != advertised {
                        // etcd's wording.
                        return Err(OpenError::Config(format!(
                            "--initial-cluster has {}={} but missing from --initial-advertise-peer-urls={}",
                            self.name,
                            urls.join(","),
                            peer_urls.join(",")
                        )));
                    }
                }
            }
        }
        if self.initial_cluster_state != "new" && self.initial_cluster_state != "existing" {
            return Err(OpenError::Config(format!(
                "--initial-cluster-state must be new or existing, not {:?}",
                self.initial_cluster_state
            )));
        }
        if self.heartbeat_interval == 0 || self.election_timeout < 5 * self.heartbeat_interval {
            return Err(OpenError::Config(format!(
                "--election-timeout[{}ms] should be at least 5 times as --heartbeat-interval[{}ms]",
                self.election_timeout, self.heartbeat_interval
            )));
        }
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.ballast", self.name)));
        Ok(MemberOptions {
            name: self.name.clone(),
            data_dir,
            peer_urls,
            client_urls: urls(&self.advertise_client_urls),
            cluster_token: self.initial_cluster_token.clone(),
            initial_cluster,
            new_cluster: self.initial_cluster_state == "new",
            heartbeat: Duration::from_millis(self.heartbeat_interval),
            election_timeout: Duration::from_millis(self.election_timeout),
            snapshot_count: self.snapshot_count,
            max_request_bytes: self.max_request_bytes,
            quota_backend_bytes: self.quota_backend_bytes,
            max_txn_ops: self.max_txn_ops,
        })
    }

    pub fn serve_options(&self) -> Result<ServeOptions, OpenError> {
        Ok(ServeOptions {
            listen_client_urls: urls(&self.listen_client_urls),
            listen_peer_urls: urls(&self.listen_peer_urls),
            watch_progress_interval: self.watch_progress_notify_interval,
            auto_compaction: auto_compaction(
                &self.auto_compaction_mode,
                &self.auto_compaction_retention,
            )
            .map_err(OpenError::Config)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etcds_forms() {
        assert_eq!(
            auto_compaction("periodic", "0").unwrap(),
            AutoCompaction::Off
        );
        assert_eq!(
            auto_compaction("periodic", "1").unwrap(),
            AutoCompaction::Periodic(Duration::from_secs(3600))
        );
        assert_eq!(
            auto_compaction("periodic", "30m").unwrap(),
            AutoCompaction::Periodic(Duration::from_secs(1800))
        );
        assert_eq!(
            auto_compaction("revision", "1000").unwrap(),
            AutoCompaction::Revision(1000)
        );
        assert!(auto_compaction("revision", "1h").is_err());
        assert!(auto_compaction("weekly", "1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
