//! Revision checks over the whole history, across keys, run before the per-key search.
//!
//! The per-key search only ever compares revisions of one key's ops. etcd's revision is global,
//! though: one counter, bumped once per write. Two facts follow, and both are checked here in
//! O(n log n):
//!
//! - distinct: no two writes create the same revision;
//! - real time: if op A returned before op B was called, B's revision is at least A's, and
//!   strictly greater when B is a write (it creates a revision after everything A saw). This is
//!   what catches a revision going back between two sequential requests of one client, or a
//!   read served from a stale member.
//!
//! With per-key linearizability these make the whole history linearizable: each key's
//! linearization is ordered by revision, and the revisions order the keys among themselves.
//! Revokes count as reads here (whether one deleted anything is only known to the search), and an
//! op with an unknown outcome never returned, so it bounds nothing; a write of unknown outcome
//! whose value was observed still must come after what returned before it was called.

use crate::index::{Finding, Index};

/// Two writes with the same revision, if any.
pub(crate) fn check_distinct(index: &Index) -> Option<Finding> {
    let mut writes: Vec<(i64, usize)> = index
        .live
        .iter()
        .filter_map(|&i| Some((index.write_revision(i)?, i)))
        .collect();
    writes.sort_unstable();
    writes
        .windows(2)
        .find(|w| w[0].0 == w[1].0)
        .map(|w| Finding {
            key: index.report_key(w[1].1),
            reason: format!("two writes created revision {}", w[0].0),
            ops: vec![w[0].1, w[1].1],
        })
}

/// An op whose revision is below (or, for a write, not above) the revision of an op that
/// returned before it was called, if any.
pub(crate) fn check_real_time(index: &Index) -> Option<Finding> {
    // Ops that returned, by return time, with their header revision.
    let mut returned: Vec<(u64, i64, usize)> = index
        .live
        .iter()
        .filter_map(|&i| {
            let op = &index.ops[i];
            Some((op.ret, op.output.revision()?, i))
        })
        .collect();
    returned.sort_unstable();
    // Every op with a revision to check, by call time: its header revision, or for a write of
    // unknown outcome the revision it was observed to create.
    let mut called: Vec<(u64, usize, i64, bool)> = index
        .live
        .iter()
        .filter_map(|&i| {
            let op = &index.ops[i];
            let written = index.write_revision(i);
            let revision = op.output.revision().or(written)?;
            Some((op.call, i, revision, written.is_some()))
        })
        .collect();
    called.sort_unstable();

    let mut next = 0;
    // The highest revision among ops returned so far, and which op returned it.
    let mut highest: Option<(i64, usize)> = None;
    for (call, b, revision, is_write) in called {
        while let Some(&(ret, rev, a)) = returned.get(next) {
            if ret >= call {
                break;
            }
            if highest.is_none_or(|(max, _)| rev > max) {
                highest = Some((rev, a));
            }
            next += 1;
        }
        let Some((max, a)) = highest else { continue };
        if revision < max || (is_write && revision == max) {
            let what = if is_write {
                "created revision"
            } else {
                "answered at revision"
            };
            let reason = format!(
                "revision went back: an op {what} {revision}, though it was called after another \
                 had returned revision {max}"
            );
            return Some(Finding {
                key: index.report_key(b),
                reason,
                ops: vec![a, b],
            });
        }
    }
    None
}
