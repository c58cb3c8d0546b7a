"""A team's recording and alerting rules (components/slo.py) as a Google Managed Prometheus `Rules`
object in its namespace, from typed models of the pinned CRD (upstream/gmp/crds)."""

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import slo
from components.config import Model, TeamStack
from components.conventions import GMP_API


class Rule(Model):
    record: str | None = Field(None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    alert: str | None = None
    expr: str
    for_: str | None = Field(None, alias="for")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class RuleGroup(Model):
    name: str
    interval: str
    rules: list[Rule]


class RulesSpec(Model):
    groups: list[RuleGroup]


class TeamMonitoring(pulumi.ComponentResource):
    def __init__(self, config: TeamStack, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions):
        team = config.team.name
        super().__init__("rayplane:team:TeamMonitoring", f"{team}-monitoring", None, opts)
        spec = RulesSpec.model_validate({"groups": slo.rule_groups(team, config.services)})
        self.rules = k8s.apiextensions.CustomResource(
            f"{team}-rules",
            api_version=GMP_API,
            kind="Rules",
            metadata={"name": f"{team}-slos", "namespace": namespace},
            spec=spec.model_dump(by_alias=True, exclude_none=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
