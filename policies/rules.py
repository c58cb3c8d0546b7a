"""rayplane's CrossGuard rules as plain functions over a stack's resources (type, name, inputs,
protect), so that the policy pack (policies/__main__.py) and the tests run the same code.

A resource rule returns the violations of one resource; a stack rule returns (resource name,
violation) pairs for the whole stack. RULES lists them with their enforcement.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components import conventions
from policies import admission

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
BUCKET = "gcp:storage/bucket:Bucket"
SA_KEY = "gcp:serviceaccount/key:Key"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
BUCKET_IAM = "gcp:storage/bucketIAMMember:BucketIAMMember"
BUCKET_IAM_WIDE = {"gcp:storage/bucketIAMBinding:BucketIAMBinding", "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"}
STACK_REFERENCE = "pulumi:pulumi:StackReference"
RAY_SERVICE = f"kubernetes:{conventions.RAY_API}:RayService"
RAY_JOB = f"kubernetes:{conventions.RAY_API}:RayJob"
WORKLOADS = {  # kinds with pod templates: where their pod spec is
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
}
GPU_TAINT = (conventions.GPU_TAINT["key"], conventions.GPU_TAINT["effect"])


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False


def _get(value, *keys):
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _ray_cluster(resource: Resource) -> Mapping | None:
    if resource.type == RAY_SERVICE:
        return _get(resource.props, "spec", "rayClusterConfig")
    if resource.type == RAY_JOB:
        return _get(resource.props, "spec", "rayClusterSpec")
    return None


def pod_specs(resource: Resource) -> Iterator[tuple[str, Mapping]]:
    """(where, pod spec) of every pod template a resource holds."""
    if resource.type in WORKLOADS:
        yield "pod", _get(resource.props, *WORKLOADS[resource.type]) or {}
    if cluster := _ray_cluster(resource):
        yield "head", _get(cluster, "headGroupSpec", "template", "spec") or {}
        for group in cluster.get("workerGroupSpecs") or []:
            yield f"worker group {group.get('groupName')}", _get(group, "template", "spec") or {}


def _containers(spec: Mapping) -> Iterator[Mapping]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


# -- mandatory


def public_control_plane_has_authorized_networks(resource: Resource) -> list[str]:
    if resource.type != CLUSTER or _get(resource.props, "privateClusterConfig", "enablePrivateEndpoint"):
        return []
    if _get(resource.props, "masterAuthorizedNetworksConfig", "cidrBlocks"):
        return []
    return ["the control plane has a public endpoint and no authorized networks"]


def deletion_protection(resource: Resource) -> list[str]:
    if resource.type == CLUSTER and resource.props.get("deletionProtection") is not True:
        return ["the cluster's deletionProtection is off"]
    if resource.type == BUCKET and not resource.protect:
        return ["the bucket is not protected from deletion (the resource option protect)"]
    return []


def gpu_pools_tainted(resource: Resource) -> list[str]:
    if resource.type != NODE_POOL or not _get(resource.props, "nodeConfig", "guestAccelerators"):
        return []
    taints = {(t.get("key"), t.get("effect")) for t in _get(resource.props, "nodeConfig", "taints") or []}
    return [] if GPU_TAINT in taints else ["a GPU node pool without the nvidia.com/gpu NoSchedule taint"]


def no_service_account_keys(resource: Resource) -> list[str]:
    return ["a service account key (use Workload Identity)"] if resource.type == SA_KEY else []


def ray_heads_without_gpus(resource: Resource) -> list[str]:
    cluster = _ray_cluster(resource)
    if cluster is None:
        return []
    head = cluster.get("headGroupSpec") or {}
    spec = _get(head, "template", "spec") or {}
    gpu_limits = any(conventions.DEVICE_PLUGIN_GPU in (_get(c, "resources", "limits") or {}) for c in _containers(spec))
    if _get(head, "rayStartParams", "num-gpus") == "0" and not gpu_limits and not spec.get("resourceClaims"):
        return []
    return ['the Ray head may get GPUs: set rayStartParams num-gpus "0" and give it no GPU limit or claim']


def containers_request_resources(resource: Resource) -> list[str]:
    return [
        f"{where}: container {container.get('name')} requests no {', '.join(missing)}"
        for where, spec in pod_specs(resource)
        for container in _containers(spec)
        if (missing := [r for r in ("cpu", "memory") if r not in (_get(container, "resources", "requests") or {})])
    ]


def _pinned(image: str) -> bool:
    """A digest, or a tag other than latest (a registry's port is not a tag)."""
    last = image.rpartition("/")[2]
    return "@sha256:" in image or (":" in last and last.rpartition(":")[2] != "latest")


def images_pinned(resource: Resource) -> list[str]:
    return [
        f"{where}: container {container.get('name')} image {container.get('image')!r} is not pinned to a version"
        " or digest"
        for where, spec in pod_specs(resource)
        for container in _containers(spec)
        if not _pinned(container.get("image", ""))
    ]


def queued_jobs_kueue_admits(resource: Resource) -> list[str]:
    return admission.kueue_rayjob_errors(resource.props) if resource.type == RAY_JOB else []


def network_policy_per_team_namespace(resources: list[Resource]) -> list[tuple[str, str]]:
    isolated = {
        _get(r.props, "metadata", "namespace")
        for r in resources
        if r.type == NETWORK_POLICY
        and _get(r.props, "spec", "podSelector") == {}
        and "Ingress" in (_get(r.props, "spec", "policyTypes") or [])
        and not _get(r.props, "spec", "ingress")
    }
    return [
        (r.name, f"team namespace {name} has no default-deny ingress NetworkPolicy")
        for r in resources
        if r.type == NAMESPACE
        and conventions.TEAM_LABEL in (_get(r.props, "metadata", "labels") or {})
        and (name := _get(r.props, "metadata", "name")) not in isolated
    ]


def _team(resources: list[Resource]) -> tuple[Resource, str] | None:
    """A team stack's namespace and team (its rayplane.dev/team label); None in a platform stack."""
    for r in resources:
        if r.type == NAMESPACE and (team := (_get(r.props, "metadata", "labels") or {}).get(conventions.TEAM_LABEL)):
            return r, team
    return None


# ResourceQuota keys and the tenant's quota ceiling field (Gi for memory) they are held to.
QUOTA_CEILINGS = {
    "requests.cpu": "cpu",
    "requests.memory": "memoryGib",
    f"requests.{conventions.DEVICE_PLUGIN_GPU}": "gpus",
    conventions.DRA_QUOTA_GPU: "gpus",
}


def _quantity(value, field: str) -> float | None:
    """A quota quantity as rayplane renders it (whole CPUs, memory in Gi, device counts), else None."""
    text = str(value)
    text = text.removesuffix("Gi") if field == "memoryGib" else text
    return float(text) if text.replace(".", "", 1).isdigit() else None


def team_within_its_grant(resources: list[Resource]) -> list[tuple[str, str]]:
    """A team stack's namespaces, bucket grants and quota against its tenant in the platform's
    registry (its StackReference's `tenants` output): what components/checks.py grant_errors
    checks in the team's config, checked again on what the preview would create. A team stack
    grants buckets only with BucketIAMMember, to its own service account."""
    if (found := _team(resources)) is None:
        return []
    _, team = found
    outputs = next((_get(r.props, "outputs") for r in resources if r.type == STACK_REFERENCE), None) or {}
    tenant = next((t for t in outputs.get("tenants") or [] if t.get("name") == team), None)
    if tenant is None:
        return [(found[0].name, f"team {team} is not a tenant of its platform stack (its rayplane:tenants)")]
    violations = [
        (r.name, f"namespace {name} is not {team}'s, {tenant.get('namespace')}")
        for r in resources
        if r.type == NAMESPACE and (name := _get(r.props, "metadata", "name")) != tenant.get("namespace")
    ]
    own, read = set(tenant.get("ownBuckets") or []), set(tenant.get("readBuckets") or [])
    granted = {"roles/storage.objectViewer": own | read, "roles/storage.objectUser": own}
    workloads = outputs.get("workloadBucket")
    payloads = f'resource.name.startsWith("projects/_/buckets/{workloads}/objects/{conventions.team_prefix(team)}")'
    member = f"serviceAccount:{team}-ray@"
    for r in resources:
        if r.type in BUCKET_IAM_WIDE:
            violations.append((r.name, f"{r.type} replaces a bucket's grants; a team stack adds members only"))
        if r.type != BUCKET_IAM:
            continue
        bucket, role = r.props.get("bucket"), r.props.get("role")
        if not str(r.props.get("member", "")).startswith(member):
            violations.append((r.name, f"{role} on {bucket} for {r.props.get('member')}, not {team}'s service account"))
        if bucket == workloads:
            if role != "roles/storage.objectViewer" or _get(r.props, "condition", "expression") != payloads:
                violations.append((r.name, f"{role} on the workload bucket beyond {team}'s own payloads"))
        elif bucket not in granted.get(role, set()):
            violations.append((r.name, f"{role} on {bucket}, which {team}'s tenant grant does not hold"))
    ceiling = tenant.get("quota") or {}
    quotas = [r for r in resources if r.type == RESOURCE_QUOTA]
    if not quotas:
        violations.append((found[0].name, f"no ResourceQuota holds {team}'s namespace to its ceiling"))
    for r in quotas:
        hard = _get(r.props, "spec", "hard") or {}
        for key, field in QUOTA_CEILINGS.items():
            asked = _quantity(hard.get(key), field) if key in hard else None
            if asked is None or asked > (most := ceiling.get(field, 0)):
                violations.append(
                    (r.name, f"quota {key} {hard.get(key)} not within {team}'s ceiling quota.{field} {most}")
                )
    return violations


# -- advisory


def spot_for_batch_pools(resource: Resource) -> list[str]:
    if resource.type != NODE_POOL or not _get(resource.props, "nodeConfig", "guestAccelerators"):
        return []
    config = _get(resource.props, "nodeConfig") or {}
    reserved = _get(config, "reservationAffinity", "consumeReservationType") == "SPECIFIC_RESERVATION"
    on_demand = not (config.get("spot") or config.get("flexStart") or reserved)
    if _get(resource.props, "autoscaling", "totalMinNodeCount") == 0 and on_demand:
        return ["a GPU pool that scales to zero, as batch pools do, on on-demand VMs: Spot VMs cost far less"]
    return []


def dev_gpu_pools_scale_to_zero(resources: list[Resource], dev_marker: str = "dev") -> list[tuple[str, str]]:
    """In a platform whose cluster's rayplane-stack label contains `dev_marker`."""
    dev = any(
        r.type == CLUSTER and dev_marker in (_get(r.props, "resourceLabels", "rayplane-stack") or "") for r in resources
    )
    return [
        (r.name, "a dev GPU pool that keeps nodes up when idle: set autoscaling.minNodes 0")
        for r in resources
        if dev
        and r.type == NODE_POOL
        and _get(r.props, "nodeConfig", "guestAccelerators")
        and (_get(r.props, "autoscaling", "totalMinNodeCount") or 0) > 0
    ]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    mandatory: bool
    check: Callable  # Resource -> list[str], or list[Resource] -> list[(name, str)] with stack=True
    stack: bool = False


RULES = [
    Rule(
        "public-control-plane-authorized",
        "No public control plane without authorized networks",
        True,
        public_control_plane_has_authorized_networks,
    ),
    Rule("deletion-protection", "Deletion protection on the cluster and buckets", True, deletion_protection),
    Rule("gpu-pools-tainted", "GPU node pools are tainted nvidia.com/gpu NoSchedule", True, gpu_pools_tainted),
    Rule("no-service-account-keys", "No service account keys", True, no_service_account_keys),
    Rule("ray-heads-without-gpus", "Ray heads get no GPUs", True, ray_heads_without_gpus),
    Rule("containers-request-resources", "Every container requests CPU and memory", True, containers_request_resources),
    Rule("images-pinned", "Every container image is pinned to a version or a digest", True, images_pinned),
    Rule("queued-jobs-kueue-admits", "Queued RayJobs are ones Kueue admits", True, queued_jobs_kueue_admits),
    Rule(
        "team-namespaces-isolated",
        "Every team namespace has a default-deny NetworkPolicy",
        True,
        network_policy_per_team_namespace,
        stack=True,
    ),
    Rule(
        "team-within-its-grant",
        "A team stack's namespace, bucket grants and quota are within its tenant grant",
        True,
        team_within_its_grant,
        stack=True,
    ),
    Rule("spot-for-batch-pools", "GPU pools that scale to zero run on Spot VMs", False, spot_for_batch_pools),
    Rule("dev-gpu-pools-scale-to-zero", "Dev GPU pools scale to zero", False, dev_gpu_pools_scale_to_zero, stack=True),
]


def violations(resources: list[Resource], mandatory: bool | None = None) -> dict[str, list[tuple[str, str]]]:
    """Every rule's violations over a stack's resources: rule name -> [(resource name, message)]."""
    found = {}
    for rule in RULES:
        if mandatory is not None and rule.mandatory != mandatory:
            continue
        if rule.stack:
            found[rule.name] = rule.check(resources)
        else:
            found[rule.name] = [(r.name, message) for r in resources for message in rule.check(r)]
    return found
