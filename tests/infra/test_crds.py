"""Every KubeRay custom resource of every stack against the upstream KubeRay v1.7.0 CRDs.

The CRDs' openAPIV3Schema is checked with a JSON-Schema validator (Kubernetes' x-kubernetes-*
keywords are ignored) plus the API server's strict field validation: no field the schema does
not declare, unless the schema preserves unknown fields."""

import functools

import jsonschema
import pytest
import yaml

from tests.infra.conftest import rendered
from tools.render import ROOT, stack_names

CRDS = ROOT.parent / "shared" / "kuberay-v1.7.0" / "crds"


def _schemas() -> dict[str, dict]:
    if not CRDS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {CRDS}: CR validation did not run")
    return _load_schemas()


@functools.cache
def _load_schemas() -> dict[str, dict]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)  # libyaml: the CRDs are large
        [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schemas[crd["spec"]["names"]["kind"]] = v1["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(instance, schema: dict, path: str = "") -> list[str]:
    """Fields the schema does not declare (what `kubectl apply --validate=strict` rejects)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(instance, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in instance.items():
            found += unknown_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def validate(manifest: dict, schemas: dict) -> None:
    schema = schemas[manifest["kind"]]
    jsonschema.Draft7Validator(schema).validate(manifest)
    assert not unknown_fields(manifest, schema), f"{manifest['kind']} {manifest['metadata']['name']}"


def ray_objects(stack: str) -> list[dict]:
    return [m for m in rendered(stack).manifests() if m["apiVersion"].startswith("ray.io/")]


@pytest.mark.parametrize("stack", stack_names())
def test_every_kuberay_object_validates_against_the_v1_7_0_crds(stack):
    schemas = _schemas()
    for manifest in ray_objects(stack):
        validate(manifest, schemas)


def test_team_stacks_have_ray_objects():
    kinds = {m["kind"] for stack in stack_names() for m in ray_objects(stack)}
    assert kinds == {"RayService", "RayJob"}


def test_the_validator_catches_typos_and_wrong_types():
    schemas = _schemas()
    [service] = [m for m in ray_objects("search-dev") if m["metadata"]["name"] == "embed"]
    typo = yaml.safe_load(yaml.safe_dump(service))
    typo["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(AssertionError):
        validate(typo, schemas)
    wrong = yaml.safe_load(yaml.safe_dump(service))
    wrong["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong, schemas)
