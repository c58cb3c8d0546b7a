"""Sentence embeddings behind an OpenAI-style POST /v1/embeddings, batched per replica with
@serve.batch. The model deployment can take a fraction of a GPU (two replicas share one)."""

import asyncio

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from workloads.config import EmbeddingAppArgs
from workloads.models import MINILM, load_minilm


class EmbeddingRequest(BaseModel):
    input: str | list[str] = Field(min_length=1)
    model: str | None = None


api = FastAPI(title="rayplane embeddings")


@serve.deployment
class Embedder:
    def __init__(self, device: str, max_batch_size: int, batch_wait_timeout_s: float):
        self.model = load_minilm(device)
        self.embed.set_max_batch_size(max_batch_size)
        self.embed.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch
    async def embed(self, texts: list[str]) -> list[tuple[list[float], int]]:
        vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        tokens = [len(ids) for ids in self.model.tokenizer(texts)["input_ids"]]
        return [(vector.tolist(), n) for vector, n in zip(vectors, tokens, strict=True)]


@serve.deployment
@serve.ingress(api)
class EmbeddingAPI:
    def __init__(self, embedder: DeploymentHandle, max_input_chars: int):
        self.embedder = embedder
        self.max_input_chars = max_input_chars

    @api.post("/v1/embeddings")
    async def embeddings(self, request: EmbeddingRequest) -> dict:
        if request.model not in (None, MINILM):
            raise HTTPException(404, f"model {request.model!r} not found; this service serves {MINILM!r}")
        texts = [request.input] if isinstance(request.input, str) else request.input
        too_long = [i for i, text in enumerate(texts) if len(text) > self.max_input_chars]
        if too_long:
            raise HTTPException(413, f"inputs {too_long} exceed {self.max_input_chars} characters")
        results = await asyncio.gather(*[self.embedder.embed.remote(text) for text in texts])
        tokens = sum(n for _, n in results)
        return {
            "object": "list",
            "model": MINILM,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, (v, _) in enumerate(results)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def build_app(args: dict):
    """Serve builder (import path `workloads.serving.embeddings:build_app`)."""
    config = EmbeddingAppArgs.model_validate(args)
    # A replica takes two batches: one in the model while the next fills.
    per_replica = 2 * config.max_batch_size
    embedder = Embedder.options(
        **config.autoscaling.deployment_options(at_least=per_replica),
        ray_actor_options=config.actor_options(config.num_gpus),
    ).bind(config.device(config.num_gpus), config.max_batch_size, config.batch_wait_timeout_s)
    # The front only awaits the model's replicas: it takes as many requests as they all can.
    ingress = EmbeddingAPI.options(
        max_ongoing_requests=per_replica * config.autoscaling.max_replicas, ray_actor_options=config.actor_options()
    )
    return ingress.bind(embedder, config.max_input_chars)
