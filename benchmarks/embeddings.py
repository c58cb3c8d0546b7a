"""Embeddings: our embeddings service as a team stack deploys it (tools.local) against the raw model
in one process (sentence-transformers' batched `encode`), on the same texts: texts/s and latency at
concurrency 1 and 32 (one text per request, as search clients send them), in interleaved rounds.

    python -m benchmarks.embeddings [--stack search-dev] [--service embed] [--smoke]
"""

import asyncio
import os
import sys
import time

import httpx

from benchmarks.common import closed_loop, interleave, median_of, parser, ratio, report, stats
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


def texts(n: int) -> list[str]:
    """Distinct sentences of about 40 words."""
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(40)) + f" {i}" for i in range(n)]


def raw_batched(model, sample: list[str], batch_size: int) -> dict:
    started = time.perf_counter()
    model.encode(sample, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return {"texts_per_s": len(sample) / (time.perf_counter() - started)}


def raw_single(model, sample: list[str]) -> dict:
    latencies = []
    for text in sample:
        started = time.perf_counter()
        model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        latencies.append(time.perf_counter() - started)
    return {"latency": stats(latencies)}


def service(url: str, sample: list[str], concurrency: int) -> dict:
    async def run():
        async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency + 4)) as client:

            async def call(i: int) -> float:
                started = time.perf_counter()
                reply = await client.post(url, json={"input": [sample[i]]})
                reply.raise_for_status()
                return time.perf_counter() - started

            latencies, wall = await closed_loop(call, len(sample), concurrency)
        return {"texts_per_s": len(sample) / wall, "latency": stats(latencies)}

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--stack", default="search-dev")
    p.add_argument("--service", default="embed")
    args = p.parse_args(argv)
    os.environ.update(ENV)
    n, rounds, concurrency = (16, 1, 4) if args.smoke else (512, 3, 32)
    [svc] = local.laptop(args.stack, "services", args.service)
    config = svc.args
    port = free_port()
    working_dir = write_archive()
    local.start_ray(working_dir, config.serve_env(), dashboard=False)  # (benchmarks/systems.py: OurService)
    try:
        local.deploy([local.local_application(svc, working_dir)], port)
        url = f"http://127.0.0.1:{port}/{svc.name}/v1/embeddings"
        model = load_minilm()
        sample = texts(n)
        service(url, sample[:8], concurrency)  # warm-up: replicas up, batches compiled
        measured = interleave(
            rounds,
            {
                "raw_batched": lambda: raw_batched(model, sample, config.max_batch_size),
                "raw_single": lambda: raw_single(model, sample[: max(8, n // 16)]),
                "service_c1": lambda: service(url, sample[: max(8, n // 8)], 1),
                "service_loaded": lambda: service(url, sample, concurrency),
            },
        )
    finally:
        local.stop()
    p50 = lambda name: median_of([m["latency"] for m in measured[name]], "p50")  # noqa: E731
    loaded_p99 = median_of([m["latency"] for m in measured["service_loaded"]], "p99")
    figures = {
        "raw_batched_texts_per_s": median_of(measured["raw_batched"], "texts_per_s"),
        "raw_single_latency_p50_s": p50("raw_single"),
        "service_c1_latency_p50_s": p50("service_c1"),
        "service_loaded_texts_per_s": median_of(measured["service_loaded"], "texts_per_s"),
        "service_loaded_latency_p50_s": p50("service_loaded"),
        "service_loaded_latency_p99_s": loaded_p99,
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
    report("embeddings", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
