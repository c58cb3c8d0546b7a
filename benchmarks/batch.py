"""Batch: our pipeline as a team stack's job runs it (the stack's job args with the local profile's
swaps, on generated JSON Lines) against the same stages materialized one after another: wall time
and peak object-store memory; and its embedding stage's rows/s (Ray Data's own per-operator figure)
against the raw model's batched `encode` of the same chunks in one process. Interleaved rounds.

    python -m benchmarks.batch [--stack search-dev] [--job reindex] [--smoke]
"""

import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import interleave, median_of, parser, ratio, report
from tools import local
from workloads.local import ENV
from workloads.models import load_minilm

WORDS = [
    "ray",
    "data",
    "streams",
    "blocks",
    "through",
    "operators",
    "while",
    "actors",
    "embed",
    "chunks",
    "of",
    "text",
    "on",
    "gpus",
]


def documents(path: Path, rows: int) -> None:
    """JSON Lines documents of 5-30 words (about 100 characters, as the shipped sample's), one in a
    hundred malformed."""
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(rows):
            if i % 100 == 7:
                f.write(f'{{"id": {i}, "text": "unterminated\n')
            else:
                f.write(json.dumps({"id": i, "text": " ".join(rng.choices(WORDS, k=rng.randint(5, 30)))}) + "\n")


class PeakObjectStore:
    """The object store's peak bytes while it runs, polled from the raylet (Ray's `ray memory`
    reads the same figure; no public API exposes it)."""

    def __init__(self, every_s: float = 0.1):
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        self.state, self.reply, self.every_s = get_state_from_address(), get_memory_info_reply, every_s
        self.peak, self.done = 0, threading.Event()

    def __enter__(self):
        def poll():
            while not self.done.is_set():
                used = self.reply(self.state).store_stats.object_store_bytes_used
                self.peak = max(self.peak, used)
                self.done.wait(self.every_s)

        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.done.set()
        self.thread.join()


def pipeline(args, materialized: bool) -> dict:
    from ray.data import Dataset

    from workloads.batch.pipeline import run, streamed

    started = time.perf_counter()
    with PeakObjectStore() as store:
        summary = run(args, Dataset.materialize if materialized else streamed)
    assert summary.complete, summary
    embedder = next(line for line in summary.throughput if "Embedder" in line)
    return {
        "wall_s": time.perf_counter() - started,
        "peak_object_store_mib": store.peak / 2**20,
        "embed_rows_per_s": float(embedder.split(":", 1)[1].split("rows/s")[0]),
    }


def raw(model, chunks: list[str], batch_size: int) -> dict:
    started = time.perf_counter()
    model.encode(chunks, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return {"rows_per_s": len(chunks) / (time.perf_counter() - started)}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--stack", default="search-dev")
    p.add_argument("--job", default="reindex")
    options = p.parse_args(argv)
    os.environ.update(ENV)
    rows, rounds = (50, 1) if options.smoke else (4000, 2)
    [job] = local.laptop(options.stack, "jobs", options.job)
    import ray
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    ray.init(runtime_env={"env_vars": ENV}, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            documents(Path(folder) / "in.jsonl", rows)
            args = job.args.updated(input=f"{folder}/in.jsonl", output=f"{folder}/out")
            pipeline(args, materialized=False)  # warm-up: workers started, the model cached
            chunks = pd.read_parquet(f"{folder}/out/results")["text"].tolist()
            model = load_minilm()
            measured = interleave(
                rounds,
                {
                    "streamed": lambda: pipeline(args, materialized=False),
                    "materialized": lambda: pipeline(args, materialized=True),
                    "raw": lambda: raw(model, chunks, args.model.batch_size),
                },
            )
    finally:
        ray.shutdown()
    figures = {
        f"{name}_{key}": median_of(measured[name], key)
        for name in ("streamed", "materialized")
        for key in ("wall_s", "peak_object_store_mib", "embed_rows_per_s")
    }
    figures |= {"raw_rows_per_s": median_of(measured["raw"], "rows_per_s"), "chunks": len(chunks)}
    ratios = {
        "speedup_streamed_vs_materialized": ratio(figures["materialized_wall_s"], figures["streamed_wall_s"]),
        "peak_object_store_streamed_vs_materialized": ratio(
            figures["streamed_peak_object_store_mib"], figures["materialized_peak_object_store_mib"]
        ),
        "embed_stage_vs_raw": ratio(figures["streamed_embed_rows_per_s"], figures["raw_rows_per_s"]),
    }
    result = {"ratios": ratios, "figures": figures, "setup": {"rows": rows, "rounds": rounds}}
    report("batch", result, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
