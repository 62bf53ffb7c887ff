//! The store's auth state on both backends: changes commit with the batch and survive a reopen, a
//! write checked at an older auth revision is refused with nothing written (the guard that keeps a
//! revoked permission from letting a write through), and tokens follow users and expire on the
//! store's clock.

mod common;

use ballast_store::backend::Backend;
use ballast_store::*;
use bytes::Bytes;
use common::Open;

fn auth(s: &Store<impl Backend>, req: AuthRequest) -> Result<WriteResponse> {
    s.apply_batch(&[WriteRequest::Auth(req)], None)
        .unwrap()
        .pop()
        .unwrap()
}

fn user(name: &str) -> AuthRequest {
    AuthRequest::UserAdd {
        name: name.into(),
        password_hash: "hash".into(),
        no_password: false,
    }
}

fn enable<B: Backend>(s: &Store<B>) {
    auth(s, user("root")).unwrap();
    auth(
        s,
        AuthRequest::UserGrantRole {
            user: "root".into(),
            role: "root".into(),
        },
    )
    .unwrap();
    auth(s, user("u")).unwrap();
    auth(s, AuthRequest::RoleAdd { name: "r".into() }).unwrap();
    let perm = Permission {
        kind: PermKind::ReadWrite,
        key: Bytes::from("k"),
        range_end: Bytes::new(),
    };
    auth(
        s,
        AuthRequest::RoleGrantPermission {
            name: "r".into(),
            perm,
        },
    )
    .unwrap();
    auth(
        s,
        AuthRequest::UserGrantRole {
            user: "u".into(),
            role: "r".into(),
        },
    )
    .unwrap();
    auth(s, AuthRequest::Enable).unwrap();
}

fn changes_commit_and_survive_a_reopen<B: Open>() {
    let h = B::harness(|_| {});
    let rev = h.store.revision();
    assert_eq!(
        h.store.auth().revision,
        1,
        "etcd starts the auth revision at 1"
    );
    enable(&h.store);
    assert_eq!(
        h.store.revision(),
        rev,
        "auth changes leave the KV revision alone"
    );
    let state = h.store.auth();
    assert!(state.enabled);
    assert_eq!(state.revision, 8);
    assert!(state.check(Some("u"), b"k", b"", Access::Write).is_ok());
    let h = B::reopen(h);
    assert_eq!(
        *h.store.auth(),
        *state,
        "read back from disk (memory: the same store)"
    );
}

fn a_write_checked_before_an_auth_change_is_refused<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    enable(s);
    let checked_at = s.auth().revision;
    let put = |rev| WriteRequest::Checked {
        auth_revision: rev,
        req: Box::new(WriteRequest::Put(PutRequest::new("k", "v"))),
    };
    let revoke = AuthRequest::RoleRevokePermission {
        name: "r".into(),
        key: Bytes::from("k"),
        range_end: Bytes::new(),
    };
    // The revocation commits first, in the same batch: the put checked before it must not apply.
    let out = s
        .apply_batch(&[WriteRequest::Auth(revoke), put(checked_at)], None)
        .unwrap();
    assert!(out[0].is_ok());
    assert!(
        matches!(out[1], Err(StoreError::AuthOldRevision)),
        "{:?}",
        out[1]
    );
    assert!(
        s.range(&RangeRequest::key("k")).unwrap().kvs.is_empty(),
        "nothing written"
    );
    // In a later batch too; checked at the current revision it applies.
    assert!(matches!(
        s.apply_batch(&[put(checked_at)], None).unwrap()[0],
        Err(StoreError::AuthOldRevision)
    ));
    let now = s.auth().revision;
    assert!(matches!(
        s.apply_batch(&[put(now)], None).unwrap()[0],
        Ok(WriteResponse::Put(_))
    ));
    // A failed auth change does not move the revision, so writes checked at it still apply.
    assert!(matches!(
        auth(s, AuthRequest::RoleAdd { name: "r".into() }),
        Err(StoreError::RoleAlreadyExist)
    ));
    assert!(s.apply_batch(&[put(now)], None).unwrap()[0].is_ok());
}

fn tokens_follow_users<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    let grant = |name: &str, token: &str| {
        auth(
            s,
            AuthRequest::Authenticate {
                name: name.into(),
                token: token.into(),
            },
        )
    };
    assert!(matches!(grant("u", "t0"), Err(StoreError::AuthNotEnabled)));
    enable(s);
    let rev = s.auth().revision;
    grant("u", "t1").unwrap();
    grant("root", "t2").unwrap();
    assert_eq!(
        s.auth().revision,
        rev,
        "handing out a token changes no auth state"
    );
    assert!(matches!(grant("ghost", "t3"), Err(StoreError::AuthFailed)));
    assert_eq!(
        (s.token_user("t1").as_deref(), s.token_user("t3")),
        (Some("u"), None)
    );
    auth(
        s,
        AuthRequest::UserChangePassword {
            name: "u".into(),
            password_hash: "new".into(),
        },
    )
    .unwrap();
    assert_eq!(
        (s.token_user("t1"), s.token_user("t2").as_deref()),
        (None, Some("root")),
        "only u's tokens end"
    );
    grant("u", "t4").unwrap();
    auth(s, AuthRequest::Disable).unwrap();
    assert_eq!(
        (s.token_user("t2"), s.token_user("t4")),
        (None, None),
        "disabling ends every token"
    );
}

/// A token unused for `TOKEN_TTL` on the store's clock is forgotten; each use restarts its idle time
/// (etcd's simple-token TTL). Only the store's `Clock` moves here: no wall time passes.
fn tokens_expire_when_idle_on_the_store_clock<B: Open>() {
    let h = B::harness(|_| {});
    let s = &h.store;
    enable(s);
    for token in ["kept", "idle"] {
        auth(
            s,
            AuthRequest::Authenticate {
                name: "u".into(),
                token: token.into(),
            },
        )
        .unwrap();
    }
    let ttl = TOKEN_TTL.as_millis() as u64;
    h.clock.advance(ttl - 1);
    assert_eq!(
        s.token_user("kept").as_deref(),
        Some("u"),
        "used within its TTL"
    );
    h.clock.advance(ttl - 1);
    assert_eq!(
        s.token_user("kept").as_deref(),
        Some("u"),
        "the last use restarted it"
    );
    assert_eq!(s.token_user("idle"), None, "unused for longer than its TTL");
    h.clock.advance(ttl + 1);
    assert_eq!(s.token_user("kept"), None);
}

both_backends!(
    changes_commit_and_survive_a_reopen,
    a_write_checked_before_an_auth_change_is_refused,
    tokens_follow_users,
    tokens_expire_when_idle_on_the_store_clock
);
