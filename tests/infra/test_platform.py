"""The platform components, asserted on what the whole program registers under Pulumi's mocks."""

import yaml

from components.cluster import NODE_ROLES
from tests.infra.conftest import render_values, rendered, stack_values
from tools.render import dns_endpoint

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"


def gpu_pools(stack):
    return {r["inputs"]["nodeConfig"]["labels"]["rayplane.dev/pool"]: r["inputs"] for r in stack.of_type(NODE_POOL)}


def test_cluster_security_and_features():
    cluster = rendered("prod").one(CLUSTER)["inputs"]
    assert cluster["name"] == "rayplane-prod" and cluster["location"] == "us-central1"  # regional
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "rayplane-prod.svc.id.goog"}
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is True  # no public endpoint configured
    assert cluster["masterAuthorizedNetworksConfig"] == {"cidrBlocks": [], "gcpPublicCidrsAccessEnabled": False}
    assert cluster["enableShieldedNodes"] is True
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert cluster["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert cluster["deletionProtection"] is True  # the model's default: prod does not set it
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["releaseChannel"] == {"channel": "STABLE"}
    assert cluster["minMasterVersion"] == "1.34"


def test_public_endpoint_only_with_authorized_networks():
    cluster = rendered("dev").one(CLUSTER)["inputs"]
    assert cluster["location"] == "us-central1-a"  # zonal
    assert cluster["privateClusterConfig"]["enablePrivateEndpoint"] is False
    assert cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"] == [
        {"cidrBlock": "203.0.113.0/24", "displayName": "office-vpn"}
    ]
    assert cluster["deletionProtection"] is True  # the policy pack requires it of every cluster


def test_cluster_uses_the_subnet_ranges_it_creates():
    stack = rendered("prod")
    subnet = stack.one("gcp:compute/subnetwork:Subnetwork", "rayplane-prod-nodes")["inputs"]
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet["secondaryIpRanges"]}
    assert ranges == {"pods": "10.32.0.0/14", "services": "10.36.0.0/20"}
    assert subnet["ipCidrRange"] == "10.10.0.0/20" and subnet["privateIpGoogleAccess"] is True
    policy = stack.one(CLUSTER)["inputs"]["ipAllocationPolicy"]
    assert set(ranges) == {policy["clusterSecondaryRangeName"], policy["servicesSecondaryRangeName"]}
    cluster = stack.one(CLUSTER)["inputs"]
    assert cluster["subnetwork"] == "rayplane-prod-nodes-id" and cluster["network"] == "rayplane-prod-vpc-id"
    nat = stack.one("gcp:compute/routerNat:RouterNat")["inputs"]
    assert nat["router"] == stack.one("gcp:compute/router:Router")["inputs"]["name"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_gpu_pools_carry_accelerators_taints_and_mode():
    pools = gpu_pools(rendered("prod"))
    assert set(pools) == {"system", "l4", "l4-flex", "l4-spot", "a100", "h100"}
    for name in ("l4", "l4-flex", "l4-spot", "a100", "h100"):
        node = pools[name]["nodeConfig"]
        assert node["taints"][0] == {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert "name" not in pools[name]  # auto-named: a replacement is created before the old pool goes
    l4 = pools["l4"]
    assert l4["nodeConfig"]["guestAccelerators"] == [
        {"type": "nvidia-l4", "count": 2, "gpuDriverInstallationConfig": {"gpuDriverVersion": "INSTALLATION_DISABLED"}}
    ]
    assert l4["nodeConfig"]["machineType"] == "g2-standard-24"
    assert l4["nodeLocations"] == ["us-central1-a", "us-central1-b"]
    assert l4["autoscaling"]["totalMinNodeCount"] == 1 and l4["autoscaling"]["totalMaxNodeCount"] == 8
    h100 = pools["h100"]["nodeConfig"]
    assert h100["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    assert h100["guestAccelerators"][0]["count"] == 8 and h100["diskSizeGb"] == 500


def test_dra_pools_get_dra_labels_and_device_plugin_pools_do_not():
    pools = gpu_pools(rendered("dev"))
    dra, classic = pools["l4"]["nodeConfig"], pools["t4"]["nodeConfig"]
    assert dra["labels"]["gke-no-default-nvidia-gpu-device-plugin"] == "true"
    assert dra["labels"]["nvidia.com/gpu.present"] == "true"
    assert "gke-no-default-nvidia-gpu-device-plugin" not in classic["labels"]
    assert classic["labels"]["rayplane.dev/gpu-mode"] == "device-plugin"
    assert dra["spot"] is True and pools["l4"]["autoscaling"]["totalMinNodeCount"] == 0  # scales to zero


def test_nodes_run_as_a_least_privilege_service_account_without_keys():
    stack = rendered("dev")
    accounts = {a["inputs"]["accountId"] for a in stack.of_type("gcp:serviceaccount/account:Account")}
    assert accounts == {"rayplane-dev-nodes", "rayplane-dev-build"}  # the nodes, and the Ray image's build
    email = "rayplane-dev-nodes@rayplane-dev.iam.gserviceaccount.com"
    grants = stack.of_type("gcp:projects/iAMMember:IAMMember")
    roles = {r["inputs"]["role"] for r in grants if r["inputs"]["member"] == f"serviceAccount:{email}"}
    assert roles == set(NODE_ROLES)
    assert not stack.of_type("gcp:serviceaccount/key:Key")
    assert {pool["nodeConfig"]["serviceAccount"] for pool in gpu_pools(stack).values()} == {email}


def test_workload_bucket_is_private():
    bucket = rendered("dev").one("gcp:storage/bucket:Bucket")["inputs"]
    assert bucket["name"] == "rayplane-dev-rayplane-dev-workloads"
    assert bucket["uniformBucketLevelAccess"] is True and bucket["publicAccessPrevention"] == "enforced"


def test_every_resource_hangs_under_a_component_named_from_the_prefix():
    stack = rendered("prod")
    components = {r["name"] for r in stack.resources if r["type"].startswith("rayplane:")}
    for r in stack.resources:
        assert r["name"].startswith("rayplane-prod"), r["name"]
        if not r["type"].startswith("rayplane:"):
            assert r["parent"] in components, (r["type"], r["name"], r["parent"])


def test_exports_for_team_stacks():
    stack = rendered("prod")
    assert "kubeconfig" in stack.secret_outputs
    kubeconfig = yaml.safe_load(stack.outputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    # the DNS endpoint (IAM-authorized; CI reaches it), whose certificate is publicly trusted: no CA
    assert kubeconfig["clusters"][0]["cluster"] == {"server": f"https://{dns_endpoint('us-central1')}"}
    cluster = stack.one("gcp:container/cluster:Cluster")["inputs"]
    assert cluster["controlPlaneEndpointsConfig"] == {"dnsEndpointConfig": {"allowExternalTraffic": True}}
    assert stack.outputs["clusterName"] == "rayplane-prod" and stack.outputs["clusterLocation"] == "us-central1"
    assert stack.outputs["workloadBucket"] == "rayplane-prod-rayplane-prod-workloads"
    pools = {p["name"]: p for p in stack.outputs["gpuNodePools"]}
    assert pools["a100"] == {
        "name": "a100",
        "nodePoolName": "rayplane-prod-a100",
        "accelerator": "nvidia-tesla-a100",
        "gpusPerNode": 1,
        "machineType": "a2-highgpu-1g",
        "gpuMode": "dra",
        "provisioning": "on-demand",
        "queued": False,
        "imageCached": False,
        "zones": ["us-central1-c"],
        "minNodes": 0,
        "maxNodes": 4,
        "spareNodes": 0,
        "nodePrice": 3.6734,
    }
    provider = stack.one("pulumi:providers:kubernetes")["inputs"]
    assert provider["kubeconfig"] == "[secret]"


def test_a_pool_added_to_config_becomes_a_node_pool():
    values = stack_values("dev")
    values["rayplane:nodePools"] = [
        *values["rayplane:nodePools"],
        {"name": "h100", "machineType": "a3-highgpu-8g", "accelerator": "nvidia-h100-80gb", "zones": ["us-central1-b"]},
    ]
    pools = gpu_pools(render_values("dev", values))
    assert pools["h100"]["nodeConfig"]["guestAccelerators"][0]["count"] == 8
    assert pools["h100"]["nodeLocations"] == ["us-central1-b"]
