"""Spare GPU nodes (`nodePools[].spareNodes`), as GKE documents spare capacity
(cloud.google.com/kubernetes-engine/docs/how-to/capacity-provisioning): a PriorityClass below every
workload's and a Deployment of placeholder pods, one per spare node. The cluster autoscaler adds a
node for each placeholder; a Ray worker that finds no room preempts one at once.

GKE 1.35's CapacityBuffer would do this natively; the platform's 1.34 does not serve it."""

import pulumi
import pulumi_kubernetes as k8s

from components.conventions import (
    GPU_TOLERATION,
    HOSTNAME_LABEL,
    POOL_LABEL,
    RAY_NODE_TYPE_LABEL,
    SPARE_NAMESPACE,
    in_class,
)
from components.gpu import allocatable
from components.plan import PlatformPlan, PoolPlan
from components.versions import PAUSE_IMAGE

# GKE's example's priority: the cluster autoscaler still adds nodes for it (its expendable-pods
# cutoff drops pods *below* -10), and any pod of the default priority 0 preempts it.
PRIORITY = -10
APP = "spare-node"
# A placeholder requests what it holds, as GKE's do, short of GKE's own DaemonSets on the node:
# more than half of what pods may request there, so only small pods fit beside it.
SHARE = 0.6


def placeholder(plan: PlatformPlan, pool: PoolPlan) -> dict:
    """The Deployment spec of a pool's placeholders. Each keeps a node free of Ray workers and of
    other placeholders by required anti-affinity, which the scheduler also holds against a worker
    coming to that node (it is symmetric): a worker gets there only by preempting the placeholder,
    which is then pending again, and the autoscaler adds the next spare node for it."""
    labels = {"app": APP, POOL_LABEL: pool.config.name}
    selector, tolerations = {POOL_LABEL: pool.config.name}, [GPU_TOLERATION]
    if pool.compute_class:  # a ladder's pool: its class's label and taint
        class_selector, toleration = in_class(pool.compute_class)
        selector, tolerations = {**selector, **class_selector}, [*tolerations, toleration]
    cpu, gib = allocatable(pool.config.machine_type)
    apart = {
        "topologyKey": HOSTNAME_LABEL,
        "labelSelector": {"matchExpressions": [{"key": RAY_NODE_TYPE_LABEL, "operator": "In", "values": ["worker"]}]},
        "namespaceSelector": {},  # every team's workers
    }
    alone = {"topologyKey": HOSTNAME_LABEL, "labelSelector": {"matchLabels": {"app": APP}}}
    return {
        "replicas": pool.config.spare_nodes,
        "strategy": {"type": "Recreate"},  # a surge placeholder would add a node of its own
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {
                "labels": labels,
                # The autoscaler keeps its node: it is there to wait.
                "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
            },
            "spec": {
                "priorityClassName": priority_class(plan),
                "terminationGracePeriodSeconds": 0,  # preempted: gone at once
                "nodeSelector": selector,
                "tolerations": tolerations,
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [apart, alone]}},
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "placeholder",
                        "image": PAUSE_IMAGE,
                        "resources": {
                            "requests": {"cpu": f"{int(cpu * SHARE * 1000)}m", "memory": f"{int(gib * SHARE * 1024)}Mi"}
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "runAsNonRoot": True,
                            "runAsUser": 65535,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    }


def priority_class(plan: PlatformPlan) -> str:
    return f"{plan.config.prefix}-spare"


class SpareNodes(pulumi.ComponentResource):
    def __init__(self, plan: PlatformPlan, opts: pulumi.ResourceOptions):
        prefix = plan.config.prefix
        super().__init__("rayplane:platform:SpareNodes", f"{prefix}-spare-nodes", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(f"{prefix}-spare", metadata={"name": SPARE_NAMESPACE}, opts=child)
        priority = k8s.scheduling.v1.PriorityClass(
            f"{prefix}-spare",
            metadata={"name": priority_class(plan)},
            value=PRIORITY,
            preemption_policy="Never",  # it waits; it never displaces anything
            global_default=False,
            description="rayplane's spare-node placeholders: any other pod preempts them",
            opts=child,
        )
        for pool in plan.pools:
            if pool.config.spare_nodes:
                k8s.apps.v1.Deployment(
                    f"{prefix}-{pool.config.name}-spare",
                    metadata={
                        "name": f"{pool.config.name}-spare",
                        "namespace": SPARE_NAMESPACE,
                        # Its pods wait for GPU nodes that may be slow to come, or not come: `up` does not.
                        "annotations": {"pulumi.com/skipAwait": "true"},
                    },
                    spec=placeholder(plan, pool),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, priority]),
                )
        self.register_outputs({"spareNodes": {p.config.name: p.config.spare_nodes for p in plan.pools}})
