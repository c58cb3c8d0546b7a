"""The CrossGuard policy pack: the shipped stacks pass every mandatory rule; a stack crafted to break
a rule is caught by that rule; the pack Pulumi runs wires every rule (in its own virtualenv)."""

import copy
import subprocess

import pytest

from policies import rules
from policies.rules import Resource
from tests.infra.conftest import render_values, rendered, stack_values
from tools.render import ROOT, stack_names

TEAM = rules.conventions.TEAM_LABEL


def resources(render) -> list[Resource]:
    """The stack's resources as the policy pack sees them: a StackReference with its outputs."""
    return [Resource(r["type"], r["name"], _with_outputs(r), r.get("protect", False)) for r in render.resources]


def _with_outputs(resource: dict) -> dict:
    if resource["type"] != rules.STACK_REFERENCE:
        return resource["inputs"]
    platform = rendered(resource["inputs"]["name"].rsplit("/", 1)[-1])
    return {**resource["inputs"], "outputs": platform.outputs}


@pytest.mark.parametrize("stack", stack_names())
def test_the_shipped_stacks_pass_every_mandatory_rule(stack):
    found = rules.violations(resources(rendered(stack)), mandatory=True)
    assert found == {rule.name: [] for rule in rules.RULES if rule.mandatory}


def test_advisory_rules_report_without_blocking():
    prod = rules.violations(resources(rendered("prod")), mandatory=False)
    # prod's a100 and h100 pools scale to zero on on-demand VMs
    assert {name for name, _ in prod["spot-for-batch-pools"]} == {"rayplane-prod-a100"}  # h100: flex-start
    values = stack_values("dev")
    values["rayplane:nodePools"][0]["autoscaling"] = {"minNodes": 1, "maxNodes": 4}
    dev = rules.violations(resources(render_values("dev", values)), mandatory=False)
    assert [name for name, _ in dev["dev-gpu-pools-scale-to-zero"]] == ["rayplane-dev-l4"]


def _with(render, type_: str, change) -> list[Resource]:
    """The stack's resources with one resource of `type_` changed by `change(props)`."""
    changed, out = False, []
    for r in resources(render):
        if r.type == type_ and not changed:
            props = copy.deepcopy(dict(r.props))
            r = Resource(r.type, r.name, change(props) or props, r.protect)
            changed = True
        out.append(r)
    assert changed, type_
    return out


def _set(path: str, value):
    def change(props):
        node = props
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return change


def _public_without_networks(props):
    props["privateClusterConfig"]["enablePrivateEndpoint"] = False
    props["masterAuthorizedNetworksConfig"]["cidrBlocks"] = []


def _unprotected_bucket(render):
    return [Resource(r.type, r.name, r.props, False) if r.type == rules.BUCKET else r for r in resources(render)]


def _with_key(render):
    return [*resources(render), Resource(rules.SA_KEY, "leaked", {"serviceAccountId": "x"})]


def _without_default_deny(render):
    return [r for r in resources(render) if not r.name.endswith("default-deny-ingress")]


VIOLATIONS = [
    ("public-control-plane-authorized", "prod", lambda s: _with(s, rules.CLUSTER, _public_without_networks)),
    ("deletion-protection", "prod", lambda s: _with(s, rules.CLUSTER, _set("deletionProtection", False))),
    ("deletion-protection", "prod", _unprotected_bucket),
    ("gpu-pools-tainted", "prod", lambda s: _with(s, rules.NODE_POOL, _set("nodeConfig.taints", []))),
    ("no-service-account-keys", "prod", _with_key),
    (
        "ray-heads-without-gpus",
        "search-prod",
        lambda s: _with(s, rules.RAY_SERVICE, _set("spec.rayClusterConfig.headGroupSpec.rayStartParams.num-gpus", "1")),
    ),
    (
        "containers-request-resources",
        "search-dev",
        lambda s: _with(
            s,
            rules.RAY_JOB,
            _set("spec.rayClusterSpec.workerGroupSpecs.0.template.spec.containers.0.resources.requests", None),
        ),
    ),
    (
        "containers-request-resources",
        "dev",
        lambda s: _with(s, "kubernetes:apps/v1:DaemonSet", _set("spec.template.spec.containers.0.resources", None)),
    ),
    (
        "images-pinned",
        "search-dev",
        lambda s: _with(
            s, rules.RAY_SERVICE, _set("spec.rayClusterConfig.headGroupSpec.template.spec.containers.0.image", "ray")
        ),
    ),
    (
        "queued-jobs-kueue-admits",
        "search-prod",
        lambda s: _with(s, rules.RAY_JOB, _set("spec.rayClusterSpec.enableInTreeAutoscaling", True)),
    ),
    ("team-namespaces-isolated", "search-dev", _without_default_deny),
    (
        "team-within-its-grant",
        "search-dev",
        lambda s: _with(s, rules.BUCKET_IAM, _set("bucket", "rayplane-dev-other-team-data")),
    ),
    (
        "team-within-its-grant",
        "search-dev",
        lambda s: _with(s, rules.RESOURCE_QUOTA, lambda props: props["spec"]["hard"].update({"requests.cpu": "64"})),
    ),
    (
        "team-within-its-grant",
        "search-dev",
        lambda s: _with(s, rules.BUCKET_IAM, _set("member", "allUsers")),
    ),
    (
        "team-within-its-grant",
        "search-dev",
        lambda s: _with(
            s, rules.RESOURCE_QUOTA, lambda props: props["spec"]["hard"].pop("requests.nvidia.com/gpu") and None
        ),
    ),
    (
        "team-within-its-grant",
        "search-dev",
        lambda s: [
            *resources(s),
            Resource("gcp:storage/bucketIAMBinding:BucketIAMBinding", "wide", {"bucket": "rayplane-dev-models"}),
        ],
    ),
    (
        "team-within-its-grant",
        "assistant-dev",
        # assistant's namespace claimed for search: not search's namespace, nor its payloads
        lambda s: _with(s, rules.NAMESPACE, lambda props: props["metadata"]["labels"].update({TEAM: "search"})),
    ),
]


@pytest.mark.parametrize(("rule", "stack", "violate"), VIOLATIONS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_stack_that_breaks_a_mandatory_rule_is_caught_by_it(rule, stack, violate):
    found = rules.violations(violate(rendered(stack)), mandatory=True)
    assert found[rule], rule
    assert not any(v for name, v in found.items() if name != rule)


def test_every_mandatory_rule_has_a_violating_stack():
    assert {rule.name for rule in rules.RULES if rule.mandatory} == {rule for rule, _, _ in VIOLATIONS}


def test_an_image_is_pinned_by_tag_or_digest():
    pinned = ["rayproject/ray-llm:2.60.0-py312-cu130", "gke.gcr.io/pause@sha256:" + "a" * 64, "registry:5000/x:1.2"]
    assert all(rules._pinned(image) for image in pinned)
    assert not any(rules._pinned(image) for image in ["ray", "ray:latest", "registry:5000/ray"])


def test_the_pack_pulumi_runs_wires_every_rule_with_its_enforcement():
    python = ROOT / "policies" / ".venv" / "bin" / "python"
    assert python.exists(), "the policy pack's virtualenv is missing: `make policies/.venv/.installed`"
    script = (
        "import importlib; m = importlib.import_module('policies.__main__');"
        "print(sorted((p.name, p.enforcement_level.value) for p in m.policies()))"
    )
    done = subprocess.run([str(python), "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = sorted((r.name, "mandatory" if r.mandatory else "advisory") for r in rules.RULES)
    assert done.stdout.strip() == str(expected)
