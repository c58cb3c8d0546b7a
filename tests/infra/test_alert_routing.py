"""Where alerts go (components/addons/alerting.py): the managed Alertmanager's config, checked by
Alertmanager's own `amtool` (Debian's prometheus-alertmanager; .ci/prometheus-tools installs it) and
routed by it; the platform's rule (GPUs idle while Kueue holds work back) evaluated by promtool;
and how Kueue's metrics reach GMP, held against the pinned chart and operator sources."""

import copy
import shutil
import subprocess

import promql_parser
import pytest
import yaml

from components import slo
from components.addons.alerting import alertmanager_config
from components.config import ConfigError, loading
from components.conventions import ALERTMANAGER_KEY, ALERTMANAGER_SECRET, GMP_PUBLIC_NAMESPACE
from tests.infra import upstream
from tests.infra.conftest import PLATFORM_STACKS, render_values, rendered, stack_values
from tests.infra.test_alerts import _names, _promtool

AMTOOL = shutil.which("amtool")
SECRETS = {"search-pager": "pd-key", "search-slack": "https://hooks.slack.invalid/s", "oncall": "https://hook.invalid"}


def _config(stack: str, values: dict | None = None):
    raw = values or stack_values(stack)
    return loading.parse({k.removeprefix("rayplane:"): v for k, v in raw.items()})


def _with_receivers(stack: str = "prod") -> dict:
    values = stack_values(stack)
    values["rayplane:secrets"] = {key: {"secure": "v1:" + "QUFB" * 8} for key in SECRETS}
    values["rayplane:alerting"] = {"ticket": {"webhookUrlSecret": "oncall"}}
    values["rayplane:tenants"][0]["alerts"] = {
        "page": {"pagerdutyKeySecret": "search-pager"},
        "ticket": {"slackUrlSecret": "search-slack"},
    }
    return values


def _plain(values: dict) -> dict:
    """The config as the program sees it once Pulumi has decrypted its secrets."""
    return {**values, "rayplane:secrets": SECRETS}


def _amtool(tmp_path, document: dict, *args: str) -> subprocess.CompletedProcess:
    assert AMTOOL, "amtool is missing: `apt-get install prometheus-alertmanager` (.ci/prometheus-tools installs it)"
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(document))
    where = [str(path)] if args == ("check-config",) else [f"--config.file={path}"]
    return subprocess.run([AMTOOL, *args, *where], capture_output=True, text=True, timeout=60)


def _receiver(tmp_path, document: dict, labels: dict[str, str]) -> str:
    done = _amtool(tmp_path, document, "config", "routes", "test", *(f"{k}={v}" for k, v in labels.items()))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_every_platform_configures_the_managed_alertmanager(stack, tmp_path):
    [secret] = [
        s
        for s in rendered(stack).of_type("kubernetes:core/v1:Secret")
        if s["inputs"]["metadata"]["name"] == "alertmanager"
    ]
    assert secret["inputs"]["metadata"] == {"name": ALERTMANAGER_SECRET, "namespace": GMP_PUBLIC_NAMESPACE}
    assert list(secret["inputs"]["stringData"]) == [ALERTMANAGER_KEY]
    # where GMP's operator reads it at the pinned commit (pkg/operator/operator_config.go)
    source = upstream.text("gmp/operator_config.go.txt")
    assert f'AlertmanagerPublicSecretName = "{ALERTMANAGER_SECRET}"' in source
    assert f'AlertmanagerPublicSecretKey  = "{ALERTMANAGER_KEY}"' in source
    done = _amtool(tmp_path, alertmanager_config(_config(stack)), "check-config")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_receivers_is_said_at_preview():
    assert any("alerting: no receivers" in w and "tenants[0] (search)" in w for w in rendered("prod").warnings)
    assert not any("alerting: no receivers" in w for w in render_values("prod", _with_receivers()).warnings)


def test_each_tenants_alerts_reach_its_receivers_and_no_one_elses(tmp_path):
    document = alertmanager_config(_config("dev", _plain(_with_receivers("dev"))))
    assert _amtool(tmp_path, document, "check-config").returncode == 0
    by_name = {r["name"]: r for r in document["receivers"]}
    assert by_name["tenant-search-page"]["pagerduty_configs"][0]["routing_key"] == "pd-key"
    assert by_name["tenant-search-ticket"]["slack_configs"][0]["api_url"] == SECRETS["search-slack"]
    # what search's own rules raise (GMP adds namespace="search" to each: rules_config.go)
    rules = rendered("search-dev").one("kubernetes:monitoring.googleapis.com/v1:Rules")["inputs"]["spec"]["groups"]
    alerts = [r for group in rules for r in group["rules"] if "alert" in r]
    assert {a["labels"]["severity"] for a in alerts} == {"page", "ticket"}
    for alert in alerts:
        labels = {**alert["labels"], "namespace": "search"}
        assert _receiver(tmp_path, document, labels) == f"tenant-search-{alert['labels']['severity']}"
        # the same alert from assistant's namespace (no receivers of its own) goes to the platform's
        elsewhere = {**labels, "namespace": "assistant"}
        assert _receiver(tmp_path, document, elsewhere) == f"platform-{alert['labels']['severity']}"
    # the platform's own rule, whatever namespace holds the idle GPUs
    for platform_alert in slo.platform_alerts():
        labels = {**platform_alert["labels"], "namespace": "search"}
        assert _receiver(tmp_path, document, labels) == "platform-ticket"
    # a severity with no receiver of its own takes the other's: the platform's pages reach its webhook
    assert by_name["platform-page"] == {**by_name["platform-ticket"], "name": "platform-page"}


def test_no_rule_may_set_the_namespace_label_the_routes_trust():
    # GMP refuses a namespaced rule that sets it, and sets it on every rule's output itself
    source = upstream.text("gmp/rules_config.go.txt")
    assert "export.KeyNamespace: r.Namespace," in source
    assert "label %q already set on rule with unexpected value %q" in source
    for stack in ("search-dev", "search-prod", "assistant-dev"):
        groups = rendered(stack).one("kubernetes:monitoring.googleapis.com/v1:Rules")["inputs"]["spec"]["groups"]
        for rule in (r for g in groups for r in g["rules"]):
            assert not {"namespace", "cluster", "location", "project_id", slo.AUDIENCE} & set(rule.get("labels", {}))


def _monitoring_off(values: dict) -> None:
    values["rayplane:addons"]["monitoring"] = False


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            lambda v: v["rayplane:tenants"][0].update(alerts={"page": {"slackUrlSecret": "nope"}}),
            "tenants[0].alerts.page.slackUrlSecret: no secret 'nope' in rayplane:secrets",
        ),
        (
            lambda v: v.update({"rayplane:alerting": {"ticket": {}}}),
            "alerting.ticket: name at least one of slackUrlSecret, pagerdutyKeySecret, webhookUrlSecret",
        ),
        (  # Alertmanager would refuse it, and GMP's operator keep the old config without a word
            lambda v: v["rayplane:secrets"].update({"oncall": "hook.invalid/alerts"}),
            "alerting.ticket.webhookUrlSecret: secrets.oncall is not an http(s) URL with a host",
        ),
        (
            _monitoring_off,
            "alerting: receivers are set but addons.monitoring is off: no rule would reach them",
        ),
    ],
    ids=["missing-secret", "no-integration", "not-a-url", "monitoring-off"],
)
def test_bad_receivers_are_refused_with_their_key_path(edit, error):
    values = _plain(_with_receivers())  # as the program sees them, decrypted
    edit(values)
    with pytest.raises(ConfigError) as exc:
        _config("prod", values)
    assert error in exc.value.errors


def test_a_receivers_secret_in_the_stack_file_in_plain_text_is_refused(stacks):
    values = _plain(_with_receivers())
    (stacks / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": values}))
    with pytest.raises(ConfigError) as exc:
        loading.stack_file("prod", stacks)
    assert (
        "secrets.search-pager: stored in plain text in the stack file; set it with"
        " `pulumi config set --secret --path 'secrets.search-pager' <value>`"
    ) in exc.value.errors


def test_gpus_idle_while_kueue_holds_work_back_fires_and_stays_silent_otherwise(tmp_path):
    [rules] = rendered("prod").of_type("kubernetes:monitoring.googleapis.com/v1:ClusterRules")
    groups = rules["inputs"]["spec"]["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert _names(promql_parser.parse(rule["expr"])) <= set(slo.METRICS)
    idle, missing = slo.platform_alerts()
    gpu = 'ray_node_gpus_utilization{namespace="%s",pod="%s",GpuIndex="0"}'
    pending = 'kueue_pending_workloads{cluster_queue="l4",status="%s",replica_role="%s"}'
    busy_then_idle = "90x30 2x90"  # busy for 30 minutes, then idle
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": gpu % ("search", "chat-worker-a"), "values": busy_then_idle},
                {"series": gpu % ("search", "chat-worker-b"), "values": busy_then_idle},
                {"series": gpu % ("assistant", "chat-worker"), "values": "80x120"},  # busy all along
                # idle, but only 10 minutes old at minute 80: still loading, not counted
                {"series": gpu % ("search", "chat-worker-new"), "values": "_x70 0x50"},
                # idle from minute 20 (firing from 65), given back at minute 70: not counted once gone
                {"series": gpu % ("assistant", "batch-worker"), "values": "_x20 0x50"},
                # one job waits from minute 20; the follower replica reports the same gauge
                {"series": pending % ("active", "leader"), "values": "0x20 1x100"},
                {"series": pending % ("active", "follower"), "values": "0x20 1x100"},
            ],
            "alert_rule_test": [
                # idle for 25 minutes: not yet 30
                {"eval_time": "55m", "alertname": idle["alert"], "exp_alerts": []},
                # idle for 30 minutes from minute 60, then held 15 more
                {
                    "eval_time": "80m",
                    "alertname": idle["alert"],
                    "exp_alerts": [
                        {
                            "exp_labels": {**idle["labels"], "namespace": "search"},
                            "exp_annotations": {
                                "summary": "search: 2 GPU(s) at most 5% busy for 30m while Kueue holds workloads back"
                            },
                        }
                    ],
                },
                {"eval_time": "80m", "alertname": missing["alert"], "exp_alerts": []},
            ],
        },
        {  # the same idle GPUs with no work waiting: silent
            "interval": "1m",
            "input_series": [
                {"series": gpu % ("search", "chat-worker-a"), "values": busy_then_idle},
                {"series": pending % ("active", "leader"), "values": "0x120"},
                {"series": pending % ("inadmissible", "leader"), "values": "0x120"},
            ],
            "alert_rule_test": [{"eval_time": "100m", "alertname": idle["alert"], "exp_alerts": []}],
        },
        {  # no Kueue metrics at all (a broken scrape): said, since the first alert could never fire
            "interval": "1m",
            "input_series": [{"series": gpu % ("search", "chat-worker-a"), "values": busy_then_idle}],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": missing["alert"], "exp_alerts": []},
                {
                    "eval_time": "40m",
                    "alertname": missing["alert"],
                    "exp_alerts": [{"exp_labels": missing["labels"], "exp_annotations": missing["annotations"]}],
                },
            ],
        },
    ]
    done = _promtool(tmp_path, groups, tests)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_kueues_metrics_are_scraped_as_its_chart_and_manager_serve_them():
    objects = {(m["kind"], m["metadata"]["name"]): m for m in rendered("prod").manifests()}
    monitor = objects["PodMonitoring", "kueue"]
    [endpoint] = monitor["spec"]["endpoints"]
    # the manager serves HTTPS to tokens allowed `get /metrics` (cmd/kueue/main.go)
    main = upstream.text("kueue/main.go.txt")
    assert "SecureServing:  true," in main and "filters.WithAuthenticationAndAuthorization" in main
    assert endpoint["scheme"] == "https" and endpoint["tls"] == {"insecureSkipVerify": True}
    # the pod's labels and port name in the chart (release kueue: its fullname is kueue)
    helpers, manager = upstream.text("kueue/chart-helpers.tpl.txt"), upstream.text("kueue/chart-manager.yaml.txt")
    labels = monitor["spec"]["selector"]["matchLabels"]
    assert (
        labels["app.kubernetes.io/name"] == "kueue"
        and 'app.kubernetes.io/name: {{ include "kueue.name" . }}' in helpers
    )
    assert f"control-plane: {labels['control-plane']}" in helpers
    assert f"- containerPort: 8443\n          name: {endpoint['port']}\n" in manager
    upstream.validate_cr(monitor)  # its CRD and CEL rules; a secret from another namespace is refused:
    elsewhere = copy.deepcopy(monitor)
    elsewhere["spec"]["endpoints"][0]["authorization"]["credentials"]["secret"]["namespace"] = "kube-system"
    with pytest.raises(AssertionError, match="Namespace not allowed on PodMonitoring secret references"):
        upstream.validate_cr(elsewhere)
    # its token: a service account's, bound to the chart's reader role, readable by GMP's collector
    token_name = endpoint["authorization"]["credentials"]["secret"]["name"]
    token = objects["Secret", token_name]
    assert token["type"] == "kubernetes.io/service-account-token"
    account = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    binding = next(
        m for (kind, _), m in objects.items() if kind == "ClusterRoleBinding" and m["subjects"][0]["name"] == account
    )
    assert (
        "name: '{{ include \"kueue.fullname\" . }}-metrics-reader'"
        in upstream.text("kueue/chart-metrics-reader-role.yaml.txt")
        and binding["roleRef"]["name"] == "kueue-metrics-reader"
    )
    reader = next(
        m for (kind, _), m in objects.items() if kind == "RoleBinding" and m["metadata"]["namespace"] == "kueue-system"
    )
    assert reader["subjects"] == [{"kind": "ServiceAccount", "name": "collector", "namespace": "gmp-system"}]
    [rule] = objects["Role", reader["roleRef"]["name"]]["rules"]
    assert rule["resourceNames"] == [token_name] and "get" in rule["verbs"]
