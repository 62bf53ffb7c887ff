//! Crash safety: a child process writes in a loop (puts, txns, deletes, lease grants, compactions)
//! and is SIGKILLed at a random moment, many times over one data directory. After each kill the
//! store reopens and every write the child had acknowledged is there, the revision never goes back,
//! and the state is one the writes could have produced.
//!
//! The child is this same test binary, re-run with `BALLAST_CRASH_DIR` set.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ballast_store::*;
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "BALLAST_CRASH_DIR";

fn options() -> StoreOptions {
    StoreOptions {
        expire_leases: false,
        ..StoreOptions::default()
    }
}

/// The child: write forever, printing `ack <n> <revision>` after each write `n` returns.
/// Write n puts key `k<n>` = `<n>` (with a txn or a lease now and then); every 50th also deletes
/// the key of write n-25 and every 200th compacts, so the data has history, deletions and gaps.
#[test]
#[ignore = "run only as the crash test's child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = DiskStore::open(&dir, options()).unwrap();
    let mut n = std::env::var("BALLAST_CRASH_NEXT")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    loop {
        let rev = write_one(&store, n);
        println!("ack {n} {rev}");
        n += 1;
    }
}

/// Write `n` of the child's sequence; returns the revision it ended at.
fn write_one(store: &DiskStore, n: u64) -> i64 {
    let key = format!("k{n:08}");
    let mut rev = match n % 7 {
        0 => {
            let cmp = Compare::new(key.clone(), CompareResult::Equal, CompareTarget::Version(0));
            let op = RequestOp::Put(PutRequest::new(key.clone(), n.to_string()));
            let t = TxnRequest {
                compare: vec![cmp],
                success: vec![op],
                failure: vec![],
            };
            store.txn(t).unwrap().revision
        }
        3 => {
            let (lease, _) = store.lease_grant(0, 3600).unwrap();
            store
                .put(PutRequest {
                    lease,
                    ..PutRequest::new(key.clone(), n.to_string())
                })
                .unwrap()
                .revision
        }
        _ => {
            store
                .put(PutRequest::new(key.clone(), n.to_string()))
                .unwrap()
                .revision
        }
    };
    if n.is_multiple_of(50) && n >= 25 {
        rev = store
            .delete_range(DeleteRangeRequest::key(format!("k{:08}", n - 25)))
            .unwrap()
            .revision;
    }
    if n.is_multiple_of(200) {
        let _ = store.compact(rev - 100);
    }
    rev
}

/// The write that deletes key `n`, if any: write m deletes key m-25 when m % 50 == 0.
fn deleter(n: u64) -> Option<u64> {
    (n + 25).is_multiple_of(50).then_some(n + 25)
}

/// Checks a reopened store against what the child acknowledged: writes up to `last_n` (except
/// those in `in_flight`, never acknowledged) at revision `acked_rev`, after a previous reopen at
/// `last_rev`. Returns the store's revision.
fn verify(
    store: &DiskStore,
    last_n: u64,
    acked_rev: i64,
    last_rev: i64,
    in_flight: &BTreeSet<u64>,
) -> Result<i64, String> {
    let rev = store.revision();
    if rev < acked_rev {
        return Err(format!("revision {rev} is behind acknowledged {acked_rev}"));
    }
    if rev < last_rev {
        return Err(format!("revision went back from {last_rev} to {rev}"));
    }
    let all = store
        .range(&RangeRequest::prefix("k"))
        .map_err(|e| e.to_string())?;
    let present: BTreeMap<u64, String> = all
        .kvs
        .iter()
        .map(|kv| {
            let n: u64 = std::str::from_utf8(&kv.key[1..]).unwrap().parse().unwrap();
            (n, String::from_utf8(kv.value.to_vec()).unwrap())
        })
        .collect();
    for n in 0..=last_n {
        if in_flight.contains(&n) {
            continue; // killed before it was acknowledged: may or may not be there
        }
        let (want, what) = match deleter(n) {
            // Its deletion was acknowledged: it must be gone.
            Some(m) if m <= last_n && !in_flight.contains(&m) => (None, "delete"),
            // Its deletion was in flight: either way is right.
            Some(m) if m <= last_n + 1 || in_flight.contains(&m) => continue,
            _ => (Some(n.to_string()), "write"),
        };
        if present.get(&n) != want.as_ref() {
            return Err(format!("acknowledged {what} of key {n} lost"));
        }
    }
    // Nothing beyond the one write that may have been in flight when the child died.
    if let Some(n) = present.keys().find(|&&n| n > last_n + 1) {
        return Err(format!("write {n} appeared but was never made"));
    }
    // The history is readable at every retained revision up to now.
    let compacted = store.compact_revision();
    for at in [compacted.max(1), (compacted + rev) / 2, rev] {
        store
            .range(&RangeRequest {
                revision: at,
                ..RangeRequest::prefix("k")
            })
            .map_err(|e| format!("read at {at}: {e}"))?;
    }
    Ok(rev)
}

/// The checker must be able to fail: a lost write, a lost delete and a revision behind the
/// acknowledged one are each reported.
#[test]
fn verify_catches_planted_losses() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path(), options()).unwrap();
    let mut rev = 0;
    for n in 0..=120 {
        rev = write_one(&store, n);
    }
    let none = BTreeSet::new();
    assert_eq!(verify(&store, 120, rev, 0, &none), Ok(store.revision()));
    assert!(verify(&store, 120, rev + 1, 0, &none)
        .unwrap_err()
        .contains("behind acknowledged"));
    assert!(verify(&store, 120, rev, rev + 5, &none)
        .unwrap_err()
        .contains("went back"));
    // Behind the checker's back: lose write 60, and resurrect key 75 (deleted by write 100).
    store
        .delete_range(DeleteRangeRequest::key("k00000060"))
        .unwrap();
    assert_eq!(
        verify(&store, 120, rev, 0, &none).unwrap_err(),
        "acknowledged write of key 60 lost"
    );
    store.put(PutRequest::new("k00000060", "60")).unwrap();
    store.put(PutRequest::new("k00000075", "75")).unwrap();
    assert_eq!(
        verify(&store, 120, rev, 0, &none).unwrap_err(),
        "acknowledged delete of key 75 lost"
    );
    store
        .delete_range(DeleteRangeRequest::key("k00000075"))
        .unwrap();
    store.put(PutRequest::new("k00000200", "200")).unwrap();
    assert!(verify(&store, 120, rev, 0, &none)
        .unwrap_err()
        .contains("never made"));
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut next: u64 = 0;
    let mut last_rev = 1;
    let mut total_acked = 0;
    let mut in_flight = BTreeSet::new();
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("BALLAST_CRASH_NEXT", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ack ") {
                    let mut it = rest.split(' ').map(|x| x.parse::<i64>().unwrap());
                    let _ = tx.send((it.next().unwrap() as u64, it.next().unwrap()));
                }
            }
        });
        // Let it write for a while (at least one write), then kill it mid-flight.
        let run_for = Duration::from_millis(rng.gen_range(20..400));
        let started = Instant::now();
        let mut acks = vec![rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never wrote")];
        while started.elapsed() < run_for {
            if let Ok(a) = rx.recv_timeout(Duration::from_millis(5)) {
                acks.push(a);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acks.extend(rx.try_iter());
        let (last_n, acked_rev) = *acks.last().unwrap();
        total_acked += acks.len();

        let store = DiskStore::open(dir.path(), options()).unwrap();
        let rev = verify(&store, last_n, acked_rev, last_rev, &in_flight)
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        drop(store);
        // The next child resumes after the write that may or may not have landed.
        in_flight.insert(last_n + 1);
        next = last_n + 2;
        last_rev = rev;
    }
    println!("crash: {cycles} SIGKILL cycles, {total_acked} acknowledged writes, 0 lost, 0 revision regressions");
}
