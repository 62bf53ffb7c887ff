//! Reading keys at a revision: the cursor walk over the `Kv` keyspace, the merge with a write
//! transaction's not-yet-committed changes, and etcd's Range options (limit, count, sort, filters).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::iter::Peekable;

use bytes::Bytes;

use crate::backend::{Backend, Cursor, Space};
use crate::encoding::{decode_kv_key, kv_key_after, kv_key_at, kv_key_start, Record, KV_SUFFIX};
use crate::error::{BackendError, Result, StoreError};
use crate::latest::Latest;
use crate::types::{KeyValue, RangeRequest, RangeResponse, SortOrder, SortTarget};

/// A key interval as etcd spells it: empty `end` = the key alone, `[0]` = every key `>= start`.
#[derive(Debug, Clone, Copy)]
pub struct KeyRange<'a> {
    pub start: &'a [u8],
    pub end: &'a [u8],
}

impl<'a> KeyRange<'a> {
    pub fn new(start: &'a [u8], end: &'a [u8]) -> Self {
        Self { start, end }
    }

    pub fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    pub fn is_unbounded(&self) -> bool {
        self.end == [0]
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        if self.is_single() {
            key == self.start
        } else {
            key >= self.start && (self.is_unbounded() || key < self.end)
        }
    }

    /// True if `key` lies at or past the end of the range (so a forward walk can stop).
    fn past_end(&self, key: &[u8]) -> bool {
        if self.is_single() {
            key > self.start
        } else {
            !self.is_unbounded() && key >= self.end
        }
    }
}

/// A write transaction's changes not yet in the backend: per user key, the versions it wrote, oldest
/// first (`None` = deleted at that revision).
pub type Overlay = BTreeMap<Bytes, Vec<(i64, Option<KeyValue>)>>;

/// Builds the `KeyValue` for `user_key` at `rev` from its stored record, or `None` for a tombstone.
pub fn kv_from_record(user_key: Bytes, rev: i64, record: Record) -> Option<KeyValue> {
    match record {
        Record::Put {
            create_revision,
            version,
            lease,
            value,
        } => Some(KeyValue {
            key: user_key,
            create_revision,
            mod_revision: rev,
            version,
            value,
            lease,
        }),
        Record::Tombstone => None,
    }
}

/// Walks the live keys of a range at a revision, in key order, from the backend.
struct BackendScan<'a, B: Backend> {
    backend: &'a B,
    /// Opened by the first step that needs the backend (a single key `latest` knows needs none).
    cursor: Option<B::Cursor<'a>>,
    latest: &'a Latest,
    range: KeyRange<'a>,
    rev: i64,
    done: bool,
}

impl<B: Backend> BackendScan<'_, B> {
    fn step(&mut self) -> Result<Option<KeyValue>, BackendError> {
        let cursor = match &mut self.cursor {
            Some(cursor) => cursor,
            None if self.done => return Ok(None),
            None => {
                if self.range.is_single() {
                    if let Some(newest) = self.latest.at(self.range.start, self.rev) {
                        self.done = true;
                        return Ok(newest);
                    }
                }
                let cursor = self.cursor.insert(self.backend.cursor(Space::Kv));
                if self.range.is_single() {
                    cursor.seek(&kv_key_at(self.range.start, self.rev));
                } else {
                    cursor.seek(&kv_key_start(self.range.start));
                }
                cursor
            }
        };
        loop {
            if self.done || !cursor.valid() {
                cursor.status()?;
                return Ok(None);
            }
            let (user_key, rev) = decode_kv_key(cursor.key())?;
            // The walk starts at the range's first key, so a key outside it lies past its end.
            if !self.range.contains(&user_key) {
                self.done = true;
                continue;
            }
            if rev > self.rev {
                // Versions newer than the read revision: jump to the newest one at or below it.
                cursor.seek(&kv_key_at(&user_key, self.rev));
                continue;
            }
            let record = Record::decode(cursor.value())?;
            if self.range.is_single() {
                // One key: nothing after it is wanted, so no skipping over its older versions.
                self.done = true;
            } else {
                // Skip the older versions of this key: one step usually reaches the next key; a
                // key with retained history takes one seek.
                let prefix_len = cursor.key().len() - KV_SUFFIX;
                let prefix = cursor.key()[..prefix_len].to_vec();
                cursor.next();
                let next = if cursor.valid() { cursor.key() } else { &[] };
                if next.len() > KV_SUFFIX && next[..next.len() - KV_SUFFIX] == prefix[..] {
                    cursor.seek(&kv_key_after(&user_key));
                }
            }
            if let Some(kv) = kv_from_record(Bytes::from(user_key), rev, record) {
                return Ok(Some(kv));
            }
        }
    }
}

impl<B: Backend> Iterator for BackendScan<'_, B> {
    type Item = Result<KeyValue, BackendError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// The live keys of `range` at `rev`, in key order: the backend's (a single key's from `latest`
/// when it knows it), with `overlay` on top. An inverted range (`end <= start`) yields nothing.
pub fn scan<'a, B: Backend>(
    backend: &'a B,
    latest: &'a Latest,
    range: KeyRange<'a>,
    rev: i64,
    overlay: Option<&'a Overlay>,
) -> impl Iterator<Item = Result<KeyValue, BackendError>> + 'a {
    let base = BackendScan {
        backend,
        cursor: None,
        latest,
        range,
        rev,
        done: false,
    };
    let over: OverlayIter<'a> = match overlay {
        Some(ov) if !ov.is_empty() => Box::new(
            ov.range::<[u8], _>((
                std::ops::Bound::Included(range.start),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| !range.past_end(k))
            .filter(move |(k, _)| range.contains(k))
            .filter_map(move |(k, versions)| {
                let newest = versions.iter().rev().find(|(r, _)| *r <= rev)?;
                Some((k, newest.1.as_ref()))
            }),
        ),
        _ => Box::new(std::iter::empty()),
    };
    Merge {
        base: base.peekable(),
        over: over.peekable(),
    }
}

/// The overlay's newest version at the read revision of each key in range (`None` = deleted).
type OverlayIter<'a> = Box<dyn Iterator<Item = (&'a Bytes, Option<&'a KeyValue>)> + 'a>;

struct Merge<'a, I: Iterator<Item = Result<KeyValue, BackendError>>> {
    base: Peekable<I>,
    over: Peekable<OverlayIter<'a>>,
}

impl<I: Iterator<Item = Result<KeyValue, BackendError>>> Iterator for Merge<'_, I> {
    type Item = Result<KeyValue, BackendError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.over.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok(b)), Some((o, _))) => b.key.as_ref().cmp(o.as_ref()),
            };
            match order {
                Ordering::Less => return self.base.next(),
                Ordering::Equal | Ordering::Greater => {
                    if order == Ordering::Equal {
                        self.base.next();
                    }
                    let (_, kv) = self.over.next().expect("peeked");
                    if let Some(kv) = kv {
                        return Some(Ok(kv.clone()));
                    }
                }
            }
        }
    }
}

/// The newest version of `user_key` at or below `rev` in the backend, tombstones included as `None`.
pub fn get_version<B: Backend>(
    backend: &B,
    user_key: &[u8],
    rev: i64,
) -> Result<Option<KeyValue>, BackendError> {
    version_from(backend, user_key, &kv_key_at(user_key, rev), false)
}

/// The first version of `user_key` at or after the `Kv` position `seek` (after it, with
/// `strictly_after`), i.e. the newest one no newer than `seek`; `None` for none or a tombstone.
pub fn version_from<B: Backend>(
    backend: &B,
    user_key: &[u8],
    seek: &[u8],
    strictly_after: bool,
) -> Result<Option<KeyValue>, BackendError> {
    let mut cursor = backend.cursor(Space::Kv);
    cursor.seek(seek);
    if strictly_after && cursor.valid() && cursor.key() == seek {
        cursor.next();
    }
    if !cursor.valid() {
        cursor.status()?;
        return Ok(None);
    }
    let (key, at) = decode_kv_key(cursor.key())?;
    if key != user_key {
        return Ok(None);
    }
    Ok(kv_from_record(
        Bytes::from(key),
        at,
        Record::decode(cursor.value())?,
    ))
}

/// The revision a read asking for `requested` runs at, given the newest readable revision
/// `current` and the compaction revision: `requested <= 0` means `current`.
pub fn read_revision(requested: i64, current: i64, compacted: i64) -> Result<i64> {
    if requested > current {
        return Err(StoreError::FutureRev);
    }
    if requested > 0 && requested < compacted {
        return Err(StoreError::Compacted);
    }
    Ok(if requested <= 0 { current } else { requested })
}

/// Answers a Range request at `rev` exactly as etcd's applier does: fetch (with one extra entry to
/// learn `more`, or everything when sorting or filtering), filter by min/max revisions, sort,
/// truncate. `count` is the number of keys in the range at `rev`, before the revision filters.
pub fn evaluate<B: Backend>(
    backend: &B,
    latest: &Latest,
    req: &RangeRequest,
    rev: i64,
    overlay: Option<&Overlay>,
) -> Result<RangeResponse> {
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let mut fetch = if req.sort_order != SortOrder::None || filtered {
        0
    } else {
        req.limit.max(0) as usize
    };
    if fetch > 0 {
        fetch += 1;
    }
    let range = KeyRange::new(&req.key, &req.range_end);
    let mut kvs = Vec::new();
    let mut count: i64 = 0;
    for kv in scan(backend, latest, range, rev, overlay) {
        let kv = kv?;
        count += 1;
        if !req.count_only && (fetch == 0 || kvs.len() < fetch) {
            kvs.push(kv);
        }
    }
    let keep = |kv: &KeyValue| {
        (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
    };
    if filtered {
        kvs.retain(keep);
    }
    let mut order = req.sort_order;
    if req.sort_target != SortTarget::Key && order == SortOrder::None {
        order = SortOrder::Ascend;
    }
    if order != SortOrder::None {
        let by = |a: &KeyValue, b: &KeyValue| match req.sort_target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        };
        // Ties keep key order, so results are deterministic (etcd's sort is unstable).
        match order {
            SortOrder::Descend => kvs.sort_by(|a, b| by(b, a)),
            _ => kvs.sort_by(by),
        }
    }
    let mut more = false;
    if req.limit > 0 && kvs.len() > req.limit as usize {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Bytes::new();
        }
    }
    Ok(RangeResponse {
        revision: rev,
        kvs,
        more,
        count,
    })
}
