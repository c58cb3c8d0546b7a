"""How rayplane's objects find each other in the cluster: namespaces, ports, labels, the GPU taint,
device classes, names and API versions, written once for the platform's add-ons, the team stacks
and the policy pack (plain Python: the pack's own virtualenv has no pydantic)."""

# -- API versions of the custom resources rayplane renders
RAY_API = "ray.io/v1"
KUEUE_API = "kueue.x-k8s.io/v1beta2"
GMP_API = "monitoring.googleapis.com/v1"
# The ClusterPodMonitorings of Ray's heads and workers: GMP labels their series job=<name>.
RAY_HEADS_MONITOR, RAY_WORKERS_MONITOR = "ray-heads", "ray-workers"
NVIDIA_CONFIG_API = "resource.nvidia.com/v1beta1"  # the DRA driver's opaque GpuConfig

# -- namespaces
KUBERAY_NAMESPACE = "kuberay-system"
KUEUE_NAMESPACE = "kueue-system"
DRA_DRIVER_NAMESPACE = "nvidia-dra-driver-gpu"
SYSTEM_NAMESPACE = "kube-system"  # GKE admits system-node-critical pods (the NVIDIA driver installer) only here
GMP_NAMESPACE = "gmp-system"  # GKE Managed Prometheus' collectors
GMP_PUBLIC_NAMESPACE = "gmp-public"  # where GMP's operator reads users' config (its --public-namespace)
SPARE_NAMESPACE = "rayplane-spare"  # the placeholders that keep GPU pools' spare nodes up
# What a team may not take: Kubernetes' and GKE's own namespaces and every one the platform installs into.
RESERVED_NAMESPACES = ("default", KUBERAY_NAMESPACE, KUEUE_NAMESPACE, DRA_DRIVER_NAMESPACE, SPARE_NAMESPACE)
RESERVED_NAMESPACE_PREFIXES = ("kube-", "gke-", "gmp-")

# -- ports
SERVE_PORT = 8000  # Serve's HTTP proxy on every Ray pod
DASHBOARD_PORT = 8265  # the head's dashboard and Jobs API (KubeRay's client)
RAY_METRICS_PORT = 8080  # heads and workers
HEAD_METRICS_PORTS = (44217, 44227)  # the head's autoscaler and dashboard metrics
OPERATOR_METRICS_PORT = 8080  # the KubeRay operator
KUEUE_METRICS_PORT = "metrics"  # Kueue's manager: HTTPS, bearer tokens allowed `get /metrics` (its chart)

# -- labels and names
POOL_LABEL = "rayplane.dev/pool"  # every node: its pool's name from the config (SYSTEM_POOL for the system pool)
GPU_MODE_LABEL = "rayplane.dev/gpu-mode"  # GPU nodes: dra | device-plugin
SYSTEM_POOL = "system"
TEAM_LABEL = "rayplane.dev/team"  # a team's namespace
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
RAY_NODE_TYPE_LABEL = "ray.io/node-type"  # KubeRay: head | worker
HOSTNAME_LABEL = "kubernetes.io/hostname"  # every node: the topology of "one per node"
KUBERAY_APP = "kuberay-operator"  # the operator's chart, release and app.kubernetes.io/name
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # a job's LocalQueue
KUEUE_APP = "kueue"  # Kueue's chart and release: its objects' fullname and app.kubernetes.io/name
GMP_COLLECTOR = "collector"  # GMP's collectors' service account (gmp-system): reads scrape credentials
# GMP's managed Alertmanager reads its config from this Secret and key in GMP_PUBLIC_NAMESPACE
# (prometheus-engine pkg/operator/operator_config.go: AlertmanagerPublicSecretName and Key).
ALERTMANAGER_SECRET, ALERTMANAGER_KEY = "alertmanager", "alertmanager.yaml"
TEAM_SERVICE_ACCOUNT = "ray"  # the Kubernetes service account every Ray pod of a team runs as
WORKER_GROUP = "gpu-workers"  # every Ray cluster's one worker group
# GKE's Cloud Storage FUSE CSI driver: its driver name, and the pod annotation that has GKE inject its sidecar.
GCS_FUSE_DRIVER, GCS_FUSE_ANNOTATION = "gcsfuse.csi.storage.gke.io", "gke-gcsfuse/volumes"
# What its sidecar requests (vCPUs, GiB; the driver's defaults, set explicitly by annotation): the
# worker pod's requests, which the team's quota and the fit check count, include them.
GCS_FUSE_SIDECAR = (0.25, 0.25)
RAY_UID, RAY_GID = 1000, 100  # user `ray` of Ray's images (rayproject/ray's Dockerfile: RAY_UID, RAY_GID)
GATEWAY_CLASS = "gke-l7-rilb"  # regional internal Application Load Balancer (RayService incremental upgrades)

# -- GPUs
# DRA pools: GKE's device plugin stays off so the NVIDIA DRA driver owns the GPUs; the driver's
# kubelet plugin selects nodes by nvidia.com/gpu.present; and GKE's cluster autoscaler knows from
# gke-nvidia-gpu-dra-driver that a new node would publish GPU ResourceSlices (without it a dra pool
# at zero nodes never scales up for a pending claim).
DRA_LABELS = {
    "gke-no-default-nvidia-gpu-device-plugin": "true",
    "nvidia.com/gpu.present": "true",
    "cloud.google.com/gke-nvidia-gpu-dra-driver": "true",
}
# Only pods that tolerate GPUs land on GPU nodes (GKE applies the same taint to device-plugin pools).
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}  # node pools (GCP API)
GPU_TOLERATION = {"key": GPU_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}  # pods
# A custom ComputeClass (a ladder): the label and taint its manually created pools must carry, and
# what a pod selects it by (cloud.google.com/kubernetes-engine/docs/concepts/about-custom-compute-classes).
COMPUTE_CLASS_LABEL = "cloud.google.com/compute-class"
# What a DaemonSet that must reach every GPU node tolerates besides the GPU taint: any ladder's taint.
COMPUTE_CLASS_TOLERATION = {"key": COMPUTE_CLASS_LABEL, "operator": "Exists", "effect": "NoSchedule"}
COMPUTE_CLASS_API = "cloud.google.com/v1"
DEVICE_PLUGIN_GPU = "nvidia.com/gpu"  # the device plugin's extended resource
# GKE taints the nodes of a queued-provisioning pool; its pods (Kueue's flavor gives them) tolerate it.
QUEUED_TOLERATION = {"key": "cloud.google.com/gke-queued", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
DRA_DRIVER = "gpu.nvidia.com"  # the NVIDIA DRA driver's name in claims' opaque config
GPU_DEVICE_CLASS = "gpu.nvidia.com"  # whole GPUs; created by the driver's chart
# A namespace's DRA GPUs in a ResourceQuota: devices are counted per DeviceClass (Kubernetes >= 1.34).
DRA_QUOTA_GPU = f"{GPU_DEVICE_CLASS}.deviceclass.resource.k8s.io/devices"
GPU_CLAIM = "gpu"  # a worker pod's claim, and the request inside every claim template
KUEUE_DRA_GPU = "rayplane.dev/gpu"  # Kueue's quota name for DRA GPUs (its deviceClassMappings)


def in_class(compute_class: str) -> tuple[dict, dict]:
    """(nodeSelector, toleration) of a pod that runs on a ladder's (a ComputeClass's) nodes."""
    return {COMPUTE_CLASS_LABEL: compute_class}, {
        "key": COMPUTE_CLASS_LABEL,
        "operator": "Equal",
        "value": compute_class,
        "effect": "NoSchedule",
    }


def on_system_pool() -> dict:
    """A pod's nodeSelector for the system pool (never the tainted, scarce GPU nodes)."""
    return {POOL_LABEL: SYSTEM_POOL}


def node_affinity(required: dict[str, list[str]]) -> dict:
    """A pod's affinity: only nodes whose label `key` has one of its values, for every key."""
    expressions = [{"key": key, "operator": "In", "values": values} for key, values in required.items()]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        }
    }


def team_prefix(team: str) -> str:
    """The team's folder in the platform's workload bucket: its payload archives."""
    return f"payloads/{team}/"
