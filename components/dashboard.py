"""A team's Cloud Monitoring dashboard: PromQL charts over its own namespace's series in Google
Managed Prometheus (traffic, errors, latency and LLM percentiles, tokens, replicas, queues, GPUs)
and its capacity report's costs. Every metric it reads is in components/slo.py's METRICS."""

import json

import pulumi
import pulumi_gcp as gcp

from components.capacity import TeamCapacity

COLUMNS = 48  # Cloud Monitoring's mosaic layout: 48 columns wide
WIDTH, HEIGHT = 24, 16  # two charts a row


def panels(namespace: str, cluster: str) -> list[tuple[str, str]]:
    """(title, PromQL) of each chart, over the team's namespace in its cluster."""
    at = f'cluster="{cluster}",namespace="{namespace}"'
    return [
        ("Requests per second", f"sum by (application) (rate(ray_serve_num_http_requests_total{{{at}}}[5m]))"),
        ("5xx share", f"rayplane:serve_error_ratio:5m{{{at}}}"),
        ("Request latency p95 (ms)", f"rayplane:serve_latency_ms_p95:5m{{{at}}}"),
        ("LLM time to first token p95 (s)", f"rayplane:vllm_ttft_seconds_p95:5m{{{at}}}"),
        ("LLM time between tokens p95 (s)", f"rayplane:vllm_itl_seconds_p95:5m{{{at}}}"),
        ("LLM output tokens per second", f"sum by (model_name) (rate(ray_vllm_generation_tokens_total{{{at}}}[5m]))"),
        ("Healthy replicas", f"sum by (application, deployment) (ray_serve_deployment_replica_healthy{{{at}}})"),
        ("Queued requests", f"sum by (application, deployment) (ray_serve_deployment_queued_queries{{{at}}})"),
        ("GPU utilisation (%)", f"avg by (pod) (ray_node_gpus_utilization{{{at}}})"),
        ("GPU memory used (MiB)", f"sum by (pod) (ray_node_gram_used{{{at}}})"),
    ]


def _chart(title: str, query: str) -> dict:
    return {"title": title, "xyChart": {"dataSets": [{"timeSeriesQuery": {"prometheusQuery": query}}]}}


def _costs(capacity: TeamCapacity) -> dict:
    """The capacity report's GPU costs, per workload, as a text tile (they are plan-time figures)."""
    lines = ["| workload | GPUs $/h (at min, at most) | rollout surge $/h |", "|---|---|---|"]
    for w in capacity.workloads:
        cost = w.gpu_cost_per_hour
        span = "unknown" if cost is None else f"{cost.min:,.2f} - {cost.max:,.2f}"
        surge = (
            ""
            if w.rollout is None or w.rollout.surge_cost_per_hour is None
            else f"{w.rollout.surge_cost_per_hour:,.2f}"
        )
        lines.append(f"| {w.name} | {span} | {surge} |")
    lines.append(f"\nQuota: {capacity.quota_gpus} GPUs. {capacity.estimate}")
    return {
        "title": "GPU cost per hour (plan-time estimate)",
        "text": {"content": "\n".join(lines), "format": "MARKDOWN"},
    }


def layout(title: str, namespace: str, cluster: str, capacity: TeamCapacity) -> dict:
    widgets = [_chart(t, q) for t, q in panels(namespace, cluster)] + [_costs(capacity)]
    tiles = [
        {"xPos": (i % 2) * WIDTH, "yPos": (i // 2) * HEIGHT, "width": WIDTH, "height": HEIGHT, "widget": widget}
        for i, widget in enumerate(widgets)
    ]
    return {"displayName": title, "mosaicLayout": {"columns": COLUMNS, "tiles": tiles}}


class TeamDashboard(pulumi.ComponentResource):
    def __init__(
        self,
        team: str,
        namespace: str,
        cluster: str,
        project: str,
        capacity: TeamCapacity,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:team:TeamDashboard", f"{team}-dashboard", None, opts)
        self.dashboard = gcp.monitoring.Dashboard(
            f"{team}-dashboard",
            dashboard_json=json.dumps(
                layout(f"rayplane: {team} ({cluster})", namespace, cluster, capacity), sort_keys=True
            ),
            project=project,  # the cluster's, whose metrics scope holds its Managed Prometheus series
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
