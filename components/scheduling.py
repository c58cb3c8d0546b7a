"""Where pods land: the node labels and GPU taint that rayplane puts on its node pools, and the
tolerations and node affinities that pods use to find them."""

POOL_LABEL = "rayplane.dev/pool"  # every node: its pool's name from the config ("system" for the system pool)
GPU_MODE_LABEL = "rayplane.dev/gpu-mode"  # GPU nodes: dra | device-plugin
SYSTEM_POOL = "system"
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
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}  # pods


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
