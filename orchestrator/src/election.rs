//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it
//! for kube-scheduler and kube-controller-manager: one holder at a time, renewed every retry
//! period, given up when it cannot be renewed within the renew deadline, taken over by another
//! candidate once it has seen the record unchanged for a lease duration.
//!
//! Written here rather than taken from a crate: `kube-lease-manager` writes the Lease by
//! server-side apply (not served yet) and `kube-leader-election` is built on an older kube;
//! neither judges expiry by the observer's clock as client-go does (below).
//!
//! [`Elector`] decides (pure, with the time passed in); [`run`] reads and writes the Lease.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// kube-scheduler's and kube-controller-manager's `--leader-elect-*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionConfig {
    /// `--leader-elect-lease-duration`: how long a candidate waits, from when it last saw the
    /// record change, before it takes the lease over.
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline`: how long the holder keeps trying to renew before it
    /// gives leadership up.
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period`: the pause between attempts.
    pub retry_period: Duration,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The part of a Lease that says who holds it: what a candidate watches for change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Record {
    holder: String,
    duration_secs: i32,
    acquire: Option<Timestamp>,
    renew: Option<Timestamp>,
    transitions: i32,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.unwrap_or_default(),
            duration_secs: spec.lease_duration_seconds.unwrap_or(0),
            acquire: spec.acquire_time.map(|t| t.0),
            renew: spec.renew_time.map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }

    fn spec(&self) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: self.acquire.map(MicroTime),
            renew_time: self.renew.map(MicroTime),
            lease_transitions: Some(self.transitions),
            ..LeaseSpec::default()
        }
    }
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write this spec: create the Lease when there was none, else replace the one read (at
    /// its resourceVersion, so that of two candidates only one wins).
    Write { spec: LeaseSpec, create: bool },
    /// Another candidate holds the lease and has renewed it recently enough.
    Follow { holder: String },
}

/// One candidate's view of the election (client-go's `LeaderElector` without its I/O).
#[derive(Debug)]
pub struct Elector {
    identity: String,
    config: ElectionConfig,
    /// The record last seen, and when (by this candidate's clock) it was first seen: expiry is
    /// judged by the observer's clock, never by the holder's timestamps, so that clocks that
    /// disagree between processes do not matter.
    observed: Option<(Record, Instant)>,
}

impl Elector {
    pub fn new(identity: impl Into<String>, config: ElectionConfig) -> Self {
        Self {
            identity: identity.into(),
            config,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// client-go's `tryAcquireOrRenew` after its read: `read` is the Lease (None if there is
    /// none), `now` this process's monotonic clock and `wall` the time written into the record.
    pub fn step(&mut self, read: Option<&Lease>, now: Instant, wall: Timestamp) -> Step {
        let duration_secs = self.config.lease_duration.as_secs().max(1) as i32;
        let Some(lease) = read else {
            return Step::Write {
                spec: Record {
                    holder: self.identity.clone(),
                    duration_secs,
                    acquire: Some(wall),
                    renew: Some(wall),
                    transitions: 0,
                }
                .spec(),
                create: true,
            };
        };
        let record = Record::of(lease);
        if self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record)
        {
            self.observed = Some((record.clone(), now));
        }
        let seen_at = self.observed.as_ref().map_or(now, |(_, at)| *at);
        let held_by_other = !record.holder.is_empty() && record.holder != self.identity;
        if held_by_other && seen_at + self.config.lease_duration > now {
            return Step::Follow {
                holder: record.holder,
            };
        }
        let next = if record.holder == self.identity {
            Record {
                duration_secs,
                renew: Some(wall),
                ..record
            }
        } else {
            Record {
                holder: self.identity.clone(),
                duration_secs,
                acquire: Some(wall),
                renew: Some(wall),
                transitions: record.transitions + 1,
            }
        };
        Step::Write {
            spec: next.spec(),
            create: false,
        }
    }

    /// The write of `spec` succeeded at `now`: that record is the one observed.
    pub fn wrote(&mut self, spec: &LeaseSpec, now: Instant) {
        let lease = Lease {
            spec: Some(spec.clone()),
            ..Lease::default()
        };
        self.observed = Some((Record::of(&lease), now));
    }
}

/// `<hostname>_<random>`, as client-go components name themselves in the Lease.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "ballast".to_string());
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// One attempt: read the Lease, decide, write. True if this candidate holds the lease after it.
async fn try_acquire_or_renew(leases: &Api<Lease>, name: &str, elector: &mut Elector) -> bool {
    let read = match leases.get_opt(name).await {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(%e, lease = name, "cannot read the lease");
            return false;
        }
    };
    let wall = Timestamp::now();
    match elector.step(read.as_ref(), Instant::now(), wall) {
        Step::Follow { .. } => false,
        Step::Write { spec, create } => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    resource_version: read.and_then(|l| l.metadata.resource_version),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            let written = if create {
                leases.create(&PostParams::default(), &lease).await
            } else {
                leases.replace(name, &PostParams::default(), &lease).await
            };
            match written {
                Ok(_) => {
                    elector.wrote(&spec, Instant::now());
                    true
                }
                Err(e) => {
                    tracing::debug!(%e, lease = name, "lost the race for the lease");
                    false
                }
            }
        }
    }
}

/// Campaigns for `kube-system/<name>` and runs `lead` while holding it; when the lease cannot
/// be renewed within the renew deadline, `lead`'s task is stopped and the candidate campaigns
/// again (kube's components exit instead; one process here runs several of them). `leading`
/// tells the rest of the process (its `/metrics`' `leader_election_master_status`) whether it
/// leads.
pub async fn run<F, Fut>(
    client: kube::Client,
    name: &str,
    config: ElectionConfig,
    leading: watch::Sender<bool>,
    lead: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let mut elector = Elector::new(identity(), config);
    loop {
        // Candidate: try every retry period until the lease is ours.
        while !try_acquire_or_renew(&leases, name, &mut elector).await {
            tokio::time::sleep(config.retry_period).await;
        }
        tracing::info!(lease = name, identity = elector.identity(), "leading");
        let _ = leading.send(true);
        let work = tokio::spawn(lead());
        // Leader: renew every retry period; give up when renewals fail for the renew deadline.
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(config.retry_period).await;
            if work.is_finished() {
                break;
            }
            let attempt = tokio::time::timeout(
                config.renew_deadline,
                try_acquire_or_renew(&leases, name, &mut elector),
            );
            if attempt.await.unwrap_or(false) {
                renewed = Instant::now();
            } else if renewed.elapsed() >= config.renew_deadline {
                break;
            }
        }
        work.abort();
        let _ = leading.send(false);
        tracing::warn!(lease = name, "leadership lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(spec: LeaseSpec) -> Lease {
        Lease {
            spec: Some(spec),
            ..Lease::default()
        }
    }

    fn wall(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn spec_of(step: Step) -> LeaseSpec {
        match step {
            Step::Write { spec, .. } => spec,
            Step::Follow { holder } => panic!("follows {holder}"),
        }
    }

    #[test]
    fn the_first_candidate_creates_the_lease() {
        let mut a = Elector::new("a", ElectionConfig::default());
        let step = a.step(None, Instant::now(), wall(0));
        let Step::Write { spec, create } = step else {
            panic!("{step:?}")
        };
        assert!(create);
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, spec.renew_time);
    }

    #[test]
    fn the_holder_renews_keeping_its_acquire_time() {
        let t0 = Instant::now();
        let mut a = Elector::new("a", ElectionConfig::default());
        let first = spec_of(a.step(None, t0, wall(0)));
        a.wrote(&first, t0);
        let renewed = spec_of(a.step(Some(&lease(first.clone())), t0, wall(2)));
        assert_eq!(renewed.acquire_time, first.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(wall(2))));
        assert_eq!(renewed.lease_transitions, Some(0));
    }

    #[test]
    fn another_candidate_follows_until_the_record_is_unchanged_for_a_lease_duration() {
        let t0 = Instant::now();
        let held = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(wall(0))),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        };
        let mut b = Elector::new("b", ElectionConfig::default());
        let follow = Step::Follow { holder: "a".into() };
        assert_eq!(b.step(Some(&lease(held.clone())), t0, wall(0)), follow);
        let later = t0 + Duration::from_secs(14);
        assert_eq!(b.step(Some(&lease(held.clone())), later, wall(14)), follow);
        // Renewed: the wait starts again from when b saw the change.
        let renewed = LeaseSpec {
            renew_time: Some(MicroTime(wall(10))),
            ..held.clone()
        };
        assert_eq!(
            b.step(Some(&lease(renewed.clone())), later, wall(14)),
            follow
        );
        let expired = later + Duration::from_secs(15);
        let taken = spec_of(b.step(Some(&lease(renewed)), expired, wall(29)));
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(wall(29))));
    }

    #[test]
    fn expiry_ignores_the_holders_timestamps() {
        // The holder's clock runs an hour behind: its renewTime looks stale, but the record
        // keeps changing, so the others follow.
        let t0 = Instant::now();
        let mut b = Elector::new("b", ElectionConfig::default());
        for i in 0..10 {
            let spec = LeaseSpec {
                holder_identity: Some("a".into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(wall(-3600 + i * 2))),
                ..LeaseSpec::default()
            };
            let now = t0 + Duration::from_secs(i as u64 * 10);
            assert!(matches!(
                b.step(Some(&lease(spec)), now, wall(i * 10)),
                Step::Follow { .. }
            ));
        }
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            ..LeaseSpec::default()
        };
        let mut b = Elector::new("b", ElectionConfig::default());
        let taken = spec_of(b.step(Some(&lease(released)), Instant::now(), wall(0)));
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    }
}
