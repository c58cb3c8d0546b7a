"""Where a workload's worker pods run and what GPUs each gets: its `workers` (config) resolved
against the platform's exports, once per workload, by the team's plan (components/plan.py)."""

from dataclasses import dataclass

from components.config import Workers
from components.contract import GpuPoolExport, GpuProfileExport, PlatformExports
from components.gpu import ACCELERATORS


@dataclass(frozen=True)
class Placement:
    source: str  # the GPU profile or pool the config names (the team's LocalQueue is named after it)
    pools: tuple[GpuPoolExport, ...]  # the pools whose nodes the worker pods may run on
    gpus: int  # GPUs per worker pod
    profile: GpuProfileExport | None  # DRA: each pod claims the profile's ResourceClaimTemplate; None: nvidia.com/gpu

    @classmethod
    def resolve(cls, workers: Workers, platform: PlatformExports) -> "Placement":
        """Where a worker group the platform can place (checks.unplaced) runs: a profile's eligible
        pools and its GPUs per claim, or a device-plugin pool and `gpus` (default: a whole node)."""
        if workers.gpu_profile is not None:
            profile = platform.profile(workers.gpu_profile)
            pools = tuple(platform.pool(name) for name in profile.eligible_pools)
            return cls(workers.gpu_profile, pools, profile.count, profile)
        pool = platform.pool(workers.gpu_pool)
        return cls(workers.gpu_pool, (pool,), workers.gpus or pool.gpus_per_node, None)

    @property
    def pool_names(self) -> list[str]:
        return [pool.name for pool in self.pools]

    @property
    def compute_class(self) -> str | None:
        """The ladder its pools are in (the platform keeps a profile's pools within one ladder or none)."""
        return self.pools[0].compute_class

    @property
    def claim_template(self) -> str | None:
        return self.profile.name if self.profile else None

    @property
    def accelerators(self) -> list[str]:
        return sorted({pool.accelerator for pool in self.pools})

    @property
    def ray_types(self) -> list[str]:
        """Ray's accelerator types of the pools' GPUs: one, unless a profile spans GPU kinds."""
        return sorted({ACCELERATORS[accelerator].ray_type for accelerator in self.accelerators})

    @property
    def ray_type(self) -> str | None:
        """The one kind of GPU every worker gets, if there is one."""
        return self.ray_types[0] if len(self.ray_types) == 1 else None
