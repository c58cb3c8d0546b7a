"""A team's network isolation: NetworkPolicies (GKE Dataplane V2 enforces them) that deny every
ingress to the team's pods except what a Ray cluster needs, so that no other team can reach its
Ray heads (the dashboard and Jobs API would run code as the team's identity).

    from the team's own namespace      everything (heads, workers, the RayJob submitter)
    from the KubeRay operator          the heads' dashboard, 8265 (jobs, Serve status), and Serve,
                                       8000 (its /-/healthz check of a RayService's head, by pod IP)
    from Managed Prometheus            the metrics ports, 8080 (heads also 44217, 44227)
    from team.serveClients, Gateway    Serve's HTTP port, 8000
"""

import pulumi
import pulumi_kubernetes as k8s

from components.conventions import (
    DASHBOARD_PORT,
    GMP_NAMESPACE,
    HEAD_METRICS_PORTS,
    KUBERAY_NAMESPACE,
    NAMESPACE_NAME_LABEL,
    RAY_METRICS_PORT,
    RAY_NODE_TYPE_LABEL,
    SERVE_PORT,
)
from components.plan import TeamPlan


def _from_namespaces(names: list[str]) -> list[dict]:
    return [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}} for name in names]


def _ports(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def policies(plan: TeamPlan) -> dict[str, dict]:
    """The NetworkPolicy specs of a team namespace, by name."""
    every_pod: dict = {}
    heads = {"matchLabels": {RAY_NODE_TYPE_LABEL: "head"}}
    serve_from = _from_namespaces(plan.config.team.serve_clients)
    serve_from += [{"ipBlock": {"cidr": cidr}} for cidr in plan.gateway_source_ranges]
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
            "ingress": [{"from": _from_namespaces([KUBERAY_NAMESPACE]), "ports": _ports(DASHBOARD_PORT, SERVE_PORT)}],
        },
        "allow-metrics": {
            "podSelector": {"matchExpressions": [{"key": RAY_NODE_TYPE_LABEL, "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": _from_namespaces([GMP_NAMESPACE]),
                    "ports": _ports(RAY_METRICS_PORT, *HEAD_METRICS_PORTS),
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
    def __init__(self, plan: TeamPlan, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        team = plan.config.team.name
        super().__init__("rayplane:team:TeamNetwork", f"{team}-network", None, opts)
        for name, spec in policies(plan).items():
            k8s.networking.v1.NetworkPolicy(
                f"{team}-{name}",
                metadata={"name": name, "namespace": namespace},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
