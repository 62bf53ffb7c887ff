//! Pure decision cores of kube-controller-manager controllers (no I/O, no
//! clock reads), over k8s-openapi types.

pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod expectations;
pub mod gc;
pub mod hash;
pub mod job;
pub mod nodeaffinity;
pub mod nodelifecycle;
pub mod pods;
pub mod ranking;
pub mod replicaset;
pub mod run;
pub mod selector;
pub mod statefulset;

#[cfg(test)]
mod testutil;
