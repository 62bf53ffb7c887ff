//! The store's key encoding: every kv key decodes back to its (user key, revision), and byte order
//! of encoded keys is (user key ascending, revision descending, sub-revision descending).

#![no_main]

use ballast_store::encoding::{decode_kv_key, kv_key, kv_key_after, kv_key_at};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, u32, u32, Vec<u8>, u32, u32)| {
    let (k1, r1, s1, k2, r2, s2) = input;
    let (r1, r2) = (i64::from(r1), i64::from(r2));
    let a = kv_key(&k1, r1, s1);
    let b = kv_key(&k2, r2, s2);
    assert_eq!(decode_kv_key(&a).unwrap(), (k1.clone(), r1));
    assert_eq!(decode_kv_key(&b).unwrap(), (k2.clone(), r2));
    let want = k1.cmp(&k2).then(r2.cmp(&r1)).then(s2.cmp(&s1));
    assert_eq!(a.cmp(&b), want, "{k1:?}@{r1}.{s1} vs {k2:?}@{r2}.{s2}");
    // The seek positions bracket a key's versions.
    assert!(kv_key_at(&k1, r1) <= a);
    assert!(a < kv_key_after(&k1));
    if k1 < k2 {
        assert!(kv_key_after(&k1) <= b);
    }
});
