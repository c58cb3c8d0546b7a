"""A team's services and jobs as KubeRay RayServices and RayJobs.

The flow of a workload's GPUs: its `workers` (config) -> the platform's exports resolve them to
pools, GPUs per worker and, for DRA, a claim template (`PlatformExports.worker_gpus`) -> the
worker group here (node affinity, toleration, claim or `nvidia.com/gpu` limit, `num-gpus`).
"""

import json
import shlex

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.config import Job, Service, TeamStack, Workload
from components.contract import PlatformExports, WorkerGpus
from components.conventions import (
    DEVICE_PLUGIN_GPU,
    GPU_CLAIM,
    GPU_TOLERATION,
    POOL_LABEL,
    QUEUE_LABEL,
    RAY_API,
    WORKER_GROUP,
    node_affinity,
    on_system_pool,
)
from components.rayspec import (
    AutoscalerOptions,
    ClusterUpgradeOptions,
    GcsFaultToleranceOptions,
    HeadGroupSpec,
    RayClusterSpec,
    RayJobSpec,
    RayServiceSpec,
    ServeApplication,
    ServeConfig,
    UpgradeStrategy,
    WorkerGroupSpec,
)
from components.versions import pinned
from workloads.config import Args


def _env(workload: Workload, secret_name: str) -> list[dict]:
    """The payload's Ray environment (every Ray process reads it at start), then the secrets."""
    plain = [{"name": var, "value": value} for var, value in sorted(workload.typed_args().serve_env().items())]
    return plain + [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
        for var, key in sorted(workload.secret_env.items())
    ]


def _container(
    name: str, image: str, cpu: int, memory_gib: int, env: list[dict], extra_limits: dict | None = None
) -> dict:
    memory = f"{memory_gib}Gi"
    return {
        "name": name,
        "image": image,
        **({"env": env} if env else {}),
        # No CPU limit: throttling Ray's own processes hurts more than it protects.
        "resources": {
            "requests": {"cpu": str(cpu), "memory": memory},
            "limits": {"memory": memory, **(extra_limits or {})},
        },
    }


def cluster_spec(
    workload: Workload,
    platform: PlatformExports,
    service_account: str,
    secret_name: str,
    gcs: GcsFaultToleranceOptions | None = None,
    fixed_size: bool = False,
) -> RayClusterSpec:
    """The Ray cluster of a workload. `fixed_size`: no autoscaling, workers.replicas.max workers from
    the start (what Kueue admits: it refuses a queued cluster that autoscales)."""
    env, image = _env(workload, secret_name), platform.ray_image
    head = HeadGroupSpec(
        # The head schedules no work: Serve replicas and Data tasks go to the GPU workers.
        rayStartParams={"num-cpus": "0", "num-gpus": "0", "dashboard-host": "0.0.0.0"},
        template={
            "spec": {
                "serviceAccountName": service_account,
                "nodeSelector": on_system_pool(),
                "containers": [_container("ray-head", image, workload.head.cpu, workload.head.memory_gib, env)],
            }
        },
    )
    workers, gpus = workload.workers, platform.worker_gpus(workload.workers)
    dra = gpus.claim_template is not None
    container = _container(
        "ray-worker", image, workers.cpu, workers.memory_gib, env, None if dra else {DEVICE_PLUGIN_GPU: str(gpus.gpus)}
    )
    pod: dict = {
        "serviceAccountName": service_account,
        "affinity": node_affinity({POOL_LABEL: gpus.pools}),
        "tolerations": [GPU_TOLERATION],
        "containers": [container],
    }
    if dra:
        container["resources"]["claims"] = [{"name": GPU_CLAIM}]
        pod["resourceClaims"] = [{"name": GPU_CLAIM, "resourceClaimTemplateName": gpus.claim_template}]
    least = workers.replicas.max if fixed_size else workers.replicas.min
    group = WorkerGroupSpec(
        groupName=WORKER_GROUP,
        replicas=least,
        minReplicas=least,
        maxReplicas=workers.replicas.max,
        resources=_ray_resources(gpus),
        template={"spec": pod},
    )
    return RayClusterSpec(
        enableInTreeAutoscaling=not fixed_size,
        autoscalerOptions=None if fixed_size else AutoscalerOptions(),
        headGroupSpec=head,
        workerGroupSpecs=[group],
        gcsFaultToleranceOptions=gcs,
    )


def _ray_resources(gpus: WorkerGpus) -> dict[str, str]:
    """What a worker offers Ray. GPU: Ray cannot see DRA GPUs on its own. accelerator_type: Ray's
    autoscaler adds a worker for replicas pinned to an accelerator (Serve LLM's `accelerator_type`)
    only if it knows a new worker offers it; a group spanning GPU kinds cannot promise one."""
    pinned = {f"accelerator_type:{gpus.ray_types[0]}": "1"} if len(gpus.ray_types) == 1 else {}
    return {"GPU": str(gpus.gpus), **pinned}


def runtime_env(working_dir: str, workload: Workload, args: Args) -> dict:
    # A laptop's virtualenv already has the payloads' packages (pyproject's `workloads` extra).
    pip = workload.payloads[workload.payload].pip if args.profile == "cluster" else ()
    return {"working_dir": working_dir, **({"pip": [pinned(package) for package in pip]} if pip else {})}


def serve_application(service: Service, working_dir: str, args: Args) -> ServeApplication:
    """The Serve application of a service with these args (the local runner passes its swaps)."""
    return ServeApplication(
        name=service.name,
        import_path=service.payloads[service.payload].import_path,
        args=args.model_dump(mode="json", exclude_none=True),
        runtime_env=runtime_env(working_dir, service, args),
    )


def rayservice_spec(
    service: Service, platform: PlatformExports, working_dir: str, service_account: str, secret_name: str
) -> dict:
    gcs = None
    if ft := service.gcs_fault_tolerance:
        password = ft.password_secret and {
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": ft.password_secret}}
        }
        gcs = GcsFaultToleranceOptions(redisAddress=ft.redis_address, redisPassword=password or None)
    cluster = cluster_spec(service, platform, service_account, secret_name, gcs)
    upgrade = UpgradeStrategy(type=service.upgrade_strategy)
    if service.upgrade_strategy == "NewClusterWithIncrementalUpgrade":
        upgrade = UpgradeStrategy(
            type=service.upgrade_strategy,
            clusterUpgradeOptions=ClusterUpgradeOptions(gatewayClassName=platform.gateway_class_name),
        )
    application = serve_application(service, working_dir, service.typed_args())
    spec = RayServiceSpec(
        serveConfigV2=ServeConfig(applications=[application]).to_yaml(),
        rayClusterConfig=cluster,
        upgradeStrategy=upgrade,
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


def job_entrypoint(job: Job, args: Args, python: str = "python") -> str:
    config = json.dumps(args.model_dump(mode="json", exclude_none=True))
    return f"{python} -m {job.payloads[job.payload].module} --config {shlex.quote(config)}"


def rayjob_spec(
    job: Job, platform: PlatformExports, working_dir: str, service_account: str, secret_name: str, queued: bool
) -> dict:
    args = job.typed_args()
    spec = RayJobSpec(
        entrypoint=job_entrypoint(job, args),
        runtimeEnvYAML=yaml.safe_dump(runtime_env(working_dir, job, args)),
        ttlSecondsAfterFinished=job.ttl_seconds_after_finished,
        activeDeadlineSeconds=job.active_deadline_seconds,
        backoffLimit=job.backoff_limit,
        suspend=queued,  # Kueue unsuspends it once the quota fits
        rayClusterSpec=cluster_spec(job, platform, service_account, secret_name, fixed_size=queued),
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


def local_queue(workers) -> str:
    """The team's LocalQueue for a worker group's GPUs is named after its profile or pool."""
    return workers.gpu_profile or workers.gpu_pool


class RayWorkloads(pulumi.ComponentResource):
    """The team's RayServices and RayJobs, in its namespace, with its service account."""

    def __init__(
        self,
        config: TeamStack,
        platform: PlatformExports,
        namespace: pulumi.Input[str],
        working_dir: pulumi.Input[str],
        service_account: str,
        secret_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:team:RayWorkloads", f"{config.team.name}-workloads", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        working_dir = pulumi.Output.from_input(working_dir)
        for service in config.services:
            k8s.apiextensions.CustomResource(
                f"{config.team.name}-{service.name}",
                api_version=RAY_API,
                kind="RayService",
                metadata={"name": service.name, "namespace": namespace},
                spec=working_dir.apply(
                    lambda uri, s=service: rayservice_spec(s, platform, uri, service_account, secret_name)
                ),
                opts=child,
            )
        for job in config.jobs:
            queued = config.team.kueue
            labels = {QUEUE_LABEL: local_queue(job.workers)} if queued else {}
            k8s.apiextensions.CustomResource(
                f"{config.team.name}-{job.name}",
                api_version=RAY_API,
                kind="RayJob",
                metadata={"name": job.name, "namespace": namespace, "labels": labels},
                spec=working_dir.apply(
                    lambda uri, j=job, q=queued: rayjob_spec(j, platform, uri, service_account, secret_name, q)
                ),
                opts=child,
            )
        self.register_outputs({})
