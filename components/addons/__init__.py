"""Cluster add-ons of a platform stack, in install order, all through the cluster's own provider.

Adding one: a module here with its pinned `Chart`, a typed values model and an `AddOn`; its config
under `addons` in components/config/platform.py; a line in INSTALL_ORDER.
"""

from dataclasses import dataclass

import pulumi

from components.addons.alerting import Alerting
from components.addons.dra import NvidiaDra
from components.addons.kit import AddOn
from components.addons.kuberay import KubeRayOperator
from components.addons.kueue import Kueue
from components.addons.monitoring import RayMonitoring
from components.plan import PlatformPlan


@dataclass(frozen=True)
class Step:
    addon: type[AddOn]
    after: tuple[type[AddOn], ...] = ()  # waits until these are ready (where they are installed)


INSTALL_ORDER = [
    # The NVIDIA kernel driver on dra pools, then the DRA driver (its kubelet plugin needs the driver).
    Step(NvidiaDra),
    # The Ray CRDs and their controller.
    Step(KubeRayOperator),
    # Kueue's Ray integration looks for the Ray CRDs when it starts; its queues wait for its webhooks.
    Step(Kueue, after=(KubeRayOperator,)),
    # The operator's PodMonitoring lives in the operator's namespace.
    Step(RayMonitoring, after=(KubeRayOperator,)),
    # The platform's rule reads Kueue's metrics, scraped once its release is in.
    Step(Alerting, after=(Kueue,)),
]


def install(plan: PlatformPlan, opts: pulumi.ResourceOptions) -> dict[type[AddOn], AddOn]:
    """The add-ons this platform wants, each after what it is ordered behind; by type."""
    installed: dict[type[AddOn], AddOn] = {}
    for step in INSTALL_ORDER:
        if step.addon.wanted(plan.config):
            after = [installed[a].ready for a in step.after if a in installed]
            installed[step.addon] = step.addon(plan, after, opts)
    return installed
