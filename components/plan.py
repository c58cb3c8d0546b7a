"""config -> plan -> build. A validated stack config (and, for a team, its platform's exports) is
resolved here once into a frozen plan: every lookup, cross-stack check and capacity check runs
while the plan is built, so an invalid config stops before anything registers, and components
only render the plan.

    platform(config)          PlatformPlan: each GPU pool's price and Kueue queue, each GPU profile's pools
    team(config, platform)    TeamPlan: each workload's args, placement, size, queue and capacity
    laptop(config, names)     LaptopPlan: workloads with each payload's laptop swaps (tools.local, benchmarks)
"""

from collections.abc import Collection
from dataclasses import dataclass, replace

from components import checks
from components.capacity import (
    PlatformCapacity,
    TeamCapacity,
    WorkloadCapacity,
    platform_capacity,
    team_capacity,
    workload_capacity,
)
from components.config import ConfigError, GpuNodePool, Job, PlatformStack, Service, TeamStack
from components.config.platform import KueueQueue
from components.contract import GpuPoolExport, GpuProfileExport, PlatformExports
from components.conventions import GATEWAY_CLASS
from components.gpu import machine_shape
from components.placement import Placement
from components.pricing import node_price
from components.versions import KUBERAY
from workloads.catalog import Payload
from workloads.config import Args


@dataclass(frozen=True)
class PayloadRun:
    """What a service or job runs: its payload with its args, in the cluster or on a laptop."""

    path: str  # services[i] or jobs[i]
    spec: Service | Job  # the validated config
    args: Args  # as the payload runs them (the config's, with what the platform or the laptop settles)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def entry(self) -> Payload:
        """The payload's catalog entry (how it starts, what it needs beyond the image)."""
        return self.spec.entry


@dataclass(frozen=True)
class WorkloadPlan(PayloadRun):
    """A RayService or RayJob as the cluster runs it."""

    placement: Placement
    queue: str | None  # a queued job's LocalQueue (team.kueue); None: not queued
    capacity: WorkloadCapacity | None = None

    @property
    def fixed_size(self) -> bool:
        """A queued job runs at a fixed size: Kueue refuses a queued Ray cluster that autoscales
        (unless it is an elastic job), so its workers.replicas.max workers start at once and
        Ray's autoscaler stays off. The one place this rule lives."""
        return self.queue is not None

    @property
    def fewest_workers(self) -> int:
        """Worker pods it holds at its smallest."""
        replicas = self.spec.workers.replicas
        return replicas.max if self.fixed_size else replicas.min


@dataclass(frozen=True)
class TeamPlan:
    config: TeamStack
    platform: PlatformExports
    services: tuple[WorkloadPlan, ...]
    jobs: tuple[WorkloadPlan, ...]
    claim_templates: dict[str, GpuProfileExport]  # the team's GPU profiles, by name
    local_queues: dict[str, str]  # the team's LocalQueues -> their ClusterQueues
    capacity: TeamCapacity


def team(config: TeamStack, platform: PlatformExports) -> TeamPlan:
    """The team's plan; a ConfigError with the team's key paths where the platform cannot run it."""
    errors = checks.team_errors(config, platform)
    placed = []
    for path, workload in config.workloads():
        workload_errors, given = checks.workload_errors(path, workload, platform)
        errors += workload_errors
        placed.append((path, workload, given))
    if errors:
        raise ConfigError(errors)
    workloads = [
        WorkloadPlan(
            path,
            workload,
            workload.args.on_gpus(given.ray_type),
            given,
            queue=given.source if config.team.kueue and isinstance(workload, Job) else None,
        )
        for path, workload, given in placed
    ]
    if errors := _quota_errors(config, workloads):
        raise ConfigError(errors)
    report = _capacity(config, platform, workloads)
    workloads = [replace(w, capacity=c) for w, c in zip(workloads, report.workloads, strict=True)]
    return TeamPlan(
        config=config,
        platform=platform,
        services=tuple(w for w in workloads if isinstance(w.spec, Service)),
        jobs=tuple(w for w in workloads if isinstance(w.spec, Job)),
        claim_templates={name: platform.profile(name) for name in config.team.gpu_profiles},
        local_queues={w.queue: platform.kueue_cluster_queues[w.placement.pool_names[0]] for w in workloads if w.queue},
        capacity=report,
    )


def _quota_errors(config: TeamStack, workloads: list[WorkloadPlan]) -> list[str]:
    """The team's quota must hold each worker and every workload at its smallest size at once."""
    quota, errors = config.team.quota, []
    gpus = cpu = memory = 0
    for workload in workloads:
        workers, per_worker = workload.spec.workers, workload.placement.gpus
        if per_worker > quota.gpus:
            errors.append(
                f"{workload.path}.workers: a worker gets {per_worker} GPU(s), team.quota.gpus is {quota.gpus}"
            )
        count = workload.fewest_workers
        gpus += count * per_worker
        cpu += workload.spec.head.cpu + count * workers.cpu
        memory += workload.spec.head.memory_gib + count * workers.memory_gib
    for name, need, have, unit in (
        ("gpus", gpus, quota.gpus, " GPU(s)"),
        ("cpu", cpu, quota.cpu, " vCPUs"),
        ("memoryGib", memory, quota.memory_gib, " GiB"),
    ):
        if need > have:
            errors.append(
                f"team.quota.{name}: the services and jobs at their minimum size request {need}{unit},"
                f" the quota is {have}"
            )
    return errors


def _capacity(config: TeamStack, platform: PlatformExports, workloads: list[WorkloadPlan]) -> TeamCapacity:
    """The team's capacity report; a ConfigError where a model cannot fit its GPUs, misses its
    latency target, or a workload's minimum cannot be placed beside the others'."""
    smallest = {w.path: w.fewest_workers * w.placement.gpus for w in workloads}
    reports, errors, warnings = [], [], []
    for w in workloads:
        others = sum(gpus for path, gpus in smallest.items() if path != w.path)
        report, workload_errors, workload_warnings = workload_capacity(
            w.path, w.name, w.args, w.placement, w.spec.workers.replicas, others, config.team.quota.gpus
        )
        reports.append(report)
        errors += workload_errors
        warnings += workload_warnings
    if errors:
        raise ConfigError(errors)
    return team_capacity(config, platform, reports, warnings)


@dataclass(frozen=True)
class LaptopPlan:
    services: tuple[PayloadRun, ...]
    jobs: tuple[PayloadRun, ...]


def laptop(config: TeamStack, names: Collection[str] | None = None) -> LaptopPlan:
    """The team's services and jobs (those in `names`, or all) with each payload's laptop swaps
    (`local()` in workloads/config.py): the CPU profile, the locally made tiny LLM."""
    runs = [
        PayloadRun(path, workload, workload.args.local())
        for path, workload in config.workloads()
        if names is None or workload.name in names
    ]
    return LaptopPlan(
        services=tuple(r for r in runs if isinstance(r.spec, Service)),
        jobs=tuple(r for r in runs if isinstance(r.spec, Job)),
    )


@dataclass(frozen=True)
class PoolPlan:
    config: GpuNodePool
    node_price: float | None  # USD per hour of a node (components/pricing.py); None: unknown
    cluster_queue: str | None  # its Kueue ClusterQueue; None without Kueue
    queue_quota: KueueQueue | None  # that queue's quota


@dataclass(frozen=True)
class PlatformPlan:
    config: PlatformStack
    pools: tuple[PoolPlan, ...]
    profile_pools: dict[str, list[str]]  # GPU profile -> the pools that can satisfy a claim of it
    capacity: PlatformCapacity

    @property
    def kueue_cluster_queues(self) -> dict[str, str]:
        return {pool.config.name: pool.cluster_queue for pool in self.pools if pool.cluster_queue}

    def exports(self, cloud: dict) -> PlatformExports:
        """The platform -> team contract, once the cloud has named the cluster (`clusterName`,
        `clusterLocation`), its node service account, the workload bucket and the node pools
        (`nodePoolNames`, in the order of `pools`)."""
        cfg, cloud = self.config, dict(cloud)
        pools = [
            GpuPoolExport(
                name=pool.config.name,
                nodePoolName=physical,
                accelerator=pool.config.accelerator,
                gpusPerNode=pool.config.accelerator_count,
                machineType=pool.config.machine_type,
                gpuMode=pool.config.gpu_mode,
                spot=pool.config.spot,
                zones=pool.config.zones,
                minNodes=pool.config.autoscaling.min_nodes,
                maxNodes=pool.config.autoscaling.max_nodes,
                nodePrice=pool.node_price,
            )
            for pool, physical in zip(self.pools, cloud.pop("nodePoolNames"), strict=True)
        ]
        profiles = [
            GpuProfileExport(**p.model_dump(by_alias=True, exclude={"pools"}), eligiblePools=self.profile_pools[p.name])
            for p in cfg.gpu_profiles
        ]
        return PlatformExports.model_validate(
            {
                "project": cfg.project,
                "kubernetesVersion": cfg.cluster.kubernetes_version,
                "gpuNodePools": pools,
                "gpuProfiles": profiles,
                "kuberayVersion": KUBERAY,
                "gatewayClassName": GATEWAY_CLASS if cfg.cluster.gateway_api else None,
                "rbacSecurityGroup": cfg.cluster.rbac_security_group,
                "kueueClusterQueues": self.kueue_cluster_queues,
                "rayImage": cfg.ray_image,
                **cloud,  # what the cloud names, and the Gateway's source ranges
            }
        )


def platform(config: PlatformStack) -> PlatformPlan:
    pools = tuple(
        PoolPlan(
            config=pool,
            node_price=node_price(config, pool),
            cluster_queue=f"{config.prefix}-{pool.name}" if config.addons.kueue.enabled else None,
            queue_quota=_queue_quota(config, pool) if config.addons.kueue.enabled else None,
        )
        for pool in config.node_pools
    )
    return PlatformPlan(
        config=config,
        pools=pools,
        profile_pools={p.name: [pool.name for pool in config.profile_pools(p)] for p in config.gpu_profiles},
        capacity=platform_capacity(config, [(pool.config, pool.node_price) for pool in pools]),
    )


def _queue_quota(config: PlatformStack, pool: GpuNodePool) -> KueueQueue:
    """The Kueue quota of a GPU pool: config overrides, else the pool's size at maxNodes."""
    given = config.addons.kueue.queues.get(pool.name, KueueQueue())
    vcpus, gib = machine_shape(pool.machine_type) or (None, None)
    nodes = pool.autoscaling.max_nodes
    return KueueQueue(
        gpus=given.gpus if given.gpus is not None else nodes * pool.accelerator_count,
        cpu=given.cpu if given.cpu is not None else vcpus and nodes * vcpus,
        memoryGib=given.memory_gib if given.memory_gib is not None else gib and nodes * gib,
    )
