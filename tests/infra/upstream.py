"""The vendored upstream artifacts (upstream/, see its manifest): what the real cluster accepts.
A missing one skips the test that needs it, saying so, except under CI=true, where it fails: CI
always runs the checks against upstream."""

import functools
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.infra import cel
from tools.upstream import FOLDER

CRD_FOLDERS = ("kuberay/crds", "kueue/crds", "gmp/crds", "gke/crds")


def path(relative: str) -> Path:
    """A file or folder under upstream/."""
    found = FOLDER / relative
    if not found.exists():
        message = f"upstream/{relative} is missing (make upstream fetches it): the check against upstream did not run"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def text(relative: str) -> str:
    return path(relative).read_text()


def load_yaml(relative: str):
    return yaml.load(path(relative).read_text(), Loader=yaml.CSafeLoader)  # libyaml: CRDs are large


def go_feature_gates(relative: str) -> set[str]:
    """Feature gate names declared in a Go source (`Name featuregate.Feature = "Name"`)."""
    return set(re.findall(r'featuregate\.Feature = "(\w+)"', text(relative)))


def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema, for every served version of every pinned CRD."""
    for folder in CRD_FOLDERS:
        path(folder)
    return _crd_schemas()


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for folder in CRD_FOLDERS:
        for crd_file in sorted((FOLDER / folder).glob("*.yaml")):
            crd = yaml.load(crd_file.read_text(), Loader=yaml.CSafeLoader)
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = _python_patterns(version["schema"]["openAPIV3Schema"])
    return schemas


def _python_patterns(node):
    """The schema with its `pattern`s as Python's re reads them: the API server's Go regexp takes a
    flag group after `^` (Kueue's `^(?i)[a-z]...`), Python only at the start; it means the same there."""
    if isinstance(node, list):
        return [_python_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _python_patterns(value) for key, value in node.items()}
    if isinstance(out.get("pattern"), str) and (flags := re.match(r"\^(\(\?[a-z]+\))", out["pattern"])):
        out["pattern"] = flags.group(1) + "^" + out["pattern"][flags.end() :]
    return out


def unknown_fields(instance, schema: dict, at: str = "") -> list[str]:
    """Fields the schema does not declare (what the API server's strict field validation rejects)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            if key not in schema["properties"]:
                found.append(f"{at}.{key}")
            else:
                found += unknown_fields(value, schema["properties"][key], f"{at}.{key}")
    elif isinstance(instance, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in instance.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{at}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += unknown_fields(item, schema["items"], f"{at}[{i}]")
    return found


def validate_cr(manifest: dict) -> None:
    """The manifest against its CRD's schema (JSON Schema), the strict unknown-field check, and the
    schema's CEL rules on the defaulted object (tests/infra/cel.py)."""
    schema = crd_schemas()[(manifest["apiVersion"], manifest["kind"])]
    jsonschema.Draft7Validator(schema).validate(manifest)
    what = f"{manifest['kind']} {manifest['metadata']['name']}"
    unknown = unknown_fields(manifest, schema)
    assert not unknown, f"{what}: unknown fields {unknown}"
    broken = cel.violations(cel.defaulted(manifest, schema), schema)
    assert not broken, f"{what}: CEL rules do not hold: {broken}"
