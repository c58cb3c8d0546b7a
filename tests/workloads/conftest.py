"""One local Ray (and Serve on a free port) for all payload tests; models made locally."""

import os

import pytest

from workloads.config import SERVE_ENV
from workloads.local import ENV as LOCAL_ENV
from workloads.local import free_port


@pytest.fixture(scope="session")
def ray_session():
    # Workers inherit the driver's environment: vLLM's CPU backend and offline models, and Serve's
    # high-throughput mode (HAProxy, gRPC between deployments) as the cluster runs it.
    os.environ.update({**LOCAL_ENV, **SERVE_ENV})
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_url(ray_session):
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


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
