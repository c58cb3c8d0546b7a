"""Embeddings: our embeddings service as a team stack deploys it (tools.local) against the raw model
in one process (sentence-transformers' batched `encode`), on the same texts, each alone on the
machine (common.py `alone`: the raw model runs with no Ray started): texts/s and latency at
concurrency 1 and 32, in interleaved rounds: one text per request, as search clients send them, and
asking for base64 vectors, as the `openai` client does by default.

The load generator (aiohttp on one thread of this process) shares the machine with the service and
not with the raw model: its CPU is measured (`load_generator_cores`) and reported beside the ratios.

    python -m benchmarks.embeddings [--stack search-dev] [--service embed] [--smoke]
"""

import asyncio
import gc
import math
import os
import sys
import time

import aiohttp

from benchmarks.common import alone, closed_loop, median_of, parser, ratio, report, stats, wait_until
from components.payload import write_archive
from tools import local
from workloads.local import ENV, free_port
from workloads.models import load_minilm

WORDS = [
    "clusters",
    "nodes",
    "networks",
    "models",
    "replicas",
    "queues",
    "tokens",
    "batches",
    "gpus",
    "memory",
    "latency",
    "throughput",
]
SCALED_WITHIN_S = 180  # Serve's upscale delay (30 s) and a replica's start, with room


def texts(n: int) -> list[str]:
    """Distinct sentences of about 40 words."""
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(40)) + f" {i}" for i in range(n)]


def generate(url: str, sample: list[str], concurrency: int) -> dict:
    """One text per request, `concurrency` in flight: texts/s, latency, and the CPU the generator's
    thread took meanwhile, in cores."""

    async def run():
        connector = aiohttp.TCPConnector(limit=concurrency + 4)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(300)) as session:

            async def call(i: int) -> float:
                started = time.perf_counter()
                async with session.post(url, json={"input": [sample[i]], "encoding_format": "base64"}) as reply:
                    reply.raise_for_status()
                    await reply.read()
                return time.perf_counter() - started

            return await closed_loop(call, len(sample), concurrency)

    cpu = time.thread_time()  # asyncio.run runs the loop, and so every request, on this thread
    latencies, wall = asyncio.run(run())
    generator = (time.thread_time() - cpu) / wall
    return {"texts_per_s": len(sample) / wall, "latency": stats(latencies), "generator_cores": generator}


class RawModel:
    """The model in this process, with nothing else running."""

    def __init__(self, sample: list[str], batch_size: int):
        self.sample, self.batch_size = sample, batch_size

    def start(self) -> float:
        started = time.monotonic()
        self.model = load_minilm()
        self.model.encode(self.sample[: self.batch_size])
        return time.monotonic() - started

    def measure(self) -> dict:
        started = time.perf_counter()
        self.model.encode(self.sample, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        batched = len(self.sample) / (time.perf_counter() - started)
        latencies = []
        for text in self.sample[: max(8, len(self.sample) // 16)]:
            started = time.perf_counter()
            self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
            latencies.append(time.perf_counter() - started)
        return {"texts_per_s": batched, "single": stats(latencies)}

    def stop(self) -> None:
        self.model = None
        gc.collect()


class Service:
    """The stack's service on a local Ray (without the dashboard, as benchmarks/systems.py runs
    ours), warmed up: loaded until Serve has scaled it to the replicas that load asks for."""

    def __init__(self, stack: str, service: str, sample: list[str], concurrency: int):
        [self.run] = local.laptop(stack, "services", service)
        self.sample, self.concurrency = sample, concurrency
        scaling = self.run.args.autoscaling
        self.replicas = min(scaling.max_replicas, math.ceil(concurrency / scaling.target_ongoing_requests))

    def start(self) -> float:
        from ray import serve

        started = time.monotonic()
        port, working_dir = free_port(), write_archive()
        local.start_ray(working_dir, self.run.args.serve_env(), dashboard=False)
        local.deploy([local.local_application(self.run, working_dir)], port)
        self.url = f"http://127.0.0.1:{port}/{self.run.name}/v1/embeddings"
        startup = time.monotonic() - started

        def scaled() -> bool:
            generate(self.url, self.sample[: 4 * self.concurrency], self.concurrency)
            states = serve.status().applications[self.run.name].deployments["Embedder"].replica_states
            return states.get("RUNNING", 0) >= self.replicas

        wait_until(scaled, SCALED_WITHIN_S, f"{self.replicas} Embedder replicas under load")
        return startup

    def measure(self) -> dict:
        single = generate(self.url, self.sample[: max(8, len(self.sample) // 8)], 1)
        return {"single": single["latency"], "loaded": generate(self.url, self.sample, self.concurrency)}

    def stop(self) -> None:
        local.stop()


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--stack", default="search-dev")
    p.add_argument("--service", default="embed")
    args = p.parse_args(argv)
    os.environ.update(ENV)
    n, rounds, concurrency = (16, 1, 4) if args.smoke else (512, 3, 32)
    sample = texts(n)
    service = Service(args.stack, args.service, sample, concurrency)
    raw = RawModel(sample, service.run.args.max_batch_size)
    measured = alone(rounds, {"raw": raw, "service": service}, lambda system: system.measure())
    loaded = [m["loaded"] for m in measured["service"]]
    p50 = lambda name: median_of([m["single"] for m in measured[name]], "p50")  # noqa: E731
    loaded_p99 = median_of([m["latency"] for m in loaded], "p99")
    figures = {
        "raw_batched_texts_per_s": median_of(measured["raw"], "texts_per_s"),
        "raw_single_latency_p50_s": p50("raw"),
        "service_c1_latency_p50_s": p50("service"),
        "service_loaded_texts_per_s": median_of(loaded, "texts_per_s"),
        "service_loaded_latency_p50_s": median_of([m["latency"] for m in loaded], "p50"),
        "service_loaded_latency_p99_s": loaded_p99,
        "load_generator_cores": median_of(loaded, "generator_cores"),
        "machine_cores": len(os.sched_getaffinity(0)),
    }
    ratios = {
        f"texts_per_s_c{concurrency}_vs_raw_batched": ratio(
            figures["service_loaded_texts_per_s"], figures["raw_batched_texts_per_s"]
        ),
        f"p99_c{concurrency}_vs_single_request": ratio(loaded_p99, figures["service_c1_latency_p50_s"]),
        # Little's law: at `concurrency` requests in flight, even the raw model's batched rate puts
        # each request behind concurrency / rate seconds of work; a single request never waits.
        f"p99_c{concurrency}_vs_batching_floor": ratio(loaded_p99, concurrency / figures["raw_batched_texts_per_s"]),
        "single_request_vs_raw": ratio(figures["service_c1_latency_p50_s"], figures["raw_single_latency_p50_s"]),
    }
    result = {"ratios": ratios, "figures": figures, "setup": {"texts": n, "rounds": rounds, "concurrency": concurrency}}
    summary = ", ".join(f"{k} {v}" for k, v in ratios.items())
    generator = figures["load_generator_cores"]
    summary += f"; the load generator took {generator:.2f} of {figures['machine_cores']} cores"
    report("embeddings", result, args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
