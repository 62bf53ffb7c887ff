//! A hash of the logical key-value history (etcd's `HashKV`), for checking that members agree.
//!
//! It covers exactly the versions a read may still see at `rev`: every version above the compaction
//! revision, and for each key the newest version at or below it unless that is a deletion. Versions
//! that compaction has made unreachable but not yet removed from disk are skipped, so two members
//! agree whatever their background compaction has got to.

use crate::backend::{Backend, Cursor, Space};
use crate::encoding::{Record, KV_SUFFIX};
use crate::error::BackendError;

/// The hash of every version visible at `rev` with history compacted at `compact_rev`.
pub(crate) fn hash_kv<B: Backend>(
    backend: &B,
    rev: i64,
    compact_rev: i64,
) -> Result<u32, BackendError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut cursor = backend.cursor(Space::Kv);
    cursor.seek(b"");
    // The escaped user key of the entries being walked, and whether its newest version at or below
    // the compaction revision was already seen.
    let mut current: Vec<u8> = Vec::new();
    let mut floor_seen = false;
    while cursor.valid() {
        let key = cursor.key();
        if key.len() < KV_SUFFIX + 2 {
            return Err(BackendError::Corrupt {
                space: "kv",
                what: "malformed key",
            });
        }
        let (user, suffix) = key.split_at(key.len() - KV_SUFFIX);
        if user != current.as_slice() {
            current.clear();
            current.extend_from_slice(user);
            floor_seen = false;
        }
        let version_rev = !u64::from_be_bytes(suffix[..8].try_into().expect("8 bytes")) as i64;
        let include = if version_rev > rev {
            false
        } else if version_rev > compact_rev {
            true
        } else if floor_seen {
            false
        } else {
            floor_seen = true;
            !matches!(Record::decode(cursor.value())?, Record::Tombstone)
        };
        if include {
            hasher.update(key);
            hasher.update(cursor.value());
        }
        cursor.next();
    }
    cursor.status()?;
    Ok(hasher.finalize())
}
