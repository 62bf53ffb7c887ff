//! etcd's key-range convention, shared by Range requests and watches: an empty `end` means the
//! single key `start`, an `end` of `"\0"` means every key from `start` on, anything else the
//! half-open interval `[start, end)` (empty when `end <= start`).

use std::collections::BTreeMap;
use std::ops::Bound;

#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRange<'a> {
    start: &'a [u8],
    end: End<'a>,
}

#[derive(Debug, Clone, Copy)]
enum End<'a> {
    Single,
    Unbounded,
    Before(&'a [u8]),
}

impl<'a> KeyRange<'a> {
    pub(crate) fn new(start: &'a [u8], end: &'a [u8]) -> Self {
        let end = match end {
            [] => End::Single,
            [0] => End::Unbounded,
            end => End::Before(end),
        };
        KeyRange { start, end }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        match self.end {
            End::Single => key == self.start,
            End::Unbounded => key >= self.start,
            End::Before(end) => key >= self.start && key < end,
        }
    }

    /// The entries of `map` whose keys are in the range, in key order. Never panics, unlike
    /// `BTreeMap::range` with bounds out of order.
    pub(crate) fn select<'m, 'k, V>(
        &self,
        map: &'m BTreeMap<&'k [u8], V>,
    ) -> impl Iterator<Item = (&'m &'k [u8], &'m V)> + 'm
    where
        'k: 'm,
    {
        let upper = match self.end {
            End::Single => Bound::Included(self.start),
            End::Unbounded => Bound::Unbounded,
            End::Before(end) if end <= self.start => Bound::Excluded(self.start),
            End::Before(end) => Bound::Excluded(end),
        };
        map.range::<[u8], _>((Bound::Included(self.start), upper))
    }
}

#[cfg(test)]
mod tests {
    use super::KeyRange;
    use std::collections::BTreeMap;

    #[test]
    fn etcd_conventions() {
        let single = KeyRange::new(b"b", b"");
        assert!(single.contains(b"b") && !single.contains(b"ba"));
        let from = KeyRange::new(b"b", b"\0");
        assert!(from.contains(b"b") && from.contains(b"zz") && !from.contains(b"a"));
        let half_open = KeyRange::new(b"b", b"d");
        assert!(half_open.contains(b"c") && !half_open.contains(b"d"));
        let empty = KeyRange::new(b"d", b"b");
        assert!(!empty.contains(b"c") && !empty.contains(b"d"));
    }

    #[test]
    fn select_never_panics() {
        let map: BTreeMap<&[u8], ()> = [(&b"a"[..], ()), (b"c", ()), (b"e", ())].into();
        let keys = |r: KeyRange| r.select(&map).map(|(k, _)| k.to_vec()).collect::<Vec<_>>();
        assert_eq!(keys(KeyRange::new(b"b", b"e")), vec![b"c".to_vec()]);
        assert_eq!(keys(KeyRange::new(b"e", b"b")), Vec::<Vec<u8>>::new());
        assert_eq!(keys(KeyRange::new(b"c", b"c")), Vec::<Vec<u8>>::new());
        assert_eq!(keys(KeyRange::new(b"c", b"")), vec![b"c".to_vec()]);
        assert_eq!(keys(KeyRange::new(b"b", b"\0")).len(), 2);
    }
}
