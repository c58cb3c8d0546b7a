"""Test lanes: tests/infra (the Pulumi program; its own dependencies only), tests/workloads (the
payloads on a local Ray), tests/local (the local tool end to end). Tests marked `gpu` run only
where an NVIDIA GPU is visible."""

import functools
import subprocess
import time

import pytest


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.2):
    """Poll `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not within {timeout_s:.0f}s")


@functools.cache
def gpu_visible() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(items):
    # Tests that start their own local Ray (the `make local` tool) run first, before the shared
    # test Ray exists: two local Rays on one machine contend for the dashboard agent's port.
    items.sort(key=lambda item: item.get_closest_marker("own_ray") is None)
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_tests and not gpu_visible():
        skip = pytest.mark.skip(reason="no NVIDIA GPU visible (nvidia-smi -L): run `make test-gpu` on a GPU machine")
        for item in gpu_tests:
            item.add_marker(skip)
