"""The infrastructure lane: the Pulumi program under mocks. Needs only the program's own
dependencies (no Ray, vLLM or torch)."""

import functools
import shutil

import pytest
import yaml

from components.config import loading
from tools import render as render_tool
from tools.render import STACKS, Render, pulumi_config, render, stack_names


class Rendered(Render):
    """A render with the queries tests make."""

    def of_type(self, type_: str) -> list[dict]:
        return [r for r in self.resources if r["type"] == type_]

    def one(self, type_: str, name: str | None = None) -> dict:
        found = [r for r in self.of_type(type_) if name is None or r["name"] == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, found {[r['name'] for r in found]}"
        return found[0]


def besides_standing(warnings: list[str]) -> list[str]:
    """What a stack warns about besides what every shipped platform says: that its alerts reach no
    one (no stack file can hold its receivers: they are secrets)."""
    return [w for w in warnings if not w.startswith("alerting: no receivers")]


def _queryable(result: Render) -> Rendered:
    return Rendered(result.stack, result.resources, result.outputs, result.secret_outputs, result.warnings)


@functools.cache
def rendered(stack: str) -> Rendered:
    """Each stack file rendered once per test session (a render is read-only to the tests)."""
    return _queryable(render(stack))


def stack_values(stack: str) -> dict:
    """A stack file's config as plain data, to derive variants from."""
    return yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())["config"]


def render_values(stack: str, values: dict) -> Rendered:
    return _queryable(render(stack, pulumi_config(values)))


@pytest.fixture(params=stack_names())
def any_stack(request) -> Rendered:
    return rendered(request.param)


PLATFORM_STACKS = [s for s in stack_names() if stack_values(s)["rayplane:kind"] == "platform"]
TEAM_STACKS = [s for s in stack_names() if stack_values(s)["rayplane:kind"] == "team"]


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    """A copy of stacks/ that both the render tool and the program read (tests.infra.catalogue edits it)."""
    folder = tmp_path / "stacks"
    shutil.copytree(render_tool.STACKS, folder)
    monkeypatch.setattr(render_tool, "STACKS", folder)
    monkeypatch.setattr(loading, "STACKS", folder)
    return folder
