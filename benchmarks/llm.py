"""LLM serving: our chat service exactly as a team stack deploys it (the stack's Serve app and args
through tools.local) against vLLM's own OpenAI server and `vllm.LLM` offline: the same model, the
same prompts, the same engine limits (max_model_len, max_num_seqs). Streaming completions of
max_tokens with ignore_eos, at each concurrency of the sweep, in interleaved rounds: output tokens/s,
time to first token (unloaded: concurrency 1; under load: the highest), inter-token latency, and
start-up time (launch to healthy).

    python -m benchmarks.llm [--stack search-dev] [--service chat] [--model PATH] [--smoke]

On a laptop the service runs as `make local` runs it (tiny model, CPU profile). `--model PATH` swaps
in real weights; on a machine with a GPU the service runs in the cluster profile (its stack's engine
settings, GPUs from Ray) and vLLM's server on the same GPU model, so the script runs unchanged there.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from benchmarks.common import (
    closed_loop,
    interleave,
    median_of,
    parser,
    ratio,
    report,
    run_script,
    stats,
    wait_until,
)
from components.payload import write_archive
from components.plan import PayloadRun
from tools import local
from workloads.config import LLMAppArgs
from workloads.local import ENV, free_port

WORDS = [
    "ray",
    "serve",
    "runs",
    "models",
    "on",
    "kubernetes",
    "with",
    "gpus",
    "and",
    "scales",
    "replicas",
    "when",
    "requests",
    "queue",
    "up",
]


def prompts(n: int) -> list[str]:
    """Distinct prompts of about twenty tokens (no prefix shared by all of them)."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(16)) + f" {i}" for i in range(n)]


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def service_run(stack: str, service: str, model: str | None) -> PayloadRun:
    """The service as the benchmark runs it: its laptop form, or its cluster args on whatever GPU
    this machine has; one model."""
    [run] = local.laptop(stack, "services", service)
    if not isinstance(run.args, LLMAppArgs):
        raise SystemExit(f"{stack}/{service} is a {run.spec.payload} service, not an LLM one")
    # On a GPU: the team's own (cluster) args, on whatever GPU this machine has.
    args = run.spec.args.updated(accelerator_type=None) if has_gpu() else run.args
    if model:
        args = args.updated(models=[{**m.model_dump(), "model_source": model} for m in args.models[:1]])
    return replace(run, args=args.updated(models=args.models[:1]))


class OurService:
    def __init__(self, stack: str, service: str, model: str | None):
        self.service = service_run(stack, service, model)
        self.args = self.service.args
        self.model = self.args.models[0]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{self.service.name}/v1"

    def start(self) -> float:
        started = time.monotonic()
        working_dir = write_archive()
        local.start_ray(working_dir, self.args.serve_env())
        local.deploy([local.local_application(self.service, working_dir)], self.port)
        return time.monotonic() - started

    def stop(self) -> None:
        local.stop()


class VllmServer:
    """vLLM's OpenAI server on the same weights and engine limits, in its own process."""

    def __init__(self, model_source: str, model_id: str, max_model_len: int | None, max_num_seqs: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_source]
        self.command += ["--served-model-name", model_id, "--port", str(self.port), "--host", "127.0.0.1"]
        self.command += ["--max-num-seqs", str(max_num_seqs)]
        if max_model_len:
            self.command += ["--max-model-len", str(max_model_len)]
        self.process: subprocess.Popen | None = None

    def launch(self, log: Path) -> None:
        self.launched, self.log = time.monotonic(), log
        self.process = subprocess.Popen(
            self.command, env={**os.environ, **ENV}, stdout=log.open("w"), stderr=subprocess.STDOUT
        )

    def wait(self) -> float:
        """Seconds from launch to healthy."""

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM's server exited ({self.process.returncode}); see {self.log}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 600, "vLLM's server")
        return time.monotonic() - self.launched

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def completion(client: httpx.AsyncClient, url: str, model: str, prompt: str, max_tokens: int) -> dict:
    """One streamed completion: time to first token, total time, output tokens."""
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
    first, tokens = None, 0
    async with client.stream("POST", f"{url}/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any(c.get("text") for c in chunk.get("choices", [])):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    total = time.perf_counter() - started
    itl = (total - first) / (tokens - 1) if first is not None and tokens > 1 else None
    return {"ttft": first, "latency": total, "tokens": tokens, "itl": itl}


def sweep_point(url: str, model: str, texts: list[str], concurrency: int, max_tokens: int) -> dict:
    async def run():
        limits = httpx.Limits(max_connections=concurrency + 4)
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            results, wall = await closed_loop(
                lambda i: completion(client, url, model, texts[i % len(texts)], max_tokens), len(texts), concurrency
            )
        return {
            "tokens_per_s": sum(r["tokens"] for r in results) / wall,
            "ttft": stats([r["ttft"] for r in results if r["ttft"] is not None]),
            "itl": stats([r["itl"] for r in results if r["itl"] is not None]),
        }

    return asyncio.run(run())


OFFLINE = """
import json, sys, time
from vllm import LLM, SamplingParams
spec = json.loads(sys.argv[1])
llm = LLM(spec["model"], max_model_len=spec["max_model_len"], max_num_seqs=spec["max_num_seqs"])
params = SamplingParams(max_tokens=spec["max_tokens"], ignore_eos=True, temperature=0)
llm.generate(spec["prompts"][:2], params)  # warm-up
for _ in range(spec["rounds"]):
    started = time.perf_counter()
    outputs = llm.generate(spec["prompts"], params, use_tqdm=False)
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    print("RESULT", json.dumps({"tokens_per_s": tokens / (time.perf_counter() - started)}), flush=True)
"""


def offline(spec: dict, log: Path) -> list[dict]:
    """vllm.LLM.generate over the same prompts, in its own process."""
    return run_script(OFFLINE, spec, ENV, log, "vllm.LLM offline")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--stack", default="search-dev")
    p.add_argument("--service", default="chat")
    p.add_argument("--model", help="weights to serve instead of the local profile's tiny model")
    p.add_argument("--concurrency", type=int, nargs="+", help="the sweep (default: 1 8 64)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per point (default: 3)")
    args = p.parse_args(argv)
    os.environ.update(ENV)
    sweep, requests, rounds, max_tokens = ([1, 4], 4, 1, 8) if args.smoke else ([1, 8, 64], 256, 3, 32)
    sweep, rounds = args.concurrency or sweep, args.rounds or rounds
    requests = max(requests, 2 * max(sweep))
    ours = OurService(args.stack, args.service, args.model)
    model = ours.model
    theirs = VllmServer(model.model_source, model.model_id, model.max_model_len, model.max_num_seqs)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "llm-vllm-server.log"
    try:
        if args.smoke:  # both start at once: quicker, and the start-up ratio means nothing at this size
            theirs.launch(log)
        startup = {"ours": ours.start()}
        if not args.smoke:
            theirs.launch(log)
        startup["vllm"] = theirs.wait()
        texts = prompts(requests)
        points = {}
        for concurrency in sweep:
            n = max(concurrency * 4, 16) if not args.smoke else requests
            systems = {
                name: (lambda url=url, c=concurrency, n=n: sweep_point(url, model.model_id, texts[:n], c, max_tokens))
                for name, url in (("ours", ours.url), ("vllm", theirs.url))
            }
            points[concurrency] = interleave(rounds, systems)
    finally:
        theirs.stop()
        ours.stop()
    spec = {"model": model.model_source, "max_model_len": model.max_model_len, "max_num_seqs": model.max_num_seqs}
    spec |= {"max_tokens": max_tokens, "prompts": prompts(requests)}
    offline_rounds = offline(spec | {"rounds": rounds}, args.out / "llm-offline.log")

    figures = {}
    for concurrency, results in points.items():
        for name, measured in results.items():
            figures[f"{name}_tokens_per_s_c{concurrency}"] = median_of(measured, "tokens_per_s")
            figures[f"{name}_ttft_p50_c{concurrency}"] = median_of([m["ttft"] for m in measured], "p50")
            figures[f"{name}_ttft_p99_c{concurrency}"] = median_of([m["ttft"] for m in measured], "p99")
            figures[f"{name}_itl_p50_c{concurrency}"] = median_of([m["itl"] for m in measured], "p50")
    low, high = min(sweep), max(sweep)
    ratios = {
        f"tokens_per_s_vs_vllm_c{c}": ratio(figures[f"ours_tokens_per_s_c{c}"], figures[f"vllm_tokens_per_s_c{c}"])
        for c in sweep
    }
    ratios |= {
        "ttft_unloaded_vs_vllm": ratio(figures[f"ours_ttft_p50_c{low}"], figures[f"vllm_ttft_p50_c{low}"]),
        "ttft_under_load_vs_vllm": ratio(figures[f"ours_ttft_p50_c{high}"], figures[f"vllm_ttft_p50_c{high}"]),
        "itl_under_load_vs_vllm": ratio(figures[f"ours_itl_p50_c{high}"], figures[f"vllm_itl_p50_c{high}"]),
        "tokens_per_s_vs_offline": ratio(
            figures[f"ours_tokens_per_s_c{high}"], median_of(offline_rounds, "tokens_per_s")
        ),
        "startup_vs_vllm": ratio(startup["ours"], startup["vllm"]),
    }
    result = {
        "ratios": ratios,
        "figures": figures | {"offline_tokens_per_s": median_of(offline_rounds, "tokens_per_s")},
        "startup_s": startup,
        "setup": {"sweep": sweep, "rounds": rounds, "max_tokens": max_tokens, "model": model.model_dump()},
    }
    summary = ", ".join(f"{k} {v}" for k, v in ratios.items())
    report("llm", result, args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
