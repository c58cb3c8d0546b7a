"""The catalogue of invalid stack configs: each one is a shipped stack file with one change, run
through the offline render as `pulumi up` would run the program. Each fails with exactly its key
path and reason, and registers nothing (the team's platform-dependent checks run before any of its
resources; only the StackReference that reads the platform is there)."""

import pytest

from components.config.platform import REFUSED_SHARING
from tests.infra.catalogue import DELETE, Case, refused_with
from workloads.facts import PRESETS

NO_POOL_FITS = (
    "l4 has 1 GPU(s) per node, the profile needs 4; t4 runs gpuMode device-plugin; GPU profiles need gpuMode dra"
)
L4_MACHINES = (
    "g2-standard-4, g2-standard-8, g2-standard-12, g2-standard-16, g2-standard-32, g2-standard-24, g2-standard-48,"
    " g2-standard-96"
)
KUBERAY_GATES = (
    "RayClusterStatusConditions, RayJobDeletionPolicy, RayMultiHostIndexing, RayServiceIncrementalUpgrade, RayCronJob,"
    " SidecarSubmitterRestart, RayClusterNetworkPolicy, GCSFaultToleranceEmbeddedStorage, RayClusterMTLS,"
    " RayClusterHistoryServer, KubernetesWAS"
)
NAME_RULE = (
    "is not a valid name: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most"
)
NAMESPACE_RULE = (
    "is not a valid namespace: lowercase letters, digits and '-', starting and ending with a letter or digit, at most"
    " 63 characters"
)
RESERVED = "is reserved (kube-*, gke-*, gmp-*, default, kuberay-system, kueue-system, nvidia-dra-driver-gpu, rayplane-spare): a team's namespace must be its own"
CREDENTIAL = (
    "looks like a credential; stack config is plain text (in the repository, previews and the rendered objects):"
    " keep it in rayplane:secrets and pass it with secretEnv"
)
SECURE = {"secure": "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
CU130 = "rayproject/ray-llm:2.60.0-py312-cu130"


PLATFORM = [
    Case(
        "t4-on-a2",
        "dev",
        {"nodePools.1.machineType": "a2-highgpu-1g"},
        ["nodePools[1].accelerator: nvidia-tesla-t4 needs a n1-* machine type, got a2-highgpu-1g"],
    ),
    Case(
        "l4-on-a2",
        "dev",
        {"nodePools.0.machineType": "a2-highgpu-1g"},
        ["nodePools[0].accelerator: nvidia-l4 needs a g2-standard-* machine type, got a2-highgpu-1g"],
    ),
    Case(
        "unknown-g2",
        "dev",
        {"nodePools.0.machineType": "g2-standard-7"},
        [f"nodePools[0].accelerator: g2-standard-7 is not a known nvidia-l4 machine type ({L4_MACHINES})"],
    ),
    Case(
        "unknown-accelerator",
        "dev",
        {"nodePools.0.accelerator": "nvidia-l40"},
        [
            "nodePools[0].accelerator: Input should be 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-a100', 'nvidia-a100-80gb', 'nvidia-h100-80gb', 'nvidia-h100-mega-80gb' or 'nvidia-h200-141gb'"
        ],
    ),
    Case(
        "fixed-gpu-count",
        "dev",
        {"nodePools.0.acceleratorCount": 2},
        ["nodePools[0].acceleratorCount: g2-standard-8 has exactly 1 nvidia-l4 GPU(s), got 2"],
    ),
    Case(
        "n1-gpu-count",
        "dev",
        {"nodePools.1.acceleratorCount": 3},
        ["nodePools[1].acceleratorCount: n1-standard-8 takes 1, 2, 4 nvidia-tesla-t4 GPU(s), got 3"],
    ),
    Case(
        "max-below-min",
        "dev",
        {"nodePools.0.autoscaling": {"minNodes": 3, "maxNodes": 2}},
        ["nodePools[0].autoscaling: maxNodes (2) must be >= minNodes (3)"],
    ),
    Case(
        "negative-min",
        "dev",
        {"nodePools.0.autoscaling": {"minNodes": -1}},
        ["nodePools[0].autoscaling.minNodes: Input should be greater than or equal to 0"],
    ),
    Case(
        "max-above-gke",
        "dev",
        {"nodePools.0.autoscaling.maxNodes": 1001},
        ["nodePools[0].autoscaling.maxNodes: 1001 is above GKE's 1000 nodes per zone for the pool's 1 zone(s)"],
    ),
    Case(
        "gpu-mode",
        "dev",
        {"nodePools.1.gpuMode": "mig"},
        ["nodePools[1].gpuMode: Input should be 'dra' or 'device-plugin'"],
    ),
    Case(
        "small-disk",
        "dev",
        {"nodePools.0.diskSizeGb": 10},
        ["nodePools[0].diskSizeGb: Input should be greater than or equal to 50"],
    ),
    Case(
        "location-shape",
        "dev",
        {"cluster.location": "us-central"},
        ["cluster.location: 'us-central' is neither a region (e.g. us-central1) nor a zone (e.g. us-central1-a)"],
    ),
    Case(
        "no-such-region",
        "dev",
        {"cluster.location": "mars-north1"},
        ["cluster.location: mars-north1 is not a Google Cloud region or zone (components/regions.py lists them)"],
    ),
    Case(
        "no-such-zone",
        "dev",
        {"cluster.location": "us-central1-z"},
        [
            "cluster.location: us-central1-z is not a zone of us-central1 (us-central1-a, us-central1-b, us-central1-c, us-central1-f)"
        ],
    ),
    Case(
        "zone-shape",
        "prod",
        {"nodePools.0.zones": ["us-central1-a", "central1a"]},
        ["nodePools[0].zones[1]: 'central1a' is not a zone (e.g. us-central1-a)"],
    ),
    Case(
        "zone-elsewhere",
        "prod",
        {"nodePools.0.zones": ["europe-west4-a"]},
        ["nodePools[0].zones[0]: europe-west4-a is not in the cluster's region us-central1"],
    ),
    Case(
        "zone-unknown",
        "prod",
        {"nodePools.0.zones": ["us-central1-e"]},
        [
            "nodePools[0].zones[0]: us-central1-e is not a zone of us-central1 (us-central1-a, us-central1-b, us-central1-c, us-central1-f)"
        ],
    ),
    Case(
        "dra-needs-1.34",
        "dev",
        {"cluster.kubernetesVersion": "1.33"},
        ["cluster.kubernetesVersion: nodePools[0] uses gpuMode dra, which needs Kubernetes >= 1.34, got 1.33"],
    ),
    Case(
        "version-shape",
        "dev",
        {"cluster.kubernetesVersion": "latest"},
        ["cluster.kubernetesVersion: 'latest' is not a GKE version (e.g. 1.34 or 1.34.1-gke.1829001)"],
    ),
    Case(
        "release-channel",
        "dev",
        {"cluster.releaseChannel": "BETA"},
        ["cluster.releaseChannel: Input should be 'RAPID', 'REGULAR' or 'STABLE'"],
    ),
    Case(
        "rbac-group",
        "dev",
        {"cluster.rbacSecurityGroup": "security@example.com"},
        ["cluster.rbacSecurityGroup: String should match pattern '^gke-security-groups@[\\w.-]+$'"],
    ),
    Case(
        "pool-name", "dev", {"nodePools.0.name": "L4_pool"}, [f"nodePools[0].name: 'L4_pool' {NAME_RULE} 30 characters"]
    ),
    Case(
        "prefix-long",
        "dev",
        {"prefix": "rayplane-production-europe"},
        [f"prefix: 'rayplane-production-europe' {NAME_RULE} 24 characters"],
    ),
    Case("prefix-empty", "dev", {"prefix": ""}, [f"prefix: '' {NAME_RULE} 24 characters"]),
    Case(
        "pool-name-long",
        "dev",
        {"nodePools.0.name": "inference-l4-large-p"},
        [
            "nodePools[0].name: 'rayplane-dev-inference-l4-large-p' plus Pulumi's 8-character suffix is 41 characters; GKE allows 40"
        ],
    ),
    Case(
        "pool-name-twice",
        "dev",
        {"nodePools.1.name": "l4", "tenants": []},
        ["nodePools[1].name: 'l4' is already used by another node pool"],
    ),
    Case(
        "pool-name-system",
        "dev",
        {"nodePools.0.name": "system"},
        ["nodePools[0].name: 'system' is already used by another node pool"],
    ),
    Case("pool-typo", "dev", {"nodePools.0.autoscalling": {"maxNodes": 2}}, ["nodePools[0].autoscalling: unknown key"]),
    Case(
        "public-without-networks",
        "prod",
        {"cluster.controlPlane": {"publicEndpoint": True}},
        ["cluster.controlPlane.publicEndpoint: a public endpoint needs at least one entry in authorizedNetworks"],
    ),
    Case(
        "network-cidr",
        "dev",
        {"cluster.controlPlane.authorizedNetworks": [{"name": "vpn", "cidr": "10.0.0.1/8"}]},
        ["cluster.controlPlane.authorizedNetworks[0].cidr: Input is not a valid IPv4 network"],
    ),
    Case(
        "open-to-world",
        "dev",
        {"cluster.controlPlane.authorizedNetworks": [{"name": "any", "cidr": "0.0.0.0/0"}]},
        [
            "cluster.controlPlane: authorizedNetworks[0] is 0.0.0.0/0, the whole internet; set cluster.controlPlane.openToInternet: true if that is meant"
        ],
    ),
    Case(
        "pods-overlap-nodes",
        "dev",
        {"network": {"nodesCidr": "10.0.0.0/16", "podsCidr": "10.0.128.0/17"}},
        ["network.podsCidr: 10.0.128.0/17 overlaps nodesCidr 10.0.0.0/16"],
    ),
    Case(
        "services-overlap-pods",
        "dev",
        {"network": {"servicesCidr": "10.16.0.0/20"}},
        ["network.servicesCidr: 10.16.0.0/20 overlaps podsCidr 10.16.0.0/14"],
    ),
    Case(
        "proxy-overlap",
        "prod",
        {"network.proxyOnlyCidr": "10.32.0.0/23"},
        ["network.proxyOnlyCidr: 10.32.0.0/23 overlaps podsCidr 10.32.0.0/14"],
    ),
    Case(
        "proxy-small",
        "prod",
        {"network.proxyOnlyCidr": "10.24.0.0/27"},
        ["network.proxyOnlyCidr: 10.24.0.0/27 is smaller than a /26, the smallest proxy-only subnet"],
    ),
    Case(
        "project-shape",
        "dev",
        {"gcp:project": "Rayplane"},
        ["gcp:project: String should match pattern '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'"],
    ),
    Case("top-level-typo", "dev", {"nodepools": []}, ["nodepools: unknown key"]),
    Case("kind-typo", "dev", {"kind": "platfrom"}, ["kind: must be one of bootstrap, platform, team, got 'platfrom'"]),
    Case(
        "profile-too-big",
        "dev",
        {"gpuProfiles": [{"name": "big", "count": 4}], "tenants": []},
        [f"gpuProfiles[0]: no node pool can satisfy it ({NO_POOL_FITS})"],
    ),
    Case(
        "profile-mig",
        "dev",
        {"gpuProfiles": [{"name": "slice", "sharing": "mig"}]},
        [f"gpuProfiles[0].sharing: {REFUSED_SHARING['mig']}"],
    ),
    Case(
        "profile-mig-key",
        "dev",
        {"gpuProfiles": [{"name": "x", "migProfile": "1g.10gb"}]},
        ["gpuProfiles[0].migProfile: unknown key"],
    ),
    Case(
        "profile-pool-missing",
        "dev",
        {"gpuProfiles": [{"name": "x", "pools": ["h100"]}], "tenants": []},
        ["gpuProfiles[0].pools[0]: no node pool named 'h100'"],
    ),
    Case(
        "profile-device-plugin",
        "dev",
        {"gpuProfiles": [{"name": "x", "pools": ["t4"]}], "tenants": []},
        ["gpuProfiles[0].pools[0]: t4 runs gpuMode device-plugin; GPU profiles need gpuMode dra"],
    ),
    Case(
        "profile-twice",
        "dev",
        {"gpuProfiles": [{"name": "x"}, {"name": "x", "sharing": "time-sliced"}], "tenants": []},
        ["gpuProfiles[1].name: 'x' is already used by another profile"],
    ),
    Case(
        "profile-interval",
        "dev",
        {"gpuProfiles": [{"name": "x", "interval": "Short"}]},
        ["gpuProfiles[0]: interval only applies to sharing: time-sliced"],
    ),
    Case(
        "profile-mps",
        "dev",
        {"gpuProfiles": [{"name": "x", "sharing": "mps"}]},
        [f"gpuProfiles[0].sharing: {REFUSED_SHARING['mps']}"],
    ),
    Case(
        "profile-interval-value",
        "dev",
        {"gpuProfiles": [{"name": "x", "sharing": "time-sliced", "interval": "Longest"}]},
        ["gpuProfiles[0].interval: Input should be 'Default', 'Short', 'Medium' or 'Long'"],
    ),
    Case(
        "profile-sharing",
        "dev",
        {"gpuProfiles": [{"name": "x", "sharing": "spatial"}]},
        ["gpuProfiles[0].sharing: Input should be 'exclusive', 'time-sliced', 'mps' or 'mig'"],
    ),
    Case(
        "price-of-no-pool",
        "prod",
        {"pricing": {"g2-standard-8": {"onDemand": 1.0}}},
        ["pricing.g2-standard-8: no GPU node pool uses it"],
    ),
    Case(
        "negative-price",
        "prod",
        {"pricing": {"g2-standard-24": {"spot": -1}}},
        ["pricing.g2-standard-24.spot: Input should be greater than or equal to 0"],
    ),
    Case(
        "kueue-queue-pool",
        "prod",
        {"addons.kueue.queues.h200": {"gpus": 8}},
        ["addons.kueue.queues.h200: no GPU node pool named 'h200'"],
    ),
    Case(
        "kueue-machine-size",
        "dev",
        {"addons.kueue.enabled": True, "nodePools.1.machineType": "n1-custom-8-32768"},
        [
            "nodePools[1].machineType: the size of n1-custom-8-32768 is unknown; set addons.kueue.queues.t4.cpu and memoryGib"
        ],
    ),
    Case(
        "driver-version-shape",
        "dev",
        {"addons.gpuDriverVersion": "newest"},
        ["addons.gpuDriverVersion: String should match pattern '^(default|latest|[0-9]+\\.[0-9]+(\\.[0-9]+)?)$'"],
    ),
    Case(
        "batch-scheduler",
        "dev",
        {"addons.kuberay": {"batchScheduler": "kueue"}},
        [
            "addons.kuberay.batchScheduler: Input should be '', 'volcano', 'yunikorn', 'kai-scheduler' or 'scheduler-plugins'"
        ],
    ),
    Case(
        "kuberay-incremental-gate",
        "dev",
        {"addons.kuberay": {"featureGates": {"RayServiceIncrementalUpgrade": True}}},
        [
            "addons.kuberay.featureGates: RayServiceIncrementalUpgrade: set by rayplane from cluster.gatewayApi; leave it out"
        ],
    ),
    Case(
        "kuberay-unknown-gate",
        "dev",
        {"addons.kuberay": {"featureGates": {"RayJobDeletionPolcy": True}}},
        [f"addons.kuberay.featureGates: RayJobDeletionPolcy: KubeRay 1.7.0 has no such feature gate ({KUBERAY_GATES})"],
    ),
    Case(
        "driver-too-old",
        "dev",
        {"rayImage": CU130, "addons.gpuDriverVersion": "570.86.15"},
        [
            f"addons.gpuDriverVersion: rayImage {CU130} is built for CUDA 13.0, which needs NVIDIA driver >= 580; got 570.86.15"
        ],
    ),
    Case(
        "driver-default",
        "dev",
        {"addons.gpuDriverVersion": "default"},
        [
            f"addons.gpuDriverVersion: rayImage {CU130} is built for CUDA 13.0, which needs NVIDIA driver >= 580; 'default' installs GKE's default driver branch, which can be older: set latest or a version"
        ],
    ),
    Case(
        "image-ray-version",
        "dev",
        {"rayImage": "rayproject/ray-llm:2.58.0-py312-cu130"},
        [
            "rayImage: rayproject/ray-llm:2.58.0-py312-cu130 runs Ray 2.58.0; the payloads are built and tested with Ray 2.60.0"
        ],
    ),
    Case(
        "image-tag",
        "dev",
        {"rayImage": "rayproject/ray-llm:latest"},
        [
            "rayImage: 'rayproject/ray-llm:latest' is not a Ray image tagged <ray version>-py<python>-cu<cuda> (e.g. rayproject/ray-llm:2.60.0-py312-cu130), optionally pinned with @sha256:<digest>"
        ],
    ),
]

TEAM = [
    Case(
        "tp-pp-too-big",
        "search-prod",
        {"services.0.args.models.0.tensor_parallel_size": 4},
        ["services[0].args: a replica needs 4 GPU(s) (tensor x pipeline parallel size) but a worker gets 2 from l4-x2"],
    ),
    Case(
        "profile-not-the-teams",
        "search-dev",
        {"services.0.workers.gpuProfile": "l4-long"},
        ["services[0].workers.gpuProfile: 'l4-long' is not in team.gpuProfiles"],
    ),
    Case(
        "no-such-payload",
        "search-dev",
        {"services.0.payload": "llm-v2"},
        ["services[0].payload: no payload 'llm-v2' in workloads/ (llm, embeddings, multiplex, compose)"],
    ),
    Case(
        "job-payload-as-service",
        "search-dev",
        {"services.0.payload": "batch-inference"},
        ["services[0].payload: no payload 'batch-inference' in workloads/ (llm, embeddings, multiplex, compose)"],
    ),
    Case(
        "negative-replicas",
        "search-dev",
        {"services.0.workers.replicas.min": -1},
        ["services[0].workers.replicas.min: Input should be greater than or equal to 0"],
    ),
    Case("workload-typo", "search-dev", {"services.0.replicas": 3}, ["services[0].replicas: unknown key"]),
    Case("args-typo", "search-dev", {"services.0.args.num_gpu": 1}, ["services[0].args.num_gpu: unknown key"]),
    Case(
        "dra-pool-by-name",
        "search-dev",
        {"services.0.workers": {"gpuPool": "l4"}},
        ["services[0].workers.gpuPool: l4 is a dra pool; use a gpuProfile"],
    ),
    Case(
        "no-such-pool",
        "assistant-dev",
        {"services.0.workers.gpuPool": "h100"},
        ["services[0].workers.gpuPool: the platform has no GPU pool 'h100' (l4, t4)"],
    ),
    Case(
        "both-gpu-sources",
        "search-dev",
        {"services.0.workers.gpuPool": "t4"},
        ["services[0].workers: set exactly one of gpuProfile (dra) or gpuPool (device-plugin)"],
    ),
    Case(
        "pool-gpus-per-node",
        "assistant-dev",
        {"services.0.workers.gpus": 4},
        ["services[0].workers.gpus: t4 nodes have 2 GPU(s)"],
    ),
    Case(
        "incremental-without-gateway",
        "search-dev",
        {"services.0.upgradeStrategy": "NewClusterWithIncrementalUpgrade"},
        ["services[0].upgradeStrategy: incremental upgrades need the platform's cluster.gatewayApi"],
    ),
    Case(
        "secret-env-missing",
        "search-dev",
        {"services.0.secretEnv": {"TOKEN": "nope"}},
        ["services[0].secretEnv.TOKEN: no secret 'nope' in rayplane:secrets"],
    ),
    Case(
        "redis-password-missing",
        "search-prod",
        {"services.0.gcsFaultTolerance.passwordSecret": "redis"},
        ["services[0].gcsFaultTolerance.passwordSecret: no secret 'redis'"],
    ),
    Case(
        "workload-twice",
        "search-dev",
        {"services.1.name": "embed"},
        ["services[1].name: 'embed' is already used by another service or job"],
    ),
    Case(
        "missing-platform-profile",
        "search-prod",
        {"team.gpuProfiles": ["l4-x2", "l4-shared", "l4-x4"]},
        ["team.gpuProfiles[2]: the platform stack has no GPU profile 'l4-x4' (l4-whole, l4-x2, l4-shared, a100-whole)"],
    ),
    Case(
        "namespace-kube-system",
        "search-dev",
        {"team.namespace": "kube-system"},
        [f"team.namespace: 'kube-system' {RESERVED}"],
    ),
    Case("namespace-default", "search-dev", {"team.namespace": "default"}, [f"team.namespace: 'default' {RESERVED}"]),
    Case(
        "namespace-kuberay",
        "search-dev",
        {"team.namespace": "kuberay-system"},
        [f"team.namespace: 'kuberay-system' {RESERVED}"],
    ),
    Case(
        "namespace-kueue",
        "search-dev",
        {"team.namespace": "kueue-system"},
        [f"team.namespace: 'kueue-system' {RESERVED}"],
    ),
    Case(
        "namespace-dra",
        "search-dev",
        {"team.namespace": "nvidia-dra-driver-gpu"},
        [f"team.namespace: 'nvidia-dra-driver-gpu' {RESERVED}"],
    ),
    Case("namespace-gmp", "search-dev", {"team.namespace": "gmp-public"}, [f"team.namespace: 'gmp-public' {RESERVED}"]),
    Case(
        "namespace-gke",
        "search-dev",
        {"team.namespace": "gke-managed-system"},
        [f"team.namespace: 'gke-managed-system' {RESERVED}"],
    ),
    Case(
        "namespace-shape",
        "search-dev",
        {"team.namespace": "Search"},
        [f"team.namespace: 'Search' {NAMESPACE_RULE}"],
    ),
    Case(
        "group-everyone",
        "search-dev",
        {"team.group": "system:authenticated"},
        [
            "team.group: 'system:authenticated' is not a Google group's e-mail address (a Kubernetes group such as system:authenticated would give its rights to everyone it covers)"
        ],
    ),
    Case(
        "group-not-email",
        "search-dev",
        {"team.group": "search-eng"},
        [
            "team.group: 'search-eng' is not a Google group's e-mail address (a Kubernetes group such as system:authenticated would give its rights to everyone it covers)"
        ],
    ),
    Case(
        "write-workload-bucket",
        "search-dev",
        {"team.writeBuckets": ["rayplane-dev-search-data", "rayplane-dev-rayplane-dev-workloads"]},
        [
            "team.writeBuckets[1]: rayplane-dev-rayplane-dev-workloads is the platform's workload bucket, which holds every team's code; a team reads its own payloads there already"
        ],
    ),
    Case(
        "read-workload-bucket",
        "search-dev",
        {"team.readBuckets": ["rayplane-dev-models", "rayplane-dev-rayplane-dev-workloads"]},
        [
            "team.readBuckets[1]: rayplane-dev-rayplane-dev-workloads is the platform's workload bucket, which holds every team's code; a team reads its own payloads there already"
        ],
    ),
    Case(
        "bucket-url",
        "search-dev",
        {"team.writeBuckets": ["gs://rayplane-dev-search-data/out"]},
        [
            "team.writeBuckets[0]: 'gs://rayplane-dev-search-data/out' is a URL; give the bucket's name (rayplane-dev-search-data)"
        ],
    ),
    Case(
        "bucket-shape",
        "search-dev",
        {"team.readBuckets": ["Models"]},
        ["team.readBuckets[0]: 'Models' is not a bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'"],
    ),
    Case(
        "serve-client-shape",
        "search-dev",
        {"team.serveClients": ["Bad_NS"]},
        [f"team.serveClients[0]: 'Bad_NS' {NAMESPACE_RULE}"],
    ),
    Case(
        "team-name-short",
        "search-dev",
        {"team.name": "s"},
        ["team.name: 's' makes the service account id 's-ray', shorter than GCP's 6 characters"],
    ),
    Case("team-name-missing", "search-dev", {"team.name": DELETE}, ["team.name: Field required"]),
    Case(
        "kueue-without-kueue",
        "search-dev",
        {"team.kueue": True},
        ["team.kueue: the platform stack runs no Kueue (its addons.kueue.enabled is false)"],
    ),
    Case(
        "plain-secret-beside-secure",
        "assistant-dev",
        {"secrets.hfToken": SECURE, "secrets.apiKey": "in-plain-text"},
        [
            "secrets.apiKey: stored in plain text in the stack file; set it with `pulumi config set --secret --path 'secrets.apiKey' <value>`"
        ],
    ),
    Case(
        "credential-in-url",
        "search-dev",
        {"services.1.args.models.0.model_source": "https://bob:hunter2@models.example.com/qwen"},
        [f"services[1].args.models[0].model_source: {CREDENTIAL}"],
    ),
    Case(
        "hf-token-in-args",
        "search-dev",
        {"services.1.args.models.0.lora": {"dynamic_lora_loading_path": "gs://b/hf_abcdefghijklmnopqrstuvwx"}},
        [f"services[1].args.models[0].lora.dynamic_lora_loading_path: {CREDENTIAL}"],
    ),
    Case(
        "aws-key-in-args",
        "search-dev",
        {"jobs.0.args.input": "s3://AKIAABCDEFGHIJKLMNOP@bucket/docs"},
        [f"jobs[0].args.input: {CREDENTIAL}"],
    ),
    Case(
        "worker-above-quota",
        "search-prod",
        {"team.quota.gpus": 1},
        [
            "services[0].workers: a worker gets 2 GPU(s), team.quota.gpus is 1",
            "team.quota.gpus: the services and jobs at their minimum size request 6 GPU(s), the quota is 1",
        ],
    ),
    # A queued job is as big as its payload needs (Kueue reserves quota for every worker it renders)
    Case(
        "queued-job-bigger-than-its-payload",
        "search-prod",
        {"jobs.0.workers.replicas": {"min": 4, "max": 4}},
        [
            "jobs[0].workers.replicas: a queued job runs at the size its payload needs, 1 worker(s) of 1 GPU(s)"
            " from l4-shared, but workers.replicas is 4..4"
        ],
    ),
    Case(
        "queued-job-payload-bigger-than-its-replicas",
        "search-prod",
        {"jobs.0.args.model": {"max_actors": 3}, "jobs.0.workers.replicas": {"min": 0, "max": 2}},
        [
            "jobs[0].workers.replicas: a queued job runs at the size its payload needs, 3 worker(s) of 1 GPU(s)"
            " from l4-shared, but workers.replicas is 0..2"
        ],
    ),
    # Kueue frees a finished job's quota at once (rayjob_controller.go@v0.19.2:222-226)
    Case(
        "queued-job-keeps-its-gpus-after-the-end",
        "search-prod",
        {"jobs.0.ttlSecondsAfterFinished": 3600},
        [
            "jobs[0].ttlSecondsAfterFinished: 3600, but Kueue frees a queued job's quota when it ends, and its Ray"
            " cluster would hold the GPUs that long while Kueue admits the next job onto them; leave it 0 (the"
            " submitter Job and Cloud Logging keep the logs)"
        ],
    ),
    Case(
        "minimum-above-quota",
        "search-dev",
        {"team.quota.gpus": 1},
        ["team.quota.gpus: the services and jobs at their minimum size request 2 GPU(s), the quota is 1"],
    ),
    Case(
        "zero-quota",
        "assistant-dev",
        {"team.quota": {"gpus": 0}},
        ["services[0].workers: a worker gets 2 GPU(s), team.quota.gpus is 0"],
    ),
    Case(
        "cpu-above-quota",
        "search-dev",
        {"team.quota.cpu": 8},
        ["team.quota.cpu: the services and jobs at their minimum size request 14 vCPUs, the quota is 8"],
    ),
    Case(
        "worker-cpu-above-machine",
        "search-dev",
        {"services.0.workers.cpu": 16},
        ["services[0].workers.cpu: 16 vCPUs, but l4's g2-standard-8 leaves 7.91 allocatable"],
    ),
    Case(
        "worker-memory-above-machine",
        "search-dev",
        {"services.0.workers.memoryGib": 64},
        ["services[0].workers.memoryGib: 64 GiB, but l4's g2-standard-8 leaves 28.34 allocatable"],
    ),
    Case(
        "serve-autoscaling-min-max",
        "search-dev",
        {"services.0.args.autoscaling": {"min_replicas": 3, "max_replicas": 2}},
        ["services[0].args.autoscaling: max_replicas (2) must be >= min_replicas (3)"],
    ),
    Case(
        "actor-pool-min-max",
        "search-dev",
        {"jobs.0.args.model": {"min_actors": 2, "max_actors": 1}},
        ["jobs[0].args.model: max_actors (1) must be >= min_actors (2)"],
    ),
    Case(
        "job-fractional-above-one",
        "search-dev",
        {"jobs.0.args.num_gpus": 1.5},
        ["jobs[0].args.num_gpus: Ray gives an actor a fraction of one GPU or whole GPUs, not 1.5"],
    ),
    Case(
        "embedding-gpus-above-one",
        "search-dev",
        {"services.0.args.num_gpus": 1.5},
        ["services[0].args.num_gpus: Input should be less than or equal to 1"],
    ),
    Case(
        "llm-stage-without-model",
        "search-dev",
        {"jobs.0.args.stage": "llm"},
        ["jobs[0].args: stage llm needs model_source"],
    ),
    Case(
        "accelerator-mismatch",
        "search-dev",
        {"services.1.args.accelerator_type": "A100"},
        ["services[1].args.accelerator_type: 'A100', but l4-whole gives L4 GPUs"],
    ),
    Case(
        "min-replicas-do-not-fit",
        "search-prod",
        {"services.1.args.autoscaling": {"min_replicas": 9, "max_replicas": 9}},
        [
            "services[1]: its minimum (9 x 0.5 GPU) needs 5 worker(s) of 1 GPU(s) from l4-shared, but at most 4 can"
            " run (workers.replicas.max: 4; l4+l4-flex+l4-spot at maxNodes 20: 48; team.quota.gpus 16 less the other"
            " workloads' 5: 11)"
        ],
    ),
    Case(
        "kv-cache-does-not-fit",
        "search-prod",
        {"services.0.args.models.0.max_model_len": 16384},
        [
            "services[0].args.models[0]: qwen2.5-14b bf16 needs 13.7 GiB weights per GPU at TP=2 on nvidia-l4; with"
            " gpu_memory_utilization 0.9 and 1 GiB for activations that leaves 5.5 GiB for KV, but max_model_len"
            " 16384 x 6 sequences needs 9.0 GiB"
        ],
    ),
    Case(
        "weights-do-not-fit",
        "search-dev",
        {"services.1.args.models.0.preset": "llama-3.1-70b", "services.1.args.models.0.max_model_len": 4096},
        [
            "services[1].args.models[0]: llama-3.1-70b bf16 needs 131.5 GiB weights per GPU at TP=1 on nvidia-l4;"
            " with gpu_memory_utilization 0.9 and 1 GiB for activations that leaves 0.0 GiB for KV, but max_model_len"
            " 4096 x 64 sequences needs 80.0 GiB"
        ],
    ),
    Case(
        "below-the-decode-floor",
        "search-prod",
        {"services.0.args.models.0.max_ms_per_token": 20},
        [
            "services[0].args.models[0].max_ms_per_token: 20 ms, but every token reads 13.7 GiB of weights per TP"
            " rank at 300 GB/s on nvidia-l4: at least 49.0 ms"
        ],
    ),
    Case(
        "utilization-above-the-share",
        "search-dev",
        {"services.1.args.models.0.num_gpus": 0.5, "services.1.args.models.0.gpu_memory_utilization": 0.6},
        [
            "services[1].args.models[0]: gpu_memory_utilization 0.6 is more than the replica's 0.5 of the GPU: the"
            " next replica packed on that GPU would run out of memory"
        ],
    ),
    Case(
        "share-with-parallelism",
        "search-prod",
        {"services.0.args.models.0.num_gpus": 0.5},
        [
            "services[0].args.models[0]: num_gpus (a share of one GPU) needs tensor_parallel_size and"
            " pipeline_parallel_size 1; a parallel replica takes one whole GPU per rank"
        ],
    ),
    Case(
        "kv-aware-router",
        "search-dev",
        {"services.1.args.models.0.routing": {"router": "kv_aware"}},
        [
            "services[1].args.models[0].routing: router kv_aware: Ray Serve LLM 2.60 scores replicas for it with"
            " NVIDIA Dynamo's selection service (ai-dynamo), which rayplane's Ray image does not install; without it"
            " Ray picks a random replica. Use prefix_aware"
        ],
    ),
    Case(
        "router-parameters-of-another-router",
        "search-dev",
        {"services.1.args.models.0.routing": {"match_rate_threshold": 0.3}},
        [
            "services[1].args.models[0].routing: match_rate_threshold: parameters of the prefix_aware router, not of"
            " default"
        ],
    ),
    Case(
        "prefix-routing-without-prefix-caching",
        "search-dev",
        {
            "services.1.args.models.0.routing": {"router": "prefix_aware"},
            "services.1.args.models.0.prefix_caching": False,
        },
        [
            "services[1].args.models[0]: routing.router prefix_aware needs prefix_caching: it sends a prompt where its"
            " start is cached"
        ],
    ),
    Case(
        "kv-offload-beyond-the-worker",
        "search-dev",
        {"services.1.args.models.0.kv_offload_gib": 12},
        [
            "services[1].args: the KV offload of the 1 replica(s) a worker can hold takes 12 GiB of its memory, but"
            " workers.memoryGib 16 leaves 11.2 beside Ray's object store (30% of it): raise workers.memoryGib to 18"
        ],
    ),
    Case(
        "kv-offload-beyond-the-node",
        "search-prod",
        {"services.0.args.models.0.kv_offload_gib": 100},
        [
            "services[0].args: the KV offload of the 1 replica(s) a worker can hold takes 100 GiB of its memory, but"
            " workers.memoryGib 80 leaves 56 beside Ray's object store (30% of it): lower kv_offload_gib (l4's"
            " g2-standard-24 leaves 88.5 GiB allocatable; l4-spot's g2-standard-24 leaves 88.5 GiB allocatable)"
        ],
    ),
    Case(
        "unknown-preset",
        "search-dev",
        {"services.1.args.models.0.preset": "gpt-5"},
        [f"services[1].args.models[0].preset: no preset 'gpt-5' ({', '.join(PRESETS)}); or declare the model's facts"],
    ),
    Case(
        "no-model-facts",
        "search-dev",
        {"services.1.args.models.0.model_id": "house-model"},
        [
            "services[1].args.models[0]: no facts to size 'house-model' by: set preset (a model in"
            " workloads/facts.py) or give facts its params_b, layers, kv_heads, head_dim, dtype, max_position"
        ],
    ),
    Case(
        "longer-than-the-model",
        "search-dev",
        {"services.1.args.models.0.max_model_len": 65536},
        ["services[1].args.models[0].max_model_len: 65536 is above the model's context of 32768"],
    ),
    Case(
        "job-deadline",
        "search-dev",
        {"jobs.0.activeDeadlineSeconds": 10},
        ["jobs[0].activeDeadlineSeconds: Input should be greater than or equal to 60"],
    ),
    Case(
        "no-such-platform",
        "search-dev",
        {"platformStack": "organization/rayplane/nope"},
        ["platformStack: no stack file stacks/Pulumi.nope.yaml to render organization/rayplane/nope from"],
    ),
    Case(
        "platform-stack-shape",
        "search-dev",
        {"platformStack": "dev"},
        ["platformStack: String should match pattern '^[\\w.-]+/[\\w.-]+/[\\w.-]+$'"],
    ),
    Case("team-project-missing", "search-dev", {"gcp:project": DELETE}, ["gcp:project: Field required"]),
]
CATALOGUE = PLATFORM + TEAM


def test_the_catalogue_is_large_and_covers_both_kinds():
    assert len(CATALOGUE) >= 80 and len({c.id for c in CATALOGUE}) == len(CATALOGUE)
    assert len(PLATFORM) >= 30 and len(TEAM) >= 30


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_an_invalid_config_fails_with_its_key_path_and_registers_nothing(case, stacks):
    refused_with(stacks, case)
