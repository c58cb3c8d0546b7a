"""Typed configuration shared by the Pulumi program and the Ray payloads.

Plain pydantic, no Ray imports: the stack validates a team's service and job args with these
models and writes them into serveConfigV2 / the RayJob entrypoint; the payloads parse the same
args at start-up. `profile` is the one switch between the cluster (GPUs) and a laptop (CPU).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class MultiplexAppArgs(Args):
    """Text classifiers loaded on demand by id (header `serve_multiplexed_model_id`) from a store:
    `<store>/<model id>/classifier.npz`, a local directory or a gs:// prefix."""

    store: str
    max_models_per_replica: int = Field(2, ge=1)
    autoscaling: Autoscaling = Autoscaling()
    profile: Profile = "cluster"


class ComposeAppArgs(Args):
    """A zero-shot topic tagger composed of three deployments: preprocess -> embed -> postprocess."""

    labels: dict[str, str] = Field(  # label -> a sentence that describes it
        default={
            "infrastructure": "clusters, nodes, networks and cloud infrastructure",
            "machine learning": "training and serving machine learning models",
            "cooking": "recipes, food and cooking in the kitchen",
        },
        min_length=2,
    )
    max_input_chars: int = Field(4096, ge=1)
    num_gpus: float = Field(0.5, ge=0, le=1)  # the embedding stage shares a GPU
    profile: Profile = "cluster"

    def gpus_per_replica(self) -> float:
        return self.num_gpus


class ActorPool(Args):
    """A model stage's actor pool: it grows from min to max actors with the backlog."""

    min_actors: int = Field(1, ge=1)
    max_actors: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)


class BatchJobArgs(Args):
    """A Ray Data batch-inference job: read -> preprocess (CPU) -> model stage -> write Parquet."""

    input: str  # Parquet files or JSON Lines (*.jsonl): a local path or a gs:// prefix
    output: str  # <output>/results (Parquet), <output>/quarantine (Parquet), <output>/_SUMMARY.json
    stage: Literal["embeddings", "llm"] = "embeddings"
    id_column: str = "id"
    text_column: str = "text"
    chunk_chars: int = Field(2000, ge=100)  # longer texts are split into chunks of this size
    preprocess_tasks: int = Field(4, ge=1)  # CPU preprocessing: parallel tasks
    model: ActorPool = ActorPool()
    num_gpus: float = Field(1, ge=0)  # per model actor in the cluster profile
    # llm stage
    model_source: str | None = None
    prompt: str = "Summarize in one sentence:\n{text}"
    max_tokens: int = Field(64, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    profile: Profile = "cluster"

    @model_validator(mode="after")
    def _llm_needs_a_model(self) -> "BatchJobArgs":
        if self.stage == "llm" and not self.model_source:
            raise ValueError("stage llm needs model_source")
        return self

    def gpus_per_replica(self) -> float:
        if self.stage == "llm":
            return self.tensor_parallel_size * self.pipeline_parallel_size
        return self.num_gpus
