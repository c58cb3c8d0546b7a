"""No payload blocks its replica's event loop. With RAY_SERVE_THROUGHPUT_OPTIMIZED (workloads/config.py
SERVE_ENV) Ray 2.60 runs user code on the replica's main loop (serve/_private/constants.py:1108-1112:
RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD defaults to 0 there), so blocking work in an `async def`
stalls request intake, health checks and metrics. Sync methods are safe: Serve runs them in a thread
pool (RAY_SERVE_RUN_SYNC_IN_THREADPOOL, on by default; replica.py `call_user_method`).

An async method that blocks either runs its blocking work in a thread (the multiplexed store reads:
run here undecorated with a slow stand-in while a ticker on the same loop must keep ticking), or its
deployment runs user code on a loop of its own (OWN_LOOP: the embedding model, whose serve.batch
needs a loop that waits for the model): a real replica must then answer its health check while a
request blocks it."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import ray
from pyarrow import fs
from ray import serve

from workloads.config import OWN_LOOP, EmbeddingAppArgs
from workloads.serving.embeddings import build_app
from workloads.serving.multiplex import ModelNotFound, multiplexed_classifiers

SLOW_S = 0.5
BLOCK_S = 3.0


async def _ticks_during(work) -> int:
    """How often a 10 ms ticker ran on the loop while `work` ran."""
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await work
    finally:
        task.cancel()
    return ticks


class SlowStore:
    def get_file_info(self, path):
        time.sleep(SLOW_S)
        return fs.FileInfo(path, fs.FileType.NotFound)


@serve.deployment
class Blocking:
    async def __call__(self) -> str:
        time.sleep(BLOCK_S)  # a model call
        return "done"


async def _call(handle) -> str:
    return await asyncio.wait_for(handle.remote(), 4 * BLOCK_S)


@pytest.mark.parametrize("own_loop", [True, False])
def test_a_replica_whose_user_code_blocks_on_its_own_loop_still_answers_health_checks(serve_url, own_loop):
    """The other way round (own_loop False) shows what the test detects: the check waits for the call."""
    name = f"blocking-{own_loop}"
    options = EmbeddingAppArgs(profile="cpu").actor_options(blocking=own_loop)
    handle = serve.run(Blocking.options(ray_actor_options=options).bind(), name=name, route_prefix=None)
    try:
        [replica] = [
            ray.get_actor(actor["name"], namespace=actor["namespace"])
            for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["name"].startswith(f"SERVE_REPLICA::{name}#")
        ]
        with ThreadPoolExecutor(1) as caller:
            # the driver's handles route on the caller's event loop (throughput mode)
            call = caller.submit(asyncio.run, _call(handle))
            slowest = 0.0
            while not call.done():  # ends with the call (result's timeout)
                started = time.monotonic()
                ray.get(replica.check_health.remote(), timeout=4 * BLOCK_S)
                slowest = max(slowest, time.monotonic() - started)
            assert call.result() == "done"
    finally:
        serve.delete(name)
    assert slowest < BLOCK_S / 3 if own_loop else slowest > BLOCK_S / 3


def test_the_embedding_model_runs_on_a_loop_of_its_own():
    app = build_app(EmbeddingAppArgs(profile="cpu").model_dump())
    # Ray's Application has no public accessor for what it binds: the ingress's first argument.
    embedder = app._bound_deployment.init_args[0]._bound_deployment
    assert embedder.ray_actor_options["runtime_env"] == OWN_LOOP["runtime_env"]


def test_a_multiplexed_model_loads_off_the_event_loop():
    cls = multiplexed_classifiers(2).func_or_class
    classifiers = object.__new__(cls)
    classifiers.filesystem, classifiers.root = SlowStore(), "store"
    load = cls.get_model.__wrapped__(classifiers, "m1")  # the method under @serve.multiplexed

    async def loading():
        with pytest.raises(ModelNotFound):
            await load

    assert asyncio.run(_ticks_during(loading())) >= SLOW_S / 0.01 / 2
