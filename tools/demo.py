"""`make demo`: render every stack offline, then run the dev team stack on a local Ray for real:
chat (plain and streamed) through the openai client, embeddings, one batch job; then stop it all.

    python -m tools.demo
"""

import os
import sys
import time

import openai
import requests

from components.config import ConfigError
from tools import local, render
from workloads.local import ENV, SAMPLE, free_port

STACK = "search-dev"


def _timed(label: str, started: float) -> None:
    print(f"  [{label}: {time.monotonic() - started:.1f}s]")


def demo() -> int:
    begin = time.monotonic()
    print("== 1. every stack, rendered offline (build/render/)")
    if render.main([]) != 0:
        return 1
    cfg = local.team_config(STACK)
    print(
        f"\n== 2. {STACK} on a local Ray: services {[s.name for s in cfg.services]}, jobs {[j.name for j in cfg.jobs]}"
    )
    started = time.monotonic()
    try:
        base, services, dashboard = local.serve_stack(STACK, None, free_port(), hold=False)
        _timed("start-up", started)
        chat = next(s for s in services if s.spec.payload == "llm")
        model = chat.args.models[0].model_id
        client = openai.OpenAI(base_url=f"{base}/{chat.name}/v1", api_key="local", max_retries=0, timeout=120)

        print(f"\n== 3. requests (model {model!r} is a tiny random-weight stand-in: expect gibberish)")
        started = time.monotonic()
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "What is KubeRay?"}], max_tokens=16
        )
        usage = f"{reply.usage.prompt_tokens} prompt + {reply.usage.completion_tokens} completion tokens"
        print(f"  chat: {reply.choices[0].message.content!r} ({usage})")
        _timed("chat", started)
        started = time.monotonic()
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Stream please"}], max_tokens=16, stream=True
        )
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        print(f"  streamed {len(pieces)} chunks: {''.join(pieces)!r}")
        _timed("stream", started)
        started = time.monotonic()
        embed = next(s for s in services if s.spec.payload == "embeddings")
        texts = ["GPUs on Kubernetes", "Ray Serve autoscaling"]
        vectors = requests.post(f"{base}/{embed.name}/v1/embeddings", json={"input": texts}, timeout=60).json()["data"]
        print(f"  embeddings: {len(vectors)} vectors of {len(vectors[0]['embedding'])} dimensions")
        _timed("embeddings", started)

        from ray import serve

        for service in services:  # free the laptop's CPUs for the job (the cluster runs jobs on their own Ray)
            serve.delete(service.name)
        job = cfg.jobs[0]
        print(f"\n== 4. batch job {job.name!r} on {SAMPLE.relative_to(render.ROOT)} through the Ray Jobs API")
        started = time.monotonic()
        status = local.run_job(STACK, job.name, None, dashboard, timeout_s=600)
        _timed("job", started)
    finally:
        local.stop()
    print(f"\n== done in {time.monotonic() - begin:.0f}s; local Ray stopped")
    return status


def main() -> int:
    os.environ.update(ENV)  # inherited by the local Ray's workers
    try:
        return demo()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
