"""A new replica's cold start at plan time (components/coldstart.py): every workload's budget by
phase in its capacity report and the render summary, each figure sourced, each input's effect, and
the warning for an autoscaled service whose budget is beyond its objective."""

import pytest

from components import coldstart
from components.coldstart import FIGURES
from components.config import ConfigError
from tests.infra.catalogue import DELETE, attempt
from tests.infra.conftest import TEAM_STACKS, _queryable, render_values, rendered, stack_values
from tests.infra.test_platform import gpu_pools
from tools.diff import cold_start_lines
from tools.render import summary
from workloads.catalog import SERVICES


def _workloads(stack: str) -> dict[str, dict]:
    return {w["name"]: w for w in rendered(stack).outputs["capacity"]["workloads"]}


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_every_workload_has_a_budget_by_phase(stack):
    for name, workload in _workloads(stack).items():
        cold = workload["coldStart"]
        phases = [p["name"] for p in cold["phases"]]
        service = workload["path"].startswith("services")
        assert phases[0] == ("upscale delay" if service else "node")  # a job has no autoscaler to wait for
        assert phases[service : service + 4] == ["node", "driver", "image", "dependencies"], name
        assert phases[-1] == "engine" and cold["seconds"] == sum(p["seconds"] for p in cold["phases"])
        assert f"cold start on a new node: {cold['seconds']}s (" in summary(rendered(stack))
        if cold["spare"]:  # its pools keep spare nodes: no node to wait for, its driver up
            assert f"cold start on a spare node: {cold['spare']['seconds']}s (" in summary(rendered(stack))


def test_the_spare_node_path_is_where_a_pool_of_the_workload_keeps_spare_nodes(stacks):
    spare = {p["name"]: p["spareNodes"] for p in rendered("prod").outputs["gpuNodePools"]}
    assert spare["l4"] == 1 and not spare["a100"]
    for name, workload in _workloads("search-prod").items():  # l4-x2 and l4-shared: pools l4, l4-flex, l4-spot
        phases = {p["name"]: p["seconds"] for p in workload["coldStart"]["spare"]["phases"]}
        assert (phases["node"], phases["driver"]) == (FIGURES["spare_s"].value, 0), name
    attempt(stacks, "prod", {"nodePools.0.spareNodes": DELETE})  # the team stack reads this platform
    result, error = attempt(stacks, "search-prod", {})
    assert error is None and all(w["coldStart"]["spare"] is None for w in result.outputs["capacity"]["workloads"])


def test_search_prods_chat_comes_five_times_faster_than_the_naive_path():
    """The naive path: a Docker Hub image pulled whole, pip at pod start, weights copied then read,
    torch.compile in every new engine, a new node for every replica."""
    gib = 14.7e9 * 2 / 2**30
    naive = coldstart.budget(gib, image_streamed=False, weights_streamed=False, service=True, pip=True)
    chat = _workloads("search-prod")["chat"]["coldStart"]
    assert naive.seconds / chat["spare"]["seconds"] >= 5
    assert naive.seconds / chat["seconds"] >= 2.5  # beyond the spare nodes: a new node each


def test_an_llms_weights_are_its_models_size_streamed_and_no_payload_installs_packages():
    workloads = _workloads("search-prod")
    chat = {p["name"]: p for p in workloads["chat"]["coldStart"]["phases"]}
    embed = {p["name"]: p for p in workloads["embed"]["coldStart"]["phases"]}
    # qwen2.5-14b in bf16: 14.7e9 parameters x 2 bytes, streamed whole into each new replica's engine
    gib = 14.7e9 * 2 / 2**30
    read = gib / FIGURES["disk_gib_per_s"].value
    assert chat["weights"]["seconds"] == round(read) and "27.4 GiB streamed" in chat["weights"]["how"]
    for workload in workloads.values():  # the embedding payloads' packages too: in the image
        assert {p["name"]: p["seconds"] for p in workload["coldStart"]["phases"]}["dependencies"] == 0
    assert "weights" not in embed and embed["engine"]["seconds"] == FIGURES["replica_s"].value
    # a model four times the size takes four times as long
    big = coldstart.budget(4 * gib, image_streamed=True, weights_streamed=True, service=True)
    assert {p.name: p.seconds for p in big.phases}["weights"] == round(4 * read)


def test_each_lever_moves_its_phase_by_its_figure():
    gib = 14.7e9 * 2 / 2**30
    levers = {"image_streamed": True, "weights_streamed": True, "service": True}
    fast = {p.name: p.seconds for p in coldstart.budget(gib, **levers).phases}
    copied = {p.name: p.seconds for p in coldstart.budget(gib, **{**levers, "weights_streamed": False}).phases}
    assert copied["weights"] - fast["weights"] == pytest.approx(gib / FIGURES["download_gib_per_s"].value, abs=1)
    pulled = {p.name: p.seconds for p in coldstart.budget(gib, **{**levers, "image_streamed": False}).phases}
    assert (pulled["image"], fast["image"]) == (round(10 / (5.4e9 / 2**30 / 191)), 30)  # Triton's measured pace
    pip = {p.name: p.seconds for p in coldstart.budget(gib, **levers, pip=True).phases}
    assert pip["dependencies"] - fast["dependencies"] == FIGURES["dependencies_s"].value
    spare = {p.name: p.seconds for p in coldstart.budget(gib, **levers, spare=True).phases}
    assert fast["node"] + fast["driver"] - spare["node"] - spare["driver"] == round(
        FIGURES["node_s"].value + FIGURES["driver_s"].value - FIGURES["spare_s"].value
    )
    preloaded = {p.name: p.seconds for p in coldstart.budget(gib, **levers, image_cached=True).phases}
    assert (fast["image"], preloaded["image"]) == (FIGURES["image_streamed_s"].value, FIGURES["image_cached_s"].value)
    cached = {p.name: p.seconds for p in coldstart.budget(gib, **levers, compile_cached=True).phases}
    assert fast["engine"] - cached["engine"] == FIGURES["compile_s"].value


def test_a_model_loaded_the_old_way_is_copied_then_read():
    values = stack_values("search-prod")
    chat = next(s for s in values["rayplane:services"] if s["name"] == "chat")
    for model in chat["args"]["models"]:
        model["load_format"] = "auto"
    [workload] = [
        w for w in render_values("search-prod", values).outputs["capacity"]["workloads"] if w["name"] == "chat"
    ]
    weights = {p["name"]: p for p in workload["coldStart"]["phases"]}["weights"]
    assert (
        "copied to local disk" in weights["how"]
        and weights["seconds"] > _workloads("search-prod")["chat"]["coldStart"]["phases"][-2]["seconds"]
    )


def test_the_built_image_is_streamed_and_a_docker_hub_one_would_be_pulled_whole():
    image = rendered("prod").outputs["rayImage"]
    assert image.startswith("us-central1-docker.pkg.dev/rayplane-prod/rayplane-prod-images/ray:")
    chat = {p["name"]: p for p in _workloads("search-prod")["chat"]["coldStart"]["phases"]}
    assert chat["image"]["seconds"] == FIGURES["image_streamed_s"].value and "Artifact Registry" in chat["image"]["how"]
    assert not coldstart.streamed("rayproject/ray-llm:2.60.0-py312-cu130") and coldstart.streamed(image)


def _cold_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "Cold start" in w]


def test_an_autoscaled_service_slower_than_its_objective_is_warned_about(stacks):
    """By the new-node estimate while a service can add more workers than its pools keep spare
    nodes (prod's one spare L4 node: chat adds up to 2, embed 3), by the spare-node one after."""
    assert _cold_warnings(rendered("search-prod").warnings) == []  # within the default 600 s
    slo = {"services.0.slo.scaleUpWithinS": 100, "services.1.slo": {"scaleUpWithinS": 80}}
    cold = {name: w["coldStart"] for name, w in _workloads("search-prod").items()}
    result, _ = attempt(stacks, "search-prod", slo)
    chat_warning, embed_warning = _cold_warnings(result.warnings)
    assert chat_warning == (
        f"services[0]: a new replica on a new node takes about {cold['chat']['seconds']}s from Serve's wish for it to"
        " serving (upscale delay 30s, node 120s, driver 30s, image 30s, weights 27s, engine 34s), beyond"
        " slo.scaleUpWithinS 100s: its traffic waits that long for more replicas (docs/capacity.md, Cold start)"
    )
    assert embed_warning.startswith(f"services[1]: a new replica on a new node takes about {cold['embed']['seconds']}s")
    attempt(stacks, "prod", {"nodePools.0.spareNodes": 3})  # a spare node for each worker either can add
    result, _ = attempt(stacks, "search-prod", slo)
    chat_spare, embed_spare = cold["chat"]["spare"]["seconds"], cold["embed"]["spare"]["seconds"]
    assert (chat_spare, embed_spare) == (126, 75)
    [chat_warning] = _cold_warnings(result.warnings)  # embed's 75 s on a spare node: within its 80 s
    assert chat_warning.startswith(f"services[0]: a new replica on a spare node takes about {chat_spare}s")


def test_a_service_that_does_not_autoscale_is_not_warned_about():
    values = stack_values("search-prod")
    for service in values["rayplane:services"]:
        service["slo"] = {"scaleUpWithinS": 1}
        for scope in [service["args"], *service["args"].get("models", [])]:
            if "autoscaling" in scope:
                scope["autoscaling"]["max_replicas"] = scope["autoscaling"]["min_replicas"]
    assert _cold_warnings(render_values("search-prod", values).warnings) == []


def test_every_figure_says_where_it_comes_from():
    for name, figure in FIGURES.items():
        assert figure.kind in ("published", "assumed") and figure.value > 0, name
        if figure.kind == "published":  # quoted from its source
            assert "'" in figure.source and ("github.com" in figure.source or "/" in figure.source), name
        else:
            assert "no " in figure.source or "published" in figure.source, name  # why it is assumed


def test_the_platform_mirrors_docker_hub_in_its_region_and_every_node_streams_images():
    prod = rendered("prod")
    repositories = {
        r["inputs"]["repositoryId"]: r["inputs"] for r in prod.of_type("gcp:artifactregistry/repository:Repository")
    }
    mirror = repositories["rayplane-prod-dockerhub"]
    assert mirror["mode"] == "REMOTE_REPOSITORY" and mirror["format"] == "DOCKER"
    assert mirror["remoteRepositoryConfig"]["dockerRepository"] == {"publicRepository": "DOCKER_HUB"}
    host, project, repository_id = prod.outputs["rayImage"].split("/")[:3]
    assert (host, project) == (f"{mirror['location']}-docker.pkg.dev", "rayplane-prod")
    assert repositories[repository_id]["location"] == mirror["location"]
    pools = [p["inputs"]["nodeConfig"] for p in prod.of_type("gcp:container/nodePool:NodePool")]
    assert pools and all(c["gcfsConfig"] == {"enabled": True} and c["imageType"] == "COS_CONTAINERD" for c in pools)


def test_without_the_mirror_no_remote_repository_is_made():
    values = stack_values("prod")
    values["rayplane:imageMirror"] = False
    modes = [
        r["inputs"].get("mode")
        for r in render_values("prod", values).of_type("gcp:artifactregistry/repository:Repository")
    ]
    assert modes == [None]  # the image's own (a standard repository) only


def test_the_review_says_how_a_change_moves_each_cold_start():
    old = _workloads("search-prod")
    faster = {**old["chat"]["coldStart"], "seconds": 35, "phases": [{"name": "image", "seconds": 5, "how": ""}]}
    new = {"workloads": [{**old["chat"], "coldStart": faster}, old["embed"]]}
    assert cold_start_lines({"workloads": list(old.values())}, new) == [
        "- cold start of `chat` on a new node: 271s → 35s (image 30s → 5s, upscale delay 30s → 0s, node 120s → 0s,"
        " driver 30s → 0s, weights 27s → 0s, engine 34s → 0s)"
    ]
    assert cold_start_lines(None, new)[:2] == [
        "- cold start of `chat` on a new node: 35s",
        f"- cold start of `chat` on a spare node: {old['chat']['coldStart']['spare']['seconds']}s",
    ]


@pytest.mark.parametrize("payload", ["llm", "embeddings", "multiplex"])
def test_a_payload_autoscales_when_any_deployment_can_grow_gpus_or_not(payload):
    args = SERVICES[payload].args
    grows = {"autoscaling": {"min_replicas": 1, "max_replicas": 3}}
    fixed = {"autoscaling": {"min_replicas": 2, "max_replicas": 2}}
    if payload == "llm":
        model = {"model_id": "m", "model_source": "gs://b/m", "preset": "qwen2.5-0.5b"}
        grows, fixed = {"models": [{**model, **grows}]}, {"models": [{**model, **fixed}]}
    if payload == "multiplex":  # no GPUs: the replicas it adds are CPU ones
        grows, fixed = {**grows, "store": "gs://b/classifiers"}, {**fixed, "store": "gs://b/classifiers"}
    assert args.model_validate(grows).autoscales() and not args.model_validate(fixed).autoscales()


def test_an_image_preloaded_on_every_pool_of_a_workload_is_not_streamed(stacks):
    """`nodePools[].imageCacheDisk`: a secondary boot disk in GKE's container-image-cache mode; a
    workload's image phase counts it only if every pool it may run on has one."""
    disk = f"global/images/ray-{rendered('prod').outputs['rayImage'].rsplit('-', 1)[1]}"  # named for its build
    result, error = attempt(stacks, "prod", {"nodePools.1.imageCacheDisk": disk})  # l4-flex only
    assert error is None
    pools = gpu_pools(_queryable(result))
    flex = pools["l4-flex"]["nodeConfig"]
    assert flex["secondaryBootDisks"] == [{"diskImage": disk, "mode": "CONTAINER_IMAGE_CACHE"}]
    assert flex["gcfsConfig"] == {"enabled": True}  # GKE reads the disk's image through image streaming
    assert all("secondaryBootDisks" not in p["nodeConfig"] for name, p in pools.items() if name != "l4-flex")
    chat, _ = attempt(stacks, "search-prod", {})
    image = {p["name"]: p["seconds"] for p in _chat(chat)["phases"]}["image"]
    assert image == FIGURES["image_streamed_s"].value  # l4 and l4-spot still stream it
    attempt(
        stacks,
        "prod",
        {"nodePools.1.imageCacheDisk": disk, "nodePools.0.imageCacheDisk": disk, "nodePools.2.imageCacheDisk": disk},
    )
    chat, _ = attempt(stacks, "search-prod", {})
    image = {p["name"]: p for p in _chat(chat)["phases"]}["image"]
    assert image["seconds"] == FIGURES["image_cached_s"].value and "secondary boot disk" in image["how"]


def _chat(result) -> dict:
    return next(w for w in result.outputs["capacity"]["workloads"] if w["name"] == "chat")["coldStart"]


def test_a_disk_image_elsewhere_is_refused():
    values = stack_values("prod")
    values["rayplane:nodePools"][1]["imageCacheDisk"] = "projects/other/global/images/ray"
    with pytest.raises(ConfigError) as exc:
        render_values("prod", values)
    assert exc.value.errors == [
        "nodePools[1].imageCacheDisk: 'projects/other/global/images/ray' is not a disk image of the platform's"
        " project: global/images/NAME"
    ]


def test_a_disk_image_of_another_build_is_refused():
    image = rendered("prod").outputs["rayImage"]
    values = stack_values("prod")
    values["rayplane:nodePools"][1]["imageCacheDisk"] = "global/images/ray-0123456789ab"
    with pytest.raises(ConfigError) as exc:
        render_values("prod", values)
    build = image.rsplit("-", 1)[1]
    assert exc.value.errors == [
        f"nodePools[1].imageCacheDisk: global/images/ray-0123456789ab is not named for the Ray image this platform"
        f" runs ({image}): make a disk image of it (gke-disk-image-builder) with {build} in its name, e.g."
        f" global/images/ray-{build}"
    ]
