"""Team stacks: RayServices and RayJobs from typed config, GPUs wired into Ray, payload archives
by content hash, the team's namespace guard rails and identity."""

import json
import shutil
import subprocess
import sys
import zipfile
from io import BytesIO

import pytest
import yaml

from components import payload
from components.config import ConfigError
from tests.infra.conftest import render_values, rendered, stack_values

RAY_SERVICE = "kubernetes:ray.io/v1:RayService"
RAY_JOB = "kubernetes:ray.io/v1:RayJob"


def ray_object(stack, kind, name, render=None):
    found = (render or rendered(stack)).manifests()
    [obj] = [m for m in found if m["kind"] == kind and m["metadata"]["name"] == name]
    return obj


def assistant_with_a_token():
    """assistant-dev with a Hugging Face token in rayplane:secrets, its chat service reading it."""
    values = stack_values("assistant-dev")
    values["rayplane:services"][0]["secretEnv"] = {"HF_TOKEN": "hfToken"}
    values["rayplane:secrets"] = {"hfToken": {"secure": "v1:" + "A" * 64}}  # the shape Pulumi writes
    return values


def workers(obj):
    cluster = obj["spec"].get("rayClusterConfig") or obj["spec"]["rayClusterSpec"]
    [group] = cluster["workerGroupSpecs"]
    return cluster, group


def test_dra_worker_group_has_a_claim_and_tells_ray_its_gpus():
    cluster, group = workers(ray_object("search-prod", "RayService", "chat"))
    pod = group["template"]["spec"]
    # Ray cannot see DRA GPUs: the l4-x2 profile's two GPUs, and their kind for accelerator-pinned replicas
    assert group["resources"] == {"GPU": "2", "accelerator_type:L4": "1"} and "rayStartParams" not in group
    assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": "l4-x2"}]
    [container] = pod["containers"]
    assert container["resources"]["claims"] == [{"name": "gpu"}]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert pod["tolerations"][0] == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    pools = ["l4", "l4-flex", "l4-spot"]  # the L4 ladder (tests/infra/test_ladders.py)
    assert term["matchExpressions"] == [{"key": "rayplane.dev/pool", "operator": "In", "values": pools}]
    assert (group["minReplicas"], group["maxReplicas"]) == (2, 4)
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert head["template"]["spec"]["nodeSelector"] == {"rayplane.dev/pool": "system"}
    assert cluster["enableInTreeAutoscaling"] is True and cluster["autoscalerOptions"]["version"] == "v2"


def test_device_plugin_worker_group_has_the_limit_and_no_claim():
    token = render_values("assistant-dev", assistant_with_a_token())
    _, group = workers(ray_object("assistant-dev", "RayService", "chat", token))
    pod = group["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "claims" not in container["resources"] and "resourceClaims" not in pod
    assert group["resources"] == {"GPU": "2", "accelerator_type:T4": "1"}
    assert container["env"][-1] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "assistant-secrets", "key": "hfToken"}},
    }


@pytest.mark.parametrize("stack", ["search-dev", "search-prod", "assistant-dev"])
def test_serve_clusters_run_in_serves_high_throughput_mode(stack):
    """HAProxy, gRPC between deployments, and for one plain model tokens streamed straight from the
    LLM server (KubeRay's high-throughput LLM sample): on the head and every worker, before the
    secrets; jobs serve nothing and keep Ray's defaults."""
    env = {}
    for obj in (m for m in rendered(stack).manifests() if m["kind"] in ("RayService", "RayJob")):
        cluster, group = workers(obj)
        pods = [cluster["headGroupSpec"]["template"]["spec"], group["template"]["spec"]]
        [head_env, worker_env] = [
            {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])} for pod in pods
        ]
        worker_env.pop("VLLM_CACHE_ROOT", None)  # the compile cache's, on LLM workers only (test_compile_cache)
        assert head_env == worker_env
        env[obj["kind"], obj["metadata"]["name"]] = head_env
    for (kind, name), values in env.items():
        high_throughput = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
        if kind == "RayJob":
            assert not any(key.startswith("RAY_SERVE") for key in values), name
        else:
            assert values.items() >= high_throughput.items(), name
    chats = [values for (kind, name), values in env.items() if name == "chat"]
    assert chats and all(c["RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING"] == "1" for c in chats)
    assert all(c["VLLM_USE_RAY_V2_EXECUTOR_BACKEND"] == "1" for c in chats)


def test_serve_config_comes_from_the_typed_app_args():
    service = ray_object("search-dev", "RayService", "embed")
    [app] = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    assert app["import_path"] == "workloads.serving.embeddings:build_app"
    # The app's builder sets its deployments' options from these args (no overrides beside them).
    assert app["args"]["profile"] == "cluster" and app["args"]["num_gpus"] == 0.5
    assert app["args"]["autoscaling"] == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16.0}
    assert "deployments" not in app
    assert app["runtime_env"] == {"working_dir": rendered("search-dev").outputs["payloadUri"]}  # no pip: the image
    chat = ray_object("search-prod", "RayService", "chat")
    assert chat["spec"]["upgradeStrategy"] == {"type": "NewCluster"}
    assert chat["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"] == {"redisAddress": "10.10.16.3:6379"}


def test_ray_job_runs_the_payload_entrypoint_and_cleans_up():
    job = ray_object("search-dev", "RayJob", "reindex")
    spec = job["spec"]
    assert spec["entrypoint"].startswith("python -m workloads.batch --config ")
    assert json.loads(spec["entrypoint"].split("--config ", 1)[1].strip("'"))["input"].startswith("gs://")
    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"].endswith(".zip")
    # KubeRay deletes the Ray cluster as the job ends and keeps the submitter Job with the driver's
    # logs (rayjob_controller.go@v1.7.0:1519-1548)
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 0
    assert (spec["activeDeadlineSeconds"], spec["backoffLimit"], spec["suspend"]) == (7200, 0, False)
    queued = ray_object("search-prod", "RayJob", "reindex")
    assert queued["spec"]["suspend"] is True
    assert queued["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "l4-shared"}
    queue = ray_object("search-prod", "LocalQueue", "l4-shared")
    assert queue["spec"] == {"clusterQueue": "rayplane-prod-l4"}


def test_namespace_guard_rails_rbac_and_identity():
    team = rendered("search-dev")
    quota = ray_object("search-dev", "ResourceQuota", "team-quota")["spec"]["hard"]
    assert quota["requests.nvidia.com/gpu"] == "4"
    assert quota["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"] == "4"
    assert ray_object("search-dev", "LimitRange", "container-defaults")
    binding = ray_object("search-dev", "RoleBinding", "team-member")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team-member"}
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "search-eng@example.com"}
    ]
    ksa = ray_object("search-dev", "ServiceAccount", "ray")
    assert ksa["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "search-ray@rayplane-dev.iam.gserviceaccount.com"
    }
    [wi] = team.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert wi["inputs"]["role"] == "roles/iam.workloadIdentityUser"
    assert wi["inputs"]["member"] == "serviceAccount:rayplane-dev.svc.id.goog[search/ray]"
    grants = {
        (r["inputs"]["bucket"], r["inputs"]["role"])
        for r in team.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    }
    assert grants == {
        ("rayplane-dev-rayplane-dev-workloads", "roles/storage.objectViewer"),
        ("rayplane-dev-models", "roles/storage.objectViewer"),
        ("rayplane-dev-search-data", "roles/storage.objectUser"),
    }
    pods = [
        workers(m)[1]["template"]["spec"] for m in rendered("search-dev").manifests() if m["apiVersion"] == "ray.io/v1"
    ]
    assert {pod["serviceAccountName"] for pod in pods} == {"ray"}


def test_secrets_stay_secret():
    values = assistant_with_a_token()
    secret = render_values("assistant-dev", values).one("kubernetes:core/v1:Secret")["inputs"]
    assert secret["stringData"] == {"hfToken": "[secret]"}
    values["rayplane:secrets"] = {"hfToken": "in-plain-text"}
    with pytest.raises(ConfigError) as exc:
        render_values("assistant-dev", values)
    assert exc.value.errors == ["secrets: set these with `pulumi config set --secret --path 'secrets.<name>'`"]


def _with_service(stack: str, **changes) -> dict:
    values = stack_values(stack)
    values["rayplane:services"] = [{**values["rayplane:services"][0], **changes}, *values["rayplane:services"][1:]]
    return values


def test_incremental_upgrades_use_the_platform_gateway():
    service = render_values(
        "search-prod", _with_service("search-prod", upgradeStrategy="NewClusterWithIncrementalUpgrade")
    )
    [chat] = [m for m in service.manifests() if m["metadata"]["name"] == "chat"]
    options = chat["spec"]["upgradeStrategy"]["clusterUpgradeOptions"]
    assert options["gatewayClassName"] == "gke-l7-rilb"


def test_identical_trees_give_identical_archives(tmp_path):
    copy = tmp_path / "workloads"
    shutil.copytree(payload.WORKLOADS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*"):
        path.touch()  # other timestamps must not matter
    assert payload.build_archive(copy) == payload.build_archive(payload.WORKLOADS)


def test_archive_unpacks_to_an_importable_working_dir(tmp_path):
    archive = zipfile.ZipFile(BytesIO(payload.build_archive()))
    top_level = {name.split("/", 1)[0] for name in archive.namelist()}
    # Ray strips a lone top-level folder from a working_dir zip; ours has two entries.
    assert top_level == {"workloads", "payload.json"}
    assert all(info.date_time == payload.ZIP_EPOCH for info in archive.infolist())
    archive.extractall(tmp_path)
    subprocess.run(
        [sys.executable, "-c", "import workloads.catalog as c; assert c.SERVICES and c.JOBS"], cwd=tmp_path, check=True
    )


def test_changing_a_payload_file_changes_the_working_dir_and_nothing_else(tmp_path, monkeypatch):
    before = rendered("search-dev")
    changed = tmp_path / "workloads"
    shutil.copytree(payload.WORKLOADS, changed, ignore=shutil.ignore_patterns("__pycache__"))
    (changed / "config.py").write_text((changed / "config.py").read_text() + "\n# a change\n")
    monkeypatch.setattr(payload, "WORKLOADS", changed)
    after = render_values("search-dev", stack_values("search-dev"))

    old, new = before.outputs["payloadUri"], after.outputs["payloadUri"]
    assert old != new
    digest = lambda uri: uri.rsplit("/", 1)[1].removesuffix(".zip")  # noqa: E731
    same = json.dumps(before.resources, sort_keys=True).replace(digest(old), digest(new))
    assert same == json.dumps(after.resources, sort_keys=True)
    changed_objects = {r["name"] for r in before.resources if digest(old) in json.dumps(r)}
    assert changed_objects == {"search-payload", "search-embed", "search-chat", "search-reindex"}
