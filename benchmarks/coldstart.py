"""A new engine's start, the cold-start levers of components/coldstart.py measured side by side on
this machine: vLLM with torch.compile (as the cluster's engines run; `make local` runs eager) from an
empty cache against the same engine from the team's shared cache (`team.compileCache`: a
VLLM_CACHE_ROOT an earlier engine filled), and the weights read by Run:ai's streamer
(`load_format: runai_streamer`, rayplane's default) against vLLM's own loader (`auto`), both from
the shared cache (the load format is no part of vLLM's compile cache key, config/load.py: so only
the loading differs, and no second compile hides it). Each start is a process of its own, timed
from its first line to the engine answering, in interleaved rounds.

    python -m benchmarks.coldstart [--model PATH] [--smoke]

`--smoke` starts eager engines: every step of this script, none of vLLM's compile.

`--model PATH` starts real weights instead of the tiny local model (on a GPU: the engine's defaults).
"""

import sys
import tempfile
from pathlib import Path

from benchmarks.common import interleave, median_of, parser, ratio, report, run_script
from benchmarks.systems import has_gpu
from workloads.config import CPU_DTYPE, STREAMED
from workloads.local.tiny_llm import ensure

START = """
import json, sys, time
started = time.perf_counter()
from vllm import LLM, SamplingParams
spec = json.loads(sys.argv[1])
llm = LLM(spec["model"], **spec["engine"])
llm.generate(["hello"], SamplingParams(max_tokens=4, temperature=0), use_tqdm=False)
print("RESULT", json.dumps({"engine_s": time.perf_counter() - started}), flush=True)
"""


def engine(load_format: str, gpu: bool, compiled: bool = True) -> dict:
    """The engine's arguments: compiled, as in the cluster; on a CPU, small limits for this machine
    and the cpu profile's dtype (workloads/serving/llm.py)."""
    limits = {} if gpu else {"max_model_len": 256, "max_num_seqs": 4, "gpu_memory_utilization": 0.1, "dtype": CPU_DTYPE}
    return {"enforce_eager": not compiled, "load_format": load_format, **limits}


def start(model: str, load_format: str, cache: Path, log: Path, gpu: bool, compiled: bool) -> dict:
    """One engine's start in its own process, with `cache` as its VLLM_CACHE_ROOT."""
    spec = {"model": model, "engine": engine(load_format, gpu, compiled)}
    [result] = run_script(START, spec, {"VLLM_CACHE_ROOT": str(cache)}, log, "the engine's start")
    return result


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", help="weights to start instead of the tiny local model")
    options = p.parse_args(argv)
    model = options.model or str(ensure())
    gpu, rounds = has_gpu(), 1 if options.smoke else 3
    compiled = not options.smoke  # (a cold compile is minutes of a test run on 2 cores: vLLM's to test)
    logs = options.out / "coldstart-logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        shared = Path(scratch) / "shared"
        fresh = iter(range(1000))

        def cold() -> dict:
            """From an empty cache; the first such start fills the team's (`shared`) for the cached ones."""
            cache = shared if not shared.exists() else Path(scratch) / f"empty-{next(fresh)}"
            return start(model, STREAMED, cache, logs / "cold.log", gpu, compiled)

        measured = interleave(
            rounds,
            {
                "cold": cold,
                "cached": lambda: start(model, STREAMED, shared, logs / "cached.log", gpu, compiled),
                "cached_auto": lambda: start(model, "auto", shared, logs / "cached-auto.log", gpu, compiled),
            },
        )
    figures = {f"{name}_engine_s": median_of(runs, "engine_s") for name, runs in measured.items()}
    ratios = {
        "compile_cached_vs_cold": ratio(figures["cached_engine_s"], figures["cold_engine_s"]),
        "streamer_vs_auto": ratio(figures["cached_engine_s"], figures["cached_auto_engine_s"]),
    }
    setup = {"model": model, "gpu": gpu, "rounds": rounds, "engine": engine(STREAMED, gpu, compiled)}
    report("coldstart", {"ratios": ratios, "figures": figures, "setup": setup}, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
