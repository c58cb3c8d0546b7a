"""Ray's, KubeRay's and Kueue's metrics into Google Cloud Managed Service for Prometheus.

KubeRay labels every Ray pod with ray.io/node-type and opens the metrics port (8080) on heads and
workers; heads also serve autoscaler (44217) and dashboard (44227) metrics. ClusterPodMonitorings
cover every team namespace at once. Ray's Grafana dashboards: see docs/operations.md.

Kueue v0.19 serves metrics only over HTTPS to a bearer token allowed `get /metrics` (cmd/kueue/main.go:
SecureServing, WithAuthenticationAndAuthorization), with a self-signed certificate: in scrape_kueue
(called by the Kueue add-on once its release is in) a service account of our own, bound to the
chart's `kueue-metrics-reader`, lends GMP's collectors its token through a Secret they may read.
"""

import pulumi
import pulumi_kubernetes as k8s

from components.addons.kit import AddOn
from components.config import Model, PlatformStack
from components.conventions import (
    GMP_API,
    GMP_COLLECTOR,
    GMP_NAMESPACE,
    HEAD_METRICS_PORTS,
    KUBERAY_APP,
    KUBERAY_NAMESPACE,
    KUEUE_APP,
    KUEUE_METRICS_PORT,
    KUEUE_NAMESPACE,
    OPERATOR_METRICS_PORT,
    RAY_HEADS_MONITOR,
    RAY_METRICS_PORT,
    RAY_NODE_TYPE_LABEL,
    RAY_WORKERS_MONITOR,
)
from components.plan import PlatformPlan

RBAC = "rbac.authorization.k8s.io"
SCRAPER = "metrics-scraper"  # the service account whose token scrapes Kueue
SCRAPER_TOKEN = f"{SCRAPER}-token"


class SecretKey(Model):
    name: str
    key: str


class SecretSelector(Model):
    secret: SecretKey


class Authorization(Model):
    type: str = "Bearer"
    credentials: SecretSelector


class Tls(Model):
    insecure_skip_verify: bool


class Endpoint(Model):
    port: int | str
    interval: str = "30s"
    scheme: str | None = None
    tls: Tls | None = None
    authorization: Authorization | None = None


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
        spec=spec.model_dump(by_alias=True, exclude_none=True),
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


def scrape_kueue(prefix: str, opts: pulumi.ResourceOptions) -> None:
    """Kueue's metrics into GMP (the Kueue add-on calls this once its release is in)."""
    ns = {"namespace": KUEUE_NAMESPACE}
    account = k8s.core.v1.ServiceAccount(f"{prefix}-kueue-scraper", metadata={"name": SCRAPER, **ns}, opts=opts)
    token = k8s.core.v1.Secret(
        f"{prefix}-kueue-scraper-token",
        metadata={"name": SCRAPER_TOKEN, "annotations": {"kubernetes.io/service-account.name": SCRAPER}, **ns},
        type="kubernetes.io/service-account-token",
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[account])),
    )
    k8s.rbac.v1.ClusterRoleBinding(
        f"{prefix}-kueue-scraper",
        metadata={"name": f"{KUEUE_APP}-{SCRAPER}"},
        role_ref={"apiGroup": RBAC, "kind": "ClusterRole", "name": f"{KUEUE_APP}-metrics-reader"},
        subjects=[{"kind": "ServiceAccount", "name": SCRAPER, **ns}],
        opts=opts,
    )
    reader = k8s.rbac.v1.Role(
        f"{prefix}-kueue-scraper-token-reader",
        metadata={"name": f"{SCRAPER_TOKEN}-reader", **ns},
        rules=[
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [SCRAPER_TOKEN],
                "verbs": ["get", "list", "watch"],
            }
        ],
        opts=opts,
    )
    k8s.rbac.v1.RoleBinding(
        f"{prefix}-kueue-scraper-token-reader",
        metadata={"name": f"{SCRAPER_TOKEN}-reader", **ns},
        role_ref={"apiGroup": RBAC, "kind": "Role", "name": reader.metadata["name"]},
        subjects=[{"kind": "ServiceAccount", "name": GMP_COLLECTOR, "namespace": GMP_NAMESPACE}],
        opts=opts,
    )
    spec = PodMonitoringSpec(
        selector={"matchLabels": {"app.kubernetes.io/name": KUEUE_APP, "control-plane": "controller-manager"}},
        endpoints=[
            Endpoint(
                port=KUEUE_METRICS_PORT,
                scheme="https",
                tls=Tls(insecureSkipVerify=True),  # Kueue's own self-signed certificate
                authorization=Authorization(
                    credentials=SecretSelector(secret=SecretKey(name=SCRAPER_TOKEN, key="token"))
                ),
            )
        ],
    )
    _monitor(
        f"{prefix}-kueue",
        KUEUE_APP,
        "PodMonitoring",
        spec,
        pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[token])),
        namespace=KUEUE_NAMESPACE,
    )
