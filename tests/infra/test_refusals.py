"""The second catalogue: invalid configs by family, each refused with its exact key path and reason
before anything is registered, and the valid edge cases of each family that must render.

Strings: every check matches the whole string. Python's `re.match` with `$` accepts a trailing
newline; the checks use `fullmatch`, and pydantic's `pattern` (Rust's regex, `$` at the very end)."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.infra.catalogue import Case, attempt, edit, refused_with
from tests.infra.conftest import stack_values
from tests.infra.test_properties import PROPERTY_SETTINGS
from tools import render as render_tool

NAME = "is not a valid name: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most"
NAMESPACE = (
    "is not a valid namespace: lowercase letters, digits and '-', starting and ending with a letter or digit, at most"
    " 63 characters"
)
BUCKET = "is not a bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'"
PROJECT = "gcp:project: String should match pattern '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'"
IMAGE = "rayproject/ray-llm:2.60.0-py312-cu130"
NOT_A_TEAM = "Input should be a valid dictionary or instance of Team"
RESERVED = (
    "is reserved (kube-*, gke-*, gmp-*, default, kuberay-system, kueue-system, nvidia-dra-driver-gpu,"
    " rayplane-spare): a team's namespace must be its own"
)

STRINGS = [
    Case("name-newline", "search-dev", {"team.name": "search\n"}, [f"team.name: 'search\\n' {NAME} 24 characters"]),
    Case(
        "namespace-newline",
        "search-dev",
        {"team.namespace": "search\n"},
        [f"team.namespace: 'search\\n' {NAMESPACE}"],
    ),
    Case(
        "namespace-upper",
        "search-dev",
        {"team.namespace": "Search"},
        [f"team.namespace: 'Search' {NAMESPACE}"],
    ),
    Case(
        "namespace-64",
        "search-dev",
        {"team.namespace": "s" * 64},
        [f"team.namespace: '{'s' * 64}' {NAMESPACE}"],
    ),
    Case(
        "serve-client-newline",
        "search-dev",
        {"team.serveClients": ["assistant\n"]},
        [f"team.serveClients[0]: 'assistant\\n' {NAMESPACE}"],
    ),
    Case(
        "serve-client-trailing-dash",
        "search-dev",
        {"team.serveClients": ["assistant-"]},
        [f"team.serveClients[0]: 'assistant-' {NAMESPACE}"],
    ),
    Case(
        "group-newline",
        "search-dev",
        {"team.group": "search-eng@example.com\n"},
        [
            "team.group: 'search-eng@example.com\\n' is not a Google group's e-mail address (a Kubernetes group such"
            " as system:authenticated would give its rights to everyone it covers)"
        ],
    ),
    Case(
        "read-bucket-newline",
        "search-dev",
        {"team.readBuckets": ["rayplane-dev-models\n"]},
        [f"team.readBuckets[0]: 'rayplane-dev-models\\n' {BUCKET}"],
    ),
    Case(
        "write-bucket-newline",
        "search-dev",
        {"team.writeBuckets": ["rayplane-dev-search-data\n"]},
        [f"team.writeBuckets[0]: 'rayplane-dev-search-data\\n' {BUCKET}"],
    ),
    Case(
        "service-name-newline",
        "search-dev",
        {"services.0.name": "embed\n"},
        [f"services[0].name: 'embed\\n' {NAME} 40 characters"],
    ),
    Case(
        "job-name-newline",
        "search-dev",
        {"jobs.0.name": "reindex\n"},
        [f"jobs[0].name: 'reindex\\n' {NAME} 40 characters"],
    ),
    Case("team-project-newline", "search-dev", {"gcp:project": "rayplane-dev\n"}, [PROJECT]),
    Case(
        "platform-stack-newline",
        "search-dev",
        {"platformStack": "organization/rayplane/dev\n"},
        ["platformStack: String should match pattern '^[\\w.-]+/[\\w.-]+/[\\w.-]+$'"],
    ),
    Case(
        "location-newline",
        "dev",
        {"cluster.location": "us-central1-a\n"},
        ["cluster.location: 'us-central1-a\\n' is neither a region (e.g. us-central1) nor a zone (e.g. us-central1-a)"],
    ),
    Case(
        "version-newline",
        "dev",
        {"cluster.kubernetesVersion": "1.34\n"},
        ["cluster.kubernetesVersion: '1.34\\n' is not a GKE version (e.g. 1.34 or 1.34.1-gke.1829001)"],
    ),
    Case(
        "security-group-newline",
        "dev",
        {"cluster.rbacSecurityGroup": "gke-security-groups@example.com\n"},
        ["cluster.rbacSecurityGroup: String should match pattern '^gke-security-groups@[\\w.-]+$'"],
    ),
    Case(
        "pool-name-newline", "dev", {"nodePools.0.name": "l4\n"}, [f"nodePools[0].name: 'l4\\n' {NAME} 30 characters"]
    ),
    Case(
        "machine-type-newline",
        "dev",
        {"nodePools.0.machineType": "g2-standard-8\n"},
        ["nodePools[0].machineType: String should match pattern '^[a-z][a-z0-9]*(-[a-z0-9]+)+$'"],
    ),
    Case(
        "system-machine-type-newline",
        "dev",
        {"cluster.systemPool.machineType": "e2-standard-4\n"},
        ["cluster.systemPool.machineType: String should match pattern '^[a-z][a-z0-9]*(-[a-z0-9]+)+$'"],
    ),
    Case(
        "profile-name-newline",
        "dev",
        {"gpuProfiles.0.name": "l4-whole\n"},
        [f"gpuProfiles[0].name: 'l4-whole\\n' {NAME} 63 characters"],
    ),
    Case(
        "ray-image-newline",
        "dev",
        {"rayImage": f"{IMAGE}\n"},
        [
            f"rayImage: '{IMAGE}\\n' is not a Ray image tagged <ray version>-py<python>-cu<cuda> (e.g. {IMAGE}),"
            " optionally pinned with @sha256:<digest>"
        ],
    ),
    Case("platform-project-newline", "dev", {"gcp:project": "rayplane-dev\n"}, [PROJECT]),
    Case("prefix-newline", "dev", {"prefix": "rayplane-dev\n"}, [f"prefix: 'rayplane-dev\\n' {NAME} 24 characters"]),
    Case(
        "zone-newline",
        "prod",
        {"nodePools.0.zones": ["us-central1-a\n"]},
        ["nodePools[0].zones[0]: 'us-central1-a\\n' is not a zone (e.g. us-central1-a)"],
    ),
    Case(
        "redis-newline",
        "search-prod",
        {"services.1.gcsFaultTolerance.redisAddress": "10.10.16.3:6379\n"},
        ["services[1].gcsFaultTolerance.redisAddress: String should match pattern '^[A-Za-z0-9.-]+:[0-9]+$'"],
    ),
]
# YAML as Pulumi reads it: keys it does not know, and a value of the wrong shape, are key-path errors.
SHAPES = [
    Case(
        "namespace-typo",
        "dev",
        {"rayplan:addons": {"kueue": {"enabled": True}}},
        ["rayplan:addons: not a key rayplane reads (only rayplane:<key> and gcp:project); a typo?"],
    ),
    Case(
        "provider-key",
        "dev",
        {"gcp:region": "us-central1"},
        ["gcp:region: not a key rayplane reads (only rayplane:<key> and gcp:project); a typo?"],
    ),
    Case(
        "kind-list", "dev", {"kind": ["platform"]}, ["kind: must be one of bootstrap, platform, team, got ['platform']"]
    ),
    Case(
        "kind-map",
        "search-dev",
        {"kind": {"team": 1}},
        ["kind: must be one of bootstrap, platform, team, got {'team': 1}"],
    ),
    Case("name-list", "search-dev", {"team.name": ["search"]}, ["team.name: Input should be a valid string"]),
    Case("name-map", "search-dev", {"team.name": {"a": "b"}}, ["team.name: Input should be a valid string"]),
    Case(
        "location-list",
        "dev",
        {"cluster.location": ["us-central1-a"]},
        ["cluster.location: Input should be a valid string"],
    ),
    Case(
        "platform-stack-list",
        "search-dev",
        {"platformStack": ["organization/rayplane/dev"]},
        ["platformStack: Input should be a valid string"],
    ),
    Case("team-list", "search-dev", {"team": ["search"]}, [f"team: {NOT_A_TEAM}"]),
    Case("team-null", "search-dev", {"team": None}, [f"team: {NOT_A_TEAM}"]),
    Case("services-map", "search-dev", {"services": {"name": "x"}}, ["services: Input should be a valid list"]),
    Case("pools-scalar", "dev", {"nodePools": "l4"}, ["nodePools: Input should be a valid list"]),
    Case(
        "args-list",
        "search-dev",
        {"services.0.args": ["x"]},
        ["services[0].args: Input should be a valid dictionary or instance of EmbeddingAppArgs"],
    ),
    Case(
        "replicas-scalar",
        "search-dev",
        {"services.0.workers.replicas": "2"},
        ["services[0].workers.replicas: Input should be a valid dictionary or instance of Replicas"],
    ),
    Case(
        "cluster-null",
        "dev",
        {"cluster": None},
        ["cluster: Input should be a valid dictionary or instance of Cluster"],
    ),
]
# A team's platformStack names a platform stack: not itself, not a team stack.
REFERENCES = [
    Case(
        "platform-stack-itself",
        "search-dev",
        {"platformStack": "organization/rayplane/search-dev"},
        [
            "platformStack: organization/rayplane/search-dev is this stack itself; name the platform stack this team"
            " runs on"
        ],
    ),
    Case(
        "platform-stack-a-team",
        "search-dev",
        {"platformStack": "organization/rayplane/assistant-dev"},
        [
            "platformStack: organization/rayplane/assistant-dev exports none of a platform stack's outputs: it is a"
            " team stack or was never deployed; name the platform stack this team runs on"
        ],
    ),
]
# Secrets: a `secure:` value holds ciphertext; a token is refused wherever it appears in plain text;
# a secret's variable is a valid name that Ray and KubeRay do not set or read themselves.
NOT_CIPHERTEXT = "`secure:` holds no Pulumi ciphertext; set it with `pulumi config set --secret`"
CREDENTIAL = (
    "looks like a credential; stack config is plain text (in the repository, previews and the rendered objects):"
    " keep it in rayplane:secrets and pass it with secretEnv"
)
RAYS_OWN = (
    "Ray and KubeRay set or read this variable (RAY_*, KUBERAY_*, FQ_RAY_IP, REDIS_PASSWORD, REDIS_USERNAME): a"
    " team's secret must not replace it"
)
ENV_NAME = "not an environment variable name: letters, digits and '_', not starting with a digit"
HF_TOKEN = "hf_" + "a" * 30
SECRETS = [
    Case(
        "secure-plain-token",
        "assistant-dev",
        {"secrets.hfToken": {"secure": HF_TOKEN}},
        [f"secrets.hfToken: {NOT_CIPHERTEXT}"],
    ),
    Case(
        "secure-short", "assistant-dev", {"secrets.hfToken": {"secure": "abcd"}}, [f"secrets.hfToken: {NOT_CIPHERTEXT}"]
    ),
    Case("secure-empty", "assistant-dev", {"secrets.hfToken": {"secure": ""}}, [f"secrets.hfToken: {NOT_CIPHERTEXT}"]),
    Case(
        "secure-number", "assistant-dev", {"secrets.hfToken": {"secure": 12345}}, [f"secrets.hfToken: {NOT_CIPHERTEXT}"]
    ),
    Case(
        "secure-outside-secrets",
        "search-dev",
        {"team.group": {"secure": "search-eng@example.com"}},
        [f"team.group: {NOT_CIPHERTEXT}"],
    ),
    Case("token-in-group", "search-dev", {"team.group": f"{HF_TOKEN}@example.com"}, [f"team.group: {CREDENTIAL}"]),
    Case(
        "token-in-network-name",
        "dev",
        {"cluster.controlPlane.authorizedNetworks.0.name": "ghp_" + "b" * 36},
        [f"cluster.controlPlane.authorizedNetworks[0].name: {CREDENTIAL}"],
    ),
    Case("token-as-a-key", "dev", {"pricing": {HF_TOKEN: {"onDemand": 1.0}}}, [f"pricing: a key {CREDENTIAL}"]),
    Case(
        "token-as-a-secret-name",
        "assistant-dev",
        {"secrets": {HF_TOKEN: {"secure": "v1:" + "A" * 64}}},
        [f"secrets: a key {CREDENTIAL}"],
    ),
    Case(
        "private-key-in-args",
        "search-dev",
        {"services.0.args.max_inputs": "-----BEGIN RSA PRIVATE KEY-----"},
        [f"services[0].args.max_inputs: {CREDENTIAL}"],
    ),
    Case(
        "env-ray-auth",
        "assistant-dev",
        {"services.0.secretEnv": {"RAY_AUTH_MODE": "hfToken"}},
        [f"services[0].secretEnv.RAY_AUTH_MODE: {RAYS_OWN}"],
    ),
    Case(
        "env-serve-setting",
        "assistant-dev",
        {"services.0.secretEnv": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "hfToken"}},
        [f"services[0].secretEnv.RAY_SERVE_THROUGHPUT_OPTIMIZED: {RAYS_OWN}"],
    ),
    Case(
        "env-kuberay-start",
        "assistant-dev",
        {"services.0.secretEnv": {"KUBERAY_GEN_RAY_START_CMD": "hfToken"}},
        [f"services[0].secretEnv.KUBERAY_GEN_RAY_START_CMD: {RAYS_OWN}"],
    ),
    Case(
        "env-redis-password",
        "assistant-dev",
        {"services.0.secretEnv": {"REDIS_PASSWORD": "hfToken"}},
        [f"services[0].secretEnv.REDIS_PASSWORD: {RAYS_OWN}"],
    ),
    Case(
        "env-fq-ray-ip",
        "assistant-dev",
        {"services.0.secretEnv": {"FQ_RAY_IP": "hfToken"}},
        [f"services[0].secretEnv.FQ_RAY_IP: {RAYS_OWN}"],
    ),
    Case(
        "env-dash",
        "assistant-dev",
        {"services.0.secretEnv": {"HF-TOKEN": "hfToken"}},
        [f"services[0].secretEnv.HF-TOKEN: {ENV_NAME}"],
    ),
    Case(
        "env-digit",
        "assistant-dev",
        {"services.0.secretEnv": {"1TOKEN": "hfToken"}},
        [f"services[0].secretEnv.1TOKEN: {ENV_NAME}"],
    ),
    Case(
        "env-newline",
        "assistant-dev",
        {"services.0.secretEnv": {"HF_TOKEN\n": "hfToken"}},
        [f"services[0].secretEnv.HF_TOKEN\n: {ENV_NAME}"],
    ),
]
# The tenant registry: a team stack uses only what its platform's rayplane:tenants grants it, and a
# platform grants each name, namespace and bucket to one tenant, buckets of its own only.
DEV_TENANTS = stack_values("dev")["rayplane:tenants"]


def tenant(**fields) -> dict:
    """The dev platform's tenants with one more."""
    return {"tenants": [*DEV_TENANTS, {"name": "ranking", "stacks": ["ranking-dev"], **fields}]}


TENANCY = [
    Case(
        "team-not-a-tenant",
        "search-dev",
        {"team.name": "ranking"},
        ["team.name: 'ranking' is not a tenant of dev: add it to dev's rayplane:tenants"],
    ),
    Case(
        "another-teams-name",
        "assistant-dev",
        {"team.name": "search"},
        ["team.name: 'search' is dev's tenants[0], whose grant only the stacks search-dev may use, not assistant-dev"],
    ),
    Case(
        "registry-stack-in-two-tenants",
        "dev",
        tenant(stacks=["search-dev"]),
        ["tenants[2].stacks[0]: search-dev already acts as tenants[0]"],
    ),
    Case(
        "registry-tenant-without-stacks",
        "dev",
        tenant(stacks=[]),
        ["tenants[2].stacks: List should have at least 1 item after validation, not 0"],
    ),
    Case(
        "namespace-not-granted",
        "search-dev",
        {"team.namespace": "search2"},
        ["team.namespace: 'search2', but dev's tenants[0].namespace is 'search'"],
    ),
    Case(
        "namespace-of-another-team",
        "assistant-dev",
        {"team.namespace": "search"},
        ["team.namespace: 'search', but dev's tenants[1].namespace is 'assistant'"],
    ),
    Case(
        "project-not-granted",
        "search-dev",
        {"gcp:project": "rayplane-other"},
        ["gcp:project: rayplane-other, but dev's tenants[0].project is rayplane-dev"],
    ),
    Case(
        "read-bucket-not-granted",
        "search-dev",
        {"team.readBuckets": ["rayplane-dev-models", "rayplane-dev-other"]},
        ["team.readBuckets[1]: rayplane-dev-other is not granted (dev's tenants[0].ownBuckets and readBuckets)"],
    ),
    Case(
        "write-to-a-read-bucket",
        "search-dev",
        {"team.writeBuckets": ["rayplane-dev-search-data", "rayplane-dev-models"]},
        ["team.writeBuckets[1]: rayplane-dev-models is not the team's (dev's tenants[0].ownBuckets)"],
    ),
    Case(
        "write-to-another-teams-bucket",
        "assistant-dev",
        {"team.writeBuckets": ["rayplane-dev-search-data"]},
        ["team.writeBuckets[0]: rayplane-dev-search-data is not the team's (dev's tenants[1].ownBuckets)"],
    ),
    Case(
        "read-another-teams-bucket",
        "assistant-dev",
        {"team.readBuckets": ["rayplane-dev-models", "rayplane-dev-search-data"]},
        ["team.readBuckets[1]: rayplane-dev-search-data is not granted (dev's tenants[1].ownBuckets and readBuckets)"],
    ),
    Case(
        "dev-team-reads-a-prod-bucket",
        "search-dev",
        {"team.readBuckets": ["rayplane-dev-models", "rayplane-prod-models"]},
        ["team.readBuckets[1]: rayplane-prod-models is not granted (dev's tenants[0].ownBuckets and readBuckets)"],
    ),
    Case(
        "profile-not-granted",
        "assistant-dev",
        {"team.gpuProfiles": ["l4-whole"]},
        ["team.gpuProfiles[0]: 'l4-whole' is not granted (dev's tenants[1].gpuProfiles)"],
    ),
    Case(
        "device-plugin-pool-not-granted",
        "search-dev",
        {"services.1.workers": {"gpuPool": "t4", "replicas": {"min": 0, "max": 1}}},
        ["services[1].workers.gpuPool: 't4' is not granted (dev's tenants[0].gpuPools)"],
    ),
    Case(
        "registry-unknown-pool",
        "dev",
        tenant(gpuPools=["l4"]),
        ["tenants[2].gpuPools[0]: no device-plugin GPU pool 'l4' in nodePools"],
    ),
    Case(
        "quota-above-the-ceiling",
        "search-dev",
        {"team.quota.gpus": 8, "team.quota.cpu": 49},
        [
            "team.quota.cpu: 49, above dev's tenants[0].quota.cpu 48",
            "team.quota.gpus: 8, above dev's tenants[0].quota.gpus 4",
        ],
    ),
    Case(
        "default-quota-above-a-small-ceiling",
        "assistant-dev",
        {"team.quota": {"memoryGib": 129}},
        ["team.quota.memoryGib: 129, above dev's tenants[1].quota.memoryGib 128"],
    ),
    Case(
        "serve-client-not-granted",
        "search-dev",
        {"team.serveClients": ["assistant", "other"]},
        ["team.serveClients[1]: 'other' is not granted (dev's tenants[0].serveClients)"],
    ),
    Case(
        "registry-name-twice",
        "dev",
        tenant(name="search", namespace="s2"),
        ["tenants[2].name: 'search' is already tenants[0]"],
    ),
    Case(
        "registry-namespace-twice",
        "dev",
        tenant(namespace="search"),
        ["tenants[2].namespace: 'search' is already tenants[0]'s"],
    ),
    Case(
        "registry-default-namespace-twice",
        "dev",
        {"tenants": [*DEV_TENANTS, {"name": "search2", "stacks": ["search2-dev"], "namespace": "assistant"}]},
        ["tenants[2].namespace: 'assistant' is already tenants[1]'s"],
    ),
    Case(
        "registry-bucket-owned-twice",
        "dev",
        tenant(ownBuckets=["rayplane-dev-search-data"]),
        ["tenants[2].ownBuckets[0]: rayplane-dev-search-data is already tenants[0]'s"],
    ),
    Case(
        "registry-grants-a-prod-bucket",
        "dev",
        tenant(readBuckets=["rayplane-prod-models"]),
        [
            "tenants[2].readBuckets[0]: rayplane-prod-models is not this platform's (its buckets are named"
            " rayplane-dev-*)"
        ],
    ),
    Case(
        "registry-owns-a-foreign-bucket",
        "prod",
        {"tenants.0.ownBuckets": ["rayplane-dev-search-data"]},
        [
            "tenants[0].ownBuckets[0]: rayplane-dev-search-data is not this platform's (its buckets are named"
            " rayplane-prod-*)"
        ],
    ),
    Case(
        "registry-unknown-profile",
        "dev",
        tenant(gpuProfiles=["h100"]),
        ["tenants[2].gpuProfiles[0]: no GPU profile 'h100' in gpuProfiles"],
    ),
    Case(
        "registry-reserved-namespace",
        "dev",
        tenant(namespace="kube-system"),
        [f"tenants[2].namespace: 'kube-system' {RESERVED}"],
    ),
    Case(
        "registry-platform-namespace",
        "dev",
        tenant(namespace="kuberay-system"),
        [f"tenants[2].namespace: 'kuberay-system' {RESERVED}"],
    ),
    Case(
        "registry-project",
        "dev",
        tenant(project="Bad_Project"),
        ["tenants[2].project: String should match pattern '^[a-z][-a-z0-9]{4,28}[a-z0-9]$'"],
    ),
    Case(
        "registry-unknown-key", "dev", tenant(writeBuckets=["rayplane-dev-x"]), ["tenants[2].writeBuckets: unknown key"]
    ),
    Case(
        "registry-quota-negative",
        "dev",
        tenant(quota={"gpus": -1}),
        ["tenants[2].quota.gpus: Input should be greater than or equal to 0"],
    ),
]
# Sizes: a pod's requests within what GKE leaves allocatable on its node (not the machine's size):
# g2-standard-8 (8 vCPUs, 32 GiB) leaves 7.91 and 28.34; dev's system pool e2-standard-4, 3.92 and 13.3.
SIZES = [
    Case(
        "worker-cpu-of-the-whole-machine",
        "search-dev",
        {"services.0.workers.cpu": 8},
        ["services[0].workers.cpu: 8 vCPUs, but l4's g2-standard-8 leaves 7.91 allocatable"],
    ),
    Case(
        "worker-memory-of-the-whole-machine",
        "search-dev",
        {"services.0.workers.memoryGib": 30},
        ["services[0].workers.memoryGib: 30 GiB, but l4's g2-standard-8 leaves 28.34 allocatable"],
    ),
    Case(
        "head-cpu-of-a-system-node",
        "search-dev",
        {"services.1.head": {"cpu": 4}},
        ["services[1].head.cpu: 4 vCPUs, but the system pool's e2-standard-4 leaves 3.92 allocatable"],
    ),
    Case(
        "head-memory-of-a-system-node",
        "search-dev",
        {"jobs.0.head": {"memoryGib": 14}},
        ["jobs[0].head.memoryGib: 14 GiB, but the system pool's e2-standard-4 leaves 13.3 allocatable"],
    ),
]
# Numbers: within the field they land in (int32 in CRDs, GKE's disks), ranges whichever side is a
# default, no infinity or NaN.
INT32 = "does not fit the int32 it lands in (at most 2147483647)"
NUMBERS = [
    Case(
        "engine-batch-beyond-int32",
        "search-dev",
        {"services.0.args.max_batch_size": 2**40},
        [f"services[0].args.max_batch_size: {2**40} {INT32}"],
    ),
    Case(
        "engine-sequences-beyond-int32",
        "search-dev",
        {"services.1.args.models.0.max_num_seqs": 2**31},
        [f"services[1].args.models[0].max_num_seqs: {2**31} {INT32}"],
    ),
    Case(
        "generated-tokens-beyond-int32",
        "search-dev",
        {"jobs.0.args.max_tokens": 10**20},
        [f"jobs[0].args.max_tokens: {10**20} {INT32}"],
    ),
    Case(
        "replicas-min-above-the-default-max",
        "search-dev",
        {"jobs.0.workers.replicas": {"min": 3}},
        ["jobs[0].workers.replicas: max (1) must be >= min (3)"],
    ),
    Case(
        "nodes-min-above-the-default-max",
        "dev",
        {"nodePools.0.autoscaling": {"minNodes": 2}},
        ["nodePools[0].autoscaling: maxNodes (1) must be >= minNodes (2)"],
    ),
    Case(
        "replicas-beyond-int32",
        "search-dev",
        {"services.0.workers.replicas.max": 2**31},
        [f"services[0].workers.replicas.max: {2**31} {INT32}"],
    ),
    Case(
        "deadline-beyond-int32",
        "search-dev",
        {"jobs.0.activeDeadlineSeconds": 2**31},
        [f"jobs[0].activeDeadlineSeconds: {2**31} {INT32}"],
    ),
    Case(
        "ttl-beyond-int32",
        "search-dev",
        {"jobs.0.ttlSecondsAfterFinished": 2**40},
        [f"jobs[0].ttlSecondsAfterFinished: {2**40} {INT32}"],
    ),
    Case(
        "backoff-beyond-int32",
        "search-dev",
        {"jobs.0.backoffLimit": 2**31},
        [f"jobs[0].backoffLimit: {2**31} {INT32}"],
    ),
    Case(
        "quota-beyond-int32",
        "search-dev",
        {"team.quota.cpu": 10**30},
        [f"team.quota.cpu: {10**30} {INT32}"],
    ),
    Case(
        "disk-beyond-64-tib",
        "prod",
        {"nodePools.2.diskSizeGb": 70000},
        ["nodePools[2].diskSizeGb: Input should be less than or equal to 65536"],
    ),
    Case(
        "price-infinite",
        "dev",
        {"pricing": {"g2-standard-8": {"onDemand": float("inf")}}},
        ["pricing.g2-standard-8.onDemand: Input should be a finite number"],
    ),
    Case(
        "price-nan",
        "dev",
        {"pricing": {"g2-standard-8": {"spot": float("nan")}}},
        ["pricing.g2-standard-8.spot: Input should be a finite number"],
    ),
    Case(
        "batch-wait-infinite",
        "search-dev",
        {"services.0.args.batch_wait_timeout_s": float("inf")},
        ["services[0].args.batch_wait_timeout_s: Input should be a finite number"],
    ),
    Case(
        "target-requests-nan",
        "search-dev",
        {"services.0.args.autoscaling.target_ongoing_requests": float("nan")},
        ["services[0].args.autoscaling.target_ongoing_requests: Input should be a finite number"],
    ),
]
# Models and data: in the cluster a payload reads and writes only gs:// buckets its team's grants hold.
STORAGE = [
    Case(
        "model-from-an-ungranted-bucket",
        "search-dev",
        {"services.1.args.models.0.model_source": "gs://rayplane-dev-other/qwen"},
        [
            "services[1].args.models[0].model_source: reads gs://rayplane-dev-other/qwen, but rayplane-dev-other is"
            " not in team.readBuckets or writeBuckets"
        ],
    ),
    Case(
        "model-from-a-hub",
        "search-dev",
        {"services.1.args.models.0.model_source": "Qwen/Qwen2.5-1.5B-Instruct"},
        [
            "services[1].args.models[0].model_source: 'Qwen/Qwen2.5-1.5B-Instruct' is not a gs:// location; in the"
            " cluster a payload reads only the team's buckets"
        ],
    ),
    Case(
        "model-from-a-local-path",
        "assistant-dev",
        {"services.0.args.models.0.model_source": "/models/llama"},
        [
            "services[0].args.models[0].model_source: '/models/llama' is not a gs:// location; in the cluster a"
            " payload reads only the team's buckets"
        ],
    ),
    Case(
        "job-writes-a-read-bucket",
        "search-dev",
        {"jobs.0.args.output": "gs://rayplane-dev-models/out/"},
        [
            "jobs[0].args.output: writes gs://rayplane-dev-models/out/, but rayplane-dev-models is not in"
            " team.writeBuckets"
        ],
    ),
    Case(
        "job-reads-another-teams-bucket",
        "assistant-dev",
        {
            "jobs": [
                {
                    "name": "steal",
                    "payload": "batch-inference",
                    "args": {"input": "gs://rayplane-dev-search-data/documents/", "output": "gs://x/out/"},
                    "workers": {"gpuPool": "t4", "replicas": {"min": 0, "max": 1}},
                }
            ]
        },
        [
            "jobs[0].args.input: reads gs://rayplane-dev-search-data/documents/, but rayplane-dev-search-data is"
            " not in team.readBuckets or writeBuckets",
            "jobs[0].args.output: writes gs://x/out/, but x is not in team.writeBuckets",
        ],
    ),
]
# Models and engines: what vLLM and Ray refuse at start, refused at plan time; a batch job's LLM
# stage is sized as a service's model is.
LLM_JOB = {
    "input": "gs://rayplane-dev-search-data/documents/",
    "output": "gs://rayplane-dev-search-data/summaries/",
    "stage": "llm",
    "model_source": "gs://rayplane-dev-models/qwen2.5-1.5b-instruct",
}
MODELS = [
    Case(
        "tensor-parallel-not-dividing-the-heads",
        "search-dev",
        {"services.1.args.models.0.tensor_parallel_size": 5},
        [
            "services[1].args.models[0]: tensor_parallel_size 5 does not divide the model's 12 attention heads (vLLM"
            " refuses it); use 1, 2, 3, 4, 6"
        ],
    ),
    Case(
        "tensor-parallel-16-on-24-heads",
        "assistant-dev",
        {"services.0.args.models.0.tensor_parallel_size": 16},
        [
            "services[0].args.models[0]: tensor_parallel_size 16 does not divide the model's 24 attention heads"
            " (vLLM refuses it); use 1, 2, 3, 4, 6, 8"
        ],
    ),
    Case(
        "declared-heads-not-divided",
        "search-dev",
        {"services.1.args.models.0.facts": {"heads": 7}, "services.1.args.models.0.tensor_parallel_size": 2},
        [
            "services[1].args.models[0]: tensor_parallel_size 2 does not divide the model's 7 attention heads (vLLM"
            " refuses it); use 1, 7"
        ],
    ),
    Case(
        "prompt-with-another-field",
        "search-dev",
        {"jobs.0.args.prompt": "Summarize {title}: {text}"},
        ["jobs[0].args.prompt: {text} is the only field a prompt may use, not 'title'"],
    ),
    Case(
        "prompt-reaching-into-the-row",
        "search-dev",
        {"jobs.0.args.prompt": "{text.__class__.__mro__}"},
        ["jobs[0].args.prompt: {text} is the only field a prompt may use, not 'text.__class__.__mro__'"],
    ),
    Case(
        "prompt-with-a-lone-brace",
        "search-dev",
        {"jobs.0.args.prompt": 'Answer as JSON {"summary": ...}: {text}'},
        ["jobs[0].args.prompt: {text} is the only field a prompt may use, not '\"summary\"'"],
    ),
    Case(
        "prompt-with-a-number-format",
        "search-dev",
        {"jobs.0.args.prompt": "{text:d}"},
        ["jobs[0].args.prompt: the prompt does not format a text: Unknown format code 'd' for object of type 'str'"],
    ),
    Case(
        "facts-beyond-any-model",
        "search-dev",
        {"services.1.args.models.0.facts": {"heads": 1000000007}},
        ["services[1].args.models[0].facts.heads: Input should be less than or equal to 100000"],
    ),
    Case(
        "batch-llm-that-does-not-fit",
        "search-dev",
        {"jobs.0.args": {**LLM_JOB, "model_source": "gs://rayplane-dev-models/qwen2.5-72b-instruct"}},
        [
            "jobs[0].args: qwen2.5-72b bf16 needs 135.4 GiB weights per GPU at TP=1 on nvidia-l4; with"
            " gpu_memory_utilization 0.9 and 1 GiB for activations that leaves 0.0 GiB for KV, but max_model_len"
            " 32768 x 1 sequences needs 10.0 GiB"
        ],
    ),
    Case(
        "batch-llm-without-facts",
        "search-dev",
        {"jobs.0.args": {**LLM_JOB, "model_source": "gs://rayplane-dev-models/mymodel"}},
        [
            "jobs[0].args: no facts to size 'mymodel' by: set preset (a model in workloads/facts.py) or give facts"
            " its params_b, layers, kv_heads, head_dim, dtype, max_position"
        ],
    ),
    Case(
        "batch-llm-tensor-parallel-not-dividing-the-heads",
        "search-dev",
        {"jobs.0.args": {**LLM_JOB, "preset": "qwen2.5-1.5b", "tensor_parallel_size": 5}},
        [
            "jobs[0].args: tensor_parallel_size 5 does not divide the model's 12 attention heads (vLLM refuses it);"
            " use 1, 2, 3, 4, 6"
        ],
    ),
    Case(
        "gpu-share-below-ray-minimum",
        "search-dev",
        {"services.0.args.num_gpus": 0.00005},
        ["services[0].args.num_gpus: 5e-05 GPUs is below Ray's smallest share, 0.0001"],
    ),
    Case(
        "job-gpu-share-below-ray-minimum",
        "search-dev",
        {"jobs.0.args.num_gpus": 0.00001},
        ["jobs[0].args.num_gpus: 1e-05 GPUs is below Ray's smallest share, 0.0001"],
    ),
]
# Networks: ranges the cloud routes, and the control plane's networks taken together.
WHOLE_INTERNET = (
    "cluster.controlPlane: authorizedNetworks together cover 0.0.0.0/0, the whole internet; set"
    " cluster.controlPlane.openToInternet: true if that is meant"
)
NETWORKS = [
    Case(
        "two-halves-of-the-internet",
        "dev",
        {
            "cluster.controlPlane.authorizedNetworks": [
                {"name": "low", "cidr": "0.0.0.0/1"},
                {"name": "high", "cidr": "128.0.0.0/1"},
            ]
        },
        [WHOLE_INTERNET],
    ),
    Case(
        "four-quarters-of-the-internet",
        "dev",
        {"cluster.controlPlane.authorizedNetworks": [{"name": f"q{i}", "cidr": f"{64 * i}.0.0.0/2"} for i in range(4)]},
        [WHOLE_INTERNET],
    ),
    Case(
        "authorized-link-local",
        "dev",
        {"cluster.controlPlane.authorizedNetworks.0.cidr": "169.254.0.0/16"},
        ["cluster.controlPlane.authorizedNetworks[0].cidr: 169.254.0.0/16 is a link-local range"],
    ),
    Case(
        "authorized-loopback",
        "dev",
        {"cluster.controlPlane.authorizedNetworks.0.cidr": "127.0.0.0/8"},
        ["cluster.controlPlane.authorizedNetworks[0].cidr: 127.0.0.0/8 is a loopback range"],
    ),
    Case(
        "authorized-host-bits",
        "dev",
        {"cluster.controlPlane.authorizedNetworks.0.cidr": "203.0.113.7/24"},
        ["cluster.controlPlane.authorizedNetworks[0].cidr: Input is not a valid IPv4 network"],
    ),
    Case(
        "nodes-link-local",
        "dev",
        {"network": {"nodesCidr": "169.254.16.0/20"}},
        ["network.nodesCidr: 169.254.16.0/20 is a link-local range"],
    ),
    Case(
        "pods-multicast",
        "dev",
        {"network": {"podsCidr": "224.0.0.0/14"}},
        ["network.podsCidr: 224.0.0.0/14 is a multicast range"],
    ),
    Case(
        "services-reserved",
        "dev",
        {"network": {"servicesCidr": "240.0.0.0/20"}},
        ["network.servicesCidr: 240.0.0.0/20 is a reserved range"],
    ),
    Case(
        "nodes-too-small",
        "dev",
        {"network": {"nodesCidr": "10.0.0.0/30"}},
        ["network.nodesCidr: 10.0.0.0/30 is not a subnet size GCP accepts (/8 to /29)"],
    ),
    Case(
        "nodes-too-large",
        "dev",
        {"network": {"nodesCidr": "10.0.0.0/7"}},
        ["network.nodesCidr: 10.0.0.0/7 is not a subnet size GCP accepts (/8 to /29)"],
    ),
]
CATALOGUE = STRINGS + SHAPES + REFERENCES + SECRETS + TENANCY + SIZES + NUMBERS + STORAGE + MODELS + NETWORKS
# A stack file's text changed: (id, stack, old, new, error). Pulumi refuses a key given twice.
TEXTS = [
    (
        "duplicate-top-level-key",
        "search-dev",
        "  rayplane:kind: team\n",
        "  rayplane:kind: team\n  rayplane:kind: platform\n",
        "stacks/Pulumi.search-dev.yaml: line 6: key 'rayplane:kind' given twice (first at line 5); Pulumi refuses it",
    ),
    (
        "duplicate-nested-key",
        "search-dev",
        "    name: search\n",
        "    name: search\n    name: assistant\n",
        "stacks/Pulumi.search-dev.yaml: line 9: key 'name' given twice (first at line 8); Pulumi refuses it",
    ),
]

# Valid edge cases: (id, stack, edits) that must render.
VALID = [
    # namespaces are RFC 1123 labels: a tenant's may start with a digit
    ("namespace-starts-with-a-digit", "dev", tenant(namespace="1ranking", serveClients=["2assistant"])),
    ("namespace-of-63", "dev", tenant(namespace="r" * 63)),
    # every machine type GKE offers with a supported GPU: A3 Edge carries 8 H100 80GB, as A3 High
    ("a3-edge-h100", "prod", {"nodePools.4.machineType": "a3-edgegpu-8g"}),
    ("a2-mega-a100", "prod", {"nodePools.3.machineType": "a2-megagpu-16g"}),
    ("tenant-in-its-own-project", "dev", tenant(project="rayplane-ranking")),
    ("most-of-the-internet-is-not-all", "dev", {"cluster.controlPlane.authorizedNetworks.0.cidr": "0.0.0.0/1"}),
    ("batch-llm-that-fits", "search-dev", {"jobs.0.args": LLM_JOB}),
    ("worker-within-allocatable", "search-dev", {"services.0.workers.cpu": 7, "services.0.workers.memoryGib": 28}),
    (
        "env-names",
        "assistant-dev",
        {
            "services.0.secretEnv": {"HF_TOKEN": "hfToken", "_token2": "hfToken"},
            "secrets": {"hfToken": {"secure": "v1:" + "A" * 64}},
        },
    ),
]


def test_the_catalogue_has_unique_ids():
    ids = [c.id for c in CATALOGUE] + [v[0] for v in VALID] + [t[0] for t in TEXTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_an_invalid_config_is_refused_with_its_key_path_before_anything_is_built(case, stacks):
    refused_with(stacks, case)


@pytest.mark.parametrize(("stack", "old", "new", "error"), [t[1:] for t in TEXTS], ids=[t[0] for t in TEXTS])
def test_a_stack_file_pulumi_would_refuse_is_refused(stack, old, new, error, stacks):
    path = stacks / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    result, found = render_tool.attempt(stack)
    assert found is not None and found.errors == [error]
    assert result.resources == []


@pytest.mark.parametrize(("stack", "edits"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_a_valid_edge_case_renders(stack, edits, stacks):
    result, error = attempt(stacks, stack, edits)
    assert error is None
    assert result.resources


# Every checked string key, with its path in the error (a list's first item for list keys).
STRING_KEYS = {
    ("search-dev", "team.name"): "team.name",
    ("search-dev", "team.namespace"): "team.namespace",
    ("search-dev", "team.serveClients.0"): "team.serveClients[0]",
    ("search-dev", "team.group"): "team.group",
    ("search-dev", "team.readBuckets.0"): "team.readBuckets[0]",
    ("search-dev", "services.0.name"): "services[0].name",
    ("search-dev", "gcp:project"): "gcp:project",
    ("search-dev", "platformStack"): "platformStack",
    ("dev", "cluster.location"): "cluster.location",
    ("dev", "cluster.kubernetesVersion"): "cluster.kubernetesVersion",
    ("dev", "nodePools.0.name"): "nodePools[0].name",
    ("dev", "nodePools.0.machineType"): "nodePools[0].machineType",
    ("dev", "gpuProfiles.0.name"): "gpuProfiles[0].name",
    ("dev", "prefix"): "prefix",
    ("prod", "rayImage"): "rayImage",
    ("prod", "nodePools.0.zones.0"): "nodePools[0].zones[0]",
}
# What a copy and paste, an editor or a hostile tenant adds around a valid value.
JUNK = ["\n", "\r\n", " ", "\t", "\x00", "\u200b", "\u00e9", "\uff0d", "/", ":", "*", ".."]


def _value(values: dict, path: str):
    """The stack file's value at `path`, or the default the models give it."""
    first, *rest = path.split(".")
    try:
        node = values[first if ":" in first else f"rayplane:{first}"]
        for key in rest:
            node = node[int(key) if key.isdigit() else key]
    except KeyError:
        return {"rayImage": IMAGE, "team.namespace": "search"}[path]
    return node


@settings(PROPERTY_SETTINGS, max_examples=80)
@given(key=st.sampled_from(sorted(STRING_KEYS)), junk=st.sampled_from(JUNK), before=st.booleans())
def test_a_valid_string_with_anything_around_it_is_refused_at_its_key(key, junk, before):
    stack, path = key
    values = copy.deepcopy(stack_values(stack))
    valid = _value(values, path)
    edit(values, path, junk + valid if before else valid + junk)
    _, error = render_tool.attempt(stack, render_tool.pulumi_config(values))
    assert error is not None, f"{path} accepted {valid + junk!r}"
    assert error.errors and all(e.startswith(f"{STRING_KEYS[key]}: ") for e in error.errors), error.errors


# Every checked number, with its path in the error, and what the numbers a user (or a tenant) may
# write there instead: negative, zero where it is not allowed, beyond int32, not a number.
NUMBER_KEYS = {
    ("search-dev", "services.0.workers.replicas.max"): "services[0].workers.replicas",
    ("search-dev", "jobs.0.activeDeadlineSeconds"): "jobs[0].activeDeadlineSeconds",
    ("search-dev", "jobs.0.backoffLimit"): "jobs[0].backoffLimit",
    ("search-dev", "jobs.0.ttlSecondsAfterFinished"): "jobs[0].ttlSecondsAfterFinished",
    ("search-dev", "team.quota.gpus"): "team.quota.gpus",
    ("search-dev", "services.0.args.num_gpus"): "services[0].args.num_gpus",
    ("dev", "nodePools.0.autoscaling.maxNodes"): "nodePools[0].autoscaling",
    ("prod", "nodePools.2.diskSizeGb"): "nodePools[2].diskSizeGb",
}
BAD_NUMBERS = [
    -1,
    -(2**63),
    2**31,
    2**64,
    10**30,
    float("inf"),
    float("-inf"),
    float("nan"),
    1.5,
    1e-9,
]


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(key=st.sampled_from(sorted(NUMBER_KEYS)), number=st.sampled_from(BAD_NUMBERS))
def test_a_number_out_of_its_fields_bounds_is_refused_at_its_key(key, number):
    stack, path = key
    values = copy.deepcopy(stack_values(stack))
    edit(values, path, number)
    _, error = render_tool.attempt(stack, render_tool.pulumi_config(values))
    assert error is not None, f"{path} accepted {number!r}"
    where = NUMBER_KEYS[key]
    assert error.errors and all(e.startswith(where) for e in error.errors), error.errors
