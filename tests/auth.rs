//! Authentication and authorization through Debian's real `etcdctl` 3.4 against real `ballast kv`
//! processes. The expected outputs and errors are what etcd 3.4.23 printed for the same commands.

mod common;

use common::cluster::Cluster;
use common::{etcdctl, Ctl, Member};

/// etcdctl against one endpoint.
struct Ep(String);

impl Ep {
    fn of(m: &Member) -> Ep {
        Ep(m.endpoint())
    }

    fn ctl(&self, args: &[&str]) -> Ctl {
        etcdctl(&self.0, args, None)
    }

    fn ctl_stdin(&self, args: &[&str], stdin: &str) -> Ctl {
        etcdctl(&self.0, args, Some(stdin))
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ctl(args).expect_ok(args)
    }

    fn fails(&self, args: &[&str], error: &str) {
        self.ctl(args).expect_error(args, error);
    }
}

const ROOT: &str = "--user=root:rootpw";
const ALICE: &str = "--user=alice:alicepw";

/// Users, a role with a key, a prefix, a range and a from-key permission, then auth on.
fn set_up(m: &Ep) {
    m.fails(&["auth", "enable"], "etcdserver: root user does not exist");
    assert_eq!(m.ok(&["user", "add", "root:rootpw"]), "User root created\n");
    assert_eq!(
        m.ok(&["user", "add", "alice:alicepw"]),
        "User alice created\n"
    );
    m.fails(
        &["user", "add", "alice:x"],
        "etcdserver: user name already exists",
    );
    assert_eq!(m.ok(&["role", "add", "reader"]), "Role reader created\n");
    m.fails(
        &["role", "add", "reader"],
        "etcdserver: role name already exists",
    );
    for perm in [
        &["read", "foo"][..],
        &["readwrite", "--prefix", "pre/"],
        &["write", "a", "c"],
        &["read", "--from-key", "z"],
    ] {
        let args = [&["role", "grant-permission", "reader"][..], perm].concat();
        assert_eq!(m.ok(&args), "Role reader updated\n");
    }
    assert_eq!(
        m.ok(&["user", "grant-role", "alice", "reader"]),
        "Role reader is granted to user alice\n"
    );
    m.fails(
        &["user", "grant-role", "alice", "nope"],
        "etcdserver: role name not found",
    );
    assert_eq!(m.ok(&["user", "list"]), "alice\nroot\n");
    assert_eq!(m.ok(&["role", "list"]), "reader\n");
    // etcdctl adds the root role and grants it to root when enabling says it is missing.
    assert_eq!(m.ok(&["auth", "enable"]), "Authentication Enabled\n");
}

const READER: &str =
    "Role reader\nKV Read:\n\tfoo\n\t[pre/, pre0) (prefix pre/)\n\t[z, <open ended>\n\
                      KV Write:\n\t[a, c)\n\t[pre/, pre0) (prefix pre/)\n";

#[test]
fn users_roles_and_permissions_as_etcd() {
    let member = Member::start(&[]);
    let m = Ep::of(&member);
    set_up(&m);
    assert_eq!(
        m.ok(&["user", "get", "alice", ROOT]),
        "User: alice\nRoles: reader\n"
    );
    assert_eq!(m.ok(&["role", "get", "reader", ROOT]), READER);
    assert_eq!(m.ok(&["role", "list", ROOT]), "reader\nroot\n");

    // No credentials, wrong ones, and rights the user does not hold.
    m.fails(&["put", "foo", "bar"], "etcdserver: user name is empty");
    m.fails(&["get", "foo"], "etcdserver: user name is empty");
    assert_eq!(m.ok(&["put", "foo", "bar", ROOT]), "OK\n");
    assert_eq!(m.ok(&["put", "pre/x", "1", ROOT]), "OK\n");
    assert_eq!(m.ok(&["get", "foo", ALICE]), "foo\nbar\n");
    m.fails(&["put", "foo", "y", ALICE], "etcdserver: permission denied");
    m.fails(
        &["get", "foo", "zz", ALICE],
        "etcdserver: permission denied",
    );
    assert_eq!(m.ok(&["put", "pre/y", "2", ALICE]), "OK\n");
    assert_eq!(
        m.ok(&["get", "--prefix", "pre/", ALICE]),
        "pre/x\n1\npre/y\n2\n"
    );
    assert_eq!(m.ok(&["put", "b", "write-only", ALICE]), "OK\n");
    m.fails(&["get", "b", ALICE], "etcdserver: permission denied");
    m.fails(
        &["put", "b", "v", "--prev-kv", ALICE],
        "etcdserver: permission denied",
    );
    m.fails(
        &["get", "foo", "--user=alice:wrong"],
        "etcdserver: authentication failed, invalid user ID or password",
    );
    m.fails(
        &["get", "foo", "--user=bob:pw"],
        "etcdserver: authentication failed, invalid user ID or password",
    );
    assert_eq!(
        m.ok(&["get", "zzz", "--from-key", ALICE]),
        "",
        "the from-key permission covers an open range"
    );
    m.fails(
        &["del", "--prefix", "", ALICE],
        "etcdserver: permission denied",
    );

    // A txn needs read on every compare and the rights of every operation in both branches.
    let txn = "value(\"foo\") = \"bar\"\n\nput pre/t 1\n\nput foo no\n\n";
    let out = m.ctl_stdin(&["txn", "-i", ALICE], txn);
    assert!(
        !out.success && out.stderr.contains("Error: etcdserver: permission denied"),
        "{}",
        out.stderr
    );
    let txn = "value(\"foo\") = \"bar\"\n\nput pre/t 1\n\nget foo\n\n";
    let out = m.ctl_stdin(&["txn", "-i", ALICE], txn);
    assert!(
        out.success && out.stdout.ends_with("SUCCESS\n\nOK\n"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );

    // Management is the root role's; a user may look at itself and at the roles it holds.
    m.fails(&["user", "list", ALICE], "etcdserver: permission denied");
    m.fails(
        &["role", "add", "x", ALICE],
        "etcdserver: permission denied",
    );
    assert_eq!(
        m.ok(&["user", "get", "alice", ALICE]),
        "User: alice\nRoles: reader\n"
    );
    assert_eq!(m.ok(&["role", "get", "reader", ALICE]), READER);
    m.fails(
        &["role", "get", "root", ALICE],
        "etcdserver: permission denied",
    );
    m.fails(
        &["user", "delete", "root", ROOT],
        "etcdserver: invalid auth management",
    );
    m.fails(
        &["role", "delete", "root", ROOT],
        "etcdserver: invalid auth management",
    );
    m.fails(
        &["user", "revoke-role", "root", "root", ROOT],
        "etcdserver: invalid auth management",
    );
    m.fails(
        &["user", "revoke-role", "alice", "nope", ROOT],
        "etcdserver: role is not granted to the user",
    );
    assert_eq!(
        m.ok(&["role", "revoke-permission", "reader", "foo", ROOT]),
        "Permission of key foo is revoked from role reader\n"
    );
    m.fails(
        &["role", "revoke-permission", "reader", "foo", ROOT],
        "etcdserver: permission is not granted to the role",
    );
    m.fails(&["get", "foo", ALICE], "etcdserver: permission denied");
    assert_eq!(
        m.ok(&["role", "get", "root", ROOT]),
        "Role root\nKV Read:\nKV Write:\n"
    );

    // What etcd 3.4 leaves open, and what its maintenance server refuses in its own words.
    let health = m.ctl(&["endpoint", "health", ALICE]);
    assert!(
        health.success && health.stderr.contains("is healthy"),
        "permission denied on the health key counts as healthy: {}",
        health.stderr
    );
    assert!(m.ok(&["member", "list", ALICE]).contains("started"));
    let out = m.ctl(&["defrag", ALICE]);
    assert!(
        !out.success
            && out
                .stderr
                .contains("code = Unknown desc = auth: permission denied"),
        "{}",
        out.stderr
    );
    assert!(m.ok(&["defrag", ROOT]).contains("Finished defragmenting"));

    // A password change or deletion ends the user's tokens; the new password works.
    let out = m.ctl_stdin(
        &["user", "passwd", "alice", "--interactive=false", ROOT],
        "newpw\n",
    );
    assert_eq!(
        (out.success, out.stdout.as_str()),
        (true, "Password updated\n"),
        "{}",
        out.stderr
    );
    m.fails(
        &["get", "pre/x", ALICE],
        "etcdserver: authentication failed, invalid user ID or password",
    );
    assert_eq!(m.ok(&["get", "pre/x", "--user=alice:newpw"]), "pre/x\n1\n");
    assert_eq!(
        m.ok(&["user", "delete", "alice", ROOT]),
        "User alice deleted\n"
    );
    m.fails(
        &["get", "pre/x", "--user=alice:newpw"],
        "etcdserver: authentication failed, invalid user ID or password",
    );

    assert_eq!(
        m.ok(&["auth", "disable", ROOT]),
        "Authentication Disabled\n"
    );
    assert_eq!(m.ok(&["get", "foo"]), "foo\nbar\n");
    assert_eq!(
        m.ok(&["get", "foo", "--user=nobody:x"]),
        "foo\nbar\n",
        "credentials are ignored while auth is off"
    );
}

#[test]
fn watches_and_leases_are_checked() {
    let member = Member::start(&[]);
    let m = Ep::of(&member);
    set_up(&m);
    // etcd cancels the watch with its reason; etcdctl prints it and gives up.
    let out = m.ctl(&["watch", "foo", "--prefix", ALICE]);
    assert!(!out.success, "{}", out.stdout);
    let canceled = "watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)";
    assert!(out.stderr.contains(canceled), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Error: watch is canceled by the server"),
        "{}",
        out.stderr
    );
    // A lease holding a key alice may not write cannot be revoked, or attached, by alice.
    let lease = m.ok(&["lease", "grant", "100", ALICE]);
    assert!(
        lease.ends_with(" granted with TTL(100s)\n"),
        "anyone may grant a lease: {lease}"
    );
    let id = lease.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(m.ok(&["put", "foo", "v", "--lease", &id, ROOT]), "OK\n");
    m.fails(
        &["put", "pre/l", "v", "--lease", &id, ALICE],
        "etcdserver: permission denied",
    );
    m.fails(
        &["lease", "revoke", &id, ALICE],
        "failed to revoke lease (etcdserver: permission denied)",
    );
    // CVE-2023-32082 (fixed in etcd 3.4.26; Debian's 3.4.23 still tells anyone): a lease's
    // time to live, and its keys, only to a user who may read every key attached to it.
    let ttl = ["lease", "timetolive", &id, "--keys"];
    assert!(m
        .ok(&[&ttl[..], &[ALICE]].concat())
        .contains("attached keys([foo])"));
    assert_eq!(
        m.ok(&["put", "b", "v", "--lease", &id, ROOT]),
        "OK
"
    );
    m.fails(&ttl, "etcdserver: user name is empty");
    m.fails(
        &[&ttl[..], &[ALICE]].concat(),
        "etcdserver: permission denied",
    );
    m.fails(
        &["lease", "timetolive", &id, ALICE],
        "etcdserver: permission denied",
    );
    assert!(m
        .ok(&[&ttl[..], &[ROOT]].concat())
        .contains("attached keys([b foo])"));
    assert!(m.ok(&["lease", "revoke", &id, ROOT]).contains("revoked"));
}

#[test]
fn auth_survives_a_restart_and_is_the_same_on_every_member() {
    let member = Member::start(&[]);
    set_up(&Ep::of(&member));
    let dir = member.stop_keeping_data().unwrap();
    let member = Member::start_in(&dir.path().join("data"), &[]);
    let m = Ep::of(&member);
    m.fails(&["get", "foo"], "etcdserver: user name is empty");
    assert_eq!(m.ok(&["put", "pre/a", "1", ALICE]), "OK\n");
    assert_eq!(m.ok(&["role", "get", "reader", ROOT]), READER);
    drop(dir);

    // Three members: set up through one, used through every one (tokens are replicated).
    let c = Cluster::start(3, &[]);
    set_up(&Ep(c.endpoint(0)));
    for i in 0..3 {
        let m = Ep(c.endpoint(i));
        m.fails(&["get", "foo"], "etcdserver: user name is empty");
        assert_eq!(m.ok(&["put", "pre/a", &i.to_string(), ALICE]), "OK\n");
        m.fails(&["put", "foo", "x", ALICE], "etcdserver: permission denied");
        assert_eq!(m.ok(&["role", "get", "reader", ROOT]), READER);
    }
}
