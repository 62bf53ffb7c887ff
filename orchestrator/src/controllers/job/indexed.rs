//! Indexed completion mode helpers of the Job controller.
//!
//! Copies pkg/controller/job/indexed_job_utils.go of Kubernetes 1.32:
//! `getCompletionIndex`, `orderedIntervals` (`parseIndexesFromString`,
//! `withOrderedIndexes`, `String`, `total`, `has`), `firstPendingIndexes`,
//! `appendDuplicatedIndexPodsForRemoval` and `podGenerateNameWithIndex`.
//! `backoffLimitPerIndex` / `failedIndexes` are not supported.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::podutil::sort_active_pods;
use super::COMPLETION_INDEX_KEY;

/// `names.MaxGeneratedNameLength`: 63 minus the 5 random characters.
const MAX_GENERATED_NAME_LENGTH: usize = 58;

/// The completion index of a pod (`getCompletionIndex`): the
/// `batch.kubernetes.io/job-completion-index` annotation as a non-negative
/// integer; `None` when absent, unparsable or negative.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let v = pod
        .metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX_KEY)?;
    v.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// A sorted list of disjoint, non-adjacent closed intervals of indexes
/// (`orderedIntervals`), as in `.status.completedIndexes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<(i32, i32)>);

impl Intervals {
    /// `parseIndexesFromString`: `"1,3-5,7"` with indexes at or past
    /// `completions` dropped (an interval crossing it is cut); corrupted
    /// intervals are skipped.
    pub fn parse(s: &str, completions: i32) -> Intervals {
        let mut out: Vec<(i32, i32)> = Vec::new();
        if s.is_empty() {
            return Intervals(out);
        }
        for part in s.split(',') {
            let mut limits = part.splitn(2, '-');
            let Some(Ok(first)) = limits.next().map(str::parse::<i32>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match limits.next() {
                Some(l) => match l.parse::<i32>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.1 == first - 1 => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// `withOrderedIndexes`: the union with `indexes` (merging adjacent ones).
    pub fn with_indexes(&self, indexes: &BTreeSet<i32>) -> Intervals {
        let mut all: Vec<(i32, i32)> = self.0.clone();
        all.extend(indexes.iter().map(|&i| (i, i)));
        all.sort_unstable();
        let mut out: Vec<(i32, i32)> = Vec::new();
        for (first, last) in all {
            match out.last_mut() {
                Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// `total`: how many indexes the intervals hold.
    pub fn total(&self) -> i64 {
        self.0
            .iter()
            .map(|(f, l)| i64::from(*l) - i64::from(*f) + 1)
            .sum()
    }

    /// `has`: whether `ix` is in one of the intervals.
    pub fn has(&self, ix: i32) -> bool {
        self.0.iter().any(|(f, l)| *f <= ix && ix <= *l)
    }
}

impl std::fmt::Display for Intervals {
    /// `orderedIntervals.String`: `"1,3-5"`; a pair of adjacent indexes is
    /// written `"1,2"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, (first, last)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}")?;
            if last > first {
                let sep = if *last == first + 1 { "," } else { "-" };
                write!(f, "{sep}{last}")?;
            }
        }
        Ok(())
    }
}

/// `firstPendingIndexes`: up to `count` lowest indexes below `completions`
/// held neither by `succeeded` nor by a pod of `busy` (the active pods, plus
/// the terminating ones when only failed pods are replaced).
pub fn first_pending_indexes(
    succeeded: &Intervals,
    busy: &[Arc<Pod>],
    count: usize,
    completions: i32,
) -> Vec<i32> {
    let taken: BTreeSet<i32> = busy.iter().filter_map(|p| completion_index(p)).collect();
    let non_pending = succeeded.with_indexes(&taken);
    (0..completions.max(0))
        .filter(|i| !non_pending.has(*i))
        .take(count)
        .collect()
}

/// The active pods an Indexed Job must delete whatever its parallelism
/// (`appendDuplicatedIndexPodsForRemoval`): pods without a valid index, pods
/// with an index at or past `completions`, and for an index held by several
/// pods all but the one sorting last in `controller.ActivePods` order.
/// Returns `(remove, keep)`.
pub fn duplicated_index_pods(
    active: &[Arc<Pod>],
    completions: i32,
) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let mut rm = Vec::new();
    let mut keep = Vec::new();
    let mut by_index: std::collections::BTreeMap<i32, Vec<Arc<Pod>>> = Default::default();
    for p in active {
        match completion_index(p) {
            Some(ix) if ix < completions => by_index.entry(ix).or_default().push(Arc::clone(p)),
            _ => rm.push(Arc::clone(p)),
        }
    }
    for (_, mut pods) in by_index {
        sort_active_pods(&mut pods);
        if let Some(last) = pods.pop() {
            rm.extend(pods);
            keep.push(last);
        }
    }
    (rm, keep)
}

/// `podGenerateNameWithIndex`: `"<job>-<index>-"`, the job name cut so the
/// prefix stays within 58 characters.
pub fn generate_name_with_index(job_name: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let prefix = format!("{job_name}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME_LENGTH {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    let cut: String = job_name.chars().take(keep).collect();
    format!("{cut}{suffix}")
}
