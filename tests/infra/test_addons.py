"""Cluster add-ons: NVIDIA DRA driver, GPU profiles as claim templates, KubeRay, Kueue, metrics."""

import kubernetes_validate
import pytest
import yaml

from components import addons, conventions, versions
from components.addons import kuberay, kueue
from components.addons.kit import AddOn
from components.config import GpuProfile
from components.conventions import COMPUTE_CLASS_TOLERATION, DRA_LABELS, GPU_TOLERATION
from components.gpu_profiles import claim_template_spec
from tests.infra.conftest import PLATFORM_STACKS, render_values, rendered, stack_values

RELEASE = "kubernetes:helm.sh/v3:Release"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"


def release(stack, name):
    return stack.one(RELEASE, f"rayplane-{stack.stack}-{name}")


def test_dra_driver_exists_exactly_when_a_dra_pool_exists():
    dev = rendered("dev")
    assert release(dev, "nvidia-dra-driver")["inputs"]["version"] == versions.NVIDIA_DRA_DRIVER
    dev.one(DAEMONSET, "rayplane-dev-nvidia-driver-installer")

    values = stack_values("dev")
    values["rayplane:nodePools"] = [p | {"gpuMode": "device-plugin"} for p in values["rayplane:nodePools"]]
    del values["rayplane:gpuProfiles"], values["rayplane:tenants"]  # the tenants' grants name profiles
    no_dra = render_values("dev", values)
    assert not [r for r in no_dra.of_type(RELEASE) if "nvidia" in r["name"]]
    assert not no_dra.of_type(DAEMONSET)


def test_dra_driver_runs_only_on_dra_gpu_pools():
    dev = rendered("dev")
    dra_values = release(dev, "nvidia-dra-driver")["inputs"]["values"]
    assert dra_values["nvidiaDriverRoot"] == "/home/kubernetes/bin/nvidia"
    assert dra_values["gpuResourcesEnabledOverride"] is True
    plugin = dra_values["kubeletPlugin"]
    assert plugin["tolerations"] == [GPU_TOLERATION, COMPUTE_CLASS_TOLERATION]  # a ladder's nodes too
    [term] = plugin["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "rayplane.dev/gpu-mode", "operator": "In", "values": ["dra"]}]

    installer = dev.one(DAEMONSET)["inputs"]["spec"]["template"]["spec"]
    [term] = installer["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    required = {e["key"]: e["values"] for e in term["matchExpressions"]}
    assert required == {key: [value] for key, value in DRA_LABELS.items()}
    # ... and those labels are on the dra pool's nodes only
    labels = {
        r["inputs"]["nodeConfig"]["labels"]["rayplane.dev/pool"]: r["inputs"]["nodeConfig"]["labels"]
        for r in dev.of_type("gcp:container/nodePool:NodePool")
    }
    assert [pool for pool, lab in labels.items() if DRA_LABELS.items() <= lab.items()] == ["l4"]
    assert [pool for pool, lab in labels.items() if lab.get("rayplane.dev/gpu-mode") == "dra"] == ["l4"]


def test_sharing_feature_gates_follow_the_profiles():
    assert release(rendered("dev"), "nvidia-dra-driver")["inputs"]["values"]["featureGates"] == {
        "TimeSlicingSettings": True
    }
    assert release(rendered("prod"), "nvidia-dra-driver")["inputs"]["values"]["featureGates"] == {
        "TimeSlicingSettings": True
    }


# GpuConfig field and strategy names as in the driver's api/nvidia.com/resource/v1beta1/sharing.go.
DRIVER_CONFIG = {"driver": "gpu.nvidia.com"}
GPU_CONFIG = {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig"}


@pytest.mark.parametrize(
    ("profile", "exactly", "sharing"),
    [
        ({"name": "whole"}, {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1}, None),
        (
            {"name": "tp2", "count": 2},
            {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 2},
            None,
        ),
        (
            {"name": "ts", "sharing": "time-sliced", "interval": "Long"},
            {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1},
            {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}},
        ),
        (  # the driver's Default, written out: it cannot take an empty timeSlicingConfig (gpu_profiles.py)
            {"name": "ts-default", "sharing": "time-sliced"},
            {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 1},
            {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Default"}},
        ),
    ],
)
def test_each_profile_renders_a_valid_claim_template(profile, exactly, sharing):
    spec = claim_template_spec(GpuProfile.model_validate(profile))
    devices = spec["spec"]["devices"]
    assert devices["requests"] == [{"name": "gpu", "exactly": exactly}]
    if sharing is None:
        assert "config" not in devices
    else:
        [config] = devices["config"]
        assert config == {
            "requests": ["gpu"],
            "opaque": {**DRIVER_CONFIG, "parameters": {**GPU_CONFIG, "sharing": sharing}},
        }
    manifest = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": profile["name"], "namespace": "team"},
        "spec": spec,
    }
    kubernetes_validate.validate(manifest, "1.34", strict=True)


def test_team_gets_claim_templates_for_the_profiles_it_uses():
    team = rendered("search-dev")
    templates = {
        r["inputs"]["metadata"]["name"]: r for r in team.of_type("kubernetes:resource.k8s.io/v1:ResourceClaimTemplate")
    }
    assert set(templates) == {"l4-whole", "l4-shared"}
    assert {t["inputs"]["metadata"]["namespace"] for t in templates.values()} == {"search"}
    assert templates["l4-shared"]["inputs"]["spec"]["spec"]["devices"]["config"][0]["opaque"]["parameters"][
        "sharing"
    ] == {
        "strategy": "TimeSlicing",
        "timeSlicingConfig": {"interval": "Short"},
    }


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_kuberay_operator_release_is_pinned(stack):
    operator = release(rendered(stack), "kuberay-operator")["inputs"]
    assert (operator["chart"], operator["version"]) == ("kuberay-operator", versions.KUBERAY)
    assert operator["repositoryOpts"] == {"repo": "https://ray-project.github.io/kuberay-helm/"}
    assert operator["namespace"] == kuberay.CHART.namespace
    values = operator["values"]
    assert values["image"]["tag"] == f"v{versions.KUBERAY}"
    assert values["nodeSelector"] == {"rayplane.dev/pool": "system"}
    assert values["resources"]["requests"] == {"cpu": "100m", "memory": "512Mi"}
    assert {"name": "RayClusterStatusConditions", "enabled": True} in values["featureGates"]
    assert values["metrics"]["enabled"] is True


def test_kueue_is_pinned_ordered_after_kuberay_and_queues_after_kueue():
    prod = rendered("prod")
    kueue_release = release(prod, "kueue")
    assert (kueue_release["inputs"]["chart"], kueue_release["inputs"]["version"]) == (kueue.CHART.chart, versions.KUEUE)
    assert "rayplane-prod-kuberay-operator" in kueue_release["dependsOn"]
    for kind in ("ClusterQueue", "ResourceFlavor"):
        for obj in prod.of_type(f"kubernetes:kueue.x-k8s.io/v1beta2:{kind}"):
            assert "rayplane-prod-kueue" in obj["dependsOn"], obj["name"]
    config = yaml.safe_load(kueue_release["inputs"]["values"]["managerConfig"]["controllerManagerConfigYaml"])
    assert "ray.io/rayjob" in config["integrations"]["frameworks"]
    assert {"name": "rayplane.dev/gpu", "deviceClassNames": ["gpu.nvidia.com"]} in config["resources"][
        "deviceClassMappings"
    ]
    assert not [r for r in rendered("dev").of_type(RELEASE) if r["name"].endswith("-kueue")]  # dev opts out


def test_a_cluster_queue_per_gpu_pool_with_quotas():
    queues = {r["inputs"]["metadata"]["name"]: r["inputs"]["spec"] for r in rendered("prod").of_type(CLUSTER_QUEUE)}
    assert set(queues) == {f"rayplane-prod-{pool}" for pool in ("l4", "l4-flex", "l4-spot", "a100", "h100")}

    def quotas(queue, flavor):
        [group] = queues[queue]["resourceGroups"]
        [entry] = [f for f in group["flavors"] if f["name"] == flavor]
        return {r["name"]: r["nominalQuota"] for r in entry["resources"]}

    assert quotas("rayplane-prod-l4", "rayplane-prod-l4")["rayplane.dev/gpu"] == 12  # from config
    assert quotas("rayplane-prod-h100", "rayplane-prod-h100") == {"cpu": 416, "memory": "3744Gi", "nvidia.com/gpu": 16}
    # heads land on the system flavor, which offers no GPUs
    assert quotas("rayplane-prod-h100", "rayplane-prod-system")["nvidia.com/gpu"] == 0
    assert queues["rayplane-prod-a100"]["resourceGroups"][0]["flavors"][0]["name"] == "rayplane-prod-system"


def test_ray_metrics_are_scraped_on_the_ray_ports():
    prod = rendered("prod")
    monitors = {
        r["inputs"]["metadata"]["name"]: r["inputs"] for r in prod.resources if "monitoring.googleapis.com" in r["type"]
    }
    # fixed names (one platform per cluster): GMP's `job` label, which the teams' rules name
    heads, workers = monitors[conventions.RAY_HEADS_MONITOR], monitors[conventions.RAY_WORKERS_MONITOR]
    assert heads["kind"] == workers["kind"] == "ClusterPodMonitoring"
    assert heads["spec"]["selector"] == {"matchLabels": {"ray.io/node-type": "head"}}
    assert [e["port"] for e in heads["spec"]["endpoints"]] == [8080, 44217, 44227]
    assert workers["spec"]["selector"] == {"matchLabels": {"ray.io/node-type": "worker"}}
    assert [e["port"] for e in workers["spec"]["endpoints"]] == [8080]
    operator = monitors["rayplane-prod-kuberay-operator"]
    assert operator["kind"] == "PodMonitoring" and operator["metadata"]["namespace"] == kuberay.CHART.namespace
    assert [e["port"] for e in operator["spec"]["endpoints"]] == [conventions.OPERATOR_METRICS_PORT]


@pytest.mark.parametrize("stack", [*PLATFORM_STACKS, "search-dev"])
def test_everything_in_cluster_uses_the_stacks_own_provider(stack):
    objects = [r for r in rendered(stack).resources if r["type"].startswith("kubernetes:")]
    assert objects and all(r["provider"] for r in objects)  # never the ambient kubeconfig
    assert len({r["provider"] for r in objects}) == 1


def test_install_order_lists_every_add_on_once_after_what_it_waits_for():
    order = [step.addon for step in addons.INSTALL_ORDER]
    assert sorted(a.__name__ for a in order) == sorted(a.__name__ for a in AddOn.__subclasses__())
    for i, step in enumerate(addons.INSTALL_ORDER):
        assert set(step.after) <= set(order[:i]), step


def test_an_add_on_waits_for_the_helm_release_of_what_it_is_ordered_behind():
    prod = rendered("prod")
    monitor = prod.one(
        "kubernetes:monitoring.googleapis.com/v1:PodMonitoring", "rayplane-prod-kuberay-operator-metrics"
    )
    assert monitor["dependsOn"] == ["rayplane-prod-kuberay-operator"]
    # Kueue's scrape: in Kueue's namespace, once its release made it, and its token exists
    kueue_monitor = prod.one("kubernetes:monitoring.googleapis.com/v1:PodMonitoring", "rayplane-prod-kueue-metrics")
    assert kueue_monitor["dependsOn"] == ["rayplane-prod-kueue", "rayplane-prod-kueue-scraper-token"]
    assert release(prod, "kuberay-operator")["dependsOn"] == []  # ordered behind nothing
