//! Shared helpers for the store's integration tests: opening a store on either backend, and the
//! macro that runs one test body against both.

#![allow(dead_code)]

use std::sync::Arc;

use ballast_store::backend::{Backend, MemoryBackend, RocksBackend};
use ballast_store::{ManualClock, Store, StoreOptions};

/// A store under test plus what keeps it alive (its directory) and its clock.
pub struct Harness<B: Backend> {
    pub store: Store<B>,
    pub clock: ManualClock,
    pub dir: Option<tempfile::TempDir>,
    pub opts: StoreOptions,
}

pub fn test_options(clock: &ManualClock) -> StoreOptions {
    StoreOptions {
        sync: false,
        clock: Arc::new(clock.clone()),
        expire_leases: false,
        rocks: ballast_store::backend::RocksOptions {
            block_cache_bytes: 8 << 20,
            write_buffer_bytes: 4 << 20,
        },
        ..StoreOptions::default()
    }
}

pub trait Open: Backend + Sized {
    fn harness(opts: impl FnOnce(&mut StoreOptions)) -> Harness<Self>;
    /// Closes and reopens the store (a no-op for memory, which cannot survive).
    fn reopen(h: Harness<Self>) -> Harness<Self>;
}

impl Open for MemoryBackend {
    fn harness(f: impl FnOnce(&mut StoreOptions)) -> Harness<Self> {
        let clock = ManualClock::default();
        let mut opts = test_options(&clock);
        f(&mut opts);
        let store = Store::in_memory(opts.clone()).unwrap();
        Harness {
            store,
            clock,
            dir: None,
            opts,
        }
    }
    fn reopen(h: Harness<Self>) -> Harness<Self> {
        h
    }
}

impl Open for RocksBackend {
    fn harness(f: impl FnOnce(&mut StoreOptions)) -> Harness<Self> {
        let clock = ManualClock::default();
        let mut opts = test_options(&clock);
        f(&mut opts);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts.clone()).unwrap();
        Harness {
            store,
            clock,
            dir: Some(dir),
            opts,
        }
    }
    fn reopen(h: Harness<Self>) -> Harness<Self> {
        let Harness {
            store,
            clock,
            dir,
            opts,
        } = h;
        drop(store);
        let store = Store::open(dir.as_ref().unwrap().path(), opts.clone()).unwrap();
        Harness {
            store,
            clock,
            dir,
            opts,
        }
    }
}

/// Runs each listed generic test function `fn name<B: Open>()` once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$name::<ballast_store::backend::MemoryBackend>() } )*
        }
        mod rocksdb {
            $( #[test] fn $name() { super::$name::<ballast_store::backend::RocksBackend>() } )*
        }
    };
}
