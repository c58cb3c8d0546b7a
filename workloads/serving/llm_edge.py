"""The LLM app's edge: a replica ready only once it has made a token, and request limits
(`ChatLimits`) and a required `model`, checked before the engine and refused in OpenAI's error shape.

Ray Serve LLM takes HTTP in one of two places, so the one check is hooked into both:
- direct streaming (one model, no LoRA): the LLM server's replica serves vLLM's own FastAPI app;
  `LimitedLLMServer` wraps that app in `Limits`, an ASGI middleware, before the engine sees a byte;
- otherwise Ray Serve LLM's OpenAI ingress parses requests; `LimitedIngress` checks them there,
  so a refused request never reaches a model replica.
"""

import json
import os
import threading

from ray._common.usage.usage_lib import TagKey, record_extra_usage_tag, usage_stats_enabled
from ray.llm._internal.common.callbacks.base import CallbackBase
from ray.llm._internal.serve.constants import RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING
from ray.llm._internal.serve.observability.usage_telemetry.usage import push_telemetry_report_for_all_models
from ray.serve import get_replica_context
from ray.serve.llm.deployment import LLMServer
from ray.serve.llm.ingress import OpenAiIngress
from ray.serve.llm.openai_api_models import ChatCompletionRequest, CompletionRequest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from workloads.config import ChatLimits
from workloads.local import cores_of
from workloads.serving.errors import APIError, bounded_body, check_length

LIMITS_KEY = "rayplane_limits"  # LLMConfig.experimental_configs carries the limits to the server
CPU_SHARERS_KEY = "rayplane_cpu_sharers"  # and on a CPU, how many replicas share the machine's cores
LIMITED_PATHS = ("/v1/chat/completions", "/v1/completions")
USAGE_THREAD = "ray-serve-llm-usage"


def _text(content) -> str:
    """The text of a message's content: a string, or OpenAI's list of parts."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "".join(str(part.get("text") or "") for part in parts if isinstance(part, dict))


def _prompt_chars(body: dict) -> tuple[str, int]:
    """The prompt's field and its characters (a token id counts as one)."""
    if "messages" in body:
        messages = body["messages"] if isinstance(body["messages"], list) else []
        return "messages", sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict))
    prompt = body.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt]
    return "prompt", sum(len(p) if isinstance(p, (str, list)) else 1 for p in prompts if p is not None)


def check(body, limits: ChatLimits, served: list[str]) -> None:
    """Raise the APIError that refuses a chat or completion request's JSON `body`, if any. What is
    malformed otherwise is left to vLLM's own validation (400, the same shape)."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object", "invalid_request")
    model = body.get("model")
    if not model:
        raise APIError(400, f"model: required; this service serves {served}", "invalid_request", "model")
    if model not in served and str(model).split(":", 1)[0] not in served:  # "<base>:<adapter>": LoRA
        raise APIError(404, f"model {model!r} not found; this service serves {served}", "model_not_found", "model")
    for key in ("max_tokens", "max_completion_tokens"):
        asked = body.get(key)
        if isinstance(asked, int) and asked > limits.max_output_tokens:
            message = f"{key} {asked} exceeds this service's limit of {limits.max_output_tokens}"
            raise APIError(400, message, "invalid_value", key)
    param, chars = _prompt_chars(body)
    if chars > limits.max_prompt_chars:
        message = f"{param}: {chars} characters; at most {limits.max_prompt_chars} per request"
        raise APIError(413, message, "prompt_too_long", param)


# OpenAI's codes for vLLM's errors, which carry their HTTP status as the code.
CODES = {400: "invalid_request", 404: "not_found", 413: "request_too_large", 429: "rate_limit_exceeded"}


def _openai_error(status: int, body: bytes) -> bytes:
    """vLLM's error body in OpenAI's shape; any other body as it was."""
    try:
        error = json.loads(body)["error"]
        error["type"] = "invalid_request_error" if status < 500 else "server_error"
        if not isinstance(error.get("code"), str):
            error["code"] = CODES.get(status, "server_error")
    except (ValueError, KeyError, TypeError):
        return body
    return json.dumps({"error": error}).encode()


def openai_shaped(send: Send) -> Send:
    """`send`, with vLLM's error bodies in the shape ours have: vLLM puts its exception class in
    `type` and the status in `code`; OpenAI has `invalid_request_error` and a string. Only an error
    response is held back (to rewrite it whole); every other one streams through untouched."""
    held: dict = {}

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held.update(start=message, body=b"")
            return None
        if not held:
            return await send(message)
        held["body"] += message.get("body", b"")
        if message.get("more_body"):
            return None
        start, body = held["start"], _openai_error(held["start"]["status"], held["body"])
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        return await send({"type": "http.response.body", "body": body})

    return sending


class Limits:
    """ASGI middleware: reads a chat or completion body (bounded), checks it, and passes it on;
    vLLM's own errors leave it in OpenAI's shape."""

    def __init__(self, app: ASGIApp, limits: ChatLimits, served: list[str]):
        self.app, self.limits, self.served = app, limits, served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = openai_shaped(send)
        if scope["method"] != "POST" or not scope["path"].endswith(LIMITED_PATHS):
            return await self.app(scope, receive, send)
        try:
            body = await bounded_body(Request(scope, receive), self.limits.max_body_bytes())
            try:
                parsed = json.loads(body)
            except ValueError:
                raise APIError(400, "the request body is not JSON", "invalid_request") from None
            check(parsed, self.limits, self.served)
        except APIError as exc:
            return await exc.response()(scope, receive, send)
        replayed = False

        async def replay():  # the body once, as read; then what the client sends next (a disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class OnDisk(CallbackBase):
    """Ray Serve LLM's callback for a model already on the node's disk: no node initialization.
    That step only downloads a bucket's model, yet it runs as a Ray task in a worker of its own
    that imports vLLM first, on the engine's start path (serve/engines/vllm/vllm_engine.py@2.60.0:
    403-405; for a local path download_model_files returns it untouched)."""

    async def on_before_node_init(self) -> None:
        self.ctx.run_init_node = False


def _report_usage(config) -> None:
    """Ray Serve LLM's usage telemetry at an engine's start (core/server/llm_server.py@2.60.0:311-322)."""
    push_telemetry_report_for_all_models(all_models=[config])  # never raises
    if RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING:
        record_extra_usage_tag(TagKey.LLM_SERVE_DIRECT_STREAMING_ENABLED, "1")


class LimitedLLMServer(LLMServer):
    """Ray Serve LLM's server, ready once it has made a token, its vLLM app behind `Limits` (direct
    streaming)."""

    async def _start_engine(self):
        sharers = self._llm_config.experimental_configs.get(CPU_SHARERS_KEY)
        if sharers and (cores := cores_of(get_replica_context().rank.local_rank, sharers)):
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cores))  # read by the engine's process
        await self.engine.start()
        # Ray's own start then waits for its usage telemetry: a detached actor, which the first
        # replica's push creates in a fresh worker that imports vLLM (20 s of a start on 2 cores).
        # Sent from a thread instead, off the start path (and off the event loop: it blocks); not
        # at all where Ray's usage stats are off, which would never send it (RAY_USAGE_STATS_ENABLED=0).
        if usage_stats_enabled():
            threading.Thread(target=_report_usage, args=(self._llm_config,), name=USAGE_THREAD, daemon=True).start()

    async def __init__(self, llm_config, **kwargs):
        await super().__init__(llm_config, **kwargs)
        # Serve routes to a replica once its constructor returns; vLLM's first step is its slowest.
        # Sampled, as a chat at the model's own temperature is: on a CPU vLLM compiles its sampler at
        # the first sampled step (1.4-4.5 s here), which a user's first request then does not wait for.
        ready = CompletionRequest(model=self._llm_config.model_id, prompt="ready", max_tokens=1)
        async for answer in self.engine.completions(ready):
            if error := getattr(answer, "error", None):
                raise RuntimeError(f"the engine started but could not make a first token: {error.message}")

    async def __serve_build_asgi_app__(self):
        app = await super().__serve_build_asgi_app__()
        limits = ChatLimits.model_validate(self._llm_config.experimental_configs[LIMITS_KEY])
        app.middleware_stack = None  # vLLM built its stack already: Starlette rebuilds it with ours
        app.add_middleware(Limits, limits=limits, served=[self._llm_config.model_id])
        return app


class LimitedIngress(OpenAiIngress):
    """Ray Serve LLM's OpenAI ingress, checking chat and completion requests first."""

    def __init__(self, *args, limits: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._limits = ChatLimits.model_validate(limits)

    async def _refusal(self, request: Request) -> Response | None:
        try:
            check_length(request, self._limits.max_body_bytes())
            # The JSON as sent (FastAPI has read it already), not the parsed model: vLLM's models
            # fill in defaults (a completion's max_tokens) that the caller never asked for.
            check(json.loads(await request.body()), self._limits, list(self._model_cards))
        except APIError as exc:
            return exc.response()
        return None

    # The same signatures as the ingress's own: its routes parse the body by these annotations.
    async def chat(self, body: ChatCompletionRequest, request: Request) -> Response:
        return await self._refusal(request) or await super().chat(body, request)

    async def completions(self, body: CompletionRequest, request: Request) -> Response:
        return await self._refusal(request) or await super().completions(body, request)
