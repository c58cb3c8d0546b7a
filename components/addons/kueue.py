"""Kueue (official Helm chart, pinned) and one ClusterQueue per GPU pool, so that RayJobs created
with `suspend: true` wait in a queue until their GPUs fit the pool's quota.

Each ClusterQueue offers two flavors in order: the system pool (Ray heads: CPU only, no GPU quota)
and its GPU pool (workers). DRA GPUs are counted through Kueue's DeviceClass mappings. A queued
pool's ClusterQueue admits a job once GKE has provided its nodes (the ProvisioningRequest check).
"""

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.addons.kit import AddOn, Chart
from components.addons.monitoring import scrape_kueue
from components.config import GpuNodePool, Model, PlatformStack
from components.conventions import (
    DEVICE_PLUGIN_GPU,
    GPU_DEVICE_CLASS,
    GPU_TOLERATION,
    KUEUE_API,
    KUEUE_APP,
    KUEUE_DRA_GPU,
    KUEUE_NAMESPACE,
    POOL_LABEL,
    QUEUED_TOLERATION,
    on_system_pool,
)
from components.plan import PlatformPlan, PoolPlan
from components.versions import KUEUE

CHART = Chart(
    release=KUEUE_APP, chart="oci://registry.k8s.io/kueue/charts/kueue", version=KUEUE, namespace=KUEUE_NAMESPACE
)
COHORT = "rayplane"
# Quota accounting of DRA devices (Kueue's kube_features.go; beta, on by default since 0.18: set
# anyway, so that a changed default cannot turn it off).
DRA_GATE = "KueueDRAIntegration"
# Off: the DRA driver's chart gives the GPU DeviceClass `extendedResourceName: nvidia.com/gpu`, and
# with this gate (beta, on by default since 0.19) Kueue would charge every device-plugin
# `nvidia.com/gpu` request to that class's quota resource, which no device-plugin queue covers.
EXTENDED_RESOURCE_GATE = "KueueDRAIntegrationExtendedResource"


class ResourceQuota(Model):
    name: str
    nominal_quota: int | str


class FlavorQuotas(Model):
    name: str
    resources: list[ResourceQuota]


class ResourceGroup(Model):
    covered_resources: list[str]
    flavors: list[FlavorQuotas]


class FlavorCheck(Model):
    name: str
    on_flavors: list[str]


class AdmissionChecksStrategy(Model):
    admission_checks: list[FlavorCheck]


class ClusterQueueSpec(Model):
    cohort_name: str = COHORT  # queues lend each other idle quota
    namespace_selector: dict = {}  # every namespace; teams reach it through their LocalQueue
    queueing_strategy: Literal["StrictFIFO", "BestEffortFIFO"] = "BestEffortFIFO"
    resource_groups: list[ResourceGroup]
    admission_checks_strategy: AdmissionChecksStrategy | None = None


# DWS queued provisioning through Kueue's ProvisioningRequest admission check (Kueue v0.19.2:
# apis/kueue/v1beta2/provisioningrequestconfig_types.go ProvisioningRequestControllerName; GKE's
# class name and managed resource from GKE's docs/how-to/provisioningrequest). Kueue sets its
# controller up only if the API serves ProvisioningRequests when it starts, which GKE's does.
PROVISIONING_CONTROLLER = "kueue.x-k8s.io/provisioning-request"
QUEUED_PROVISIONING_CLASS = "queued-provisioning.gke.io"


class RetryStrategy(Model):
    """A failed request is asked again after 60 s, 120 s, 240 s (at most 30 min); after the third,
    Kueue deactivates the workload (`spec.active: false`) until someone sets it true again.
    Kueue's defaults, written out so that the stack says so."""

    backoff_limit_count: int = 3
    backoff_base_seconds: int = 60
    backoff_max_seconds: int = 1800


class ProvisioningRequestConfigSpec(Model):
    provisioning_class_name: str = QUEUED_PROVISIONING_CLASS
    # What Kueue asks GKE for; a pod set without it gets no request (and its check passes at once).
    managed_resources: list[str] = [DEVICE_PLUGIN_GPU]
    retry_strategy: RetryStrategy = RetryStrategy()


class CheckParameters(Model):
    api_group: str = "kueue.x-k8s.io"
    kind: str = "ProvisioningRequestConfig"
    name: str


class AdmissionCheckSpec(Model):
    controller_name: str = PROVISIONING_CONTROLLER
    parameters: CheckParameters


def queued_check(prefix: str) -> str:
    """The AdmissionCheck (and its ProvisioningRequestConfig) of the platform's queued pools."""
    return f"{prefix}-queued-provisioning"


class ResourceFlavorSpec(Model):
    node_labels: dict[str, str]
    tolerations: list[dict] = []


class KueueConfiguration(Model):
    """The manager's config file (the chart's defaults plus the Ray integrations and DRA mappings)."""

    api_version: str = "config.kueue.x-k8s.io/v1beta2"
    kind: str = "Configuration"
    health: dict = {"healthProbeBindAddress": ":8081"}
    metrics: dict = {"bindAddress": ":8443"}
    webhook: dict = {"port": 9443}
    leader_election: dict = {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"}
    controller: dict = {
        "groupKindConcurrency": {
            "Job.batch": 5,
            "Pod": 5,
            "Workload.kueue.x-k8s.io": 10,
            "LocalQueue.kueue.x-k8s.io": 5,
            "ClusterQueue.kueue.x-k8s.io": 5,
            "ResourceFlavor.kueue.x-k8s.io": 1,
        }
    }
    client_connection: dict = {"qps": 300, "burst": 500}
    manage_jobs_without_queue_name: bool = False  # only jobs labelled with a queue wait
    integrations: dict = {"frameworks": ["batch/job", "ray.io/rayjob", "ray.io/raycluster"]}
    resources: dict | None = None


def gpu_resource(pool: GpuNodePool) -> str:
    return KUEUE_DRA_GPU if pool.gpu_mode == "dra" else DEVICE_PLUGIN_GPU


def cluster_queue_spec(plan: PlatformPlan, pool: PoolPlan) -> dict:
    """A GPU pool's ClusterQueue: its heads on the system pool's flavor (no GPUs), its workers on
    the pool's (the flavor has the queue's name)."""
    gpu = gpu_resource(pool.config)
    flavors = [(plan.system_flavor, plan.head_quota), (pool.cluster_queue, pool.queue_quota)]
    flavors = [(name, {"cpu": q.cpu, "memory": f"{q.memory_gib}Gi", gpu: q.gpus}) for name, q in flavors]
    group = ResourceGroup(
        coveredResources=["cpu", "memory", gpu],
        flavors=[
            FlavorQuotas(name=name, resources=[ResourceQuota(name=r, nominalQuota=q) for r, q in quotas.items()])
            for name, quotas in flavors
        ],
    )
    # A queued pool's nodes come only through a ProvisioningRequest: the workers' flavor waits for one.
    checks = (
        AdmissionChecksStrategy(
            admissionChecks=[FlavorCheck(name=queued_check(plan.config.prefix), onFlavors=[pool.cluster_queue])]
        )
        if pool.config.queued
        else None
    )
    return ClusterQueueSpec(resourceGroups=[group], admissionChecksStrategy=checks).model_dump(
        by_alias=True, exclude_none=True
    )


class ControllerManager(Model):
    feature_gates: list[dict] = []
    node_selector: dict = on_system_pool()


class ManagerConfig(Model):
    controller_manager_config_yaml: str  # the manager's Configuration, as the chart takes it


class KueueValues(Model):
    controller_manager: ControllerManager
    manager_config: ManagerConfig


def values(config: PlatformStack) -> KueueValues:
    kueue_config = KueueConfiguration()
    gates = []
    if config.dra_pools:
        mappings = [{"name": KUEUE_DRA_GPU, "deviceClassNames": [GPU_DEVICE_CLASS]}]
        kueue_config = KueueConfiguration(resources={"deviceClassMappings": mappings})
        gates = [{"name": DRA_GATE, "enabled": True}, {"name": EXTENDED_RESOURCE_GATE, "enabled": False}]
    manager_config = yaml.safe_dump(kueue_config.model_dump(by_alias=True, exclude_none=True))
    return KueueValues(
        controllerManager=ControllerManager(featureGates=gates),
        managerConfig=ManagerConfig(controllerManagerConfigYaml=manager_config),
    )


class Kueue(AddOn):
    @staticmethod
    def wanted(config: PlatformStack) -> bool:
        return config.addons.kueue.enabled

    def __init__(self, plan: PlatformPlan, after: list[pulumi.Resource], opts: pulumi.ResourceOptions):
        config = plan.config
        prefix = config.prefix
        super().__init__("rayplane:platform:Kueue", f"{prefix}-kueue", None, opts)
        self.release = CHART.install(
            f"{prefix}-kueue", values(config), pulumi.ResourceOptions(parent=self, depends_on=after)
        )
        # Queues and flavors go through Kueue's webhooks: the release must be ready first.
        after_kueue = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        system_flavor = self._flavor(plan.system_flavor, on_system_pool(), [], after_kueue)
        checks = self._queued_check(prefix, after_kueue) if any(p.config.queued for p in plan.pools) else []
        for pool in plan.pools:
            name = pool.cluster_queue
            # Kueue adds a flavor's tolerations to the pods it admits on it.
            tolerations = [GPU_TOLERATION, *([QUEUED_TOLERATION] if pool.config.queued else [])]
            flavor = self._flavor(name, {POOL_LABEL: pool.config.name}, tolerations, after_kueue)
            spec = cluster_queue_spec(plan, pool)
            k8s.apiextensions.CustomResource(
                f"{name}-queue",
                api_version=KUEUE_API,
                kind="ClusterQueue",
                metadata={"name": name},
                spec=spec,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.release, flavor, system_flavor, *(checks if pool.config.queued else [])],
                ),
            )
        if config.addons.monitoring:
            scrape_kueue(prefix, after_kueue)
        self.register_outputs({"clusterQueues": plan.kueue_cluster_queues})

    def _queued_check(self, prefix: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        name = queued_check(prefix)
        config = k8s.apiextensions.CustomResource(
            f"{name}-config",
            api_version=KUEUE_API,
            kind="ProvisioningRequestConfig",
            metadata={"name": name},
            spec=ProvisioningRequestConfigSpec().model_dump(by_alias=True),
            opts=opts,
        )
        check = k8s.apiextensions.CustomResource(
            f"{name}-check",
            api_version=KUEUE_API,
            kind="AdmissionCheck",
            metadata={"name": name},
            spec=AdmissionCheckSpec(parameters=CheckParameters(name=name)).model_dump(by_alias=True),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[config])),
        )
        return [config, check]

    def _flavor(self, name: str, labels: dict, tolerations: list, opts: pulumi.ResourceOptions):
        spec = ResourceFlavorSpec(nodeLabels=labels, tolerations=tolerations)
        return k8s.apiextensions.CustomResource(
            f"{name}-flavor",
            api_version=KUEUE_API,
            kind="ResourceFlavor",
            metadata={"name": name},
            spec=spec.model_dump(by_alias=True),
            opts=opts,
        )
