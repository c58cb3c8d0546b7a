"""The LLM systems a benchmark compares, each started alone on the machine, loaded, and stopped
before the next starts (benchmarks/common.py `alone`).

- `OurService`: a stack's LLM service as `make local` runs it (its Serve app and args through
  tools.local, the Ray environment its RayService gets), or in the cluster profile on a GPU; without
  Ray's dashboard, which the cluster runs on the head pod, away from the engines.
- `VllmServer`: vLLM's own OpenAI server on the same weights and engine limits.
- `VllmRouter`: vLLM's router (the `vllm-router` package) in front of vLLM servers.

Each reports its prefix cache's hits and queries (tokens) from vLLM's own metrics.
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from benchmarks.common import wait_until
from components.payload import write_archive
from components.plan import PayloadRun
from tools import local
from workloads.config import CPU_ENGINE, LLMAppArgs
from workloads.local import ENV, cores_of, free_port

STARTED_WITHIN_S = 600
HITS, QUERIES = "prefix_cache_hits", "prefix_cache_queries"  # vLLM's counters, in prompt tokens


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def service_run(stack: str, service: str, model: str | None, **changes) -> PayloadRun:
    """The service as a benchmark runs it: its laptop form, or its cluster args on whatever GPU this
    machine has; its first model, with `changes` to that model's args."""
    [run] = local.laptop(stack, "services", service)
    if not isinstance(run.args, LLMAppArgs):
        raise SystemExit(f"{stack}/{service} is a {run.spec.payload} service, not an LLM one")
    args = run.spec.args.updated(accelerator_type=None) if has_gpu() else run.args
    first = args.models[0].model_dump() | changes | ({"model_source": model} if model else {})
    return replace(run, args=args.updated(models=[first]))


def prefix_cache(metrics_text: str) -> dict[str, float]:
    """The prefix cache counters in a Prometheus text page, summed over engines (a Ray node
    exports every replica's, as ray_vllm_…)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {HITS: 0.0, QUERIES: 0.0}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            for key in totals:
                if sample.name.endswith(f"{key}_total"):
                    totals[key] += sample.value
    return totals


class OurService:
    def __init__(self, run: PayloadRun):
        self.service, self.args = run, run.args
        self.model = self.args.models[0]

    def start(self) -> float:
        """Seconds from launch to healthy."""
        started = time.monotonic()
        self.port, self.metrics_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/{self.service.name}/v1"
        self.environ = dict(os.environ)  # start_ray sets the variant's Ray environment here: put back at stop
        haproxy = {"RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()), "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port())}
        working_dir = write_archive()
        env = {**self.args.serve_env(), **haproxy}
        local.start_ray(working_dir, env, metrics_port=self.metrics_port, dashboard=False)
        local.deploy([local.local_application(self.service, working_dir)], self.port)
        return time.monotonic() - started

    def cache(self) -> dict[str, float]:
        return prefix_cache(httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text)

    def stop(self) -> None:
        local.stop()
        os.environ.clear()
        os.environ.update(self.environ)


def engine_settings(service: OurService) -> dict:
    """The engine settings the service's profile gives its engine beyond its model's limits: a
    reference vLLM runs with them too (on a CPU eager, or it alone would trace with torch.compile)."""
    return CPU_ENGINE if service.args.profile == "cpu" else {}


class VllmServer:
    """vLLM's OpenAI server on the same weights and engine limits, in its own process."""

    def __init__(self, service: OurService, log: Path, rank: int = 0, sharers: int = 1):
        """The same weights, engine limits and (on a CPU) dtype as `service`'s model; the `rank`th
        of `sharers` servers on this machine binds the same cores as our replica of that rank."""
        model, self.log = service.model, log
        cores = cores_of(rank, sharers)
        self.env = {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores))} if cores else {}
        self.command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model.model_source]
        self.command += ["--served-model-name", model.model_id, "--host", "127.0.0.1"]
        self.command += ["--max-num-seqs", str(model.max_num_seqs)]
        if model.max_model_len:
            self.command += ["--max-model-len", str(model.max_model_len)]
        for key, value in engine_settings(service).items():  # as flags: --enforce-eager, --dtype float32
            flag = "--" + key.replace("_", "-")
            self.command += [flag] if value is True else [flag, str(value)]
        self.process: subprocess.Popen | None = None

    def launch(self) -> None:
        self.port, self.launched = free_port(), time.monotonic()
        self.base, self.url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen(
            [*self.command, "--port", str(self.port)],
            env={**os.environ, **ENV, **self.env},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> float:
        """Seconds from launch to healthy."""
        wait_until(lambda: self._healthy(), STARTED_WITHIN_S, "vLLM's server")
        return time.monotonic() - self.launched

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"vLLM's server exited ({self.process.returncode}); see {self.log}")
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> float:
        self.launch()
        return self.wait()

    def cache(self) -> dict[str, float]:
        return prefix_cache(httpx.get(f"{self.base}/metrics", timeout=10).text)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class VllmRouter:
    """vLLM's router (`vllm-router`, Rust) with `policy` in front of vLLM servers: the reference
    for routing done by vLLM's own project."""

    def __init__(self, servers: list[VllmServer], policy: str, log: Path):
        self.servers, self.policy, self.log = servers, policy, log
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        started = time.monotonic()
        for server in self.servers:  # at once, as a deployment would start them
            server.launch()
        for server in self.servers:
            server.wait()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = ["vllm-router", "--host", "127.0.0.1", "--port", str(self.port), "--policy", self.policy]
        command += ["--worker-urls", *(server.base for server in self.servers)]
        executable = Path(sys.executable).with_name("vllm-router")
        self.process = subprocess.Popen(
            [str(executable), *command[1:]], stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm-router exited ({self.process.returncode}); see {self.log}")
            try:
                return httpx.get(f"{self.url}/models", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "vllm-router")
        return time.monotonic() - started

    def cache(self) -> dict[str, float]:
        counts = [server.cache() for server in self.servers]
        return {key: sum(c[key] for c in counts) for key in (HITS, QUERIES)}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        for server in self.servers:
            server.stop()


def router_installed() -> bool:
    return Path(sys.executable).with_name("vllm-router").exists()


async def completion(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> dict:
    """One streamed completion: time to first token, total time, prompt and output tokens, text."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first, usage, text = None, {}, []
    async with client.stream("POST", f"{url}/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            pieces = [c.get("text") for c in chunk.get("choices", []) if c.get("text")]
            if first is None and pieces:
                first = time.perf_counter() - started
            text += pieces
            usage = chunk.get("usage") or usage
    total = time.perf_counter() - started
    tokens = usage.get("completion_tokens", 0)
    itl = (total - first) / (tokens - 1) if first is not None and tokens > 1 else None
    return {
        "ttft": first,
        "latency": total,
        "tokens": tokens,
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "itl": itl,
        "text": "".join(text),
    }
