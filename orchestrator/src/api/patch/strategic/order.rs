//! The order of a merged list, as strategicpatch leaves it: `normalizeElementOrder` over the
//! patch's and the server's items, Go's `sort.SliceStable` (whose result for an order that is not
//! strict only Go's own algorithm gives) and the original list as Go's slice aliasing leaves it.

use serde_json::Value;

use super::{find_by_key, merge_key, split_deletions, Smp, PATCH};

/// The original list as Go's `mergePatchIntoOriginal` still sees it after merging: deletions shift
/// the rest left inside the same array and new items are appended into the slots that frees, so
/// the order server-only items are then sorted by is this one, not the original's.
pub(super) fn go_aliased_original(original: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let (mut slots, mut len) = (original.to_vec(), original.len());
    let value = |v: &Value| v.get(key).cloned();
    let directive = |p: &Value| p.get(PATCH).and_then(Value::as_str).map(str::to_owned);
    for gone in patch
        .iter()
        .filter(|p| directive(p).as_deref() == Some("delete"))
    {
        while let Some(i) = slots[..len]
            .iter()
            .position(|s| value(s).is_some() && value(s) == value(gone))
        {
            // Go's `append(s[:i], s[i+1:]...)`: the last slot keeps its old item.
            let last = slots[len - 1].clone();
            slots[i..len].rotate_left(1);
            slots[len - 1] = last;
            len -= 1;
        }
    }
    if patch
        .iter()
        .any(|p| directive(p).as_deref() == Some("replace"))
    {
        return slots;
    }
    for item in patch.iter().filter(|p| p.get(PATCH).is_none()) {
        let present = slots[..len]
            .iter()
            .any(|s| value(s).is_some() && value(s) == value(item));
        if !present && len < slots.len() {
            slots[len] = item.clone();
            len += 1;
        }
    }
    slots
}

/// Splits `merged` into the items `by` names (by key, or by value for scalars) and the others.
pub(super) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Smp<(Vec<Value>, Vec<Value>)> {
    let (mut named, mut others) = (Vec::new(), Vec::new());
    for item in merged {
        let found = if key.is_empty() {
            by.contains(&item)
        } else {
            find_by_key(by, key, merge_key(&item, key)?)?.is_some()
        };
        (if found { &mut named } else { &mut others }).push(item);
    }
    Ok((named, others))
}

/// `normalizeElementOrder`: the patch's items in the patch's order, the server's in the server's,
/// then interleaved: a server item goes first only when the server had it before the patch item.
pub(super) fn normalize_order(
    patch_items: Vec<Value>,
    server_items: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    maps: bool,
) -> Smp<Vec<Value>> {
    let patch_items = sort_by_order(patch_items, patch_order, key, maps)?;
    let server_items = sort_by_order(server_items, server_order, key, maps)?;
    let at = |v: &Value| position(server_order, v, key, maps);
    let mut out = Vec::with_capacity(patch_items.len() + server_items.len());
    let (mut left, mut right) = (
        server_items.into_iter().peekable(),
        patch_items.into_iter().peekable(),
    );
    while left.peek().is_some() || right.peek().is_some() {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!((at(l), at(r)), (Some(li), Some(ri)) if li < ri),
            (l, _) => l.is_some(),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(out)
}

/// `normalizeSliceOrder`: a stable sort by position in `order`, `$patch: delete` items last.
fn sort_by_order(items: Vec<Value>, order: &[Value], key: &str, maps: bool) -> Smp<Vec<Value>> {
    let (items, deleted) = if maps {
        for item in items.iter().chain(order) {
            merge_key(item, key)?;
        }
        split_deletions(items)?
    } else {
        (items, Vec::new())
    };
    let mut ranked: Vec<(Option<usize>, Value)> = items
        .into_iter()
        .map(|v| (position(order, &v, key, maps), v))
        .collect();
    // Go holds an item missing from `order` as less than any other, which is no strict order:
    // only Go's own algorithm gives Go's result then.
    go_stable_sort(&mut ranked, |a, b| match (a.0, b.0) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    });
    Ok(ranked.into_iter().map(|(_, v)| v).chain(deleted).collect())
}

/// Where `item` is in `list`: by merge key for maps (a missing or null key being Go's nil).
fn position(list: &[Value], item: &Value, key: &str, maps: bool) -> Option<usize> {
    let of = |v: &Value| {
        if maps {
            v.get(key).filter(|v| !v.is_null()).cloned()
        } else {
            Some(v.clone())
        }
    };
    let wanted = of(item);
    list.iter().position(|v| of(v) == wanted)
}

/// Go's `sort.SliceStable`: insertion sorts of 20-item blocks, then `symMerge` of the blocks.
fn go_stable_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool + Copy) {
    let (n, mut block) = (v.len(), 20);
    let insertion = |v: &mut [T], a: usize, b: usize| {
        for i in a + 1..b {
            let mut j = i;
            while j > a && less(&v[j], &v[j - 1]) {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
    };
    let mut a = 0;
    while a + block <= n {
        insertion(v, a, a + block);
        a += block;
    }
    insertion(v, a, n);
    while block < n {
        let mut a = 0;
        while a + 2 * block <= n {
            sym_merge(v, a, a + block, a + 2 * block, less);
            a += 2 * block;
        }
        if a + block < n {
            sym_merge(v, a, a + block, n, less);
        }
        block *= 2;
    }
}

/// Go's `symMerge`: merges the sorted runs `v[a..m]` and `v[m..b]` in place.
fn sym_merge<T>(v: &mut [T], a: usize, m: usize, b: usize, less: impl Fn(&T, &T) -> bool + Copy) {
    let search = |mut i: usize, mut j: usize, go_right: &dyn Fn(usize) -> bool| {
        while i < j {
            let h = (i + j) / 2;
            if go_right(h) {
                i = h + 1
            } else {
                j = h
            }
        }
        i
    };
    if m - a == 1 {
        let i = search(m, b, &|h| less(&v[h], &v[a]));
        v[a..i].rotate_left(1);
        return;
    }
    if b - m == 1 {
        let i = search(a, m, &|h| !less(&v[m], &v[h]));
        v[i..=m].rotate_right(1);
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (start, r) = if m > mid { (n - b, mid) } else { (a, m) };
    let start = search(start, r, &|c| !less(&v[n - 1 - c], &v[c]));
    let end = n - start;
    if start < m && m < end {
        v[start..end].rotate_left(m - start);
    }
    if a < start && start < mid {
        sym_merge(v, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(v, mid, end, b, less);
    }
}
