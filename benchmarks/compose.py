"""Composition: our composed app (ingress -> preprocess -> embed -> postprocess, each its own
deployment) against the same stages as plain functions in one deployment, and against a plain
Serve chain of no-op deployments of the same shape: latency p50/p99 per request and per hop,
sequential requests, interleaved rounds.

    python -m benchmarks.compose [--smoke]
"""

import os
import sys
import time

import httpx

from benchmarks.common import interleave, median_of, parser, ratio, report, stats
from workloads.config import ComposeAppArgs
from workloads.local import ENV, free_port

HOPS = 3  # ingress -> preprocess -> embed -> postprocess
TEXT = "Training and serving machine learning models on GPUs with Ray on Kubernetes"


def variants(args: dict) -> dict:
    """The three apps, by name (Ray Serve is imported here: after the environment is set)."""
    from ray import serve
    from starlette.requests import Request

    from workloads.serving.compose import Embed, Postprocess, Preprocess, build_app

    @serve.deployment
    class OneDeployment:
        """The composed app's stages as plain calls in one replica."""

        def __init__(self, args: dict):
            config = ComposeAppArgs.model_validate(args)
            self.preprocess = Preprocess.func_or_class(config.max_input_chars)
            self.embed = Embed.func_or_class("cpu", config.labels)
            self.postprocess = Postprocess.func_or_class()

        async def __call__(self, request: Request) -> dict:
            return self.postprocess(self.embed(self.preprocess((await request.json())["text"])))

    @serve.deployment
    class Noop:
        def __call__(self, item):
            return item

    @serve.deployment
    class NoopChain:
        def __init__(self, first, second, third):
            self.stages = (first, second, third)

        async def __call__(self, request: Request) -> dict:
            item = await request.json()
            first, second, third = self.stages
            return await third.remote(second.remote(first.remote(item)))

    light = {"ray_actor_options": {"num_cpus": 0}}
    noops = [Noop.options(name=f"Noop{i}", **light).bind() for i in range(HOPS)]
    return {
        "ours": build_app(args),
        "one": OneDeployment.options(**light).bind(args),
        "noop": NoopChain.options(**light).bind(*noops),
    }


def latencies(url: str, n: int) -> dict:
    samples = []
    with httpx.Client(timeout=60) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.post(url, json={"text": TEXT}).raise_for_status()
            samples.append(time.perf_counter() - started)
    return stats(samples)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    options = p.parse_args(argv)
    args = ComposeAppArgs(profile="cpu")
    os.environ.update({**ENV, **args.serve_env()})  # the composed app's Ray environment, as deployed
    n, rounds = (5, 1) if options.smoke else (100, 3)
    import ray
    from ray import serve

    ray.init(runtime_env={"env_vars": ENV}, include_dashboard=False, log_to_driver=False, configure_logging=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        for name, app in variants(args.model_dump()).items():
            serve.run(app, name=name, route_prefix=f"/{name}")
        urls = {name: f"http://127.0.0.1:{port}/{name}" for name in ("ours", "one", "noop")}
        for url in urls.values():
            latencies(url, 3)  # warm-up
        measured = interleave(rounds, {name: (lambda url=url: latencies(url, n)) for name, url in urls.items()})
    finally:
        ray.shutdown()  # Serve with it
    figures = {f"{name}_{q}_s": median_of(measured[name], q) for name in measured for q in ("p50", "p99")}
    for q in ("p50", "p99"):
        figures[f"ours_per_hop_{q}_s"] = (figures[f"ours_{q}_s"] - figures[f"one_{q}_s"]) / HOPS
        figures[f"noop_per_hop_{q}_s"] = figures[f"noop_{q}_s"] / (HOPS + 1)  # the ingress is a hop too
    ratios = {
        "p50_vs_one_deployment": ratio(figures["ours_p50_s"], figures["one_p50_s"]),
        "p99_vs_one_deployment": ratio(figures["ours_p99_s"], figures["one_p99_s"]),
        "per_hop_p50_vs_noop_hop": ratio(figures["ours_per_hop_p50_s"], figures["noop_per_hop_p50_s"]),
    }
    result = {"ratios": ratios, "figures": figures, "setup": {"requests": n, "rounds": rounds, "hops": HOPS}}
    report("compose", result, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
