"""Typed KubeRay v1 custom resources (RayService, RayJob, their RayCluster spec) and the Serve
config that goes into `serveConfigV2`. Field names follow the KubeRay v1.7.0 CRDs (camelCase) and
Ray Serve's config schema (snake_case); tests validate every rendered object against the CRDs.
"""

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from components.config import Model
from components.conventions import SERVE_PORT
from components.versions import RAY


# Ray Serve's declarative config (what `serve deploy` reads), snake_case as Serve spells it.
class ServeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServeApplication(ServeModel):
    name: str
    import_path: str
    route_prefix: str = "/"
    args: dict[str, Any] = {}
    runtime_env: dict[str, Any] = {}


class ServeConfig(ServeModel):
    http_options: dict[str, Any] = {"host": "0.0.0.0", "port": SERVE_PORT}
    applications: list[ServeApplication]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=False)


# KubeRay v1: the parts of the RayCluster, RayService and RayJob specs that workloads use.
class HeadGroupSpec(Model):
    ray_start_params: dict[str, str]
    template: dict[str, Any]


class WorkerGroupSpec(Model):
    group_name: str
    replicas: int
    min_replicas: int
    max_replicas: int
    ray_start_params: dict[str, str] | None = None
    # Ray's logical resources of each worker (KubeRay passes them to `ray start`; Ray's autoscaler
    # reads them to know what a new worker would offer). Not together with rayStartParams' resources.
    resources: dict[str, str] | None = None
    template: dict[str, Any]


class AutoscalerOptions(Model):
    version: Literal["v1", "v2"] = "v2"
    idle_timeout_seconds: int = 300
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = "Default"


class GcsFaultToleranceOptions(Model):
    redis_address: str
    redis_password: dict[str, Any] | None = None  # {valueFrom: {secretKeyRef: ...}}


class AuthOptions(Model):
    # Token auth on the Ray dashboard, Jobs API and GCS: KubeRay keeps the token in a Secret named
    # after the RayCluster, in its namespace, and hands it to the Ray pods and its own client.
    mode: Literal["token", "disabled"] = "token"


class RayClusterSpec(Model):
    ray_version: str = RAY
    auth_options: AuthOptions = AuthOptions()
    enable_in_tree_autoscaling: bool = True
    autoscaler_options: AutoscalerOptions | None = AutoscalerOptions()
    gcs_fault_tolerance_options: GcsFaultToleranceOptions | None = None
    head_group_spec: HeadGroupSpec
    worker_group_specs: list[WorkerGroupSpec]


class ClusterUpgradeOptions(Model):
    gateway_class_name: str
    step_size_percent: int = 25
    interval_seconds: int = 60
    max_surge_percent: int = 100


class UpgradeStrategy(Model):
    type: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"] = "NewCluster"
    cluster_upgrade_options: ClusterUpgradeOptions | None = None


class RayServiceSpec(Model):
    serve_config_v2: str
    ray_cluster_config: RayClusterSpec
    upgrade_strategy: UpgradeStrategy = UpgradeStrategy()
    ray_cluster_deletion_delay_seconds: int = 60  # old cluster drains after the switch-over


class RayJobSpec(Model):
    entrypoint: str
    runtime_env_yaml: str = Field(alias="runtimeEnvYAML")
    submission_mode: Literal["K8sJobMode", "HTTPMode", "SidecarMode"] = "K8sJobMode"
    shutdown_after_job_finishes: bool = True
    ttl_seconds_after_finished: int
    active_deadline_seconds: int
    backoff_limit: int
    suspend: bool = False
    ray_cluster_spec: RayClusterSpec
