use super::*;
use crate::scheduler::testutil::{from, node, pod};
use serde_json::json;

fn pod_with(spec: serde_json::Value) -> Pod {
    from(json!({"metadata": {"name": "p"}, "spec": spec}))
}

fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
    json!({"name": name, "resources": {"requests": {"cpu": cpu, "memory": mem}}})
}

#[test]
fn containers_are_summed_and_count_one_pod() {
    let p = pod_with(json!({"containers": [c("a", "100m", "1Mi"), c("b", "0.5", "1Mi")]}));
    let r = pod_requests(&p);
    assert_eq!((r.milli_cpu, r.memory, r.pods), (600, 2 << 20, 1));
}

#[test]
fn init_containers_take_the_max() {
    let p = pod_with(json!({
        "containers": [c("a", "100m", "100Mi")],
        "initContainers": [c("i1", "500m", "10Mi"), c("i2", "50m", "300Mi")]
    }));
    let r = pod_requests(&p);
    assert_eq!(r.milli_cpu, 500);
    assert_eq!(r.memory, 300 << 20);
}

#[test]
fn sidecar_init_containers_add_and_stack() {
    // sidecar s (200m) runs all along: regular sum = 100 + 200 = 300; the init container
    // after it needs 500 + 200 = 700, which is the max.
    let mut sidecar = c("s", "200m", "0");
    sidecar["restartPolicy"] = json!("Always");
    let p = pod_with(json!({
        "containers": [c("a", "100m", "0")],
        "initContainers": [sidecar, c("i", "500m", "0")]
    }));
    assert_eq!(pod_requests(&p).milli_cpu, 700);
    let mut sidecar2 = c("s", "200m", "0");
    sidecar2["restartPolicy"] = json!("Always");
    let p = pod_with(json!({
        "containers": [c("a", "100m", "0")],
        "initContainers": [c("i", "250m", "0"), sidecar2]
    }));
    assert_eq!(
        pod_requests(&p).milli_cpu,
        300,
        "init before the sidecar: max(250, 300)"
    );
}

#[test]
fn overhead_and_scalar_resources() {
    let p = pod_with(json!({
        "containers": [{"name": "a", "resources": {"requests": {
            "cpu": "1", "nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi", "ephemeral-storage": "1Gi",
            "example.com": "5"
        }}}],
        "overhead": {"cpu": "250m", "memory": "64Mi"}
    }));
    let r = pod_requests(&p);
    assert_eq!(r.milli_cpu, 1250);
    assert_eq!(r.memory, 64 << 20);
    assert_eq!(r.ephemeral_storage, 1 << 30);
    assert_eq!(r.scalar.get("nvidia.com/gpu"), Some(&2));
    assert_eq!(r.scalar.get("hugepages-2Mi"), Some(&(4 << 20)));
    assert!(
        !r.scalar.contains_key("example.com"),
        "no '/': not a scalar resource"
    );
}

#[test]
fn non_zero_defaults_only_for_missing_requests() {
    let none = pod("ns/a", "", "");
    let r = pod_requests_non_zero(&none);
    assert_eq!(
        (r.milli_cpu, r.memory),
        (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)
    );
    assert_eq!(pod_requests(&none).milli_cpu, 0);
    let explicit_zero = pod("ns/b", "0", "1Gi");
    let r = pod_requests_non_zero(&explicit_zero);
    assert_eq!((r.milli_cpu, r.memory), (0, 1 << 30), "explicit 0 is kept");
    let two = pod_with(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
    assert_eq!(
        pod_requests_non_zero(&two).milli_cpu,
        200,
        "default applies per container"
    );
}

#[test]
fn allocatable_falls_back_to_capacity() {
    let n = node("n", "4", "8Gi");
    let a = allocatable(&n);
    assert_eq!((a.milli_cpu, a.memory, a.pods), (4000, 8 << 30, 110));
    let cap: Node = from(json!({
        "metadata": {"name": "c"},
        "status": {"capacity": {"cpu": "2", "memory": "1Gi", "pods": "10", "nvidia.com/gpu": "1"}}
    }));
    let a = allocatable(&cap);
    assert_eq!((a.milli_cpu, a.pods), (2000, 10));
    assert_eq!(a.scalar.get("nvidia.com/gpu"), Some(&1));
    let bare: Node = from(json!({"metadata": {"name": "b"}}));
    assert_eq!(allocatable(&bare), Resources::default());
}
