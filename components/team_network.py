"""A team's network isolation: NetworkPolicies (GKE Dataplane V2 enforces them) that deny every
ingress to the team's pods except what a Ray cluster needs, so that no other team can reach its
Ray heads (the dashboard and Jobs API would run code as the team's identity).

    from the team's own namespace      everything (heads, workers, the RayJob submitter)
    from the KubeRay operator          the heads' dashboard, 8265 (job submission, Serve status)
    from Managed Prometheus            the metrics ports, 8080 (heads also 44217, 44227)
    from team.serveClients, Gateway    Serve's HTTP port, 8000
"""

import pulumi
import pulumi_kubernetes as k8s

from components.addons.kuberay import CHART as KUBERAY
from components.addons.monitoring import HEAD_EXTRA_PORTS, RAY_METRICS_PORT
from components.config import TeamStack
from components.contract import PlatformExports

SERVE_PORT = 8000
DASHBOARD_PORT = 8265
MONITORING_NAMESPACE = "gmp-system"  # GKE Managed Prometheus' collectors
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
RAY_NODE_TYPE = "ray.io/node-type"


def _from_namespaces(names: list[str]) -> list[dict]:
    return [{"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: name}}} for name in names]


def _ports(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def policies(config: TeamStack, platform: PlatformExports) -> dict[str, dict]:
    """The NetworkPolicy specs of a team namespace, by name."""
    every_pod: dict = {}
    heads = {"matchLabels": {RAY_NODE_TYPE: "head"}}
    serve_from = _from_namespaces(config.team.serve_clients)
    serve_from += [{"ipBlock": {"cidr": cidr}} for cidr in platform.gateway_source_ranges]
    specs = {
        "default-deny-ingress": {"podSelector": every_pod, "policyTypes": ["Ingress"]},
        "allow-same-namespace": {
            "podSelector": every_pod,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": every_pod}]}],
        },
        "allow-kuberay-operator": {
            "podSelector": heads,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": _from_namespaces([KUBERAY.namespace]), "ports": _ports(DASHBOARD_PORT)}],
        },
        "allow-metrics": {
            "podSelector": {"matchExpressions": [{"key": RAY_NODE_TYPE, "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": _from_namespaces([MONITORING_NAMESPACE]),
                    "ports": _ports(RAY_METRICS_PORT, *HEAD_EXTRA_PORTS),
                }
            ],
        },
    }
    if serve_from:
        specs["allow-serve-clients"] = {
            "podSelector": every_pod,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": serve_from, "ports": _ports(SERVE_PORT)}],
        }
    return specs


class TeamNetwork(pulumi.ComponentResource):
    def __init__(
        self,
        config: TeamStack,
        platform: PlatformExports,
        namespace: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        team = config.team.name
        super().__init__("rayplane:team:TeamNetwork", f"{team}-network", None, opts)
        for name, spec in policies(config, platform).items():
            k8s.networking.v1.NetworkPolicy(
                f"{team}-{name}",
                metadata={"name": name, "namespace": namespace},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
