"""Plan-time capacity: models that fit their GPUs or not (every accelerator family, every sharing
mode, TP/PP splits), the decode floor and latency targets, scale-out limits, and GPU cost sums.
The config errors themselves, with their messages, are in the catalogue (test_invalid_configs)."""

import json

import pytest
import yaml

from components import pricing
from components.capacity import model_fit, offload_per_worker
from components.config import ConfigError
from tests.infra.conftest import besides_standing, render_values, rendered, stack_values
from tools import render as render_tool
from workloads.config import LLMAppArgs, LLMModel


def llm(**fields) -> LLMModel:
    return LLMModel.model_validate({"model_id": "m", "model_source": "gs://models/m", **fields})


# One fitting and one non-fitting engine per accelerator family (GiB as the GPU reports them).
FAMILIES = {
    "nvidia-tesla-t4": (  # 15 GiB
        dict(preset="qwen2.5-1.5b", max_model_len=4096),
        dict(preset="llama-3.1-8b", max_model_len=4096),  # 15 GiB of weights alone
    ),
    "nvidia-l4": (  # 22.5 GiB
        dict(preset="llama-3.1-8b", max_model_len=8192, max_num_seqs=4),
        dict(preset="llama-3.1-8b", max_model_len=8192, max_num_seqs=16),
    ),
    "nvidia-tesla-a100": (  # 40 GiB
        dict(preset="qwen2.5-14b", max_model_len=4096, max_num_seqs=8),
        dict(preset="qwen2.5-32b", max_model_len=4096, max_num_seqs=8),
    ),
    "nvidia-a100-80gb": (  # the issue's example: 70B bf16 on two A100 80GB, then on four
        dict(preset="llama-3.1-70b", tensor_parallel_size=4, max_model_len=8192),
        dict(preset="llama-3.1-70b", tensor_parallel_size=2, max_model_len=8192),
    ),
    "nvidia-h100-80gb": (  # 70B in fp8: on two H100s, not on one
        dict(preset="llama-3.1-70b", facts={"dtype": "fp8"}, tensor_parallel_size=2, max_model_len=4096),
        dict(preset="llama-3.1-70b", facts={"dtype": "fp8"}, max_model_len=4096),
    ),
    "nvidia-h200-141gb": (
        dict(preset="llama-3.1-70b", facts={"dtype": "fp8"}, max_model_len=8192),
        dict(preset="llama-3.1-70b", max_model_len=8192),
    ),
}


@pytest.mark.parametrize("accelerator", FAMILIES)
def test_each_accelerator_family_fits_one_model_and_refuses_another(accelerator):
    fitting, too_big = (model_fit(llm(**fields), accelerator) for fields in FAMILIES[accelerator])
    assert fitting.fits and fitting.kv_gib_needed <= fitting.kv_gib_free
    assert not too_big.fits and too_big.kv_gib_needed > too_big.kv_gib_free


def test_the_numbers_of_the_issue_example():
    fit = model_fit(llm(preset="llama-3.1-70b", tensor_parallel_size=2, max_model_len=8192), "nvidia-a100-80gb")
    # 70.6e9 x 2 bytes / 2 GPUs; 80 GiB x 0.9 - that - 1 GiB; 8192 x 16 x 2 x 80 layers x 4 KV heads x 128 x 2 bytes
    assert (fit.weights_gib_per_gpu, fit.kv_gib_free, fit.kv_gib_needed) == (65.75, 5.25, 20.0)
    assert fit.problem() == (
        "llama-3.1-70b bf16 needs 65.8 GiB weights per GPU at TP=2 on nvidia-a100-80gb; with gpu_memory_utilization"
        " 0.9 and 1 GiB for activations that leaves 5.2 GiB for KV, but max_model_len 8192 x 16 sequences needs"
        " 20.0 GiB"
    )


def test_tensor_and_pipeline_parallel_split_weights_and_kv_their_own_way():
    one = model_fit(llm(preset="llama-3.1-70b", max_model_len=8192), "nvidia-h200-141gb")
    tp = model_fit(llm(preset="llama-3.1-70b", max_model_len=8192, tensor_parallel_size=4), "nvidia-h200-141gb")
    pp = model_fit(llm(preset="llama-3.1-70b", max_model_len=8192, pipeline_parallel_size=4), "nvidia-h200-141gb")
    both = llm(preset="llama-3.1-70b", max_model_len=8192, tensor_parallel_size=2, pipeline_parallel_size=2)
    mixed = model_fit(both, "nvidia-h200-141gb")
    assert (
        tp.weights_gib_per_gpu
        == pp.weights_gib_per_gpu
        == mixed.weights_gib_per_gpu
        == pytest.approx(one.weights_gib_per_gpu / 4, abs=0.01)
    )
    # TP splits the KV heads, PP the layers: a quarter of the KV cache per GPU either way
    assert tp.kv_gib_needed == pp.kv_gib_needed == mixed.kv_gib_needed == one.kv_gib_needed / 4
    # Every token still passes every PP stage: only TP shortens the decode floor
    assert pp.ms_per_token_floor == one.ms_per_token_floor == pytest.approx(4 * tp.ms_per_token_floor, abs=0.05)
    assert (tp.placement, pp.placement, mixed.placement) == ("TP=4", "TP=1 x PP=4", "TP=2 x PP=2")


def test_a_tp_wider_than_the_kv_heads_replicates_them():
    # qwen2.5-1.5b has 2 KV heads: at TP=4 each GPU still holds one
    two = model_fit(llm(preset="qwen2.5-1.5b", max_model_len=4096, tensor_parallel_size=2), "nvidia-l4")
    four = model_fit(llm(preset="qwen2.5-1.5b", max_model_len=4096, tensor_parallel_size=4), "nvidia-l4")
    assert four.kv_gib_needed == two.kv_gib_needed


def test_weight_dtype_sets_the_weights_and_the_decode_floor_but_not_the_kv_cache():
    bf16 = model_fit(llm(preset="llama-3.1-8b", max_model_len=4096), "nvidia-h100-80gb")
    fp8 = model_fit(llm(preset="llama-3.1-8b", facts={"dtype": "fp8"}, max_model_len=4096), "nvidia-h100-80gb")
    int4 = model_fit(llm(preset="llama-3.1-8b", facts={"dtype": "int4"}, max_model_len=4096), "nvidia-h100-80gb")
    assert bf16.weights_gib_per_gpu == pytest.approx(2 * fp8.weights_gib_per_gpu, abs=0.01)
    assert fp8.weights_gib_per_gpu == pytest.approx(2 * int4.weights_gib_per_gpu, abs=0.01)
    assert bf16.kv_gib_needed == fp8.kv_gib_needed == int4.kv_gib_needed
    assert bf16.ms_per_token_floor == pytest.approx(8.03e9 * 2 / 3350e9 * 1000, abs=0.01)
    assert (fp8.model, int4.model) == ("llama-3.1-8b fp8", "llama-3.1-8b int4")


def test_declared_facts_size_a_model_no_preset_knows():
    facts = {"params_b": 1.54, "layers": 28, "kv_heads": 2, "head_dim": 128, "dtype": "bf16", "max_position": 32768}
    declared = model_fit(llm(facts=facts, max_model_len=4096), "nvidia-l4")
    assert declared == model_fit(llm(preset="qwen2.5-1.5b", max_model_len=4096), "nvidia-l4").model_copy(
        update={"model": "m bf16"}
    )
    assert llm(model_id="Qwen2.5-1.5B-Instruct").preset_used == "qwen2.5-1.5b"  # an instruct id names its base
    assert llm(model_id="my-model").model_facts().missing() == list(facts)


# -- sharing: replicas with a share of one GPU


def test_a_share_of_a_gpu_takes_that_share_of_its_memory_so_packed_replicas_fit_together():
    half = llm(preset="qwen2.5-1.5b", max_model_len=8192, num_gpus=0.5)
    assert half.memory_utilization == 0.45
    fit = model_fit(half, "nvidia-l4")
    assert fit.fits and fit.placement == "0.5 of a GPU"
    assert fit.usable_gib_per_gpu == pytest.approx(22.49 * 0.45, abs=0.01)
    # the two replicas a worker's L4 holds take no more than the whole GPU between them
    assert 2 * fit.usable_gib_per_gpu <= 22.5 * 0.9 + 0.01
    assert not model_fit(llm(preset="llama-3.1-8b", max_model_len=1024, num_gpus=0.5), "nvidia-l4").fits
    with pytest.raises(ValueError, match=r"is more than the replica's 0\.5 of the GPU"):
        llm(preset="qwen2.5-1.5b", num_gpus=0.5, gpu_memory_utilization=0.6)


def _with_profile(profile: str, **model) -> dict:
    values = stack_values("search-dev")
    values["rayplane:team"]["gpuProfiles"] = ["l4-whole", "l4-shared"]
    chat = values["rayplane:services"][1]
    chat["workers"]["gpuProfile"] = profile
    chat["args"]["models"][0].update(model)
    return values


@pytest.mark.parametrize(
    ("profile", "model", "usable"),
    [
        ("l4-whole", {}, 22.49 * 0.9),  # exclusive
        # time-sliced: two replicas share the worker's L4 (each with KV cache for 16 sequences)
        ("l4-shared", {"num_gpus": 0.5, "max_num_seqs": 16}, 22.49 * 0.45),
    ],
)
def test_each_sharing_mode_renders_with_the_memory_it_really_gives(profile, model, usable):
    report = render_values("search-dev", _with_profile(profile, **model)).outputs["capacity"]
    [fit] = next(w for w in report["workloads"] if w["name"] == "chat")["models"]
    assert fit["usableGibPerGpu"] == pytest.approx(usable, abs=0.01)


@pytest.mark.parametrize(
    ("profile", "model", "error"),
    [
        ("l4-whole", {"max_model_len": 32768, "max_num_seqs": 64}, "but max_model_len 32768 x 64 sequences needs"),
        ("l4-shared", {"num_gpus": 0.25, "max_model_len": 32768}, "at 0.25 of a GPU on nvidia-l4"),
    ],
)
def test_each_sharing_mode_refuses_what_does_not_fit(profile, model, error):
    with pytest.raises(ConfigError, match=r"services\[1\]\.args\.models\[0\]") as exc:
        render_values("search-dev", _with_profile(profile, **model))
    assert error in str(exc.value)


def test_the_engine_runs_with_what_the_check_assumed():
    """The Serve config carries max_num_seqs and gpu_memory_utilization, and a GPU share as Ray Serve
    LLM's placement bundle, so the fit check and the engine agree."""
    values = _with_profile("l4-shared", num_gpus=0.5, max_num_seqs=8)
    [chat] = [m for m in render_values("search-dev", values).manifests() if m["metadata"]["name"] == "chat"]
    [app] = yaml.safe_load(chat["spec"]["serveConfigV2"])["applications"]
    [model] = app["args"]["models"]
    parsed = LLMAppArgs.model_validate(app["args"]).models[0]
    assert (model["num_gpus"], model["max_num_seqs"], parsed.memory_utilization) == (0.5, 8, 0.45)


def test_kv_offload_adds_the_tokens_its_host_memory_holds():
    """The offload size is the replica's over its ranks (vLLM's kv_offloading_size), and a token there
    holds what every rank keeps of it; the GPU's own KV tokens are what is free beside the weights."""
    one = model_fit(llm(preset="qwen2.5-1.5b", max_model_len=8192, kv_offload_gib=28), "nvidia-l4")
    token = 2 * 28 * 2 * 128 * 2  # K and V x layers x KV heads x head_dim x 2 bytes
    assert one.kv_tokens == pytest.approx(one.kv_gib_free * 2**30 / token, rel=1e-3)  # (the GiB are rounded)
    assert one.offload_kv_tokens == 28 * 2**30 // token
    tp = model_fit(llm(preset="qwen2.5-14b", tensor_parallel_size=2, max_num_seqs=6, kv_offload_gib=16), "nvidia-l4")
    per_rank = 2 * 48 * (8 // 2) * 128 * 2
    assert tp.offload_kv_tokens == 16 * 2**30 // (per_rank * 2)
    assert model_fit(llm(preset="qwen2.5-1.5b"), "nvidia-l4").offload_kv_tokens == 0


def test_the_offload_a_worker_holds_is_that_of_the_replicas_its_gpus_fit():
    """Ray places a replica wherever its GPUs are free, so a worker's host memory must hold the
    offload of as many replicas as its GPUs fit, the largest first."""
    halves = llm(num_gpus=0.5, kv_offload_gib=4, autoscaling={"min_replicas": 1, "max_replicas": 4})
    assert offload_per_worker([halves], 1) == (8, 2)
    assert offload_per_worker([halves], 4) == (16, 4)  # no more than its replicas at their most
    whole = llm(kv_offload_gib=10, autoscaling={"min_replicas": 1, "max_replicas": 2})
    assert offload_per_worker([halves, whole], 2) == (20, 2)  # 10 GiB a GPU beats 2 x 4 GiB
    assert offload_per_worker([llm()], 2) == (0, 0)


# -- the latency target


def test_a_latency_target_at_the_floor_passes_and_below_it_is_refused():
    values = stack_values("search-prod")
    chat = values["rayplane:services"][0]["args"]["models"][0]
    floor = model_fit(LLMModel.model_validate(chat), "nvidia-l4").ms_per_token_floor
    assert floor == 49.0  # 14.7e9 x 2 bytes over TP=2 at 300 GB/s
    chat["max_ms_per_token"] = floor
    render_values("search-prod", values)
    chat["max_ms_per_token"] = floor - 1
    with pytest.raises(ConfigError, match=r"max_ms_per_token: 48 ms, .* at least 49\.0 ms"):
        render_values("search-prod", values)


# -- scale-out


def test_a_maximum_autoscaling_cannot_reach_is_a_warning_with_the_numbers():
    values = stack_values("search-prod")
    values["rayplane:services"][1]["args"]["autoscaling"]["max_replicas"] = 12  # embed: 0.5 GPU each
    result = render_values("search-prod", values)
    warning = (
        "services[1]: autoscaling can never reach its maximum (12 x 0.5 GPU), which needs 6 worker(s) of 1 GPU(s)"
        " from l4-shared; at most 4 can run (workers.replicas.max: 4; l4+l4-flex+l4-spot at maxNodes 20: 48;"
        " team.quota.gpus 16 less the other workloads' 5: 11)"
        # the other workloads: chat's 2 x 2 GPUs, reindex's 1 (queued: the one GPU its actor needs)
    )
    assert besides_standing(result.warnings) == [warning]
    assert besides_standing(result.outputs["capacity"]["warnings"]) == [warning]
    assert besides_standing(rendered("search-prod").warnings) == []


def test_the_team_quota_caps_a_workload_beside_the_others():
    values = stack_values("search-prod")
    values["rayplane:team"]["quota"]["gpus"] = 9  # chat (2 GPUs a worker) beside embed's 1 and reindex's 1
    # a second chat cluster at its minimum would not fit: it rolls out incrementally (tests/infra/test_rollout.py)
    values["rayplane:services"][0]["upgradeStrategy"] = "NewClusterWithIncrementalUpgrade"
    [warning] = besides_standing(render_values("search-prod", values).warnings)
    assert "services[0]: autoscaling can never reach its maximum (4 x 2 GPU)" in warning
    assert "team.quota.gpus 9 less the other workloads' 2: 3" in warning


def test_scale_reports_replicas_and_workers_at_min_and_max():
    report = rendered("search-prod").outputs["capacity"]
    embed = next(w for w in report["workloads"] if w["name"] == "embed")
    assert embed["replicas"] == {"min": "2 x 0.5 GPU", "max": "8 x 0.5 GPU"}
    assert embed["workersNeeded"] == {"min": 1, "max": 4} and embed["workersPossible"] == 4


# -- cost


def test_platform_cost_sums_nodes_times_their_price():
    report = rendered("prod").outputs["capacity"]
    pools = {p["name"]: p for p in report["pools"]}
    assert pools["l4"]["nodePrice"] == 2.0008 and pools["l4"]["costPerHour"] == {"min": 2.0, "max": 16.01}
    assert pools["h100"]["costPerHour"] == {"min": 0, "max": 176.5}
    assert report["gpuCostPerHour"]["max"] == pytest.approx(
        sum(p["costPerHour"]["max"] for p in report["pools"]), abs=0.01
    )
    assert "estimates" in report["estimate"] and pricing.AS_OF in report["estimate"]


def test_spot_pools_and_attached_gpus_are_priced_as_they_run():
    dev = {p["name"]: p for p in rendered("dev").outputs["capacity"]["pools"]}
    table = pricing.PRICES["us-central1"]
    assert dev["l4"]["nodePrice"] == table["g2-standard-8"].spot
    # N1 + 2 attached T4s: the machine plus each GPU
    assert dev["t4"]["nodePrice"] == pytest.approx(table["n1-standard-8"].spot + 2 * table["nvidia-tesla-t4"].spot)


def test_config_prices_override_the_table_and_unknown_ones_warn():
    values = stack_values("prod")
    values["rayplane:pricing"] = {"g2-standard-24": {"onDemand": 1.5}}
    values["rayplane:nodePools"][4]["machineType"] = "a3-highgpu-4g"  # not in the table
    values["rayplane:nodePools"][4]["acceleratorCount"] = 4
    result = render_values("prod", values)
    pools = {p["name"]: p for p in result.outputs["capacity"]["pools"]}
    assert pools["l4"]["nodePrice"] == 1.5 and pools["h100"]["costPerHour"] is None
    assert besides_standing(result.warnings) == [
        "no on-demand price for h100's a3-highgpu-4g in us-central1: set pricing.a3-highgpu-4g.onDemand"
    ]
    # the exports carry the price team stacks cost their workloads with
    assert {p["name"]: p.get("nodePrice") for p in result.outputs["gpuNodePools"]} == {
        "l4": 1.5,
        "l4-flex": 4.0016,  # flex-start: at the on-demand price unless pricing says
        "l4-spot": 0.8003,  # Spot: the table's Spot price, not the on-demand override
        "a100": 3.6734,
        "h100": None,
    }


def test_a_region_without_prices_asks_for_them():
    values = stack_values("dev")
    values["rayplane:cluster"]["location"] = "europe-west4-a"
    result = render_values("dev", values)
    warnings = besides_standing(result.warnings)
    assert result.outputs["capacity"]["gpuCostPerHour"] is None and len(warnings) == 2
    assert warnings[1] == (
        "no Spot price for t4's n1-standard-8 + nvidia-tesla-t4 in europe-west4: set pricing.n1-standard-8.spot and"
        " pricing.nvidia-tesla-t4.spot"
    )


def test_team_cost_is_its_workers_share_of_the_nodes_and_its_quota_share_of_the_platform():
    report = rendered("search-prod").outputs["capacity"]
    gpu_hour = pricing.PRICES["us-central1"]["g2-standard-24"].on_demand / 2
    chat = next(w for w in report["workloads"] if w["name"] == "chat")
    assert chat["gpuCostPerHour"] == {"min": round(2 * 2 * gpu_hour, 2), "max": round(4 * 2 * gpu_hour, 2)}
    assert report["quotaCostPerHour"] == round(16 * gpu_hour, 2)
    assert report["platformCostPerHourMax"] == rendered("prod").outputs["capacity"]["gpuCostPerHour"]["max"]


def test_render_shows_capacity_in_its_summary_and_resources_json(tmp_path, capsys):
    assert render_tool.main(["search-prod", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "chat (services[0]): replicas of 2 x 2 GPU to 4 x 2 GPU need 2-4 workers of 2 GPU(s) from l4-x2" in out
    assert (
        "qwen2.5-14b bf16 on nvidia-l4 at TP=2: 13.69 GiB weights, KV 4.5 of 5.55 GiB free per GPU (60,667 tokens"
        " a replica); decode >= 49 ms/token" in out
    )
    assert "quota: 16 GPUs, up to $16.01/h, 7% of the platform's maximum" in out
    assert "by tier: l4 on-demand $4.00-$8.00, l4-flex flex-start $4.00-$8.00, l4-spot spot $1.60-$3.20 /h" in out
    written = json.loads((tmp_path / "search-prod" / "resources.json").read_text())
    assert written["capacity"] == rendered("search-prod").outputs["capacity"]
