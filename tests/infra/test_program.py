"""The whole __main__.py for every stack file, the team stack's wiring, and the render command."""

import json

import kubernetes_validate
import pytest

from tests.infra.conftest import PLATFORM_STACKS, TEAM_STACKS, rendered, stack_values
from tools import render as render_tool


def test_every_stack_file_renders(any_stack):
    assert any_stack.resources
    if any_stack.stack in PLATFORM_STACKS:
        any_stack.one("gcp:container/cluster:Cluster")
    elif any_stack.stack in TEAM_STACKS:
        any_stack.one("kubernetes:core/v1:Namespace")
    else:  # the bootstrap stack
        any_stack.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")


def test_there_are_platform_and_team_stacks():
    assert {"dev", "prod"} <= set(PLATFORM_STACKS) and TEAM_STACKS


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_team_stack_uses_its_platform_stack(stack):
    team = rendered(stack)
    values = stack_values(stack)
    reference = team.one("pulumi:pulumi:StackReference")["inputs"]
    assert reference["name"] == values["rayplane:platformStack"]
    # the platform owns the cloud side; a team only has its identity and its payload archive
    team_gcp = {r["type"] for r in team.resources if r["type"].startswith("gcp:")}
    assert team_gcp <= {
        "gcp:serviceaccount/account:Account",
        "gcp:serviceaccount/iAMMember:IAMMember",
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "gcp:storage/bucketObject:BucketObject",
        "gcp:monitoring/dashboard:Dashboard",
    }
    provider = team.one("pulumi:providers:kubernetes")["inputs"]
    assert provider["kubeconfig"] == "[secret]"  # the platform's secret export stays secret
    namespace = team.one("kubernetes:core/v1:Namespace")["inputs"]["metadata"]
    assert namespace["name"] == team.outputs["namespace"] == values["rayplane:team"]["name"]


def _gke_minor(stack: str) -> str:
    values = stack_values(stack)
    if values["rayplane:kind"] == "team":
        return _gke_minor(values["rayplane:platformStack"].rsplit("/", 1)[-1])
    return values["rayplane:cluster"].get("kubernetesVersion", "1.34")


# Custom resources: KubeRay kinds are validated against the upstream CRDs; Kueue and Managed
# Prometheus kinds are built from typed models (components/kueue.py, components/monitoring.py).
CUSTOM_GROUPS = {"ray.io", "kueue.x-k8s.io", "monitoring.googleapis.com", "cloud.google.com"}


@pytest.mark.parametrize("stack", PLATFORM_STACKS + TEAM_STACKS)  # the bootstrap stack has no cluster
def test_kubernetes_objects_validate_strictly_at_the_gke_minor(stack):
    any_stack = rendered(stack)
    minor = ".".join(_gke_minor(any_stack.stack).split(".")[:2])
    built_in = [m for m in any_stack.manifests() if m["apiVersion"].split("/")[0] not in CUSTOM_GROUPS]
    assert built_in
    for manifest in built_in:
        kubernetes_validate.validate(manifest, minor, strict=True)


def test_strict_validation_catches_unknown_fields():
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "lables": {}}}, "1.34", strict=True
        )


def test_render_writes_resources_outputs_and_manifests(tmp_path, capsys):
    assert render_tool.main(["search-dev", "--out", str(tmp_path)]) == 0
    out = tmp_path / "search-dev"
    written = json.loads((out / "resources.json").read_text())
    resources = written["resources"]
    assert {"type", "name", "parent", "inputs"} <= set(resources[0])
    assert [w["name"] for w in written["capacity"]["workloads"]] == ["embed", "chat", "reindex"]
    assert (out / "manifests" / "namespace-search.yaml").read_text().startswith("apiVersion: v1\nkind: Namespace\n")
    assert json.loads((out / "outputs.json").read_text())["namespace"] == "search"
    assert f"search-dev: {len(resources)} resources" in capsys.readouterr().out


def test_render_of_an_invalid_stack_fails_with_the_key_path_and_writes_nothing(tmp_path, monkeypatch, capsys):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.broken.yaml").write_text(
        (render_tool.STACKS / "Pulumi.dev.yaml")
        .read_text()
        .replace("machineType: g2-standard-8", "machineType: a2-highgpu-1g")
    )
    monkeypatch.setattr(render_tool, "STACKS", stacks)
    out = tmp_path / "render"
    (out / "broken").mkdir(parents=True)  # a stale render must not survive a failed one
    assert render_tool.main(["broken", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nodePools[0].accelerator: nvidia-l4 needs a g2-standard-* machine type, got a2-highgpu-1g" in err
    assert not (out / "broken").exists()
