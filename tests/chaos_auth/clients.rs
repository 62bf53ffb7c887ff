//! The auth chaos test's clients, on raw gRPC with the `token` metadata set by hand (so that each
//! request carries exactly the token the client chose, and the history says which): the admin
//! (root), which makes one auth change at a time; a reader (alice) per member, which reads the
//! guarded key through it and authenticates again whenever its token is refused; and a prober per
//! member, which reads through it with the tokens the readers were refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_check::{AuthChange, ChangeKind, GuardedRead, ReadOutcome, TokenIssue};
use ballast_proto::authpb;
use ballast_proto::pb;
use ballast_proto::pb::auth_client::AuthClient;
use ballast_proto::pb::kv_client::KvClient;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use tonic::Status;

use crate::common::grpc::client_channel;

pub const KEY: &str = "guarded";
pub const ALICE: &str = "alice";
/// alice's passwords: the admin changes hers from one to the other and back.
pub const PASSWORDS: [&str; 2] = ["alicepw", "alicepw2"];
pub const ROOT_PASSWORD: &str = "rootpw";
/// alice's role, her only right to the key.
pub const ROLE: &str = "reader";
/// Each request's deadline: a member cut off answers nothing, and the client goes on.
const TIMEOUT: Duration = Duration::from_secs(3);
/// A probe's deadline: longer than a member is cut off, so that a probe a member holds while cut
/// off (etcd waits for a read point) is answered once it is healed and has caught up.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many refused tokens the probers pick from (the newest).
const OLD_TOKENS: usize = 8;
/// A prober's reads in flight at most (a member cut off holds them all).
const PROBES_IN_FLIGHT: usize = 64;

#[derive(Debug, Default)]
pub struct Recorded {
    pub changes: Vec<AuthChange>,
    pub reads: Vec<GuardedRead>,
}

/// What the clients share: the clock of the history, when to stop, the history, and the tokens
/// the readers were refused (each with when it was handed out), for the probers.
#[derive(Debug, Clone)]
pub struct Shared {
    epoch: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Recorded>>,
    refused: Arc<Mutex<Vec<(String, TokenIssue)>>>,
}

/// The history's clock starts now.
impl Default for Shared {
    fn default() -> Shared {
        Shared {
            epoch: Instant::now(),
            stop: Arc::default(),
            out: Arc::default(),
            refused: Arc::default(),
        }
    }
}

impl Shared {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn take(&self) -> Recorded {
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn record(&self, read: GuardedRead) {
        self.out.lock().unwrap().reads.push(read);
    }
}

/// A request carrying `token` (or none).
fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut().insert("token", t.parse().unwrap());
    }
    req
}

/// etcd's answers that tell the clients what to do next (its texts; Ballast uses the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Denied,
    NoUser,
    InvalidToken,
    NotEnabled,
    AuthFailed,
    NotGranted,
    /// Anything else: a timeout, no leader, a read racing an auth change ("auth revision is old").
    Other,
}

fn classify(status: &Status) -> Answer {
    let m = status.message();
    let has = |s| m.contains(s);
    if has("permission denied") {
        Answer::Denied
    } else if has("user name is empty") || has("user name not found") {
        Answer::NoUser
    } else if has("invalid auth token") {
        Answer::InvalidToken
    } else if has("authentication is not enabled") {
        Answer::NotEnabled
    } else if has("authentication failed") {
        Answer::AuthFailed
    } else if has("permission is not granted") {
        Answer::NotGranted
    } else {
        Answer::Other
    }
}

/// A user's connection to one member, with the token it holds (if any).
struct Session {
    kv: KvClient<Channel>,
    auth: AuthClient<Channel>,
    token: Option<(String, TokenIssue)>,
}

impl Session {
    fn new(endpoint: &str) -> Session {
        let channel = client_channel(endpoint, Some(TIMEOUT));
        Session {
            kv: KvClient::new(channel.clone()),
            auth: AuthClient::new(channel),
            token: None,
        }
    }

    fn token(&self) -> Option<&str> {
        self.token.as_ref().map(|(t, _)| t.as_str())
    }

    /// Authenticates; on success the session holds the new token.
    async fn authenticate(&mut self, shared: &Shared, name: &str, pw: &str) -> Result<(), Answer> {
        let call = shared.now();
        let req = pb::AuthenticateRequest {
            name: name.into(),
            password: pw.into(),
        };
        let resp = self
            .auth
            .authenticate(req)
            .await
            .map_err(|s| classify(&s))?;
        let issued = TokenIssue {
            call,
            ret: shared.now(),
        };
        self.token = Some((resp.into_inner().token, issued));
        Ok(())
    }
}

/// The admin's choice of change: after the first (a revoke), which kinds come next is dealt from
/// a shuffled deck holding each once, so every kind appears early in every run.
#[derive(Debug, Clone, Copy)]
enum Deck {
    Permission,
    Auth,
    Password,
}

/// Makes changes at random intervals until stopped: toggles alice's read permission, toggles
/// auth, or switches alice's password. A change whose outcome is unknown is sent again (to the
/// next member) until answered.
pub async fn admin(endpoints: Vec<String>, shared: Shared, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut root = Admin {
        sessions: endpoints.iter().map(|e| Session::new(e)).collect(),
        next: 0,
        auth_off: false,
        shared: shared.clone(),
    };
    let (mut granted, mut enabled, mut password) = (true, true, 0);
    // A revoke first, while auth is on: the readers see both answers in every run.
    let mut deck = vec![Deck::Permission];
    while !shared.stopped() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        if deck.is_empty() {
            deck = vec![Deck::Permission, Deck::Auth, Deck::Password];
            deck.shuffle(&mut rng);
        }
        let kind = match deck.pop().unwrap() {
            Deck::Permission if granted => ChangeKind::Revoke,
            Deck::Permission => ChangeKind::Grant,
            Deck::Auth if enabled => ChangeKind::Disable,
            Deck::Auth => ChangeKind::Enable,
            Deck::Password => ChangeKind::Password,
        };
        let call = shared.now();
        root.change(kind, PASSWORDS[1 - password]).await;
        let ret = shared.now();
        match kind {
            ChangeKind::Grant | ChangeKind::Revoke => granted = !granted,
            ChangeKind::Disable | ChangeKind::Enable => enabled = !enabled,
            ChangeKind::Password => password = 1 - password,
        }
        let change = AuthChange { call, ret, kind };
        shared.out.lock().unwrap().changes.push(change);
    }
}

struct Admin {
    sessions: Vec<Session>,
    /// The member the next attempt goes to.
    next: usize,
    /// Authenticate answered "authentication is not enabled": send no token.
    auth_off: bool,
    shared: Shared,
}

impl Admin {
    /// Makes one change, retrying until it is answered.
    async fn change(&mut self, kind: ChangeKind, new_password: &str) {
        loop {
            let s = &mut self.sessions[self.next];
            if s.token.is_none() && !self.auth_off {
                match s.authenticate(&self.shared, "root", ROOT_PASSWORD).await {
                    Ok(()) => {}
                    Err(Answer::NotEnabled) => self.auth_off = true,
                    Err(_) => {
                        self.retry_elsewhere().await;
                        continue;
                    }
                }
            }
            let token = s.token().map(str::to_owned);
            let token = token.as_deref();
            let result = match kind {
                ChangeKind::Grant => {
                    let perm = authpb::Permission {
                        perm_type: authpb::permission::Type::Read as i32,
                        key: KEY.as_bytes().to_vec().into(),
                        range_end: Default::default(),
                    };
                    let req = pb::AuthRoleGrantPermissionRequest {
                        name: ROLE.into(),
                        perm: Some(perm),
                    };
                    s.auth
                        .role_grant_permission(with_token(req, token))
                        .await
                        .map(drop)
                }
                ChangeKind::Revoke => {
                    let req = pb::AuthRoleRevokePermissionRequest {
                        role: ROLE.into(),
                        key: KEY.as_bytes().to_vec().into(),
                        range_end: Default::default(),
                    };
                    s.auth
                        .role_revoke_permission(with_token(req, token))
                        .await
                        .map(drop)
                }
                ChangeKind::Disable => {
                    let req = pb::AuthDisableRequest {};
                    s.auth.auth_disable(with_token(req, token)).await.map(drop)
                }
                ChangeKind::Enable => {
                    let req = pb::AuthEnableRequest {};
                    s.auth.auth_enable(with_token(req, token)).await.map(drop)
                }
                ChangeKind::Password => {
                    let req = pb::AuthUserChangePasswordRequest {
                        name: ALICE.into(),
                        password: new_password.into(),
                        ..Default::default()
                    };
                    s.auth
                        .user_change_password(with_token(req, token))
                        .await
                        .map(drop)
                }
            };
            let answer = match result {
                Ok(()) => return,
                Err(status) => classify(&status),
            };
            match answer {
                // An earlier attempt revoked it.
                Answer::NotGranted if kind == ChangeKind::Revoke => return,
                // The token ended (auth was disabled, maybe by an earlier attempt), or auth is
                // on and we sent none: authenticate again, here.
                Answer::InvalidToken | Answer::NoUser | Answer::Denied => {
                    s.token = None;
                    self.auth_off = false;
                }
                _ => self.retry_elsewhere().await,
            }
        }
    }

    async fn retry_elsewhere(&mut self) {
        self.next = (self.next + 1) % self.sessions.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of the tokens she was refused (or left behind) a reader keeps, to read with again.
/// A read of the key with `token`, recorded if its answer says something.
async fn read(
    kv: &mut KvClient<Channel>,
    shared: &Shared,
    token: Option<&(String, TokenIssue)>,
) -> Option<ReadOutcome> {
    let req = pb::RangeRequest {
        key: KEY.as_bytes().to_vec().into(),
        ..Default::default()
    };
    let req = with_token(req, token.map(|(t, _)| t.as_str()));
    let call = shared.now();
    let result = kv.range(req).await;
    let ret = shared.now();
    let outcome = match result.map_err(|s| classify(&s)) {
        Ok(_) => ReadOutcome::Allowed,
        Err(Answer::Denied) => ReadOutcome::Denied,
        Err(Answer::NoUser) => ReadOutcome::NoUser,
        Err(Answer::InvalidToken) => ReadOutcome::InvalidToken,
        Err(_) => return None,
    };
    shared.record(GuardedRead {
        call,
        ret,
        token: token.map(|&(_, issued)| issued),
        outcome,
    });
    Some(outcome)
}

/// alice reads the key through one member, again and again, with the token she holds; she
/// authenticates again when it is refused (or when auth is on and she holds none), trying her
/// other password when hers is refused. A refused token goes to the probers.
pub async fn reader(endpoint: String, shared: Shared) {
    let mut alice = Session::new(&endpoint);
    let mut password = 0;
    let mut auth_off = false;
    while !shared.stopped() {
        if alice.token.is_none() && !auth_off {
            match alice
                .authenticate(&shared, ALICE, PASSWORDS[password])
                .await
            {
                Ok(()) => {}
                Err(Answer::NotEnabled) => auth_off = true,
                Err(e) => {
                    if e == Answer::AuthFailed {
                        password = 1 - password;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            }
        }
        let outcome = read(&mut alice.kv, &shared, alice.token.as_ref()).await;
        if let Some(ReadOutcome::InvalidToken | ReadOutcome::NoUser) = outcome {
            if let Some(token) = alice.token.take() {
                let mut refused = shared.refused.lock().unwrap();
                refused.push(token);
                if refused.len() > OLD_TOKENS {
                    refused.remove(0);
                }
            }
            auth_off = false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads through one member with tokens the readers were refused (through any member), without
/// waiting for answers: each must be refused if a change ended its token before the read was
/// sent, however far behind that member was (a member cut off answers its probes once healed).
pub async fn prober(endpoint: String, shared: Shared, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let channel = client_channel(&endpoint, Some(PROBE_TIMEOUT));
    let mut probes = tokio::task::JoinSet::new();
    while !shared.stopped() {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..40))).await;
        while probes.try_join_next().is_some() {}
        let token = {
            let refused = shared.refused.lock().unwrap();
            refused.choose(&mut rng).cloned()
        };
        let Some(token) = token else { continue };
        if probes.len() < PROBES_IN_FLIGHT {
            let (mut kv, shared) = (KvClient::new(channel.clone()), shared.clone());
            probes.spawn(async move { read(&mut kv, &shared, Some(&token)).await });
        }
    }
    while probes.join_next().await.is_some() {}
}
