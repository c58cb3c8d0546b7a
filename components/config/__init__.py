"""The stack config: one pydantic model tree, validated before any resource is registered.

Keys are camelCase as in the stack files (`rayplane:nodePools`); every error names its key path,
e.g. `nodePools[1].accelerator: nvidia-l4 needs a g2-standard-* machine type, got a2-highgpu-1g`.

    base      the model base, names, key-path errors
    bootstrap `kind: bootstrap`: state bucket, secrets key, CI identities, GitHub rules
    platform  `kind: platform`: cluster, network, GPU pools and profiles, add-ons
    team      `kind: team`: the team, its services and jobs
    tenants   the platform's tenant registry: what each team stack may use
    loading   from Pulumi's config to a validated model
"""

from components.config.base import ConfigError, Model
from components.config.bootstrap import BootstrapStack
from components.config.loading import NAMESPACE, STACK_KINDS, StackConfig, from_pulumi_config, load, parse
from components.config.platform import GpuClaim, GpuNodePool, GpuProfile, PlatformStack
from components.config.team import Job, Service, TeamStack, Workers, Workload

__all__ = [
    "NAMESPACE",
    "STACK_KINDS",
    "BootstrapStack",
    "ConfigError",
    "GpuClaim",
    "GpuNodePool",
    "GpuProfile",
    "Job",
    "Model",
    "PlatformStack",
    "Service",
    "StackConfig",
    "TeamStack",
    "Workers",
    "Workload",
    "from_pulumi_config",
    "load",
    "parse",
]
