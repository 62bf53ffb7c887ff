//! Facts about a history that every check needs, computed once.
//!
//! Values are unique per history, so a value identifies the write that produced it: a read that
//! returns value `v` read the write of `v`. That is what lets a write whose outcome is unknown
//! (the client never heard back) be pinned down when anyone later observes its value: it took
//! effect, at the `mod_revision` the observer saw. This module records, for each value, its
//! writer, and for each writer, the first key-value pair observed with its value.

use std::collections::HashMap;

use crate::history::{Input, Kv, Operation, Output};
use crate::result::Unsupported;

/// The indexed history. Op indices are positions in the slice given to the checker.
#[derive(Debug)]
pub(crate) struct Index<'a> {
    pub(crate) ops: &'a [Operation],
    /// Ops that were not rejected, in recorded order: the only ones any check looks at.
    pub(crate) live: Vec<usize>,
    /// Value -> the Put or Cas that wrote it. A Cas counts unless it is known to have failed.
    writer: HashMap<&'a [u8], usize>,
    /// Writer -> the first key-value pair any response showed with its value.
    seen: HashMap<usize, &'a Kv>,
    /// Lease -> the one key Put requests attached it to.
    lease_key: HashMap<i64, &'a [u8]>,
}

impl<'a> Index<'a> {
    /// Indexes `ops`, refusing histories that break the checker's assumptions: outputs that do
    /// not answer their input, returns before calls, repeated values, a lease on two keys.
    pub(crate) fn build(ops: &'a [Operation]) -> Result<Self, Unsupported> {
        let mut index = Index {
            ops,
            live: Vec::new(),
            writer: HashMap::new(),
            seen: HashMap::new(),
            lease_key: HashMap::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            if !op.output.answers(&op.input) {
                return Err(Unsupported::MismatchedOutput { index: i });
            }
            match op.output {
                Output::Rejected => continue,
                Output::Unknown => {}
                _ if op.ret < op.call => return Err(Unsupported::ReturnBeforeCall { index: i }),
                _ => {}
            }
            index.live.push(i);
            index.add_writer(i, op)?;
            index.add_lease(op)?;
        }
        for &i in &index.live {
            for kv in ops[i].output.observed() {
                if let Some(&w) = index.writer.get(kv.value.as_slice()) {
                    index.seen.entry(w).or_insert(kv);
                }
            }
        }
        Ok(index)
    }

    fn add_writer(&mut self, i: usize, op: &'a Operation) -> Result<(), Unsupported> {
        let failed_cas = matches!(
            op.output,
            Output::Cas {
                succeeded: false,
                ..
            }
        );
        let Some(value) = op.input.written_value() else {
            return Ok(());
        };
        if failed_cas {
            return Ok(());
        }
        if let Some(&first) = self.writer.get(value) {
            return Err(Unsupported::DuplicateValue {
                value: value.to_vec(),
                first,
                second: i,
            });
        }
        self.writer.insert(value, i);
        Ok(())
    }

    fn add_lease(&mut self, op: &'a Operation) -> Result<(), Unsupported> {
        let Input::Put { key, lease, .. } = &op.input else {
            return Ok(());
        };
        if *lease == 0 {
            return Ok(());
        }
        match self.lease_key.get(lease) {
            Some(first) if *first != key.as_slice() => Err(Unsupported::LeaseOnSeveralKeys {
                lease: *lease,
                first: first.to_vec(),
                second: key.clone(),
            }),
            Some(_) => Ok(()),
            None => {
                self.lease_key.insert(*lease, key);
                Ok(())
            }
        }
    }

    /// The op that wrote `value`, if any write (successful or of unknown outcome) did.
    pub(crate) fn writer(&self, value: &[u8]) -> Option<usize> {
        self.writer.get(value).copied()
    }

    /// The first key-value pair observed with the value written by op `writer`.
    pub(crate) fn seen(&self, writer: usize) -> Option<&'a Kv> {
        self.seen.get(&writer).copied()
    }

    /// The key the lease was attached to, if a Put attached it to one.
    pub(crate) fn lease_key(&self, lease: i64) -> Option<&'a [u8]> {
        self.lease_key.get(&lease).copied()
    }

    /// The revision op `i` created, if it is a write known to have taken effect at a known
    /// revision: an acknowledged Put, successful Cas or Delete that deleted something, or a Put or
    /// Cas of unknown outcome whose value was observed. Revokes are left out: whether one deleted
    /// anything is only known to the per-key search.
    pub(crate) fn write_revision(&self, i: usize) -> Option<i64> {
        let op = &self.ops[i];
        match (&op.input, &op.output) {
            (Input::Put { .. }, Output::Put { revision })
            | (
                Input::Cas { .. },
                Output::Cas {
                    succeeded: true,
                    revision,
                    ..
                },
            ) => Some(*revision),
            (Input::Delete { .. }, Output::Delete { deleted, revision }) if *deleted > 0 => {
                Some(*revision)
            }
            (Input::Put { .. } | Input::Cas { .. }, Output::Unknown) => {
                self.seen(i).map(|kv| kv.mod_revision)
            }
            _ => None,
        }
    }

    /// The key an op belongs to for reports: its own key, a range's start, or a revoked lease's
    /// key (empty when there is none).
    pub(crate) fn report_key(&self, i: usize) -> Vec<u8> {
        match &self.ops[i].input {
            Input::Range { start, .. } => start.clone(),
            Input::LeaseRevoke { lease } | Input::LeaseGrant { lease } => {
                self.lease_key(*lease).unwrap_or_default().to_vec()
            }
            input => input.key().unwrap_or_default().to_vec(),
        }
    }
}

/// A problem found by one of the checks, in terms of op indices, before it is turned into a
/// [`LinResult::Violation`](crate::LinResult::Violation) carrying copies of the ops.
#[derive(Debug)]
pub(crate) struct Finding {
    pub(crate) key: Vec<u8>,
    pub(crate) reason: String,
    pub(crate) ops: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::Index;
    use crate::history::{Input, Kv, Operation, Output};
    use crate::result::Unsupported;

    fn op(input: Input, output: Output) -> Operation {
        Operation {
            client: 0,
            input,
            output,
            call: 1,
            ret: 2,
        }
    }

    fn put(key: &str, value: &str, lease: i64) -> Input {
        Input::Put {
            key: key.into(),
            value: value.into(),
            lease,
        }
    }

    #[test]
    fn unknown_write_takes_the_observed_revision() {
        let kv = Kv {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            create_revision: 7,
            mod_revision: 7,
            version: 1,
            lease: 0,
        };
        let ops = [
            op(put("k", "v", 0), Output::Unknown),
            op(
                Input::Get { key: "k".into() },
                Output::Get {
                    kv: Some(kv),
                    revision: 9,
                },
            ),
        ];
        let index = Index::build(&ops).unwrap();
        assert_eq!(index.write_revision(0), Some(7));
        assert_eq!(index.write_revision(1), None);
    }

    #[test]
    fn refuses_what_it_cannot_judge() {
        let dup = [
            op(put("a", "v", 0), Output::Put { revision: 2 }),
            op(put("b", "v", 0), Output::Unknown),
        ];
        assert!(matches!(
            Index::build(&dup),
            Err(Unsupported::DuplicateValue { .. })
        ));
        let lease = [
            op(put("a", "v1", 5), Output::Put { revision: 2 }),
            op(put("b", "v2", 5), Output::Put { revision: 3 }),
        ];
        assert!(matches!(
            Index::build(&lease),
            Err(Unsupported::LeaseOnSeveralKeys { lease: 5, .. })
        ));
        let mismatched = [op(put("a", "v", 0), Output::LeaseGrant { revision: 1 })];
        assert!(matches!(
            Index::build(&mismatched),
            Err(Unsupported::MismatchedOutput { index: 0 })
        ));
        // A rejected op takes no part, even with a repeated value.
        let rejected = [
            op(put("a", "v", 0), Output::Rejected),
            op(put("a", "v", 0), Output::Put { revision: 2 }),
        ];
        assert_eq!(Index::build(&rejected).unwrap().live, vec![1]);
    }
}
