"""No payload blocks its replica's event loop. With RAY_SERVE_THROUGHPUT_OPTIMIZED (workloads/config.py
SERVE_ENV) Ray 2.60 runs user code on the replica's main loop (serve/_private/constants.py:1108-1112:
RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD defaults to 0 there), so blocking work in an `async def`
stalls request intake, health checks and metrics. Sync methods are safe: Serve runs them in a thread
pool (RAY_SERVE_RUN_SYNC_IN_THREADPOOL, on by default; replica.py `call_user_method`). Each async
method that does blocking work is run here, undecorated, with a slow stand-in, while a ticker on
the same loop must keep ticking."""

import asyncio
import time

import numpy as np
import pytest
from pyarrow import fs

from workloads.serving.embeddings import Embedder
from workloads.serving.multiplex import ModelNotFound, multiplexed_classifiers

SLOW_S = 0.5


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


class SlowModel:
    def encode(self, texts, **_):
        time.sleep(SLOW_S)
        return np.zeros((len(texts), 4))

    def tokenizer(self, texts):
        return {"input_ids": [[0] for _ in texts]}


class SlowStore:
    def get_file_info(self, path):
        time.sleep(SLOW_S)
        return fs.FileInfo(path, fs.FileType.NotFound)


def test_the_embedding_model_runs_off_the_event_loop():
    embedder = object.__new__(Embedder.func_or_class)
    embedder.model = SlowModel()
    batch = Embedder.func_or_class.embed.__wrapped__(embedder, ["a", "b"])  # the method under @serve.batch
    assert asyncio.run(_ticks_during(batch)) >= SLOW_S / 0.01 / 2


def test_a_multiplexed_model_loads_off_the_event_loop():
    cls = multiplexed_classifiers(2).func_or_class
    classifiers = object.__new__(cls)
    classifiers.filesystem, classifiers.root = SlowStore(), "store"
    load = cls.get_model.__wrapped__(classifiers, "m1")  # the method under @serve.multiplexed

    async def loading():
        with pytest.raises(ModelNotFound):
            await load

    assert asyncio.run(_ticks_during(loading())) >= SLOW_S / 0.01 / 2
