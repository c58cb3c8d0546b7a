"""Load and faults on a local Ray, loopback only, sized to stay in the suite's budget: many
requests at concurrency 32, oversize requests and a SIGKILLed replica while under load.
Latencies are compared within one test (a ratio), never to a fixed time."""

import asyncio
import os
import signal
import time

import httpx
import pytest

from benchmarks.common import closed_loop, stats, wait_until

CONCURRENCY = 32
APP = "loadembed"
WORDS = ["ray", "serve", "gpu", "kubernetes", "replicas", "batch", "stream", "vectors"]


def text(i: int) -> str:
    """A short text, different for each request."""
    return f"{' '.join(WORDS[i % len(WORDS) :])} {i}"


async def load(url: str, requests: int, body=lambda i: {"input": text(i)}, during=None) -> tuple[list, float]:
    """`requests` POSTs at concurrency 32: [(status, seconds)] and the wall time. `during(client)`
    runs beside them (oversize requests, a kill) and must end before the load does."""
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=CONCURRENCY + 4)) as client:

        async def call(i: int) -> tuple[int, float]:
            started = time.perf_counter()
            try:
                status = (await client.post(url, json=body(i))).status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            return status, time.perf_counter() - started

        aside = asyncio.ensure_future(during(client)) if during else None
        results, wall = await closed_loop(call, requests, CONCURRENCY)
        if aside:
            await aside
    return results, wall


def summary(results: list[tuple[int, float]], wall: float) -> dict:
    ok = [seconds for status, seconds in results if status == 200]
    failed = [status for status, _ in results if status != 200]
    latency = stats(ok)
    return {
        "requests": len(results),
        "ok": len(ok),
        "failed": len(failed),
        "statuses": sorted(set(failed)),
        "p50_s": round(latency["p50"], 4),
        "p99_s": round(latency["p99"], 4),
        "per_s": round(len(results) / wall, 1),
    }


@pytest.fixture(scope="module")
def embeddings(serve_url):
    """Two model replicas (one can die) behind the front, with the default (shared-service) limits."""
    from ray import serve

    from workloads.serving.embeddings import build_app

    app = build_app({"profile": "cpu", "autoscaling": {"min_replicas": 2, "max_replicas": 2}})
    serve.run(app, name=APP, route_prefix=f"/{APP}")
    yield f"{serve_url}/{APP}/v1/embeddings"
    serve.delete(APP)


def test_embeddings_answer_1000_requests_at_concurrency_32_and_oversize_ones_do_not_slow_them(embeddings, figures):
    asyncio.run(load(embeddings, 64))  # warm
    calm = summary(*asyncio.run(load(embeddings, 1000)))
    oversize = {"input": ["x" * 8192] * 640}  # 5 MB: refused by its length before it is read
    refused = []

    async def abuse(client: httpx.AsyncClient) -> None:
        for _ in range(20):
            refused.append((await client.post(embeddings, json=oversize)).status_code)

    abused = summary(*asyncio.run(load(embeddings, 1000, during=abuse)))
    figures["embeddings_load"] = {"calm": calm, "with_oversize": abused, "oversize_statuses": sorted(set(refused))}
    assert calm["failed"] == abused["failed"] == 0, figures["embeddings_load"]
    assert refused == [413] * 20
    assert abused["p99_s"] <= 2 * calm["p99_s"], figures["embeddings_load"]


def replicas(app: str, deployment: str, ask=lambda _: os.getpid()) -> dict[str, int]:
    """A Serve deployment's live replicas: {actor name: `ask` run in its process, by default its PID}
    (named actors in Serve's namespace)."""
    import ray

    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
    found = {}
    for name in names:
        try:
            found[name] = ray.get(ray.get_actor(name, namespace="serve").__ray_call__.remote(ask))
        except (ValueError, ray.exceptions.RayActorError):  # gone, or going, since it was listed
            continue
    return found


def running_replicas(app: str, deployment: str) -> int:
    from ray import serve

    states = serve.status().applications[app].deployments[deployment].replica_states
    return states.get("RUNNING", 0)


def test_a_replica_killed_under_load_is_replaced(embeddings, figures):
    before = replicas(APP, "Embedder")
    assert len(before) == running_replicas(APP, "Embedder") == 2
    victim, pid = next(iter(before.items()))
    recovery = {}

    def replaced() -> bool:  # a new replica, RUNNING, in the victim's place
        now = replicas(APP, "Embedder")
        return victim not in now and len(now.keys() - before.keys()) == 1 and running_replicas(APP, "Embedder") == 2

    async def kill(client: httpx.AsyncClient) -> None:
        await asyncio.sleep(1)  # the load is running by then
        os.kill(pid, signal.SIGKILL)
        recovery["s"] = await asyncio.to_thread(wait_until, replaced, 120, "a replacement replica")

    under_kill = summary(*asyncio.run(load(embeddings, 1000, during=kill)))
    after = summary(*asyncio.run(load(embeddings, 200)))
    figures["replica_kill"] = {"under_kill": under_kill, "recovered_s": round(recovery["s"], 1), "after": after}
    assert under_kill["failed"] == after["failed"] == 0, figures["replica_kill"]


def test_the_model_replicas_together_run_no_more_torch_threads_than_the_machine_has_cores(embeddings):
    """Serve scales the model by replicas: were each replica to run torch on every core, two of them
    would overrun the cores (texts/s at concurrency 32 fell to half: benchmarks/README.md)."""
    threads = replicas(APP, "Embedder", ask=lambda _: __import__("torch").get_num_threads())
    assert len(threads) == 2  # each runs one thread at least: two in all on a 1-core machine
    assert sum(threads.values()) <= max(len(os.sched_getaffinity(0)), len(threads)), threads


def test_llm_answers_200_chats_at_concurrency_32(llm, figures):
    url = f"{llm.base_url}chat/completions"

    def chat(i: int) -> dict:
        question = [{"role": "user", "content": f"Tell me about {text(i)}"}]
        return {"model": "tiny", "messages": question, "max_tokens": 8}

    results, wall = asyncio.run(load(url, 200, body=chat))
    figures["llm_load"] = summary(results, wall)
    assert figures["llm_load"]["failed"] == 0, figures["llm_load"]
