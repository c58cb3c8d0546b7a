"""What the real cluster accepts, checked against the vendored upstream sources (upstream/):
KubeRay's and Kueue's admission rules, the feature gates each component really has, the chart
values each chart really reads, GKE's DRA autoscaling label and Gateway subnet, the Ray image and
its driver, and what a GPU profile shares."""

import copy
import hashlib
import re
import typing

import pytest
import yaml

from components import gpu_profiles
from components.addons import kueue as kueue_addon
from components.config import ConfigError
from components.config.platform import KUBERAY_FEATURE_GATES
from components.conventions import DEVICE_PLUGIN_GPU, DRA_LABELS, GPU_DEVICE_CLASS, KUEUE_DRA_GPU
from components.gpu import ACCELERATORS
from policies import admission
from tests.infra import upstream
from tests.infra.conftest import PLATFORM_STACKS, render_values, rendered, stack_values
from tools import image as tools_image
from tools.render import stack_names

RELEASE = "kubernetes:helm.sh/v3:Release"
DRA_AUTOSCALER_LABEL = "cloud.google.com/gke-nvidia-gpu-dra-driver"


def manifests(kind: str, stacks=None) -> list[dict]:
    return [m for stack in stacks or stack_names() for m in rendered(stack).manifests() if m["kind"] == kind]


def release_values(stack: str, name: str) -> dict:
    return rendered(stack).one(RELEASE, f"rayplane-{stack}-{name}")["inputs"]["values"]


def errors_of(stack: str, values: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        render_values(stack, values)
    return exc.value.errors


# -- KubeRay's and Kueue's admission rules (policies/admission.py)


def test_the_encoded_rules_are_in_the_pinned_upstream_sources():
    for source, fragments in admission.SOURCES.items():
        text = upstream.text(source)
        assert [f for f in fragments if f not in text] == [], source


def test_every_rayservice_and_rayjob_passes_kuberays_webhook_rules():
    upstream.path("kuberay")
    services, jobs = manifests("RayService"), manifests("RayJob")
    assert services and jobs
    assert {s["metadata"]["name"]: admission.rayservice_errors(s) for s in services} == {
        s["metadata"]["name"]: [] for s in services
    }
    assert [admission.rayjob_errors(j) for j in jobs] == [[] for _ in jobs]


def test_every_queued_rayjob_is_one_kueue_admits_and_runs_at_a_fixed_size():
    upstream.path("kueue")
    queued = [j for j in manifests("RayJob") if admission.QUEUE_LABEL in j["metadata"].get("labels", {})]
    assert queued  # search-prod's reindex
    for job in queued:
        assert admission.kueue_rayjob_errors(job) == []
        cluster = job["spec"]["rayClusterSpec"]
        [group] = cluster["workerGroupSpecs"]
        assert cluster["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in cluster
        # what its payload needs: one model actor of 1 GPU (workers.replicas 0..4 allows it)
        assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 1
    # RayServices never carry a queue label: Kueue does not manage them (manageJobsWithoutQueueName: false)
    config = yaml.safe_load(release_values("prod", "kueue")["managerConfig"]["controllerManagerConfigYaml"])
    assert config["manageJobsWithoutQueueName"] is False
    assert all(admission.QUEUE_LABEL not in s["metadata"].get("labels", {}) for s in manifests("RayService"))


def test_the_rules_catch_what_the_webhooks_refuse():
    [job] = [j for j in manifests("RayJob", ["search-prod"])]
    autoscaling = copy.deepcopy(job)
    autoscaling["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = True
    assert admission.kueue_rayjob_errors(autoscaling) == [
        "a kueue managed job should only use autoscaling when workload slicing is enabled"
    ]
    kept = copy.deepcopy(job)
    kept["spec"]["shutdownAfterJobFinishes"] = False
    assert "a kueue managed job should delete the cluster after finishing" in admission.kueue_rayjob_errors(kept)
    assert "is not allowed to be suspended" in " ".join(admission.rayjob_errors(kept))
    [service] = [s for s in manifests("RayService", ["search-dev"]) if s["metadata"]["name"] == "chat"]
    both = copy.deepcopy(service)
    both["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["rayStartParams"] = {"num-gpus": "1"}
    assert admission.rayservice_errors(both) == [
        "resource fields should not be set in both rayStartParams and Resources for gpu-workers group"
    ]
    incremental = copy.deepcopy(service)
    incremental["spec"]["upgradeStrategy"] = {"type": "NewClusterWithIncrementalUpgrade"}
    assert admission.rayservice_errors(incremental) == [
        "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"
    ]


def test_an_incremental_upgrade_renders_what_kuberay_requires():
    upstream.path("kuberay")
    values = stack_values("search-prod")
    values["rayplane:services"][0]["upgradeStrategy"] = "NewClusterWithIncrementalUpgrade"
    [chat] = [m for m in render_values("search-prod", values).manifests() if m["metadata"]["name"] == "chat"]
    assert admission.rayservice_errors(chat) == []


# -- feature gates: only gates the pinned versions have


def test_kueue_gates_exist_and_dra_quota_accounting_is_on_with_dra_pools():
    known = upstream.go_feature_gates("kueue/kube_features.go.txt")
    assert kueue_addon.DRA_GATE in known and "DynamicResourceAllocation" not in known
    for stack in PLATFORM_STACKS:
        if not stack_values(stack)["rayplane:addons"].get("kueue", {}).get("enabled", True):
            continue
        gates = release_values(stack, "kueue")["controllerManager"]["featureGates"]
        assert {g["name"] for g in gates} <= known
        assert {"name": kueue_addon.DRA_GATE, "enabled": True} in gates  # prod has dra pools


def test_kueue_charges_a_device_plugin_gpu_request_to_the_device_plugin_queues():
    """The DRA driver's chart gives the GPU DeviceClass `extendedResourceName: nvidia.com/gpu` under
    resource.k8s.io/v1 (templates/deviceclass-gpu.yaml@v25.12.0:12-14, no value turns it off). With
    Kueue's KueueDRAIntegrationExtendedResource (kube_features.go@v0.19.2:748-751, beta, on) Kueue looks
    up the DeviceClass of a pod's extended resource and charges the request to that class's mapped
    quota name (pkg/dra/extended_resources.go@v0.19.2:134-157): a device-plugin pod's nvidia.com/gpu
    would count as our DRA resource, which the device-plugin queues do not cover, and never be admitted."""
    template = upstream.text("nvidia-dra-driver/deviceclass-gpu.yaml.txt")
    assert f"name: {GPU_DEVICE_CLASS}" in template and f"extendedResourceName: {DEVICE_PLUGIN_GPU}" in template
    features = upstream.text("kueue/kube_features.go.txt")
    assert re.search(
        rf"{kueue_addon.EXTENDED_RESOURCE_GATE}: {{\n(.*\n)*?.*Default: true, PreRelease: featuregate.Beta", features
    )
    prod = yaml.safe_load(release_values("prod", "kueue")["managerConfig"]["controllerManagerConfigYaml"])
    assert prod["resources"]["deviceClassMappings"] == [{"name": KUEUE_DRA_GPU, "deviceClassNames": [GPU_DEVICE_CLASS]}]
    gates = release_values("prod", "kueue")["controllerManager"]["featureGates"]
    assert {"name": kueue_addon.EXTENDED_RESOURCE_GATE, "enabled": False} in gates
    # so a device-plugin worker's request is charged as itself, which its pool's queue covers
    queues = {m["metadata"]["name"]: m for m in rendered("prod").manifests() if m["kind"] == "ClusterQueue"}
    covered = {name: set(q["spec"]["resourceGroups"][0]["coveredResources"]) for name, q in queues.items()}
    assert DEVICE_PLUGIN_GPU in covered["rayplane-prod-h100"] and KUEUE_DRA_GPU in covered["rayplane-prod-l4"]


def test_kuberay_gates_exist_and_incremental_upgrades_follow_the_gateway_api():
    known = upstream.go_feature_gates("kuberay/features.go.txt")
    assert set(KUBERAY_FEATURE_GATES) == known
    for stack in PLATFORM_STACKS:
        gates = {g["name"]: g["enabled"] for g in release_values(stack, "kuberay-operator")["featureGates"]}
        assert set(gates) <= known
        gateway = stack_values(stack)["rayplane:cluster"].get("gatewayApi", False)
        assert gates["RayServiceIncrementalUpgrade"] is gateway
    assert (rendered("dev").outputs["gatewayClassName"], rendered("prod").outputs["gatewayClassName"]) == (
        None,
        "gke-l7-rilb",
    )


# -- the Helm values each chart really reads

CHART_VALUES = {
    "kuberay-operator": "kuberay/chart-values.yaml",
    "kueue": "kueue/chart-values.yaml",
    "nvidia-dra-driver": "nvidia-dra-driver/chart-values.yaml",
}
FREE_FORM = {"nodeSelector", "tolerations", "affinity", "labels", "annotations", "env", "featureGates"}
CONTAINER_RESOURCES = {"limits", "requests", "claims"}


def unknown_values(ours, chart, at: str = "") -> list[str]:
    """Keys of `ours` that the chart's values.yaml does not have (Helm ignores them silently)."""
    if not isinstance(ours, dict):
        return []
    found = []
    for key, value in ours.items():
        path = f"{at}.{key}" if at else key
        free = key in FREE_FORM or (
            key == "resources" and isinstance(value, dict) and set(value) <= CONTAINER_RESOURCES
        )
        if not isinstance(chart, dict) or key not in chart:
            found.append(path)
        elif not free and isinstance(chart[key], dict) and chart[key]:
            found += unknown_values(value, chart[key], path)
    return found


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_every_helm_value_is_one_the_chart_reads(stack):
    releases = {r["name"].removeprefix(f"rayplane-{stack}-"): r for r in rendered(stack).of_type(RELEASE)}
    assert releases and set(releases) <= set(CHART_VALUES)
    for name, release in releases.items():
        chart = upstream.load_yaml(CHART_VALUES[name])
        assert unknown_values(release["inputs"]["values"], chart) == [], name


def test_the_values_check_catches_a_misspelt_key():
    chart = upstream.load_yaml(CHART_VALUES["kuberay-operator"])
    assert unknown_values({"nodeSelector": {"any": "x"}, "metrics": {"serviceMonitor": {"enable": True}}}, chart) == [
        "metrics.serviceMonitor.enable"
    ]


def test_dra_driver_gates_are_the_sharing_gates_the_driver_has():
    # NVIDIA/k8s-dra-driver-gpu v25.12.0 pkg/featuregates/featuregates.go:63-76 (not vendored):
    # TimeSlicingSettings, alpha, off by default (MPSSupport too, but MPS is refused on GKE).
    assert set(release_values("dev", "nvidia-dra-driver")["featureGates"]) == {"TimeSlicingSettings"}


# -- GKE: DRA pools scale from zero; the internal Gateway has its proxy-only subnet


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_every_dra_pool_tells_the_cluster_autoscaler_it_offers_dra_gpus(stack):
    pools = [
        r
        for r in rendered(stack).of_type("gcp:container/nodePool:NodePool")
        if r["inputs"]["nodeConfig"].get("guestAccelerators")
    ]
    modes = {p["inputs"]["nodeConfig"]["labels"]["rayplane.dev/gpu-mode"] for p in pools}
    assert modes == {"dra", "device-plugin"}
    for pool in pools:
        labels = pool["inputs"]["nodeConfig"]["labels"]
        dra = labels["rayplane.dev/gpu-mode"] == "dra"
        assert (labels.get(DRA_AUTOSCALER_LABEL) == "true") is dra, pool["name"]
    assert DRA_LABELS[DRA_AUTOSCALER_LABEL] == "true"


def test_the_gateway_api_brings_a_proxy_only_subnet_its_proxies_reach_pods_from():
    prod = rendered("prod")
    proxy = prod.one("gcp:compute/subnetwork:Subnetwork", "rayplane-prod-proxy-only")["inputs"]
    assert (proxy["purpose"], proxy["role"], proxy["region"]) == ("REGIONAL_MANAGED_PROXY", "ACTIVE", "us-central1")
    assert proxy["ipCidrRange"] in prod.one("gcp:compute/firewall:Firewall")["inputs"]["sourceRanges"]
    assert len(rendered("dev").of_type("gcp:compute/subnetwork:Subnetwork")) == 1  # no Gateway API, no proxies


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.32.0.0/23", "network.proxyOnlyCidr: 10.32.0.0/23 overlaps podsCidr 10.32.0.0/14"),
        ("10.24.0.0/27", "network.proxyOnlyCidr: 10.24.0.0/27 is smaller than a /26, the smallest proxy-only subnet"),
    ],
)
def test_a_proxy_only_subnet_that_cannot_work_is_refused(cidr, message):
    values = stack_values("prod")
    values["rayplane:network"] = {**values["rayplane:network"], "proxyOnlyCidr": cidr}
    assert errors_of("prod", values) == [message]


# -- the Ray image and the NVIDIA driver


def by_digest(image: str) -> str:
    """The reference a team runs for its platform's `image` tag: the digest Artifact Registry has for
    it (the render's mock: a digest of its name and tag, tools/render.py)."""
    path, tag = image.rsplit(":", 1)
    name = path.rsplit("/", 1)[1]
    return f"{path}@sha256:{hashlib.sha256(f'{name}:{tag}'.encode()).hexdigest()}"


def test_every_ray_container_runs_the_platforms_image_by_digest():
    image = rendered("prod").outputs["rayImage"]  # built into the platform's own repository
    assert re.fullmatch(
        r"us-central1-docker\.pkg\.dev/rayplane-prod/rayplane-prod-images/ray:2\.60\.0-py312-cu130-[0-9a-f]{12}", image
    )
    for stack in ("search-prod", "search-dev", "assistant-dev"):
        platform = stack_values(stack)["rayplane:platformStack"].rsplit("/", 1)[-1]
        kinds = [m for m in rendered(stack).manifests() if m["apiVersion"] == "ray.io/v1"]
        images = {
            c["image"]
            for m in kinds
            for cluster in [m["spec"].get("rayClusterConfig") or m["spec"]["rayClusterSpec"]]
            for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
            for c in group["template"]["spec"]["containers"]
        }
        assert images == {by_digest(rendered(platform).outputs["rayImage"])}


DIGEST = "@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "driver", "message"),
    [
        (
            "rayproject/ray-llm:2.60.0-py312-cu130",
            "570.86.15",
            "addons.gpuDriverVersion: rayImage rayproject/ray-llm:2.60.0-py312-cu130 is built for CUDA 13.0, which"
            " needs NVIDIA driver >= 580; got 570.86.15",
        ),
        (
            "rayproject/ray-llm:2.60.0-py312-cu130",
            "default",
            "addons.gpuDriverVersion: rayImage rayproject/ray-llm:2.60.0-py312-cu130 is built for CUDA 13.0, which"
            " needs NVIDIA driver >= 580; 'default' installs GKE's default driver branch, which can be older: set"
            " latest or a version",
        ),
        (
            "rayproject/ray-llm:2.58.0-py312-cu130",
            "latest",
            "rayImage: rayproject/ray-llm:2.58.0-py312-cu130 runs Ray 2.58.0; the payloads are built and tested with"
            " Ray 2.60.0",
        ),
        (
            "rayproject/ray-llm:latest",
            "latest",
            "rayImage: 'rayproject/ray-llm:latest' is not a Ray image tagged <ray version>-py<python>-cu<cuda> (e.g."
            " rayproject/ray-llm:2.60.0-py312-cu130), optionally pinned with @sha256:<digest>",
        ),
    ],
)
def test_the_image_and_the_driver_are_a_checked_pair(image, driver, message):
    values = stack_values("dev")
    values["rayplane:rayImage"] = image
    values["rayplane:addons"] = {**values["rayplane:addons"], "gpuDriverVersion": driver}
    assert errors_of("dev", values) == [message]


@pytest.mark.parametrize(
    ("image", "driver"),
    [
        ("rayproject/ray-llm:2.60.0-py312-cu130" + DIGEST, "580.95.05"),
        ("us-docker.pkg.dev/acme/ray/ray-llm:2.60.0-py311-cu128", "default"),  # CUDA 12: any supported driver
    ],
)
def test_a_pinned_or_older_cuda_image_with_a_fitting_driver_renders(image, driver):
    values = stack_values("dev")
    values["rayplane:rayImage"] = image
    values["rayplane:addons"] = {**values["rayplane:addons"], "gpuDriverVersion": driver}
    built = render_values("dev", values).outputs["rayImage"]
    cuda = image.split("@")[0].rsplit(":", 1)[1]
    assert re.fullmatch(
        rf"us-central1-docker\.pkg\.dev/rayplane-dev/rayplane-dev-images/ray:{cuda}-[0-9a-f]{{12}}", built
    )
    # built on the image as given, or on Docker Hub's through the mirror
    base = image if "pkg.dev" in image else f"us-central1-docker.pkg.dev/rayplane-dev/rayplane-dev-dockerhub/{image}"
    assert f"_BASE={base}," in " ".join(tools_image.commands(tools_image.parse_platform(values))[2])


# -- what a GPU profile shares, and how Ray learns about the GPUs


def _json_keys(model) -> set[str]:
    return {field.alias for field in model.model_fields.values()}


def test_the_driver_config_we_render_is_the_drivers_own_api():
    """Our GpuConfig models against NVIDIA/k8s-dra-driver-gpu v25.12.0 api/nvidia.com/resource/v1beta1:
    the group, version and kind (api.go), the sharing strategies, time slices and JSON keys (sharing.go)."""
    api, sharing = upstream.text("nvidia-dra-driver/api.go.txt"), upstream.text("nvidia-dra-driver/sharing.go.txt")
    group, version = gpu_profiles.GpuConfig.model_fields["api_version"].default.split("/")
    assert f'GroupName = "{group}"' in api and f'Version   = "{version}"' in api
    assert re.search(r'GpuConfigKind\s+= "GpuConfig"', api)
    literals = [
        *typing.get_args(gpu_profiles.GpuSharing.model_fields["strategy"].annotation),
        *typing.get_args(gpu_profiles.TimeSlicingConfig.model_fields["interval"].annotation),
    ]
    assert literals and [value for value in literals if f'= "{value}"' not in sharing] == []
    keys = _json_keys(gpu_profiles.GpuSharing) | _json_keys(gpu_profiles.TimeSlicingConfig)
    assert [key for key in keys if not re.search(rf'json:"{key}[,"]', sharing)] == []


def test_every_time_sliced_claim_names_its_interval():
    """The driver validates a TimeSlicing config by calling a value method through its *pointer*
    `Interval` (validate.go@v25.12.0:57-58; sharing.go: `Interval *TimeSliceInterval`, omitempty), and
    fills the default in only where the whole config is absent (gpuconfig.go@v25.12.0:56-72): an empty
    `timeSlicingConfig` dereferences nil in the kubelet plugin. prod's l4-shared gives no interval."""
    assert "return c.Interval.Validate()" in upstream.text("nvidia-dra-driver/validate.go.txt")
    assert re.search(
        r"Interval \*TimeSliceInterval `json:\"interval,omitempty\"`", upstream.text("nvidia-dra-driver/sharing.go.txt")
    )
    sliced = [
        config["opaque"]["parameters"]["sharing"]
        for stack in stack_names()
        for m in rendered(stack).manifests()
        if m["kind"] == "ResourceClaimTemplate"
        for config in m["spec"]["spec"]["devices"].get("config", [])
    ]
    assert {s["strategy"] for s in sliced} == {"TimeSlicing"}  # MPS is refused (config/platform.py)
    assert {s["timeSlicingConfig"]["interval"] for s in sliced} == {"Default", "Short"}  # prod and dev l4-shared


def test_no_mig_device_is_ever_claimed():
    for stack in stack_names():
        for manifest in rendered(stack).manifests():
            assert "mig.nvidia.com" not in yaml.safe_dump(manifest), manifest["metadata"]["name"]


def test_every_gpu_worker_group_tells_ray_its_gpus_and_their_kind():
    pools = {p["name"]: p for stack in PLATFORM_STACKS for p in rendered(stack).outputs["gpuNodePools"]}
    groups = [
        group
        for kind in ("RayService", "RayJob")
        for m in manifests(kind)
        for group in (m["spec"].get("rayClusterConfig") or m["spec"]["rayClusterSpec"])["workerGroupSpecs"]
    ]
    assert groups
    for group in groups:
        [term] = group["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        kinds = {ACCELERATORS[pools[name]["accelerator"]].ray_type for name in term["matchExpressions"][0]["values"]}
        [kind] = kinds
        assert set(group["resources"]) == {"GPU", f"accelerator_type:{kind}"}
        assert int(group["resources"]["GPU"]) >= 1 and "rayStartParams" not in group


def _team_with(stack: str, service: int, **args) -> dict:
    values = stack_values(stack)
    target = values["rayplane:services"][service]
    target["args"] = {**target["args"], **args}
    return values


def test_a_replica_pinned_to_another_accelerator_is_refused():
    values = _team_with("search-dev", 1, accelerator_type="A100")  # chat on l4-whole
    assert errors_of("search-dev", values) == ["services[1].args.accelerator_type: 'A100', but l4-whole gives L4 GPUs"]


def test_cross_pod_sharing_is_not_offered_every_pod_gets_its_own_claim():
    for manifest in manifests("ResourceClaimTemplate"):
        assert manifest["kind"] == "ResourceClaimTemplate"  # a template: one claim per pod
    assert not manifests("ResourceClaim")
