"""Typed configuration shared by the Pulumi program and the Ray payloads.

Plain pydantic, no Ray imports: the stack validates a team's service and job args with these
models and writes them into serveConfigV2 / the RayJob entrypoint; the payloads parse the same
args at start-up. `profile` is the one switch between the cluster (GPUs) and a laptop (CPU).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Profile = Literal["cluster", "cpu"]
EMBEDDER_DEPLOYMENT = "Embedder"  # the embedding app's model deployment (workloads/serving/embeddings.py)


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def gpus_per_replica(self) -> float:
        """GPUs one Serve replica (or one job actor) of this payload needs on a single worker."""
        return 0

    def serve_deployments(self) -> list[dict]:
        """Serve deployment options (serveConfigV2 `deployments`) that the args imply."""
        return []


class Autoscaling(Args):
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(16, gt=0)


class LoraConfig(Args):
    """LoRA adapters loaded per request from `<dynamic_lora_loading_path>/<adapter id>`."""

    dynamic_lora_loading_path: str
    max_num_adapters_per_replica: int = Field(4, ge=1)


class LLMModel(Args):
    model_id: str  # the name clients send as "model"
    model_source: str  # a directory, gs:// prefix or hub id holding the weights
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=16)
    max_ongoing_requests: int = Field(64, ge=1)
    autoscaling: Autoscaling = Autoscaling()
    lora: LoraConfig | None = None

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


class LLMAppArgs(Args):
    """An OpenAI-compatible app serving one or more models (Ray Serve LLM)."""

    models: list[LLMModel] = Field(min_length=1)
    accelerator_type: str | None = None  # Ray accelerator type, e.g. "L4"; None = any GPU
    profile: Profile = "cluster"

    def gpus_per_replica(self) -> float:
        return max(model.gpus for model in self.models)


class EmbeddingAppArgs(Args):
    """Sentence embeddings with the packaged all-MiniLM-L6-v2, batched per replica."""

    num_gpus: float = Field(0.5, ge=0, le=1)  # fractional: two replicas share one GPU
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0)
    max_input_chars: int = Field(8192, ge=1)
    autoscaling: Autoscaling = Autoscaling()
    profile: Profile = "cluster"

    def gpus_per_replica(self) -> float:
        return self.num_gpus

    def serve_deployments(self) -> list[dict]:
        scaling = self.autoscaling.model_dump()
        return [
            {
                "name": EMBEDDER_DEPLOYMENT,
                "autoscaling_config": scaling,
                "ray_actor_options": {"num_gpus": self.num_gpus if self.profile == "cluster" else 0},
            }
        ]


class BatchJobArgs(Args):
    """A Ray Data batch-inference job: read -> preprocess -> model stage -> write Parquet."""

    input: str  # Parquet or JSON Lines: a local path or gs:// prefix
    output: str
    stage: Literal["embeddings", "llm"] = "embeddings"
    model_source: str | None = None  # llm stage: the weights
    profile: Profile = "cluster"
