//! Checks of each response on its own, before any search: every value a read returned was
//! written, to the key it was read from; a range's answer is sorted, without repeats, and inside
//! the range; a single-key delete deleted at most one key. These are cheap, and they give a much
//! clearer report than the search would ("read of a value never written" rather than "no
//! linearization").

use crate::history::{Input, Output};
use crate::index::{Finding, Index};
use crate::keyrange::KeyRange;
use crate::report::{Bytes, ShowKv};

/// The first response that is wrong on its own, if any.
pub(crate) fn check(index: &Index) -> Option<Finding> {
    index.live.iter().find_map(|&i| check_one(index, i))
}

fn check_one(index: &Index, i: usize) -> Option<Finding> {
    let op = &index.ops[i];
    let finding = |key: &[u8], reason: String, ops: Vec<usize>| Finding {
        key: key.to_vec(),
        reason,
        ops,
    };
    if let Some(problem) = check_shape(&op.input, &op.output) {
        return Some(finding(&index.report_key(i), problem, vec![i]));
    }
    for kv in op.output.observed() {
        let Some(w) = index.writer(&kv.value) else {
            let reason = format!("read of a value never written: {}", ShowKv(kv));
            return Some(finding(&kv.key, reason, vec![i]));
        };
        let written_to = index.ops[w].input.key().unwrap_or_default();
        if written_to != kv.key.as_slice() {
            let reason = format!(
                "{} was read from key {} but written to key {}",
                Bytes(&kv.value),
                Bytes(&kv.key),
                Bytes(written_to)
            );
            return Some(finding(&kv.key, reason, vec![w, i]));
        }
    }
    None
}

/// What is wrong with the form of one answer, if anything.
fn check_shape(input: &Input, output: &Output) -> Option<String> {
    match (input, output) {
        (Input::Get { key }, Output::Get { kv: Some(kv), .. })
        | (Input::Cas { key, .. }, Output::Cas { kv: Some(kv), .. })
            if kv.key != *key =>
        {
            Some(format!(
                "a read of key {} returned key {}",
                Bytes(key),
                Bytes(&kv.key)
            ))
        }
        (Input::Delete { .. }, Output::Delete { deleted, .. }) if !(0..=1).contains(deleted) => {
            Some(format!(
                "a delete of one key reports {deleted} keys deleted"
            ))
        }
        (Input::Range { start, end }, Output::Range { kvs, .. }) => {
            let range = KeyRange::new(start, end);
            if let Some(kv) = kvs.iter().find(|kv| !range.contains(&kv.key)) {
                return Some(format!("returned key {} outside the range", Bytes(&kv.key)));
            }
            kvs.windows(2)
                .find(|pair| pair[0].key >= pair[1].key)
                .map(|pair| {
                    format!(
                        "keys not in strictly ascending order: {} then {}",
                        Bytes(&pair[0].key),
                        Bytes(&pair[1].key)
                    )
                })
        }
        _ => None,
    }
}
