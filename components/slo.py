"""A team's recording and alerting rules, from its services' objectives (config `slo`), for Google
Managed Prometheus: a `Rules` object in the team's namespace (GMP adds the namespace, cluster,
location and project matchers to every selector, so a team's rules see only its own series).

Every metric the rules read is in METRICS with where it comes from (Ray 2.60 exports counters as
`<name>_total`, every name `ray_` prefixed; vLLM's ':' becomes '_').

Availability burns its error budget: multiwindow, multi-burn-rate alerts (Google's SRE workbook,
"Alerting on SLOs"): a page when the last hour and the last 5 minutes both burn it 14.4 times too
fast (2% of a 28-day budget in an hour), a ticket at 6 times over 6 hours and 30 minutes. Latency
targets are percentiles: the same windows on the p95 itself (a histogram's quantile needs no bucket
at the target, which Serve's and vLLM's fixed buckets rarely have).
"""

import re

from components.config import Service
from components.conventions import RAY_HEADS_MONITOR

AUDIENCE = "audience"  # `platform` on the platform's own rules: its receivers get them, whatever namespace they name

METRICS = {
    "ray_serve_num_http_requests_total": "ray/serve/_private/request_ingress_metrics.py:37-95 (the proxy;"
    " application, route, method, status_code)",
    "ray_serve_http_request_latency_ms_bucket": "ray/serve/_private/request_ingress_metrics.py:37-95 (the proxy;"
    " application, le)",
    "ray_serve_deployment_replica_healthy": "ray/serve/_private/deployment_state.py:3079-3098 (1 or 0 per replica)",
    "ray_serve_health_check_failures_total": "ray/serve/_private/deployment_state.py:3151",
    "ray_serve_deployment_queued_queries": "ray/serve/_private/router.py:680-700 (application, deployment, handle)",
    "ray_vllm_time_to_first_token_seconds_bucket": "vllm/v1/metrics/loggers.py through ray_wrappers.py:70-82"
    " (Ray Serve LLM's log_engine_metrics, on by default; model_name)",
    "ray_vllm_inter_token_latency_seconds_bucket": "vllm/v1/metrics/loggers.py through ray_wrappers.py:70-82",
    "up": "GMP's scrape of each target (job: the ClusterPodMonitoring's name)",
    # the dashboards' too
    "ray_vllm_generation_tokens_total": "vllm/v1/metrics/loggers.py through ray_wrappers.py:70-82 (model_name)",
    "ray_node_gpus_utilization": "ray/dashboard/modules/reporter/reporter_agent.py:216-250 (percent, per GpuIndex)",
    "ray_node_gram_used": "ray/dashboard/modules/reporter/reporter_agent.py:216-250 (MiB: gpu_providers.py:401)",
    "kueue_pending_workloads": "kueue v0.19.2 pkg/metrics/metrics.go:411-419 (cluster_queue, status active or"
    " inadmissible, replica_role)",
}
# (severity, long window, short window, burn rate, for)
BURNS = (("page", "1h", "5m", 14.4, "2m"), ("ticket", "6h", "30m", 6.0, "15m"))
WINDOWS = ("5m", "30m", "1h", "6h")  # every window BURNS names
QUEUE_BACKLOG = 100  # requests waiting at a deployment's handles for 10 minutes: more replicas, or a stuck one
IDLE_GPU_PERCENT = 5  # a GPU whose utilisation never rose above this for IDLE_FOR sits idle
IDLE_FOR = "30m"


def _p95(metric: str, by: str, window: str) -> str:
    return f"histogram_quantile(0.95, sum by ({by}, le) (rate({metric}_bucket[{window}])))"


SLIS = {  # recorded name (`<name>:<window>`) -> its expression over a window
    # 0, not absent, while an application has served no 5xx (Ray exports a status code's series
    # from its first request): its chart and burn alerts see a healthy service, not no data.
    "rayplane:serve_error_ratio": lambda w: (
        f'(sum by (application) (rate(ray_serve_num_http_requests_total{{status_code=~"5.."}}[{w}]))'
        f" or 0 * sum by (application) (rate(ray_serve_num_http_requests_total[{w}])))"
        f" / sum by (application) (rate(ray_serve_num_http_requests_total[{w}]))"
    ),
    "rayplane:serve_latency_ms_p95": lambda w: _p95("ray_serve_http_request_latency_ms", "application", w),
    "rayplane:vllm_ttft_seconds_p95": lambda w: _p95("ray_vllm_time_to_first_token_seconds", "model_name", w),
    "rayplane:vllm_itl_seconds_p95": lambda w: _p95("ray_vllm_inter_token_latency_seconds", "model_name", w),
}


def recording_rules() -> list[dict]:
    return [{"record": f"{name}:{w}", "expr": expr(w)} for name, expr in SLIS.items() for w in WINDOWS]


def _alerts(alert: str, sli: str, selector: str, threshold_of, says: str, labels: dict) -> list[dict]:
    """`alert` at each severity: the SLI above its threshold over both the long and the short window."""
    return [
        {
            "alert": alert,
            "expr": " and ".join(f"{sli}:{w}{{{selector}}} > {threshold_of(burn):g}" for w in (long, short)),
            "for": wait,
            "labels": {**labels, "severity": severity},
            "annotations": {"summary": says.format(long=long, short=short)},
        }
        for severity, long, short, burn, wait in BURNS
    ]


def service_alerts(team: str, service: Service) -> list[dict]:
    """A service's objectives as alerts, each at a page and a ticket severity."""
    slo, app = service.objectives(), service.name
    labels = {"team": team, "service": app}
    budget = round(1 - slo.availability, 6)
    rules = _alerts(
        "RayServeErrorBudgetBurn",
        "rayplane:serve_error_ratio",
        f'application="{app}"',
        lambda burn: round(burn * budget, 6),
        f"{app}: 5xx over the last {{long}} and {{short}} burn the {slo.availability:.2%} availability budget too fast",
        labels,
    )
    if slo.latency_p95_ms:
        rules += _alerts(
            "RayServeLatencyHigh",
            "rayplane:serve_latency_ms_p95",
            f'application="{app}"',
            lambda _: slo.latency_p95_ms,
            f"{app}: p95 latency over the last {{long}} and {{short}} above {slo.latency_p95_ms} ms",
            labels,
        )
    if service.payload == "llm":
        # A fully anchored RE2 matcher of the ids themselves ('.' in "qwen2.5" is a dot), in a
        # PromQL string (its backslashes escaped once more).
        models = "|".join(re.escape(m.model_id).replace("\\", "\\\\") for m in service.args.models)
        for alert, name, target in (
            ("LLMTimeToFirstTokenHigh", "rayplane:vllm_ttft_seconds_p95", slo.ttft_p95_ms),
            ("LLMInterTokenLatencyHigh", "rayplane:vllm_itl_seconds_p95", slo.itl_p95_ms),
        ):
            rules += _alerts(
                alert,
                name,
                f'model_name=~"{models}"',
                lambda _, t=target: t / 1000,
                f"{app}: {alert} p95 over the last {{long}} and {{short}} above {target} ms",
                labels,
            )
    return rules


def team_alerts(team: str) -> list[dict]:
    """What every team's Ray clusters need watched besides its objectives."""
    labels = {"team": team, "severity": "ticket"}
    return [
        {
            "alert": "RayServeReplicaUnhealthy",
            "expr": "min by (application, deployment, replica) (ray_serve_deployment_replica_healthy) == 0",
            "for": "10m",
            "labels": labels,
            "annotations": {"summary": "{{ $labels.application }}/{{ $labels.deployment }}: a replica unhealthy"},
        },
        {
            "alert": "RayServeReplicasRestarting",
            "expr": "sum by (deployment) (increase(ray_serve_health_check_failures_total[15m])) > 3",
            "labels": labels,
            "annotations": {"summary": "{{ $labels.deployment }}: replicas failing health checks (restarts)"},
        },
        {
            "alert": "RayServeQueueBacklog",
            "expr": f"sum by (application, deployment) (ray_serve_deployment_queued_queries) > {QUEUE_BACKLOG}",
            "for": "10m",
            "labels": labels,
            "annotations": {"summary": "{{ $labels.application }}/{{ $labels.deployment }}: requests queue up"},
        },
        {
            "alert": "RayHeadDown",
            "expr": f'up{{job="{RAY_HEADS_MONITOR}"}} == 0',
            "for": "5m",
            "labels": {**labels, "severity": "page"},
            "annotations": {"summary": "{{ $labels.pod }}: a Ray head is not answering its metrics scrape"},
        },
    ]


def platform_alerts() -> list[dict]:
    """The platform team's: GPUs that Ray pods hold but do not use while Kueue holds work back (the
    holders' replicas or minimums are too generous for the quota), and Kueue's metrics gone (the
    first alert could never fire). A GPU counts once its series is as old as IDLE_FOR and still
    reported: not a worker still loading its model, nor one the autoscaler has given back. Every
    Kueue replica reports the gauges, so the most any reports counts."""
    gpu = "ray_node_gpus_utilization"
    idle = f"max_over_time({gpu}[{IDLE_FOR}]) <= {IDLE_GPU_PERCENT} and {gpu} and {gpu} offset {IDLE_FOR}"
    labels = {"severity": "ticket", AUDIENCE: "platform"}
    return [
        {
            "alert": "GpusIdleWhileWorkWaits",
            "expr": f"count by (namespace) ({idle})"
            " and on () (sum(max by (cluster_queue, status) (kueue_pending_workloads)) > 0)",
            "for": "15m",
            "labels": labels,
            "annotations": {
                "summary": f"{{{{ $labels.namespace }}}}: {{{{ $value }}}} GPU(s) at most {IDLE_GPU_PERCENT}% busy"
                f" for {IDLE_FOR} while Kueue holds workloads back"
            },
        },
        {
            "alert": "KueueMetricsMissing",
            "expr": "absent(kueue_pending_workloads)",
            "for": "30m",
            "labels": labels,
            "annotations": {"summary": "no Kueue metrics for 30m: its scrape (token, RBAC) or Kueue itself is broken"},
        },
    ]


def rule_groups(team: str, services: list[Service]) -> list[dict]:
    """The `spec.groups` of the team's Rules object."""
    alerts = [rule for service in services for rule in service_alerts(team, service)] + team_alerts(team)
    return [
        {"name": f"{team}-slis", "interval": "30s", "rules": recording_rules()},
        {"name": f"{team}-alerts", "interval": "30s", "rules": alerts},
    ]
