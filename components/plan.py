"""config -> plan -> build. A validated stack config (and, for a team, its platform's exports) is
resolved here once into a frozen plan: every lookup, cross-stack check and capacity check runs
while the plan is built, so an invalid config stops before anything registers, and components
only render the plan.

    platform(config)          PlatformPlan: each GPU pool's price and Kueue queue, each GPU profile's
                              pools, the capacity report, the exports of the platform -> team contract
    team(config, platform)    TeamPlan: each workload's args, placement, size, queue and capacity
    laptop(config, names)     LaptopPlan: the workloads with each payload's laptop swaps (tools.local)
"""

from collections.abc import Collection
from dataclasses import dataclass, replace

from components import checks, image
from components.capacity import (
    PlatformCapacity,
    TeamCapacity,
    WorkloadCapacity,
    platform_capacity,
    team_capacity,
    workers_needed,
    workload_capacity,
)
from components.coldstart import workload_cold_start
from components.config import ConfigError, GpuNodePool, Job, PlatformStack, Service, TeamStack
from components.config.platform import KueueQueue
from components.contract import GpuPoolExport, GpuProfileExport, PlatformExports
from components.conventions import GATEWAY_CLASS, GCS_FUSE_SIDECAR, SYSTEM_POOL
from components.gpu import machine_shape
from components.placement import Placement
from components.pricing import node_price
from components.versions import KUBERAY
from workloads.catalog import Payload
from workloads.config import Args

# -- the platform


@dataclass(frozen=True)
class PoolPlan:
    """A GPU node pool, its price and its Kueue ClusterQueue."""

    config: GpuNodePool
    compute_class: str | None  # the ladder it is in (a GKE ComputeClass); None: in none
    node_price: float | None  # USD per hour of a node (components/pricing.py); None: unknown
    cluster_queue: str | None  # its ClusterQueue, and the ResourceFlavor of its nodes; None without Kueue
    queue_quota: KueueQueue | None  # that queue's quota: config overrides, else the pool at maxNodes


@dataclass(frozen=True)
class PlatformPlan:
    config: PlatformStack
    pools: tuple[PoolPlan, ...]
    eligible_pools: dict[str, list[str]]  # GPU profile -> the pools whose nodes can satisfy a claim of it
    system_flavor: str | None  # Kueue's ResourceFlavor of the system pool (Ray heads); None without Kueue
    head_quota: KueueQueue | None  # the system pool at maxNodes, what every ClusterQueue gives heads
    capacity: PlatformCapacity

    @property
    def kueue_cluster_queues(self) -> dict[str, str]:
        return {pool.config.name: pool.cluster_queue for pool in self.pools if pool.cluster_queue}

    def exports(self, cloud: dict) -> PlatformExports:
        """The platform -> team contract, once the cloud has named the cluster (`clusterName`,
        `clusterLocation`), its node service account, the workload bucket and the node pools
        (`nodePoolNames`, in the order of `pools`), and the network its Gateway's source ranges."""
        cfg, cloud = self.config, dict(cloud)
        pools = [
            GpuPoolExport(
                name=pool.config.name,
                nodePoolName=physical,
                accelerator=pool.config.accelerator,
                gpusPerNode=pool.config.accelerator_count,
                machineType=pool.config.machine_type,
                gpuMode=pool.config.gpu_mode,
                provisioning=pool.config.provisioning,
                computeClass=pool.compute_class,
                queued=pool.config.queued,
                imageCached=pool.config.image_cache_disk is not None,
                zones=pool.config.zones,
                minNodes=pool.config.autoscaling.min_nodes,
                maxNodes=pool.config.autoscaling.max_nodes,
                spareNodes=pool.config.spare_nodes,
                nodePrice=pool.node_price,
            )
            for pool, physical in zip(self.pools, cloud.pop("nodePoolNames"), strict=True)
        ]
        profiles = [
            GpuProfileExport(
                **p.model_dump(by_alias=True, exclude={"pools"}), eligiblePools=self.eligible_pools[p.name]
            )
            for p in cfg.gpu_profiles
        ]
        return PlatformExports.model_validate(
            {
                "project": cfg.project,
                "kubernetesVersion": cfg.cluster.kubernetes_version,
                "systemMachineType": cfg.cluster.system_pool.machine_type,
                "gpuNodePools": pools,
                "gpuProfiles": profiles,
                "kuberayVersion": KUBERAY,
                "gatewayClassName": GATEWAY_CLASS if cfg.cluster.gateway_api else None,
                "rbacSecurityGroup": cfg.cluster.rbac_security_group,
                "kueueClusterQueues": self.kueue_cluster_queues,
                "rayImage": image.reference(cfg),
                "tenants": [
                    {
                        **t.model_dump(by_alias=True),
                        "namespace": t.home,
                        "project": t.project or cfg.project,
                    }
                    for t in cfg.tenants
                ],
                **cloud,
            }
        )


def platform(config: PlatformStack) -> PlatformPlan:
    if errors := _image_disk_errors(config):
        raise ConfigError(errors)
    kueue = config.addons.kueue.enabled
    pools = tuple(
        PoolPlan(
            config=pool,
            compute_class=ladder.name if (ladder := config.ladder_of(pool.name)) else None,
            node_price=node_price(config, pool),
            cluster_queue=f"{config.prefix}-{pool.name}" if kueue else None,
            queue_quota=_queue_quota(config, pool) if kueue else None,
        )
        for pool in config.node_pools
    )
    system = config.cluster.system_pool
    vcpus, gib = machine_shape(system.machine_type)  # known: the config refuses an unknown one
    return PlatformPlan(
        config=config,
        pools=pools,
        eligible_pools={p.name: [pool.name for pool in config.profile_pools(p)] for p in config.gpu_profiles},
        system_flavor=f"{config.prefix}-{SYSTEM_POOL}" if kueue else None,
        head_quota=KueueQueue(
            gpus=0, cpu=system.autoscaling.max_nodes * vcpus, memoryGib=system.autoscaling.max_nodes * gib
        )
        if kueue
        else None,
        capacity=platform_capacity(config, [(pool.config, pool.node_price) for pool in pools]),
    )


def _image_disk_errors(config: PlatformStack) -> list[str]:
    """A disk image that preloads the Ray image names the build it holds (the hash that ends the
    image's tag): one made from an earlier build would preload an image no pod runs."""
    build = image.tag(config.pulled_ray_image).rsplit("-", 1)[1]
    return [
        f"nodePools[{i}].imageCacheDisk: {pool.image_cache_disk} is not named for the Ray image this platform"
        f" runs ({image.reference(config)}): make a disk image of it (gke-disk-image-builder) with {build} in its"
        f" name, e.g. global/images/ray-{build}"
        for i, pool in enumerate(config.node_pools)
        if pool.image_cache_disk and build not in pool.image_cache_disk
    ]


def _queue_quota(config: PlatformStack, pool: GpuNodePool) -> KueueQueue:
    given = config.addons.kueue.queues.get(pool.name, KueueQueue())
    vcpus, gib = machine_shape(pool.machine_type) or (None, None)
    nodes = pool.autoscaling.max_nodes
    return KueueQueue(
        gpus=given.gpus if given.gpus is not None else nodes * pool.accelerator_count,
        cpu=given.cpu if given.cpu is not None else vcpus and nodes * vcpus,
        memoryGib=given.memory_gib if given.memory_gib is not None else gib and nodes * gib,
    )


# -- a team


@dataclass(frozen=True)
class PayloadRun:
    """What a service or job runs: its payload with its args, in the cluster or on a laptop."""

    path: str  # services[i] or jobs[i]
    spec: Service | Job  # the validated config; its `args` are the team's, as written
    args: Args  # as the payload runs them: the team's, with what the platform or the laptop settles

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
    # A queued job runs at a fixed size: Kueue refuses a queued Ray cluster that autoscales (unless
    # it is an elastic job) and reserves quota for every worker it renders, so it gets the workers
    # its payload's actors need at their most, all at once, and Ray's autoscaler stays off.
    fixed_workers: int | None = None
    compile_cache: str | None = None  # the team's compile cache, which its workers mount (it runs LLMs)
    capacity: WorkloadCapacity | None = None  # filled in once every workload is placed

    @property
    def fixed_size(self) -> bool:
        return self.fixed_workers is not None

    @property
    def fewest_workers(self) -> int:
        """Worker pods it holds at its smallest."""
        return self.fixed_workers if self.fixed_workers is not None else self.spec.workers.replicas.min

    @property
    def most_workers(self) -> int:
        return self.fixed_workers if self.fixed_workers is not None else self.spec.workers.replicas.max

    @property
    def fewest_gpus(self) -> int:
        return self.fewest_workers * self.placement.gpus

    @property
    def worker_requests(self) -> tuple[float, float]:
        """(vCPUs, GiB) a worker pod requests: its container's, and the compile cache's sidecar."""
        cpu, gib = sidecar(self.compile_cache)
        return self.spec.workers.cpu + cpu, self.spec.workers.memory_gib + gib


def sidecar(compile_cache: str | None) -> tuple[float, float]:
    """What the GCS FUSE sidecar of a worker that mounts the compile cache requests."""
    return GCS_FUSE_SIDECAR if compile_cache else (0, 0)


@dataclass(frozen=True)
class TeamPlan:
    """A team stack: what its components render, nothing they need to look up."""

    config: TeamStack
    services: tuple[WorkloadPlan, ...]
    jobs: tuple[WorkloadPlan, ...]
    claim_templates: dict[str, GpuProfileExport]  # the team's GPU profiles, by name
    local_queues: dict[str, str]  # the team's LocalQueues -> their ClusterQueues
    capacity: TeamCapacity
    ray_image: str  # the platform's, for every head and worker
    workload_bucket: str  # the platform's bucket of payload archives
    platform_project: str  # the cluster's project: its Workload Identity pool is <project>.svc.id.goog
    cluster_name: str  # GMP labels every series with it (`cluster`)
    gateway_class_name: str | None  # the platform's GatewayClass for incremental upgrades
    gateway_source_ranges: list[str]  # where the platform's Gateway reaches pods from


def team(config: TeamStack, platform: PlatformExports, stack: str) -> TeamPlan:
    """The plan of the team stack `stack`; a ConfigError with the team's key paths where the
    platform cannot run it."""
    errors, placed = checks.team_errors(config, platform) + checks.grant_errors(config, platform, stack), []
    for path, workload in config.workloads():
        errors += checks.storage_errors(path, workload, config)
        if (problems := checks.unplaced(path, workload.workers, platform)) is not None:
            errors += problems
            continue
        placement = Placement.resolve(workload.workers, platform)
        cache = config.team.compile_cache if workload.args.llm_models() else None
        errors += checks.workload_errors(path, workload, placement, platform, sidecar(cache))
        args = workload.args.on_gpus(placement.ray_type)
        queued = config.team.kueue and isinstance(workload, Job)
        errors += checks.queued_pool_errors(path, placement, queued)
        fixed = workers_needed(args.replica_gpus("max"), placement.gpus) if queued else None
        if queued:
            errors += checks.queued_job_errors(path, workload, fixed, placement)
        placed.append(
            WorkloadPlan(
                path=path,
                spec=workload,
                args=args,
                placement=placement,
                queue=placement.source if queued else None,
                fixed_workers=fixed,
                compile_cache=cache,
            )
        )
    if errors:
        raise ConfigError(errors)
    if errors := _quota_errors(config, placed):
        raise ConfigError(errors)
    claim_templates = {name: platform.profile(name) for name in config.team.gpu_profiles}
    report = _capacity(config, platform, placed, claim_templates)
    workloads = [replace(w, capacity=c) for w, c in zip(placed, report.workloads, strict=True)]
    return TeamPlan(
        config=config,
        services=tuple(w for w in workloads if isinstance(w.spec, Service)),
        jobs=tuple(w for w in workloads if isinstance(w.spec, Job)),
        claim_templates=claim_templates,
        # A queue's jobs may run on any of its profile's pools; Kueue admits them through the
        # ClusterQueue of the first (rayplane's profiles span pools of one kind of GPU).
        local_queues={w.queue: platform.kueue_cluster_queues[w.placement.pool_names[0]] for w in workloads if w.queue},
        capacity=report,
        ray_image=platform.ray_image,
        workload_bucket=platform.workload_bucket,
        platform_project=platform.project,
        cluster_name=platform.cluster_name,
        gateway_class_name=platform.gateway_class_name,
        gateway_source_ranges=platform.gateway_source_ranges,
    )


def _quota_errors(config: TeamStack, workloads: list[WorkloadPlan]) -> list[str]:
    """The team's quota must hold each worker and every workload at its smallest size at once."""
    quota, errors = config.team.quota, []
    cpu = memory = 0
    for w in workloads:
        if w.placement.gpus > quota.gpus:
            errors.append(f"{w.path}.workers: a worker gets {w.placement.gpus} GPU(s), team.quota.gpus is {quota.gpus}")
        worker_cpu, worker_gib = w.worker_requests
        cpu += w.spec.head.cpu + w.fewest_workers * worker_cpu
        memory += w.spec.head.memory_gib + w.fewest_workers * worker_gib
    for name, need, have, unit in (
        ("gpus", sum(w.fewest_gpus for w in workloads), quota.gpus, " GPU(s)"),
        ("cpu", cpu, quota.cpu, " vCPUs"),
        ("memoryGib", memory, quota.memory_gib, " GiB"),
    ):
        if need > have:
            errors.append(
                f"team.quota.{name}: the services and jobs at their minimum size request {need}{unit},"
                f" the quota is {have}"
            )
    return errors


def _capacity(
    config: TeamStack,
    platform: PlatformExports,
    workloads: list[WorkloadPlan],
    claim_templates: dict[str, GpuProfileExport],
) -> TeamCapacity:
    """The team's capacity report; a ConfigError where a model cannot fit its GPUs, misses its
    latency target, or a workload's minimum cannot be placed beside the others' minimum."""
    reports, errors, warnings = [], [], []
    total = sum(w.fewest_gpus for w in workloads)
    for w in workloads:
        report, workload_errors, workload_warnings = workload_capacity(
            w.path,
            w.name,
            w.args,
            w.placement,
            w.spec.workers.replicas,
            w.fewest_workers,
            total - w.fewest_gpus,
            config.team.quota.gpus,
            w.spec.upgrade_strategy if isinstance(w.spec, Service) else None,
        )
        errors += workload_errors
        warnings += workload_warnings
        if workload_errors:  # e.g. a model without its facts: nothing to size its cold start by
            continue
        service = isinstance(w.spec, Service)
        spare_nodes = sum(pool.spare_nodes for pool in w.placement.pools)
        spare = spare_nodes > 0
        cached = w.compile_cache is not None
        preloaded = all(pool.image_cached for pool in w.placement.pools)
        cold = workload_cold_start(w.args, platform.ray_image, service, spare, cached, preloaded)
        reports.append(report.model_copy(update={"cold_start": cold}))
        if service and w.args.autoscales():
            # autoscaled: replicas come later, on spare nodes while the pools keep one for each
            covers = w.most_workers - w.fewest_workers <= spare_nodes
            warnings += cold.too_slow(w.path, w.spec.slo.scale_up_within_s, covers)
    if errors:
        raise ConfigError(errors)
    # The pools the team's GPUs can come from: its profiles' and its device-plugin workloads'.
    names = {name for profile in claim_templates.values() for name in profile.eligible_pools}
    names |= {pool.name for w in workloads if w.placement.profile is None for pool in w.placement.pools}
    return team_capacity(
        config.team.quota.gpus,
        [platform.pool(name) for name in sorted(names)],
        platform.gpu_node_pools,
        reports,
        warnings,
    )


# -- a laptop


@dataclass(frozen=True)
class LaptopPlan:
    """A team's services and jobs on a laptop Ray (tools.local, make demo, the benchmarks)."""

    services: tuple[PayloadRun, ...]
    jobs: tuple[PayloadRun, ...]


def laptop(config: TeamStack, names: Collection[str] | None = None) -> LaptopPlan:
    """The team's services and jobs (those in `names`, or all) with each payload's laptop swaps
    (`local()` in workloads/config.py): the CPU profile, the locally made tiny LLM."""
    runs = [
        PayloadRun(path=path, spec=workload, args=workload.args.local())
        for path, workload in config.workloads()
        if names is None or workload.name in names
    ]
    return LaptopPlan(
        services=tuple(r for r in runs if isinstance(r.spec, Service)),
        jobs=tuple(r for r in runs if isinstance(r.spec, Job)),
    )
