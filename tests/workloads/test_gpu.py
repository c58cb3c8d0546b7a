"""The cluster profile's GPU paths for real: fractional GPUs shared by Serve replicas inside one
Ray node (embedding models, and vLLM engines each held to its share of the GPU's memory), and the
batch job's model actors on a GPU. Run where an NVIDIA GPU and CUDA builds of
torch are installed (`make test-gpu`); skipped elsewhere."""

import numpy as np
import openai
import pytest
import requests

from tests.conftest import wait_for
from tests.workloads.test_batch import dataset
from workloads.batch.pipeline import run
from workloads.config import BatchJobArgs
from workloads.models import MINILM_DIM

pytestmark = pytest.mark.gpu


def test_two_half_gpu_embedding_replicas_share_one_gpu(ray_session, deploy):
    from ray import serve

    from workloads.serving.embeddings import build_app

    gpus = ray_session.cluster_resources()["GPU"]
    args = {"num_gpus": 0.5, "autoscaling": {"min_replicas": 2, "max_replicas": 2}}  # profile: cluster
    url = deploy(build_app(args), "embed-gpu")

    def replicas_running():
        deployment = serve.status().applications["embed-gpu"].deployments["Embedder"]
        return deployment.replica_states.get("RUNNING") == 2

    wait_for(replicas_running, 120, "two Embedder replicas")
    assert ray_session.available_resources().get("GPU", 0) == pytest.approx(gpus - 1.0)  # 2 x 0.5
    reply = requests.post(f"{url}/v1/embeddings", json={"input": ["GPUs on Kubernetes"] * 8}, timeout=60)
    assert reply.status_code == 200
    vectors = np.array([d["embedding"] for d in reply.json()["data"]])
    assert vectors.shape == (8, MINILM_DIM) and np.allclose(vectors, vectors[0], atol=1e-4)


def test_two_half_gpu_llm_replicas_share_one_gpu(ray_session, deploy, tiny_llm):
    """Each engine takes gpu_memory_utilization 0.45 (0.9 of its half): the second one still finds
    its memory free, which the stack's fit check counts on."""
    from ray import serve

    from workloads.serving.llm import build_app

    gpus = ray_session.cluster_resources()["GPU"]
    model = {
        "model_id": "tiny",
        "model_source": tiny_llm,
        "num_gpus": 0.5,
        "max_model_len": 512,
        "autoscaling": {"min_replicas": 2, "max_replicas": 2},
    }
    url = deploy(build_app({"models": [model]}), "llm-gpu")  # profile: cluster

    def engines_running():
        deployments = serve.status().applications["llm-gpu"].deployments
        return any(name.startswith("LLM") and d.replica_states.get("RUNNING") == 2 for name, d in deployments.items())

    wait_for(engines_running, 600, "two LLM replicas on one GPU")
    assert ray_session.available_resources().get("GPU", 0) == pytest.approx(gpus - 1.0)  # 2 x 0.5
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert reply.choices[0].message.content


def test_batch_embedding_actors_run_on_the_gpu(ray_session, tmp_path):
    dataset(tmp_path / "in.jsonl", 500)
    args = BatchJobArgs(input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out"), num_gpus=1, preprocess_tasks=2)
    assert args.actor_options(args.num_gpus) == {"num_gpus": 1} and args.device(args.num_gpus) == "cuda"
    summary = run(args)
    assert summary.complete and summary.rows_read == 500 and summary.rows_written > 450
