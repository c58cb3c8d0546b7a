"""The team's vLLM compile cache (team.compileCache): a GCS FUSE volume on the workers of its LLM
workloads only, in a bucket the team may write and no other, and the engine phase it shortens."""

import re

import pytest

from components.coldstart import FIGURES
from components.config import ConfigError
from tests.infra.conftest import render_values, rendered, stack_values


def _workers(stack: str) -> dict[str, tuple[dict, dict]]:
    """name -> (worker pod template, head pod spec) of every RayService and RayJob."""
    out = {}
    for m in rendered(stack).manifests() if isinstance(stack, str) else stack.manifests():
        if m["kind"] in ("RayService", "RayJob"):
            cluster = m["spec"].get("rayClusterConfig") or m["spec"]["rayClusterSpec"]
            out[m["metadata"]["name"]] = (
                cluster["workerGroupSpecs"][0]["template"],
                cluster["headGroupSpec"]["template"],
            )
    return out


def test_an_llms_workers_mount_the_teams_cache_and_vllm_uses_it():
    workers = _workers("search-prod")
    template, head = workers["chat"]
    # GKE injects its sidecar, with the requests the plan counted in the team's quota and the fit check
    assert template["metadata"]["annotations"] == {
        "gke-gcsfuse/volumes": "true",
        "gke-gcsfuse/cpu-request": "250m",
        "gke-gcsfuse/memory-request": "256Mi",
    }
    [volume] = template["spec"]["volumes"]
    assert volume["csi"]["driver"] == "gcsfuse.csi.storage.gke.io"
    attributes = volume["csi"]["volumeAttributes"]
    assert attributes["bucketName"] == "rayplane-prod-search-data"
    assert set(attributes["mountOptions"].split(",")) == {"uid=1000", "gid=100", "implicit-dirs", "only-dir=vllm-cache"}
    [container] = template["spec"]["containers"]
    [mount] = container["volumeMounts"]
    assert mount["name"] == volume["name"]
    assert {"name": "VLLM_CACHE_ROOT", "value": mount["mountPath"]} in container["env"]
    head_env = [e["name"] for c in head["spec"]["containers"] for e in c.get("env", [])]
    assert "VLLM_CACHE_ROOT" not in head_env and "volumes" not in head["spec"]  # the head runs no engine
    for name in ("embed", "reindex"):  # no LLM: nothing to compile, no sidecar
        template, _ = workers[name]
        assert "volumes" not in template["spec"] and "metadata" not in template, name


def test_without_a_cache_every_new_engine_compiles():
    values = stack_values("search-prod")
    del values["rayplane:team"]["compileCache"]
    result = render_values("search-prod", values)
    assert "volumes" not in _workers(result)["chat"][0]["spec"]
    chat = next(w for w in result.outputs["capacity"]["workloads"] if w["name"] == "chat")
    engine = {p["name"]: p for p in chat["coldStart"]["phases"]}["engine"]
    assert engine["seconds"] == round(FIGURES["engine_s"].value + FIGURES["compile_s"].value)
    cached = next(w for w in rendered("search-prod").outputs["capacity"]["workloads"] if w["name"] == "chat")
    cached_engine = {p["name"]: p for p in cached["coldStart"]["phases"]}["engine"]
    assert cached_engine["seconds"] == round(FIGURES["engine_s"].value)  # its start measured with the cache
    assert "its compiled model from the team's cache" in cached_engine["how"]


@pytest.mark.parametrize(
    "cache",
    ["gs://rayplane-prod-models/vllm-cache", "gs://another-teams-bucket/vllm", "gs://rayplane-prod-search-data/"],
)
def test_a_cache_the_team_may_not_write_is_refused(cache):
    values = stack_values("search-prod")
    values["rayplane:team"]["compileCache"] = cache
    with pytest.raises(ConfigError) as exc:
        render_values("search-prod", values)
    [error] = exc.value.errors
    assert error.startswith("team")
    assert "writeBuckets" in error or "is not gs://BUCKET/PATH" in error


def test_a_cache_path_cannot_add_mount_options():
    values = stack_values("search-prod")
    values["rayplane:team"]["compileCache"] = "gs://rayplane-prod-search-data/cache,implicit-dirs=false"
    with pytest.raises(ConfigError) as exc:
        render_values("search-prod", values)
    [error] = exc.value.errors
    assert error.startswith("team.compileCache: 'gs://rayplane-prod-search-data/cache,implicit-dirs=false' is not")


def test_the_teams_identity_may_write_the_cache():
    grants = [
        r["inputs"]
        for r in rendered("search-prod").of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        if r["inputs"]["bucket"] == "rayplane-prod-search-data"
    ]
    assert [g["role"] for g in grants] == ["roles/storage.objectUser"] and not grants[0].get("condition")


def _cpu_needed(values: dict) -> float:
    values["rayplane:team"]["quota"]["cpu"] = 1
    with pytest.raises(ConfigError) as exc:
        render_values("search-prod", values)
    [error] = [e for e in exc.value.errors if e.startswith("team.quota.cpu")]
    return float(re.search(r"request ([\d.]+) vCPUs", error).group(1))


def test_the_sidecar_counts_in_the_teams_quota():
    """chat's two workers at its smallest each run a sidecar beside their container: the ResourceQuota
    counts its requests, so the plan does."""
    without = stack_values("search-prod")
    del without["rayplane:team"]["compileCache"]
    assert _cpu_needed(stack_values("search-prod")) - _cpu_needed(without) == 2 * 0.25
