"""What only the platform's exports can tell about a team's config: the checks that building the
team's plan runs (components/plan.py) before anything of the team is registered. Every error
names the team's key path."""

import math

from pydantic.alias_generators import to_camel, to_snake

from components.capacity import OBJECT_STORE_SHARE, offload_per_worker
from components.config import Job, TeamStack, Workers, Workload
from components.contract import PlatformExports
from components.gpu import allocatable
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


def grant_errors(config: TeamStack, platform: PlatformExports, this_stack: str) -> list[str]:
    """The team stack `this_stack` against its tenant grant in the platform's registry
    (rayplane:tenants): the stack itself, the team's namespace, project, buckets, GPU profiles and
    device-plugin pools, quota and serve clients. Each error names the team's key and the platform's."""
    team, stack = config.team, config.platform_stack.rsplit("/", 1)[-1]
    found = platform.tenant(team.name)
    if found is None:
        return [f"team.name: {team.name!r} is not a tenant of {stack}: add it to {stack}'s rayplane:tenants"]
    i, tenant = found
    grant = f"{stack}'s tenants[{i}]"
    if this_stack not in tenant.stacks:
        return [
            f"team.name: {team.name!r} is {grant}, whose grant only the stacks {', '.join(tenant.stacks)} may use,"
            f" not {this_stack}"
        ]
    errors = []
    if team.namespace != tenant.namespace:
        errors.append(f"team.namespace: {team.namespace!r}, but {grant}.namespace is {tenant.namespace!r}")
    if config.project != tenant.project:
        errors.append(f"gcp:project: {config.project}, but {grant}.project is {tenant.project}")
    readable = {*tenant.own_buckets, *tenant.read_buckets, platform.workload_bucket}  # that one: team_errors
    errors += [
        f"team.readBuckets[{j}]: {bucket} is not granted ({grant}.ownBuckets and readBuckets)"
        for j, bucket in enumerate(team.read_buckets)
        if bucket not in readable
    ]
    errors += [
        f"team.writeBuckets[{j}]: {bucket} is not the team's ({grant}.ownBuckets)"
        for j, bucket in enumerate(team.write_buckets)
        if bucket not in {*tenant.own_buckets, platform.workload_bucket}
    ]
    errors += [
        f"team.gpuProfiles[{j}]: {name!r} is not granted ({grant}.gpuProfiles)"
        for j, name in enumerate(team.gpu_profiles)
        if name not in tenant.gpu_profiles and platform.profile(name)  # else team_errors says the platform lacks it
    ]
    errors += [
        f"{path}.workers.gpuPool: {workload.workers.gpu_pool!r} is not granted ({grant}.gpuPools)"
        for path, workload in config.workloads()
        if workload.workers.gpu_pool not in (None, *tenant.gpu_pools)
        and (pool := platform.pool(workload.workers.gpu_pool))
        and pool.gpu_mode == "device-plugin"  # else `unplaced` says why it cannot be used at all
    ]
    for field, asked in team.quota.model_dump(by_alias=True).items():
        if asked > (most := getattr(tenant.quota, to_snake(field))):
            errors.append(f"team.quota.{field}: {asked}, above {grant}.quota.{field} {most}")
    errors += [
        f"team.serveClients[{j}]: {client!r} is not granted ({grant}.serveClients)"
        for j, client in enumerate(team.serve_clients)
        if client not in tenant.serve_clients
    ]
    return errors


def unplaced(path: str, workers: Workers, platform: PlatformExports) -> list[str] | None:
    """Why the platform cannot place a worker group (None: it can): a pool it lacks or that is not a
    device-plugin pool, or a profile it lacks (already reported with team.gpuProfiles: no line)."""
    if workers.gpu_pool is None:
        return None if platform.profile(workers.gpu_profile) else []
    pool = platform.pool(workers.gpu_pool)
    if pool is None:
        known = ", ".join(p.name for p in platform.gpu_node_pools)
        return [f"{path}.workers.gpuPool: the platform has no GPU pool {workers.gpu_pool!r} ({known})"]
    if pool.gpu_mode != "device-plugin":
        return [f"{path}.workers.gpuPool: {pool.name} is a dra pool; use a gpuProfile"]
    return None


def queued_pool_errors(path: str, placement: Placement, queued: bool) -> list[str]:
    """A queued-provisioning pool adds nodes only for jobs that Kueue admits: anything else there would
    wait forever."""
    if queued or not any(pool.queued for pool in placement.pools):
        return []
    job = path.startswith("jobs")
    what, fix = (
        ("a job that does not queue", "set team.kueue or use another pool")
        if job
        else ("a service", "use another pool")
    )
    return [
        f"{path}.workers.gpuPool: {placement.source} adds nodes only for jobs that Kueue admits (queued"
        f" provisioning), so {what} would never get one: {fix}"
    ]


def _fit(
    path: str, cpu: int, memory_gib: int, where: str, machine_type: str, sidecar: tuple[float, float] = (0, 0)
) -> list[str]:
    """A pod's requests, its container's and its `sidecar`'s (vCPUs, GiB), against what GKE leaves
    allocatable on a node of `machine_type`."""
    room = allocatable(machine_type)
    if room is None:
        return []
    vcpus, gib = room
    errors = []
    also = [f" and its compile cache's GCS FUSE sidecar's {amount:g}" if amount else "" for amount in sidecar]
    if cpu + sidecar[0] > vcpus:
        errors.append(f"{path}.cpu: {cpu} vCPUs{also[0]}, but {where}'s {machine_type} leaves {vcpus:g} allocatable")
    if memory_gib + sidecar[1] > gib:
        errors.append(
            f"{path}.memoryGib: {memory_gib} GiB{also[1]}, but {where}'s {machine_type} leaves {gib:g} allocatable"
        )
    return errors


def workload_errors(
    path: str, workload: Workload, placement: Placement, platform: PlatformExports, sidecar: tuple[float, float]
) -> list[str]:
    """A placed workload's errors: its head must fit a system node and its worker pods the machines
    of every pool they may run on, in what GKE leaves allocatable there; its replicas must fit a
    worker's GPUs, of the kind they ask for."""
    workers, head = workload.workers, workload.head
    errors = _fit(f"{path}.head", head.cpu, head.memory_gib, "the system pool", platform.system_machine_type)
    for pool in placement.pools:
        errors += _fit(f"{path}.workers", workers.cpu, workers.memory_gib, pool.name, pool.machine_type, sidecar)
    if workers.gpus is not None and workers.gpus > (per_node := placement.pools[0].gpus_per_node):
        errors.append(f"{path}.workers.gpus: {placement.pools[0].name} nodes have {per_node} GPU(s)")
    return errors + _offload_errors(path, workload, placement) + _args_errors(path, workload, placement, platform)


def _offload_errors(path: str, workload: Workload, placement: Placement) -> list[str]:
    """KV offload lives in the worker pod's memory: the offload of the replicas one worker can hold,
    beside Ray's object store, must fit workers.memoryGib (which _fit holds to the node's allocatable)."""
    if workload.args.profile != "cluster":
        return []
    gib, replicas = offload_per_worker(list(workload.args.llm_models().values()), placement.gpus)
    memory = workload.workers.memory_gib
    if gib <= (room := memory * (1 - OBJECT_STORE_SHARE)):
        return []
    wanted = math.ceil(gib / (1 - OBJECT_STORE_SHARE))
    nodes = [
        f"{pool.name}'s {pool.machine_type} leaves {gib_left:g} GiB allocatable"
        for pool in placement.pools
        if (left := allocatable(pool.machine_type)) and wanted > (gib_left := left[1])
    ]
    fix = f"lower kv_offload_gib ({'; '.join(nodes)})" if nodes else f"raise workers.memoryGib to {wanted}"
    return [
        f"{path}.args: the KV offload of the {replicas} replica(s) a worker can hold takes {gib:g} GiB of its"
        f" memory, but workers.memoryGib {memory} leaves {room:g} beside Ray's object store"
        f" ({OBJECT_STORE_SHARE:.0%} of it): {fix}"
    ]


def storage_errors(path: str, workload: Workload, config: TeamStack) -> list[str]:
    """In the cluster a payload reads and writes gs:// buckets only, through the team's service
    account: those its team.readBuckets and writeBuckets grant (its tenant's grant bounds those)."""
    team, errors = config.team, []
    reads, writes = workload.args.storage()
    for kind, places, allowed, keys in (
        ("reads", reads, {*team.read_buckets, *team.write_buckets}, "team.readBuckets or writeBuckets"),
        ("writes", writes, set(team.write_buckets), "team.writeBuckets"),
    ):
        for arg, place in places.items():
            if not place.startswith("gs://"):
                errors.append(
                    f"{path}.args.{arg}: {place!r} is not a gs:// location; in the cluster a payload {kind} only"
                    " the team's buckets"
                )
            elif (bucket := place.removeprefix("gs://").split("/", 1)[0]) not in allowed:
                errors.append(f"{path}.args.{arg}: {kind} {place}, but {bucket} is not in {keys}")
    return errors


def _args_errors(path: str, workload: Workload, placement: Placement, platform: PlatformExports) -> list[str]:
    errors, args = [], workload.args
    needed = args.gpus_per_replica()
    if needed > placement.gpus:
        errors.append(
            f"{path}.args: a replica needs {needed:g} GPU(s) (tensor x pipeline parallel size) but a worker"
            f" gets {placement.gpus} from {placement.source}"
        )
    if (wanted := args.ray_accelerator()) and placement.ray_types != [wanted]:
        kinds = " or ".join(placement.ray_types)
        errors.append(f"{path}.args.accelerator_type: {wanted!r}, but {placement.source} gives {kinds} GPUs")
    if getattr(workload, "upgrade_strategy", None) == "NewClusterWithIncrementalUpgrade" and not (
        platform.gateway_class_name
    ):
        errors.append(f"{path}.upgradeStrategy: incremental upgrades need the platform's cluster.gatewayApi")
    return errors


def queued_job_errors(path: str, job: Job, workers: int, placement: Placement) -> list[str]:
    """A queued job's errors. Its size is what its payload needs (`workers`): Kueue reserves quota
    for every worker it renders, so `workers.replicas` must allow that size. Kueue frees its quota
    the moment it ends (its Workload finishes), so its Ray cluster must go then, not after a TTL."""
    errors, replicas = [], job.workers.replicas
    if not replicas.min <= workers <= replicas.max:
        errors.append(
            f"{path}.workers.replicas: a queued job runs at the size its payload needs, {workers} worker(s) of"
            f" {placement.gpus} GPU(s) from {placement.source}, but workers.replicas is {replicas.min}..{replicas.max}"
        )
    if job.ttl_seconds_after_finished:
        errors.append(
            f"{path}.ttlSecondsAfterFinished: {job.ttl_seconds_after_finished}, but Kueue frees a queued job's quota"
            " when it ends, and its Ray cluster would hold the GPUs that long while Kueue admits the next job onto"
            " them; leave it 0 (the submitter Job and Cloud Logging keep the logs)"
        )
    return errors
