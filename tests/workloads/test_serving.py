"""The Serve payloads for real on a local Ray (CPU profile): HTTP in, real models out."""

import asyncio
import base64
import json
import os

import numpy as np
import openai
import pytest
import requests

from workloads.models import MINILM_DIM


def prompt_tokens(model_dir: str, messages: list[dict]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return len(encoded["input_ids"])


def test_llm_lists_the_model(llm):
    assert [m.id for m in llm.models.list().data] == ["tiny"]


def test_llm_chat_completion_counts_tokens(llm, tiny_llm):
    messages = [{"role": "user", "content": "What does Ray Serve do?"}]
    reply = llm.chat.completions.create(model="tiny", messages=messages, max_tokens=12, temperature=0)
    [choice] = reply.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert reply.usage.prompt_tokens == prompt_tokens(tiny_llm, messages)
    assert (
        reply.usage.completion_tokens == 12 if choice.finish_reason == "length" else reply.usage.completion_tokens > 0
    )
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_llm_streams_its_weights_into_the_engine(llm, weights_streamed):
    assert weights_streamed("tiny")  # the default load_format, runai_streamer: no copy, no default loader


def test_llm_streams_a_completion(llm):
    stream = llm.completions.create(
        model="tiny",
        prompt="KubeRay runs",
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text and len([c for c in chunks if c.choices]) > 1  # streamed, not one piece
    assert chunks[-1].usage.completion_tokens == 10


HI = [{"role": "user", "content": "hi"}]
LONG = "input_tokens"  # vLLM's param for a prompt over the context


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"messages": HI}, 400, "invalid_request", "model"),
        ({"model": "nope", "messages": HI}, 404, "model_not_found", "model"),
        ({"model": "tiny", "messages": HI, "max_tokens": 65}, 400, "invalid_value", "max_tokens"),
        ({"model": "tiny", "messages": HI, "max_completion_tokens": 65}, 400, "invalid_value", "max_completion_tokens"),
        (
            {"model": "tiny", "messages": [*HI, {"role": "user", "content": "x" * 1999}]},
            413,
            "prompt_too_long",
            "messages",
        ),
        ({"model": "tiny", "messages": HI, "padding": "x" * 80_000}, 413, "request_too_large", None),
        # Over the model's context (512 tokens), within our character limit: vLLM's own 400, in our shape.
        ({"model": "tiny", "messages": [{"role": "user", "content": "x " * 990}]}, 400, "invalid_request", LONG),
        ("[1, 2]", 400, "invalid_request", None),
        ("{not json", 400, "invalid_request", None),
    ],
)
def test_llm_refuses_requests_over_its_limits_in_openais_error_shape(llm, body, status, code, param):
    url = f"{llm.base_url}chat/completions"
    data = body if isinstance(body, str) else json.dumps(body)
    reply = requests.post(url, data=data, headers={"content-type": "application/json"}, timeout=60)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    completion = requests.post(f"{llm.base_url}completions", json={"model": "tiny", "prompt": "y" * 2001}, timeout=60)
    assert completion.status_code == 413 and completion.json()["error"]["param"] == "prompt"


def test_llm_errors_reach_the_openai_client_as_its_own_exceptions(llm):
    with pytest.raises(openai.NotFoundError) as missing:
        llm.chat.completions.create(model="nope", messages=HI, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="limit of 64") as over:
        llm.chat.completions.create(model="tiny", messages=HI, max_tokens=1000)
    for error in (missing.value, over.value):
        assert "ray." not in error.message and "Traceback" not in error.message
    reply = llm.chat.completions.create(model="tiny", messages=HI, temperature=0)  # no max_tokens: the limit
    assert reply.usage.completion_tokens <= 64


def test_ray_serve_llms_own_ingress_refuses_the_same_requests():
    """Several models, or LoRA: no direct streaming, Ray Serve LLM's OpenAI ingress takes HTTP and
    ours checks there, before a model replica (the same check; this is its wiring)."""
    from starlette.requests import Request

    from workloads.serving.llm_edge import LimitedIngress

    models = {"a": None, "b": None}  # handles and model cards: not reached by a refusal
    ingress = LimitedIngress(models, models, limits={"max_output_tokens": 8, "max_prompt_chars": 10})

    def refused(body: dict, length: int | None = None) -> dict | None:
        sent = json.dumps(body).encode()
        headers = [(b"content-length", str(length or len(sent)).encode())]
        request = Request({"type": "http", "headers": headers}, receive=lambda: receive(sent))
        response = asyncio.run(ingress._refusal(request))
        return response and {"status": response.status_code, **json.loads(response.body)["error"]}

    async def receive(sent: bytes) -> dict:
        return {"type": "http.request", "body": sent, "more_body": False}

    assert refused({"model": "a", "messages": HI, "max_tokens": 8}) is None
    assert refused({"model": "a", "prompt": "x"}) is None  # vLLM's default max_tokens (16) is not asked for
    assert refused({"messages": HI})["param"] == "model"
    assert "['a', 'b']" in refused({"messages": HI})["message"]
    assert refused({"model": "a", "messages": HI, "max_tokens": 9})["param"] == "max_tokens"
    assert refused({"model": "a", "prompt": "x" * 11})["status"] == 413
    assert refused({"model": "a", "prompt": "x"}, length=10**6)["code"] == "request_too_large"


@pytest.fixture(scope="module")
def embeddings(serve_url):
    from ray import serve

    from workloads.serving.embeddings import build_app

    limits = {"max_input_chars": 200, "max_inputs": 4, "max_request_chars": 300}  # a body of 6,152 bytes at most
    serve.run(build_app({"profile": "cpu", **limits}), name="embed", route_prefix="/embed")
    yield f"{serve_url}/embed/v1/embeddings"
    serve.delete("embed")


def test_embeddings_have_the_model_dimension_and_are_deterministic(embeddings):
    texts = ["GPUs on Kubernetes", "a cooking recipe", "GPUs on Kubernetes"]
    reply = requests.post(embeddings, json={"input": texts}, timeout=60).json()
    vectors = [np.array(d["embedding"]) for d in sorted(reply["data"], key=lambda d: d["index"])]
    assert len(vectors) == len(texts) and all(v.shape == (MINILM_DIM,) for v in vectors)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert reply["usage"]["prompt_tokens"] > len(texts)
    single = requests.post(embeddings, json={"input": "GPUs on Kubernetes"}, timeout=60).json()
    assert np.allclose(single["data"][0]["embedding"], vectors[0], atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ('{"input": ["unclosed"', 400, "invalid_request", None),  # malformed JSON
        ("{}", 400, "invalid_request", "input"),  # missing field
        (json.dumps({"input": []}), 400, "invalid_request", "input"),  # empty batch
        (json.dumps({"input": "hi", "model": "text-embedding-3-large"}), 404, "model_not_found", "model"),
        (json.dumps({"input": "x" * 201}), 413, "input_too_long", "input"),  # one input too long
        (json.dumps({"input": ["x" * 200, "y" * 200]}), 413, "input_too_long", "input"),  # too much in all
        (json.dumps({"input": ["a"] * 5}), 413, "too_many_inputs", "input"),
        (json.dumps({"input": "hi", "padding": "x" * 7000}), 413, "request_too_large", None),  # body
        (json.dumps({"input": "hi", "encoding_format": "int8"}), 400, "invalid_request", "encoding_format"),
    ],
)
def test_embeddings_refuse_bad_requests_in_openais_error_shape_and_stay_up(embeddings, body, status, code, param):
    reply = requests.post(embeddings, data=body, headers={"content-type": "application/json"}, timeout=60)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert error["message"] and "ray." not in error["message"] and "pydantic" not in error["message"]
    assert requests.post(embeddings, json={"input": "still up"}, timeout=60).status_code == 200


def test_base64_embeddings_are_the_float_ones_as_openai_packs_them_and_its_client_reads_them(embeddings):
    texts = ["GPUs on Kubernetes", "a cooking recipe"]
    floats = requests.post(embeddings, json={"input": texts}, timeout=60).json()["data"]
    packed = requests.post(embeddings, json={"input": texts, "encoding_format": "base64"}, timeout=60).json()["data"]
    unpacked = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in packed]
    # (Other requests may be batched with other texts: the same vector to float32's rounding.)
    assert all(np.allclose(u, f["embedding"], atol=1e-5) for u, f in zip(unpacked, floats, strict=True))
    client = openai.OpenAI(base_url=embeddings.removesuffix("/embeddings"), api_key="unused", max_retries=0)
    read = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts).data  # it asks for base64
    assert all(np.allclose(r.embedding, f["embedding"], atol=1e-5) for r, f in zip(read, floats, strict=True))


def test_the_openai_client_raises_its_own_exceptions_for_our_errors(embeddings):
    client = openai.OpenAI(base_url=embeddings.removesuffix("/embeddings"), api_key="unused", max_retries=0)
    assert len(client.embeddings.create(model="all-MiniLM-L6-v2", input=["hi"]).data[0].embedding) == MINILM_DIM
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.embeddings.create(model="text-embedding-3-large", input=["hi"])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="all-MiniLM-L6-v2", input=[])
    with pytest.raises(openai.APIStatusError, match="at most 4 per request") as exc:
        client.embeddings.create(model="all-MiniLM-L6-v2", input=["a"] * 5)
    assert exc.value.status_code == 413


def test_multiplexing_loads_on_demand_and_evicts_the_least_recently_used(deploy, tmp_path):
    from ray import serve

    from workloads.serving.multiplex import FEATURES, build_app, save_classifier

    rng = np.random.default_rng(0)
    for model_id in ("a", "b", "c"):
        save_classifier(str(tmp_path), model_id, rng.normal(size=(FEATURES, 2)).astype(np.float32), ["neg", "pos"])
    url = deploy(build_app({"profile": "cpu", "store": str(tmp_path), "max_models_per_replica": 2}), "multiplex")

    # Serve's throughput-optimized mode runs a handle's router on the caller's event loop: one loop
    # for every call through the (cached) handle.
    loop = asyncio.new_event_loop()

    def load_counts() -> dict:
        async def ask_replica():
            return await serve.get_app_handle("multiplex").load_counts.remote()

        return loop.run_until_complete(ask_replica())

    def ask(model_id: str) -> requests.Response:
        return requests.post(
            url, json={"text": "great GPUs"}, headers={"serve_multiplexed_model_id": model_id}, timeout=60
        )

    for model_id in ("a", "b", "a"):  # a stays the most recently used
        reply = ask(model_id)
        assert reply.status_code == 200 and reply.json()["model"] == model_id
    assert load_counts() == {"a": 1, "b": 1}
    assert ask("c").status_code == 200  # evicts b
    assert ask("a").status_code == 200  # still loaded
    assert ask("b").status_code == 200  # loaded again
    assert load_counts() == {"a": 1, "b": 2, "c": 1}
    assert ask("missing").status_code == 404 and "not found" in ask("missing").json()["error"]["message"]
    assert requests.post(url, json={"text": "x"}, timeout=60).status_code == 400  # no model id header


def test_composition_chains_the_stages(deploy):
    from workloads.serving.compose import build_app

    url = deploy(build_app({"profile": "cpu"}), "compose")
    reply = requests.post(url, json={"text": "  Training   and serving machine-learning models on GPUs "}, timeout=60)
    assert reply.status_code == 200
    result = reply.json()
    assert result["trace"] == ["preprocess", "embed", "postprocess"]
    assert result["label"] == "machine learning"
    refused = requests.post(url, data="not json", timeout=60)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"


def test_bucket_weights_become_a_cloud_mirror():
    from workloads.config import LLMAppArgs
    from workloads.serving.llm import llm_config

    app = LLMAppArgs(models=[{"model_id": "m", "model_source": "gs://models/m", "tensor_parallel_size": 2}])
    config = llm_config(app.models[0], app)
    assert config.model_loading_config.model_source.bucket_uri == "gs://models/m"
    assert config.engine_kwargs["tensor_parallel_size"] == 2 and config.accelerator_config.kind == "gpu"
    assert config.get_or_create_callback().ctx.run_init_node  # Ray Serve LLM downloads it on the node


def test_a_model_on_disk_starts_without_ray_serve_llms_download_task(llm, ray_context):
    """That task downloads a bucket's model only, yet costs a worker that imports vLLM first, on the
    engine's start path; for weights already on disk (the tiny model's) no worker runs it."""
    from pathlib import Path

    logs = Path(ray_context.address_info["session_dir"]) / "logs"
    assert llm.models.list().data  # the LLM app is up
    workers = [out.read_text() for out in logs.glob("worker-*.out")]  # each names what it ran
    assert any(":actor_name:ServeReplica:llm:LimitedLLMServer" in worker for worker in workers)
    assert not any(":task_name:initialize_remote_node" in worker for worker in workers)


def test_the_engine_starts_without_waiting_for_ray_serve_llms_usage_telemetry(monkeypatch):
    """Ray's start waits for its telemetry push, which the first time creates a detached actor in a
    worker that imports vLLM (20 s on 2 cores); ours sends it afterwards, from a thread, and not at
    all with Ray's usage stats off (as on a laptop), where Ray would never send it on."""
    import threading
    import time
    from types import SimpleNamespace

    from workloads.serving import llm_edge

    sent, release = [], threading.Event()

    def push(all_models):
        release.wait(60)
        sent.extend(all_models)

    monkeypatch.setattr(llm_edge, "push_telemetry_report_for_all_models", push)
    monkeypatch.setattr(llm_edge, "record_extra_usage_tag", lambda *args: None)

    class Engine:
        async def start(self):
            pass

    # (Its method alone: a server made with __new__ leaves Ray's async __del__ unawaited.)
    config = SimpleNamespace(experimental_configs={})
    server = SimpleNamespace(engine=Engine(), _llm_config=config)
    start = lambda: llm_edge.LimitedLLMServer._start_engine(server)  # noqa: E731
    pushing = lambda: [t for t in threading.enumerate() if t.name == llm_edge.USAGE_THREAD]  # noqa: E731
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    asyncio.run(asyncio.wait_for(start(), 10))
    assert not pushing()
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    asyncio.run(asyncio.wait_for(start(), 10))  # started, the push still blocked
    assert pushing() and not sent
    release.set()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent == [config]


def test_local_llm_replicas_bind_their_engines_to_cores_of_their_own(monkeypatch):
    """vLLM's CPU backend binds every engine to the same first cores: two replicas on a laptop
    computed on one core. Each replica's engine now binds its own share, read as vLLM reads it."""
    from types import SimpleNamespace

    from vllm.utils.ompmultiprocessing import OMPProcessManager

    from workloads.config import LLMAppArgs
    from workloads.serving import llm_edge
    from workloads.serving.llm import llm_config

    model = {"model_id": "m", "model_source": "/models/m", "autoscaling": {"min_replicas": 1, "max_replicas": 2}}
    app = LLMAppArgs(models=[model]).local()
    one_node = SimpleNamespace(local_world_size=1, data_parallel_rank_local=None, _api_process_count=1)
    bound = []

    class Engine:  # what vLLM's engine process will bind, from the environment it inherits
        async def start(self):
            vllm = SimpleNamespace(parallel_config=one_node, kv_transfer_config=None)
            bound.append(OMPProcessManager(vllm).cpu_lists[0])

    monkeypatch.setattr(llm_edge.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "auto")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")

    def start(app: LLMAppArgs, rank: int) -> None:
        context = SimpleNamespace(rank=SimpleNamespace(local_rank=rank))
        monkeypatch.setattr(llm_edge, "get_replica_context", lambda: context)
        server = SimpleNamespace(engine=Engine(), _llm_config=llm_config(app.models[0], app))
        asyncio.run(llm_edge.LimitedLLMServer._start_engine(server))

    for rank in (0, 1, 2):  # a third: one more replica on the node during a rollout
        start(app, rank)
    assert bound == [[0, 1], [2, 3], [0, 1]]
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "auto")
    start(LLMAppArgs(models=[model | {"autoscaling": {"max_replicas": 1}}]).local(), 0)
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "auto"  # one replica: vLLM's own binding


def test_the_engine_runs_with_the_sizes_the_stack_checked():
    """max_num_seqs and gpu_memory_utilization reach vLLM; a share of a GPU becomes Ray Serve LLM's
    placement bundle, which it also hands to vLLM's workers (VLLM_RAY_PER_WORKER_GPUS)."""
    from workloads.config import LLMAppArgs
    from workloads.serving.llm import llm_config

    model = {"model_id": "m", "model_source": "/models/m", "num_gpus": 0.5, "max_num_seqs": 8}
    app = LLMAppArgs(models=[model], accelerator_type="L4")
    config = llm_config(app.models[0], app)
    assert (config.engine_kwargs["max_num_seqs"], config.engine_kwargs["gpu_memory_utilization"]) == (8, 0.45)
    engine = config.get_engine_config()
    assert engine.placement_bundles == [{"GPU": 0.5, "accelerator_type:L4": 0.001}]
    assert engine.get_runtime_env_with_local_env_vars()["env_vars"]["VLLM_RAY_PER_WORKER_GPUS"] == "0.5"
    whole = LLMAppArgs(models=[{**model, "num_gpus": None, "tensor_parallel_size": 2}])
    config = llm_config(whole.models[0], whole)
    assert config.engine_kwargs["gpu_memory_utilization"] == 0.9 and config.placement_group_config is None
    laptop = llm_config(app.local().models[0], app.local())
    assert "gpu_memory_utilization" not in laptop.engine_kwargs and laptop.engine_kwargs["max_num_seqs"] == 8


def test_one_plain_model_streams_straight_from_the_llm_server():
    """Direct streaming is Ray Serve LLM's for one model without LoRA; a local Ray shared by several
    payloads keeps what they agree on and Ray's default for the rest."""
    from tools.local import serve_env
    from workloads.config import DIRECT_STREAMING, EmbeddingAppArgs, LLMAppArgs

    model = {"model_id": "m", "model_source": "/models/m"}
    one = LLMAppArgs(models=[model])
    two = LLMAppArgs(models=[model, {**model, "model_id": "n"}])
    lora = LLMAppArgs(models=[{**model, "lora": {"dynamic_lora_loading_path": "/adapters"}}])
    assert one.serve_env()[DIRECT_STREAMING] == "1"
    assert two.serve_env()[DIRECT_STREAMING] == lora.serve_env()[DIRECT_STREAMING] == "0"
    assert one.serve_env()["RAY_SERVE_ENABLE_HA_PROXY"] == EmbeddingAppArgs().serve_env()["RAY_SERVE_ENABLE_HA_PROXY"]
    assert serve_env([one, EmbeddingAppArgs()])[DIRECT_STREAMING] == "1"
    shared = serve_env([one, two])
    assert DIRECT_STREAMING not in shared and shared["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"


def test_routing_and_caching_reach_ray_serve_llm_and_vllm():
    """The prefix-aware router becomes the LLM deployment's request router, with its parameters, and
    HAProxy hands it the body it routes on; prefix caching and KV offload reach vLLM's engine, the
    offload only where vLLM has it (on GPUs: its CPU backend's KV cache is host memory already)."""
    from ray.serve.config import RequestRouterConfig

    from workloads.config import FORWARD_BODY, LLMAppArgs
    from workloads.serving.llm import llm_config
    from workloads.serving.routing import PrefixRouter

    model = {"model_id": "m", "model_source": "/models/m", "kv_offload_gib": 8}
    routed = {**model, "routing": {"router": "prefix_aware", "imbalanced_threshold": 4, "max_tree_chars": 100_000}}
    app = LLMAppArgs(models=[routed])
    config = llm_config(app.models[0], app)
    router = RequestRouterConfig(**config.deployment_config["request_router_config"])
    assert router.get_request_router_class().__name__ == PrefixRouter.__name__  # pickled by value
    assert router.request_router_kwargs == {
        "imbalanced_threshold": 4,
        "match_rate_threshold": 0.5,
        "do_eviction": True,
        "eviction_threshold_chars": 100_000,
        "eviction_target_chars": 90_000,
    }
    assert app.serve_env()[FORWARD_BODY] == "1"
    assert config.engine_kwargs["enable_prefix_caching"] is True and config.engine_kwargs["kv_offloading_size"] == 8
    assert "kv_offloading_size" not in llm_config(app.local().models[0], app.local()).engine_kwargs
    plain = LLMAppArgs(models=[{**model, "kv_offload_gib": None, "prefix_caching": False}])
    config = llm_config(plain.models[0], plain)
    assert "request_router_config" not in config.deployment_config and FORWARD_BODY not in plain.serve_env()
    assert config.engine_kwargs["enable_prefix_caching"] is False


def test_the_prefix_router_loads_without_vllm(tmp_path):
    """Serve's proxy and the LLM router replica unpickle the request router while the engine starts,
    outside the app's code: loading it imports no vLLM (17 s of CPU and 0.5 GB in each of them)."""
    import subprocess
    import sys

    from ray.serve.config import RequestRouterConfig

    from workloads.config import PREFIX_ROUTER

    pickled = RequestRouterConfig(request_router_class=PREFIX_ROUTER).get_serialized_request_router_cls()
    load = "import sys, pickle; print(pickle.loads(sys.stdin.buffer.read()).__name__, 'vllm' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", load], input=pickled, cwd=tmp_path, capture_output=True, check=True)
    assert loaded.stdout.splitlines()[-1].split() == [b"PrefixRouter", b"False"]


def test_the_prefix_router_routes_a_request_without_a_prompt_by_load():
    """Serve's Python proxy, HAProxy's fallback while it reloads, hands the router the raw HTTP
    request: Ray's router raises on it (a 500); ours finds no text and Ray then picks by load."""
    from types import SimpleNamespace

    from ray.serve.llm.request_router import PrefixCacheAffinityRouter

    from workloads.serving.routing import PrefixRouter

    raw = SimpleNamespace(args=[{"type": "http"}], kwargs={})
    with pytest.raises(ValueError, match="No request with message or prompt"):
        PrefixCacheAffinityRouter._extract_text_from_request(PrefixRouter.__new__(PrefixRouter), raw)
    router = PrefixRouter.__new__(PrefixRouter)  # no Serve around it: only the extraction is exercised
    assert router._extract_text_from_request(raw) is None
    assert router._extract_text_from_request(SimpleNamespace(args=[SimpleNamespace(prompt="hi")])) == "hi"


SYSTEM = {"role": "system", "content": "You answer questions about Ray Serve, briefly and exactly. " * 6}


def turns(topic: str) -> list[list[dict]]:
    """A conversation's first two turns after the shared system prompt."""
    first = [SYSTEM, {"role": "user", "content": f"Tell me about {topic}. " * 30}]
    reply = [{"role": "assistant", "content": f"{topic} is..."}, {"role": "user", "content": "More."}]
    return [first, [*first, *reply]]


def prefix_router(tree):
    """Our router as Serve builds it for the shipped `prefix_aware` settings, on `tree` (an actor)."""
    from ray.serve._private.common import DeploymentHandleSource, DeploymentID

    from workloads.config import Routing
    from workloads.serving.routing import PrefixRouter

    kwargs = Routing(router="prefix_aware").deployment_config()["request_router_config"]["request_router_kwargs"]
    router = PrefixRouter(
        deployment_id=DeploymentID(name="chat"),
        handle_source=DeploymentHandleSource.REPLICA,
        use_replica_queue_len_cache=True,
    )
    router.initialize_state(**kwargs, tree_actor=tree)
    return router


def replicas(*names: str) -> list:
    from ray.serve._private.test_utils import FakeRunningReplica

    made = [FakeRunningReplica(name) for name in names]
    for replica in made:
        replica.set_queue_len_response(0)
    return made


async def pick(router, messages: list[dict]) -> str:
    """The replica the router names first for a chat request: what Serve's router does without a
    reservation (behind HAProxy)."""
    from types import SimpleNamespace

    from ray.serve._private.common import RequestMetadata
    from ray.serve._private.request_router.common import PendingRequest

    meta = RequestMetadata(request_id="r", internal_request_id="r")
    ranks = router._choose_replicas_with_backoff(PendingRequest([SimpleNamespace(messages=messages)], {}, meta))
    try:
        return (await ranks.__anext__())[0].replica_id.unique_id
    finally:
        await ranks.aclose()


def test_the_prefix_router_learns_from_the_replicas_it_picks(ray_session):
    """Behind HAProxy, Ray's LLMRouter only asks for a replica (`choose_replica(_reserve=False)`) and
    Serve never tells the router what it sent: Ray's router then put every request on one replica.
    Ours keeps each conversation on the replica that holds its history, and spreads conversations
    that share only a system prompt, with the shipped thresholds."""
    from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_tree import PrefixTreeActor

    async def picks() -> list[str]:
        router = prefix_router(PrefixTreeActor.remote())
        router.update_replicas(replicas("a", "b"))
        (one, one_again), (two, two_again) = turns("autoscaling"), turns("multiplexing")
        return [await pick(router, m) for m in (one, two, one_again, two_again)]

    one, two, one_again, two_again = asyncio.run(picks())
    assert (one_again, two_again) == (one, two) and one != two


def test_the_prefix_router_asks_nothing_for_one_replica_and_still_learns(ray_session):
    """With one replica there is nothing to choose: no round trip to the tree per request (Ray's
    router makes two, blocking, and probes the queue). The prompts are still remembered, so after
    a scale-out each conversation's next turn goes where its history is, a new one elsewhere."""
    import ray
    from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_tree import PrefixTree

    @ray.remote
    class CountingTree(PrefixTree):
        def __init__(self):
            super().__init__()
            self.lookups = 0

        def prefix_match(self, *args, **kwargs):
            self.lookups += 1
            return super().prefix_match(*args, **kwargs)

        def get_smallest_tenants(self):
            self.lookups += 1
            return super().get_smallest_tenants()

        def counted(self) -> int:
            return self.lookups

    async def picks() -> tuple[list[str], int, list[str]]:
        router = prefix_router(tree := CountingTree.remote())
        a, b = replicas("a", "b")
        router.update_replicas([a])
        (one, one_again), (two, two_again) = turns("autoscaling"), turns("multiplexing")
        alone = [await pick(router, m) for m in (one, two)]
        lookups = await tree.counted.remote()
        router.update_replicas([a, b])  # Serve scaled out
        return alone, lookups, [await pick(router, m) for m in (one_again, two_again, turns("batching")[0])]

    alone, lookups, after = asyncio.run(picks())
    assert alone == ["a", "a"] and lookups == 0
    assert after == ["a", "a", "b"]
