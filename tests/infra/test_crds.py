"""Every custom resource of every stack against its upstream CRD, strictly: KubeRay (RayService,
RayJob), Kueue (ResourceFlavor, ClusterQueue, LocalQueue), Managed Prometheus (PodMonitoring,
ClusterPodMonitoring, Rules, ClusterRules), GKE (ComputeClass). A kind without a pinned CRD fails the
test instead of passing unchecked."""

import jsonschema
import pytest
import yaml

from tests.infra import cel, upstream
from tests.infra.conftest import rendered
from tools.render import stack_names

BUILT_IN_GROUPS = {"", "apps", "networking.k8s.io", "rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io"}


def custom_resources(stack: str) -> list[dict]:
    return [m for m in rendered(stack).manifests() if m["apiVersion"].rpartition("/")[0] not in BUILT_IN_GROUPS]


@pytest.mark.parametrize("stack", stack_names())
def test_every_custom_resource_validates_against_its_upstream_crd(stack):
    schemas = upstream.crd_schemas()
    for manifest in custom_resources(stack):
        assert (manifest["apiVersion"], manifest["kind"]) in schemas, f"no pinned CRD for {manifest['kind']}"
        upstream.validate_cr(manifest)


def test_the_stacks_render_every_kind_the_crds_check():
    kinds = {m["kind"] for stack in stack_names() for m in custom_resources(stack)}
    assert kinds == {
        "RayService",
        "RayJob",
        "ResourceFlavor",
        "ClusterQueue",
        "LocalQueue",
        "PodMonitoring",
        "ClusterPodMonitoring",
        "Rules",
        "ClusterRules",
        "ComputeClass",
        "AdmissionCheck",
        "ProvisioningRequestConfig",
    }


def _copy(manifest: dict) -> dict:
    return yaml.safe_load(yaml.safe_dump(manifest))


def _one(stack: str, kind: str) -> dict:
    return next(m for m in custom_resources(stack) if m["kind"] == kind)


def test_the_validator_catches_typos_and_wrong_types():
    upstream.crd_schemas()
    service = _one("search-dev", "RayService")
    typo = _copy(service)
    typo["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(AssertionError):
        upstream.validate_cr(typo)
    wrong = _copy(service)
    wrong["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplicas"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        upstream.validate_cr(wrong)
    queue = _copy(_one("prod", "ClusterQueue"))
    queue["spec"]["queueingStrategy"] = "Fifo"  # an enum value Kueue does not have
    with pytest.raises(jsonschema.ValidationError):
        upstream.validate_cr(queue)
    monitor = _copy(_one("prod", "PodMonitoring"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(AssertionError):
        upstream.validate_cr(monitor)


def test_the_crds_cel_rules_are_evaluated_and_catch_what_the_api_server_refuses():
    """The pinned CRDs' `x-kubernetes-validations`, e.g. Kueue's
    kueue.x-k8s.io_clusterqueues.yaml@v0.19.2:498-500 and KubeRay's rayjob_types.go@v1.7.0:106-107
    (ray.io_rayjobs.yaml), run on every render (test above); broken copies of rendered objects fail."""
    queue = _copy(_one("prod", "ClusterQueue"))
    queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop()  # one quota fewer than covered
    with pytest.raises(AssertionError, match="flavors must have the same number of resources as the coveredResources"):
        upstream.validate_cr(queue)
    job = _copy(_one("search-prod", "RayJob"))
    job["spec"]["deletionStrategy"] = {
        "onSuccess": {"policy": "DeleteCluster"},
        "deletionRules": [{"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED"}}],
    }
    with pytest.raises(AssertionError, match="cannot be used together"):
        upstream.validate_cr(job)
    job["spec"]["managedBy"] = "someone-else"
    with pytest.raises(AssertionError, match="managedBy field value must be either"):
        upstream.validate_cr(job)


def test_cel_rules_see_the_object_with_its_defaults_and_skip_transition_rules():
    schema = {
        "type": "object",
        "properties": {"mode": {"type": "string", "default": "a"}, "n": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.mode == 'a' || has(self.n)", "message": "n is required unless mode is a"},
            {"rule": "self.mode == oldSelf.mode", "message": "immutable"},
        ],
    }
    assert cel.violations(cel.defaulted({}, schema), schema) == []
    assert cel.violations(cel.defaulted({"mode": "b"}, schema), schema) == [".: n is required unless mode is a"]
