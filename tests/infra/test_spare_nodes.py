"""Spare GPU nodes (components/spare.py): a placeholder per spare node, on its pool, below every
workload's priority and kept apart from Ray workers, so that the next worker preempts it and the
autoscaler adds the next spare; refused where it leaves no room, priced as always up."""

import pytest

from components.config import ConfigError
from components.conventions import RAY_NODE_TYPE_LABEL, SPARE_NAMESPACE
from components.gpu import allocatable
from tests.infra.conftest import TEAM_STACKS, render_values, rendered, stack_values
from tests.infra.test_ladders import _tolerates
from tests.infra.test_platform import gpu_pools
from tools.render import summary


def _spare(stack):
    manifests = rendered(stack).manifests()
    [priority] = [m for m in manifests if m["kind"] == "PriorityClass"]
    deployments = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["namespace"] == SPARE_NAMESPACE]
    return priority, deployments


def _selects(selector: dict, labels: dict) -> bool:
    """A labelSelector's matchLabels and In/Exists expressions against a pod's labels."""
    expressions = selector.get("matchExpressions", [])
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] if e["operator"] == "In" else e["key"] in labels for e in expressions
    )


def test_each_spare_node_is_a_placeholder_on_its_pool():
    priority, [deployment] = _spare("prod")
    pools = gpu_pools(rendered("prod"))
    spare = {p["name"]: p["spareNodes"] for p in rendered("prod").outputs["gpuNodePools"]}
    assert [name for name, n in spare.items() if n] == ["l4"] and deployment["spec"]["replicas"] == spare["l4"]
    pod = deployment["spec"]["template"]["spec"]
    node = pools["l4"]["nodeConfig"]
    assert pod["nodeSelector"].items() <= node["labels"].items()  # its pool's nodes only
    assert all(_tolerates(pod["tolerations"], taint) for taint in node["taints"])  # GPU and the ladder's
    assert pod["priorityClassName"] == priority["metadata"]["name"]
    # GKE's documented placeholder: low, not below the autoscaler's expendable cutoff (-10), never preempting
    assert (priority["value"], priority["preemptionPolicy"], priority["globalDefault"]) == (-10, "Never", False)
    assert pod["terminationGracePeriodSeconds"] == 0
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }
    # it holds most of its node (g2-standard-24: 23.87 vCPUs and 88.5 GiB allocatable), not all of it
    requests = pod["containers"][0]["resources"]["requests"]
    cpu, gib = allocatable(pools["l4"]["nodeConfig"]["machineType"])
    assert 0.5 * cpu < int(requests["cpu"].removesuffix("m")) / 1000 < cpu
    assert 0.5 * gib < int(requests["memory"].removesuffix("Mi")) / 1024 < gib
    # replaced, never surged (a second placeholder would need a node of its own); `up` does not wait on it
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_any_ray_worker_preempts_a_placeholder_and_none_shares_its_node(stack):
    """Workers run at the default priority 0, above the placeholder's; the placeholder's required
    anti-affinity selects every team's worker pods (KubeRay labels them ray.io/node-type=worker) and
    the other placeholders, one per node; the scheduler holds it against a worker coming to that node."""
    priority, [deployment] = _spare("prod")
    pod = deployment["spec"]["template"]["spec"]
    terms = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {t["topologyKey"] for t in terms} == {"kubernetes.io/hostname"}
    worker_terms = [t for t in terms if _selects(t["labelSelector"], {RAY_NODE_TYPE_LABEL: "worker"})]
    assert worker_terms and all(t["namespaceSelector"] == {} for t in worker_terms)  # every namespace
    assert any(_selects(t["labelSelector"], deployment["spec"]["template"]["metadata"]["labels"]) for t in terms)
    for m in rendered(stack).manifests():
        if m["kind"] in ("RayService", "RayJob"):
            cluster = m["spec"].get("rayClusterConfig") or m["spec"]["rayClusterSpec"]
            worker = cluster["workerGroupSpecs"][0]["template"]["spec"]
            assert "priorityClassName" not in worker and priority["value"] < 0


def test_spare_nodes_are_priced_as_always_up():
    pools = {p["name"]: p for p in rendered("prod").outputs["capacity"]["pools"]}
    assert pools["l4"]["spareNodes"] == 1 and pools["l4"]["nodes"]["min"] == 1
    values = stack_values("prod")
    values["rayplane:nodePools"][1]["spareNodes"] = 2  # l4-flex: no minimum, two spare
    flex = {p["name"]: p for p in render_values("prod", values).outputs["capacity"]["pools"]}["l4-flex"]
    assert flex["nodes"]["min"] == 2 and flex["costPerHour"]["min"] == round(2 * flex["nodePrice"], 2)
    assert "l4: 1-8 nodes x $2.00 = $2.00-$16.01 (1 spare)" in summary(rendered("prod"))


def test_spare_nodes_that_leave_no_room_are_refused():
    values = stack_values("prod")
    values["rayplane:nodePools"][0]["spareNodes"] = 8
    with pytest.raises(ConfigError) as exc:
        render_values("prod", values)
    assert exc.value.errors == [
        "nodePools[0]: spareNodes: 8 spare node(s) leave no room for workloads below autoscaling.maxNodes 8"
    ]


def test_a_platform_without_spare_nodes_has_no_placeholder():
    kinds = {m["kind"] for m in rendered("dev").manifests()}
    assert "PriorityClass" not in kinds and not any(
        m["metadata"].get("namespace") == SPARE_NAMESPACE for m in rendered("dev").manifests()
    )
