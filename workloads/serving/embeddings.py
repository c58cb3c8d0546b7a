"""Sentence embeddings behind an OpenAI-style POST /v1/embeddings, batched per replica with
@serve.batch. The model deployment can take a fraction of a GPU (two replicas share one)."""

import asyncio
import base64
import os
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, ValidationError
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.handle import DeploymentHandle

from workloads.config import EmbeddingAppArgs
from workloads.models import MINILM, load_minilm
from workloads.serving.errors import APIError, bounded_body, invalid, openai_errors


class EmbeddingRequest(BaseModel):
    input: str | list[str] = Field(min_length=1)
    model: str | None = None
    # OpenAI's: the `openai` client asks for base64 unless told otherwise (and decodes it).
    encoding_format: Literal["float", "base64"] = "float"


def encoded(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """A vector as OpenAI sends it: JSON numbers, or its little-endian float32 bytes in base64."""
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


api = openai_errors(FastAPI(title="rayplane embeddings"))


@serve.deployment
class Embedder:
    def __init__(self, device: str, max_batch_size: int, batch_wait_timeout_s: float, max_replicas: int):
        # On a CPU the replicas at their most share the cores: Serve scales the model by replicas
        # (processes), and replicas of all-core torch would overrun the cores. Two one-thread
        # processes also encode more than one process of two threads (benchmarks/README.md).
        self.model = load_minilm(device, threads=max(1, len(os.sched_getaffinity(0)) // max_replicas))
        self.model.encode(["ready"])  # the replica is ready once it has made a vector, not before
        self.embed.set_max_batch_size(max_batch_size)
        self.embed.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch
    async def embed(self, texts: list[str]) -> list[tuple[np.ndarray, int]]:
        # Blocks its loop while the model runs, so it runs on a loop of its own (build_app: OWN_LOOP),
        # and not in a thread: serve.batch forms a batch every batch_wait_timeout_s while its loop is
        # free (serve/batching.py@2.60.0:474-492), so batches would stay small; a blocked loop
        # gathers what arrived meanwhile into the next one.
        vectors = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        tokens = [len(ids) for ids in self.model.tokenizer(texts)["input_ids"]]
        return list(zip(vectors, tokens, strict=True))


@serve.deployment
@serve.ingress(api)
class EmbeddingAPI:
    """The front: every limit is checked here, so a refused request never reaches a model replica."""

    def __init__(self, embedder: DeploymentHandle, args: dict):
        self.embedder = embedder
        self.args = EmbeddingAppArgs.model_validate(args)

    def _texts(self, request: EmbeddingRequest) -> list[str]:
        if request.model not in (None, MINILM):
            raise APIError(
                404, f"model {request.model!r} not found; this service serves {MINILM!r}", "model_not_found", "model"
            )
        texts = [request.input] if isinstance(request.input, str) else request.input
        limits = self.args
        if len(texts) > limits.max_inputs:
            raise APIError(
                413, f"{len(texts)} inputs; at most {limits.max_inputs} per request", "too_many_inputs", "input"
            )
        if too_long := [i for i, text in enumerate(texts) if len(text) > limits.max_input_chars]:
            message = f"inputs {too_long} exceed {limits.max_input_chars} characters"
            raise APIError(413, message, "input_too_long", "input")
        if (total := sum(map(len, texts))) > limits.max_request_chars:
            message = f"the inputs hold {total} characters; at most {limits.max_request_chars} per request"
            raise APIError(413, message, "input_too_long", "input")
        return texts

    async def _embed(self, text: str) -> tuple[np.ndarray, int]:
        try:
            return await self.embedder.embed.remote(text)
        except RayActorError:  # its replica died with it: embedding is idempotent, so another one
            return await self.embedder.embed.remote(text)  # takes it, once (a second death is a real error)

    @api.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> dict:
        try:
            parsed = EmbeddingRequest.model_validate_json(await bounded_body(request, self.args.max_body_bytes()))
        except ValidationError as exc:
            raise invalid(exc.errors()) from None
        texts = self._texts(parsed)
        results = await asyncio.gather(*[self._embed(text) for text in texts])
        tokens = sum(n for _, n in results)
        data = [
            {"object": "embedding", "index": i, "embedding": encoded(vector, parsed.encoding_format)}
            for i, (vector, _) in enumerate(results)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "model": MINILM, "data": data, "usage": usage}


def build_app(args: dict):
    """Serve builder (import path `workloads.serving.embeddings:build_app`)."""
    config = EmbeddingAppArgs.model_validate(args)
    # A replica takes two batches: one in the model while the next fills.
    per_replica = 2 * config.max_batch_size
    embedder = Embedder.options(
        **config.autoscaling.deployment_options(at_least=per_replica),
        ray_actor_options=config.actor_options(config.num_gpus, blocking=True),
    ).bind(
        config.device(config.num_gpus),
        config.max_batch_size,
        config.batch_wait_timeout_s,
        config.autoscaling.max_replicas,
    )
    # The front only awaits the model's replicas: it takes as many requests as they all can.
    ingress = EmbeddingAPI.options(
        num_replicas=config.front_replicas(),
        max_ongoing_requests=per_replica * config.autoscaling.max_replicas,
        ray_actor_options=config.actor_options(),
    )
    return ingress.bind(embedder, config.model_dump())
