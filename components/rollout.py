"""What KubeRay v1.7.0 does with a changed RayService or RayJob, decided the way its controllers
decide it (ray-operator/controllers/ray at v1.7.0; `rs.go` is rayservice_controller.go, `util.go`
utils/util.go, `rj.go` rayjob_controller.go):

- The RayService's cluster spec is hashed without each worker group's replicas, minReplicas,
  maxReplicas, scaleStrategy.workersToDelete, tolerations and scheduling gates, the head's
  tolerations and scheduling gates, the spec's upgradeStrategy and suspend (util.go:645-668
  GenerateHashWithoutReplicasAndWorkersToDelete, rs.go:1498-1502).
- Equal hashes: the cluster is left alone (so a change of replicas alone never reaches the running
  cluster: its autoscaler keeps the old bounds until the next new cluster); a changed serveConfigV2
  goes to the running cluster's dashboard (rs.go:243-250, 1551-1615).
- Worker groups appended at the end, the others unchanged (the hash of the goal cut to the old group
  count, rs.go:1379-1407): the running cluster is updated in place (rs.go:1351-1377, 1462-1468).
- Any other difference (image, resources, env, start params, a group removed or reordered): a new
  RayCluster (rs.go:1409-1437) when the strategy allows one (rs.go:868-896): `NewCluster` beside the
  old one until it serves; `NewClusterWithIncrementalUpgrade` with the feature gate (on by default at
  v1.7.0), traffic moved step by step through the Gateway; `None` creates nothing, so the change
  does not reach the running cluster at all (rayservice_types.go:30-31).
- A RayJob's changes after it started are disregarded: its cluster (rj.go:988-992) and its
  submission (made once, rj.go:230-234) stay as they were.
"""

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "created", "unchanged", "serve-config", "not-applied", "in-place", "new-cluster", "incremental", "ignored"
]
# The kinds that start a second RayCluster beside the running one.
NEW_CLUSTER: tuple[Kind, ...] = ("new-cluster", "incremental")


@dataclass(frozen=True)
class Prediction:
    kind: Kind
    says: str  # what KubeRay will do, in a sentence


def _hash(cluster: dict, groups: int | None = None) -> str:
    """KubeRay's hash of a cluster spec without what it leaves out (util.go:645-668); `groups` cuts
    the worker groups to the first n, as its partial comparison does (rs.go:1395-1398)."""
    spec = copy.deepcopy(cluster)
    spec.pop("upgradeStrategy", None)
    spec.pop("suspend", None)
    for pod in [spec.get("headGroupSpec", {}).get("template", {}).get("spec", {})]:
        pod.pop("tolerations", None)
        pod.pop("schedulingGates", None)
    workers = spec.get("workerGroupSpecs", [])
    if groups is not None:
        workers = spec["workerGroupSpecs"] = workers[:groups]
    for group in workers:
        for key in ("replicas", "minReplicas", "maxReplicas"):
            group.pop(key, None)
        group.get("scaleStrategy", {}).pop("workersToDelete", None)
        pod = group.get("template", {}).get("spec", {})
        pod.pop("tolerations", None)
        pod.pop("schedulingGates", None)
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _groups(cluster: dict) -> int:
    return len(cluster.get("workerGroupSpecs", []))


def rayservice(old: dict | None, new: dict) -> Prediction:
    """What a change from RayService `old` to `new` (their `spec`s; None: a new service) does."""
    if old is None:
        return Prediction("created", "a new RayCluster, serving once its apps are ready")
    before, after = old["rayClusterConfig"], new["rayClusterConfig"]
    if _hash(before) == _hash(after):
        if old.get("serveConfigV2") != new.get("serveConfigV2"):
            return Prediction("serve-config", "the running cluster's Serve apps are updated in place (no new cluster)")
        if before != after:
            return Prediction(
                "not-applied",
                "replica bounds only: KubeRay leaves the running cluster as it is; they take effect with the next new"
                " RayCluster",
            )
        return Prediction("unchanged", "nothing changes in the cluster")
    if _groups(after) > _groups(before) and _hash(before) == _hash(after, _groups(before)):
        return Prediction("in-place", "worker group(s) added to the running cluster in place (no new cluster)")
    strategy = new.get("upgradeStrategy", {}).get("type", "NewCluster")
    if strategy == "NewCluster":
        return Prediction(
            "new-cluster", "a new RayCluster beside the running one, which serves until the new one is ready"
        )
    if strategy == "NewClusterWithIncrementalUpgrade":
        return Prediction(
            "incremental", "a new RayCluster that takes traffic step by step through the Gateway as it grows"
        )
    return Prediction(
        "ignored",
        "upgradeStrategy None: KubeRay creates no new cluster, so the change does not reach the running cluster",
    )


def rayjob(old: dict | None, new: dict) -> Prediction:
    """What a change from RayJob `old` to `new` (their `spec`s) does to a job already running."""
    if old is None:
        return Prediction("created", "a new Ray cluster and job submission")
    if old == new:
        return Prediction("unchanged", "nothing changes")
    return Prediction(
        "not-applied",
        "a running job keeps its cluster and its submission (KubeRay disregards a started RayJob's changes);"
        " the change applies to the job's next run under a new name",
    )
