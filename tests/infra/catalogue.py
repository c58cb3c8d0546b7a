"""Tables of stack configs: a shipped stack file with some keys changed, run through the offline
render as `pulumi up` would run the program (the `stacks` fixture gives the copy it edits)."""

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools import render as render_tool

DELETE = object()


@dataclass
class Case:
    id: str
    stack: str
    edits: dict  # dotted key path (the first part without "rayplane:") -> new value or DELETE
    errors: list[str]


def edit(values: dict, path: str, value) -> None:
    first, *rest = path.split(".")
    keys = [first if ":" in first else f"rayplane:{first}", *(int(k) if k.isdigit() else k for k in rest)]
    node = values
    for key in keys[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


def attempt(stacks: Path, stack: str, edits: dict):
    """Render `stack` with `edits`, in order: (result, its ConfigError or None)."""
    path = stacks / f"Pulumi.{stack}.yaml"
    values = copy.deepcopy(yaml.safe_load(path.read_text())["config"])
    for key, value in edits.items():
        edit(values, key, value)
    path.write_text(yaml.safe_dump({"config": values}))
    return render_tool.attempt(stack)


def refused_with(stacks: Path, case: Case) -> None:
    """The case fails with exactly its errors and registers nothing (but the platform's StackReference)."""
    result, error = attempt(stacks, case.stack, case.edits)
    assert error is not None, "the config was accepted"
    assert error.errors == case.errors
    assert [r["type"] for r in result.resources if r["type"] != "pulumi:pulumi:StackReference"] == []
