"""What every benchmark shares: statistics, interleaved rounds, an HTTP load generator, and the
output (build/bench/<name>.json plus a one-line summary of ratios).

This machine is noisy, so a benchmark never reports an absolute time on its own: each figure is a
ratio of two things measured in the same run, in interleaved rounds (A, B, A, B, ...), from medians.
"""

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tools.render import ROOT

OUT = ROOT / "build" / "bench"
QUIET = ("httpx", "ray.serve", "ray.data")  # per-request and per-step logs would bury the summary


def quiet() -> None:
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def stats(samples: list[float]) -> dict:
    """Median, p99 and count of some samples (seconds or rates)."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p99": None, "n": 0}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "n": len(ordered)}


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if not ours or not theirs else round(ours / theirs, 3)


def median_of(rounds: list[dict], key: str) -> float | None:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(values) if values else None


def interleave(rounds: int, systems: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
    """Each system measured once per round, in turn: `rounds` results per system."""
    results: dict[str, list[dict]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, measure in systems.items():
            results[name].append(measure())
    return results


def alone(rounds: int, systems: dict, load) -> dict[str, list[dict]]:
    """Each system started, loaded (`load(system)`) and stopped, one after another, `rounds`
    times (A, B, A, B, ...): no system shares the machine with another (on 2 cores an idle server
    beside the one measured, its Ray, Serve's controller and proxy or an engine's busy loop, takes
    a share of the CPU the measured one would have). Each result also has its start-up time."""
    results: dict[str, list[dict]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, system in systems.items():
            print(f"  {name}: starting", flush=True)
            try:
                startup = system.start()
                results[name].append({**load(system), "startup_s": startup})
            finally:
                system.stop()
    return results


async def closed_loop(call: Callable[[int], Awaitable[dict]], requests: int, concurrency: int) -> tuple[list, float]:
    """`requests` calls, at most `concurrency` at once (each caller sends its next when one ends);
    the calls' results and the wall time."""
    queue = iter(range(requests))
    results: list[dict] = []

    async def caller():
        for i in queue:
            results.append(await call(i))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return results, time.perf_counter() - started


def run_script(script: str, spec: dict, env: dict[str, str], log: Path, what: str) -> list[dict]:
    """`python -c script spec` in its own process (vLLM spawns its engine: not in ours), its output in
    `log`; what it printed as `RESULT <json>` lines."""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed; see {log}")
    return [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `ready()` held; TimeoutError after `timeout_s`."""
    started = time.monotonic()
    while not ready():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what} not ready within {timeout_s:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - started


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes (and the logs every benchmark quiets)."""
    quiet()
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="the smallest run that exercises every path (tests)")
    p.add_argument("--out", type=Path, default=OUT, help="where <name>.json goes")
    return p


def report(name: str, result: dict, out: Path = OUT, summary: str | None = None) -> Path:
    """Write <out>/<name>.json and print the one-line summary (default: every ratio)."""
    summary = summary or ", ".join(f"{k} {v}" for k, v in result["ratios"].items())
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"{name}: {summary}", flush=True)
    return path
