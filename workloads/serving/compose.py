"""Model composition: an ingress chains three deployments through DeploymentHandles,
preprocess -> embed -> postprocess, handing each DeploymentResponse straight to the next stage
(no await in between, so Ray moves the data stage to stage). Each stage scales on its own.

What it does: zero-shot topic tagging, the input's MiniLM embedding against label descriptions.
"""

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request

from workloads.config import ComposeAppArgs
from workloads.models import load_minilm
from workloads.serving.errors import APIError


@serve.deployment
class Preprocess:
    def __init__(self, max_input_chars: int):
        self.max_input_chars = max_input_chars

    def __call__(self, text: str) -> dict:
        clean = " ".join(text.split())[: self.max_input_chars]
        return {"text": clean, "trace": ["preprocess"]}


@serve.deployment
class Embed:
    def __init__(self, device: str, labels: dict[str, str]):
        self.model = load_minilm(device)
        self.labels = list(labels)
        self.label_vectors = self.model.encode(list(labels.values()), normalize_embeddings=True)

    def __call__(self, item: dict) -> dict:
        vector = self.model.encode([item["text"]], normalize_embeddings=True)[0]
        similarity = self.label_vectors @ vector
        return {
            **item,
            "similarity": dict(zip(self.labels, similarity.tolist(), strict=True)),
            "trace": [*item["trace"], "embed"],
        }


@serve.deployment
class Postprocess:
    def __call__(self, item: dict) -> dict:
        label, score = max(item["similarity"].items(), key=lambda kv: kv[1])
        return {"label": label, "score": round(float(score), 4), "trace": [*item["trace"], "postprocess"]}


@serve.deployment
class Pipeline:
    def __init__(self, preprocess: DeploymentHandle, embed: DeploymentHandle, postprocess: DeploymentHandle):
        self.preprocess, self.embed, self.postprocess = preprocess, embed, postprocess

    async def __call__(self, request: Request):
        try:
            text = (await request.json())["text"]
            if not isinstance(text, str) or not text.strip():
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return APIError(400, 'send a JSON body {"text": "<non-empty text>"}', "invalid_request", "text").response()
        cleaned = self.preprocess.remote(text)
        embedded = self.embed.remote(cleaned)  # a DeploymentResponse passed on, not awaited
        return await self.postprocess.remote(embedded)


def build_app(args: dict):
    """Serve builder (import path `workloads.serving.compose:build_app`)."""
    config = ComposeAppArgs.model_validate(args)
    light = config.actor_options()
    return Pipeline.options(num_replicas=config.front_replicas(), ray_actor_options=light).bind(
        Preprocess.options(ray_actor_options=light).bind(config.max_input_chars),
        Embed.options(ray_actor_options=config.actor_options(config.num_gpus)).bind(
            config.device(config.num_gpus), config.labels
        ),
        Postprocess.options(ray_actor_options=light).bind(),
    )
