//! The column definitions of each resource's Table, as printers.go registers them. Descriptions
//! are the Go types' SwaggerDoc texts (k8s.io/api v0.32), including the beta types printers.go
//! names.

use self::doc::*;
use super::Col;

const NAME: Col = ("Name", "string", NAME_DOC, 0);
const AGE: Col = ("Age", "string", AGE_DOC, 0);
const CONTAINERS: Col = (
    "Containers",
    "string",
    "Names of each container in the template.",
    1,
);
#[rustfmt::skip]
const IMAGES: Col = ("Images", "string", "Images referenced by each container in the template.", 1);
const READY_PODS: &str = "Number of the pod with ready state";

pub(super) const DEFAULT_COLUMNS: &[Col] = &[NAME, ("Created At", "date", AGE_DOC, 0)];
#[rustfmt::skip]
pub(super) const POD_COLUMNS: &[Col] = &[
    NAME,
    ("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
    ("Status", "string", "The aggregate status of the containers in this pod.", 0),
    ("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
    AGE,
    ("IP", "string", POD_IP, 1),
    ("Node", "string", POD_NODE_NAME, 1),
    ("Nominated Node", "string", POD_NOMINATED_NODE, 1),
    ("Readiness Gates", "string", POD_READINESS_GATES, 1),
];
pub(super) const NAMESPACE_COLUMNS: &[Col] = &[
    NAME,
    ("Status", "string", "The status of the namespace", 0),
    AGE,
];
#[rustfmt::skip]
pub(super) const NODE_COLUMNS: &[Col] = &[
    NAME, ("Status", "string", "The status of the node", 0), ("Roles", "string", "The roles of the node", 0), AGE,
    ("Version", "string", NODE_KUBELET_VERSION, 0), ("Internal-IP", "string", NODE_ADDRESSES, 1),
    ("External-IP", "string", NODE_ADDRESSES, 1), ("OS-Image", "string", NODE_OS_IMAGE, 1),
    ("Kernel-Version", "string", NODE_KERNEL_VERSION, 1), ("Container-Runtime", "string", NODE_CONTAINER_RUNTIME, 1),
];
#[rustfmt::skip]
pub(super) const SERVICE_COLUMNS: &[Col] = &[
    NAME, ("Type", "string", SVC_TYPE, 0), ("Cluster-IP", "string", SVC_CLUSTER_IP, 0),
    ("External-IP", "string", SVC_EXTERNAL_IPS, 0), ("Port(s)", "string", SVC_PORTS, 0), AGE,
    ("Selector", "string", SVC_SELECTOR, 1),
];
pub(super) const ENDPOINTS_COLUMNS: &[Col] =
    &[NAME, ("Endpoints", "string", ENDPOINTS_SUBSETS, 0), AGE];
#[rustfmt::skip]
pub(super) const EVENT_COLUMNS: &[Col] = &[
    ("Last Seen", "string", EVENT_LAST_TIMESTAMP, 0), ("Type", "string", EVENT_TYPE, 0),
    ("Reason", "string", EVENT_REASON, 0), ("Object", "string", EVENT_INVOLVED_OBJECT, 0),
    ("Subobject", "string", EVENT_FIELD_PATH, 1), ("Source", "string", EVENT_SOURCE, 1),
    ("Message", "string", EVENT_MESSAGE, 0), ("First Seen", "string", EVENT_FIRST_TIMESTAMP, 1),
    ("Count", "string", EVENT_COUNT, 1), ("Name", "string", NAME_DOC, 1),
];
pub(super) const CONFIGMAP_COLUMNS: &[Col] = &[NAME, ("Data", "string", CONFIGMAP_DATA, 0), AGE];
pub(super) const SECRET_COLUMNS: &[Col] = &[
    NAME,
    ("Type", "string", SECRET_TYPE, 0),
    ("Data", "string", SECRET_DATA, 0),
    AGE,
];
pub(super) const SERVICE_ACCOUNT_COLUMNS: &[Col] =
    &[NAME, ("Secrets", "string", SA_SECRETS, 0), AGE];
#[rustfmt::skip]
pub(super) const PV_COLUMNS: &[Col] = &[
    NAME, ("Capacity", "string", PV_CAPACITY, 0), ("Access Modes", "string", PV_ACCESS_MODES, 0),
    ("Reclaim Policy", "string", PV_RECLAIM_POLICY, 0), ("Status", "string", PV_PHASE, 0),
    ("Claim", "string", PV_CLAIM, 0), ("StorageClass", "string", "StorageClass of the pv", 0),
    ("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv", 0), ("Reason", "string", PV_REASON, 0),
    AGE, ("VolumeMode", "string", PV_VOLUME_MODE, 1),
];
#[rustfmt::skip]
pub(super) const PVC_COLUMNS: &[Col] = &[
    NAME, ("Status", "string", PVC_PHASE, 0), ("Volume", "string", PVC_VOLUME_NAME, 0),
    ("Capacity", "string", PVC_CAPACITY, 0), ("Access Modes", "string", PVC_ACCESS_MODES, 0),
    ("StorageClass", "string", "StorageClass of the pvc", 0),
    ("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc", 0), AGE,
    ("VolumeMode", "string", PVC_VOLUME_MODE, 1),
];
#[rustfmt::skip]
pub(super) const DEPLOYMENT_COLUMNS: &[Col] = &[
    NAME, ("Ready", "string", READY_PODS, 0), ("Up-to-date", "string", DEPLOY_UPDATED, 0),
    ("Available", "string", DEPLOY_AVAILABLE, 0), AGE, CONTAINERS, IMAGES, ("Selector", "string", DEPLOY_SELECTOR, 1),
];
#[rustfmt::skip]
pub(super) const REPLICA_SET_COLUMNS: &[Col] = &[
    NAME, ("Desired", "integer", RS_SPEC_REPLICAS, 0), ("Current", "integer", RS_STATUS_REPLICAS, 0),
    ("Ready", "integer", RS_READY_REPLICAS, 0), AGE, CONTAINERS, IMAGES, ("Selector", "string", RS_SELECTOR, 1),
];
pub(super) const STATEFUL_SET_COLUMNS: &[Col] = &[
    NAME,
    ("Ready", "string", READY_PODS, 0),
    AGE,
    CONTAINERS,
    IMAGES,
];
#[rustfmt::skip]
pub(super) const DAEMON_SET_COLUMNS: &[Col] = &[
    NAME, ("Desired", "integer", DS_DESIRED, 0), ("Current", "integer", DS_CURRENT, 0),
    ("Ready", "integer", DS_READY, 0), ("Up-to-date", "integer", DS_UPDATED, 0),
    ("Available", "integer", DS_AVAILABLE, 0), ("Node Selector", "string", POD_NODE_SELECTOR, 0), AGE,
    CONTAINERS, IMAGES, ("Selector", "string", DS_SELECTOR, 1),
];
#[rustfmt::skip]
pub(super) const JOB_COLUMNS: &[Col] = &[
    NAME, ("Status", "string", "Status of the job.", 0), ("Completions", "string", JOB_SUCCEEDED, 0),
    ("Duration", "string", "Time required to complete the job.", 0), AGE, CONTAINERS, IMAGES,
    ("Selector", "string", JOB_SELECTOR, 1),
];
#[rustfmt::skip]
pub(super) const HPA_COLUMNS: &[Col] = &[
    NAME, ("Reference", "string", HPA_REFERENCE, 0), ("Targets", "string", HPA_METRICS, 0),
    ("MinPods", "string", HPA_MIN, 0), ("MaxPods", "string", HPA_MAX, 0),
    ("Replicas", "string", HPA_CURRENT, 0), AGE,
];
pub(super) const LEASE_COLUMNS: &[Col] = &[NAME, ("Holder", "string", LEASE_HOLDER, 0), AGE];
#[rustfmt::skip]
pub(super) const ENDPOINT_SLICE_COLUMNS: &[Col] = &[
    NAME, ("AddressType", "string", SLICE_ADDRESS_TYPE, 0), ("Ports", "string", SLICE_PORTS, 0),
    ("Endpoints", "string", SLICE_ENDPOINTS, 0), AGE,
];

// SwaggerDoc texts, generated from k8s.io/api v0.32.13's types_swagger_doc_generated.go (and
// apimachinery's ObjectMeta).
#[rustfmt::skip]
pub(super) mod doc {
    pub const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const POD_NOMINATED_NODE: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub const POD_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub const SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
    pub const NODE_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_OS_IMAGE: &str = "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_KERNEL_VERSION: &str = "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_CONTAINER_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
    pub const EVENT_LAST_TIMESTAMP: &str = "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str = "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED_OBJECT: &str = "The object that this event is about.";
    pub const EVENT_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str = "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TIMESTAMP: &str = "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub const PV_CAPACITY: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
    pub const PV_ACCESS_MODES: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
    pub const PV_RECLAIM_POLICY: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
    pub const PV_PHASE: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
    pub const PV_CLAIM: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
    pub const PV_REASON: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
    pub const PV_VOLUME_MODE: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
    pub const PVC_PHASE: &str = "phase represents the current phase of PersistentVolumeClaim.";
    pub const PVC_VOLUME_NAME: &str = "volumeName is the binding reference to the PersistentVolume backing this claim.";
    pub const PVC_CAPACITY: &str = "capacity represents the actual resources of the underlying volume.";
    pub const PVC_ACCESS_MODES: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
    pub const PVC_VOLUME_MODE: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";
    pub const CONFIGMAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
    pub const RS_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
    pub const RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
    pub const RS_READY_REPLICAS: &str = "The number of ready replicas for this replica set.";
    pub const RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_READY: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
    pub const DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
    pub const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
    pub const DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const DEPLOY_UPDATED: &str = "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
    pub const DEPLOY_AVAILABLE: &str = "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOY_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";
    pub const JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub const JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const HPA_REFERENCE: &str = "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.";
    pub const HPA_METRICS: &str = "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.";
    pub const HPA_MIN: &str = "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.";
    pub const HPA_MAX: &str = "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.";
    pub const HPA_CURRENT: &str = "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.";
    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
    pub const SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
    pub const SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
    pub const SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
}
