import functools

import pytest
import yaml

from tools.render import STACKS, Render, pulumi_config, render, stack_names


@functools.cache
def rendered(stack: str) -> Render:
    """Each stack file rendered once per test session (a render is read-only to the tests)."""
    return render(stack)


def stack_values(stack: str) -> dict:
    """A stack file's config as plain data, to derive variants from."""
    return yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


def render_values(stack: str, values: dict) -> Render:
    return render(stack, pulumi_config(values))


@pytest.fixture(params=stack_names())
def any_stack(request) -> Render:
    return rendered(request.param)


PLATFORM_STACKS = [s for s in stack_names() if stack_values(s)["rayplane:kind"] == "platform"]
TEAM_STACKS = [s for s in stack_names() if stack_values(s)["rayplane:kind"] == "team"]
