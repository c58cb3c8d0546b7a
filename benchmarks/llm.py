"""LLM serving: our chat service exactly as a team stack deploys it (the stack's Serve app and args
through tools.local) against vLLM's own OpenAI server and `vllm.LLM` offline: the same model, the
same prompts, the same engine limits (max_model_len, max_num_seqs) and, on a CPU, the same eager
float32 engine (systems.py `engine_settings`). Each server runs alone on the
machine: started, warmed up, swept, stopped, then the other, in interleaved rounds (benchmarks/
common.py `alone`). Streaming completions of max_tokens with ignore_eos at each concurrency of the
sweep: output tokens/s, time to first token (unloaded: concurrency 1; under load: the highest),
inter-token latency, and start-up: from launch to healthy, and to the first answer (vLLM's server
reports healthy before its engine has run a step, and its first request then waits for that step;
ours reports ready once its engine has made a token: the first answer is the same point for both).

    python -m benchmarks.llm [--stack search-dev] [--service chat] [--model PATH] [--smoke]

On a laptop the service runs as `make local` runs it (tiny model, CPU profile). `--model PATH` swaps
in real weights; on a machine with a GPU the service runs in the cluster profile (its stack's engine
settings, GPUs from Ray) and vLLM's server on the same GPU model, so the script runs unchanged there.
"""

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

from benchmarks.common import alone, closed_loop, median_of, parser, ratio, report, run_script, stats
from benchmarks.systems import OurService, VllmServer, completion, engine_settings, service_run
from workloads.local import ENV

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
llm = LLM(spec["model"], max_model_len=spec["max_model_len"], max_num_seqs=spec["max_num_seqs"], **spec["engine"])
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
    p.add_argument("--rounds", type=int, help="start-sweep-stop rounds per server (default: 3)")
    args = p.parse_args(argv)
    os.environ.update(ENV)
    sweep, requests, rounds, max_tokens = ([1, 4], 4, 1, 8) if args.smoke else ([1, 8, 64], 256, 3, 32)
    sweep, rounds = args.concurrency or sweep, args.rounds or rounds
    requests = max(requests, 2 * max(sweep))
    ours = OurService(service_run(args.stack, args.service, args.model))
    model = ours.model
    args.out.mkdir(parents=True, exist_ok=True)
    theirs = VllmServer(ours, args.out / "llm-vllm-server.log")
    texts = prompts(requests)

    def load(system) -> dict:
        started = time.monotonic()
        sweep_point(system.url, model.model_id, prompts(1), 1, 1)  # the first answer, after healthy
        first_answer_s = time.monotonic() - started
        sweep_point(system.url, model.model_id, prompts(4), 4, max_tokens)  # warm-up, not measured
        sweeps = {c: sweep_point(system.url, model.model_id, texts[: max(c * 4, 16)], c, max_tokens) for c in sweep}
        return {"first_answer_s": first_answer_s, **sweeps}

    measured = alone(rounds, {"ours": ours, "vllm": theirs}, load)
    points = {c: {name: [r[c] for r in results] for name, results in measured.items()} for c in sweep}
    startup = {name: median_of(results, "startup_s") for name, results in measured.items()}
    answered = {
        name: median_of([{"s": r["startup_s"] + r["first_answer_s"]} for r in results], "s")
        for name, results in measured.items()
    }
    spec = {"model": model.model_source, "max_model_len": model.max_model_len, "max_num_seqs": model.max_num_seqs}
    spec["engine"] = engine_settings(ours)
    spec |= {"max_tokens": max_tokens, "prompts": texts}
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
        "startup_vs_vllm": ratio(answered["ours"], answered["vllm"]),
        "startup_to_healthy_vs_vllm": ratio(startup["ours"], startup["vllm"]),
    }
    result = {
        "ratios": ratios,
        "figures": figures | {"offline_tokens_per_s": median_of(offline_rounds, "tokens_per_s")},
        "startup_s": {"to_first_answer": answered, "to_healthy": startup},
        "setup": {"sweep": sweep, "rounds": rounds, "max_tokens": max_tokens, "model": model.model_dump()},
    }
    summary = ", ".join(f"{k} {v}" for k, v in ratios.items())
    report("llm", result, args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
