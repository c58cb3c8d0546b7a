"""What the payloads need on a laptop (the `cpu` profile): models made on this machine, never
downloaded, the environment of every local Ray worker, and a sample input for jobs."""

import socket
from pathlib import Path

SAMPLE = Path(__file__).parent / "sample.jsonl"  # 200 documents, 3 of them malformed
BUILD = Path(__file__).resolve().parents[2] / "build"
ENV = {  # for every Ray worker: vLLM's CPU backend, models from disk only
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "VLLM_CACHE_ROOT": str(BUILD / "vllm-cache"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
