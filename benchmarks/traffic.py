"""Serving traffic of real shape on two replicas: multi-turn conversations (a long system prompt
shared by all, each history growing turn by turn, a turn sent a pause after the last one is
answered: the user reads, then types) and RAG (a few long documents, many questions about each).
The chat service with default routing against prefix-aware routing (and, on a GPU, KV cache
offload to host memory), the same engine and load; vLLM's own server (one engine) and vLLM's router
over two of them (round robin, cache aware) as references. Each system runs alone on the machine,
in whole start-load-stop rounds.
Reports TTFT p50/p95, output tokens/s and the prefix cache hit rate (vLLM's counters).

    python -m benchmarks.traffic [--stack search-dev] [--service chat] [--model PATH] [--smoke]

On a laptop the model is `SMALL` (workloads/local/tiny_llm.py): the tiny model computes a long
prompt in milliseconds, so no cache could show there. `--model PATH` serves real weights; on a
machine with a GPU the service runs in the cluster profile, so the script runs unchanged there.
"""

import asyncio
import os
import random
import sys

import httpx

from benchmarks.common import alone, closed_loop, median_of, parser, ratio, report, stats, wait_until
from benchmarks.systems import (
    HITS,
    QUERIES,
    OurService,
    VllmRouter,
    VllmServer,
    completion,
    has_gpu,
    router_installed,
    service_run,
)
from workloads.local import ENV
from workloads.local.tiny_llm import CORPUS, SMALL, SMALL_DIR, ensure

WORDS = " ".join(dict.fromkeys(CORPUS)).replace(".", "").split()  # words the local tokenizer knows whole
COUNTED_WITHIN_S = 60  # Ray exports an engine's counters every few seconds
# Each variant names its router: the stack's own service may set one (search-dev's chat is prefix-aware).
VARIANTS = {name: {"routing": {"router": name}} for name in ("default", "prefix_aware")}


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def conversations(
    n: int, turns: int, system_words: int, context_words: int, user_words: int, seed: int = 0
) -> list[list[str]]:
    """`n` conversations after one system prompt: each opens with a long message of its own (a
    pasted text, a user's profile), then `turns` short ones."""
    rng = random.Random(seed)
    system = "System: " + text(rng, system_words)
    return [[system, text(rng, context_words)] + [text(rng, user_words) for _ in range(turns - 1)] for _ in range(n)]


def pauses(n: int, turns: int, mean_s: float, seed: int = 2) -> list[list[float]]:
    """Seconds each of `n` conversations waits before each of its turns: exponential around
    `mean_s`, as vLLM's multi-turn benchmark draws its clients' gaps (the first staggers the
    conversations' arrivals). Without them every answer of `max_tokens` ends at once and the
    conversations on a replica arrive in lockstep, each turn waiting behind the others' prefill."""
    rng = random.Random(seed)
    return [[rng.expovariate(1 / mean_s) for _ in range(turns)] for _ in range(n)]


def rag(documents: int, questions: int, document_words: int, question_words: int, seed: int = 1) -> list[str]:
    """`questions` prompts about each of `documents` documents, shuffled."""
    rng = random.Random(seed)
    docs = [text(rng, document_words) for _ in range(documents)]
    prompts = [
        f"Document: {doc}\nQuestion: {text(rng, question_words)}\nAnswer:" for doc in docs for _ in range(questions)
    ]
    rng.shuffle(prompts)
    return prompts


async def chat(
    client, url: str, model: str, conversation: list[str], waits: list[float], max_tokens: int
) -> list[dict]:
    """One conversation, turn after turn, each after its wait: each prompt is the whole history so far."""
    history, results = conversation[0], []
    for message, wait in zip(conversation[1:], waits, strict=True):
        await asyncio.sleep(wait)
        history += f"\nUser: {message}\nAssistant:"
        result = await completion(client, url, model, history, max_tokens)
        history += result.pop("text")
        results.append(result)
    return results


def measure(system, model: str, shape: dict) -> dict:
    """Warm the system up, then send the shape's load; TTFT, tokens/s and the prefix cache hit
    rate over the load alone."""

    async def run():
        limits = httpx.Limits(max_connections=shape["concurrency"] + 4)
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            for i in range(2):  # the engines' first requests, with no prefix of the load's
                await completion(client, system.url, model, f"warm up {i} " + " ".join(WORDS[:20]), 4)
            before = system.cache()
            if shape["kind"] == "multi_turn":
                convs, waits = shape["conversations"], shape["pauses"]
                nested, wall = await closed_loop(
                    lambda i: chat(client, system.url, model, convs[i], waits[i], shape["max_tokens"]),
                    len(convs),
                    shape["concurrency"],
                )
                results = [r for conversation in nested for r in conversation]
            else:
                prompts = shape["prompts"]
                results, wall = await closed_loop(
                    lambda i: completion(client, system.url, model, prompts[i], shape["max_tokens"]),
                    len(prompts),
                    shape["concurrency"],
                )
        return before, results, wall

    before, results, wall = asyncio.run(run())
    prompt_tokens = sum(r["prompt_tokens"] for r in results)
    counted = {}

    def all_counted() -> bool:  # every prompt of the load in the counters (Ray exports them late)
        counted.update(system.cache())
        return counted[QUERIES] - before[QUERIES] >= prompt_tokens

    wait_until(all_counted, COUNTED_WITHIN_S, "the prefix cache counters")
    ttft = sorted(r["ttft"] for r in results if r["ttft"] is not None)
    return {
        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
        "ttft": stats(ttft) | {"p95": ttft[min(len(ttft) - 1, round(0.95 * (len(ttft) - 1)))]},
        "hit_rate": (counted[HITS] - before[HITS]) / (counted[QUERIES] - before[QUERIES]),
        "prompt_tokens": prompt_tokens,
        "requests": len(results),
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--stack", default="search-dev")
    p.add_argument("--service", default="chat")
    p.add_argument("--model", help="weights to serve instead of the local SMALL model")
    p.add_argument("--rounds", type=int, help="start-load-stop rounds per system (default: 2)")
    args = p.parse_args(argv)
    os.environ.update(ENV)
    gpu = has_gpu()
    model = args.model or (None if gpu or args.smoke else str(ensure(SMALL_DIR, SMALL)))
    if args.smoke:  # every path at the least load
        conv = dict(n=2, turns=2, system_words=40, context_words=40, user_words=8)
        think_s = 0.05
        rounds, size, words, max_tokens = 1, dict(documents=2, questions=2), 40, 4
    else:
        conv = dict(n=12, turns=5, system_words=200, context_words=500, user_words=30)
        think_s = 1.0
        rounds, size, words, max_tokens = 2, dict(documents=16, questions=3), 500, 16
    rounds = args.rounds or rounds
    shapes = {
        "multi_turn": {
            "kind": "multi_turn",
            "conversations": conversations(**conv),
            "pauses": pauses(conv["n"], conv["turns"], think_s),
            "concurrency": 8,
        },
        "rag": {"kind": "rag", "prompts": rag(**size, document_words=words, question_words=12), "concurrency": 8},
    }
    for shape in shapes.values():
        shape["max_tokens"] = max_tokens
    replicas = 1 if args.smoke else 2  # (one starts sooner, and runs the same code)
    fixed = {"min_replicas": replicas, "max_replicas": replicas, "target_ongoing_requests": 64}
    context = {} if gpu else {"max_model_len": 2048}  # the local model's whole context
    variants = dict(VARIANTS)
    if args.smoke:  # the new paths only: ours prefix-aware, vLLM's router (each start is a minute here)
        del variants["default"]
    if gpu:  # vLLM's CPU backend has no offload: its KV cache is host memory already
        variants["prefix_aware_offload"] = variants["prefix_aware"] | {"kv_offload_gib": 16}
    systems = {
        name: OurService(service_run(args.stack, args.service, model, autoscaling=fixed, **context, **changes))
        for name, changes in variants.items()
    }
    first = next(iter(systems.values()))
    served = first.model
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.smoke:  # (the smoke run starts the same classes behind vLLM's router)
        systems["vllm"] = VllmServer(first, args.out / "traffic-vllm.log")
    if router_installed():
        for policy in ("cache_aware",) if args.smoke else ("round_robin", "cache_aware"):
            servers = [VllmServer(first, args.out / f"traffic-{policy}-{i}.log", i, replicas) for i in range(replicas)]
            systems[f"vllm_router_{policy}"] = VllmRouter(servers, policy, args.out / f"traffic-{policy}.log")

    def load(system) -> dict:
        return {name: measure(system, served.model_id, shape) for name, shape in shapes.items()}

    measured = alone(rounds, systems, load)
    figures = {
        f"{system}_{shape}_{figure}": median_of([r[shape]["ttft"] for r in results], figure[5:])
        if figure.startswith("ttft_")
        else median_of([r[shape] for r in results], figure)
        for system, results in measured.items()
        for shape in shapes
        for figure in ("ttft_p50", "ttft_p95", "tokens_per_s", "hit_rate")
    }
    ratios = {}
    for shape in shapes:
        for variant in (v for v in variants if v != "default" and "default" in variants):
            for figure in ("ttft_p50", "ttft_p95", "tokens_per_s"):
                ratios[f"{shape}_{variant}_vs_default_{figure}"] = ratio(
                    figures[f"{variant}_{shape}_{figure}"], figures[f"default_{shape}_{figure}"]
                )
        if "vllm_router_cache_aware" in systems:
            ratios[f"{shape}_prefix_aware_vs_vllm_router_cache_aware_ttft_p50"] = ratio(
                figures[f"prefix_aware_{shape}_ttft_p50"], figures[f"vllm_router_cache_aware_{shape}_ttft_p50"]
            )
    result = {
        "ratios": ratios,
        "figures": figures,
        "setup": {
            "rounds": rounds,
            "conversations": conv | {"think_s": think_s},
            "rag": size | {"document_words": words},
            "max_tokens": max_tokens,
            "concurrency": 8,
            "replicas": replicas,
            "model": served.model_dump(),
            "systems": list(systems),
        },
    }
    report("traffic", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
