"""DWS queued provisioning (`nodePools[].queued`): a flex-start pool whose nodes GKE adds only for
ProvisioningRequests, which Kueue makes for the jobs it would admit there (its ProvisioningRequest
admission check, vendored CRDs and source at v0.19.2); refused wherever nothing would ask for them."""

import re

import pytest

from components import plan
from components.addons.kueue import PROVISIONING_CONTROLLER, QUEUED_PROVISIONING_CLASS
from components.config import ConfigError, parse
from components.conventions import DEVICE_PLUGIN_GPU, QUEUED_TOLERATION
from tests.infra import upstream
from tests.infra.conftest import render_values, rendered, stack_values
from tests.infra.test_ladders import _tolerates
from tests.infra.test_plan import PROD, _team
from tests.infra.test_platform import gpu_pools


def _kueue(stack) -> dict[tuple[str, str], dict]:
    kinds = ("ClusterQueue", "ResourceFlavor", "AdmissionCheck", "ProvisioningRequestConfig")
    return {(m["kind"], m["metadata"]["name"]): m for m in stack.manifests() if m["kind"] in kinds}


def test_a_queued_pool_is_made_as_gke_documents_it():
    h100 = gpu_pools(rendered("prod"))["h100"]
    assert h100["queuedProvisioning"] == {"enabled": True}
    assert h100["nodeConfig"]["flexStart"] is True  # `--flex-start --enable-queued-provisioning`
    assert h100["nodeConfig"]["reservationAffinity"] == {"consumeReservationType": "NO_RESERVATION"}
    assert h100["management"]["autoRepair"] is False and h100["autoscaling"]["totalMinNodeCount"] == 0
    assert h100["autoscaling"]["locationPolicy"] == "ANY"  # `--location-policy=ANY`
    assert all("queuedProvisioning" not in p for name, p in gpu_pools(rendered("prod")).items() if name != "h100")


def test_kueue_asks_gke_for_a_queued_pools_nodes_before_it_admits_a_job():
    objects = _kueue(rendered("prod"))
    name = "rayplane-prod-queued-provisioning"
    check, config = objects["AdmissionCheck", name], objects["ProvisioningRequestConfig", name]
    for obj in (check, config):
        upstream.validate_cr(obj)  # the CRDs Kueue v0.19.2 serves
    # the controller that runs it, by the name Kueue's source gives it
    source = upstream.text("kueue/provisioningrequestconfig_types.go.txt")
    assert f'ProvisioningRequestControllerName = "{PROVISIONING_CONTROLLER}"' in source
    assert check["spec"]["controllerName"] == PROVISIONING_CONTROLLER
    assert check["spec"]["parameters"] == {
        "apiGroup": "kueue.x-k8s.io",
        "kind": "ProvisioningRequestConfig",
        "name": name,
    }
    assert config["spec"] == {
        "provisioningClassName": QUEUED_PROVISIONING_CLASS,
        "managedResources": [DEVICE_PLUGIN_GPU],
        "retryStrategy": {"backoffLimitCount": 3, "backoffBaseSeconds": 60, "backoffMaxSeconds": 1800},
    }
    queue = objects["ClusterQueue", "rayplane-prod-h100"]
    [on] = queue["spec"]["admissionChecksStrategy"]["admissionChecks"]
    flavors = [f["name"] for f in queue["spec"]["resourceGroups"][0]["flavors"]]
    assert on == {"name": name, "onFlavors": ["rayplane-prod-h100"]} and on["onFlavors"][0] in flavors  # its webhook
    others = [q for (kind, n), q in objects.items() if kind == "ClusterQueue" and n != "rayplane-prod-h100"]
    assert others and all("admissionChecksStrategy" not in q["spec"] for q in others)
    # GKE taints a queued pool's nodes; Kueue gives the pods it admits on the flavor its tolerations
    flavor = objects["ResourceFlavor", "rayplane-prod-h100"]["spec"]
    assert _tolerates(
        flavor["tolerations"], {"key": "cloud.google.com/gke-queued", "value": "true", "effect": "NO_SCHEDULE"}
    )
    assert QUEUED_TOLERATION not in objects["ResourceFlavor", "rayplane-prod-l4"]["spec"]["tolerations"]


def test_kueue_asks_only_for_what_a_pod_requests_so_a_dra_pool_cannot_be_queued():
    """Kueue makes a ProvisioningRequest for a pod set only if a container requests or limits one of
    managedResources (podUses, containerUses): a DRA claim is neither, so a DRA pod would pass the
    check with no request, and no node would ever come."""
    source = upstream.text("kueue/provisioning_controller.go.txt")
    uses = re.search(r"func containerUses\(.*?\n}\n", source, re.S).group(0)
    assert "cont.Resources.Requests" in uses and "cont.Resources.Limits" in uses and "Claims" not in uses
    values = stack_values("prod")
    values["rayplane:nodePools"][1]["queued"] = True  # l4-flex: flex-start, dra
    with pytest.raises(ConfigError) as exc:
        render_values("prod", values)
    assert "nodePools[1]: queued: queued provisioning is flex-start's" in exc.value.errors[0]


@pytest.mark.parametrize(
    "change, error",
    [
        (
            lambda v: v["rayplane:nodePools"][4].update(provisioning="on-demand"),
            "nodePools[4]: queued: queued provisioning is flex-start's, and Kueue asks it for the `nvidia.com/gpu` a"
            " pod requests (a DRA claim is none): set provisioning flex-start and gpuMode device-plugin",
        ),
        (
            lambda v: v["rayplane:nodePools"][4].update(spareNodes=1),
            "nodePools[4]: spareNodes: a queued pool's nodes come only for admitted jobs, none for a placeholder",
        ),
        (
            lambda v: v["rayplane:addons"].update(kueue={"enabled": False}),
            "nodePools[4].queued: its nodes come only through Kueue: turn on addons.kueue",
        ),
        (
            lambda v: (
                v["rayplane:ladders"].append({"name": "h", "pools": ["h100", "h100b"]})
                or v["rayplane:nodePools"].append({**v["rayplane:nodePools"][4], "name": "h100b", "queued": False})
            ),
            "nodePools[4].queued: GKE adds a queued pool's nodes only for ProvisioningRequests, never for a"
            " ComputeClass: take it out of ladder h",
        ),
    ],
    ids=["not-flex-start", "spare", "no-kueue", "in-a-ladder"],
)
def test_a_queued_pool_nothing_would_ask_nodes_for_is_refused(change, error):
    values = stack_values("prod")
    change(values)
    with pytest.raises(ConfigError) as exc:
        render_values("prod", values)
    assert error in exc.value.errors


def _team_with_job(kueue: bool):
    job = {
        "name": "j",
        "payload": "batch-inference",
        "args": {"input": "gs://rayplane-prod-m/in/", "output": "gs://rayplane-prod-m/out/"},
        "workers": {"gpuPool": "h100", "gpus": 1, "replicas": {"min": 0, "max": 1}},
    }
    team = {"name": "tm", "quota": {"gpus": 16}, "writeBuckets": ["rayplane-prod-m"], "kueue": kueue}
    return parse(
        {
            "kind": "team",
            "gcp:project": "rayplane-prod",
            "platformStack": "org/rayplane/prod",
            "team": team,
            "jobs": [job],
        }
    )


# prod with a tenant "tm" granted the h100 pool, and its job's bucket
TENANTS = [t.model_copy(update={"own_buckets": ["rayplane-prod-m"]}) if t.name == "tm" else t for t in PROD.tenants]
PLATFORM = PROD.model_copy(update={"tenants": TENANTS})


def test_only_a_teams_queued_jobs_may_use_a_queued_pool():
    services = [{"name": "s", "payload": "embeddings", "workers": {"gpuPool": "h100", "gpus": 1}}]
    with pytest.raises(ConfigError) as exc:
        plan.team(_team(services, []), PROD, "tm")
    assert exc.value.errors == [
        "services[0].workers.gpuPool: h100 adds nodes only for jobs that Kueue admits (queued provisioning), so a"
        " service would never get one: use another pool"
    ]
    with pytest.raises(ConfigError) as exc:
        plan.team(_team_with_job(kueue=False), PLATFORM, "tm")
    assert exc.value.errors == [
        "jobs[0].workers.gpuPool: h100 adds nodes only for jobs that Kueue admits (queued provisioning), so a job"
        " that does not queue would never get one: set team.kueue or use another pool"
    ]
    [job] = plan.team(_team_with_job(kueue=True), PLATFORM, "tm").jobs
    assert job.queue == "h100"  # its LocalQueue, onto the pool's ClusterQueue and its admission check
