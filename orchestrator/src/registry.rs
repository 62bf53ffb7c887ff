//! Kubernetes' storage conventions on the [`Storage`] seam, as kube-apiserver's etcd3 store keeps
//! them, so that tools reading the store find what they expect:
//! - an object lives at `/registry/<resource>/<namespace>/<name>` (cluster-scoped: no namespace);
//! - its `resourceVersion` is the key's mod revision (not stored in the value; set on reading);
//! - create, update and delete are each one compare-and-swap txn on the key's mod revision;
//! - a list reads at one revision, which becomes the list's `resourceVersion`, and pages with a
//!   continue token that pins that revision.

use std::sync::Arc;

use ballast_proto::{mvccpb, pb};
use bytes::Bytes;

use crate::storage::{Storage, StorageError, StorageResult, WatchStream};

/// Where every object is kept.
pub const PREFIX: &str = "/registry/";

/// The key of one object.
pub fn object_key(resource: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{PREFIX}{resource}/{ns}/{name}"),
        None => format!("{PREFIX}{resource}/{name}"),
    }
}

/// The prefix of a list: every object of `resource`, or those in one namespace. Ends in `/` so
/// that `pods` does not also list `podtemplates`.
pub fn list_prefix(resource: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{PREFIX}{resource}/{ns}/"),
        None => format!("{PREFIX}{resource}/"),
    }
}

/// The end of the range of keys that start with `prefix` (etcd's `--prefix`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A stored object: its bytes and its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
}

impl From<mvccpb::KeyValue> for Stored {
    fn from(kv: mvccpb::KeyValue) -> Self {
        Self {
            key: kv.key.to_vec(),
            value: kv.value.to_vec(),
            mod_revision: kv.mod_revision,
            create_revision: kv.create_revision,
        }
    }
}

/// How a compare-and-swap ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// Written at this revision.
    Done { revision: i64 },
    /// The compare failed; the key's current state (None: absent).
    Lost { current: Option<Stored> },
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Stored>,
    /// The revision the list was read at.
    pub revision: i64,
    /// The key to continue from, if more remain.
    pub next: Option<Vec<u8>>,
    /// How many remain after this page (kube-apiserver's `remainingItemCount`), when known.
    pub remaining: Option<i64>,
}

/// kube-apiserver's etcd3 store over any [`Storage`].
#[derive(Debug, Clone)]
pub struct Registry {
    storage: Arc<dyn Storage>,
}

fn compare_mod(key: &[u8], mod_revision: i64) -> pb::Compare {
    pb::Compare {
        result: pb::compare::CompareResult::Equal as i32,
        target: pb::compare::CompareTarget::Mod as i32,
        key: Bytes::copy_from_slice(key),
        range_end: Bytes::new(),
        target_union: Some(pb::compare::TargetUnion::ModRevision(mod_revision)),
    }
}

fn put_op(key: &[u8], value: Vec<u8>, lease: i64) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: Bytes::copy_from_slice(key),
            value: value.into(),
            lease,
            ..Default::default()
        })),
    }
}

fn get_op(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: Bytes::copy_from_slice(key),
            ..Default::default()
        })),
    }
}

fn delete_op(key: &[u8]) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestDeleteRange(
            pb::DeleteRangeRequest {
                key: Bytes::copy_from_slice(key),
                ..Default::default()
            },
        )),
    }
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The object at `key` (linearizable), and the revision it was read at.
    pub async fn get(&self, key: &str) -> StorageResult<(Option<Stored>, i64)> {
        let resp = self
            .storage
            .range(pb::RangeRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                ..Default::default()
            })
            .await?;
        let revision = resp.header.map_or(0, |h| h.revision);
        Ok((resp.kvs.into_iter().next().map(Stored::from), revision))
    }

    /// Fails with [`StorageError::Compacted`] if the history at `revision` is compacted away
    /// (one read of one key at that revision).
    pub async fn check_history(&self, revision: i64) -> StorageResult<()> {
        let read = self
            .storage
            .range(pb::RangeRequest {
                key: Bytes::from_static(PREFIX.as_bytes()),
                revision,
                keys_only: true,
                ..Default::default()
            })
            .await;
        match read {
            Ok(_) | Err(StorageError::FutureRevision) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `key` if `expected` is its mod revision (0: if it does not exist).
    pub async fn swap(
        &self,
        key: &str,
        expected: i64,
        value: Vec<u8>,
        lease: i64,
    ) -> StorageResult<Swap> {
        let key = key.as_bytes();
        self.cas(key, expected, put_op(key, value, lease)).await
    }

    /// Deletes `key` if `expected` is its mod revision.
    pub async fn delete(&self, key: &str, expected: i64) -> StorageResult<Swap> {
        let key = key.as_bytes();
        self.cas(key, expected, delete_op(key)).await
    }

    async fn cas(&self, key: &[u8], expected: i64, op: pb::RequestOp) -> StorageResult<Swap> {
        let resp = self
            .storage
            .txn(pb::TxnRequest {
                compare: vec![compare_mod(key, expected)],
                success: vec![op],
                failure: vec![get_op(key)],
            })
            .await?;
        let revision = resp.header.as_ref().map_or(0, |h| h.revision);
        if resp.succeeded {
            return Ok(Swap::Done { revision });
        }
        let current = resp
            .responses
            .into_iter()
            .find_map(|r| match r.response {
                Some(pb::response_op::Response::ResponseRange(range)) => {
                    range.kvs.into_iter().next()
                }
                _ => None,
            })
            .map(Stored::from);
        Ok(Swap::Lost { current })
    }

    /// Up to `limit` objects (0: all) under `prefix`, from `from` (a continue key) or the start,
    /// read at `revision` (0: the latest, linearizable).
    pub async fn list(
        &self,
        prefix: &str,
        from: Option<&[u8]>,
        revision: i64,
        limit: i64,
    ) -> StorageResult<Page> {
        let prefix = prefix.as_bytes();
        let resp = self
            .storage
            .range(pb::RangeRequest {
                key: Bytes::copy_from_slice(from.unwrap_or(prefix)),
                range_end: prefix_end(prefix).into(),
                revision,
                limit,
                ..Default::default()
            })
            .await?;
        // etcd's header carries the store's newest revision even for a read at an older one.
        let revision = if revision > 0 {
            revision
        } else {
            resp.header.map_or(0, |h| h.revision)
        };
        let items: Vec<Stored> = resp.kvs.into_iter().map(Stored::from).collect();
        let next = if resp.more {
            items.last().map(|last| {
                let mut key = last.key.clone();
                key.push(0);
                key
            })
        } else {
            None
        };
        let remaining = resp.more.then(|| resp.count - items.len() as i64);
        Ok(Page {
            items,
            revision,
            next,
            remaining,
        })
    }

    /// The newest revision of the store.
    pub async fn current_revision(&self) -> StorageResult<i64> {
        let resp = self
            .storage
            .range(pb::RangeRequest {
                key: Bytes::from_static(PREFIX.as_bytes()),
                range_end: prefix_end(PREFIX.as_bytes()).into(),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.header.map_or(0, |h| h.revision))
    }

    /// Every change under `prefix` after `after` (a resourceVersion; 0: from now), with each
    /// deletion's last state, and progress notifications.
    pub async fn watch(&self, prefix: &str, after: i64) -> StorageResult<WatchStream> {
        let prefix = prefix.as_bytes();
        self.storage
            .watch(pb::WatchCreateRequest {
                key: Bytes::copy_from_slice(prefix),
                range_end: prefix_end(prefix).into(),
                start_revision: if after > 0 { after + 1 } else { 0 },
                progress_notify: true,
                prev_kv: true,
                ..Default::default()
            })
            .await
    }

    /// A lease of `ttl` seconds, for objects that expire (Events).
    pub async fn lease(&self, ttl: i64) -> StorageResult<i64> {
        self.storage.grant_lease(ttl).await
    }

    /// Compacts history below `revision`.
    pub async fn compact(&self, revision: i64) -> StorageResult<()> {
        match self.storage.compact(revision).await {
            // Compacted already (by another API server sharing the store): done.
            Err(StorageError::Compacted { .. }) => Ok(()),
            other => other,
        }
    }
}
