"""The config models beyond their refusals (tests/infra/test_invalid_configs.py): defaults, derived
values, reporting every error at once, reading Pulumi's config map."""

import contextvars
import copy

import pulumi
import pytest

from components import config, plan
from components.config import ConfigError, parse

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
    assert l4.gpu_mode == "dra" and l4.provisioning == "on-demand" and l4.autoscaling.min_nodes == 0
    assert cfg.cluster.deletion_protection is True
    assert cfg.cluster.control_plane.public_endpoint is False
    assert cfg.cluster.region == "us-central1" and cfg.cluster.kubernetes_version == "1.34"
    assert parse(TEAM).team.namespace == "search"


def test_profiles_resolve_to_the_pools_that_can_satisfy_them():
    cfg = parse(
        with_(
            PLATFORM,
            "gpuProfiles",
            [
                {"name": "one"},
                {"name": "two", "count": 2},
                {"name": "sliced", "sharing": "time-sliced"},
            ],
        )
    )
    assert [[p.name for p in cfg.profile_pools(profile)] for profile in cfg.gpu_profiles] == [["l4"], ["l4"], ["l4"]]


def test_kueue_quotas_default_to_pool_capacity():
    l4, t4 = plan.platform(parse(with_(PLATFORM, "addons", {"kueue": {"queues": {"t4": {"gpus": 3}}}}))).pools
    # g2-standard-24: 24 vCPUs, 96 GiB, 2 GPUs; default maxNodes 1
    assert l4.queue_quota.model_dump() == {"gpus": 2, "cpu": 24, "memory_gib": 96}
    assert (t4.queue_quota.gpus, t4.queue_quota.cpu) == (3, 8)
    assert (l4.cluster_queue, t4.cluster_queue) == ("rp-test-l4", "rp-test-t4")


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
