"""Golden renders: a change to what any stack deploys shows up here and must be accepted on purpose
with `make golden` (then review `git diff tests/golden`)."""

import difflib
from pathlib import Path

import pytest

from tests.infra.conftest import rendered
from tools.render import ROOT, stack_names, write

GOLDEN = ROOT / "tests" / "golden"


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", stack_names())
def test_render_matches_golden(stack, tmp_path):
    write(rendered(stack), tmp_path)
    expected, actual = _files(GOLDEN / stack), _files(tmp_path)
    assert sorted(actual) == sorted(expected), "files differ; run `make golden` and review the diff"
    for name, text in actual.items():
        if text != expected[name]:
            diff = "".join(
                list(difflib.unified_diff(expected[name].splitlines(True), text.splitlines(True), name, name))[:60]
            )
            pytest.fail(f"{stack}/{name} drifted from tests/golden (run `make golden` to accept):\n{diff}")


def test_every_golden_folder_has_a_stack():
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == stack_names()
