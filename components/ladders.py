"""Capacity ladders as GKE custom ComputeClasses (cloud.google.com/v1; the CRD GKE 1.34 serves is
vendored from GoogleCloudPlatform/compute-class-api at 1.34.0). A ladder's pools are its priorities in
order: GKE adds a node to the first that can take one, and with active migration moves pods back to
a higher one when it has capacity again (cloud.google.com/kubernetes-engine/docs/concepts/
about-custom-compute-classes). The pools are the platform's own (manually created, labelled and
tainted for the class: components/node_pools.py); GKE creates none of its own."""

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.config import Model
from components.config.platform import Ladder
from components.conventions import COMPUTE_CLASS_API


class Priority(Model):
    nodepools: list[str]  # GKE's names of the pools: alone in its priority (the CRD's CEL rule)


class ActiveMigration(Model):
    optimize_rule_priority: bool


class NodePoolAutoCreation(Model):
    enabled: bool


class ComputeClassSpec(Model):
    description: str
    priorities: list[Priority]
    active_migration: ActiveMigration
    node_pool_auto_creation: NodePoolAutoCreation
    # Explicit, as GKE advises: its default changed in 1.33. When no pool of the ladder can grow, none grows.
    when_unsatisfiable: Literal["DoNotScaleUp", "ScaleUpAnyway"]


def spec(ladder: Ladder, node_pools: list[str]) -> dict:
    """`spec` of a ladder's ComputeClass, its pools by GKE's names in the ladder's order."""
    return ComputeClassSpec(
        description=f"rayplane capacity ladder {ladder.name}: {', '.join(ladder.pools)}",
        priorities=[Priority(nodepools=[name]) for name in node_pools],
        activeMigration=ActiveMigration(optimizeRulePriority=True),
        nodePoolAutoCreation=NodePoolAutoCreation(enabled=False),
        whenUnsatisfiable="DoNotScaleUp",
    ).model_dump(by_alias=True)


class CapacityLadder(pulumi.ComponentResource):
    def __init__(
        self,
        prefix: str,
        ladder: Ladder,
        node_pools: list[pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        name = f"{prefix}-{ladder.name}-ladder"
        super().__init__("rayplane:platform:CapacityLadder", name, None, opts)
        self.compute_class = k8s.apiextensions.CustomResource(
            name,
            api_version=COMPUTE_CLASS_API,
            kind="ComputeClass",
            metadata={"name": ladder.name},  # what its pools' label and its pods' nodeSelector name
            spec=pulumi.Output.all(*node_pools).apply(lambda names: spec(ladder, list(names))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": ladder.name})
