//! metav1's deletion vocabulary, shared by the API server (which holds an object with the
//! garbage collector's finalizer when a delete asks for Foreground or Orphan) and the garbage
//! collector (which honours those finalizers): one policy type, kube's, and one set of names.

pub use kube::api::PropagationPolicy;

/// `metav1.FinalizerDeleteDependents`.
pub const FOREGROUND: &str = "foregroundDeletion";
/// `metav1.FinalizerOrphanDependents`.
pub const ORPHAN: &str = "orphan";

/// The finalizer that holds an object deleted with `policy` until the garbage collector is done
/// with its dependents; none for Background (the object goes at once).
pub fn finalizer(policy: &PropagationPolicy) -> Option<&'static str> {
    match policy {
        PropagationPolicy::Background => None,
        PropagationPolicy::Foreground => Some(FOREGROUND),
        PropagationPolicy::Orphan => Some(ORPHAN),
    }
}
