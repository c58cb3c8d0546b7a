"""One local Ray (and Serve on a free port) for all payload tests; models made locally."""

import json
import os
from pathlib import Path

import pytest

from workloads.config import DIRECT_STREAMING, SERVE_ENV
from workloads.local import ENV as LOCAL_ENV
from workloads.local import free_port

# Workers inherit the driver's environment: vLLM's CPU backend and offline models, and Serve's
# high-throughput mode (HAProxy, gRPC between deployments) and direct LLM streaming, as the cluster
# runs a stack with one LLM. Set before any test module imports Ray: Serve reads its settings when
# it is imported (ray/serve/_private/constants.py), in the driver too.
os.environ.update({**LOCAL_ENV, **SERVE_ENV, DIRECT_STREAMING: "1"})


@pytest.fixture(scope="session")
def ray_context():
    import ray

    yield ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_session(ray_context):
    import ray

    return ray


@pytest.fixture(scope="session")
def weights_streamed(ray_context):
    """Whether every vLLM engine serving `served` (its served model name) so far read its weights
    with Run:ai's streamer: the worker's stdout has the engine's config, its stderr the loader's
    progress (log_to_driver is off: both stay in the session's logs)."""
    logs = Path(ray_context.address_info["session_dir"]) / "logs"

    def check(served: str) -> bool:
        engines = [out for out in logs.glob("worker-*.out") if f"served_model_name={served}," in out.read_text()]
        return bool(engines) and all(
            "Loading safetensors using Runai Model Streamer" in out.with_suffix(".err").read_text() for out in engines
        )

    return check


@pytest.fixture(scope="session")
def serve_url(ray_session):
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"  # Serve stops with the session's Ray


@pytest.fixture
def deploy(serve_url):
    """deploy(app, name) -> the app's base URL; the app is deleted after the test."""
    from ray import serve

    names = []

    def run(app, name: str) -> str:
        serve.run(app, name=name, route_prefix=f"/{name}")
        names.append(name)
        return f"{serve_url}/{name}"

    yield run
    for name in names:
        serve.delete(name)


@pytest.fixture(scope="session")
def tiny_llm() -> str:
    from workloads.local.tiny_llm import ensure

    return str(ensure())


FIGURES = Path(__file__).resolve().parents[2] / "build" / "load-figures.json"


@pytest.fixture(scope="session")
def figures():
    """What the load and fault tests measured (requests, errors, latencies, recovery, rows), kept in
    build/load-figures.json for the record: the tests assert on them, the file only reports them."""
    measured: dict = {}
    yield measured
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(measured, indent=2) + "\n")


@pytest.fixture(scope="session")
def llm(serve_url, tiny_llm):
    """The tiny LLM behind Ray Serve LLM, with small limits; an OpenAI client for it."""
    import openai
    from ray import serve

    from workloads.serving.llm import build_app

    model = {"model_id": "tiny", "model_source": tiny_llm, "max_model_len": 512}
    limits = {"max_output_tokens": 64, "max_prompt_chars": 2000}  # a body of 77,536 bytes at most
    serve.run(build_app({"profile": "cpu", "models": [model], "limits": limits}), name="llm", route_prefix="/llm")
    return openai.OpenAI(base_url=f"{serve_url}/llm/v1", api_key="unused", max_retries=0, timeout=120)
