"""Property-based: configs generated within the models' bounds render, and every object they render
is one the cluster accepts (built-in kinds strictly at the GKE minor, custom resources strictly
against their upstream CRDs, KubeRay's admission rules)."""

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from components.gpu import ACCELERATORS
from components.regions import ZONES
from policies import admission
from tests.infra import upstream
from tests.infra.conftest import render_values, stack_values
from tools import render as render_tool

# Derandomized (the same examples in every run); no shrinking: each example is a whole render.
PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
CUSTOM_GROUPS = {"ray.io", "kueue.x-k8s.io", "monitoring.googleapis.com"}


def accepted_by_the_cluster(manifests: list[dict]) -> None:
    upstream.crd_schemas()
    for manifest in manifests:
        if manifest["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            upstream.validate_cr(manifest)
        else:
            kubernetes_validate.validate(manifest, "1.34", strict=True)
        if manifest["kind"] == "RayService":
            assert admission.rayservice_errors(manifest) == []
        if manifest["kind"] == "RayJob":
            assert admission.rayjob_errors(manifest) == [] and admission.kueue_rayjob_errors(manifest) == []


@st.composite
def gpu_pools(draw, index: int) -> dict:
    accelerator = draw(st.sampled_from(sorted(ACCELERATORS)))
    family = ACCELERATORS[accelerator]
    pool = {"name": f"p{index}", "accelerator": accelerator, "gpuMode": draw(st.sampled_from(["dra", "device-plugin"]))}
    if family.gpus_per_machine:
        pool["machineType"] = draw(st.sampled_from(sorted(family.gpus_per_machine)))
    else:
        pool["machineType"] = "n1-standard-8"
        pool["acceleratorCount"] = draw(st.sampled_from(family.attachable_counts))
    pool["provisioning"] = draw(st.sampled_from(["on-demand", "spot", "flex-start", "reservation"]))
    if pool["provisioning"] == "reservation":
        pool["reservation"] = f"r{index}"
    low = 0 if pool["provisioning"] == "flex-start" else draw(st.integers(0, 2))  # flex-start holds no nodes
    pool["autoscaling"] = {"minNodes": low, "maxNodes": draw(st.integers(max(low, 1), 4))}
    return pool


def _gpus(pool: dict) -> int:
    return pool.get("acceleratorCount") or ACCELERATORS[pool["accelerator"]].gpus_per_machine[pool["machineType"]]


@st.composite
def platform_configs(draw) -> dict:
    pools = [draw(gpu_pools(i)) for i in range(draw(st.integers(1, 3)))]
    dra = [p for p in pools if p["gpuMode"] == "dra"]
    profiles = []
    if dra:
        for i in range(draw(st.integers(0, 3))):
            sharing = draw(st.sampled_from(["exclusive", "time-sliced"]))
            profile = {"name": f"g{i}", "sharing": sharing, "count": draw(st.integers(1, max(map(_gpus, dra))))}
            if sharing == "time-sliced":
                profile["interval"] = draw(st.sampled_from(["Default", "Short", "Medium", "Long"]))
            profiles.append(profile)
    region = draw(st.sampled_from(sorted(ZONES)))
    location = draw(st.sampled_from([region, f"{region}-{ZONES[region][0]}"]))
    return {
        "gcp:project": "rayplane-property",
        "rayplane:kind": "platform",
        "rayplane:prefix": draw(st.from_regex(r"[a-z][a-z0-9]{2,10}", fullmatch=True)),
        "rayplane:cluster": {"location": location, "gatewayApi": draw(st.booleans())},
        "rayplane:nodePools": pools,
        "rayplane:gpuProfiles": profiles,
        "rayplane:addons": {"kueue": {"enabled": draw(st.booleans())}, "monitoring": draw(st.booleans())},
    }


@PROPERTY_SETTINGS
@given(platform_configs())
def test_generated_platforms_render_objects_the_cluster_accepts(values):
    result = render_values("property", values)
    assert {p["name"] for p in result.outputs["gpuNodePools"]} == {p["name"] for p in values["rayplane:nodePools"]}
    accepted_by_the_cluster(result.manifests())


@st.composite
def team_configs(draw) -> dict:
    """Teams on the dev platform (l4-whole, l4-shared, l4-long on one-L4 nodes; t4: 2 T4s per node)."""
    profiles = draw(
        st.lists(st.sampled_from(["l4-whole", "l4-shared", "l4-long"]), min_size=1, max_size=3, unique=True)
    )
    services = []
    for i in range(draw(st.integers(0, 2))):
        num_gpus = draw(st.sampled_from([0.25, 0.5, 1.0]))
        workers = draw(st.integers(1, 3))
        most = draw(st.integers(1, int(1 / num_gpus) * workers))
        services.append(
            {
                "name": f"embed{i}",
                "payload": "embeddings",
                "args": {
                    "num_gpus": num_gpus,
                    "autoscaling": {"min_replicas": draw(st.integers(0, most)), "max_replicas": most},
                },
                "workers": {"gpuProfile": draw(st.sampled_from(profiles)), "replicas": {"min": 0, "max": workers}},
            }
        )
    if draw(st.booleans()):
        gpus = draw(st.sampled_from([1, 2]))
        services.append(
            {
                "name": "chat",
                "payload": "llm",
                "args": {
                    "models": [
                        {
                            "model_id": "m",
                            "model_source": "gs://rayplane-dev-models/m",
                            "preset": "qwen2.5-1.5b",
                            "max_model_len": 4096,
                            "tensor_parallel_size": gpus,
                        }
                    ],
                    "accelerator_type": "T4",
                },
                "workers": {"gpuPool": "t4", "gpus": gpus, "replicas": {"min": 0, "max": 1}},
                "upgradeStrategy": draw(st.sampled_from(["NewCluster", "None"])),
            }
        )
    jobs = []
    if draw(st.booleans()):
        jobs.append(
            {
                "name": "index",
                "payload": "batch-inference",
                "args": {
                    "input": "gs://rayplane-dev-props-data/in/",
                    "output": "gs://rayplane-dev-props-data/out/",
                    "num_gpus": draw(st.sampled_from([0.5, 1.0])),
                },
                "workers": {"gpuProfile": draw(st.sampled_from(profiles)), "replicas": {"min": 0, "max": 2}},
            }
        )
    return {
        "gcp:project": "rayplane-dev",
        "rayplane:kind": "team",
        "rayplane:platformStack": "organization/rayplane/dev",
        "rayplane:team": {
            "name": PROPERTY_TENANT["name"],
            "readBuckets": ["rayplane-dev-models"],
            "writeBuckets": ["rayplane-dev-props-data"],
            "gpuProfiles": profiles,
            "quota": {"gpus": 32, "cpu": 256, "memoryGib": 1024},
            "serveClients": draw(st.lists(st.sampled_from(["web", "search"]), max_size=2, unique=True)),
        },
        "rayplane:services": services,
        "rayplane:jobs": jobs,
    }


# The dev platform with one more tenant, granted what the generated teams may ask for.
PROPERTY_TENANT = {
    "name": "props",
    "stacks": ["property-team"],
    "gpuPools": ["t4"],
    "ownBuckets": ["rayplane-dev-props-data"],
    "readBuckets": ["rayplane-dev-models"],
    "gpuProfiles": ["l4-whole", "l4-shared", "l4-long"],
    "quota": {"gpus": 32, "cpu": 256, "memoryGib": 1024},
    "serveClients": ["web", "search"],
}


@pytest.fixture(scope="module")
def dev_with_the_property_tenant():
    dev = stack_values("dev")
    with render_tool.stacks_with({"dev": {**dev, "rayplane:tenants": [*dev["rayplane:tenants"], PROPERTY_TENANT]}}):
        yield


@PROPERTY_SETTINGS
@given(team_configs())
@pytest.mark.usefixtures("dev_with_the_property_tenant")
def test_generated_teams_render_objects_the_cluster_accepts(values):
    result = render_values("property-team", values)
    kinds = {m["kind"] for m in result.manifests()}
    assert {"Namespace", "NetworkPolicy", "ResourceQuota"} <= kinds
    assert len([m for m in result.manifests() if m["kind"] in ("RayService", "RayJob")]) == len(
        values["rayplane:services"]
    ) + len(values["rayplane:jobs"])
    accepted_by_the_cluster(result.manifests())
