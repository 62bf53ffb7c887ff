//! Ballast's orchestrator: a Kubernetes API server (kube-apiserver's semantics) on the store,
//! and the control loops on its watches: the scheduler and the controllers (each a pure
//! decision function and a loop that watches, caches and writes), under leader elections.
//!
//! Dependencies point one way: this crate uses `ballast-server` (only in the stacked storage
//! adapter) and `ballast-proto`; nothing in the KV core knows of it. Everything above
//! [`storage::Storage`] runs unchanged on an embedded member or on any etcd v3 cluster.

pub mod agent;
pub mod api;
pub mod clock;
pub mod components;
pub mod controllers;
pub mod deletion;
pub mod election;
pub mod events;
pub mod fanout;
pub mod registry;
pub mod scheduler;
pub mod server;
pub mod storage;
