//! Ballast's orchestrator: a Kubernetes API server (kube-apiserver's semantics) on the store.
//!
//! Dependencies point one way: this crate uses `ballast-server` (only in the stacked storage
//! adapter) and `ballast-proto`; nothing in the KV core knows of it. Everything above
//! [`storage::Storage`] runs unchanged on an embedded member or on any etcd v3 cluster.

pub mod api;
pub mod clock;
pub mod fanout;
pub mod registry;
pub mod server;
pub mod storage;
