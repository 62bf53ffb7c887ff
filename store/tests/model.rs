//! Model test: random operation sequences (puts, deletes, txns, compactions, historical ranges, lease
//! grants, revokes and expiry, reopening) run against the store and against a plain `BTreeMap`
//! model; every response, error, watch event and the physical result of compaction must agree.
//! The same suite runs on both backends. `MODEL_SEQUENCES` scales the run (CI uses the default).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use ballast_store::backend::{Backend, Cursor, Space};
use ballast_store::encoding::{decode_kv_key, decode_rev_key};
use ballast_store::*;
use bytes::Bytes;
use common::{Harness, Open};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Res<T> = std::result::Result<T, String>;

#[derive(Debug, Clone)]
struct ModelLease {
    ttl: i64,
    deadline: u64,
    keys: BTreeSet<Bytes>,
}

/// The reference: every version of every key, kept forever, and the rules written out plainly.
#[derive(Debug, Clone, Default)]
struct Model {
    rev: i64,
    compact: i64,
    keys: BTreeMap<Bytes, Vec<(i64, Option<KeyValue>)>>,
    leases: BTreeMap<i64, ModelLease>,
    lease_seq: i64,
    now: u64,
    /// Every revision's events, with exact prev_kv.
    log: Vec<(i64, Vec<Event>)>,
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        key == start
    } else if end == [0] {
        key >= start
    } else {
        key >= start && key < end
    }
}

/// The state a single request works on: its own writes are visible to its later operations.
struct Tx<'m> {
    m: &'m mut Model,
    rev: i64,
    changed: bool,
    events: Vec<Event>,
}

impl Tx<'_> {
    fn view(&self) -> i64 {
        self.m.rev + i64::from(self.changed)
    }

    fn get_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        self.m
            .keys
            .get(key)?
            .iter()
            .rev()
            .find(|(r, _)| *r <= rev)?
            .1
            .clone()
    }

    fn all_at(&self, start: &[u8], end: &[u8], rev: i64) -> Vec<KeyValue> {
        self.m
            .keys
            .keys()
            .filter(|k| in_range(k, start, end))
            .filter_map(|k| self.get_at(k, rev))
            .collect()
    }

    fn read_rev(&self, requested: i64) -> Res<i64> {
        if requested > self.view() {
            return Err("etcdserver: mvcc: required revision is a future revision".into());
        }
        if requested > 0 && requested < self.m.compact {
            return Err("etcdserver: mvcc: required revision has been compacted".into());
        }
        Ok(if requested <= 0 {
            self.view()
        } else {
            requested
        })
    }

    fn range(&self, r: &RangeRequest) -> Res<RangeResponse> {
        let rev = self.read_rev(r.revision)?;
        let all = self.all_at(&r.key, &r.range_end, rev);
        let count = all.len() as i64;
        let mut kvs: Vec<KeyValue> = all
            .into_iter()
            .filter(|kv| r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
            .filter(|kv| r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
            .filter(|kv| r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
            .filter(|kv| r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
            .collect();
        let field = |kv: &KeyValue| -> (i64, Bytes) {
            match r.sort_target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, Bytes::new()),
                SortTarget::Create => (kv.create_revision, Bytes::new()),
                SortTarget::Mod => (kv.mod_revision, Bytes::new()),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        // etcd decides how much to fetch from the requested order, before it defaults a non-key sort
        // target to ascending: with order NONE it sorts only the first limit+1 keys.
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        if r.sort_order == SortOrder::None && !filtered && r.limit > 0 {
            kvs.truncate(r.limit as usize + 1);
        }
        let descending = r.sort_order == SortOrder::Descend;
        let sorted = r.sort_order != SortOrder::None || r.sort_target != SortTarget::Key;
        if sorted {
            kvs.sort_by(|a, b| {
                if descending {
                    field(b).cmp(&field(a))
                } else {
                    field(a).cmp(&field(b))
                }
            });
        }
        let more = r.limit > 0 && kvs.len() as i64 > r.limit;
        if r.limit > 0 {
            kvs.truncate(r.limit as usize);
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = Bytes::new());
        }
        if r.count_only {
            return Ok(RangeResponse {
                revision: self.view(),
                kvs: vec![],
                more: false,
                count,
            });
        }
        Ok(RangeResponse {
            revision: self.view(),
            kvs,
            more,
            count,
        })
    }

    fn check_put(&self, p: &PutRequest) -> Res<()> {
        if p.key.is_empty() {
            return Err("etcdserver: key is not provided".into());
        }
        if p.ignore_value && !p.value.is_empty() {
            return Err("etcdserver: value is provided".into());
        }
        if p.ignore_lease && p.lease != 0 {
            return Err("etcdserver: lease is provided".into());
        }
        Ok(())
    }

    /// etcd's order: a plain put checks its lease first, a put inside a txn its key first.
    fn check_put_state(&self, p: &PutRequest, in_txn: bool) -> Res<()> {
        let lease_missing = p.lease != 0 && !self.m.leases.contains_key(&p.lease);
        if !in_txn && lease_missing {
            return Err("etcdserver: requested lease not found".into());
        }
        if (p.ignore_value || p.ignore_lease) && self.get_at(&p.key, self.view()).is_none() {
            return Err("etcdserver: key not found".into());
        }
        if lease_missing {
            return Err("etcdserver: requested lease not found".into());
        }
        Ok(())
    }

    fn write(&mut self, key: &Bytes, kv: Option<KeyValue>) {
        self.changed = true;
        self.m
            .keys
            .entry(key.clone())
            .or_default()
            .push((self.rev, kv));
    }

    fn put(&mut self, p: &PutRequest) -> Res<PutResponse> {
        let prev = self.get_at(&p.key, self.view());
        // A from-key delete earlier in the txn may have removed the key: the txn fails whole.
        if (p.ignore_value || p.ignore_lease) && prev.is_none() {
            return Err("etcdserver: key not found".into());
        }
        let lease = if p.ignore_lease {
            prev.as_ref().map_or(0, |kv| kv.lease)
        } else {
            p.lease
        };
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(self.rev, |kv| kv.create_revision),
            mod_revision: self.rev,
            version: prev.as_ref().map_or(1, |kv| kv.version + 1),
            value: if p.ignore_value {
                prev.as_ref().unwrap().value.clone()
            } else {
                p.value.clone()
            },
            lease,
        };
        if let Some(old) = prev.as_ref().filter(|kv| kv.lease != 0) {
            self.m
                .leases
                .get_mut(&old.lease)
                .map(|l| l.keys.remove(&p.key));
        }
        if lease != 0 {
            self.m
                .leases
                .get_mut(&lease)
                .unwrap()
                .keys
                .insert(p.key.clone());
        }
        self.write(&p.key, Some(kv.clone()));
        // etcd: the key as of the previous revision, and nothing for a creation.
        let event_prev = if kv.version == 1 {
            None
        } else {
            self.get_at(&p.key, self.rev - 1)
        };
        self.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: event_prev,
        });
        Ok(PutResponse {
            revision: self.rev,
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let victims = self.all_at(&d.key, &d.range_end, self.view());
        for prev in &victims {
            if prev.lease != 0 {
                self.m
                    .leases
                    .get_mut(&prev.lease)
                    .map(|l| l.keys.remove(&prev.key));
            }
            let event_prev = self.get_at(&prev.key, self.rev - 1);
            self.write(&prev.key, None);
            let kv = KeyValue {
                key: prev.key.clone(),
                mod_revision: self.rev,
                ..KeyValue::default()
            };
            self.events.push(Event {
                kind: EventType::Delete,
                kv,
                prev_kv: event_prev,
            });
        }
        DeleteRangeResponse {
            revision: self.view(),
            deleted: victims.len() as i64,
            prev_kvs: if d.prev_kv { victims } else { vec![] },
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.all_at(&c.key, &c.range_end, self.view());
        let one = |kv: &KeyValue| {
            let ord = match &c.target {
                CompareTarget::Version(v) => kv.version.cmp(v),
                CompareTarget::Create(v) => kv.create_revision.cmp(v),
                CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
                CompareTarget::Lease(v) => kv.lease.cmp(v),
                CompareTarget::Value(v) => kv.value.cmp(v),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if kvs.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && one(&KeyValue::default());
        }
        kvs.iter().all(one)
    }

    /// The model's own statement of the static txn rules (max ops, empty keys, duplicates).
    fn check_txn(&self, t: &TxnRequest) -> Res<()> {
        fn ops_ok(t: &TxnRequest) -> Res<()> {
            if t.compare.len().max(t.success.len()).max(t.failure.len()) > 128 {
                return Err("etcdserver: too many operations in txn request".into());
            }
            let empty = || Err("etcdserver: key is not provided".to_owned());
            if t.compare.iter().any(|c| c.key.is_empty()) {
                return empty();
            }
            for op in t.success.iter().chain(&t.failure) {
                match op {
                    RequestOp::Range(r) if r.key.is_empty() => return empty(),
                    RequestOp::DeleteRange(d) if d.key.is_empty() => return empty(),
                    RequestOp::Put(p) if p.key.is_empty() => return empty(),
                    RequestOp::Put(p) if p.ignore_value && !p.value.is_empty() => {
                        return Err("etcdserver: value is provided".into())
                    }
                    RequestOp::Put(p) if p.ignore_lease && p.lease != 0 => {
                        return Err("etcdserver: lease is provided".into())
                    }
                    RequestOp::Txn(n) => ops_ok(n)?,
                    _ => {}
                }
            }
            Ok(())
        }
        // etcd's checkIntervals, transcribed: note that it does not check a nested put against a
        // later sibling's deletes, so neither may we.
        type Dels = Vec<(Bytes, Bytes)>;
        fn intervals(ops: &[RequestOp]) -> Res<(BTreeSet<Bytes>, Dels)> {
            let dup = || Err("etcdserver: duplicate key given in txn request".to_owned());
            // etcd's interval tree: a from-key delete (end "\0") is an empty interval.
            let hit = |dels: &Dels, k: &Bytes| {
                dels.iter()
                    .any(|(s, e)| e.as_ref() != b"\0" && in_range(k, s, e))
            };
            let mut dels: Dels = ops
                .iter()
                .filter_map(|op| match op {
                    RequestOp::DeleteRange(d) => Some((d.key.clone(), d.range_end.clone())),
                    _ => None,
                })
                .collect();
            let mut puts = BTreeSet::new();
            for op in ops {
                let RequestOp::Txn(n) = op else { continue };
                let (then_puts, then_dels) = intervals(&n.success)?;
                let (else_puts, else_dels) = intervals(&n.failure)?;
                for k in &then_puts {
                    if puts.contains(k) || hit(&dels, k) {
                        return dup();
                    }
                    puts.insert(k.clone());
                }
                for k in &else_puts {
                    if (puts.contains(k) && !then_puts.contains(k)) || hit(&dels, k) {
                        return dup();
                    }
                    puts.insert(k.clone());
                }
                dels.extend(then_dels);
                dels.extend(else_dels);
            }
            for op in ops {
                if let RequestOp::Put(p) = op {
                    if !puts.insert(p.key.clone()) || hit(&dels, &p.key) {
                        return dup();
                    }
                }
            }
            Ok((puts, dels))
        }
        ops_ok(t)?;
        intervals(&t.success)?;
        intervals(&t.failure)?;
        Ok(())
    }

    fn txn(&mut self, t: &TxnRequest) -> Res<TxnResponse> {
        self.check_txn(t)?;
        // Decide every branch up front, then check the chosen path, then run it.
        fn decide(tx: &Tx, t: &TxnRequest) -> Vec<bool> {
            let ok = t.compare.iter().all(|c| tx.compare(c));
            let mut path = vec![ok];
            for op in if ok { &t.success } else { &t.failure } {
                if let RequestOp::Txn(n) = op {
                    path.extend(decide(tx, n));
                }
            }
            path
        }
        // etcd checks every put on the path first, then every range (depth first).
        fn check(
            tx: &Tx,
            t: &TxnRequest,
            path: &mut std::slice::Iter<bool>,
            puts: bool,
        ) -> Res<()> {
            let ok = *path.next().unwrap();
            for op in if ok { &t.success } else { &t.failure } {
                match op {
                    RequestOp::Put(p) if puts => tx.check_put_state(p, true)?,
                    RequestOp::Range(r) if !puts => {
                        tx.read_rev(r.revision)?;
                    }
                    RequestOp::Txn(n) => check(tx, n, path, puts)?,
                    _ => {}
                }
            }
            Ok(())
        }
        fn run(tx: &mut Tx, t: &TxnRequest, path: &mut std::slice::Iter<bool>) -> Res<TxnResponse> {
            let ok = *path.next().unwrap();
            let mut responses = vec![];
            for op in if ok { &t.success } else { &t.failure } {
                responses.push(match op {
                    RequestOp::Range(r) => ResponseOp::Range(tx.range(r)?),
                    RequestOp::Put(p) => ResponseOp::Put(tx.put(p)?),
                    RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(tx.delete(d)),
                    RequestOp::Txn(n) => ResponseOp::Txn(run(tx, n, path)?),
                });
            }
            Ok(TxnResponse {
                revision: tx.view(),
                succeeded: ok,
                responses,
            })
        }
        let path = decide(self, t);
        check(self, t, &mut path.iter(), true)?;
        check(self, t, &mut path.iter(), false)?;
        run(self, t, &mut path.iter())
    }
}

impl Model {
    fn new() -> Self {
        // compact -1: never compacted (etcd's initial compactMainRev), so Compact(0) works once.
        Model {
            rev: 1,
            compact: -1,
            ..Model::default()
        }
    }

    /// Runs one request on a copy; keeps the copy only if it succeeded.
    fn write<T>(&mut self, f: impl FnOnce(&mut Tx) -> Res<T>) -> Res<T> {
        let mut copy = self.clone();
        let rev = copy.rev + 1;
        let mut tx = Tx {
            m: &mut copy,
            rev,
            changed: false,
            events: vec![],
        };
        let out = f(&mut tx)?;
        let (changed, events) = (tx.changed, tx.events);
        if changed {
            copy.rev = rev;
            copy.log.push((rev, events));
        }
        *self = copy;
        Ok(out)
    }

    fn read<T>(&mut self, f: impl FnOnce(&Tx) -> T) -> T {
        let rev = self.rev + 1;
        let tx = Tx {
            m: self,
            rev,
            changed: false,
            events: vec![],
        };
        f(&tx)
    }

    fn lease_revoke(&mut self, id: i64) -> Res<i64> {
        let Some(lease) = self.leases.get(&id).cloned() else {
            return Err("etcdserver: requested lease not found".into());
        };
        self.write(|tx| {
            for key in &lease.keys {
                tx.delete(&DeleteRangeRequest::key(key.clone()));
            }
            tx.m.leases.remove(&id);
            Ok(tx.view())
        })
    }
}

fn err<T>(r: Result<T>) -> Res<T> {
    r.map_err(|e| e.to_string())
}

const KEYS: &[&[u8]] = &[b"a", b"a\x00", b"ab", b"b", b"c", b"c\xff", b"d", b"\x00"];

struct Gen {
    rng: StdRng,
    values: u64,
}

impl Gen {
    fn key(&mut self) -> Bytes {
        Bytes::from_static(KEYS[self.rng.gen_range(0..KEYS.len())])
    }
    fn value(&mut self) -> Bytes {
        self.values += 1;
        if self.rng.gen_bool(0.1) {
            return Bytes::new();
        }
        Bytes::from(format!("v{}", self.values))
    }
    fn range_end(&mut self, key: &Bytes) -> Bytes {
        match self.rng.gen_range(0..5) {
            0 | 1 => Bytes::new(),
            2 => Bytes::from_static(b"\x00"),
            3 => prefix_end(key),
            _ => self.key(),
        }
    }
    fn rev(&mut self, m: &Model) -> i64 {
        match self.rng.gen_range(0..4) {
            0 => 0,
            _ => self.rng.gen_range((m.compact - 2).max(-1)..=m.rev + 1),
        }
    }
    fn lease(&mut self, m: &Model) -> i64 {
        if self.rng.gen_bool(0.7) || m.leases.is_empty() {
            return if self.rng.gen_bool(0.05) { 999_999 } else { 0 };
        }
        *m.leases
            .keys()
            .nth(self.rng.gen_range(0..m.leases.len()))
            .unwrap()
    }
    fn put(&mut self, m: &Model) -> PutRequest {
        let ignore_value = self.rng.gen_bool(0.1);
        let ignore_lease = self.rng.gen_bool(0.1);
        PutRequest {
            key: if self.rng.gen_bool(0.01) {
                Bytes::new()
            } else {
                self.key()
            },
            value: if ignore_value && self.rng.gen_bool(0.8) {
                Bytes::new()
            } else {
                self.value()
            },
            lease: if ignore_lease && self.rng.gen_bool(0.8) {
                0
            } else {
                self.lease(m)
            },
            prev_kv: self.rng.gen(),
            ignore_value,
            ignore_lease,
        }
    }
    fn delete(&mut self) -> DeleteRangeRequest {
        let key = self.key();
        DeleteRangeRequest {
            range_end: self.range_end(&key),
            key,
            prev_kv: self.rng.gen(),
        }
    }
    fn range(&mut self, m: &Model) -> RangeRequest {
        let key = self.key();
        let rev = |g: &mut Gen| {
            if g.rng.gen_bool(0.8) {
                0
            } else {
                g.rng.gen_range(1..=m.rev + 1)
            }
        };
        RangeRequest {
            range_end: self.range_end(&key),
            key,
            limit: if self.rng.gen_bool(0.3) {
                self.rng.gen_range(0..4)
            } else {
                0
            },
            revision: self.rev(m),
            sort_order: [SortOrder::None, SortOrder::Ascend, SortOrder::Descend]
                [self.rng.gen_range(0..3)],
            sort_target: [
                SortTarget::Key,
                SortTarget::Version,
                SortTarget::Create,
                SortTarget::Mod,
                SortTarget::Value,
            ][self.rng.gen_range(0..5)],
            serializable: false,
            keys_only: self.rng.gen_bool(0.1),
            count_only: self.rng.gen_bool(0.1),
            min_mod_revision: if self.rng.gen_bool(0.1) { rev(self) } else { 0 },
            max_mod_revision: if self.rng.gen_bool(0.1) { rev(self) } else { 0 },
            min_create_revision: if self.rng.gen_bool(0.1) { rev(self) } else { 0 },
            max_create_revision: if self.rng.gen_bool(0.1) { rev(self) } else { 0 },
        }
    }
    fn compare(&mut self, m: &Model) -> Compare {
        let key = self.key();
        let range_end = if self.rng.gen_bool(0.2) {
            self.range_end(&key)
        } else {
            Bytes::new()
        };
        let result = [
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ][self.rng.gen_range(0..4)];
        let n = self.rng.gen_range(0..=m.rev.min(6));
        let target = match self.rng.gen_range(0..5) {
            0 => CompareTarget::Version(self.rng.gen_range(0..3)),
            1 => CompareTarget::Create(n),
            2 => CompareTarget::Mod(n),
            3 => CompareTarget::Value(self.value()),
            _ => CompareTarget::Lease(self.lease(m)),
        };
        Compare {
            key,
            range_end,
            result,
            target,
        }
    }
    fn ops(&mut self, m: &Model, depth: u32) -> Vec<RequestOp> {
        (0..self.rng.gen_range(0..4))
            .map(|_| match self.rng.gen_range(0..10) {
                0..=3 => RequestOp::Put(self.put(m)),
                4 | 5 => RequestOp::DeleteRange(self.delete()),
                6..=8 => RequestOp::Range(self.range(m)),
                _ if depth < 2 => RequestOp::Txn(self.txn(m, depth + 1)),
                _ => RequestOp::Range(self.range(m)),
            })
            .collect()
    }
    fn txn(&mut self, m: &Model, depth: u32) -> TxnRequest {
        TxnRequest {
            compare: (0..self.rng.gen_range(0..3))
                .map(|_| self.compare(m))
                .collect(),
            success: self.ops(m, depth),
            failure: self.ops(m, depth),
        }
    }
}

/// Collects what a watcher created at `from` received, to compare with the model's log.
struct LiveWatch {
    watcher: Watcher,
    from: i64,
    got: Vec<(i64, Vec<Event>)>,
}

impl LiveWatch {
    fn start<B: Backend>(store: &Store<B>) -> Self {
        let req = WatchRequest {
            key: Bytes::from_static(b"\x00"),
            range_end: Bytes::from_static(b"\x00"),
            prev_kv: true,
            ..Default::default()
        };
        LiveWatch {
            watcher: store.watch(req).unwrap(),
            from: store.revision() + 1,
            got: vec![],
        }
    }
    fn drain(&mut self) {
        while let Some(resp) = self.watcher.try_recv() {
            assert!(!resp.canceled, "live watcher canceled");
            for ev in resp.events {
                match self.got.last_mut() {
                    Some((rev, evs)) if *rev == ev.kv.mod_revision => evs.push(ev),
                    _ => self.got.push((ev.kv.mod_revision, vec![ev])),
                }
            }
        }
    }
    fn check(&mut self, m: &Model, ctx: &str) {
        self.drain();
        let want: Vec<_> = m
            .log
            .iter()
            .filter(|(r, _)| *r >= self.from)
            .cloned()
            .collect();
        assert_eq!(self.got, want, "{ctx}: live watch events differ");
    }
}

fn run_sequence<B: Open>(seed: u64, ops: usize) {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        values: 0,
    };
    // The newest-version cache as configured, tiny (a few keys: evictions all the time), and off.
    let cache = [StoreOptions::default().latest_cache_bytes, 700, 0][(seed % 3) as usize];
    let mut h: Harness<B> = B::harness(|o| o.latest_cache_bytes = cache);
    let mut m = Model::new();
    let mut live = LiveWatch::start(&h.store);
    for step in 0..ops {
        let ctx = format!("seed {seed} step {step}");
        let s = &h.store;
        match g.rng.gen_range(0..100) {
            0..=24 => {
                let p = g.put(&m);
                let want = m.write(|tx| {
                    tx.check_put(&p)?;
                    tx.check_put_state(&p, false)?;
                    tx.put(&p)
                });
                assert_eq!(err(s.put(p.clone())), want, "{ctx}: {p:?}");
            }
            25..=32 => {
                let d = g.delete();
                let want = m.write(|tx| Ok(tx.delete(&d)));
                assert_eq!(err(s.delete_range(d.clone())), want, "{ctx}: {d:?}");
            }
            33..=52 => {
                let r = g.range(&m);
                let want = m.read(|tx| tx.range(&r)).map(|resp| RangeResponse {
                    revision: m.rev,
                    ..resp
                });
                assert_eq!(err(s.range(&r)), want, "{ctx}: {r:?}");
            }
            53..=72 => {
                let t = g.txn(&m, 0);
                let want = m.write(|tx| tx.txn(&t));
                assert_eq!(err(s.txn(t.clone())), want, "{ctx}: {t:?}");
            }
            73..=76 => {
                let rev = g.rng.gen_range(m.compact - 1..=m.rev + 1);
                let want = if rev <= m.compact {
                    Err("etcdserver: mvcc: required revision has been compacted".to_owned())
                } else if rev > m.rev {
                    Err("etcdserver: mvcc: required revision is a future revision".to_owned())
                } else {
                    m.compact = rev;
                    Ok(m.rev)
                };
                assert_eq!(err(s.compact(rev)), want, "{ctx}: compact {rev}");
            }
            77..=81 => {
                let id = if g.rng.gen_bool(0.2) {
                    g.rng.gen_range(1..20)
                } else {
                    0
                };
                let ttl = [1, 5, 10, 30, MAX_LEASE_TTL + 1][g.rng.gen_range(0..5)];
                let want = if ttl > MAX_LEASE_TTL {
                    Err("etcdserver: too large lease TTL".to_owned())
                } else {
                    let id = if id != 0 {
                        id
                    } else {
                        loop {
                            m.lease_seq += 1;
                            if !m.leases.contains_key(&m.lease_seq) {
                                break m.lease_seq;
                            }
                        }
                    };
                    if m.leases.contains_key(&id) {
                        Err("etcdserver: lease already exists".to_owned())
                    } else {
                        let ttl = ttl.max(2);
                        m.leases.insert(
                            id,
                            ModelLease {
                                ttl,
                                deadline: m.now + ttl as u64 * 1000,
                                keys: BTreeSet::new(),
                            },
                        );
                        Ok((id, ttl))
                    }
                };
                assert_eq!(err(s.lease_grant(id, ttl)), want, "{ctx}: grant {id} {ttl}");
            }
            82..=84 => {
                let id = g.lease(&m);
                let want = m.lease_revoke(id);
                assert_eq!(err(s.lease_revoke(id)), want, "{ctx}: revoke {id}");
            }
            85..=87 => {
                let id = g.lease(&m);
                let want = match m.leases.get_mut(&id) {
                    Some(l) => {
                        l.deadline = m.now + l.ttl as u64 * 1000;
                        Ok(l.ttl)
                    }
                    None => Err("etcdserver: requested lease not found".to_owned()),
                };
                assert_eq!(err(s.lease_keep_alive(id)), want, "{ctx}: keepalive {id}");
                let status = s.lease_time_to_live(id, true);
                match m.leases.get(&id) {
                    Some(l) => {
                        assert_eq!(status.granted_ttl, l.ttl, "{ctx}");
                        assert_eq!(status.ttl, ((l.deadline - m.now) / 1000) as i64, "{ctx}");
                        assert_eq!(
                            status.keys,
                            l.keys.iter().cloned().collect::<Vec<_>>(),
                            "{ctx}"
                        );
                    }
                    None => assert_eq!(status.ttl, -1, "{ctx}"),
                }
            }
            88..=91 => {
                let advance = g.rng.gen_range(0..8000);
                m.now += advance;
                h.clock.advance(advance);
                let expired: Vec<i64> = m
                    .leases
                    .iter()
                    .filter(|(_, l)| l.deadline <= m.now)
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(s.expired_leases(), expired, "{ctx}: expired leases");
                for id in expired {
                    let want = m.lease_revoke(id);
                    assert_eq!(err(s.lease_revoke(id)), want, "{ctx}: expire {id}");
                }
                assert_eq!(
                    s.lease_leases(),
                    m.leases.keys().copied().collect::<Vec<_>>(),
                    "{ctx}"
                );
            }
            92..=93 => {
                live.check(&m, &ctx);
                drop(live);
                h = B::reopen(h);
                if h.dir.is_some() {
                    // Reopening restarts every lease's countdown.
                    for l in m.leases.values_mut() {
                        l.deadline = m.now + l.ttl as u64 * 1000;
                    }
                }
                assert_eq!(h.store.revision(), m.rev, "{ctx}: revision after reopen");
                assert_eq!(
                    h.store.compact_revision(),
                    m.compact,
                    "{ctx}: compaction after reopen"
                );
                live = LiveWatch::start(&h.store);
            }
            _ => {
                // A historical point read of every key at a random revision.
                let rev = g.rng.gen_range(m.compact.max(1)..=m.rev);
                for key in KEYS {
                    let r = RangeRequest {
                        revision: rev,
                        ..RangeRequest::key(Bytes::from_static(key))
                    };
                    let want = m.read(|tx| tx.range(&r)).map(|resp| RangeResponse {
                        revision: m.rev,
                        ..resp
                    });
                    assert_eq!(err(s.range(&r)), want, "{ctx}: {r:?}");
                }
            }
        }
        live.drain();
    }
    let ctx = format!("seed {seed} end");
    live.check(&m, &ctx);
    check_history_watch(&h.store, &m, &ctx);
    check_physical(&h.store, &m, &ctx);
}

/// A watch from the oldest retained revision replays exactly the model's log from there.
fn check_history_watch<B: Backend>(store: &Store<B>, m: &Model, ctx: &str) {
    store.wait_compacted(m.compact);
    let from = m.compact.max(1);
    let req = WatchRequest {
        key: Bytes::from_static(b"\x00"),
        range_end: Bytes::from_static(b"\x00"),
        start_revision: from,
        prev_kv: true,
        ..Default::default()
    };
    let mut w = store.watch(req).unwrap();
    let mut got: Vec<Event> = vec![];
    let want: Vec<Event> = m
        .log
        .iter()
        .filter(|(r, _)| *r >= from)
        .flat_map(|(r, evs)| {
            // History before the compaction point is gone, so events at it lose their prev_kv, and
            // a put that its own revision superseded (a nested txn's put, then a sibling's delete)
            // is gone from it too.
            let at_compact = *r == m.compact;
            evs.iter().enumerate().filter_map(move |(i, e)| {
                let superseded = evs[i + 1..].iter().any(|later| later.kv.key == e.kv.key);
                if at_compact && superseded && e.kind == EventType::Put {
                    return None;
                }
                let mut e = e.clone();
                if at_compact {
                    e.prev_kv = None;
                }
                Some(e)
            })
        })
        .collect();
    while got.len() < want.len() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let resp = loop {
            match w.try_recv() {
                Some(resp) => break resp,
                None => {
                    assert!(std::time::Instant::now() < deadline, "{ctx}: history watch stalled: got {} of {} events from {from}, compact {}, rev {}, {:?}, last got {:?}", got.len(), want.len(), m.compact, m.rev, store.watch_stats(), got.last());
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        };
        assert!(!resp.canceled, "{ctx}: history watch canceled");
        got.extend(resp.events);
    }
    assert_eq!(got, want, "{ctx}: history watch");
    assert!(w.try_recv().is_none(), "{ctx}: extra history events");
}

/// After compaction, the backend holds exactly the versions a read at or above it can see.
fn check_physical<B: Backend>(store: &Store<B>, m: &Model, ctx: &str) {
    let c = m.compact;
    let mut want_kv = 0;
    let mut want_rev = 0;
    for versions in m.keys.values() {
        want_kv += versions.iter().filter(|(r, _)| *r > c).count();
        want_rev += versions.iter().filter(|(r, _)| *r >= c).count();
        if let Some((_, Some(_))) = versions.iter().rev().find(|(r, _)| *r <= c) {
            want_kv += 1;
        }
    }
    let count = |space: Space, check: &dyn Fn(&[u8])| {
        let mut cur = store.backend().cursor(space);
        cur.seek(b"");
        let mut n = 0;
        while cur.valid() {
            check(cur.key());
            n += 1;
            cur.next();
        }
        n
    };
    assert_eq!(
        count(Space::Kv, &|k| {
            decode_kv_key(k).unwrap();
        }),
        want_kv,
        "{ctx}: kv versions kept"
    );
    assert_eq!(
        count(Space::Rev, &|k| assert!(decode_rev_key(k).unwrap().0 >= c)),
        want_rev,
        "{ctx}: revision log kept"
    );
}

fn sequences(default: u64) -> u64 {
    std::env::var("MODEL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn model_sequences<B: Open>() {
    let (n, ops) = if B::harness(|_| {}).dir.is_some() {
        (sequences(150), 150)
    } else {
        (sequences(1500), 150)
    };
    let base: u64 = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    for i in 0..n {
        run_sequence::<B>(base + i, ops);
    }
    println!(
        "model: {n} sequences x {ops} ops on {}, 0 divergences",
        std::any::type_name::<B>()
    );
}

both_backends!(model_sequences);
