"""The KubeRay operator (official Helm chart, pinned): the RayCluster, RayJob and RayService CRDs
and their controller. Every Ray custom resource in any stack needs it first."""

import pulumi

from components.addons.kit import AddOn, Chart
from components.config import Model, PlatformStack
from components.config.platform import INCREMENTAL_UPGRADE_GATE
from components.conventions import KUBERAY_APP, KUBERAY_NAMESPACE, on_system_pool
from components.plan import PlatformPlan
from components.versions import KUBERAY, KUBERAY_OPERATOR_IMAGE

CHART = Chart(
    release=KUBERAY_APP,
    chart=KUBERAY_APP,
    version=KUBERAY,
    repo="https://ray-project.github.io/kuberay-helm/",
    namespace=KUBERAY_NAMESPACE,
)

OPERATOR_REPOSITORY, OPERATOR_TAG = KUBERAY_OPERATOR_IMAGE.rsplit(":", 1)


class KubeRayValues(Model):
    image: dict = {"repository": OPERATOR_REPOSITORY, "tag": OPERATOR_TAG}
    feature_gates: list[dict]
    batch_scheduler: dict
    metrics: dict
    node_selector: dict = on_system_pool()  # never on (tainted, scarce) GPU nodes
    # The chart's default caps CPU at 100m, which throttles reconciles of many clusters.
    resources: dict = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def values(config: PlatformStack) -> KubeRayValues:
    kuberay = config.addons.kuberay
    # Incremental RayService upgrades route traffic through the Gateway API: on exactly when it is.
    gates = {**kuberay.feature_gates, INCREMENTAL_UPGRADE_GATE: config.cluster.gateway_api}
    return KubeRayValues(
        featureGates=[{"name": name, "enabled": on} for name, on in sorted(gates.items())],
        batchScheduler={"name": kuberay.batch_scheduler},
        # Managed Prometheus scrapes the operator through a PodMonitoring, not a ServiceMonitor.
        metrics={"enabled": kuberay.metrics, "serviceMonitor": {"enabled": False}},
    )


class KubeRayOperator(AddOn):
    def __init__(self, plan: PlatformPlan, after: list[pulumi.Resource], opts: pulumi.ResourceOptions):
        config = plan.config
        prefix = config.prefix
        super().__init__("rayplane:platform:KubeRayOperator", f"{prefix}-kuberay", None, opts)
        self.release = CHART.install(
            f"{prefix}-kuberay-operator",
            values(config),
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self.register_outputs({"release": self.release.status})
