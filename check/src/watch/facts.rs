//! What the key-value history says about watch events.
//!
//! A put event names its write by its unique value, so it must carry that write's key and lease,
//! the revision the write is known to have created (acknowledged, or observed by a read), and the
//! same pair as any read that showed the value. A delete event has no value; its revision must be
//! that of an acknowledged delete of the key, or else free (no known write created it) and
//! explained by a revoke of the key's lease or by a delete or revoke of unknown outcome.
//!
//! What is not checked here: the create revision and version of a value nobody read (the stream
//! chain in `watch` covers them within one watch), and which revoke deleted a key (only the
//! per-key search knows).

use std::collections::{HashMap, HashSet};

use crate::history::{EventKind, Input, Output, WatchEvent};
use crate::index::Index;
use crate::report::{Bytes, ShowKv};

#[derive(Debug)]
pub(super) struct Facts<'a> {
    index: &'a Index<'a>,
    /// Revision -> the key and kind of the write known to have created it.
    claimed: HashMap<i64, (&'a [u8], EventKind)>,
    /// Every write known to have happened, as (revision, key), sorted.
    writes: Vec<(i64, &'a [u8])>,
    /// (key, revision) of acknowledged revokes of a lease put with the key: deletes, maybe.
    revokes: HashSet<(&'a [u8], i64)>,
    /// Keys with a delete or a revoke of unknown outcome.
    unknown_deletes: HashSet<&'a [u8]>,
}

impl<'a> Facts<'a> {
    pub(super) fn new(index: &'a Index<'a>) -> Self {
        let mut facts = Facts {
            index,
            claimed: HashMap::new(),
            writes: Vec::new(),
            revokes: HashSet::new(),
            unknown_deletes: HashSet::new(),
        };
        for &i in &index.live {
            let op = &index.ops[i];
            if let (Some(revision), Some(key)) = (index.write_revision(i), op.input.key()) {
                let kind = match op.input {
                    Input::Delete { .. } => EventKind::Delete,
                    _ => EventKind::Put,
                };
                facts.claimed.entry(revision).or_insert((key, kind));
                facts.writes.push((revision, key));
            }
            match (&op.input, &op.output) {
                (Input::Delete { key }, Output::Unknown) => {
                    facts.unknown_deletes.insert(key);
                }
                (Input::LeaseRevoke { lease }, output) => {
                    let Some(key) = index.lease_key(*lease) else {
                        continue;
                    };
                    match output {
                        Output::LeaseRevoke { revision } => {
                            facts.revokes.insert((key, *revision));
                        }
                        _ => {
                            facts.unknown_deletes.insert(key);
                        }
                    }
                }
                _ => {}
            }
        }
        facts.writes.sort_unstable();
        facts
    }

    /// Every write known to have happened with a revision in `from..=to`, as (revision, key).
    pub(super) fn writes_between(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (i64, &'a [u8])> + '_ {
        let start = self.writes.partition_point(|&(rev, _)| rev < from);
        self.writes[start..]
            .iter()
            .take_while(move |&&(rev, _)| rev <= to)
            .copied()
    }

    /// Whether `event` agrees with the history; if not, why.
    pub(super) fn check_event(&self, event: &WatchEvent) -> Result<(), String> {
        match event.kind {
            EventKind::Put => self.check_put(event),
            EventKind::Delete => self.check_delete(event),
        }
    }

    fn check_put(&self, event: &WatchEvent) -> Result<(), String> {
        let kv = &event.kv;
        let Some(writer) = self.index.writer(&kv.value) else {
            return Err(format!(
                "a put of {}, a value never written",
                Bytes(&kv.value)
            ));
        };
        let input = &self.index.ops[writer].input;
        if input.key() != Some(kv.key.as_slice()) {
            return Err(format!(
                "the value was written to key {}",
                Bytes(input.key().unwrap_or_default())
            ));
        }
        if kv.lease != input.written_lease() {
            return Err(format!(
                "the value was written with lease {}",
                input.written_lease()
            ));
        }
        match self.index.write_revision(writer) {
            Some(revision) if revision != kv.mod_revision => {
                return Err(format!(
                    "the write of this value created revision {revision}"
                ));
            }
            Some(_) => {}
            None => self.check_free(kv.mod_revision, &kv.key, EventKind::Put)?,
        }
        if let Some(seen) = self.index.seen(writer) {
            if seen != kv {
                return Err(format!("a read showed this value as {}", ShowKv(seen)));
            }
        }
        let created_here = kv.create_revision == kv.mod_revision;
        if kv.version < 1
            || kv.create_revision > kv.mod_revision
            || created_here != (kv.version == 1)
        {
            return Err(format!(
                "create revision {} and version {} cannot go together",
                kv.create_revision, kv.version
            ));
        }
        Ok(())
    }

    fn check_delete(&self, event: &WatchEvent) -> Result<(), String> {
        let key = event.kv.key.as_slice();
        let revision = event.kv.mod_revision;
        if self.claimed.get(&revision) == Some(&(key, EventKind::Delete)) {
            return Ok(());
        }
        self.check_free(revision, key, EventKind::Delete)?;
        if self.revokes.contains(&(key, revision)) || self.unknown_deletes.contains(key) {
            return Ok(());
        }
        Err("no delete or lease revoke of this key has this revision".into())
    }

    /// Fails if a known write other than one of `kind` on `key` created `revision`.
    fn check_free(&self, revision: i64, key: &[u8], kind: EventKind) -> Result<(), String> {
        match self.claimed.get(&revision) {
            Some(&(other_key, other_kind)) if (other_key, other_kind) != (key, kind) => {
                Err(format!(
                    "revision {revision} was created by a {other_kind:?} of key {}",
                    Bytes(other_key)
                ))
            }
            // The same key and kind, but another write: the event's own write was unknown.
            Some(_) => Err(format!("revision {revision} was created by another write")),
            None => Ok(()),
        }
    }
}
