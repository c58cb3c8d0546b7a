"""What KubeRay v1.7.0 does with a changed RayService or RayJob (components/rollout.py, its rule at
the source), what a new RayCluster beside a serving one takes, and how the review shows it."""

import copy

import pytest

from components import rollout
from components.config import ConfigError
from tests.infra.conftest import render_values, rendered, stack_values
from tools import diff

SERVICE = "kubernetes:ray.io/v1:RayService"
JOB = "kubernetes:ray.io/v1:RayJob"


def spec(stack: str, kind: str, name: str) -> dict:
    [found] = [r for r in rendered(stack).of_type(kind) if r["inputs"]["metadata"]["name"] == name]
    return copy.deepcopy(found["inputs"]["spec"])


def _workers(s: dict) -> dict:
    return s["rayClusterConfig"]["workerGroupSpecs"][0]


def _container(pod_owner: dict) -> dict:
    return pod_owner["template"]["spec"]["containers"][0]


def serve_config(s):  # new code: the payload archive's URI is in the Serve config (working_dir)
    assert "working_dir: gs://" in s["serveConfigV2"]
    s["serveConfigV2"] = s["serveConfigV2"].replace("working_dir: gs://", "working_dir: gs://next-", 1)


def image(s):
    for owner in (s["rayClusterConfig"]["headGroupSpec"], _workers(s)):
        _container(owner)["image"] += "-next"


def worker_resources(s):
    _container(_workers(s))["resources"]["limits"]["cpu"] = "7"


def replicas(s):
    _workers(s).update(replicas=2, minReplicas=2, maxReplicas=3)


def tolerations(s):
    _workers(s)["template"]["spec"]["tolerations"] = [{"key": "spot", "operator": "Exists"}]


def appended_group(s):
    s["rayClusterConfig"]["workerGroupSpecs"].append({**copy.deepcopy(_workers(s)), "groupName": "more"})


def removed_group(s):
    appended_group(s)
    s["rayClusterConfig"]["workerGroupSpecs"].reverse()  # reordered: the old group is no longer first


def incremental(s):
    image(s)
    s["upgradeStrategy"] = {"type": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {}}


def no_new_cluster(s):
    image(s)
    s["upgradeStrategy"] = {"type": "None"}


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (serve_config, "serve-config"),
        (image, "new-cluster"),
        (worker_resources, "new-cluster"),
        (replicas, "not-applied"),  # not in KubeRay's hash: the running cluster keeps its bounds
        (tolerations, "not-applied"),
        (appended_group, "in-place"),
        (removed_group, "new-cluster"),
        (incremental, "incremental"),
        (no_new_cluster, "ignored"),
        (lambda s: None, "unchanged"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_a_rayservice_change_is_what_kuberay_does_with_it(change, kind):
    old = spec("search-dev", SERVICE, "embed")
    new = copy.deepcopy(old)
    change(new)
    assert rollout.rayservice(old, new).kind == kind


def test_a_new_rayservice_and_a_changed_rayjob():
    job = spec("search-dev", JOB, "reindex")
    assert rollout.rayservice(None, spec("search-dev", SERVICE, "embed")).kind == "created"
    assert rollout.rayjob(None, job).kind == "created"
    assert rollout.rayjob(job, copy.deepcopy(job)).kind == "unchanged"
    changed = copy.deepcopy(job)
    changed["entrypoint"] += " --again"
    found = rollout.rayjob(job, changed)
    assert found.kind == "not-applied" and "keeps its cluster and its submission" in found.says


def test_the_capacity_report_says_what_a_new_cluster_takes():
    workloads = {w["name"]: w for w in rendered("search-dev").outputs["capacity"]["workloads"]}
    assert workloads["embed"]["rollout"] == {
        "strategy": "NewCluster",
        "surgeWorkers": 1,
        "surgeGpus": 1,
        "surgeCostPerHour": workloads["embed"]["gpuCostPerHour"]["min"],
        "workersDuring": 2,
        "workersPossible": 3,  # the pools (4) and the quota less the other service's minimum (4 - 1)
    }
    assert workloads["reindex"]["rollout"] is None  # jobs never roll


def test_a_rollout_that_can_never_be_placed_is_refused_with_its_numbers():
    values = stack_values("search-dev")
    values["rayplane:team"]["quota"]["gpus"] = 2  # each service's minimum fits beside the other's
    values["rayplane:jobs"] = []
    with pytest.raises(ConfigError) as exc:
        render_values("search-dev", values)
    assert exc.value.errors[0] == (
        "services[0]: a rollout that starts a new RayCluster (upgradeStrategy NewCluster) runs it beside the serving"
        " one: 1 + 1 worker(s) of 1 GPU(s) from l4-shared, but at most 1 can run (l4 at maxNodes 4: 4; team.quota.gpus"
        " 2 less the other workloads' 1: 1); raise them, or set upgradeStrategy: NewClusterWithIncrementalUpgrade"
        " (the new cluster grows as traffic moves to it; the platform's gatewayApi) or None (KubeRay then starts no"
        " new cluster: a change of the cluster spec does not reach the running one until the RayService is"
        " recreated)"
    )
    # choosing to start no new cluster is accepted: the report says it needs nothing beside the old one
    for service in values["rayplane:services"]:
        service["upgradeStrategy"] = "None"
    accepted = {w["name"]: w for w in render_values("search-dev", values).outputs["capacity"]["workloads"]}
    assert accepted["embed"]["rollout"]["surgeWorkers"] == 0


def test_the_review_says_what_each_change_does_and_what_it_takes():
    base = rendered("search-prod")
    old = {(r["type"], r["name"]): {"inputs": r["inputs"]} for r in base.resources}
    new = copy.deepcopy(old)
    embed = next(k for k in new if k[0] == SERVICE and new[k]["inputs"]["metadata"]["name"] == "embed")
    image(new[embed]["inputs"]["spec"])
    lines = diff.rollout_lines(old, new, [embed], base.outputs["capacity"])
    assert lines == [
        "- rollout of `embed` (RayService): a new RayCluster beside the running one, which serves until the new one"
        " is ready; +1 worker(s), 1 GPU(s) from l4-shared, +$1.00/h while both run: 2 of 11 workers possible"
    ]
