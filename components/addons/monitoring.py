"""Ray metrics into Google Cloud Managed Service for Prometheus.

KubeRay labels every Ray pod with ray.io/node-type and opens the metrics port (8080) on heads and
workers; heads also serve autoscaler (44217) and dashboard (44227) metrics. ClusterPodMonitorings
cover every team namespace at once. Ray's Grafana dashboards: see docs/operations.md.
"""

import pulumi
import pulumi_kubernetes as k8s

from components.addons.kit import AddOn
from components.config import Model, PlatformStack
from components.conventions import (
    GMP_API,
    HEAD_METRICS_PORTS,
    KUBERAY_APP,
    KUBERAY_NAMESPACE,
    OPERATOR_METRICS_PORT,
    RAY_HEADS_MONITOR,
    RAY_METRICS_PORT,
    RAY_NODE_TYPE_LABEL,
    RAY_WORKERS_MONITOR,
)
from components.plan import PlatformPlan


class Endpoint(Model):
    port: int | str
    interval: str = "30s"


class PodMonitoringSpec(Model):
    selector: dict
    endpoints: list[Endpoint]


def _monitor(
    resource: str,
    name: str,
    kind: str,
    spec: PodMonitoringSpec,
    opts: pulumi.ResourceOptions,
    namespace: str | None = None,
) -> k8s.apiextensions.CustomResource:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return k8s.apiextensions.CustomResource(
        f"{resource}-metrics",
        api_version=GMP_API,
        kind=kind,
        metadata=metadata,
        spec=spec.model_dump(by_alias=True),
        opts=opts,
    )


class RayMonitoring(AddOn):
    @staticmethod
    def wanted(config: PlatformStack) -> bool:
        return config.addons.monitoring

    def __init__(self, plan: PlatformPlan, after: list[pulumi.Resource], opts: pulumi.ResourceOptions):
        config = plan.config
        prefix = config.prefix
        super().__init__("rayplane:platform:RayMonitoring", f"{prefix}-ray-monitoring", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        head = PodMonitoringSpec(
            selector={"matchLabels": {RAY_NODE_TYPE_LABEL: "head"}},
            endpoints=[Endpoint(port=p) for p in (RAY_METRICS_PORT, *HEAD_METRICS_PORTS)],
        )
        workers = PodMonitoringSpec(
            selector={"matchLabels": {RAY_NODE_TYPE_LABEL: "worker"}}, endpoints=[Endpoint(port=RAY_METRICS_PORT)]
        )
        # One cluster, one platform: the names are fixed, and the teams' alerting rules name them.
        self.heads = _monitor(f"{prefix}-ray-heads", RAY_HEADS_MONITOR, "ClusterPodMonitoring", head, child)
        self.workers = _monitor(f"{prefix}-ray-workers", RAY_WORKERS_MONITOR, "ClusterPodMonitoring", workers, child)
        operator_spec = PodMonitoringSpec(
            selector={"matchLabels": {"app.kubernetes.io/name": KUBERAY_APP}},
            endpoints=[Endpoint(port=OPERATOR_METRICS_PORT)],
        )
        self.operator = _monitor(
            f"{prefix}-kuberay-operator",
            f"{prefix}-kuberay-operator",
            "PodMonitoring",
            operator_spec,
            pulumi.ResourceOptions(parent=self, depends_on=after),  # the operator's namespace comes with it
            namespace=KUBERAY_NAMESPACE,
        )
        self.register_outputs({})
