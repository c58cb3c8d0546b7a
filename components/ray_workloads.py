"""A team's services and jobs as KubeRay RayServices and RayJobs.

Everything that depends on the platform (GPU profiles, pools, Kueue queues) is checked against the
platform stack's exports first; a mismatch fails with the key path in the team's stack config.
"""

import json
import shlex

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel

from components.config import ConfigError, GpuProfile, Job, Service, TeamStack, Workload
from components.node_pools import GPU_TOLERATION, POOL_LABEL
from components.rayspec import (
    API_VERSION,
    IMAGE,
    ClusterUpgradeOptions,
    GcsFaultToleranceOptions,
    HeadGroupSpec,
    RayClusterSpec,
    RayJobSpec,
    RayServiceSpec,
    ServeApplication,
    ServeConfig,
    ServeDeployment,
    UpgradeStrategy,
    WorkerGroupSpec,
)
from workloads import catalog
from workloads.config import Profile

CLAIM = "gpu"  # the pod's claim name, bound to the team's ResourceClaimTemplate of the profile
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


class PlatformView(BaseModel):
    """The platform stack's exports that team workloads depend on."""

    gpu_profiles: dict[str, GpuProfile]
    gpu_pools: dict[str, dict]
    queues: dict[str, str]
    gateway_class: str | None
    google_groups_rbac: bool

    @classmethod
    def from_exports(
        cls, profiles: list[dict], pools: list[dict], queues: dict | None, gateway: str | None, groups: str | None
    ):
        return cls(
            gpu_profiles={p["name"]: GpuProfile.model_validate(p) for p in profiles},
            gpu_pools={p["name"]: p for p in pools},
            queues=queues or {},
            gateway_class=gateway,
            google_groups_rbac=bool(groups),
        )


def worker_gpus(workload: Workload, platform: PlatformView) -> tuple[list[str], int]:
    """The pools a workload's workers may run on and the GPUs each worker gets."""
    workers = workload.workers
    if workers.gpu_profile is not None:
        profile = platform.gpu_profiles[workers.gpu_profile]
        return profile.pools, profile.count
    pool = platform.gpu_pools[workers.gpu_pool]
    return [pool["name"]], workers.gpus or pool["gpusPerNode"]


def check(config: TeamStack, platform: PlatformView) -> None:
    """What only the platform's exports can tell: raises ConfigError with key paths."""
    errors = []
    for i, name in enumerate(config.team.gpu_profiles):
        if name not in platform.gpu_profiles:
            known = ", ".join(platform.gpu_profiles) or "none"
            errors.append(f"team.gpuProfiles[{i}]: the platform stack has no GPU profile {name!r} ({known})")
    if config.team.group and not platform.google_groups_rbac:
        errors.append("team.group: the platform cluster has no cluster.rbacSecurityGroup for Google Groups RBAC")
    if config.team.kueue and not platform.queues:
        errors.append("team.kueue: the platform stack runs no Kueue (its addons.kueue.enabled is false)")
    for path, workload in config.workloads():
        pool = workload.workers.gpu_pool
        if pool is not None and pool not in platform.gpu_pools:
            errors.append(
                f"{path}.workers.gpuPool: the platform has no GPU pool {pool!r} ({', '.join(platform.gpu_pools)})"
            )
            continue
        if pool is not None and platform.gpu_pools[pool]["gpuMode"] != "device-plugin":
            errors.append(f"{path}.workers.gpuPool: {pool} is a dra pool; use a gpuProfile")
            continue
        if workload.workers.gpu_profile not in (None, *platform.gpu_profiles):
            continue  # reported above
        _, gpus = worker_gpus(workload, platform)
        if pool is not None and gpus > platform.gpu_pools[pool]["gpusPerNode"]:
            errors.append(f"{path}.workers.gpus: {pool} nodes have {platform.gpu_pools[pool]['gpusPerNode']} GPU(s)")
        needed = args_of(path, workload).gpus_per_replica()
        if needed > gpus:
            errors.append(
                f"{path}.args: a replica needs {needed:g} GPU(s) (tensor x pipeline parallel size) but a worker"
                f" gets {gpus} from {workload.workers.gpu_profile or pool}"
            )
        if (
            getattr(workload, "upgrade_strategy", None) == "NewClusterWithIncrementalUpgrade"
            and not platform.gateway_class
        ):
            errors.append(f"{path}.upgradeStrategy: incremental upgrades need the platform's cluster.gatewayApi")
    if errors:
        raise ConfigError(errors)


def args_of(path: str, workload: Workload):
    payloads = catalog.SERVICES if path.startswith("services") else catalog.JOBS
    return payloads[workload.payload].args.model_validate(workload.args)


def _env(workload: Workload, secret_name: str) -> list[dict]:
    return [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
        for var, key in sorted(workload.secret_env.items())
    ]


def _container(name: str, cpu: int, memory_gib: int, env: list[dict], extra_limits: dict | None = None) -> dict:
    memory = f"{memory_gib}Gi"
    return {
        "name": name,
        "image": IMAGE,
        **({"env": env} if env else {}),
        # No CPU limit: throttling Ray's own processes hurts more than it protects.
        "resources": {
            "requests": {"cpu": str(cpu), "memory": memory},
            "limits": {"memory": memory, **(extra_limits or {})},
        },
    }


def cluster_spec(
    workload: Workload,
    service_account: str,
    secret_name: str,
    pools: list[str],
    gpus: int,
    gcs: GcsFaultToleranceOptions | None = None,
) -> RayClusterSpec:
    env = _env(workload, secret_name)
    head = HeadGroupSpec(
        # The head schedules no work: Serve replicas and Data tasks go to the GPU workers.
        rayStartParams={"num-cpus": "0", "num-gpus": "0", "dashboard-host": "0.0.0.0"},
        template={
            "spec": {
                "serviceAccountName": service_account,
                "nodeSelector": {POOL_LABEL: "system"},
                "containers": [_container("ray-head", workload.head.cpu, workload.head.memory_gib, env)],
            }
        },
    )
    workers = workload.workers
    dra = workers.gpu_profile is not None
    container = _container(
        "ray-worker", workers.cpu, workers.memory_gib, env, None if dra else {"nvidia.com/gpu": str(gpus)}
    )
    pod: dict = {
        "serviceAccountName": service_account,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": pools}]}
                    ]
                }
            }
        },
        "tolerations": [GPU_TOLERATION],
        "containers": [container],
    }
    start_params = {}
    if dra:
        container["resources"]["claims"] = [{"name": CLAIM}]
        pod["resourceClaims"] = [{"name": CLAIM, "resourceClaimTemplateName": workers.gpu_profile}]
        start_params["num-gpus"] = str(gpus)  # Ray cannot see DRA GPUs on its own
    group = WorkerGroupSpec(
        groupName="gpu-workers",
        replicas=workers.replicas.min,
        minReplicas=workers.replicas.min,
        maxReplicas=workers.replicas.max,
        rayStartParams=start_params,
        template={"spec": pod},
    )
    return RayClusterSpec(headGroupSpec=head, workerGroupSpecs=[group], gcsFaultToleranceOptions=gcs)


def runtime_env(working_dir: str, pip: tuple[str, ...], profile: Profile) -> dict:
    # A laptop's virtualenv already has the payloads' packages (pyproject's `workloads` extra).
    return {"working_dir": working_dir, **({"pip": list(pip)} if pip and profile == "cluster" else {})}


def serve_application(service: Service, working_dir: str, profile: Profile = "cluster") -> ServeApplication:
    """The Serve application of a service; the local runner uses it with profile "cpu"."""
    payload = catalog.SERVICES[service.payload]
    args = payload.args.model_validate({**service.args, "profile": profile})
    return ServeApplication(
        name=service.name,
        import_path=payload.import_path,
        args=args.model_dump(mode="json", exclude_none=True),
        runtime_env=runtime_env(working_dir, payload.pip, profile),
        deployments=[ServeDeployment.model_validate(d) for d in args.serve_deployments()],
    )


def rayservice_spec(
    service: Service, platform: PlatformView, working_dir: str, service_account: str, secret_name: str
) -> dict:
    pools, gpus = worker_gpus(service, platform)
    gcs = None
    if ft := service.gcs_fault_tolerance:
        password = ft.password_secret and {
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": ft.password_secret}}
        }
        gcs = GcsFaultToleranceOptions(redisAddress=ft.redis_address, redisPassword=password or None)
    cluster = cluster_spec(service, service_account, secret_name, pools, gpus, gcs)
    upgrade = UpgradeStrategy(type=service.upgrade_strategy)
    if service.upgrade_strategy == "NewClusterWithIncrementalUpgrade":
        upgrade = UpgradeStrategy(
            type=service.upgrade_strategy,
            clusterUpgradeOptions=ClusterUpgradeOptions(gatewayClassName=platform.gateway_class),
        )
    spec = RayServiceSpec(
        serveConfigV2=ServeConfig(applications=[serve_application(service, working_dir)]).to_yaml(),
        rayClusterConfig=cluster,
        upgradeStrategy=upgrade,
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


def job_entrypoint(job: Job, profile: Profile = "cluster", python: str = "python") -> str:
    payload = catalog.JOBS[job.payload]
    args = payload.args.model_validate({**job.args, "profile": profile})
    config = json.dumps(args.model_dump(mode="json", exclude_none=True))
    return f"{python} -m {payload.module} --config {shlex.quote(config)}"


def rayjob_spec(
    job: Job, platform: PlatformView, working_dir: str, service_account: str, secret_name: str, queued: bool
) -> dict:
    pools, gpus = worker_gpus(job, platform)
    spec = RayJobSpec(
        entrypoint=job_entrypoint(job),
        runtimeEnvYAML=yaml.safe_dump(runtime_env(working_dir, catalog.JOBS[job.payload].pip, "cluster")),
        ttlSecondsAfterFinished=job.ttl_seconds_after_finished,
        activeDeadlineSeconds=job.active_deadline_seconds,
        backoffLimit=job.backoff_limit,
        suspend=queued,  # Kueue unsuspends it once the quota fits
        rayClusterSpec=cluster_spec(job, service_account, secret_name, pools, gpus),
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


class RayWorkloads(pulumi.ComponentResource):
    """The team's RayServices and RayJobs, in its namespace, with its service account."""

    def __init__(
        self,
        config: TeamStack,
        platform: pulumi.Output[PlatformView],
        namespace: pulumi.Input[str],
        working_dir: pulumi.Input[str],
        service_account: str,
        secret_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:team:RayWorkloads", f"{config.team.name}-workloads", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        inputs = pulumi.Output.all(platform, working_dir)
        for service in config.services:
            k8s.apiextensions.CustomResource(
                f"{config.team.name}-{service.name}",
                api_version=API_VERSION,
                kind="RayService",
                metadata={"name": service.name, "namespace": namespace},
                spec=inputs.apply(lambda v, s=service: rayservice_spec(s, v[0], v[1], service_account, secret_name)),
                opts=child,
            )
        for job in config.jobs:
            queued = config.team.kueue
            # The team's LocalQueue for the job's GPUs is named after its profile or pool.
            labels = {QUEUE_LABEL: job.workers.gpu_profile or job.workers.gpu_pool} if queued else {}
            k8s.apiextensions.CustomResource(
                f"{config.team.name}-{job.name}",
                api_version=API_VERSION,
                kind="RayJob",
                metadata={"name": job.name, "namespace": namespace, "labels": labels},
                spec=inputs.apply(
                    lambda v, j=job, q=queued: rayjob_spec(j, v[0], v[1], service_account, secret_name, q)
                ),
                opts=child,
            )
        self.register_outputs({})
