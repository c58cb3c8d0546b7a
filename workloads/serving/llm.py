"""OpenAI-compatible LLM serving with Ray Serve LLM (vLLM engine): /v1/models, /v1/chat/completions,
/v1/completions, streaming; several models per app; LoRA adapters multiplexed per request.

The `profile` only moves the engine: "cluster" places it on GPUs (tensor/pipeline parallel),
"cpu" runs vLLM's CPU backend with no CPU reservations (a laptop, the tests).
"""

import os

from ray.serve.llm import LLMConfig, build_openai_app

from workloads.config import CPU_ENGINE, DIRECT_STREAMING, LLMAppArgs, LLMModel
from workloads.serving.llm_edge import CPU_SHARERS_KEY, LIMITS_KEY, LimitedIngress, LimitedLLMServer, OnDisk


def llm_config(model: LLMModel, app: LLMAppArgs) -> LLMConfig:
    engine = {
        "tensor_parallel_size": model.tensor_parallel_size,
        "pipeline_parallel_size": model.pipeline_parallel_size,
        "max_num_seqs": model.max_num_seqs,  # what the stack's fit check reserved KV cache for
        "load_format": model.load_format,  # streamed: Ray Serve LLM hands vLLM the gs:// prefix itself
        "enable_prefix_caching": model.prefix_caching,
        # A request that sets no max_tokens gets the limit (vLLM takes the least of this and the context left).
        "override_generation_config": {"max_new_tokens": app.limits.max_output_tokens},
    }
    if model.max_model_len:
        engine["max_model_len"] = model.max_model_len
    deployment = {
        "autoscaling_config": model.autoscaling.model_dump(),
        "max_ongoing_requests": model.max_ongoing_requests,
        **model.routing.deployment_config(),
    }
    placement, experimental = {}, {LIMITS_KEY: app.limits.model_dump()}
    if app.profile == "cluster":
        engine["gpu_memory_utilization"] = model.memory_utilization
        if model.kv_offload_gib:  # vLLM's native offloading (GPUs only), the replica's size over its ranks
            engine["kv_offloading_size"] = model.kv_offload_gib
        if model.num_gpus:  # a share of one GPU: Ray Serve LLM passes it to vLLM's Ray workers
            placement = {"placement_group_config": {"bundle_per_worker": {"GPU": model.num_gpus}}}
    else:
        # Eager, and the local models' own dtype: vLLM's CPU default, bf16, died with SIGILL in a Ray
        # worker on an Intel Xeon with AMX (not outside Ray); float32 runs everywhere.
        engine |= CPU_ENGINE
        deployment["ray_actor_options"] = app.actor_options()
        placement = {"accelerator_config": {"kind": "cpu"}}  # else the replica waits for a GPU forever
        experimental[CPU_SHARERS_KEY] = model.autoscaling.max_replicas  # the replicas that share the cores
    source, callback = model.model_source, {"callback_class": OnDisk}
    if source.startswith(("gs://", "s3://")):  # a bucket: Ray Serve LLM copies it to the node, or streams it
        source, callback = {"bucket_uri": source}, {}
    return LLMConfig(
        model_loading_config={"model_id": model.model_id, "model_source": source},
        engine_kwargs=engine,
        deployment_config=deployment,
        accelerator_type=app.accelerator_type if app.profile == "cluster" else None,
        lora_config=model.lora.model_dump() if model.lora else None,
        server_cls=LimitedLLMServer,
        callback_config=callback,
        experimental_configs=experimental,
        **placement,
    )


def build_app(args: dict):
    """Serve builder (import path `workloads.serving.llm:build_app`)."""
    app = LLMAppArgs.model_validate(args)
    serving = {"llm_configs": [llm_config(model, app) for model in app.models]}
    # With direct streaming (serve_env) the LLM server itself is the ingress: no ingress to configure.
    if os.environ.get(DIRECT_STREAMING) != "1":
        serving["ingress_cls_config"] = {
            "ingress_cls": LimitedIngress,
            "ingress_extra_kwargs": {"limits": app.limits.model_dump()},
        }
        if app.profile == "cpu":
            serving["ingress_deployment_config"] = {"ray_actor_options": app.actor_options()}
    return build_openai_app(serving)
