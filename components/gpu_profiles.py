"""GPU profiles as DRA ResourceClaimTemplates (resource.k8s.io/v1) for the NVIDIA DRA driver.

Sharing settings go to the driver as opaque `GpuConfig` parameters. The models below mirror the
driver's API (github.com/NVIDIA/k8s-dra-driver-gpu, api/nvidia.com/resource/v1beta1/sharing.go),
so a misspelt field or strategy fails here instead of at pod admission on a GPU node.
"""

from typing import Literal

from components.config import GpuClaim, GpuProfile, Model
from components.conventions import DRA_DRIVER, GPU_CLAIM, GPU_DEVICE_CLASS, NVIDIA_CONFIG_API


class TimeSlicingConfig(Model):
    # Always set: the driver's TimeSlicingConfig.Validate calls Validate on the *pointer* Interval
    # (validate.go@v25.12.0:57-58), and its Normalize fills the default in only where the whole
    # config is absent (gpuconfig.go:56-72): `timeSlicingConfig: {}` would panic the kubelet plugin.
    interval: Literal["Default", "Short", "Medium", "Long"] = "Default"


class GpuSharing(Model):
    strategy: Literal["TimeSlicing"]  # the driver's MPS needs a shell on GKE's COS driver root (config refuses it)
    time_slicing_config: TimeSlicingConfig


class GpuConfig(Model):
    api_version: Literal[NVIDIA_CONFIG_API] = NVIDIA_CONFIG_API
    kind: Literal["GpuConfig"] = "GpuConfig"
    sharing: GpuSharing


def gpu_config(profile: GpuClaim) -> GpuConfig | None:
    """The driver configuration of a profile; exclusive GPUs need none."""
    if profile.sharing == "time-sliced":
        slicing = TimeSlicingConfig(**({"interval": profile.interval} if profile.interval else {}))
        return GpuConfig(sharing=GpuSharing(strategy="TimeSlicing", timeSlicingConfig=slicing))
    return None


def claim_template_spec(profile: GpuClaim) -> dict:
    """`spec` of the ResourceClaimTemplate for a profile."""
    exactly = {"deviceClassName": GPU_DEVICE_CLASS, "allocationMode": "ExactCount", "count": profile.count}
    devices = {"requests": [{"name": GPU_CLAIM, "exactly": exactly}]}
    if config := gpu_config(profile):
        parameters = config.model_dump(by_alias=True, exclude_none=True)
        devices["config"] = [{"requests": [GPU_CLAIM], "opaque": {"driver": DRA_DRIVER, "parameters": parameters}}]
    return {"spec": {"devices": devices}}


def driver_feature_gates(profiles: list[GpuProfile]) -> dict[str, bool]:
    """The DRA driver's alpha gates that the profiles' sharing strategies need."""
    return {"TimeSlicingSettings": any(profile.sharing == "time-sliced" for profile in profiles)}
