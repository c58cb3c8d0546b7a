"""A team's recording and alerting rules (components/slo.py): rendered for every team stack as a GMP
`Rules` object, every expression parsed by a PromQL parser and reading only metrics whose source is
known, and the alerts evaluated by Prometheus's own `promtool test rules` on synthetic series: a
breach fires, a healthy service stays silent."""

import json
import shutil
import subprocess

import promql_parser
import pytest
import yaml

from components import slo
from components.config import ConfigError
from tests.infra.conftest import TEAM_STACKS, render_values, rendered, stack_values

RULES = "kubernetes:monitoring.googleapis.com/v1:Rules"
PROMTOOL = shutil.which("promtool")


def groups(stack: str) -> list[dict]:
    [rules] = rendered(stack).of_type(RULES)
    return rules["inputs"]["spec"]["groups"]


def _names(node) -> set[str]:
    """The metric names an expression's selectors read."""
    found = set()
    if isinstance(node, promql_parser.VectorSelector):
        found.add(node.name)
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        if (child := getattr(node, attr, None)) is not None and not isinstance(child, str | float | int):
            found |= _names(child)
    for arg in getattr(node, "args", None) or []:
        found |= _names(arg)
    return found


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_every_team_gets_its_rules_and_every_expression_reads_known_metrics(stack):
    rules = [rule for group in groups(stack) for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    services = {s["name"] for s in stack_values(stack)["rayplane:services"]}
    assert {r["labels"]["service"] for r in rules if "alert" in r and "service" in r["labels"]} == services
    for rule in rules:
        names = _names(promql_parser.parse(rule["expr"]))
        assert names and names <= recorded | set(slo.METRICS), (rule, names - recorded - set(slo.METRICS))


def test_llm_targets_belong_to_llms():
    values = stack_values("search-dev")
    embed = next(s for s in values["rayplane:services"] if s["payload"] == "embeddings")
    embed["slo"] = {"ttftP95Ms": 500}
    with pytest.raises(ConfigError) as exc:
        render_values("search-dev", values)
    assert exc.value.errors == [
        "services[0].slo: ttftP95Ms and itlP95Ms are an LLM's (payload llm): vLLM measures them"
    ]


def _promtool(tmp_path, rule_groups: list[dict], tests: list[dict]) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is missing: `apt-get install prometheus` (Debian's package; .ci/run installs it)"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}))
    suite = {"rule_files": ["rules.yaml"], "evaluation_interval": "30s", "tests": tests}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(suite))
    return subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


HEALTHY_MINUTES = 420  # 7 hours of a healthy service: every window, the 6-hour one too, starts healthy


def _counter(per_minute: list[tuple[int, int]]) -> str:
    """promtool's series notation for a counter growing by `rate` a minute for `minutes`, in turn."""
    parts, value, first = [], 0, True
    for rate, minutes in per_minute:
        start = value if first else value + rate
        parts.append(f"{start}+{rate}x{minutes if first else minutes - 1}")
        value, first = value + rate * minutes, False
    return " ".join(parts)


def _series(name: str, labels: str, healthy: int, then: int, minutes: int) -> dict:
    return {"series": f"{name}{{{labels}}}", "values": _counter([(healthy, HEALTHY_MINUTES), (then, minutes)])}


def _service(app: str, error_share: float, slow_share: float, minutes: int = 60) -> list[dict]:
    """600 requests a minute: healthy for HEALTHY_MINUTES, then `error_share` of them 5xx and
    `slow_share` slower than 100 ms (the rest at most 100 ms; none above 1000 ms)."""
    errors, slow = int(600 * error_share), int(600 * slow_share)
    requests, latency = "ray_serve_num_http_requests_total", "ray_serve_http_request_latency_ms_bucket"
    return [
        _series(requests, f'application="{app}",status_code="200"', 600, 600 - errors, minutes),
        _series(requests, f'application="{app}",status_code="500"', 0, errors, minutes),
        _series(latency, f'application="{app}",le="100"', 600, 600 - slow, minutes),
        _series(latency, f'application="{app}",le="1000"', 600, 600, minutes),
        _series(latency, f'application="{app}",le="+Inf"', 600, 600, minutes),
    ]


def _first_tokens(model: str, slow_share: float, minutes: int = 60) -> list[dict]:
    """60 answers a minute, healthy then `slow_share` of them taking 1-5 s to their first token."""
    name, slow = "ray_vllm_time_to_first_token_seconds_bucket", int(60 * slow_share)
    return [
        _series(name, f'model_name="{model}",le="1"', 60, 60 - slow, minutes),
        _series(name, f'model_name="{model}",le="5"', 60, 60, minutes),
        _series(name, f'model_name="{model}",le="+Inf"', 60, 60, minutes),
    ]


def _expect(rule_groups: list[dict], alert: str, after: int, firing: list[tuple[str, dict]]) -> dict:
    """`alert` `after` minutes into the bad stretch: firing at each (severity, labels) given, with
    the rule's own labels and annotations (promtool compares them all)."""
    rules = {
        (r["alert"], r["labels"]["severity"], r["labels"].get("service")): r
        for g in rule_groups
        for r in g["rules"]
        if "alert" in r
    }
    expected = []
    for severity, labels in firing:
        rule = rules[alert, severity, labels.get("service")]
        expected.append({"exp_labels": rule["labels"] | labels, "exp_annotations": rule["annotations"]})
    return {"eval_time": f"{HEALTHY_MINUTES + after}m", "alertname": alert, "exp_alerts": expected}


def test_the_alerts_fire_on_a_breach_and_stay_silent_when_healthy(tmp_path):
    rule_groups = groups("search-dev")
    model = next(s for s in stack_values("search-dev")["rayplane:services"] if s["payload"] == "llm")["args"]["models"][
        0
    ]["model_id"]
    embed = {"service": "embed", "application": "embed"}
    chat = {"service": "chat", "model_name": model}
    tests = [
        {  # healthy all along: nothing fires (a slow model whose id only a regex '.' would match included)
            "interval": "1m",
            "input_series": _service("embed", 0, 0)
            + _first_tokens(model, 0)
            + _first_tokens(model.replace(".", "x"), 1.0),
            "alert_rule_test": [
                _expect(rule_groups, alert, 60, [])
                for alert in ("RayServeErrorBudgetBurn", "RayServeLatencyHigh", "LLMTimeToFirstTokenHigh")
            ],
        },
        {  # an application that never served a 5xx (no such series yet): its error ratio is 0, not absent
            "interval": "1m",
            "input_series": [
                _series("ray_serve_num_http_requests_total", 'application="quiet",status_code="200"', 60, 60, 60)
            ],
            "promql_expr_test": [
                {
                    "expr": f'rayplane:serve_error_ratio:{w}{{application="quiet"}}',
                    "eval_time": f"{HEALTHY_MINUTES}m",
                    "exp_samples": [{"labels": f'rayplane:serve_error_ratio:{w}{{application="quiet"}}', "value": 0}],
                }
                for w in slo.WINDOWS
            ],
        },
        {  # 20% 5xx, every request slower than 100 ms, every first token slower than 1 s
            "interval": "1m",
            "input_series": _service("embed", 0.2, 1.0) + _first_tokens(model, 1.0),
            "alert_rule_test": [
                # 20 minutes in, the last hour holds 6.7% errors: under the page's 14.4 x 0.5%
                _expect(rule_groups, "RayServeErrorBudgetBurn", 20, []),
                # 40 minutes in: 13.3% over the hour, 20% over 5 minutes: a page; the 6 hours hold 2.2%,
                # under the ticket's 6 x 0.5%
                _expect(rule_groups, "RayServeErrorBudgetBurn", 40, [("page", embed)]),
                _expect(rule_groups, "RayServeLatencyHigh", 40, [("page", embed)]),
                # p95s: 40 slow minutes are 11% of 6 hours, more than the 5% a p95 allows, so the
                # first token's 6-hour p95 (2 s sits low in its 1-5 s bucket) is over its target too
                _expect(rule_groups, "LLMTimeToFirstTokenHigh", 40, [("page", chat), ("ticket", chat)]),
            ],
        },
        {  # a Ray head stops answering its scrape
            "interval": "1m",
            "input_series": [
                {"series": 'up{job="ray-heads",pod="embed-head"}', "values": "1x425 0x30"},
                {"series": 'up{job="ray-heads",pod="chat-head"}', "values": "1x455"},
            ],
            "alert_rule_test": [
                _expect(rule_groups, "RayHeadDown", 8, []),
                {
                    "eval_time": f"{HEALTHY_MINUTES + 15}m",
                    "alertname": "RayHeadDown",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "team": "search",
                                "severity": "page",
                                "job": "ray-heads",
                                "pod": "embed-head",
                            },
                            "exp_annotations": {
                                "summary": "embed-head: a Ray head is not answering its metrics scrape"
                            },
                        }
                    ],
                },
            ],
        },
    ]
    done = _promtool(tmp_path, rule_groups, tests)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


DASHBOARD = "gcp:monitoring/dashboard:Dashboard"


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_every_team_gets_a_dashboard_of_its_own_series(stack):
    team = stack_values(stack)["rayplane:team"]
    namespace = team.get("namespace", team["name"])
    platform = rendered(stack_values(stack)["rayplane:platformStack"].rsplit("/", 1)[-1])
    [board] = rendered(stack).of_type(DASHBOARD)
    assert board["inputs"]["project"] == platform.outputs["project"]  # where the cluster's series are
    layout = json.loads(board["inputs"]["dashboardJson"])["mosaicLayout"]
    tiles = layout["tiles"]
    # every tile inside the grid, none over another
    cells = [
        (x, y)
        for t in tiles
        for x in range(t["xPos"], t["xPos"] + t["width"])
        for y in range(t["yPos"], t["yPos"] + t["height"])
    ]
    assert all(x < layout["columns"] for x, _ in cells) and len(cells) == len(set(cells))
    recorded = {rule["record"] for group in groups(stack) for rule in group["rules"] if "record" in rule}
    charts = [t["widget"] for t in tiles if "xyChart" in t["widget"]]
    assert len(charts) == 10
    for chart in charts:
        [data] = chart["xyChart"]["dataSets"]
        query = data["timeSeriesQuery"]["prometheusQuery"]
        assert f'namespace="{namespace}"' in query and f'cluster="{platform.outputs["clusterName"]}"' in query
        names = _names(promql_parser.parse(query))
        assert names and names <= recorded | set(slo.METRICS), (chart["title"], names)
    [costs] = [t["widget"] for t in tiles if "text" in t["widget"]]
    for workload in rendered(stack).outputs["capacity"]["workloads"]:
        assert f"| {workload['name']} |" in costs["text"]["content"]
