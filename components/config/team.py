"""Team stack config: a team's namespace, identity and quota on a platform stack's cluster, and
its services (RayServices) and jobs (RayJobs), each running a payload from `workloads/`."""

import re
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.config.base import PROJECT, Model, Name, Namespace, at_least, check_namespace
from components.conventions import RESERVED_NAMESPACE_PREFIXES, RESERVED_NAMESPACES
from workloads import catalog
from workloads.config import Args


def team_namespace(namespace: str) -> str:
    """A namespace a team may have: a valid one that is no system's or the platform's."""
    check_namespace(namespace)
    if namespace in RESERVED_NAMESPACES or namespace.startswith(RESERVED_NAMESPACE_PREFIXES):
        raise ValueError(
            f"{namespace!r} is reserved ({', '.join(p + '*' for p in RESERVED_NAMESPACE_PREFIXES)},"
            f" {', '.join(RESERVED_NAMESPACES)}): a team's namespace must be its own"
        )
    return namespace


class TeamQuota(Model):
    """The namespace's ResourceQuota (requests)."""

    cpu: int = Field(32, ge=0, description="vCPUs")
    memory_gib: int = Field(128, ge=0, description="memory in GiB")
    gpus: int = Field(4, ge=0, description="GPUs: `nvidia.com/gpu` and DRA GPU devices, each")


EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")  # GCS bucket names (without dots' extra rules)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What KubeRay sets on Ray's containers (utils/constant.go@v1.7.0:136-194: RAY_*, KUBERAY_GEN_*,
# FQ_RAY_IP, REDIS_*) and what Ray reads as its own settings (RAY_*, Serve's and auth's among them).
RESERVED_ENV_PREFIXES = ("RAY_", "KUBERAY_")
RESERVED_ENV = {"FQ_RAY_IP", "REDIS_PASSWORD", "REDIS_USERNAME"}


def _env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise ValueError("not an environment variable name: letters, digits and '_', not starting with a digit")
    if name.startswith(RESERVED_ENV_PREFIXES) or name in RESERVED_ENV:
        raise ValueError(
            "Ray and KubeRay set or read this variable (RAY_*, KUBERAY_*, FQ_RAY_IP, REDIS_PASSWORD, REDIS_USERNAME):"
            " a team's secret must not replace it"
        )
    return name


EnvName = Annotated[str, AfterValidator(_env_name)]
STACK_REFERENCE = re.compile(r"^[\w.-]+/[\w.-]+/[\w.-]+$")  # <organization>/<project>/<stack>
SA_ID_MIN = 6  # GCP service account ids: 6 to 30 characters
# PATH goes into a GCS FUSE mount's options, which are comma-separated: letters, digits, . _ - / only.
GS_FOLDER = re.compile(r"gs://[a-z0-9][a-z0-9._-]*[a-z0-9]/[A-Za-z0-9._/-]*[A-Za-z0-9._-]")


def _bucket(name: str) -> str:
    if name.startswith("gs://"):
        raise ValueError(f"{name!r} is a URL; give the bucket's name ({name.removeprefix('gs://').split('/')[0]})")
    if not BUCKET.fullmatch(name):
        raise ValueError(f"{name!r} is not a bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'")
    return name


Bucket = Annotated[str, AfterValidator(_bucket)]


class Team(Model):
    name: Name(24) = Field(
        description="the team, a tenant of the platform (its tenants[].name); also names its GCP service account"
        " `<name>-ray`"
    )
    namespace: Annotated[str | None, Field(validate_default=True)] = Field(
        None,
        description="the team's namespace (default: the team name): its tenant's namespace",
    )
    group: str | None = Field(
        None,
        description="Google group (e-mail) that may manage the team's Ray objects, read their pods, logs and"
        " auth tokens, in the team's namespace only",
    )
    gpu_profiles: list[str] = Field(
        [], description="the platform's GPU profiles this team claims GPUs with (within its tenant's gpuProfiles)"
    )
    read_buckets: list[Bucket] = Field(
        [],
        description="model and data buckets to read, within its tenant's ownBuckets and readBuckets (the team's"
        " own payload archives are always readable)",
    )
    write_buckets: list[Bucket] = Field(
        [], description="buckets where jobs write (read, write, delete), within its tenant's ownBuckets"
    )
    serve_clients: list[Namespace] = Field(
        [],
        description="other namespaces whose pods may call the team's Serve apps (port 8000), within its tenant's"
        " serveClients; the team's own namespace and the platform's Gateway always may",
    )
    kueue: bool = Field(False, description="jobs wait in the platform's Kueue queues (needs its addons.kueue)")
    quota: TeamQuota = Field(
        TeamQuota(), description="the namespace's ResourceQuota, at most its tenant's quota in each resource"
    )
    compile_cache: str | None = Field(
        None,
        description="gs://BUCKET/PATH in one of writeBuckets: vLLM's torch.compile cache, shared by the team's LLM"
        " workers (mounted with GCS FUSE): the first worker of a model and engine compiles and writes it, every"
        " later one loads it instead of compiling",
    )

    @field_validator("compile_cache")
    @classmethod
    def _gs_folder(cls, uri: str | None) -> str | None:
        if uri is not None and not GS_FOLDER.fullmatch(uri):
            raise ValueError(
                f"{uri!r} is not gs://BUCKET/PATH (a folder of the bucket of letters, digits, '.', '_', '-' and '/',"
                " no trailing '/')"
            )
        return uri

    @model_validator(mode="after")
    def _compile_cache_writable(self) -> "Team":
        if self.compile_cache and self.compile_cache.removeprefix("gs://").split("/")[0] not in self.write_buckets:
            raise ValueError(
                f"compileCache: {self.compile_cache} is not in one of writeBuckets ({', '.join(self.write_buckets)}):"
                " the workers write it"
            )
        return self

    @field_validator("name")
    @classmethod
    def _service_account_id(cls, name: str) -> str:
        if len(account := f"{name}-ray") < SA_ID_MIN:
            raise ValueError(
                f"{name!r} makes the service account id {account!r}, shorter than GCP's {SA_ID_MIN} characters"
            )
        return name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str | None, info: ValidationInfo) -> str | None:
        namespace = namespace or info.data.get("name")
        return None if namespace is None else team_namespace(namespace)

    @field_validator("group")
    @classmethod
    def _google_group(cls, group: str | None) -> str | None:
        if group is not None and (group.startswith("system:") or not EMAIL.fullmatch(group)):
            raise ValueError(
                f"{group!r} is not a Google group's e-mail address (a Kubernetes group such as"
                " system:authenticated would give its rights to everyone it covers)"
            )
        return group


class Replicas(Model):
    min: int = Field(0, ge=0, description="fewest worker pods")
    max: int = Field(1, ge=1, description="most worker pods (Ray's autoscaler adds them on demand)")

    _max_not_below_min = at_least("min", "max")


class Head(Model):
    cpu: int = Field(2, ge=1, description="vCPUs of the Ray head (on the system pool, no GPUs)")
    memory_gib: int = Field(8, ge=1, description="memory of the Ray head in GiB")


class Workers(Model):
    """A workload's GPU worker group: DRA GPUs through a profile, or device-plugin GPUs of a pool."""

    gpu_profile: str | None = Field(None, description="one of team.gpuProfiles (dra pools); or set gpuPool")
    gpu_pool: str | None = Field(None, description="a device-plugin pool of the platform; or set gpuProfile")
    gpus: int | None = Field(None, ge=1, description="with gpuPool: GPUs per worker (default: the whole node)")
    replicas: Replicas = Field(Replicas(min=0, max=1), description="worker pods")
    cpu: int = Field(4, ge=1, description="vCPUs per worker")
    memory_gib: int = Field(16, ge=1, description="memory per worker in GiB")

    @model_validator(mode="after")
    def _one_gpu_source(self) -> "Workers":
        if (self.gpu_profile is None) == (self.gpu_pool is None):
            raise ValueError("set exactly one of gpuProfile (dra) or gpuPool (device-plugin)")
        if self.gpu_profile is not None and self.gpus is not None:
            raise ValueError("gpus only applies with gpuPool; a gpuProfile says how many GPUs a worker gets")
        return self


class GcsFaultTolerance(Model):
    """Ray GCS state in Redis (Memorystore) so that a head restart keeps the Serve apps."""

    redis_address: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]+$", description="`host:port` of the Redis")
    password_secret: str | None = Field(None, description="a key of rayplane:secrets holding its password")


class Workload(Model):
    payloads: ClassVar[dict[str, catalog.Payload]]  # what this kind of workload can run

    name: Name(40) = Field(description="the RayService's or RayJob's name")
    payload: str = Field(description="a payload from workloads/catalog.py")
    args: SerializeAsAny[Args] = Field(
        {}, validate_default=True, description="the payload's typed args (snake_case; see docs/payloads.md)"
    )
    workers: Workers = Field(description="the GPU worker group")
    head: Head = Field(Head(), description="the Ray head")
    secret_env: dict[EnvName, str] = Field(
        {}, description="environment variable (not RAY_*, KUBERAY_* or another KubeRay sets) -> key of rayplane:secrets"
    )

    @property
    def entry(self) -> catalog.Payload:
        """The payload's catalog entry: how it starts, its args model, what it needs beyond the image."""
        return self.payloads[self.payload]

    @field_validator("payload")
    @classmethod
    def _known_payload(cls, payload: str) -> str:
        if payload not in cls.payloads:
            raise ValueError(f"no payload {payload!r} in workloads/ ({', '.join(cls.payloads)})")
        return payload

    @field_validator("args", mode="wrap")  # wrap: the payload's model validates, not the field's base type
    @classmethod
    def _typed_args(cls, args, handler, info: ValidationInfo) -> Args:
        """The args as the payload's own model, parsed here once (errors keep their key paths)."""
        payload = cls.payloads.get(info.data.get("payload"))
        if payload is None:
            return args  # the payload's own error says why
        return payload.args.model_validate(args)


class Slo(Model):
    """A service's objectives; alerting rules watch them burn (components/slo.py). Unset latency
    targets take the payload's (workloads/catalog.py)."""

    availability: float = Field(
        0.995, ge=0.9, le=0.9999, description="the share of its HTTP requests answered without a 5xx, over 28 days"
    )
    latency_p95_ms: int | None = Field(None, ge=1, description="p95 of a request's latency at Serve's proxy, in ms")
    ttft_p95_ms: int | None = Field(None, ge=1, description="an LLM's p95 time to first token, in ms")
    itl_p95_ms: int | None = Field(None, ge=1, description="an LLM's p95 time between output tokens, in ms")
    scale_up_within_s: int = Field(
        600,
        ge=1,
        description="the most a new replica may take from Serve's wish for it to serving (its upscale delay and cold"
        " start, docs/capacity.md); an autoscaled service whose plan-time estimate is longer gets a warning",
    )


class Service(Workload):
    payloads = catalog.SERVICES

    upgrade_strategy: Literal["NewCluster", "NewClusterWithIncrementalUpgrade", "None"] = Field(
        "NewCluster",
        description='what KubeRay does with a cluster change (docs/capacity.md "Rollouts"): NewCluster, a new'
        " RayCluster beside the serving one (its surge must fit the pools and the quota); incremental, one that takes"
        " traffic step by step (the platform's gatewayApi); None, no new cluster: the change waits for the RayService"
        " to be recreated",
    )
    gcs_fault_tolerance: GcsFaultTolerance | None = Field(None, description="keep Serve apps over head restarts")
    slo: Slo = Field(Slo(), description="its objectives: the team's alerting rules watch them")

    @field_validator("slo")
    @classmethod
    def _llm_targets_for_llms(cls, slo: Slo, info: ValidationInfo) -> Slo:
        if info.data.get("payload") != "llm" and (slo.ttft_p95_ms or slo.itl_p95_ms):
            raise ValueError("ttftP95Ms and itlP95Ms are an LLM's (payload llm): vLLM measures them")
        return slo

    def objectives(self) -> Slo:
        """Its SLO with the payload's latency targets where the config sets none."""
        defaults = self.entry.slo
        return self.slo.model_copy(update={k: v for k, v in defaults.items() if getattr(self.slo, k) is None})


class Job(Workload):
    payloads = catalog.JOBS

    active_deadline_seconds: int = Field(4 * 3600, ge=60, description="the job fails after this long")
    backoff_limit: int = Field(0, ge=0, description="retries of a failed job")
    ttl_seconds_after_finished: int = Field(
        0,
        ge=0,
        description="the Ray cluster goes this long after the end (0 for a queued job: Kueue frees its quota then);"
        " the submitter Job, kept, has the driver's logs",
    )


class TeamStack(Model):
    """A team stack: the team's namespace and workloads on a platform stack's cluster."""

    kind: Literal["team"] = Field(description="`team`: this stack deploys a team onto a platform stack")
    project: str = Field(alias="gcp:project", pattern=PROJECT, description="the GCP project (the provider's key)")
    platform_stack: str = Field(
        pattern=STACK_REFERENCE.pattern, description="the platform stack: `<organization>/rayplane/<stack>`"
    )
    team: Team = Field(description="the team")
    services: list[Service] = Field([], description="RayServices, each a Serve app of a payload")
    jobs: list[Job] = Field([], description="RayJobs, each a run of a job payload")
    secrets: dict[str, str] = Field(
        {},
        description="Pulumi secrets only (`pulumi config set --secret --path 'secrets.<name>'`): the Secret"
        " `<team>-secrets`",
    )

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
