//! The per-key chain rule; whole watches are tested in tests/watches.rs.

use super::check_chain;
use crate::history::{EventKind, Kv, WatchEvent};

fn event(kind: EventKind, create: i64, modified: i64, version: i64) -> WatchEvent {
    WatchEvent {
        kind,
        kv: Kv {
            key: b"k".to_vec(),
            value: Vec::new(),
            create_revision: create,
            mod_revision: modified,
            version,
            lease: 0,
        },
    }
}

#[test]
fn chain() {
    use EventKind::{Delete, Put};
    let put1 = event(Put, 2, 2, 1);
    assert!(check_chain(None, &put1).is_ok());
    assert!(check_chain(Some(&put1), &event(Put, 2, 4, 2)).is_ok());
    assert!(check_chain(Some(&put1), &event(Put, 2, 4, 3)).is_err());
    assert!(check_chain(Some(&put1), &event(Put, 4, 4, 1)).is_err());
    let delete = event(Delete, 0, 5, 0);
    assert!(check_chain(Some(&put1), &delete).is_ok());
    assert!(check_chain(Some(&delete), &event(Delete, 0, 6, 0)).is_err());
    assert!(check_chain(Some(&delete), &event(Put, 7, 7, 1)).is_ok());
    assert!(check_chain(Some(&delete), &event(Put, 2, 7, 2)).is_err());
}
