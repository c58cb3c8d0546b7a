"""Where alerts go: GMP's managed Alertmanager, configured by the platform, and the platform's own
alerting rules (a `ClusterRules` object).

Why Alertmanager and not Cloud Monitoring notification channels: the teams' rules are GMP `Rules`,
whose evaluator sends every alert to the managed Alertmanager by itself (prometheus-engine
pkg/operator/operator_config.go makeAlertmanagerConfigs); channels would need every rule written
again as a Cloud Monitoring alerting policy. Alertmanager also groups, routes by label and lets a
page silence its own ticket. Its one config is cluster-wide, so the platform owns it and routes by
`namespace`, a label GMP sets on every alert of a namespaced Rules object and no rule may set
(rules_config.go setLabel): a team's rules cannot reach another team's receivers.

Without this Secret the operator runs Alertmanager with a "noop" receiver (operator_config.go
AlertmanagerNoOpConfig): every alert would be dropped without a word.
"""

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import slo
from components.addons.kit import AddOn
from components.config import PlatformStack
from components.config.alerting import SEVERITIES, Receiver
from components.conventions import ALERTMANAGER_KEY, ALERTMANAGER_SECRET, GMP_API, GMP_PUBLIC_NAMESPACE
from components.plan import PlatformPlan
from components.team_monitoring import RulesSpec

# A notification, and what a page holds back, never spans two namespaces, or the platform's and a team's
GROUP_BY = ["alertname", "cluster", "namespace", "service", slo.AUDIENCE]
REPEAT = {"page": "1h", "ticket": "12h"}  # how often a firing alert is sent again, by severity


def _receiver(name: str, receiver: Receiver | None, secrets: dict[str, str]) -> dict:
    """An Alertmanager receiver; with no integrations it receives nothing (Alertmanager's way to drop)."""
    out: dict = {"name": name}
    if receiver is None:
        return out
    if receiver.slack_url_secret:
        out["slack_configs"] = [{"api_url": secrets[receiver.slack_url_secret], "send_resolved": True}]
    if receiver.pagerduty_key_secret:
        out["pagerduty_configs"] = [{"routing_key": secrets[receiver.pagerduty_key_secret], "send_resolved": True}]
    if receiver.webhook_url_secret:
        out["webhook_configs"] = [{"url": secrets[receiver.webhook_url_secret], "send_resolved": True}]
    return out


def _page(name: str) -> dict:
    return {"receiver": f"{name}-page", "matchers": ['severity="page"'], "repeat_interval": REPEAT["page"]}


def _route(name: str, matcher: str) -> dict:
    """`name`'s tickets, and its pages beneath them."""
    return {"receiver": f"{name}-ticket", "matchers": [matcher], "routes": [_page(name)]}


def alertmanager_config(config: PlatformStack) -> dict:
    """Every alert of a tenant's namespace to its receivers (the platform's where it names none),
    the platform's own rules and everything else to the platform's; a page inhibits its ticket."""
    receivers = [_receiver(f"platform-{s}", config.alerting.receivers().get(s), config.secrets) for s in SEVERITIES]
    routes = [_route("platform", f'{slo.AUDIENCE}="platform"')]
    for tenant in config.tenants:
        if tenant_receivers := tenant.alerts.receivers():
            name = f"tenant-{tenant.name}"
            receivers += [_receiver(f"{name}-{s}", tenant_receivers[s], config.secrets) for s in SEVERITIES]
            routes.append(_route(name, f'namespace="{tenant.home}"'))
    return {
        "route": {
            "receiver": "platform-ticket",
            "group_by": list(GROUP_BY),
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": REPEAT["ticket"],
            "routes": [*routes, _page("platform")],
        },
        "inhibit_rules": [
            {"source_matchers": ['severity="page"'], "target_matchers": ['severity="ticket"'], "equal": list(GROUP_BY)}
        ],
        "receivers": receivers,
    }


def routing_warnings(config: PlatformStack) -> list[str]:
    """Who hears nothing: no platform receivers drops every alert that reaches them."""
    if config.alerting.receivers():
        return []
    silent = [f"tenants[{i}] ({t.name})" for i, t in enumerate(config.tenants) if not t.alerts.receivers()]
    return [
        "alerting: no receivers, so the platform's alerts"
        + (f" and those of {', '.join(silent)}" if silent else "")
        + " reach no one; set alerting.page/ticket and their secrets"
        " (`pulumi config set --secret --path 'secrets.<name>' <url or key>`)"
    ]


class Alerting(AddOn):
    @staticmethod
    def wanted(config: PlatformStack) -> bool:
        return config.addons.monitoring

    def __init__(self, plan: PlatformPlan, after: list[pulumi.Resource], opts: pulumi.ResourceOptions):
        config = plan.config
        super().__init__("rayplane:platform:Alerting", f"{config.prefix}-alerting", None, opts)
        document = yaml.safe_dump(alertmanager_config(config), sort_keys=False)
        self.config = k8s.core.v1.Secret(
            f"{config.prefix}-alertmanager",
            metadata={"name": ALERTMANAGER_SECRET, "namespace": GMP_PUBLIC_NAMESPACE},
            string_data={ALERTMANAGER_KEY: pulumi.Output.secret(document)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        for warning in routing_warnings(config):
            pulumi.log.warn(warning)
        if config.addons.kueue.enabled:  # its pending workloads are half the platform's one rule
            spec = RulesSpec.model_validate(
                {"groups": [{"name": "platform-alerts", "interval": "30s", "rules": slo.platform_alerts()}]}
            )
            self.rules = k8s.apiextensions.CustomResource(
                f"{config.prefix}-platform-rules",
                api_version=GMP_API,
                kind="ClusterRules",
                metadata={"name": f"{config.prefix}-platform"},
                spec=spec.model_dump(by_alias=True, exclude_none=True),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )
        self.register_outputs({})
