//! A fixed-size set of operation indices: the "which ops are already linearized" half of the
//! search's memo key. A plain boxed slice of words, so that cloning and hashing it cost one pass
//! over `n / 64` words.

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Bitset(Box<[u64]>);

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Bitset(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    pub(crate) fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether every member of `self` is in `other` (of the same size).
    pub(crate) fn is_subset(&self, other: &Bitset) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::Bitset;

    #[test]
    fn set_clear_with() {
        let mut b = Bitset::new(130);
        b.set(0);
        b.set(129);
        assert!(b.contains(0) && b.contains(129) && !b.contains(64));
        let mut c = b.clone();
        c.set(64);
        assert!(c.contains(64) && !b.contains(64));
        b.clear(129);
        assert!(!b.contains(129));
        assert_ne!(b, c);
        assert!(b.is_subset(&c) && !c.is_subset(&b));
    }
}
