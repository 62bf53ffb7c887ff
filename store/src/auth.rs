//! Authentication and authorization, as etcd's `auth` package: users, roles, key permissions,
//! whether auth is on, and the auth revision that counts changes to any of it.
//!
//! The state lives in the store, so that a change commits in the same atomic batch as the caller's
//! applied position (a raft log id) and travels in snapshots. It is small and changes rarely:
//! it is kept whole in memory ([`AuthState`], swapped after each commit that changes it) and whole
//! under one meta key on disk.
//!
//! Who may do what is decided by [`AuthState::check`] and friends against the state a request
//! was checked at; a write carries that state's revision ([`crate::WriteRequest::Checked`]) and is
//! refused at apply time with [`StoreError::AuthOldRevision`] if auth changed meanwhile, so a
//! revoked permission can never let a write through (etcd's `ErrAuthOldRevision` retry loop).
//!
//! Tokens are etcd's "simple" tokens: handed out through the log (every member learns them), kept
//! in memory only, and forgotten after [`TOKEN_TTL`] unused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Result, StoreError};
use crate::types::{DeleteRangeRequest, Millis, PutRequest, RangeRequest, RequestOp, TxnRequest};

/// The user that must exist, with the role that grants everything, before auth can be enabled.
pub const ROOT: &str = "root";

/// etcd's `--auth-token-ttl` default: a simple token unused this long is forgotten.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);

/// etcd's `authpb.Permission.Type` (READ=0, WRITE=1, READWRITE=2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PermKind {
    Read,
    Write,
    ReadWrite,
}

impl PermKind {
    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (PermKind::ReadWrite, _)
                | (PermKind::Read, Access::Read)
                | (PermKind::Write, Access::Write)
        )
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            PermKind::Read => 0,
            PermKind::Write => 1,
            PermKind::ReadWrite => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [PermKind::Read, PermKind::Write, PermKind::ReadWrite]
            .get(usize::from(code))
            .copied()
    }
}

/// What a request needs on a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A permission on one key (`range_end` empty), on `[key, range_end)`, or on every key from `key`
/// on (`range_end` = "\0"), as etcd's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Permission {
    pub kind: PermKind,
    pub key: Bytes,
    pub range_end: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// The bcrypt hash of the password; empty for a user added with `no_password`.
    pub password_hash: String,
    pub no_password: bool,
    pub roles: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Role {
    /// Sorted by key, then range end; at most one per (key, range end).
    pub perms: Vec<Permission>,
}

/// The replicated auth state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthState {
    pub enabled: bool,
    /// Bumped by every change; etcd starts it at 1.
    pub revision: u64,
    pub users: BTreeMap<String, User>,
    pub roles: BTreeMap<String, Role>,
}

impl Default for AuthState {
    fn default() -> Self {
        Self {
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }
}

/// A change to the auth state, or a token handed out. Passwords arrive hashed: hashing (bcrypt,
/// tens of milliseconds) happens once, before the request is replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AuthRequest {
    Enable,
    Disable,
    UserAdd {
        name: String,
        password_hash: String,
        no_password: bool,
    },
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        password_hash: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        name: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        name: String,
    },
    RoleGrantPermission {
        name: String,
        perm: Permission,
    },
    RoleRevokePermission {
        name: String,
        key: Bytes,
        range_end: Bytes,
    },
    /// Hands `token` to `name`, whose password the proposer checked (at the auth revision the
    /// request is [`crate::WriteRequest::Checked`] against).
    Authenticate {
        name: String,
        token: String,
    },
}

/// What applying a request did to tokens handed out earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenEffect {
    None,
    Grant {
        token: String,
        user: String,
    },
    /// The user's tokens end (deleted, or its password changed).
    RevokeUser(String),
    /// Every token ends (auth disabled).
    RevokeAll,
}

impl AuthState {
    /// Applies a change (all or nothing: nothing is changed when it fails), with etcd's errors.
    pub(crate) fn apply(&mut self, req: &AuthRequest) -> Result<TokenEffect> {
        let mut effect = TokenEffect::None;
        match req {
            AuthRequest::Enable => {
                if self.enabled {
                    return Ok(effect);
                }
                let root = self.users.get(ROOT).ok_or(StoreError::RootUserNotExist)?;
                if !root.roles.contains(ROOT) {
                    return Err(StoreError::RootRoleNotExist);
                }
                self.enabled = true;
            }
            AuthRequest::Disable => {
                if !self.enabled {
                    return Ok(effect);
                }
                self.enabled = false;
                effect = TokenEffect::RevokeAll;
            }
            AuthRequest::UserAdd {
                name,
                password_hash,
                no_password,
            } => {
                if name.is_empty() {
                    return Err(StoreError::UserEmpty);
                }
                if self.users.contains_key(name) {
                    return Err(StoreError::UserAlreadyExist);
                }
                let user = User {
                    password_hash: password_hash.clone(),
                    no_password: *no_password,
                    roles: BTreeSet::new(),
                };
                self.users.insert(name.clone(), user);
            }
            AuthRequest::UserDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(StoreError::InvalidAuthMgmt);
                }
                self.users.remove(name).ok_or(StoreError::UserNotFound)?;
                effect = TokenEffect::RevokeUser(name.clone());
            }
            AuthRequest::UserChangePassword {
                name,
                password_hash,
            } => {
                let user = self.users.get_mut(name).ok_or(StoreError::UserNotFound)?;
                user.password_hash.clone_from(password_hash);
                effect = TokenEffect::RevokeUser(name.clone());
            }
            AuthRequest::UserGrantRole { user, role } => {
                if !self.users.contains_key(user) {
                    return Err(StoreError::UserNotFound);
                }
                // The root role grants everything whether or not it was added as a role.
                if role != ROOT && !self.roles.contains_key(role) {
                    return Err(StoreError::RoleNotFound);
                }
                let roles = &mut self.users.get_mut(user).expect("checked").roles;
                if !roles.insert(role.clone()) {
                    // etcd ignores a repeated grant (and does not bump the revision).
                    return Ok(effect);
                }
            }
            AuthRequest::UserRevokeRole { name, role } => {
                if self.enabled && name == ROOT && role == ROOT {
                    return Err(StoreError::InvalidAuthMgmt);
                }
                let user = self.users.get_mut(name).ok_or(StoreError::UserNotFound)?;
                if !user.roles.remove(role) {
                    return Err(StoreError::RoleNotGranted);
                }
            }
            AuthRequest::RoleAdd { name } => {
                if name.is_empty() {
                    return Err(StoreError::RoleEmpty);
                }
                if self.roles.contains_key(name) {
                    return Err(StoreError::RoleAlreadyExist);
                }
                self.roles.insert(name.clone(), Role::default());
            }
            AuthRequest::RoleDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(StoreError::InvalidAuthMgmt);
                }
                self.roles.remove(name).ok_or(StoreError::RoleNotFound)?;
                for user in self.users.values_mut() {
                    user.roles.remove(name);
                }
            }
            AuthRequest::RoleGrantPermission { name, perm } => {
                let role = self.roles.get_mut(name).ok_or(StoreError::RoleNotFound)?;
                let at = role.perms.binary_search_by(|p| {
                    (&p.key, &p.range_end).cmp(&(&perm.key, &perm.range_end))
                });
                match at {
                    Ok(i) => role.perms[i].kind = perm.kind,
                    Err(i) => role.perms.insert(i, perm.clone()),
                }
            }
            AuthRequest::RoleRevokePermission {
                name,
                key,
                range_end,
            } => {
                let role = self.roles.get_mut(name).ok_or(StoreError::RoleNotFound)?;
                let before = role.perms.len();
                role.perms
                    .retain(|p| !(p.key == *key && p.range_end == *range_end));
                if role.perms.len() == before {
                    return Err(StoreError::PermissionNotGranted);
                }
            }
            AuthRequest::Authenticate { name, token } => {
                if !self.enabled {
                    return Err(StoreError::AuthNotEnabled);
                }
                if !self.users.contains_key(name) {
                    return Err(StoreError::AuthFailed);
                }
                // Handing out a token is not a change of the auth state.
                return Ok(TokenEffect::Grant {
                    token: token.clone(),
                    user: name.clone(),
                });
            }
        }
        self.revision += 1;
        Ok(effect)
    }

    fn is_root(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.roles.contains(ROOT))
    }

    /// etcd's `IsAdminPermitted`: auth off, or a user with the root role.
    pub fn check_admin(&self, user: Option<&str>) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let name = named(user)?;
        let user = self.users.get(name).ok_or(StoreError::UserNotFound)?;
        if user.roles.contains(ROOT) {
            Ok(())
        } else {
            Err(StoreError::PermissionDenied)
        }
    }

    /// True if `user` holds `role` (a user may read its own roles without being an admin).
    pub fn has_role(&self, user: Option<&str>, role: &str) -> bool {
        user.and_then(|u| self.users.get(u))
            .is_some_and(|u| u.roles.contains(role))
    }

    /// etcd's `isOpPermitted`: may `user` have `access` to every key of `[key, range_end)` (one key
    /// if `range_end` is empty; every key from `key` on if it is "\0")?
    pub fn check(
        &self,
        user: Option<&str>,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let name = named(user)?;
        let Some(user) = self.users.get(name) else {
            return Err(StoreError::PermissionDenied);
        };
        if user.roles.contains(ROOT) {
            return Ok(());
        }
        let granted = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| &r.perms)
            .filter(|p| p.kind.allows(access));
        if covers(granted, key, range_end) {
            Ok(())
        } else {
            Err(StoreError::PermissionDenied)
        }
    }

    pub fn check_range(&self, user: Option<&str>, r: &RangeRequest) -> Result<()> {
        self.check(user, &r.key, &r.range_end, Access::Read)
    }

    /// A put needs write access to its key, and read access too if it asks for the previous value.
    pub fn check_put(&self, user: Option<&str>, p: &PutRequest) -> Result<()> {
        self.check(user, &p.key, &[], Access::Write)?;
        if p.prev_kv {
            self.check(user, &p.key, &[], Access::Read)?;
        }
        Ok(())
    }

    pub fn check_delete(&self, user: Option<&str>, d: &DeleteRangeRequest) -> Result<()> {
        if d.prev_kv {
            self.check(user, &d.key, &d.range_end, Access::Read)?;
        }
        self.check(user, &d.key, &d.range_end, Access::Write)
    }

    /// Every compare needs read access, every operation of both branches its own (nested txns
    /// too: etcd 3.4 skips them, which let a nested txn bypass permissions).
    pub fn check_txn(&self, user: Option<&str>, t: &TxnRequest) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        for c in &t.compare {
            self.check(user, &c.key, &c.range_end, Access::Read)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match op {
                RequestOp::Range(r) => self.check_range(user, r)?,
                RequestOp::Put(p) => self.check_put(user, p)?,
                RequestOp::DeleteRange(d) => self.check_delete(user, d)?,
                RequestOp::Txn(nested) => self.check_txn(user, nested)?,
            }
        }
        Ok(())
    }

    /// Checks that `user` may write every key in `keys` (a lease's keys: etcd's `checkLeasePuts`).
    pub fn check_keys_writable<'a>(
        &self,
        user: Option<&str>,
        keys: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<()> {
        self.check_keys(user, keys, Access::Write)
    }

    /// etcd 3.4.26's `checkLeaseTimeToLive` (CVE-2023-32082, lease ids are guessable): with auth
    /// on, a lease's time to live is told only to a user, and only to one that may read every key
    /// attached to it (root may read all).
    pub fn check_lease_readable<'a>(
        &self,
        user: Option<&str>,
        keys: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<()> {
        if self.enabled {
            named(user)?;
        }
        self.check_keys(user, keys, Access::Read)
    }

    /// `access` to each of `keys` (root, or auth off: all of them).
    fn check_keys<'a>(
        &self,
        user: Option<&str>,
        keys: impl IntoIterator<Item = &'a Bytes>,
        access: Access,
    ) -> Result<()> {
        if !self.enabled || user.is_some_and(|u| self.is_root(u)) {
            return Ok(());
        }
        keys.into_iter()
            .try_for_each(|k| self.check(user, k, &[], access))
    }
}

/// Does the union of `granted` cover `[key, range_end)` (a single key if `range_end` is empty;
/// unbounded above if it is "\0")? etcd's unified range permission check.
fn covers<'a>(granted: impl Iterator<Item = &'a Permission>, key: &[u8], range_end: &[u8]) -> bool {
    // Intervals as [start, end), None = no upper bound.
    let interval = |start: &[u8], end: &[u8]| -> (Vec<u8>, Option<Vec<u8>>) {
        match end {
            [] => (start.to_vec(), Some([start, &[0]].concat())),
            [0] => (start.to_vec(), None),
            end => (start.to_vec(), Some(end.to_vec())),
        }
    };
    let (start, end) = interval(key, range_end);
    if end.as_ref().is_some_and(|e| *e <= start) {
        // An empty range (etcd answers it with nothing): ask for its first key.
        return covers_from(
            granted.map(|p| interval(&p.key, &p.range_end)).collect(),
            &start,
            Some(&[start.as_slice(), &[0]].concat()),
        );
    }
    covers_from(
        granted.map(|p| interval(&p.key, &p.range_end)).collect(),
        &start,
        end.as_deref(),
    )
}

fn covers_from(
    mut intervals: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    start: &[u8],
    end: Option<&[u8]>,
) -> bool {
    intervals.sort();
    let mut reached = start.to_vec();
    for (from, to) in intervals {
        if from.as_slice() > reached.as_slice() {
            break;
        }
        match to {
            None => return true,
            Some(to) if to > reached => reached = to,
            Some(_) => {}
        }
        if end.is_some_and(|e| reached.as_slice() >= e) {
            return true;
        }
    }
    false
}

/// Tokens handed out, each with its user and when it was last used on the store's clock (in
/// memory only).
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    map: Mutex<HashMap<String, (String, Millis)>>,
}

/// Has a token last used at `used` gone unused longer than [`TOKEN_TTL`] at `now`?
fn idle(used: Millis, now: Millis) -> bool {
    u128::from(now.saturating_sub(used)) > TOKEN_TTL.as_millis()
}

impl Tokens {
    /// The token's user at `now`; using a token keeps it alive for another [`TOKEN_TTL`].
    pub fn user(&self, token: &str, now: Millis) -> Option<String> {
        let mut map = self.map.lock();
        let (user, used) = map.get_mut(token)?;
        if idle(*used, now) {
            map.remove(token);
            return None;
        }
        *used = now;
        Some(user.clone())
    }

    /// Applies a committed batch's effect on tokens at `now` (a grant also forgets idle tokens).
    pub fn apply(&self, effect: TokenEffect, now: Millis) {
        let mut map = self.map.lock();
        match effect {
            TokenEffect::None => {}
            TokenEffect::Grant { token, user } => {
                map.retain(|_, (_, used)| !idle(*used, now));
                map.insert(token, (user, now));
            }
            TokenEffect::RevokeUser(name) => map.retain(|_, (user, _)| *user != name),
            TokenEffect::RevokeAll => map.clear(),
        }
    }
}

/// The user a request names: "user name is empty" when it names none (etcd's `ErrUserEmpty`).
fn named(user: Option<&str>) -> Result<&str> {
    user.filter(|u| !u.is_empty()).ok_or(StoreError::UserEmpty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(kind: PermKind, key: &str, end: &str) -> Permission {
        Permission {
            kind,
            key: Bytes::copy_from_slice(key.as_bytes()),
            range_end: Bytes::copy_from_slice(end.as_bytes()),
        }
    }

    fn state_with(perms: Vec<Permission>) -> AuthState {
        let mut s = AuthState::default();
        for req in [
            AuthRequest::UserAdd {
                name: ROOT.into(),
                password_hash: "h".into(),
                no_password: false,
            },
            AuthRequest::UserGrantRole {
                user: ROOT.into(),
                role: ROOT.into(),
            },
            AuthRequest::UserAdd {
                name: "u".into(),
                password_hash: "h".into(),
                no_password: false,
            },
            AuthRequest::RoleAdd { name: "r".into() },
            AuthRequest::UserGrantRole {
                user: "u".into(),
                role: "r".into(),
            },
            AuthRequest::Enable,
        ] {
            s.apply(&req).unwrap();
        }
        for p in perms {
            s.apply(&AuthRequest::RoleGrantPermission {
                name: "r".into(),
                perm: p,
            })
            .unwrap();
        }
        s
    }

    #[test]
    fn ranges_are_covered_by_the_union_of_permissions() {
        let s = state_with(vec![
            perm(PermKind::Read, "a", "c"),
            perm(PermKind::ReadWrite, "c", "e"),
            perm(PermKind::Write, "x", ""),
        ]);
        let u = Some("u");
        assert!(s.check(u, b"a", b"", Access::Read).is_ok());
        assert!(
            s.check(u, b"b", b"e", Access::Read).is_ok(),
            "[a,c) and [c,e) join"
        );
        assert!(matches!(
            s.check(u, b"b", b"f", Access::Read),
            Err(StoreError::PermissionDenied)
        ));
        assert!(matches!(
            s.check(u, b"a", b"", Access::Write),
            Err(StoreError::PermissionDenied)
        ));
        assert!(s.check(u, b"d", b"", Access::Write).is_ok());
        assert!(s.check(u, b"x", b"", Access::Write).is_ok());
        assert!(
            matches!(
                s.check(u, b"x", b"y", Access::Write),
                Err(StoreError::PermissionDenied)
            ),
            "only the key x itself"
        );
        assert!(matches!(
            s.check(u, b"a", b"\0", Access::Read),
            Err(StoreError::PermissionDenied)
        ));
        let open = state_with(vec![perm(PermKind::Read, "m", "\0")]);
        assert!(open.check(u, b"n", b"\0", Access::Read).is_ok());
        assert!(open.check(u, b"zz", b"", Access::Read).is_ok());
        assert!(matches!(
            open.check(u, b"l", b"\0", Access::Read),
            Err(StoreError::PermissionDenied)
        ));
        // Root may do anything; no user, an unknown user, or auth off as etcd.
        assert!(s.check(Some(ROOT), b"", b"\0", Access::Write).is_ok());
        assert!(matches!(
            s.check(None, b"a", b"", Access::Read),
            Err(StoreError::UserEmpty)
        ));
        assert!(matches!(
            s.check(Some("ghost"), b"a", b"", Access::Read),
            Err(StoreError::PermissionDenied)
        ));
        let mut off = s.clone();
        off.apply(&AuthRequest::Disable).unwrap();
        assert!(off.check(None, b"zz", b"", Access::Write).is_ok());
    }

    #[test]
    fn management_follows_etcds_rules() {
        let mut s = AuthState::default();
        assert!(matches!(
            s.apply(&AuthRequest::Enable),
            Err(StoreError::RootUserNotExist)
        ));
        s.apply(&AuthRequest::UserAdd {
            name: ROOT.into(),
            password_hash: "h".into(),
            no_password: false,
        })
        .unwrap();
        assert!(matches!(
            s.apply(&AuthRequest::Enable),
            Err(StoreError::RootRoleNotExist)
        ));
        assert!(matches!(
            s.apply(&AuthRequest::UserAdd {
                name: ROOT.into(),
                password_hash: "h".into(),
                no_password: false
            }),
            Err(StoreError::UserAlreadyExist)
        ));
        assert!(matches!(
            s.apply(&AuthRequest::UserGrantRole {
                user: ROOT.into(),
                role: "nope".into()
            }),
            Err(StoreError::RoleNotFound)
        ));
        s.apply(&AuthRequest::UserGrantRole {
            user: ROOT.into(),
            role: ROOT.into(),
        })
        .unwrap();
        let rev = s.revision;
        s.apply(&AuthRequest::UserGrantRole {
            user: ROOT.into(),
            role: ROOT.into(),
        })
        .unwrap();
        assert_eq!(s.revision, rev, "a repeated grant changes nothing");
        s.apply(&AuthRequest::Enable).unwrap();
        assert!(s.enabled && s.revision == rev + 1);
        assert!(matches!(
            s.apply(&AuthRequest::UserDelete { name: ROOT.into() }),
            Err(StoreError::InvalidAuthMgmt)
        ));
        assert!(matches!(
            s.apply(&AuthRequest::UserRevokeRole {
                name: ROOT.into(),
                role: ROOT.into()
            }),
            Err(StoreError::InvalidAuthMgmt)
        ));
        assert!(matches!(
            s.apply(&AuthRequest::RoleDelete { name: ROOT.into() }),
            Err(StoreError::InvalidAuthMgmt)
        ));
        assert!(matches!(
            s.apply(&AuthRequest::RoleAdd {
                name: String::new()
            }),
            Err(StoreError::RoleEmpty)
        ));
        s.apply(&AuthRequest::RoleAdd { name: "r".into() }).unwrap();
        let key = Bytes::from_static(b"k");
        assert!(matches!(
            s.apply(&AuthRequest::RoleRevokePermission {
                name: "r".into(),
                key: key.clone(),
                range_end: Bytes::new()
            }),
            Err(StoreError::PermissionNotGranted)
        ));
        s.apply(&AuthRequest::RoleGrantPermission {
            name: "r".into(),
            perm: perm(PermKind::Read, "k", ""),
        })
        .unwrap();
        s.apply(&AuthRequest::RoleGrantPermission {
            name: "r".into(),
            perm: perm(PermKind::Write, "k", ""),
        })
        .unwrap();
        assert_eq!(
            s.roles["r"].perms,
            vec![perm(PermKind::Write, "k", "")],
            "a second grant on the same range replaces the first"
        );
        // Failures change nothing, the revision included.
        let before = s.clone();
        assert!(s
            .apply(&AuthRequest::UserRevokeRole {
                name: ROOT.into(),
                role: "r".into()
            })
            .is_err());
        assert_eq!(s, before);
        assert_eq!(AuthState::decode(&s.encode()).unwrap(), s);
        assert!(AuthState::decode(&s.encode()[..10]).is_err());
    }

    #[test]
    fn deleting_a_role_takes_it_from_its_users() {
        let mut s = state_with(vec![perm(PermKind::Read, "a", "")]);
        s.apply(&AuthRequest::RoleDelete { name: "r".into() })
            .unwrap();
        assert!(s.users["u"].roles.is_empty());
        assert!(matches!(
            s.check(Some("u"), b"a", b"", Access::Read),
            Err(StoreError::PermissionDenied)
        ));
    }
}
