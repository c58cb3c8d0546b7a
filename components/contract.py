"""The platform -> team contract: what a platform stack exports and its team stacks read.

A platform stack exports `PlatformExports`, one stack output per field (camelCase), plus its
`kubeconfig` as a secret output of its own. A team stack reads them back through its
StackReference into the same model (`read`) and checks its own config against them (`check`): a
GPU profile or pool that the platform lacks is a config error with the team's key path.
"""

from dataclasses import dataclass

import pulumi
from pydantic import ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.config import ConfigError, GpuClaim, Job, PlatformStack, TeamStack, Workers
from components.config.base import Model, key_path
from components.config.platform import AcceleratorType, GpuMode
from components.gpu import ACCELERATORS, machine_shape
from components.pricing import node_price

KUBECONFIG = "kubeconfig"  # secret: team stacks build their Kubernetes provider from it


class Export(Model):
    # A platform may export more than this version of rayplane knows: team stacks ignore the rest.
    model_config = ConfigDict(extra="ignore")


class GpuPoolExport(Export):
    name: str = Field(description="the pool's name in the platform config")
    node_pool_name: str = Field(description="GKE's name of the node pool")
    accelerator: AcceleratorType = Field(description="GKE accelerator type")
    gpus_per_node: int = Field(description="GPUs per node")
    machine_type: str = Field(description="machine type")
    gpu_mode: GpuMode = Field(description="dra or device-plugin")
    spot: bool = Field(description="Spot VMs")
    zones: list[str] = Field(description="zones of its nodes ([]: the cluster's)")
    min_nodes: int = Field(description="fewest nodes (autoscaling, all zones)")
    max_nodes: int = Field(description="most nodes (autoscaling, all zones)")
    node_price: float | None = Field(None, description="estimated USD per hour of a node, spot or not as the pool runs")

    @property
    def gpu_hour_price(self) -> float | None:
        return None if self.node_price is None else self.node_price / self.gpus_per_node


class GpuProfileExport(GpuClaim):
    """A GPU profile as team stacks see it: the claim, and the pools it resolved to."""

    model_config = ConfigDict(extra="ignore")

    eligible_pools: list[str] = Field(description="the GPU pools whose nodes can satisfy a claim of the profile")


class PlatformExports(Export):
    project: str = Field(description="the GCP project")
    cluster_name: str = Field(description="the GKE cluster")
    cluster_location: str = Field(description="its region or zone")
    kubernetes_version: str = Field(description="the minimum Kubernetes version of its control plane")
    node_service_account: str = Field(description="the nodes' GCP service account")
    gpu_node_pools: list[GpuPoolExport] = Field(description="the GPU node pools")
    gpu_profiles: list[GpuProfileExport] = Field(description="the GPU profiles teams can claim GPUs with")
    kuberay_version: str = Field(description="the KubeRay operator's version")
    gateway_class_name: str | None = Field(None, description="the GatewayClass for incremental upgrades, if any")
    gateway_source_ranges: list[str] = Field(
        [], description="where the Gateway's proxies and health checks reach pods from (with the Gateway API)"
    )
    rbac_security_group: str | None = Field(None, description="the Google Groups RBAC security group, if any")
    kueue_cluster_queues: dict[str, str] = Field({}, description="GPU pool -> its Kueue ClusterQueue")
    workload_bucket: str = Field(description="the bucket of payload archives")
    ray_image: str = Field(description="the image of every Ray head and worker")

    def pool(self, name: str) -> GpuPoolExport | None:
        return next((pool for pool in self.gpu_node_pools if pool.name == name), None)

    def profile(self, name: str) -> GpuProfileExport | None:
        return next((profile for profile in self.gpu_profiles if profile.name == name), None)

    def worker_gpus(self, workers: Workers) -> "WorkerGpus":
        """Where a worker group's pods run and what GPUs each gets (after `check`)."""
        if workers.gpu_profile is not None:
            profile = self.profile(workers.gpu_profile)
            pools = [self.pool(name) for name in profile.eligible_pools]
            return WorkerGpus(profile.eligible_pools, profile.count, _ray_types(pools), claim_template=profile.name)
        pool = self.pool(workers.gpu_pool)
        return WorkerGpus([pool.name], workers.gpus or pool.gpus_per_node, _ray_types([pool]))

    def cluster_queue(self, workers: Workers) -> str:
        """The Kueue ClusterQueue of a worker group's GPUs: its first pool's."""
        return self.kueue_cluster_queues[self.worker_gpus(workers).pools[0]]


@dataclass(frozen=True)
class WorkerGpus:
    pools: list[str]  # the pools the workers may run on
    gpus: int  # GPUs per worker pod
    ray_types: list[str]  # Ray's accelerator types of those pools' GPUs (one, unless a profile spans kinds)
    claim_template: str | None = None  # DRA: the team's ResourceClaimTemplate; None: nvidia.com/gpu limits


def _ray_types(pools: list[GpuPoolExport]) -> list[str]:
    return sorted({ACCELERATORS[pool.accelerator].ray_type for pool in pools})


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


# -- the platform's side


def export(
    cfg: PlatformStack,
    kubeconfig: pulumi.Output[str],
    *,
    cluster_name: pulumi.Input[str],
    cluster_location: pulumi.Input[str],
    node_service_account: pulumi.Input[str],
    workload_bucket: pulumi.Input[str],
    node_pool_names: list[pulumi.Input[str]],
    kuberay_version: str,
    gateway_class_name: str | None,
    gateway_source_ranges: list[str],
    kueue_cluster_queues: dict[str, str],
) -> None:
    """Export the contract from a platform stack (`node_pool_names` in the order of cfg.node_pools)."""

    def exports(resolved: dict) -> dict:
        pools = [
            GpuPoolExport(
                name=pool.name,
                nodePoolName=physical,
                accelerator=pool.accelerator,
                gpusPerNode=pool.accelerator_count,
                machineType=pool.machine_type,
                gpuMode=pool.gpu_mode,
                spot=pool.spot,
                zones=pool.zones,
                minNodes=pool.autoscaling.min_nodes,
                maxNodes=pool.autoscaling.max_nodes,
                nodePrice=node_price(cfg, pool),
            )
            for pool, physical in zip(cfg.node_pools, resolved.pop("nodePoolNames"), strict=True)
        ]
        profiles = [
            GpuProfileExport(
                **profile.model_dump(by_alias=True, exclude={"pools"}),
                eligiblePools=[pool.name for pool in cfg.profile_pools(profile)],
            )
            for profile in cfg.gpu_profiles
        ]
        contract = PlatformExports.model_validate(
            {
                "project": cfg.project,
                "kubernetesVersion": cfg.cluster.kubernetes_version,
                "gpuNodePools": pools,
                "gpuProfiles": profiles,
                "kuberayVersion": kuberay_version,
                "gatewayClassName": gateway_class_name,
                "gatewaySourceRanges": gateway_source_ranges,
                "rbacSecurityGroup": cfg.cluster.rbac_security_group,
                "kueueClusterQueues": kueue_cluster_queues,
                "rayImage": cfg.ray_image,
                **resolved,  # what the cloud names: the cluster, its location, the node SA, the bucket
            }
        )
        return contract.model_dump(by_alias=True, mode="json", exclude_none=True)

    values = pulumi.Output.all(
        clusterName=cluster_name,
        clusterLocation=cluster_location,
        nodeServiceAccount=node_service_account,
        workloadBucket=workload_bucket,
        nodePoolNames=node_pool_names,
    ).apply(exports)
    pulumi.export(KUBECONFIG, kubeconfig)
    for field in PlatformExports.model_fields.values():
        pulumi.export(field.alias, values.apply(lambda v, key=field.alias: v.get(key)))


# -- the team's side


def parse(outputs: dict, platform_stack: str) -> PlatformExports:
    """A platform stack's outputs (by export name), typed; a missing or malformed one is a config error."""
    try:
        return PlatformExports.model_validate({name: v for name, v in outputs.items() if v is not None})
    except ValidationError as exc:
        errors = [
            f"platformStack: {platform_stack} has no output {key_path(e['loc'])}"
            if e["type"] == "missing"
            else f"platformStack: {platform_stack} output {key_path(e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        errors.append(f"platformStack: run `pulumi up` on {platform_stack} with this version of rayplane first")
        raise ConfigError(errors) from None


def read(platform: pulumi.StackReference, platform_stack: str) -> pulumi.Output[PlatformExports]:
    """The platform stack's exports through its StackReference, typed."""
    names = [field.alias for field in PlatformExports.model_fields.values()]
    values = pulumi.Output.all(*[platform.get_output(name) for name in names])
    return values.apply(lambda v: parse(dict(zip(names, v, strict=True)), platform_stack))


def check(config: TeamStack, platform: PlatformExports) -> None:
    """What only the platform's exports can tell: raises ConfigError with the team's key paths."""
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
    for path, workload in config.workloads():
        errors += _workload_errors(path, workload, platform)
    if not errors:
        errors += _quota_errors(config, platform)
    if errors:
        raise ConfigError(errors)


def fewest_workers(config: TeamStack, workload) -> int:
    """Worker pods a workload holds at its smallest: a queued job runs at its maximum size
    (ray_workloads.cluster_spec), everything else from its minimum."""
    workers = workload.workers
    return workers.replicas.max if config.team.kueue and isinstance(workload, Job) else workers.replicas.min


def _quota_errors(config: TeamStack, platform: PlatformExports) -> list[str]:
    """The team's quota must hold each worker and every workload at its minimum size at once."""
    quota, errors = config.team.quota, []
    gpus = cpu = memory = 0
    for path, workload in config.workloads():
        workers, per_worker = workload.workers, platform.worker_gpus(workload.workers).gpus
        if per_worker > quota.gpus:
            errors.append(f"{path}.workers: a worker gets {per_worker} GPU(s), team.quota.gpus is {quota.gpus}")
        count = fewest_workers(config, workload)
        gpus += count * per_worker
        cpu += workload.head.cpu + count * workers.cpu
        memory += workload.head.memory_gib + count * workers.memory_gib
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


def _workload_errors(path: str, workload, platform: PlatformExports) -> list[str]:
    workers, errors = workload.workers, []
    errors += _size_errors(path, workers, platform)
    if workers.gpu_pool is not None:
        pool = platform.pool(workers.gpu_pool)
        if pool is None:
            known = ", ".join(p.name for p in platform.gpu_node_pools)
            return [f"{path}.workers.gpuPool: the platform has no GPU pool {workers.gpu_pool!r} ({known})"]
        if pool.gpu_mode != "device-plugin":
            return [f"{path}.workers.gpuPool: {pool.name} is a dra pool; use a gpuProfile"]
        if workers.gpus is not None and workers.gpus > pool.gpus_per_node:
            errors.append(f"{path}.workers.gpus: {pool.name} nodes have {pool.gpus_per_node} GPU(s)")
    elif platform.profile(workers.gpu_profile) is None:
        return []  # reported with team.gpuProfiles
    given, args, source = platform.worker_gpus(workers), workload.typed_args(), workers.gpu_profile or workers.gpu_pool
    needed = args.gpus_per_replica()
    if needed > given.gpus:
        errors.append(
            f"{path}.args: a replica needs {needed:g} GPU(s) (tensor x pipeline parallel size) but a worker"
            f" gets {given.gpus} from {source}"
        )
    if (wanted := args.ray_accelerator()) and given.ray_types != [wanted]:
        errors.append(
            f"{path}.args.accelerator_type: {wanted!r}, but {source} gives {' or '.join(given.ray_types)} GPUs"
        )
    if getattr(workload, "upgrade_strategy", None) == "NewClusterWithIncrementalUpgrade" and not (
        platform.gateway_class_name
    ):
        errors.append(f"{path}.upgradeStrategy: incremental upgrades need the platform's cluster.gatewayApi")
    return errors
