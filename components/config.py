"""The stack config: one pydantic model tree, validated before any resource is registered.

Keys are camelCase as in the stack files (`rayplane:nodePools`); every error names its key path,
e.g. `nodePools[1].accelerator: nvidia-l4 needs a g2-standard-* machine type, got a2-highgpu-1g`.
"""

import ipaddress
import json
import re
from typing import Annotated, Literal

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.gpu import ACCELERATORS, default_gpu_count, gpu_count_error, machine_shape, machine_type_error
from workloads import catalog

NAMESPACE = "rayplane"
MIN_DRA_VERSION = (1, 34)  # resource.k8s.io/v1 is GA from 1.34; GKE's DRA support needs it
GKE_NODE_POOL_NAME_MAX = 40
PULUMI_SUFFIX_LEN = 8  # auto-naming appends "-" + 7 random characters

REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
K8S_VERSION = re.compile(r"^1\.(\d+)(\.\d+(-gke\.\d+)?)?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class ConfigError(pulumi.RunError):
    """An invalid stack config; pulumi prints RunError messages without a traceback."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid stack config:\n" + "\n".join(f"  {e}" for e in errors))


def _check_name(value: str, max_len: int) -> str:
    if not DNS_LABEL.match(value) or len(value) > max_len:
        raise ValueError(
            f"{value!r} is not a valid name: lowercase letters, digits and '-', starting with a letter,"
            f" not ending with '-', at most {max_len} characters"
        )
    return value


def _name(max_len: int) -> AfterValidator:
    return AfterValidator(lambda value: _check_name(value, max_len))


def _zone(value: str) -> str:
    if not ZONE.match(value):
        raise ValueError(f"{value!r} is not a zone (e.g. us-central1-a)")
    return value


Zone = Annotated[str, AfterValidator(_zone)]
AcceleratorType = Literal[tuple(ACCELERATORS)]  # type: ignore[valid-type]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


def _max_not_below(min_field: str):
    """A field validator: the validated maximum must not be below the `min_field` before it."""

    def check(cls, maximum: int, info: ValidationInfo) -> int:
        minimum = info.data.get(min_field, 0)
        if maximum < minimum:
            raise ValueError(f"{to_camel(info.field_name)} ({maximum}) must be >= {to_camel(min_field)} ({minimum})")
        return maximum

    return classmethod(check)


class AuthorizedNetwork(Model):
    name: str
    cidr: ipaddress.IPv4Network


class ControlPlane(Model):
    """Private nodes always; the public endpoint only when asked for, and only for these CIDRs."""

    authorized_networks: list[AuthorizedNetwork] = []
    public_endpoint: bool = False

    @field_validator("public_endpoint")
    @classmethod
    def _needs_networks(cls, public: bool, info: ValidationInfo) -> bool:
        if public and not info.data.get("authorized_networks"):
            raise ValueError("a public endpoint needs at least one entry in authorizedNetworks")
        return public


class Network(Model):
    nodes_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.0.0.0/20")
    pods_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.16.0.0/14")
    services_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.20.0.0/20")

    @field_validator("pods_cidr", "services_cidr")
    @classmethod
    def _no_overlap(cls, cidr: ipaddress.IPv4Network, info: ValidationInfo) -> ipaddress.IPv4Network:
        for other in ("nodes_cidr", "pods_cidr"):
            if other != info.field_name and other in info.data and cidr.overlaps(info.data[other]):
                raise ValueError(f"{cidr} overlaps {to_camel(other)} {info.data[other]}")
        return cidr


class Autoscaling(Model):
    """Node counts are totals across the pool's zones; 0 lets an idle GPU pool scale away."""

    min_nodes: int = Field(0, ge=0)
    max_nodes: int = Field(1, ge=1)

    _max_not_below_min = field_validator("max_nodes")(_max_not_below("min_nodes"))


class SystemPool(Model):
    """The small CPU pool for system pods, the KubeRay operator and Ray heads."""

    machine_type: str = "e2-standard-4"
    autoscaling: Autoscaling = Autoscaling(minNodes=1, maxNodes=3)


class Cluster(Model):
    location: str  # a region (regional cluster) or a zone (zonal cluster)
    kubernetes_version: str = "1.34"  # minimum control-plane version; the release channel upgrades
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    deletion_protection: bool = True
    control_plane: ControlPlane = ControlPlane()
    system_pool: SystemPool = SystemPool()
    gateway_api: bool = False  # Gateway API: needed by RayService incremental upgrades
    rbac_security_group: str | None = Field(None, pattern=r"^gke-security-groups@[\w.-]+$")  # Google Groups RBAC

    @field_validator("location")
    @classmethod
    def _location(cls, location: str) -> str:
        if not (REGION.match(location) or ZONE.match(location)):
            raise ValueError(f"{location!r} is neither a region (e.g. us-central1) nor a zone (e.g. us-central1-a)")
        return location

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, version: str) -> str:
        if not K8S_VERSION.match(version):
            raise ValueError(f"{version!r} is not a GKE version (e.g. 1.34 or 1.34.1-gke.1829001)")
        return version

    @property
    def region(self) -> str:
        zone = ZONE.match(self.location)
        return zone.group(1) if zone else self.location

    @property
    def minor(self) -> tuple[int, int]:
        return (1, int(K8S_VERSION.match(self.kubernetes_version).group(1)))


class GpuNodePool(Model):
    name: Annotated[str, _name(30)]
    machine_type: str
    accelerator: AcceleratorType
    accelerator_count: int | None = Field(None, validate_default=True)  # default: what the machine carries
    gpu_mode: Literal["dra", "device-plugin"] = "dra"
    spot: bool = False
    autoscaling: Autoscaling = Autoscaling()
    zones: list[Zone] = []  # default: the cluster's zones
    disk_size_gb: int = Field(200, ge=50)

    @field_validator("accelerator")
    @classmethod
    def _fits_machine(cls, accelerator: str, info: ValidationInfo) -> str:
        if "machine_type" in info.data and (err := machine_type_error(accelerator, info.data["machine_type"])):
            raise ValueError(err)
        return accelerator

    @field_validator("accelerator_count")
    @classmethod
    def _count(cls, count: int | None, info: ValidationInfo) -> int | None:
        if "accelerator" not in info.data:
            return count  # the accelerator is already reported
        accelerator, machine_type = info.data["accelerator"], info.data["machine_type"]
        if count is None:
            return default_gpu_count(accelerator, machine_type)
        if err := gpu_count_error(accelerator, machine_type, count):
            raise ValueError(err)
        return count


class GpuProfile(Model):
    """How a pod gets GPUs through DRA; each profile becomes a ResourceClaimTemplate of that name."""

    name: Annotated[str, _name(63)]
    sharing: Literal["exclusive", "time-sliced", "mps", "mig"] = "exclusive"
    count: int = Field(1, ge=1)  # GPUs (MIG devices for sharing: mig) per claim, e.g. 2 for TP=2
    interval: Literal["Default", "Short", "Medium", "Long"] | None = None  # time-sliced: time slice length
    active_thread_percentage: int | None = Field(None, ge=1, le=100)  # mps: share of SMs per client
    pinned_memory_limit: str | None = Field(None, pattern=QUANTITY.pattern)  # mps: device memory per client
    mig_profile: str | None = None  # mig: e.g. 1g.10gb
    pools: list[str] = []  # only these pools; default: every dra pool that can satisfy the profile

    @model_validator(mode="after")
    def _options_fit_sharing(self) -> "GpuProfile":
        options = {"interval": "time-sliced", "active_thread_percentage": "mps", "pinned_memory_limit": "mps"}
        options["mig_profile"] = "mig"
        for option, mode in options.items():
            if getattr(self, option) is not None and self.sharing != mode:
                raise ValueError(f"{to_camel(option)} only applies to sharing: {mode}")
        if self.sharing == "mig" and self.mig_profile is None:
            raise ValueError("sharing: mig needs a migProfile (e.g. 1g.10gb)")
        return self

    def unfit(self, pool: GpuNodePool) -> str | None:
        """Why `pool` cannot satisfy this profile, or None if it can."""
        if pool.gpu_mode != "dra":
            return f"{pool.name} runs gpuMode {pool.gpu_mode}; GPU profiles need gpuMode dra"
        if self.sharing == "mig":
            if self.mig_profile not in ACCELERATORS[pool.accelerator].mig_profiles:
                return f"{pool.name} ({pool.accelerator}) has no MIG profile {self.mig_profile}"
        elif self.count > pool.accelerator_count:
            return f"{pool.name} has {pool.accelerator_count} GPU(s) per node, the profile needs {self.count}"
        return None


class KubeRay(Model):
    """Values of the kuberay-operator chart that a platform team chooses."""

    feature_gates: dict[str, bool] = {
        "RayClusterStatusConditions": True,
        "RayJobDeletionPolicy": True,
        "RayServiceIncrementalUpgrade": False,  # needs Gateway API on the cluster
    }
    batch_scheduler: Literal["", "volcano", "yunikorn", "kai-scheduler", "scheduler-plugins"] = ""  # Kueue needs none
    metrics: bool = True


class KueueQueue(Model):
    """Quota of one GPU pool's ClusterQueue; defaults: the pool's full size at maxNodes."""

    gpus: int | None = Field(None, ge=0)
    cpu: int | None = Field(None, ge=0)
    memory_gib: int | None = Field(None, ge=0)


class Kueue(Model):
    enabled: bool = True
    queues: dict[str, KueueQueue] = {}  # GPU pool name -> quota overrides


class Addons(Model):
    kuberay: KubeRay = KubeRay()
    kueue: Kueue = Kueue()
    monitoring: bool = True  # Managed Prometheus scraping of Ray heads, workers and the operator
    # NVIDIA driver that GKE's installer DaemonSet puts on dra pools: default, latest or x.y.z.
    gpu_driver_version: str = Field("default", pattern=r"^(default|latest|[0-9]+\.[0-9]+(\.[0-9]+)?)$")


class PlatformStack(Model):
    """A platform stack per environment: network, cluster, GPU node pools, add-ons."""

    kind: Literal["platform"]
    project: str = Field(alias="gcp:project", pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    # Prefix of every logical and explicit physical name; the node service account id is
    # "<prefix>-nodes" and GCP caps those at 30 characters.
    prefix: Annotated[str, _name(24)]
    cluster: Cluster
    network: Network = Network()
    node_pools: list[GpuNodePool] = []
    gpu_profiles: list[GpuProfile] = []
    addons: Addons = Addons()

    @property
    def workload_bucket(self) -> str:
        return f"{self.project}-{self.prefix}-workloads"

    @property
    def dra_pools(self) -> list[GpuNodePool]:
        return [pool for pool in self.node_pools if pool.gpu_mode == "dra"]

    def profile_pools(self, profile: GpuProfile) -> list[GpuNodePool]:
        """The pools that can satisfy `profile` (restricted to profile.pools when given)."""
        candidates = [p for p in self.node_pools if not profile.pools or p.name in profile.pools]
        return [pool for pool in candidates if profile.unfit(pool) is None]

    def queue_quota(self, pool: GpuNodePool) -> KueueQueue:
        """The Kueue quota of a GPU pool: config overrides, else the pool's size at maxNodes."""
        given = self.addons.kueue.queues.get(pool.name, KueueQueue())
        vcpus, gib = machine_shape(pool.machine_type) or (None, None)
        nodes = pool.autoscaling.max_nodes
        return KueueQueue(
            gpus=given.gpus if given.gpus is not None else nodes * pool.accelerator_count,
            cpu=given.cpu if given.cpu is not None else vcpus and nodes * vcpus,
            memoryGib=given.memory_gib if given.memory_gib is not None else gib and nodes * gib,
        )

    @model_validator(mode="after")
    def _cross_checks(self) -> "PlatformStack":
        errors = []
        if len(self.workload_bucket) > 63:
            errors.append(f"prefix: bucket name {self.workload_bucket!r} is longer than 63 characters")
        seen = set()
        for i, pool in enumerate(self.node_pools):
            path = f"nodePools[{i}]"
            if pool.name in seen or pool.name == "system":
                errors.append(f"{path}.name: {pool.name!r} is already used by another node pool")
            seen.add(pool.name)
            longest = len(self.prefix) + 1 + len(pool.name) + PULUMI_SUFFIX_LEN
            if longest > GKE_NODE_POOL_NAME_MAX:
                errors.append(
                    f"{path}.name: '{self.prefix}-{pool.name}' plus Pulumi's 8-character suffix is {longest}"
                    f" characters; GKE allows {GKE_NODE_POOL_NAME_MAX}"
                )
            for j, zone in enumerate(pool.zones):
                if not zone.startswith(self.cluster.region + "-"):
                    errors.append(f"{path}.zones[{j}]: {zone} is not in the cluster's region {self.cluster.region}")
            if pool.gpu_mode == "dra" and self.cluster.minor < MIN_DRA_VERSION:
                errors.append(
                    f"cluster.kubernetesVersion: {path} uses gpuMode dra, which needs Kubernetes >= "
                    f"{'.'.join(map(str, MIN_DRA_VERSION))}, got {self.cluster.kubernetes_version}"
                )
        errors += self._profile_errors() + self._kueue_errors()
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _profile_errors(self) -> list[str]:
        errors, names, pools = [], set(), {pool.name: pool for pool in self.node_pools}
        for i, profile in enumerate(self.gpu_profiles):
            path = f"gpuProfiles[{i}]"
            if profile.name in names:
                errors.append(f"{path}.name: {profile.name!r} is already used by another profile")
            names.add(profile.name)
            for j, name in enumerate(profile.pools):
                if name not in pools:
                    errors.append(f"{path}.pools[{j}]: no node pool named {name!r}")
                elif reason := profile.unfit(pools[name]):
                    errors.append(f"{path}.pools[{j}]: {reason}")
            if not self.profile_pools(profile) and not any(e.startswith(f"{path}.pools") for e in errors):
                reasons = "; ".join(profile.unfit(p) for p in self.node_pools) or "there are no GPU node pools"
                errors.append(f"{path}: no node pool can satisfy it ({reasons})")
        return errors

    def _kueue_errors(self) -> list[str]:
        kueue, pools = self.addons.kueue, {pool.name: pool for pool in self.node_pools}
        if not kueue.enabled:
            return []
        errors = [
            f"addons.kueue.queues.{name}: no GPU node pool named {name!r}" for name in kueue.queues if name not in pools
        ]
        for i, pool in enumerate(self.node_pools):
            quota = self.queue_quota(pool)
            if quota.cpu is None or quota.memory_gib is None:
                errors.append(
                    f"nodePools[{i}].machineType: the size of {pool.machine_type} is unknown; set"
                    f" addons.kueue.queues.{pool.name}.cpu and memoryGib"
                )
        if machine_shape(self.cluster.system_pool.machine_type) is None:
            errors.append(
                f"cluster.systemPool.machineType: the size of {self.cluster.system_pool.machine_type} is unknown"
            )
        return errors


class TeamQuota(Model):
    """The namespace's ResourceQuota (requests)."""

    cpu: int = Field(32, ge=0)
    memory_gib: int = Field(128, ge=0)
    gpus: int = Field(4, ge=0)  # nvidia.com/gpu and DRA GPU devices, each


class Team(Model):
    name: Annotated[str, _name(24)]  # also names the team's GCP service account "<name>-ray"
    namespace: Annotated[str | None, Field(validate_default=True)] = None  # default: the team name
    group: str | None = None  # Google group (e-mail) given the edit role in the namespace
    gpu_profiles: list[str] = []  # the platform's GPU profiles this team claims GPUs with
    read_buckets: list[str] = []  # model and data buckets (the workload bucket is always readable)
    write_buckets: list[str] = []  # where batch jobs write
    kueue: bool = False  # jobs wait in the platform's Kueue queues (needs addons.kueue on the platform)
    quota: TeamQuota = TeamQuota()

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str | None, info: ValidationInfo) -> str | None:
        namespace = namespace or info.data.get("name")
        if namespace is not None:
            _check_name(namespace, 63)
        return namespace


class Replicas(Model):
    min: int = Field(0, ge=0)
    max: int = Field(1, ge=1)

    _max_not_below_min = field_validator("max")(_max_not_below("min"))


class Head(Model):
    cpu: int = Field(2, ge=1)
    memory_gib: int = Field(8, ge=1)


class Workers(Model):
    """A workload's GPU worker group: DRA GPUs through a profile, or device-plugin GPUs of a pool."""

    gpu_profile: str | None = None  # one of team.gpuProfiles (dra pools)
    gpu_pool: str | None = None  # a device-plugin pool of the platform
    gpus: int | None = Field(None, ge=1)  # with gpuPool: GPUs per worker
    replicas: Replicas = Replicas(min=0, max=1)
    cpu: int = Field(4, ge=1)
    memory_gib: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _one_gpu_source(self) -> "Workers":
        if (self.gpu_profile is None) == (self.gpu_pool is None):
            raise ValueError("set exactly one of gpuProfile (dra) or gpuPool (device-plugin)")
        if self.gpu_profile is not None and self.gpus is not None:
            raise ValueError("gpus only applies with gpuPool; a gpuProfile says how many GPUs a worker gets")
        return self


class GcsFaultTolerance(Model):
    """Ray GCS state in Redis (Memorystore) so that a head restart keeps the Serve apps."""

    redis_address: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]+$")
    password_secret: str | None = None  # a key of rayplane:secrets


class Workload(Model):
    name: Annotated[str, _name(40)]
    payload: str
    args: dict = {}  # the payload's own typed args (snake_case, as the payload's Python reads them)
    workers: Workers
    head: Head = Head()
    secret_env: dict[str, str] = {}  # env var -> key of rayplane:secrets


class Service(Workload):
    upgrade_strategy: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"] = "NewCluster"
    gcs_fault_tolerance: GcsFaultTolerance | None = None


class Job(Workload):
    active_deadline_seconds: int = Field(4 * 3600, ge=60)
    backoff_limit: int = Field(0, ge=0)
    ttl_seconds_after_finished: int = Field(3600, ge=0)


class TeamStack(Model):
    """A team stack: the team's namespace and workloads on a platform stack's cluster."""

    kind: Literal["team"]
    project: str = Field(alias="gcp:project", pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
    platform_stack: str = Field(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+$")  # <organization>/<project>/<stack>
    team: Team
    services: list[Service] = []
    jobs: list[Job] = []
    secrets: dict[str, str] = {}  # Pulumi secrets (`pulumi config set --secret --path 'secrets.x'`)

    def workloads(self) -> list[tuple[str, Workload]]:
        """Every service and job with its key path."""
        return [(f"services[{i}]", s) for i, s in enumerate(self.services)] + [
            (f"jobs[{i}]", j) for i, j in enumerate(self.jobs)
        ]

    @model_validator(mode="after")
    def _cross_checks(self) -> "TeamStack":
        errors, names = [], set()
        for path, workload in self.workloads():
            if workload.name in names:
                errors.append(f"{path}.name: {workload.name!r} is already used by another service or job")
            names.add(workload.name)
            errors += _payload_errors(path, workload)
            profile = workload.workers.gpu_profile
            if profile is not None and profile not in self.team.gpu_profiles:
                errors.append(f"{path}.workers.gpuProfile: {profile!r} is not in team.gpuProfiles")
            for var, key in workload.secret_env.items():
                if key not in self.secrets:
                    errors.append(f"{path}.secretEnv.{var}: no secret {key!r} in rayplane:secrets")
            ft = getattr(workload, "gcs_fault_tolerance", None)
            if ft and ft.password_secret and ft.password_secret not in self.secrets:
                errors.append(f"{path}.gcsFaultTolerance.passwordSecret: no secret {ft.password_secret!r}")
        if errors:
            raise ValueError("\n".join(errors))
        return self


def _payload_errors(path: str, workload: Workload) -> list[str]:
    """The payload must exist in workloads/ and its args must fit the payload's own model."""
    payloads = catalog.SERVICES if path.startswith("services") else catalog.JOBS
    payload = payloads.get(workload.payload)
    if payload is None:
        return [f"{path}.payload: no payload {workload.payload!r} in workloads/ ({', '.join(payloads)})"]
    try:
        payload.args.model_validate(workload.args)
    except ValidationError as exc:
        return [f"{path}.args.{_path(e['loc'])}: {_message(e)}" for e in exc.errors(include_url=False)]
    return []


StackConfig = PlatformStack | TeamStack
STACK_KINDS: dict[str, type[StackConfig]] = {"platform": PlatformStack, "team": TeamStack}


def _path(loc: tuple) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(err: dict) -> str:
    return "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")


def parse(raw: dict) -> StackConfig:
    """Validate a raw config dict (keys as in the stack file, without the `rayplane:` prefix)."""
    model = STACK_KINDS.get(raw.get("kind"))
    if model is None:
        raise ConfigError([f"kind: must be one of {', '.join(STACK_KINDS)}, got {raw.get('kind')!r}"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            path = _path(err["loc"])
            errors.extend(f"{path}: {line}" if path else line for line in _message(err).split("\n"))
        raise ConfigError(errors) from None


def _value(raw: str):
    # Pulumi hands structured config values over as JSON text; scalars stay strings.
    return json.loads(raw) if raw[:1] in "{[" else raw


def from_pulumi_config(everything: dict[str, str], secret_keys: set[str]) -> StackConfig:
    """The stack config from Pulumi's config map (full keys, JSON text values)."""
    raw = {k.removeprefix(f"{NAMESPACE}:"): _value(v) for k, v in everything.items() if k.startswith(f"{NAMESPACE}:")}
    if "gcp:project" in everything:
        raw["gcp:project"] = everything["gcp:project"]
    if "secrets" in raw and f"{NAMESPACE}:secrets" not in secret_keys:
        raise ConfigError(["secrets: set these with `pulumi config set --secret --path 'secrets.<name>'`"])
    return parse(raw)


def load() -> StackConfig:
    """Read every `rayplane:*` key (so that a misspelt key fails instead of being ignored)."""
    # pulumi.Config only answers for keys it is asked about; the full map is needed to find typos.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | runtime_config._SECRET_KEYS.get()
    return from_pulumi_config(everything, secret_keys)
