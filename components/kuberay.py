"""The KubeRay operator (official Helm chart, pinned): the RayCluster, RayJob and RayService CRDs
and their controller. Every Ray custom resource in any stack needs it first."""

import pulumi
import pulumi_kubernetes as k8s

from components.config import KubeRay, Model
from components.node_pools import POOL_LABEL

CHART = "kuberay-operator"
VERSION = "1.7.0"  # CRDs in ../shared/kuberay-v1.7.0 validate what team stacks render
CHART_REPO = "https://ray-project.github.io/kuberay-helm/"
NAMESPACE = "kuberay-system"
METRICS_PORT = 8080


class KubeRayValues(Model):
    image: dict = {"repository": "quay.io/kuberay/operator", "tag": f"v{VERSION}"}
    feature_gates: list[dict]
    batch_scheduler: dict
    metrics: dict
    node_selector: dict = {POOL_LABEL: "system"}  # never on (tainted, scarce) GPU nodes
    # The chart's default caps CPU at 100m, which throttles reconciles of many clusters.
    resources: dict = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def values(config: KubeRay) -> KubeRayValues:
    return KubeRayValues(
        featureGates=[{"name": name, "enabled": on} for name, on in sorted(config.feature_gates.items())],
        batchScheduler={"name": config.batch_scheduler},
        # Managed Prometheus scrapes the operator through a PodMonitoring, not a ServiceMonitor.
        metrics={"enabled": config.metrics, "serviceMonitor": {"enabled": False}},
    )


class KubeRayOperator(pulumi.ComponentResource):
    def __init__(self, prefix: str, config: KubeRay, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:platform:KubeRayOperator", f"{prefix}-kuberay", None, opts)
        self.release = k8s.helm.v3.Release(
            f"{prefix}-kuberay-operator",
            name=CHART,
            chart=CHART,
            version=VERSION,
            repository_opts={"repo": CHART_REPO},
            namespace=NAMESPACE,
            create_namespace=True,
            values=values(config).model_dump(by_alias=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"release": self.release.status})
