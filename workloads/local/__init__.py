"""What the payloads need on a laptop (the `cpu` profile): models made on this machine, never
downloaded, the environment of every local Ray worker, and a sample input for jobs."""

import os
import random
import socket
from pathlib import Path

SAMPLE = Path(__file__).parent / "sample.jsonl"  # 200 documents, 3 of them malformed
BUILD = Path(__file__).resolve().parents[2] / "build"
ENV = {  # for every Ray process: vLLM's CPU backend, models from disk only
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "VLLM_CACHE_ROOT": str(BUILD / "vllm-cache"),
    # Behind HAProxy an ingress replica stays 30 s after it is told to stop, for a cloud load
    # balancer to deregister it; on a laptop none is in front, and every stop would wait for nothing.
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
    # A laptop's runs report no usage home, Ray's or vLLM's: there is nobody to tell, and Ray Serve
    # LLM's report costs every first LLM replica a worker importing vLLM (serving/llm_edge.py).
    "RAY_USAGE_STATS_ENABLED": "0",
    "VLLM_NO_USAGE_STATS": "1",
    # Ray starts its workers at nice 15, so that its GCS, raylet and the user's processes get the CPU
    # when workers are busy (ray_config_def.h worker_niceness). On a laptop the workers are what the
    # user runs, and they lost the CPU to the load the user sends them: the chat service at 8 in
    # flight streamed 230 tokens/s at 15, 547 at 0 (vLLM's own server: 707). Ray's job manager
    # starts a job's driver at 0 too (dashboard/modules/job/job_manager.py).
    "RAY_worker_niceness": "0",
}


# Ports nothing hands out on its own: Ray's workers take 10002-19999, and the kernel's ephemeral
# ports (from 32768), which Ray's other processes pick from, start above. A port found free here
# stays free until it is used; one from port 0 could be taken by a Ray process in between.
QUIET_PORTS = range(20000, 32768)


def free_port() -> int:
    """A free loopback port that no process started afterwards takes by chance."""
    for port in random.sample(QUIET_PORTS, 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {QUIET_PORTS.start}-{QUIET_PORTS.stop - 1}")


def cores_of(replica: int, replicas: int) -> list[int] | None:
    """The cores that a replica's engine binds its threads to when `replicas` replicas share this
    machine, the `replica`th of them (its rank on the node) taking one even share; None where one
    replica has them all, and vLLM's own binding (all but one core, that one for its scheduler) holds.
    vLLM's CPU backend binds every engine to the same first cores: two replicas on one machine
    computed on one core while the other waited (utils/ompmultiprocessing.py@0.29.0)."""
    cores = sorted(os.sched_getaffinity(0))
    shares = min(replicas, len(cores))
    if shares < 2:
        return None
    size = len(cores) // shares
    start = (replica % shares) * size
    return cores[start : start + size]
