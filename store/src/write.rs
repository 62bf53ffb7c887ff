//! The write path: one `Exec` applies a batch of write requests under the store's write lock,
//! building one atomic backend batch (data, revision counter and the caller's applied position
//! together) and the events to publish once it is durable.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::auth::{AuthRequest, AuthState, TokenEffect};
use crate::backend::{Backend, Batch, Space};
use crate::encoding::{encode_alarms, Alarms, META_ALARMS};
use crate::encoding::{
    kv_key, lease_attach_key, lease_key, rev_key, rev_value, Record, META_APPLIED, META_AUTH,
    META_COMPACT, META_LEASE_SEQ, META_REV,
};
use crate::error::{Result, StoreError};
use crate::lease::MAX_LEASE_TTL;
use crate::range::{evaluate, get_version, read_revision, scan, KeyRange, Overlay};
use crate::store::Inner;
use crate::txn::{check_delete, check_put, check_txn, compare_all};
use crate::types::{
    DeleteRangeRequest, DeleteRangeResponse, Event, EventType, KeyValue, LeaseId, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};

/// A request that changes the store (or may: a txn's branch decides).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WriteRequest {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    /// Compact history below this revision.
    Compact(i64),
    /// Grant a lease; id 0 lets the store choose one.
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
    },
    LeaseRevoke(LeaseId),
    /// A change to users, roles, permissions or whether auth is on, or a token handed out.
    Auth(AuthRequest),
    /// `req`, if the auth state is still at `auth_revision`, the one its permissions were checked
    /// against; else [`StoreError::AuthOldRevision`] and nothing is done.
    Checked {
        auth_revision: u64,
        req: Box<WriteRequest>,
    },
    /// Raises (or clears) alarm `alarm` (etcd's `AlarmType` number) for member `member`.
    Alarm {
        activate: bool,
        member: u64,
        alarm: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum WriteResponse {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact {
        revision: i64,
    },
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
        revision: i64,
    },
    LeaseRevoke {
        revision: i64,
    },
    /// An auth request's answer; auth changes leave the revision as it was.
    Auth {
        revision: i64,
    },
    /// Whether the alarm set changed (raising a raised alarm, or clearing an absent one, does not).
    Alarm {
        changed: bool,
        revision: i64,
    },
}

/// The branch each (nested) txn takes, decided before anything runs, as etcd does.
#[derive(Debug)]
struct Path {
    succeeded: bool,
    nested: Vec<Path>,
}

pub(crate) struct Exec<'a, B: Backend> {
    inner: &'a Inner<B>,
    /// The revision before the request being executed.
    base: i64,
    /// Changes made by the request being executed (its sub-revision counter).
    sub: u32,
    pub(crate) overlay: Overlay,
    pub batch: Batch,
    events: Vec<Event>,
    /// Committed-later revisions with their events, in order.
    pub published: Vec<(i64, Vec<Event>)>,
    pub compact_to: Option<i64>,
    lease_seq: i64,
    lease_seq_dirty: bool,
    /// The auth state as changed by this batch (None: unchanged).
    pub auth: Option<AuthState>,
    /// What this batch did to tokens, to take effect once it is committed.
    pub(crate) token_effects: Vec<TokenEffect>,
    /// The alarms as changed by this batch (None: unchanged).
    pub alarms: Option<Alarms>,
}

impl<'a, B: Backend> Exec<'a, B> {
    pub fn new(inner: &'a Inner<B>, base: i64, lease_seq: i64) -> Self {
        Self {
            inner,
            base,
            sub: 0,
            overlay: Overlay::new(),
            batch: Batch::default(),
            events: Vec::new(),
            published: Vec::new(),
            compact_to: None,
            lease_seq,
            lease_seq_dirty: false,
            auth: None,
            token_effects: Vec::new(),
            alarms: None,
        }
    }

    pub fn revision(&self) -> i64 {
        self.base
    }

    pub fn lease_seq(&self) -> i64 {
        self.lease_seq
    }

    /// The revision reads see: the request's own changes are visible to its later operations.
    fn view_rev(&self) -> i64 {
        self.base + i64::from(self.sub > 0)
    }

    fn change_rev(&self) -> i64 {
        self.base + 1
    }

    fn compacted(&self) -> i64 {
        self.compact_to.unwrap_or_else(|| self.inner.compact_rev())
    }

    /// Runs one request; on error nothing of it is kept.
    pub fn apply(&mut self, req: &WriteRequest) -> Result<WriteResponse> {
        debug_assert_eq!(self.sub, 0);
        let resp = self.run_request(req)?;
        self.end_request();
        Ok(resp)
    }

    fn run_request(&mut self, req: &WriteRequest) -> Result<WriteResponse> {
        Ok(match req {
            WriteRequest::Put(p) => {
                check_put(p)?;
                self.check_put_state(p, false)?;
                WriteResponse::Put(self.put(p)?)
            }
            WriteRequest::DeleteRange(d) => {
                check_delete(d)?;
                WriteResponse::DeleteRange(self.delete_range(d)?)
            }
            WriteRequest::Txn(t) => WriteResponse::Txn(self.txn(t)?),
            WriteRequest::Compact(rev) => WriteResponse::Compact {
                revision: self.compact(*rev)?,
            },
            WriteRequest::LeaseGrant { id, ttl } => {
                let (id, ttl) = self.lease_grant(*id, *ttl)?;
                WriteResponse::LeaseGrant {
                    id,
                    ttl,
                    revision: self.base,
                }
            }
            WriteRequest::LeaseRevoke(id) => {
                self.lease_revoke(*id)?;
                WriteResponse::LeaseRevoke {
                    revision: self.view_rev(),
                }
            }
            WriteRequest::Auth(a) => {
                let mut next = self.auth_state();
                let effect = next.apply(a)?;
                // Every change bumps the revision; a grant repeated or a token handed out does not.
                if next.revision != self.auth_revision() {
                    self.auth = Some(next);
                }
                self.token_effects.push(effect);
                WriteResponse::Auth {
                    revision: self.base,
                }
            }
            WriteRequest::Alarm {
                activate,
                member,
                alarm,
            } => {
                let mut alarms = self
                    .alarms
                    .clone()
                    .unwrap_or_else(|| Alarms::clone(&self.inner.alarms.read()));
                let changed = if *activate {
                    alarms.insert((*member, *alarm))
                } else {
                    alarms.remove(&(*member, *alarm))
                };
                if changed {
                    self.alarms = Some(alarms);
                }
                WriteResponse::Alarm {
                    changed,
                    revision: self.base,
                }
            }
            WriteRequest::Checked { auth_revision, req } => {
                if *auth_revision != self.auth_revision() {
                    return Err(StoreError::AuthOldRevision);
                }
                self.run_request(req)?
            }
        })
    }

    /// The auth state as of this point of the batch.
    fn auth_state(&self) -> AuthState {
        self.auth
            .clone()
            .unwrap_or_else(|| AuthState::clone(&self.inner.auth.read()))
    }

    fn auth_revision(&self) -> u64 {
        self.auth
            .as_ref()
            .map_or_else(|| self.inner.auth.read().revision, |a| a.revision)
    }

    fn end_request(&mut self) {
        if self.sub > 0 {
            self.base += 1;
            self.sub = 0;
            self.published
                .push((self.base, std::mem::take(&mut self.events)));
        }
    }

    /// Adds the counters to the batch. Returns false when there is nothing to write.
    pub fn finish(&mut self, applied: Option<&[u8]>) -> bool {
        if let Some(pos) = applied {
            self.batch
                .put(Space::Meta, META_APPLIED.to_vec(), pos.to_vec());
        }
        if let Some(auth) = &self.auth {
            self.batch
                .put(Space::Meta, META_AUTH.to_vec(), auth.encode());
        }
        if let Some(alarms) = &self.alarms {
            self.batch
                .put(Space::Meta, META_ALARMS.to_vec(), encode_alarms(alarms));
        }
        if self.batch.is_empty() {
            return false;
        }
        self.batch.put(
            Space::Meta,
            META_REV.to_vec(),
            self.base.to_be_bytes().to_vec(),
        );
        if self.lease_seq_dirty {
            self.batch.put(
                Space::Meta,
                META_LEASE_SEQ.to_vec(),
                self.lease_seq.to_be_bytes().to_vec(),
            );
        }
        true
    }

    /// The latest version of a key, this batch's changes included.
    fn latest(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        if let Some(versions) = self.overlay.get(key) {
            return Ok(versions.last().and_then(|(_, kv)| kv.clone()));
        }
        self.committed(key, i64::MAX)
    }

    /// The key as of the revision before this request's (what etcd's watch events carry as
    /// `prev_kv`): earlier requests of the batch count, this request's own changes do not.
    fn before_request(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        if let Some(versions) = self.overlay.get(key) {
            if let Some((_, kv)) = versions.iter().rev().find(|(rev, _)| *rev <= self.base) {
                return Ok(kv.clone());
            }
        }
        self.committed(key, self.base)
    }

    /// The newest committed version of a key at or below `rev` (this batch's changes excluded):
    /// from `latest` when it knows it, else from the backend.
    fn committed(&self, key: &[u8], rev: i64) -> Result<Option<KeyValue>> {
        match self.inner.latest.at(key, rev) {
            Some(newest) => Ok(newest),
            None => Ok(get_version(&self.inner.backend, key, rev)?),
        }
    }

    /// The checks a put needs the store for. etcd's order differs: a plain put looks up its lease
    /// first, a put in a txn its key first (its `Put` vs its `checkPut`; the differential test
    /// against etcd 3.4 pins both).
    fn check_put_state(&self, p: &PutRequest, in_txn: bool) -> Result<()> {
        let lease_ok = || p.lease == 0 || self.inner.lessor.lock().contains(p.lease);
        if !in_txn && !lease_ok() {
            return Err(StoreError::LeaseNotFound);
        }
        if (p.ignore_value || p.ignore_lease) && self.latest(&p.key)?.is_none() {
            return Err(StoreError::KeyNotFound);
        }
        if in_txn && !lease_ok() {
            return Err(StoreError::LeaseNotFound);
        }
        Ok(())
    }

    fn put(&mut self, p: &PutRequest) -> Result<PutResponse> {
        let prev = self.latest(&p.key)?;
        debug_assert!(
            !(p.ignore_value || p.ignore_lease) || prev.is_some(),
            "check_path guarantees the key"
        );
        let rev = self.change_rev();
        let lease = if p.ignore_lease {
            prev.as_ref().map_or(0, |kv| kv.lease)
        } else {
            p.lease
        };
        let value = if p.ignore_value {
            prev.as_ref().map(|kv| kv.value.clone()).unwrap_or_default()
        } else {
            p.value.clone()
        };
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |kv| kv.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |kv| kv.version + 1),
            value,
            lease,
        };
        let record = Record::Put {
            create_revision: kv.create_revision,
            version: kv.version,
            lease,
            value: kv.value.clone(),
        };
        self.batch
            .put(Space::Kv, kv_key(&kv.key, rev, self.sub), record.encode());
        self.batch.put(
            Space::Rev,
            rev_key(rev, self.sub),
            rev_value(false, &kv.key),
        );
        self.sub += 1;
        let old_lease = prev.as_ref().map_or(0, |kv| kv.lease);
        if old_lease != lease {
            if old_lease != 0 {
                self.detach(old_lease, &kv.key);
            }
            if lease != 0 {
                self.batch
                    .put(Space::Lease, lease_attach_key(lease, &kv.key), Vec::new());
                self.inner.lessor.lock().attach(lease, kv.key.clone());
            }
        }
        self.overlay
            .entry(kv.key.clone())
            .or_default()
            .push((rev, Some(kv.clone())));
        // etcd gives a creation no prev_kv, even when the key existed before this revision.
        let event_prev = if kv.version == 1 {
            None
        } else if self.sub > 1 {
            self.before_request(&kv.key)?
        } else {
            prev.clone()
        };
        self.events.push(Event {
            kind: EventType::Put,
            kv,
            prev_kv: event_prev,
        });
        Ok(PutResponse {
            revision: rev,
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn detach(&mut self, lease: LeaseId, key: &[u8]) {
        self.batch
            .delete(Space::Lease, lease_attach_key(lease, key));
        self.inner.lessor.lock().detach(lease, key);
    }

    fn delete_range(&mut self, d: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        let range = KeyRange::new(&d.key, &d.range_end);
        let victims: Vec<KeyValue> = scan(
            &self.inner.backend,
            &self.inner.latest,
            range,
            self.view_rev(),
            Some(&self.overlay),
        )
        .collect::<Result<_, _>>()?;
        let rev = self.change_rev();
        let first_change = self.sub == 0;
        for prev in &victims {
            self.batch.put(
                Space::Kv,
                kv_key(&prev.key, rev, self.sub),
                Record::Tombstone.encode(),
            );
            self.batch.put(
                Space::Rev,
                rev_key(rev, self.sub),
                rev_value(true, &prev.key),
            );
            self.sub += 1;
            if prev.lease != 0 {
                self.detach(prev.lease, &prev.key);
            }
            self.overlay
                .entry(prev.key.clone())
                .or_default()
                .push((rev, None));
            let kv = KeyValue {
                key: prev.key.clone(),
                mod_revision: rev,
                ..KeyValue::default()
            };
            let event_prev = if first_change {
                Some(prev.clone())
            } else {
                self.before_request(&prev.key)?
            };
            self.events.push(Event {
                kind: EventType::Delete,
                kv,
                prev_kv: event_prev,
            });
        }
        Ok(DeleteRangeResponse {
            revision: self.view_rev(),
            deleted: victims.len() as i64,
            prev_kvs: if d.prev_kv { victims } else { Vec::new() },
        })
    }

    fn range(&self, r: &RangeRequest) -> Result<RangeResponse> {
        let rev = self.check_read_rev(r.revision)?;
        // As etcd, the response carries the transaction's revision, not the one read at.
        let resp = evaluate(
            &self.inner.backend,
            &self.inner.latest,
            r,
            rev,
            Some(&self.overlay),
        )?;
        Ok(RangeResponse {
            revision: self.view_rev(),
            ..resp
        })
    }

    fn check_read_rev(&self, requested: i64) -> Result<i64> {
        read_revision(requested, self.view_rev(), self.compacted())
    }

    pub fn txn(&mut self, t: &TxnRequest) -> Result<TxnResponse> {
        check_txn(t, self.inner.opts.max_txn_ops)?;
        let path = self.decide(t)?;
        self.check_path(t, &path)?;
        let responses = self.run(t, &path)?;
        Ok(TxnResponse {
            revision: self.view_rev(),
            succeeded: path.succeeded,
            responses,
        })
    }

    /// Evaluates every compare the txn will meet, nested ones included, against the state before it.
    fn decide(&self, t: &TxnRequest) -> Result<Path> {
        let rev = self.view_rev();
        let mut succeeded = true;
        for c in &t.compare {
            let kvs: Vec<KeyValue> = scan(
                &self.inner.backend,
                &self.inner.latest,
                KeyRange::new(&c.key, &c.range_end),
                rev,
                Some(&self.overlay),
            )
            .collect::<Result<_, _>>()?;
            if !compare_all(c, &kvs) {
                succeeded = false;
                break;
            }
        }
        let branch = if succeeded { &t.success } else { &t.failure };
        let mut nested = Vec::new();
        for op in branch {
            if let RequestOp::Txn(inner) = op {
                nested.push(self.decide(inner)?);
            }
        }
        Ok(Path { succeeded, nested })
    }

    /// etcd's `checkRequests`, run twice over the chosen path (depth first): every put must be
    /// able to run, then every range, before anything runs. So a failing put is reported before a
    /// failing range that comes earlier in the txn, as etcd does.
    fn check_path(&self, t: &TxnRequest, path: &Path) -> Result<()> {
        self.check_each(t, path, &mut |op| match op {
            RequestOp::Put(p) => self.check_put_state(p, true),
            _ => Ok(()),
        })?;
        self.check_each(t, path, &mut |op| match op {
            RequestOp::Range(r) => self.check_read_rev(r.revision).map(|_| ()),
            _ => Ok(()),
        })?;
        // A from-key delete is an empty interval to the duplicate-key rule, so it may run before an
        // ignore_value/ignore_lease put of a key it deletes: that put would find no key mid-txn
        // (etcd 3.4 panics there). Refuse such a txn up front, whole, after etcd's own checks.
        let mut deleted_from: Option<Bytes> = None;
        self.check_each(t, path, &mut |op| match op {
            RequestOp::Put(p)
                if (p.ignore_value || p.ignore_lease)
                    && deleted_from.as_ref().is_some_and(|from| p.key >= *from) =>
            {
                Err(StoreError::KeyNotFound)
            }
            RequestOp::DeleteRange(d) if d.range_end.as_ref() == b"\0" => {
                if deleted_from.as_ref().is_none_or(|from| d.key < *from) {
                    deleted_from = Some(d.key.clone());
                }
                Ok(())
            }
            _ => Ok(()),
        })
    }

    fn check_each(
        &self,
        t: &TxnRequest,
        path: &Path,
        f: &mut dyn FnMut(&RequestOp) -> Result<()>,
    ) -> Result<()> {
        let branch = if path.succeeded {
            &t.success
        } else {
            &t.failure
        };
        let mut nested = path.nested.iter();
        for op in branch {
            if let RequestOp::Txn(inner) = op {
                self.check_each(inner, nested.next().expect("decided"), f)?;
            }
            f(op)?;
        }
        Ok(())
    }

    fn run(&mut self, t: &TxnRequest, path: &Path) -> Result<Vec<ResponseOp>> {
        let branch = if path.succeeded {
            &t.success
        } else {
            &t.failure
        };
        let mut nested = path.nested.iter();
        let mut out = Vec::with_capacity(branch.len());
        for op in branch {
            out.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range(r)?),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(d)?),
                RequestOp::Txn(inner) => {
                    let p = nested.next().expect("decided");
                    let responses = self.run(inner, p)?;
                    ResponseOp::Txn(TxnResponse {
                        revision: self.view_rev(),
                        succeeded: p.succeeded,
                        responses,
                    })
                }
            });
        }
        Ok(out)
    }

    fn compact(&mut self, rev: i64) -> Result<i64> {
        if rev <= self.compacted() {
            return Err(StoreError::Compacted);
        }
        if rev > self.view_rev() {
            return Err(StoreError::FutureRev);
        }
        self.compact_to = Some(rev);
        self.batch.put(
            Space::Meta,
            META_COMPACT.to_vec(),
            rev.to_be_bytes().to_vec(),
        );
        Ok(self.view_rev())
    }

    fn lease_grant(&mut self, id: LeaseId, ttl: i64) -> Result<(LeaseId, i64)> {
        if ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        let ttl = ttl.max(self.inner.opts.min_lease_ttl);
        let mut lessor = self.inner.lessor.lock();
        let id = if id == 0 {
            loop {
                self.lease_seq += 1;
                self.lease_seq_dirty = true;
                if !lessor.contains(self.lease_seq) {
                    break self.lease_seq;
                }
            }
        } else {
            id
        };
        if lessor.contains(id) {
            return Err(StoreError::LeaseExists);
        }
        lessor.grant(id, ttl, self.inner.opts.clock.now());
        self.batch
            .put(Space::Lease, lease_key(id), ttl.to_be_bytes().to_vec());
        Ok((id, ttl))
    }

    fn lease_revoke(&mut self, id: LeaseId) -> Result<()> {
        let keys: BTreeSet<Bytes> = match self.inner.lessor.lock().leases.get(&id) {
            Some(lease) => lease.keys.clone(),
            None => return Err(StoreError::LeaseNotFound),
        };
        for key in keys {
            self.delete_range(&DeleteRangeRequest::key(key))?;
        }
        self.inner.lessor.lock().leases.remove(&id);
        self.batch.delete(Space::Lease, lease_key(id));
        Ok(())
    }
}
