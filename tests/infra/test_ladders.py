"""Capacity ladders (components/ladders.py, node_pools.py, pricing.py): each pool's provisioning model
as GKE takes it, a ladder as a ComputeClass over its pools in order with active migration, the pods
that may use it selecting it, the config errors, and the capacity report's price per rung."""

import copy

import pytest

from components.config import ConfigError
from components.pricing import PRICES
from tests.infra import upstream
from tests.infra.conftest import render_values, rendered, stack_values
from tests.infra.test_platform import gpu_pools

CLASS = "cloud.google.com/compute-class"


def _errors(stack: str, values: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        render_values(stack, values)
    return exc.value.errors


def test_each_provisioning_model_is_rendered_as_gke_takes_it():
    values = stack_values("prod")
    values["rayplane:nodePools"][3]["provisioning"] = "reservation"  # a100
    values["rayplane:nodePools"][3]["reservation"] = "a100-block"
    pools = gpu_pools(render_values("prod", values))
    on_demand, flex, spot, reserved = (pools[n] for n in ("l4", "l4-flex", "l4-spot", "a100"))
    assert "spot" not in on_demand["nodeConfig"] and "reservationAffinity" not in on_demand["nodeConfig"]
    assert spot["nodeConfig"]["spot"] is True
    assert flex["nodeConfig"]["flexStart"] is True and flex["autoscaling"]["totalMinNodeCount"] == 0
    assert flex["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert flex["management"]["autoRepair"] is False and on_demand["management"]["autoRepair"] is True
    assert reserved["nodeConfig"]["reservationAffinity"] == {
        "consumeReservationType": "SPECIFIC_RESERVATION",
        "key": "compute.googleapis.com/reservation-name",
        "values": ["a100-block"],
    }


def test_a_ladder_is_a_compute_class_over_its_pools_in_order():
    prod = rendered("prod")
    [compute_class] = [m for m in prod.manifests() if m["kind"] == "ComputeClass"]
    upstream.validate_cr(compute_class)  # the CRD GKE 1.34 serves, its CEL rules included
    physical = {
        r["inputs"]["nodeConfig"]["labels"]["rayplane.dev/pool"]: r["name"]
        for r in prod.of_type("gcp:container/nodePool:NodePool")
    }
    spec = compute_class["spec"]
    assert compute_class["metadata"]["name"] == "l4"
    assert spec["priorities"] == [{"nodepools": [physical[p]]} for p in ("l4", "l4-flex", "l4-spot")]
    assert spec["activeMigration"] == {"optimizeRulePriority": True}  # back up the ladder when it can
    assert spec["whenUnsatisfiable"] == "DoNotScaleUp" and spec["nodePoolAutoCreation"] == {"enabled": False}
    for name, pool in gpu_pools(prod).items():
        config = pool["nodeConfig"]
        taint = {"key": CLASS, "value": "l4", "effect": "NO_SCHEDULE"}
        if name.startswith("l4"):  # GKE's requirement for a manually created pool of a class
            assert config["labels"][CLASS] == "l4" and taint in config["taints"]
        else:
            assert CLASS not in config["labels"] and all(t["key"] != CLASS for t in config.get("taints", []))


def test_a_nodepools_priority_stands_alone_as_the_crds_rule_says():
    [compute_class] = [m for m in rendered("prod").manifests() if m["kind"] == "ComputeClass"]
    mixed = copy.deepcopy(compute_class)
    mixed["spec"]["priorities"][0]["spot"] = True
    with pytest.raises(AssertionError, match="Nodepool field cannot be set along with other fields"):
        upstream.validate_cr(mixed)


def test_pods_of_a_profile_in_a_ladder_select_its_class_and_others_do_not():
    for stack in ("search-prod",):
        for m in rendered(stack).manifests():
            if m["kind"] not in ("RayService", "RayJob"):
                continue
            cluster = m["spec"].get("rayClusterConfig") or m["spec"]["rayClusterSpec"]
            [worker] = cluster["workerGroupSpecs"]
            pod = worker["template"]["spec"]
            assert pod["nodeSelector"] == {CLASS: "l4"}
            assert {"key": CLASS, "operator": "Equal", "value": "l4", "effect": "NoSchedule"} in pod["tolerations"]
            assert CLASS not in cluster["headGroupSpec"]["template"]["spec"]["nodeSelector"]
    for m in rendered("search-dev").manifests():  # dev has no ladder
        if m["kind"] == "RayService":
            assert "nodeSelector" not in m["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]


def test_every_rung_is_priced_and_flex_start_at_on_demand_unless_told():
    table = PRICES["us-central1"]
    chat = next(w for w in rendered("search-prod").outputs["capacity"]["workloads"] if w["name"] == "chat")
    tiers = {t["pool"]: t for t in chat["tiers"]}
    assert list(tiers) == ["l4", "l4-flex", "l4-spot"]  # the ladder's order
    workers = chat["workersNeeded"]["min"], chat["workersPossible"]
    gpu_hour = {
        name: price / gpus
        for name, price, gpus in (
            ("l4", table["g2-standard-24"].on_demand, 2),
            ("l4-flex", table["g2-standard-48"].on_demand, 4),
            ("l4-spot", table["g2-standard-24"].spot, 2),
        )
    }
    for name, tier in tiers.items():
        assert tier["gpuCostPerHour"] == {
            "min": round(workers[0] * 2 * gpu_hour[name], 2),
            "max": round(workers[1] * 2 * gpu_hour[name], 2),
        }, name
    assert tiers["l4-spot"]["gpuCostPerHour"]["max"] < tiers["l4"]["gpuCostPerHour"]["max"]
    values = stack_values("prod")
    values["rayplane:pricing"] = {"g2-standard-48": {"flexStart": 2.0}}
    flex = next(p for p in render_values("prod", values).outputs["gpuNodePools"] if p["name"] == "l4-flex")
    assert flex["nodePrice"] == 2.0


def test_the_fit_check_runs_on_every_machine_type_of_the_ladder():
    values = stack_values("search-prod")
    values["rayplane:services"][0]["workers"]["cpu"] = 30  # beyond g2-standard-24, within g2-standard-48
    assert [e for e in _errors("search-prod", values) if "workers.cpu" in e] == [
        "services[0].workers.cpu: 30 vCPUs and its compile cache's GCS FUSE sidecar's 0.25, but l4's"
        " g2-standard-24 leaves 23.87 allocatable",
        "services[0].workers.cpu: 30 vCPUs and its compile cache's GCS FUSE sidecar's 0.25, but l4-spot's"
        " g2-standard-24 leaves 23.87 allocatable",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda v: v["rayplane:ladders"].append({"name": "again", "pools": ["l4-spot", "a100"]}),
            "ladders[1].pools[0]: l4-spot is already in ladder l4 (a pool has one class)",
        ),
        (
            lambda v: v["rayplane:ladders"][0]["pools"].append("a100"),
            "ladders[0].pools: a ladder's pools offer one GPU the same way; got l4: nvidia-l4 dra, l4-flex: nvidia-l4"
            " dra, l4-spot: nvidia-l4 dra, a100: nvidia-tesla-a100 dra",
        ),
        (
            lambda v: v["rayplane:ladders"][0]["pools"].append("l4-big"),
            "ladders[0].pools[3]: no node pool named 'l4-big'",
        ),
        (
            lambda v: v["rayplane:gpuProfiles"][0].update(pools=["l4", "a100"]),
            "gpuProfiles[0]: its pools are in ladders ['(none)', 'l4']; a pod can select one ComputeClass: set"
            " gpuProfiles[].pools within one ladder, or outside all",
        ),
        (
            lambda v: v["rayplane:nodePools"][3].update(provisioning="reservation"),
            "nodePools[3]: reservation: set it exactly when provisioning is reservation",
        ),
        (
            lambda v: v["rayplane:nodePools"][1]["autoscaling"].update(minNodes=1),
            "nodePools[1]: autoscaling.minNodes: a flex-start pool holds no nodes (each lasts at most seven days): 0",
        ),
    ],
)
def test_a_ladder_that_gke_or_a_pod_could_not_follow_is_refused(change, message):
    values = stack_values("prod")
    change(values)
    assert message in _errors("prod", values)


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    """Kubernetes' rule: a toleration matches a taint of its key (any key if none) and effect (any if
    none), by value unless its operator is Exists."""
    effect = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
    return any(
        t.get("key") in (None, taint["key"])
        and t.get("effect") in (None, effect[taint["effect"]])
        and (t.get("operator") == "Exists" or t.get("value") == taint["value"])
        for t in tolerations
    )


def test_the_dra_drivers_daemonsets_reach_every_node_of_a_ladder():
    """The kubelet plugin publishes a node's GPUs (no plugin, no claim on that node) and the installer
    puts the driver there: both must tolerate a ladder's taint as well as the GPU one."""
    prod = rendered("prod")
    [release] = [
        r for r in prod.of_type("kubernetes:helm.sh/v3:Release") if r["inputs"]["chart"] == "nvidia-dra-driver-gpu"
    ]
    plugin = release["inputs"]["values"]["kubeletPlugin"]["tolerations"]
    [installer] = [
        m for m in prod.manifests() if m["kind"] == "DaemonSet" and "driver-installer" in m["metadata"]["name"]
    ]
    installer_tolerations = installer["spec"]["template"]["spec"]["tolerations"]
    for name, pool in gpu_pools(prod).items():
        if pool["nodeConfig"]["labels"].get("rayplane.dev/gpu-mode") != "dra":
            continue
        for taint in pool["nodeConfig"]["taints"]:
            assert _tolerates(plugin, taint), (name, taint)
            assert _tolerates(installer_tolerations, taint), (name, taint)
