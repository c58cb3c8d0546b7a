"""What only the platform's exports can tell about a team's config: the checks that building the
team's plan runs (components/plan.py) before anything of the team is registered. Every error
names the team's key path."""

from pydantic.alias_generators import to_camel

from components import placement
from components.config import TeamStack, Workers, Workload
from components.contract import PlatformExports
from components.gpu import machine_shape
from components.placement import Placement


def team_errors(config: TeamStack, platform: PlatformExports) -> list[str]:
    """The team's profiles, group, queues and buckets against what the platform offers."""
    errors = []
    for i, name in enumerate(config.team.gpu_profiles):
        if platform.profile(name) is None:
            known = ", ".join(p.name for p in platform.gpu_profiles) or "none"
            errors.append(f"team.gpuProfiles[{i}]: the platform stack has no GPU profile {name!r} ({known})")
    if config.team.group and not platform.rbac_security_group:
        errors.append("team.group: the platform cluster has no cluster.rbacSecurityGroup for Google Groups RBAC")
    if config.team.kueue and not platform.kueue_cluster_queues:
        errors.append("team.kueue: the platform stack runs no Kueue (its addons.kueue.enabled is false)")
    for field in ("read_buckets", "write_buckets"):
        for i, bucket in enumerate(getattr(config.team, field)):
            if bucket == platform.workload_bucket:
                errors.append(
                    f"team.{to_camel(field)}[{i}]: {bucket} is the platform's workload bucket, which holds every"
                    " team's code; a team reads its own payloads there already"
                )
    return errors


def workload_errors(path: str, workload: Workload, platform: PlatformExports) -> tuple[list[str], Placement | None]:
    """A workload's errors against the platform, and its placement where the platform has the
    profile or pool its workers name (resolved here, once)."""
    workers = workload.workers
    errors = _size_errors(path, workers, platform)
    if workers.gpu_pool is not None:
        pool = platform.pool(workers.gpu_pool)
        if pool is None:
            known = ", ".join(p.name for p in platform.gpu_node_pools)
            return [f"{path}.workers.gpuPool: the platform has no GPU pool {workers.gpu_pool!r} ({known})"], None
        if pool.gpu_mode != "device-plugin":
            return [f"{path}.workers.gpuPool: {pool.name} is a dra pool; use a gpuProfile"], None
        if workers.gpus is not None and workers.gpus > pool.gpus_per_node:
            errors.append(f"{path}.workers.gpus: {pool.name} nodes have {pool.gpus_per_node} GPU(s)")
    elif platform.profile(workers.gpu_profile) is None:
        return [], None  # reported with team.gpuProfiles
    given = placement.resolve(workers, platform)
    return errors + _args_errors(path, workload, given, platform), given


def _size_errors(path: str, workers: Workers, platform: PlatformExports) -> list[str]:
    """A worker pod must fit the machines of every pool it may run on."""
    names = (
        [workers.gpu_pool] if workers.gpu_pool else getattr(platform.profile(workers.gpu_profile), "eligible_pools", [])
    )
    errors = []
    for pool in filter(None, map(platform.pool, names)):
        vcpus, gib = machine_shape(pool.machine_type) or (None, None)
        if vcpus is not None and workers.cpu > vcpus:
            errors.append(f"{path}.workers.cpu: {workers.cpu} vCPUs, but {pool.name}'s {pool.machine_type} has {vcpus}")
        if gib is not None and workers.memory_gib > gib:
            errors.append(
                f"{path}.workers.memoryGib: {workers.memory_gib} GiB, but {pool.name}'s {pool.machine_type} has {gib}"
            )
    return errors


def _args_errors(path: str, workload: Workload, given: Placement, platform: PlatformExports) -> list[str]:
    """The payload's replicas must fit a worker's GPUs, of the kind they ask for."""
    errors, args = [], workload.args
    needed = args.gpus_per_replica()
    if needed > given.gpus:
        errors.append(
            f"{path}.args: a replica needs {needed:g} GPU(s) (tensor x pipeline parallel size) but a worker"
            f" gets {given.gpus} from {given.source}"
        )
    if (wanted := args.ray_accelerator()) and given.ray_types != [wanted]:
        errors.append(
            f"{path}.args.accelerator_type: {wanted!r}, but {given.source} gives {' or '.join(given.ray_types)} GPUs"
        )
    if getattr(workload, "upgrade_strategy", None) == "NewClusterWithIncrementalUpgrade" and not (
        platform.gateway_class_name
    ):
        errors.append(f"{path}.upgradeStrategy: incremental upgrades need the platform's cluster.gatewayApi")
    return errors
