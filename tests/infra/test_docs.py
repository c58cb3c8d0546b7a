"""The docs: README.md short, with working links; docs/' reference tables generated from the models
(every field says what it is); the module list of docs/architecture.md is the tree."""

import re
import shutil
import subprocess
import typing

import pytest
from pydantic import BaseModel

from components.config import PlatformStack, TeamStack
from components.contract import PlatformExports
from tools import docs
from tools.render import ROOT
from workloads import catalog


def test_the_generated_tables_are_what_the_models_say():
    for path in docs.DOCS.glob("*.md"):
        current = path.read_text()
        assert docs.generate(current) == current, f"docs/{path.name} drifted from the models: run `make docs`"
    assert docs.main(["--check"]) == 0


def test_a_drifted_or_missing_table_is_caught(tmp_path, monkeypatch, capsys):
    shutil.copytree(docs.DOCS, tmp_path / "docs")
    monkeypatch.setattr(docs, "DOCS", tmp_path / "docs")
    config = tmp_path / "docs" / "config.md"
    config.write_text(config.read_text().replace("| `cluster.gatewayApi` |", "| `cluster.gatewayAPI` |"))
    assert docs.main(["--check"]) == 1
    assert "out of date: docs/config.md: run `make docs`" in capsys.readouterr().err
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0  # `make docs` mends it
    requirements = tmp_path / "requirements.txt"  # a generated file: the image's requirements
    monkeypatch.setattr(docs, "FILES", {requirements: lambda: "sentence-transformers==6.2.0\n"})
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    requirements.write_text("sentence-transformers==6.1.0\n")
    assert docs.main(["--check"]) == 1 and "out of date: requirements.txt" in capsys.readouterr().err
    assert docs.main([]) == 0 and requirements.read_text() == "sentence-transformers==6.2.0\n"
    (tmp_path / "docs" / "capacity.md").unlink()
    assert docs.main(["--check"]) == 1
    assert "docs/ lacks the generated section capacity-facts" in capsys.readouterr().err


def test_the_readme_is_short_and_every_link_in_the_docs_leads_somewhere():
    readme = ROOT / "README.md"
    assert len(readme.read_bytes()) < 15 * 1024
    for page in [readme, *docs.DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


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


def test_every_payload_is_in_the_docs():
    payloads = (docs.DOCS / "payloads.md").read_text()
    for name in [*catalog.SERVICES, *catalog.JOBS]:
        assert f"| `{name}` |" in payloads and f"**`{name}`** args" in payloads


def module_list(text: str) -> list[str]:
    """The paths of docs/architecture.md's module list (folders end in `/`, two spaces a level)."""
    block = text.split("<!-- modules -->\n```\n", 1)[1].split("```", 1)[0]
    folders, paths = [], []
    for line in block.splitlines():
        depth, name = (len(line) - len(line.lstrip())) // 2, line.split()[0]
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name)
        else:
            paths.append("".join(folders) + name)
    return paths


def test_the_module_list_is_every_module_once():
    listed = module_list((docs.DOCS / "architecture.md").read_text())
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = [path for path in tracked.stdout.split() if not path.startswith("tests/")]
    assert sorted(listed) == sorted(modules) and len(listed) == len(set(listed))
