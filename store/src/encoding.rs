//! The on-disk encoding of keys, records and the auth state. Changing anything here needs an upgrade path; the format
//! is described in ARCHITECTURE.md ("Storage format").
//!
//! `Kv` keys are `escape(user_key) ++ [0x00, 0x01] ++ be64(!revision) ++ be32(!sub)`: the escaping
//! (0x00 becomes 0x00 0xFF) keeps byte order between user keys, and the inverted revision puts the
//! newest version of a key first, so "the version of k at revision r" is one seek to `(k, r, MAX)`.
//! The sub-revision is part of the key because one txn can change a key twice in one revision (etcd's
//! duplicate-key rule lets a nested put be followed by a sibling's delete), and watches replay both.

use bytes::Bytes;

use crate::auth::{AuthState, PermKind, Permission, Role, User};
use crate::error::BackendError;
use crate::types::LeaseId;

const ESC: u8 = 0x00;
const ESC_ZERO: u8 = 0xff;
const TERM: u8 = 0x01;
/// Sorts after every `(k, rev)` entry of a key and before every longer key.
const AFTER_TERM: u8 = 0x02;

fn escape_into(user_key: &[u8], out: &mut Vec<u8>) {
    out.reserve(user_key.len() + 10);
    for &b in user_key {
        out.push(b);
        if b == ESC {
            out.push(ESC_ZERO);
        }
    }
}

/// The first `Kv` entry of `user_key` (its newest possible version).
pub fn kv_key_start(user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    escape_into(user_key, &mut out);
    out.extend_from_slice(&[ESC, TERM]);
    out
}

/// Bytes after the escaped user key: inverted revision and sub-revision.
pub const KV_SUFFIX: usize = 12;

/// The `Kv` key of the `sub`-th change of revision `rev`, to `user_key`.
pub fn kv_key(user_key: &[u8], rev: i64, sub: u32) -> Vec<u8> {
    let mut out = kv_key_start(user_key);
    out.extend_from_slice(&(!(rev as u64)).to_be_bytes());
    out.extend_from_slice(&(!sub).to_be_bytes());
    out
}

/// A seek position whose first entry is the newest version of `user_key` at or below `rev`.
pub fn kv_key_at(user_key: &[u8], rev: i64) -> Vec<u8> {
    kv_key(user_key, rev, u32::MAX)
}

/// A position after every version of `user_key` and before the next user key.
pub fn kv_key_after(user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    escape_into(user_key, &mut out);
    out.extend_from_slice(&[ESC, AFTER_TERM]);
    out
}

/// Splits a `Kv` key into the user key and the revision.
pub fn decode_kv_key(key: &[u8]) -> Result<(Vec<u8>, i64), BackendError> {
    const BAD: BackendError = BackendError::Corrupt {
        space: "kv",
        what: "malformed key",
    };
    if key.len() < KV_SUFFIX + 2 {
        return Err(BAD);
    }
    let (escaped, suffix) = key.split_at(key.len() - KV_SUFFIX);
    let rev = !u64::from_be_bytes(suffix[..8].try_into().map_err(|_| BAD)?) as i64;
    let mut user = Vec::with_capacity(escaped.len());
    let mut i = 0;
    loop {
        match escaped.get(i) {
            Some(&ESC) => match escaped.get(i + 1) {
                Some(&ESC_ZERO) => {
                    user.push(0);
                    i += 2;
                }
                Some(&TERM) if i + 2 == escaped.len() => return Ok((user, rev)),
                _ => return Err(BAD),
            },
            Some(&b) => {
                user.push(b);
                i += 1;
            }
            None => return Err(BAD),
        }
    }
}

/// The stored form of one version of a key (mod_revision is the key's revision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Put {
        create_revision: i64,
        version: i64,
        lease: LeaseId,
        value: bytes::Bytes,
    },
    Tombstone,
}

const TAG_PUT: u8 = 0;
const TAG_TOMBSTONE: u8 = 1;

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::Put {
                create_revision,
                version,
                lease,
                value,
            } => {
                let mut out = Vec::with_capacity(25 + value.len());
                out.push(TAG_PUT);
                out.extend_from_slice(&create_revision.to_be_bytes());
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&lease.to_be_bytes());
                out.extend_from_slice(value);
                out
            }
            Record::Tombstone => vec![TAG_TOMBSTONE],
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, BackendError> {
        const BAD: BackendError = BackendError::Corrupt {
            space: "kv",
            what: "malformed record",
        };
        match bytes.first() {
            Some(&TAG_TOMBSTONE) if bytes.len() == 1 => Ok(Record::Tombstone),
            Some(&TAG_PUT) if bytes.len() >= 25 => {
                let i64_at =
                    |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
                Ok(Record::Put {
                    create_revision: i64_at(1),
                    version: i64_at(9),
                    lease: i64_at(17),
                    value: bytes::Bytes::copy_from_slice(&bytes[25..]),
                })
            }
            _ => Err(BAD),
        }
    }
}

/// The `Rev` key of the `sub`-th change made at `rev`.
pub fn rev_key(rev: i64, sub: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&(rev as u64).to_be_bytes());
    out.extend_from_slice(&sub.to_be_bytes());
    out
}

pub fn decode_rev_key(key: &[u8]) -> Result<(i64, u32), BackendError> {
    if key.len() != 12 {
        return Err(BackendError::Corrupt {
            space: "rev",
            what: "malformed key",
        });
    }
    let rev = u64::from_be_bytes(key[..8].try_into().expect("8 bytes")) as i64;
    let sub = u32::from_be_bytes(key[8..].try_into().expect("4 bytes"));
    Ok((rev, sub))
}

/// `Rev` values: the event kind then the user key.
pub fn rev_value(is_delete: bool, user_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + user_key.len());
    out.push(if is_delete { TAG_TOMBSTONE } else { TAG_PUT });
    out.extend_from_slice(user_key);
    out
}

pub fn decode_rev_value(value: &[u8]) -> Result<(bool, &[u8]), BackendError> {
    match value.split_first() {
        Some((&TAG_PUT, key)) => Ok((false, key)),
        Some((&TAG_TOMBSTONE, key)) => Ok((true, key)),
        _ => Err(BackendError::Corrupt {
            space: "rev",
            what: "malformed value",
        }),
    }
}

/// `Lease` keys: `b'L' ++ be64(id)` holds the granted TTL; `b'K' ++ be64(id) ++ user_key` marks an
/// attached key.
pub fn lease_key(id: LeaseId) -> Vec<u8> {
    let mut out = vec![b'L'];
    out.extend_from_slice(&id.to_be_bytes());
    out
}

pub fn lease_attach_key(id: LeaseId, user_key: &[u8]) -> Vec<u8> {
    let mut out = vec![b'K'];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(user_key);
    out
}

pub fn decode_i64(bytes: &[u8], space: &'static str) -> Result<i64, BackendError> {
    bytes
        .try_into()
        .map(i64::from_be_bytes)
        .map_err(|_| BackendError::Corrupt {
            space,
            what: "expected an 8-byte integer",
        })
}

pub const META_REV: &[u8] = b"rev";
pub const META_COMPACT: &[u8] = b"compact";
pub const META_COMPACT_DONE: &[u8] = b"compact_done";
pub const META_APPLIED: &[u8] = b"applied";
/// Where the running physical compaction has got to (a `Rev` key).
pub const META_COMPACT_POS: &[u8] = b"compact_pos";
pub const META_LEASE_SEQ: &[u8] = b"lease_seq";
/// The whole auth state (`auth.rs`); absent until auth is first changed.
pub const META_AUTH: &[u8] = b"auth";
/// The raised alarms: `be64(member id) ++ be32(alarm type)` each, in order.
pub const META_ALARMS: &[u8] = b"alarms";

/// Raised alarms as (member id, alarm type as etcd numbers it: NOSPACE = 1, CORRUPT = 2).
pub type Alarms = std::collections::BTreeSet<(u64, i32)>;

pub fn encode_alarms(alarms: &Alarms) -> Vec<u8> {
    alarms
        .iter()
        .flat_map(|(member, alarm)| [&member.to_be_bytes()[..], &alarm.to_be_bytes()[..]].concat())
        .collect()
}

pub fn decode_alarms(bytes: &[u8]) -> Result<Alarms, BackendError> {
    if !bytes.len().is_multiple_of(12) {
        return Err(BackendError::Corrupt {
            space: "meta",
            what: "malformed alarms",
        });
    }
    Ok(bytes
        .chunks_exact(12)
        .map(|c| {
            (
                u64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
                i32::from_be_bytes(c[8..].try_into().expect("4 bytes")),
            )
        })
        .collect())
}

// The auth state: kept whole under one meta key (`META_AUTH`), length-prefixed fields after a
// format byte.

impl AuthState {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer(vec![FORMAT]);
        w.0.push(u8::from(self.enabled));
        w.0.extend_from_slice(&self.revision.to_be_bytes());
        w.len(self.users.len());
        for (name, user) in &self.users {
            w.bytes(name.as_bytes());
            w.bytes(user.password_hash.as_bytes());
            w.0.push(u8::from(user.no_password));
            w.len(user.roles.len());
            for role in &user.roles {
                w.bytes(role.as_bytes());
            }
        }
        w.len(self.roles.len());
        for (name, role) in &self.roles {
            w.bytes(name.as_bytes());
            w.len(role.perms.len());
            for perm in &role.perms {
                w.0.push(perm.kind.code());
                w.bytes(&perm.key);
                w.bytes(&perm.range_end);
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, BackendError> {
        let mut r = Reader(bytes);
        if r.u8()? != FORMAT {
            return Err(corrupt("unknown format"));
        }
        let enabled = r.u8()? != 0;
        let revision = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let mut state = AuthState {
            enabled,
            revision,
            ..AuthState::default()
        };
        for _ in 0..r.len()? {
            let name = r.string()?;
            let password_hash = r.string()?;
            let no_password = r.u8()? != 0;
            let roles = (0..r.len()?)
                .map(|_| r.string())
                .collect::<Result<_, _>>()?;
            state.users.insert(
                name,
                User {
                    password_hash,
                    no_password,
                    roles,
                },
            );
        }
        for _ in 0..r.len()? {
            let name = r.string()?;
            let perms = (0..r.len()?)
                .map(|_| {
                    let kind = PermKind::from_code(r.u8()?)
                        .ok_or_else(|| corrupt("unknown permission type"))?;
                    Ok(Permission {
                        kind,
                        key: Bytes::copy_from_slice(r.bytes()?),
                        range_end: Bytes::copy_from_slice(r.bytes()?),
                    })
                })
                .collect::<Result<_, BackendError>>()?;
            state.roles.insert(name, Role { perms });
        }
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(state)
    }
}

/// The first byte of the encoded state; a later layout gets another.
const FORMAT: u8 = 1;

fn corrupt(what: &'static str) -> BackendError {
    BackendError::Corrupt {
        space: "auth",
        what,
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn len(&mut self, n: usize) {
        self.0.extend_from_slice(
            &u32::try_from(n)
                .expect("auth state sizes fit u32")
                .to_be_bytes(),
        );
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BackendError> {
        if self.0.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BackendError> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<usize, BackendError> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        usize::try_from(n).map_err(|_| corrupt("length"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], BackendError> {
        let n = self.len()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, BackendError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt("name is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kv_key_round_trips(key in proptest::collection::vec(any::<u8>(), 0..16), rev in 1i64..i64::MAX) {
            let (k, r) = decode_kv_key(&kv_key(&key, rev, 3)).unwrap();
            prop_assert_eq!(k, key);
            prop_assert_eq!(r, rev);
        }

        #[test]
        fn kv_key_order_is_key_then_newest_first(
            a in proptest::collection::vec(0u8..3, 0..6), ra in 1i64..50,
            b in proptest::collection::vec(0u8..3, 0..6), rb in 1i64..50,
        ) {
            let expected = a.cmp(&b).then(rb.cmp(&ra));
            prop_assert_eq!(kv_key(&a, ra, 0).cmp(&kv_key(&b, rb, 0)), expected);
            // Within a revision, later changes sort first; a seek for "at rb" finds them all.
            prop_assert!(kv_key(&a, ra, 1) < kv_key(&a, ra, 0));
            prop_assert!(kv_key_at(&a, ra) <= kv_key(&a, ra, 7));
            prop_assert!(kv_key_at(&a, ra) > kv_key(&a, ra + 1, 0));
            // The skip position lies after every version of `a` and before any greater key.
            if a < b {
                prop_assert!(kv_key_after(&a) < kv_key(&b, rb, 0));
            }
            prop_assert!(kv_key_after(&a) > kv_key(&a, 1, 0));
        }

        #[test]
        fn records_round_trip(c in any::<i64>(), v in any::<i64>(), l in any::<i64>(), value in proptest::collection::vec(any::<u8>(), 0..40)) {
            let rec = Record::Put { create_revision: c, version: v, lease: l, value: value.into() };
            prop_assert_eq!(Record::decode(&rec.encode()).unwrap(), rec);
        }
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert!(decode_kv_key(b"abc").is_err());
        assert!(
            decode_kv_key(b"a\x00\x05\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00").is_err()
        );
        assert!(Record::decode(b"").is_err());
        assert!(Record::decode(b"\x00short").is_err());
        assert!(Record::decode(b"\x01extra").is_err());
        assert!(decode_rev_key(b"short").is_err());
        assert!(decode_rev_value(b"").is_err());
    }
}
