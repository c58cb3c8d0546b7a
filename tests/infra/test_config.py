"""Every validation rule of the stack config, each with a bad value and the exact message."""

import contextvars
import copy

import pulumi
import pytest

from components import config
from components.config import ConfigError, parse
from components.config.platform import MIG_REFUSED

PLATFORM = {
    "kind": "platform",
    "gcp:project": "rayplane-test",
    "prefix": "rp-test",
    "cluster": {"location": "us-central1"},
    "nodePools": [
        {"name": "l4", "machineType": "g2-standard-24", "accelerator": "nvidia-l4", "zones": ["us-central1-a"]},
        {"name": "t4", "machineType": "n1-standard-8", "accelerator": "nvidia-tesla-t4", "gpuMode": "device-plugin"},
    ],
}
TEAM = {"kind": "team", "gcp:project": "rayplane-test", "platformStack": "org/rayplane/dev", "team": {"name": "search"}}


def with_(base: dict, path: str, value) -> dict:
    """A copy of `base` with the value at a dotted path (list indexes as numbers) replaced."""
    raw = copy.deepcopy(base)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


def errors_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(raw)
    return exc.value.errors


def test_valid_config_gets_defaults_from_the_models():
    cfg = parse(PLATFORM)
    l4, t4 = cfg.node_pools
    assert (l4.accelerator_count, t4.accelerator_count) == (2, 1)  # g2-standard-24 carries 2; N1 default 1
    assert l4.gpu_mode == "dra" and not l4.spot and l4.autoscaling.min_nodes == 0
    assert cfg.cluster.deletion_protection is True
    assert cfg.cluster.control_plane.public_endpoint is False
    assert cfg.cluster.region == "us-central1" and cfg.cluster.kubernetes_version == "1.34"
    assert parse(TEAM).team.namespace == "search"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "nodePools.1.machineType",
            "a2-highgpu-1g",
            "nodePools[1].accelerator: nvidia-tesla-t4 needs a n1-* machine type, got a2-highgpu-1g",
        ),
        (
            "nodePools.0.machineType",
            "a2-highgpu-1g",
            "nodePools[0].accelerator: nvidia-l4 needs a g2-standard-* machine type, got a2-highgpu-1g",
        ),
        (
            "nodePools.0.machineType",
            "g2-standard-7",
            "nodePools[0].accelerator: g2-standard-7 is not a known nvidia-l4 machine type (g2-standard-4, "
            "g2-standard-8, g2-standard-12, g2-standard-16, g2-standard-32, g2-standard-24, g2-standard-48, "
            "g2-standard-96)",
        ),
        (
            "nodePools.0.accelerator",
            "nvidia-l40",
            "nodePools[0].accelerator: Input should be 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-a100', "
            "'nvidia-a100-80gb', 'nvidia-h100-80gb', 'nvidia-h100-mega-80gb' or 'nvidia-h200-141gb'",
        ),
        (
            "nodePools.0.acceleratorCount",
            1,
            "nodePools[0].acceleratorCount: g2-standard-24 has exactly 2 nvidia-l4 GPU(s), got 1",
        ),
        (
            "nodePools.1.acceleratorCount",
            3,
            "nodePools[1].acceleratorCount: n1-standard-8 takes 1, 2, 4 nvidia-tesla-t4 GPU(s), got 3",
        ),
        (
            "nodePools.0.autoscaling",
            {"minNodes": 3, "maxNodes": 2},
            "nodePools[0].autoscaling.maxNodes: maxNodes (2) must be >= minNodes (3)",
        ),
        (
            "nodePools.0.autoscaling",
            {"minNodes": -1},
            "nodePools[0].autoscaling.minNodes: Input should be greater than or equal to 0",
        ),
        (
            "nodePools.1.gpuMode",
            "mig",
            "nodePools[1].gpuMode: Input should be 'dra' or 'device-plugin'",
        ),
        (
            "cluster.location",
            "us-central",
            "cluster.location: 'us-central' is neither a region (e.g. us-central1) nor a zone (e.g. us-central1-a)",
        ),
        (
            "nodePools.0.zones",
            ["us-central1-a", "central1a"],
            "nodePools[0].zones[1]: 'central1a' is not a zone (e.g. us-central1-a)",
        ),
        (
            "nodePools.0.zones",
            ["europe-west4-a"],
            "nodePools[0].zones[0]: europe-west4-a is not in the cluster's region us-central1",
        ),
        (
            "cluster.kubernetesVersion",
            "1.33",
            "cluster.kubernetesVersion: nodePools[0] uses gpuMode dra, which needs Kubernetes >= 1.34, got 1.33",
        ),
        (
            "cluster.kubernetesVersion",
            "latest",
            "cluster.kubernetesVersion: 'latest' is not a GKE version (e.g. 1.34 or 1.34.1-gke.1829001)",
        ),
        (
            "nodePools.0.name",
            "L4_pool",
            "nodePools[0].name: 'L4_pool' is not a valid name: lowercase letters, digits and '-', starting with a"
            " letter, not ending with '-', at most 30 characters",
        ),
        (
            "prefix",
            "rayplane-production-europe",
            "prefix: 'rayplane-production-europe' is not a valid name: lowercase letters, digits and '-', starting"
            " with a letter, not ending with '-', at most 24 characters",
        ),
        (
            "nodePools.0.name",
            "inference-l4-large-pool-x",
            "nodePools[0].name: 'rp-test-inference-l4-large-pool-x' plus Pulumi's 8-character suffix is 41"
            " characters; GKE allows 40",
        ),
        (
            "nodePools.1.name",
            "l4",
            "nodePools[1].name: 'l4' is already used by another node pool",
        ),
        (
            "nodePools.0.name",
            "system",
            "nodePools[0].name: 'system' is already used by another node pool",
        ),
        (
            "nodePools.0.autoscalling",
            {"maxNodes": 2},
            "nodePools[0].autoscalling: unknown key",
        ),
        (
            "cluster.controlPlane",
            {"publicEndpoint": True},
            "cluster.controlPlane.publicEndpoint: a public endpoint needs at least one entry in authorizedNetworks",
        ),
        (
            "cluster.controlPlane",
            {"authorizedNetworks": [{"name": "vpn", "cidr": "10.0.0.1/8"}]},
            "cluster.controlPlane.authorizedNetworks[0].cidr: Input is not a valid IPv4 network",
        ),
        (
            "network",
            {"nodesCidr": "10.0.0.0/16", "podsCidr": "10.0.128.0/17"},
            "network.podsCidr: 10.0.128.0/17 overlaps nodesCidr 10.0.0.0/16",
        ),
        (
            "gcp:project",
            "Rayplane",
            "gcp:project: String should match pattern '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'",
        ),
        ("nodepools", [], "nodepools: unknown key"),
    ],
)
def test_invalid_platform_config_names_key_path_and_reason(path, value, message):
    assert errors_of(with_(PLATFORM, path, value)) == [message]


DEVICE_PLUGIN_T4 = "t4 runs gpuMode device-plugin; GPU profiles need gpuMode dra"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "gpuProfiles",
            [{"name": "big", "count": 4}],
            f"gpuProfiles[0]: no node pool can satisfy it (l4 has 2 GPU(s) per node, the profile needs 4;"
            f" {DEVICE_PLUGIN_T4})",
        ),
        (
            "gpuProfiles",
            [{"name": "slice", "sharing": "mig"}],
            f"gpuProfiles[0].sharing: {MIG_REFUSED}",
        ),
        ("gpuProfiles", [{"name": "x", "pools": ["h100"]}], "gpuProfiles[0].pools[0]: no node pool named 'h100'"),
        ("gpuProfiles", [{"name": "x", "pools": ["t4"]}], f"gpuProfiles[0].pools[0]: {DEVICE_PLUGIN_T4}"),
        (
            "gpuProfiles",
            [{"name": "x"}, {"name": "x", "sharing": "time-sliced"}],
            "gpuProfiles[1].name: 'x' is already used by another profile",
        ),
        (
            "gpuProfiles",
            [{"name": "x", "interval": "Short"}],
            "gpuProfiles[0]: interval only applies to sharing: time-sliced",
        ),
        (
            "gpuProfiles",
            [{"name": "x", "migProfile": "1g.10gb"}],
            "gpuProfiles[0].migProfile: unknown key",
        ),
        (
            "gpuProfiles",
            [{"name": "x", "sharing": "mps", "activeThreadPercentage": 0}],
            "gpuProfiles[0].activeThreadPercentage: Input should be greater than or equal to 1",
        ),
        (
            "gpuProfiles",
            [{"name": "x", "sharing": "time-sliced", "interval": "Longest"}],
            "gpuProfiles[0].interval: Input should be 'Default', 'Short', 'Medium' or 'Long'",
        ),
        (
            "gpuProfiles",
            [{"name": "x", "sharing": "spatial"}],
            "gpuProfiles[0].sharing: Input should be 'exclusive', 'time-sliced', 'mps' or 'mig'",
        ),
        (
            "addons",
            {"kueue": {"queues": {"h100": {"gpus": 8}}}},
            "addons.kueue.queues.h100: no GPU node pool named 'h100'",
        ),
        (
            "nodePools.1.machineType",
            "n1-custom-8-32768",
            "nodePools[1].machineType: the size of n1-custom-8-32768 is unknown; set addons.kueue.queues.t4.cpu"
            " and memoryGib",
        ),
        (
            "addons",
            {"gpuDriverVersion": "newest"},
            "addons.gpuDriverVersion: String should match pattern '^(default|latest|[0-9]+\\.[0-9]+(\\.[0-9]+)?)$'",
        ),
        (
            "addons",
            {"kuberay": {"featureGates": {"RayServiceIncrementalUpgrade": True, "RayJobDeletionPolcy": True}}},
            "addons.kuberay.featureGates: RayServiceIncrementalUpgrade: set by rayplane from cluster.gatewayApi;"
            " leave it out\naddons.kuberay.featureGates: RayJobDeletionPolcy: KubeRay 1.7.0 has no such feature gate"
            " (RayClusterStatusConditions, RayJobDeletionPolicy, RayMultiHostIndexing, RayServiceIncrementalUpgrade,"
            " RayCronJob, SidecarSubmitterRestart, RayClusterNetworkPolicy, GCSFaultToleranceEmbeddedStorage,"
            " RayClusterMTLS, RayClusterHistoryServer, KubernetesWAS)",
        ),
        (
            "addons",
            {"kuberay": {"batchScheduler": "kueue"}},
            "addons.kuberay.batchScheduler: Input should be '', 'volcano', 'yunikorn', 'kai-scheduler' or"
            " 'scheduler-plugins'",
        ),
    ],
)
def test_invalid_gpu_profiles_and_addons(path, value, message):
    assert errors_of(with_(PLATFORM, path, value)) == message.split("\n")


def test_profiles_resolve_to_the_pools_that_can_satisfy_them():
    cfg = parse(
        with_(
            PLATFORM,
            "gpuProfiles",
            [
                {"name": "one"},
                {"name": "two", "count": 2},
                {"name": "mps", "sharing": "mps", "pinnedMemoryLimit": "8Gi"},
            ],
        )
    )
    assert [[p.name for p in cfg.profile_pools(profile)] for profile in cfg.gpu_profiles] == [["l4"], ["l4"], ["l4"]]


def test_kueue_quotas_default_to_pool_capacity():
    cfg = parse(with_(PLATFORM, "addons", {"kueue": {"queues": {"t4": {"gpus": 3}}}}))
    l4, t4 = cfg.node_pools
    # g2-standard-24: 24 vCPUs, 96 GiB, 2 GPUs; default maxNodes 1
    assert cfg.queue_quota(l4).model_dump() == {"gpus": 2, "cpu": 24, "memory_gib": 96}
    assert cfg.queue_quota(t4).gpus == 3 and cfg.queue_quota(t4).cpu == 8


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**TEAM, "kind": "platfrom"}, "kind: must be one of platform, team, got 'platfrom'"),
        ({k: v for k, v in TEAM.items() if k != "kind"}, "kind: must be one of platform, team, got None"),
        (
            {**TEAM, "platformStack": "dev"},
            "platformStack: String should match pattern '^[\\w.-]+/[\\w.-]+/[\\w.-]+$'",
        ),
        (
            {**TEAM, "team": {"name": "search", "namespace": "Search"}},
            "team.namespace: 'Search' is not a valid name: lowercase letters, digits and '-', starting with a"
            " letter, not ending with '-', at most 63 characters",
        ),
        ({**TEAM, "team": {"nmae": "search"}}, "team.name: Field required"),
        ({k: v for k, v in TEAM.items() if k != "gcp:project"}, "gcp:project: Field required"),
    ],
)
def test_invalid_team_config(raw, message):
    assert message in errors_of(raw)


def test_all_errors_are_reported_at_once():
    raw = with_(with_(PLATFORM, "nodePools.0.machineType", "a2-highgpu-1g"), "nodePools.1.acceleratorCount", 3)
    assert len(errors_of(raw)) == 2


def _load(values: dict[str, str]):
    def run():
        pulumi.runtime.set_all_config(values)
        return config.load()

    return contextvars.Context().run(run)


def test_load_reads_every_rayplane_key_from_pulumi_config():
    cfg = _load(
        {
            "gcp:project": "rayplane-test",
            "rayplane:kind": "team",
            "rayplane:platformStack": "org/rayplane/dev",
            "rayplane:team": '{"name": "search"}',
            "kubernetes:context": "ignored: another provider's key",
        }
    )
    assert cfg.team.name == "search" and cfg.project == "rayplane-test"


def test_load_rejects_a_misspelt_top_level_key():
    with pytest.raises(ConfigError) as exc:
        _load({"gcp:project": "rayplane-test", "rayplane:kind": "team", "rayplane:platformStak": "o/p/s"})
    assert "platformStak: unknown key" in exc.value.errors
    assert "platformStack: Field required" in exc.value.errors
