//! Pure decision cores of kube-controller-manager controllers (no I/O, no
//! clock reads), over k8s-openapi types.

pub mod deployment;
pub mod expectations;
pub mod pods;
pub mod ranking;
pub mod replicaset;
pub mod run;
pub mod selector;

#[cfg(test)]
mod testutil;
