"""A team's services and jobs as KubeRay RayServices and RayJobs, rendered from the team's plan.

The flow of a workload's GPUs: its `workers` (config) -> its placement in the plan (pools, GPUs per
worker and, for DRA, the profile's claim template; components/placement.py) -> the worker group
here (node affinity, toleration, claim or `nvidia.com/gpu` limit, Ray's `GPU` resource).
"""

import json
import shlex

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.conventions import (
    DEVICE_PLUGIN_GPU,
    GCS_FUSE_ANNOTATION,
    GCS_FUSE_DRIVER,
    GCS_FUSE_SIDECAR,
    GPU_CLAIM,
    GPU_TOLERATION,
    POOL_LABEL,
    QUEUE_LABEL,
    RAY_API,
    RAY_GID,
    RAY_UID,
    TEAM_SERVICE_ACCOUNT,
    WORKER_GROUP,
    in_class,
    node_affinity,
    on_system_pool,
)
from components.placement import Placement
from components.plan import PayloadRun, TeamPlan, WorkloadPlan
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


def _env(run: PayloadRun, secret_name: str) -> list[dict]:
    """The payload's Ray environment (every Ray process reads it at start), then the secrets."""
    plain = [{"name": var, "value": value} for var, value in sorted(run.args.serve_env().items())]
    return plain + [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
        for var, key in sorted(run.spec.secret_env.items())
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


COMPILE_CACHE = "vllm-cache"  # the volume, and where workers mount it


def compile_cache(pod: dict, container: dict, uri: str) -> None:
    """vLLM's cache (its torch.compile artifacts) on the team's `uri`, through GKE's GCS FUSE sidecar
    as the pod's Workload Identity: VLLM_CACHE_ROOT is where vLLM 0.29 keeps it (vllm/envs.py). Each
    artifact is written to a temporary file and renamed into place (vLLM 0.29's AOT save,
    compilation/decorators.py; torch's write_atomic, _inductor/codecache.py): on Cloud Storage the
    renamed file is a new object, which readers see whole or not at all."""
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    options = f"uid={RAY_UID},gid={RAY_GID},implicit-dirs,only-dir={path}"
    pod.setdefault("volumes", []).append(
        {
            "name": COMPILE_CACHE,
            "csi": {"driver": GCS_FUSE_DRIVER, "volumeAttributes": {"bucketName": bucket, "mountOptions": options}},
        }
    )
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        {"name": COMPILE_CACHE, "mountPath": f"/{COMPILE_CACHE}"},
    ]
    container["env"] = [*container.get("env", []), {"name": "VLLM_CACHE_ROOT", "value": f"/{COMPILE_CACHE}"}]


def cluster_spec(
    workload: WorkloadPlan, image: str, secret_name: str, gcs: GcsFaultToleranceOptions | None = None
) -> RayClusterSpec:
    """The Ray cluster of a workload. At a fixed size (a queued job) it has no autoscaling and all
    its workers from the start."""
    spec, placement = workload.spec, workload.placement
    env = _env(workload, secret_name)
    head = HeadGroupSpec(
        # The head schedules no work: Serve replicas and Data tasks go to the GPU workers.
        rayStartParams={"num-cpus": "0", "num-gpus": "0", "dashboard-host": "0.0.0.0"},
        template={
            "spec": {
                "serviceAccountName": TEAM_SERVICE_ACCOUNT,
                "nodeSelector": on_system_pool(),
                "containers": [_container("ray-head", image, spec.head.cpu, spec.head.memory_gib, env)],
            }
        },
    )
    workers, claim = spec.workers, placement.claim_template
    limits = None if claim else {DEVICE_PLUGIN_GPU: str(placement.gpus)}
    container = _container("ray-worker", image, workers.cpu, workers.memory_gib, env, limits)
    pod: dict = {
        "serviceAccountName": TEAM_SERVICE_ACCOUNT,
        "affinity": node_affinity({POOL_LABEL: placement.pool_names}),
        "tolerations": [GPU_TOLERATION],
        "containers": [container],
    }
    if ladder := placement.compute_class:  # GKE adds nodes in the ladder's order, and moves pods back up it
        pod["nodeSelector"], toleration = in_class(ladder)
        pod["tolerations"].append(toleration)
    if claim:
        container["resources"]["claims"] = [{"name": GPU_CLAIM}]
        pod["resourceClaims"] = [{"name": GPU_CLAIM, "resourceClaimTemplateName": claim}]
    metadata = {}
    if workload.compile_cache:
        compile_cache(pod, container, workload.compile_cache)
        cpu, gib = GCS_FUSE_SIDECAR  # what the plan counted for it
        sidecar = {"cpu-request": f"{int(cpu * 1000)}m", "memory-request": f"{int(gib * 1024)}Mi"}
        metadata = {"annotations": {GCS_FUSE_ANNOTATION: "true", **{f"gke-gcsfuse/{k}": v for k, v in sidecar.items()}}}
    group = WorkerGroupSpec(
        groupName=WORKER_GROUP,
        replicas=workload.fewest_workers,
        minReplicas=workload.fewest_workers,
        maxReplicas=workload.most_workers,
        resources=_ray_resources(placement),
        template={**({"metadata": metadata} if metadata else {}), "spec": pod},
    )
    return RayClusterSpec(
        enableInTreeAutoscaling=not workload.fixed_size,
        autoscalerOptions=None if workload.fixed_size else AutoscalerOptions(),
        headGroupSpec=head,
        workerGroupSpecs=[group],
        gcsFaultToleranceOptions=gcs,
    )


def _ray_resources(placement: Placement) -> dict[str, str]:
    """What a worker offers Ray. GPU: Ray cannot see DRA GPUs on its own. accelerator_type: Ray's
    autoscaler adds a worker for replicas pinned to an accelerator (Serve LLM's `accelerator_type`)
    only if it knows a new worker offers it; a group spanning GPU kinds cannot promise one."""
    pinned_type = {f"accelerator_type:{placement.ray_type}": "1"} if placement.ray_type else {}
    return {"GPU": str(placement.gpus), **pinned_type}


def runtime_env(working_dir: str) -> dict:
    # No pip: the payloads' packages are in the Ray image (components/image.py), or a laptop's virtualenv.
    return {"working_dir": working_dir}


def serve_application(run: PayloadRun, working_dir: str) -> ServeApplication:
    """The Serve application of a service (its laptop form too: tools.local)."""
    return ServeApplication(
        name=run.name,
        import_path=run.entry.import_path,
        args=run.args.model_dump(mode="json", exclude_none=True),
        runtime_env=runtime_env(working_dir),
    )


def job_entrypoint(run: PayloadRun, python: str = "python") -> str:
    config = json.dumps(run.args.model_dump(mode="json", exclude_none=True))
    return f"{python} -m {run.entry.module} --config {shlex.quote(config)}"


def rayservice_spec(service: WorkloadPlan, plan: TeamPlan, working_dir: str, secret_name: str) -> dict:
    gcs = None
    if ft := service.spec.gcs_fault_tolerance:
        password = ft.password_secret and {
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": ft.password_secret}}
        }
        gcs = GcsFaultToleranceOptions(redisAddress=ft.redis_address, redisPassword=password or None)
    strategy = service.spec.upgrade_strategy
    upgrade = UpgradeStrategy(type=strategy)
    if strategy == "NewClusterWithIncrementalUpgrade":
        options = ClusterUpgradeOptions(gatewayClassName=plan.gateway_class_name)
        upgrade = UpgradeStrategy(type=strategy, clusterUpgradeOptions=options)
    spec = RayServiceSpec(
        serveConfigV2=ServeConfig(applications=[serve_application(service, working_dir)]).to_yaml(),
        rayClusterConfig=cluster_spec(service, plan.ray_image, secret_name, gcs),
        upgradeStrategy=upgrade,
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


def rayjob_spec(job: WorkloadPlan, plan: TeamPlan, working_dir: str, secret_name: str) -> dict:
    spec = RayJobSpec(
        entrypoint=job_entrypoint(job),
        runtimeEnvYAML=yaml.safe_dump(runtime_env(working_dir)),
        ttlSecondsAfterFinished=job.spec.ttl_seconds_after_finished,
        activeDeadlineSeconds=job.spec.active_deadline_seconds,
        backoffLimit=job.spec.backoff_limit,
        suspend=job.queue is not None,  # Kueue unsuspends it once the quota fits
        rayClusterSpec=cluster_spec(job, plan.ray_image, secret_name),
    )
    return spec.model_dump(by_alias=True, exclude_none=True)


class RayWorkloads(pulumi.ComponentResource):
    """The team's RayServices and RayJobs, in its namespace, with its service account."""

    def __init__(
        self,
        plan: TeamPlan,
        namespace: pulumi.Input[str],
        working_dir: pulumi.Input[str],
        secret_name: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        team = plan.config.team.name
        super().__init__("rayplane:team:RayWorkloads", f"{team}-workloads", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        working_dir = pulumi.Output.from_input(working_dir)
        for service in plan.services:
            k8s.apiextensions.CustomResource(
                f"{team}-{service.name}",
                api_version=RAY_API,
                kind="RayService",
                metadata={"name": service.name, "namespace": namespace},
                spec=working_dir.apply(lambda uri, s=service: rayservice_spec(s, plan, uri, secret_name)),
                opts=child,
            )
        for job in plan.jobs:
            k8s.apiextensions.CustomResource(
                f"{team}-{job.name}",
                api_version=RAY_API,
                kind="RayJob",
                metadata={
                    "name": job.name,
                    "namespace": namespace,
                    "labels": {QUEUE_LABEL: job.queue} if job.queue else {},
                },
                spec=working_dir.apply(lambda uri, j=job: rayjob_spec(j, plan, uri, secret_name)),
                opts=child,
            )
        self.register_outputs({})
