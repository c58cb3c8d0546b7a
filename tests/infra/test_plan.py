"""config -> plan -> build: each workload's args are parsed once, its placement resolved once, and
the frozen plan holds what the components render."""

import dataclasses
from collections import Counter

import pytest

from components import contract, plan
from components.config import from_pulumi_config, parse
from components.placement import Placement
from tests.infra.conftest import rendered
from tools import render as render_tool
from workloads import catalog


def test_each_workloads_args_are_parsed_once_and_its_placement_resolved_once(monkeypatch):
    parsed, resolved = Counter(), []
    for model in {payload.args for payload in [*catalog.SERVICES.values(), *catalog.JOBS.values()]}:
        validate = model.model_validate.__func__

        def counting(cls, *args, _validate=validate, **kwargs):
            parsed[cls.__name__] += 1
            return _validate(cls, *args, **kwargs)

        monkeypatch.setattr(model, "model_validate", classmethod(counting))
    resolve = Placement.resolve.__func__

    def counting_resolve(cls, workers, platform):
        resolved.append(workers.gpu_profile or workers.gpu_pool)
        return resolve(cls, workers, platform)

    monkeypatch.setattr(Placement, "resolve", classmethod(counting_resolve))
    render_tool.render("search-prod")  # the whole program, the platform's render included
    assert parsed == {"LLMAppArgs": 1, "EmbeddingAppArgs": 1, "BatchJobArgs": 1}
    assert resolved == ["l4-x2", "l4-shared", "l4-shared"]  # chat, embed, reindex


def _team(services: list[dict], profiles: list[str]):
    return parse(
        {
            "kind": "team",
            "gcp:project": "rayplane-prod",
            "platformStack": "org/rayplane/prod",
            "team": {"name": "tm", "gpuProfiles": profiles, "quota": {"gpus": 16}, "readBuckets": ["rayplane-prod-m"]},
            "services": services,
        }
    )


_PROD = contract.parse(rendered("prod").outputs, "org/rayplane/prod")
# prod with a tenant "tm" granted every profile
TM = contract.TenantExport(
    name="tm",
    stacks=["tm"],
    gpuPools=["h100"],
    namespace="tm",
    project="rayplane-prod",
    gpuProfiles=[p.name for p in _PROD.gpu_profiles] + ["any"],
    quota={"gpus": 16},
    readBuckets=["rayplane-prod-m"],
)
PROD = _PROD.model_copy(update={"tenants": [*_PROD.tenants, TM]})


def test_placements_resolve_profiles_and_device_plugin_pools():
    team = _team(
        [
            {"name": "a", "payload": "embeddings", "workers": {"gpuProfile": "l4-x2"}},
            {"name": "b", "payload": "embeddings", "workers": {"gpuPool": "h100", "gpus": 4}},
            {"name": "c", "payload": "embeddings", "workers": {"gpuPool": "h100"}},
        ],
        ["l4-x2"],
    )
    # prod's h100 pool is queued (for Kueue's jobs only): here, services take it as an on-demand one
    pools = [p.model_copy(update={"queued": False}) for p in PROD.gpu_node_pools]
    platform = PROD.model_copy(update={"gpu_node_pools": pools})
    a, b, c = (service.placement for service in plan.team(team, platform, "tm").services)
    assert (a.pool_names, a.gpus, a.ray_types, a.claim_template) == (["l4", "l4-flex", "l4-spot"], 2, ["L4"], "l4-x2")
    assert a.compute_class == "l4" and b.compute_class is None
    assert (b.pool_names, b.gpus, b.ray_types, b.claim_template) == (["h100"], 4, ["H100"], None)
    assert (c.gpus, c.ray_type) == (8, "H100")


LLM = {
    "models": [
        {"model_id": "m", "model_source": "gs://rayplane-prod-m/m", "preset": "qwen2.5-1.5b", "max_model_len": 4096}
    ]
}


def test_the_kind_of_gpu_a_profile_offers_need_not_be_restated():
    team = _team(
        [{"name": "chat", "payload": "llm", "args": LLM, "workers": {"gpuProfile": "a100-whole"}}], ["a100-whole"]
    )
    [chat] = plan.team(team, PROD, "tm").services
    assert team.services[0].args.accelerator_type is None and chat.args.accelerator_type == "A100"
    # a profile that spans kinds of GPU pins none
    spanning = PROD.profile("l4-whole").model_copy(update={"name": "any", "eligible_pools": ["l4", "a100"]})
    platform = PROD.model_copy(update={"gpu_profiles": [*PROD.gpu_profiles, spanning]})
    team = _team([{"name": "chat", "payload": "llm", "args": LLM, "workers": {"gpuProfile": "any"}}], ["any"])
    [chat] = plan.team(team, platform, "tm").services
    assert chat.placement.ray_types == ["A100", "L4"] and chat.args.accelerator_type is None


def test_a_queued_job_runs_at_a_fixed_size_and_nothing_else_does():
    search = plan.team(_config("search-prod"), PROD, "search-prod")
    [reindex] = search.jobs
    assert (reindex.queue, reindex.fixed_size, reindex.fewest_workers) == ("l4-shared", True, 1)
    assert search.local_queues == {"l4-shared": "rayplane-prod-l4"}
    assert all(not s.fixed_size and s.fewest_workers == s.spec.workers.replicas.min for s in search.services)
    assert [w.capacity.name for w in (*search.services, *search.jobs)] == ["chat", "embed", "reindex"]


def _config(stack: str):
    values, secret_keys = render_tool.stack_config(stack)
    return from_pulumi_config(values, set(secret_keys))


def test_the_plan_is_frozen():
    team = _team([{"name": "a", "payload": "embeddings", "workers": {"gpuProfile": "l4-x2"}}], ["l4-x2"])
    built = plan.team(team, PROD, "tm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.services[0].queue = "x"


def test_the_laptop_form_swaps_args_for_a_laptop_and_takes_only_what_is_named():
    config = _config("search-dev")
    laptop = plan.laptop(config, ["embed", "reindex"])
    [embed], [reindex] = laptop.services, laptop.jobs
    assert (embed.args.profile, reindex.args.profile) == ("cpu", "cpu")
    assert embed.args.num_gpus == config.services[0].args.num_gpus  # the args stay; only their effect moves
    assert plan.laptop(config, ["nothing"]) == plan.LaptopPlan((), ())
