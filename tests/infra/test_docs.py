"""README.md's reference tables are generated from the models, and every field says what it is."""

import typing

import pytest
from pydantic import BaseModel

from components.config import PlatformStack, TeamStack
from components.contract import PlatformExports
from tools import docs
from workloads import catalog


def test_readme_tables_are_what_the_models_say():
    current = docs.README.read_text()
    assert docs.generate(current) == current, "README.md drifted from the models: run `make docs`"
    assert docs.main(["--check"]) == 0


def test_a_drifted_readme_is_caught(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(docs.README.read_text().replace("| `cluster.gatewayApi` |", "| `cluster.gatewayAPI` |"))
    monkeypatch.setattr(docs, "README", stale)
    assert docs.main(["--check"]) == 1
    assert "run `make docs`" in capsys.readouterr().err


def _models(model: type[BaseModel], seen: set) -> set:
    """`model` and every model its fields hold, however nested."""
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        for arg in [field.annotation, *_flatten(field.annotation)]:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)
    return seen


def _flatten(annotation) -> list:
    args = list(typing.get_args(annotation))
    return args + [a for arg in args for a in _flatten(arg)]


ROOTS = [PlatformStack, TeamStack, PlatformExports, *(p.args for p in {**catalog.SERVICES, **catalog.JOBS}.values())]


@pytest.mark.parametrize("root", ROOTS, ids=lambda m: m.__name__)
def test_every_field_has_a_description(root):
    missing = [
        f"{model.__name__}.{name}"
        for model in _models(root, set())
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert not missing


def test_every_payload_is_in_the_readme():
    readme = docs.README.read_text()
    for name in [*catalog.SERVICES, *catalog.JOBS]:
        assert f"| `{name}` |" in readme and f"**`{name}`** args" in readme
