"""Pinned upstream artifacts (../shared/upstream, ../shared/kuberay-v1.7.0): what the real cluster
accepts. Tests that read them skip, saying so, only when the folder is absent."""

import functools
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools.render import ROOT

SHARED = ROOT.parent / "shared"
CRD_FOLDERS = ("kuberay-v1.7.0/crds", "upstream/kueue/crds", "upstream/gmp/crds")


def path(relative: str) -> Path:
    """A file or folder under ../shared; skips the test when it is not there."""
    found = SHARED / relative
    if not found.exists():
        pytest.skip(f"{found} not found: the check against upstream did not run")
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
        for crd_file in sorted((SHARED / folder).glob("*.yaml")):
            crd = yaml.load(crd_file.read_text(), Loader=yaml.CSafeLoader)
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


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
    """The manifest against its CRD's schema (JSON Schema; Kubernetes' x-kubernetes-* keywords and
    CEL rules are not evaluated) and the strict unknown-field check."""
    schema = crd_schemas()[(manifest["apiVersion"], manifest["kind"])]
    jsonschema.Draft7Validator(schema).validate(manifest)
    unknown = unknown_fields(manifest, schema)
    assert not unknown, f"{manifest['kind']} {manifest['metadata']['name']}: unknown fields {unknown}"
