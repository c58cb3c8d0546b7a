"""One local Ray (and Serve on a free port) for all payload tests; models made locally."""

import os
import time

import pytest

from tools.local import ENV as LOCAL_ENV
from tools.local import free_port


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.2):
    """Poll `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not within {timeout_s:.0f}s")


def pytest_collection_modifyitems(items):
    """Tests that start their own local Ray (the `make local` tool) run first, before the shared
    test Ray exists: two local Rays on one machine contend for the dashboard agent's port."""
    items.sort(key=lambda item: item.get_closest_marker("own_ray") is None)


@pytest.fixture(scope="session")
def ray_session():
    # Workers inherit the driver's environment: vLLM's CPU backend and offline models.
    os.environ.update(LOCAL_ENV)
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
