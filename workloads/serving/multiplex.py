"""Model multiplexing: one deployment hosts many small text classifiers and loads each on demand
by id (header `serve_multiplexed_model_id`); Serve routes requests to replicas that already hold
the model and evicts the least recently used one past `max_models_per_replica`.

A classifier is `<store>/<model id>/classifier.npz` (a local directory on a laptop, gs:// in the
cluster, read through pyarrow's filesystems): hashed bag-of-words features -> softmax over labels.
"""

import asyncio
import io
import re
import zlib
from collections import Counter

import numpy as np
from pyarrow import fs
from ray import serve
from starlette.requests import Request

from workloads.config import MultiplexAppArgs
from workloads.serving.errors import APIError

FEATURES = 1024
MODEL_FILE = "classifier.npz"


def features(text: str) -> np.ndarray:
    """Hashed bag of words (a stable hash: crc32 is the same in every process)."""
    vector = np.zeros(FEATURES, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[zlib.crc32(word.encode()) % FEATURES] += 1.0
    return vector


class Classifier:
    def __init__(self, weights: np.ndarray, labels: list[str]):
        self.weights, self.labels = weights, labels

    def predict(self, text: str) -> dict:
        logits = features(text) @ self.weights
        scores = np.exp(logits - logits.max())
        scores /= scores.sum()
        return {
            "label": self.labels[int(scores.argmax())],
            "scores": dict(zip(self.labels, scores.tolist(), strict=True)),
        }


def save_classifier(store: str, model_id: str, weights: np.ndarray, labels: list[str]) -> None:
    filesystem, root = fs.FileSystem.from_uri(store)
    filesystem.create_dir(f"{root}/{model_id}", recursive=True)
    buffer = io.BytesIO()
    np.savez(buffer, weights=weights, labels=np.array(labels))
    with filesystem.open_output_stream(f"{root}/{model_id}/{MODEL_FILE}") as out:
        out.write(buffer.getvalue())


class ModelNotFound(LookupError):
    """No classifier with that id in the store."""


def multiplexed_classifiers(max_models_per_replica: int):
    """The deployment class; the model cap is a decorator argument, so it is made per app."""

    @serve.deployment
    class Classifiers:
        def __init__(self, store: str):
            self.filesystem, self.root = fs.FileSystem.from_uri(store)
            self.loads: Counter[str] = Counter()

        @serve.multiplexed(max_num_models_per_replica=max_models_per_replica)
        async def get_model(self, model_id: str) -> Classifier:
            # Reading the store blocks (gs:// in the cluster): in a thread, off the replica's event loop.
            model = await asyncio.to_thread(self._load, model_id)
            self.loads[model_id] += 1
            return model

        def _load(self, model_id: str) -> Classifier:
            path = f"{self.root}/{model_id}/{MODEL_FILE}"
            if (
                not re.fullmatch(r"[A-Za-z0-9._-]+", model_id)
                or self.filesystem.get_file_info(path).type != fs.FileType.File
            ):
                raise ModelNotFound(model_id)
            with self.filesystem.open_input_file(path) as f:
                data = np.load(io.BytesIO(f.read()))
            return Classifier(data["weights"], data["labels"].tolist())

        async def __call__(self, request: Request):
            model_id = serve.get_multiplexed_model_id()
            if not model_id:
                return APIError(400, "set the serve_multiplexed_model_id header", "missing_model_id").response()
            try:
                body = await request.json()
                text = body["text"]
            except (ValueError, KeyError, TypeError):
                return APIError(400, 'send a JSON body {"text": "..."}', "invalid_request", "text").response()
            try:
                model = await self.get_model(model_id)
            except ModelNotFound:
                return APIError(404, f"model {model_id!r} not found", "model_not_found").response()
            return {"model": model_id, **model.predict(str(text))}

        def load_counts(self) -> dict[str, int]:
            return dict(self.loads)

    return Classifiers


def build_app(args: dict):
    """Serve builder (import path `workloads.serving.multiplex:build_app`)."""
    config = MultiplexAppArgs.model_validate(args)
    deployment = multiplexed_classifiers(config.max_models_per_replica)
    return deployment.options(**config.autoscaling.deployment_options(), ray_actor_options=config.actor_options()).bind(
        config.store
    )
