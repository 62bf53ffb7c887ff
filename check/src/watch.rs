//! [`check_watches`]: every watch stream must be ordered, complete and true to the key-value
//! history, and all watches must agree with each other.
//!
//! Per watch, in one pass over its events: each is inside the watch's range and at or after its
//! start revision; revisions never decrease, and one revision carries at most one event per key
//! (anything else is out of order or a duplicate); each event agrees with the history (see
//! `facts`); and a key's consecutive events chain like etcd's key versions do (a put after a put
//! keeps the create revision and adds one to the version, a put after a delete starts at version
//! 1, two deletes in a row are impossible). Then, no gaps: every write known to have happened to a
//! key of the range between the first expected revision and the last event must appear. Last,
//! the same (revision, key) must be the same event in every watch.
//!
//! What a watch cannot be checked for: events after its last one (the harness stops watches at
//! arbitrary points), and, for a watch from the current revision (start revision 0), writes
//! before its first event.

mod facts;

use std::collections::{HashMap, HashSet};

use crate::history::{EventKind, Operation, Watch, WatchEvent};
use crate::index::Index;
use crate::keyrange::KeyRange;
use crate::report::Bytes;
use crate::result::WatchResult;
use facts::Facts;

/// Checks every watch against the history `ops` and against the other watches.
pub fn check_watches(ops: &[Operation], watches: &[Watch]) -> WatchResult {
    let index = match Index::build(ops) {
        Ok(index) => index,
        Err(why) => return WatchResult::Unsupported(why),
    };
    let facts = Facts::new(&index);
    // (revision, key) -> the first watch that delivered it, and the event.
    let mut delivered: HashMap<(i64, &[u8]), (usize, &WatchEvent)> = HashMap::new();
    let mut events = 0;
    for (n, watch) in watches.iter().enumerate() {
        let fail = |reason: String| WatchResult::Violation {
            watch_index: n,
            reason,
        };
        if let Err(reason) = check_one(&facts, watch) {
            return fail(reason);
        }
        for event in &watch.events {
            let at = (event.kv.mod_revision, event.kv.key.as_slice());
            match delivered.get(&at) {
                Some((first, other)) if *other != event => {
                    return fail(format!(
                        "its event at revision {} for key {} is {event:?}, but watch #{first} \
                         delivered {other:?}",
                        at.0,
                        Bytes(at.1)
                    ))
                }
                Some(_) => {}
                None => {
                    delivered.insert(at, (n, event));
                }
            }
        }
        events += watch.events.len();
    }
    WatchResult::Ok {
        watches: watches.len(),
        events,
    }
}

/// Checks one watch on its own and against the history.
fn check_one(facts: &Facts, watch: &Watch) -> Result<(), String> {
    let (Some(first), Some(last)) = (watch.events.first(), watch.events.last()) else {
        // Nothing delivered (for instance, cancelled because its start revision was compacted).
        return Ok(());
    };
    let range = KeyRange::new(&watch.start, &watch.end);
    // The revision of the previous event and the keys of the events at that revision.
    let mut current: (i64, Vec<&[u8]>) = (i64::MIN, Vec::new());
    let mut previous_of_key: HashMap<&[u8], &WatchEvent> = HashMap::new();
    // A broken version chain is reported after gaps, which usually explain it.
    let mut broken_chain: Option<String> = None;
    for (n, event) in watch.events.iter().enumerate() {
        let kv = &event.kv;
        let at = |problem: String| {
            format!(
                "event {n} ({:?} {} at revision {}): {problem}",
                event.kind,
                Bytes(&kv.key),
                kv.mod_revision
            )
        };
        if !range.contains(&kv.key) {
            return Err(at("key outside the watched range".into()));
        }
        if watch.start_revision > 0 && kv.mod_revision < watch.start_revision {
            return Err(at(format!(
                "before the start revision {}",
                watch.start_revision
            )));
        }
        if kv.mod_revision < current.0 {
            return Err(at(format!("out of order, after revision {}", current.0)));
        }
        if kv.mod_revision > current.0 {
            current = (kv.mod_revision, Vec::new());
        } else if current.1.contains(&kv.key.as_slice()) {
            return Err(at(
                "duplicate: this key already had an event at this revision".into(),
            ));
        }
        current.1.push(&kv.key);
        facts.check_event(event).map_err(&at)?;
        let previous = previous_of_key.insert(&kv.key, event);
        if broken_chain.is_none() {
            broken_chain = check_chain(previous, event).err().map(&at);
        }
    }
    // A watch from the current revision (0) is first known to be live at its first event.
    let from = match watch.start_revision {
        start if start > 0 => start,
        _ => first.kv.mod_revision,
    };
    let delivered: HashSet<(i64, &[u8])> = watch
        .events
        .iter()
        .map(|e| (e.kv.mod_revision, e.kv.key.as_slice()))
        .collect();
    let missing = facts
        .writes_between(from, last.kv.mod_revision)
        .find(|&(rev, key)| range.contains(key) && !delivered.contains(&(rev, key)));
    if let Some((rev, key)) = missing {
        return Err(format!(
            "gap: no event for the write of key {} at revision {rev}, between revisions {from} \
             and {}",
            Bytes(key),
            last.kv.mod_revision
        ));
    }
    broken_chain.map_or(Ok(()), Err)
}

/// Checks that `event` can follow `previous`, the same watch's last event for the same key. A
/// break means a missed event (a gap the history could not show, for a write of unknown outcome)
/// or a wrong version.
fn check_chain(previous: Option<&WatchEvent>, event: &WatchEvent) -> Result<(), String> {
    let kv = &event.kv;
    match (previous.map(|p| (p.kind, &p.kv)), event.kind) {
        (Some((EventKind::Delete, _)), EventKind::Delete) => {
            Err("a second delete with no put of the key in between".into())
        }
        (Some((EventKind::Delete, _)), EventKind::Put) if kv.version != 1 => Err(format!(
            "the first put after a delete has version {}, not 1",
            kv.version
        )),
        (Some((EventKind::Put, p)), EventKind::Put)
            if kv.version != p.version.saturating_add(1)
                || kv.create_revision != p.create_revision =>
        {
            Err(format!(
                "after version {} created at {}, this put has version {} created at {}",
                p.version, p.create_revision, kv.version, kv.create_revision
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "watch_test.rs"]
mod tests;
