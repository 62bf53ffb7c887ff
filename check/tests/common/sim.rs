//! A simulated etcd that produces histories known to be valid, for property and performance
//! tests: one global revision counter, a few keys, leases (each put with one key), and clients
//! whose requests overlap in time.
//!
//! Each client issues requests one after another, each taking a random time. Every request takes
//! effect at a random instant between its call and its return, and the simulated store applies
//! them in the order of those instants, so the recorded history is linearizable by construction.
//! Some requests get an unknown outcome: a write then takes effect or not, at random, possibly
//! long after the client gave up on it.
//!
//! Besides the history it returns mutations that must be caught: for some reads, an older version
//! of the key whose successor write was acknowledged (a stale read the checker must reject), and
//! the revisions of acknowledged writes (an event a watch must not miss).

use std::collections::{BTreeMap, HashSet};

use ballast_check::{EventKind, Input, Kv, Operation, Output, Watch, WatchEvent};

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub seed: u64,
    pub ops: usize,
    pub clients: usize,
    pub keys: usize,
    /// Percent of requests whose outcome is unknown.
    pub unknown_percent: u64,
    /// Requests take 1..=latency time units.
    pub latency: u64,
    pub watches: usize,
}

#[derive(Debug)]
pub struct Generated {
    pub ops: Vec<Operation>,
    pub watches: Vec<Watch>,
    /// (index of a Get that returned a value, an older version of its key): putting the older
    /// version into the Get's answer makes the history non-linearizable.
    pub stale_reads: Vec<(usize, Kv)>,
    /// Revisions created by acknowledged writes.
    pub acknowledged: HashSet<i64>,
}

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// One version of a key: its pair (None: absent) and whether the write that made it was
/// acknowledged.
#[derive(Debug, Clone)]
struct Version {
    kv: Option<Kv>,
    by_acknowledged: bool,
}

#[derive(Debug, Default)]
struct Store {
    rev: i64,
    kvs: BTreeMap<Vec<u8>, Kv>,
    versions: BTreeMap<Vec<u8>, Vec<Version>>,
    /// Key -> its current lease and whether that lease is alive.
    leases: BTreeMap<Vec<u8>, (i64, bool)>,
    next_lease: i64,
    events: Vec<WatchEvent>,
}

impl Store {
    fn put(&mut self, key: &[u8], value: &[u8], lease: i64, acknowledged: bool) -> i64 {
        self.rev += 1;
        let kv = match self.kvs.get(key) {
            Some(old) => Kv {
                value: value.to_vec(),
                mod_revision: self.rev,
                version: old.version + 1,
                lease,
                ..old.clone()
            },
            None => Kv {
                key: key.to_vec(),
                value: value.to_vec(),
                create_revision: self.rev,
                mod_revision: self.rev,
                version: 1,
                lease,
            },
        };
        self.record(key, Some(kv), acknowledged);
        self.rev
    }

    fn delete(&mut self, key: &[u8], acknowledged: bool) -> bool {
        if !self.kvs.contains_key(key) {
            return false;
        }
        self.rev += 1;
        self.record(key, None, acknowledged);
        true
    }

    fn record(&mut self, key: &[u8], kv: Option<Kv>, acknowledged: bool) {
        let event = match &kv {
            Some(kv) => {
                self.kvs.insert(key.to_vec(), kv.clone());
                WatchEvent {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                }
            }
            None => {
                self.kvs.remove(key);
                WatchEvent {
                    kind: EventKind::Delete,
                    kv: Kv {
                        key: key.to_vec(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: self.rev,
                        version: 0,
                        lease: 0,
                    },
                }
            }
        };
        self.events.push(event);
        self.versions
            .entry(key.to_vec())
            .or_default()
            .push(Version {
                kv,
                by_acknowledged: acknowledged,
            });
    }
}

fn key_name(i: u64) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// Generates a valid history with its watches and the mutations that must be caught.
pub fn generate(config: Config) -> Generated {
    let mut rng = Rng::new(config.seed);
    // (instant the request takes effect, client, call, ret, outcome unknown)
    let mut slots: Vec<(u64, usize, u64, u64, bool)> = Vec::with_capacity(config.ops);
    let clients = config.clients.max(1);
    for client in 0..clients {
        let count = config.ops / clients + usize::from(client < config.ops % clients);
        let mut t = rng.below(config.latency + 1);
        for _ in 0..count {
            let took = 1 + rng.below(config.latency);
            let (call, ret) = (t, t + took);
            let unknown = rng.percent(config.unknown_percent);
            // A request whose answer was lost may still take effect well after the client gave
            // up on it.
            let window = if unknown { 10 * took } else { took };
            slots.push((call + rng.below(window + 1), client, call, ret, unknown));
            t = ret + 1 + rng.below(config.latency / 2 + 1);
        }
    }
    slots.sort_unstable();

    let mut store = Store::default();
    let mut out = Generated {
        ops: Vec::with_capacity(slots.len()),
        watches: Vec::new(),
        stale_reads: Vec::new(),
        acknowledged: HashSet::new(),
    };
    for (n, &(_, client, call, ret, unknown)) in slots.iter().enumerate() {
        let (input, output) = execute(&mut store, &mut rng, &config, n, unknown, &mut out);
        out.ops.push(Operation {
            client,
            input,
            output,
            call: call * 1000,
            ret: ret * 1000,
        });
    }
    out.watches = watches(&store, &mut rng, &config);
    out
}

/// Runs request number `n` against the store; returns the request and its recorded answer.
fn execute(
    store: &mut Store,
    rng: &mut Rng,
    config: &Config,
    n: usize,
    unknown: bool,
    out: &mut Generated,
) -> (Input, Output) {
    let keys = config.keys.max(1) as u64;
    let key = key_name(rng.below(keys));
    let value = format!("v{n}").into_bytes();
    // A write of unknown outcome takes effect half of the time.
    let applies = !unknown || rng.percent(50);
    let answer = |output: Output| if unknown { Output::Unknown } else { output };
    let kind = rng.below(100);
    match kind {
        0..=34 => {
            let kv = store.kvs.get(&key).cloned();
            if !unknown && kv.is_some() {
                note_stale_read(store, rng, &key, n, out);
            }
            let output = Output::Get {
                kv,
                revision: store.rev,
            };
            (Input::Get { key }, answer(output))
        }
        35..=42 => {
            let (start, end) = match rng.below(3) {
                0 => (b"k".to_vec(), b"l".to_vec()),
                1 => (key.clone(), Vec::new()),
                _ => (key.clone(), key_name(rng.below(keys + 1))),
            };
            let range = |k: &Vec<u8>| match end.as_slice() {
                [] => *k == start,
                end => k.as_slice() >= start.as_slice() && k.as_slice() < end,
            };
            let kvs = store
                .kvs
                .values()
                .filter(|kv| range(&kv.key))
                .cloned()
                .collect();
            let output = Output::Range {
                kvs,
                revision: store.rev,
            };
            (Input::Range { start, end }, answer(output))
        }
        43..=68 => {
            let lease = match store.leases.get(&key) {
                Some(&(lease, _)) if rng.percent(30) => lease,
                _ => 0,
            };
            let alive = lease == 0 || store.leases.get(&key).is_some_and(|&(_, alive)| alive);
            let input = Input::Put {
                key: key.clone(),
                value: value.clone(),
                lease,
            };
            if !alive {
                return (input, Output::Rejected);
            }
            if !applies {
                return (input, Output::Unknown);
            }
            let revision = store.put(&key, &value, lease, !unknown);
            if !unknown {
                out.acknowledged.insert(revision);
            }
            (input, answer(Output::Put { revision }))
        }
        69..=79 => {
            let current = store.kvs.get(&key).map_or(0, |kv| kv.mod_revision);
            let expected = if rng.percent(60) {
                current
            } else {
                rng.below(store.rev as u64 + 1) as i64
            };
            let input = Input::Cas {
                key: key.clone(),
                expected_mod_revision: expected,
                value: value.clone(),
            };
            if !applies {
                return (input, Output::Unknown);
            }
            let output = if expected == current {
                let revision = store.put(&key, &value, 0, !unknown);
                if !unknown {
                    out.acknowledged.insert(revision);
                }
                Output::Cas {
                    succeeded: true,
                    kv: None,
                    revision,
                }
            } else {
                Output::Cas {
                    succeeded: false,
                    kv: store.kvs.get(&key).cloned(),
                    revision: store.rev,
                }
            };
            (input, answer(output))
        }
        80..=88 => {
            let input = Input::Delete { key: key.clone() };
            if !applies {
                return (input, Output::Unknown);
            }
            let deleted = store.delete(&key, !unknown);
            if deleted && !unknown {
                out.acknowledged.insert(store.rev);
            }
            let output = Output::Delete {
                deleted: i64::from(deleted),
                revision: store.rev,
            };
            (input, answer(output))
        }
        89..=93 => {
            store.next_lease += 1;
            let lease = store.next_lease;
            store.leases.insert(key, (lease, applies));
            (
                Input::LeaseGrant { lease },
                answer(Output::LeaseGrant {
                    revision: store.rev,
                }),
            )
        }
        _ => {
            let Some(&(lease, true)) = store.leases.get(&key) else {
                // No live lease for this key: revoking a lease nobody holds is refused.
                return (Input::LeaseRevoke { lease: -1 }, Output::Rejected);
            };
            let input = Input::LeaseRevoke { lease };
            if !applies {
                return (input, Output::Unknown);
            }
            store.leases.insert(key.clone(), (lease, false));
            if store.kvs.get(&key).is_some_and(|kv| kv.lease == lease) {
                store.delete(&key, false);
            }
            (
                input,
                answer(Output::LeaseRevoke {
                    revision: store.rev,
                }),
            )
        }
    }
}

/// Records, for a Get about to return the key's current version, one older version whose
/// successor write was acknowledged: a read of it now would be stale beyond doubt.
fn note_stale_read(store: &Store, rng: &mut Rng, key: &[u8], n: usize, out: &mut Generated) {
    let Some(versions) = store.versions.get(key) else {
        return;
    };
    let candidates: Vec<&Kv> = versions
        .windows(2)
        .filter(|pair| pair[1].by_acknowledged)
        .filter_map(|pair| pair[0].kv.as_ref())
        .collect();
    if !candidates.is_empty() {
        let pick = candidates[rng.below(candidates.len() as u64) as usize];
        out.stale_reads.push((n, pick.clone()));
    }
}

/// Watches over random ranges, from random revisions, cut off at random points.
fn watches(store: &Store, rng: &mut Rng, config: &Config) -> Vec<Watch> {
    let keys = config.keys.max(1) as u64;
    let last = store.rev;
    (0..config.watches)
        .map(|_| {
            let key = key_name(rng.below(keys));
            let (start, end) = match rng.below(3) {
                0 => (b"k".to_vec(), b"l".to_vec()),
                1 => (key, Vec::new()),
                _ => (key, b"\0".to_vec()),
            };
            if rng.percent(5) {
                return Watch {
                    start,
                    end,
                    start_revision: 1,
                    events: Vec::new(),
                    compacted: Some(1 + rng.below(last as u64 + 1) as i64),
                };
            }
            // From a revision, or from "now" at some point (start revision 0).
            let start_revision = if rng.percent(50) {
                1 + rng.below(last as u64 + 1) as i64
            } else {
                0
            };
            let from = match start_revision {
                0 => 1 + rng.below(last as u64 + 1) as i64,
                r => r,
            };
            let until = if rng.percent(30) {
                from + rng.below(last as u64 + 1) as i64
            } else {
                i64::MAX
            };
            let contains = |k: &[u8]| match end.as_slice() {
                [] => k == start.as_slice(),
                [0] => k >= start.as_slice(),
                end => k >= start.as_slice() && k < end,
            };
            let events = store
                .events
                .iter()
                .filter(|e| (from..=until).contains(&e.kv.mod_revision) && contains(&e.kv.key))
                .cloned()
                .collect();
            Watch {
                start,
                end,
                start_revision,
                events,
                compacted: None,
            }
        })
        .collect()
}
