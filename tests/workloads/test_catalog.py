"""Every payload a stack can name exists in workloads/ with a builder the catalog's args fit."""

import importlib

import pytest

from workloads import catalog


@pytest.mark.parametrize("name", sorted(catalog.SERVICES))
def test_service_payload_builders_exist(name):
    payload = catalog.SERVICES[name]
    module, attribute = payload.import_path.split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


@pytest.mark.parametrize("name", sorted(catalog.JOBS))
def test_job_payload_modules_run_as_main(name):
    assert importlib.util.find_spec(f"{catalog.JOBS[name].module}.__main__") is not None
