"""GKE accelerator catalog: which machine types carry which GPUs, how many, and the GPUs' own facts.

Source: GKE "About GPUs" (machine type <-> accelerator table). For the accelerator-optimized
families (g2, a2, a3) the GPU count is fixed by the machine type; N1 machines take 1, 2 or 4 T4s.
`ray_type` is the accelerator type Ray reports for the GPU (ray/_private/accelerators/nvidia_gpu.py
turns "NVIDIA A100-SXM4-40GB" into "A100"): the `accelerator_type:<ray_type>` resource.

`memory_mib` is the total memory the GPU reports (nvidia-smi's "Total", CUDA's cudaMemGetInfo): the
figure vLLM's gpu_memory_utilization is a fraction of, a little below the datasheet's GB where ECC
takes its share (L4: 24 GB, 23034 MiB). `bandwidth_gbps` is the datasheet's memory bandwidth in GB/s
(NVIDIA T4, L4, A100, H100 SXM and H200 datasheets).
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    families: tuple[str, ...]  # machine type prefixes, e.g. ("g2-standard-",)
    ray_type: str  # Ray's accelerator type of the GPU
    gpus_per_machine: dict[str, int]  # machine type -> fixed GPU count; empty = attachable
    memory_mib: int  # device memory as the GPU reports it
    bandwidth_gbps: int  # memory bandwidth, GB/s
    attachable_counts: tuple[int, ...] = ()  # for N1: counts that may be attached

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


def _series(prefix: str, counts: dict[str, int]) -> dict[str, int]:
    return {prefix + suffix: n for suffix, n in counts.items()}


ACCELERATORS: dict[str, Accelerator] = {
    "nvidia-l4": Accelerator(
        ("g2-standard-",),
        "L4",
        _series("g2-standard-", {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}),
        memory_mib=23034,
        bandwidth_gbps=300,
    ),
    "nvidia-tesla-t4": Accelerator(
        ("n1-",), "T4", {}, memory_mib=15360, bandwidth_gbps=320, attachable_counts=(1, 2, 4)
    ),
    "nvidia-tesla-a100": Accelerator(
        ("a2-highgpu-", "a2-megagpu-"),
        "A100",
        _series("a2-highgpu-", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}) | {"a2-megagpu-16g": 16},
        memory_mib=40960,
        bandwidth_gbps=1555,
    ),
    "nvidia-a100-80gb": Accelerator(
        ("a2-ultragpu-",),
        "A100",
        _series("a2-ultragpu-", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
        memory_mib=81920,
        bandwidth_gbps=2039,
    ),
    "nvidia-h100-80gb": Accelerator(  # A3 High and A3 Edge
        ("a3-highgpu-", "a3-edgegpu-"),
        "H100",
        _series("a3-highgpu-", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}) | {"a3-edgegpu-8g": 8},
        memory_mib=81559,
        bandwidth_gbps=3350,
    ),
    "nvidia-h100-mega-80gb": Accelerator(
        ("a3-megagpu-",), "H100", {"a3-megagpu-8g": 8}, memory_mib=81559, bandwidth_gbps=3350
    ),
    "nvidia-h200-141gb": Accelerator(
        ("a3-ultragpu-",), "H200", {"a3-ultragpu-8g": 8}, memory_mib=143771, bandwidth_gbps=4800
    ),
}


def machine_type_error(accelerator: str, machine_type: str) -> str | None:
    """Why `machine_type` cannot carry `accelerator`, or None if it can."""
    acc = ACCELERATORS[accelerator]
    if machine_type in acc.gpus_per_machine:
        return None
    if not machine_type.startswith(acc.families):
        return f"{accelerator} needs a {' or '.join(f + '*' for f in acc.families)} machine type, got {machine_type}"
    if acc.gpus_per_machine:
        known = ", ".join(acc.gpus_per_machine)
        return f"{machine_type} is not a known {accelerator} machine type ({known})"
    return None


def gpu_count_error(accelerator: str, machine_type: str, count: int) -> str | None:
    """Why `count` GPUs of `accelerator` cannot be attached to `machine_type`, or None."""
    acc = ACCELERATORS[accelerator]
    fixed = acc.gpus_per_machine.get(machine_type)
    if fixed is not None and count != fixed:
        return f"{machine_type} has exactly {fixed} {accelerator} GPU(s), got {count}"
    if fixed is None and count not in acc.attachable_counts:
        allowed = ", ".join(map(str, acc.attachable_counts))
        return f"{machine_type} takes {allowed} {accelerator} GPU(s), got {count}"
    return None


def default_gpu_count(accelerator: str, machine_type: str) -> int:
    """GPUs per node when the config leaves the count out."""
    acc = ACCELERATORS[accelerator]
    return acc.gpus_per_machine.get(machine_type, acc.attachable_counts[0] if acc.attachable_counts else 1)


# vCPUs and GiB of memory of the accelerator-optimized machines (Compute Engine machine families).
_FIXED_SHAPES = {
    **{f"a2-highgpu-{n}g": (12 * n, 85 * n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": (96, 1360),
    **{f"a2-ultragpu-{n}g": (12 * n, 170 * n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": (26 * n, 234 * n) for n in (1, 2, 4, 8)},
    "a3-edgegpu-8g": (208, 1872),
    "a3-megagpu-8g": (208, 1872),
    "a3-ultragpu-8g": (224, 2952),
}
_GIB_PER_VCPU = {"e2-standard": 4, "g2-standard": 4, "n1-standard": 3.75, "n1-highmem": 6.5, "n2-standard": 4}


def machine_shape(machine_type: str) -> tuple[int, int] | None:
    """(vCPUs, GiB memory) of a machine type, or None if this catalog does not know it."""
    if machine_type in _FIXED_SHAPES:
        return _FIXED_SHAPES[machine_type]
    family, _, vcpus = machine_type.rpartition("-")
    if family in _GIB_PER_VCPU and vcpus.isdigit():
        return int(vcpus), int(int(vcpus) * _GIB_PER_VCPU[family])
    return None


# What GKE keeps of a node for the kubelet, the container runtime and the OS, and the kubelet's
# eviction threshold; pods get the rest (GKE docs, "Plan GKE node sizes", node allocatable
# resources): tiers of (size, share reserved), in order.
_CPU_RESERVED = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))  # cores
_MEMORY_RESERVED = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))  # GiB
EVICTION_GIB = 100 / 1024


def _reserved(amount: float, tiers: tuple) -> float:
    reserved, left = 0.0, amount
    for size, share in tiers:
        reserved += min(left, size) * share
        left -= min(left, size)
    return reserved


def allocatable(machine_type: str) -> tuple[float, float] | None:
    """(vCPUs, GiB) that pods may request on a node of `machine_type`, or None if its size is unknown."""
    shape = machine_shape(machine_type)
    if shape is None:
        return None
    vcpus, gib = shape
    return (
        round(vcpus - _reserved(vcpus, _CPU_RESERVED), 2),
        round(gib - _reserved(gib, _MEMORY_RESERVED) - EVICTION_GIB, 2),
    )
