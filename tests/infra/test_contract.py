"""The platform -> team contract: what platform stacks export is exactly the typed model that team
stacks read, and a platform that lacks an output fails the team with a config error."""

import pytest

from components import contract
from components.config import ConfigError
from components.contract import PlatformExports
from tests.infra.conftest import PLATFORM_STACKS, render_values, rendered, stack_values


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_platform_outputs_are_the_contract_and_nothing_else(stack):
    outputs = rendered(stack).outputs
    exported = {k: v for k, v in outputs.items() if k not in (contract.KUBECONFIG, "capacity")}
    parsed = contract.parse(exported, stack)
    assert parsed.model_dump(by_alias=True, mode="json", exclude_none=True) == {
        k: v for k, v in exported.items() if v is not None
    }
    assert set(outputs) == {contract.KUBECONFIG, "capacity"} | {f.alias for f in PlatformExports.model_fields.values()}
    assert contract.KUBECONFIG in rendered(stack).secret_outputs


def test_profiles_export_the_pools_they_resolved_to_not_the_config_restriction():
    values = stack_values("prod")
    del values["rayplane:gpuProfiles"][1]["pools"]  # l4-x2
    profiles = {p["name"]: p for p in render_values("prod", values).outputs["gpuProfiles"]}
    # l4-x2 names no pools now: it resolves to every dra pool with 2 GPUs per node or more
    assert profiles["l4-x2"]["eligiblePools"] == ["l4", "l4-flex", "l4-spot"]
    assert profiles["a100-whole"]["eligiblePools"] == ["a100"]
    assert all("pools" not in p for p in profiles.values())


def test_a_platform_without_an_output_fails_the_team_with_its_name():
    outputs = {k: v for k, v in rendered("dev").outputs.items() if k not in ("gpuNodePools", contract.KUBECONFIG)}
    with pytest.raises(ConfigError) as exc:
        contract.parse(outputs, "org/rayplane/dev")
    assert exc.value.errors == [
        "platformStack: org/rayplane/dev has no output gpuNodePools",
        "platformStack: run `pulumi up` on org/rayplane/dev with this version of rayplane first",
    ]


def test_outputs_a_newer_platform_adds_are_ignored():
    outputs = {**rendered("dev").outputs, "somethingNew": {"x": 1}}
    outputs["gpuNodePools"] = [{**p, "newField": True} for p in outputs["gpuNodePools"]]
    assert contract.parse(outputs, "org/rayplane/dev").pool("l4").gpus_per_node == 1
