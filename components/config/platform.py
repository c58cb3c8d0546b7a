"""Platform stack config: the network, the GKE cluster, its GPU node pools and GPU profiles, and
the cluster add-ons. One platform stack per environment (`kind: platform`)."""

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.config.alerting import Alerts, alerts_errors
from components.config.base import PROJECT, REGION, ZONE, Model, Name, Zone, at_least
from components.config.tenants import Tenant, registry_errors
from components.conventions import SYSTEM_POOL
from components.gpu import ACCELERATORS, default_gpu_count, gpu_count_error, machine_shape, machine_type_error
from components.regions import GKE_MAX_NODES_PER_ZONE, location_error, zones_of
from components.versions import KUBERAY, NVIDIA_DRA_DRIVER, RAY, RAY_IMAGE

MIN_DRA_VERSION = (1, 34)  # resource.k8s.io/v1 is GA from 1.34; GKE's DRA support needs it
GKE_NODE_POOL_NAME_MAX = 40
PULUMI_SUFFIX_LEN = 8  # auto-naming appends "-" + 7 random characters
MACHINE_TYPE = r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$"  # a Compute Engine machine type: <series>-<shape>[-<size>]
RESERVATION = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # a Compute Engine resource name
Provisioning = Literal["on-demand", "spot", "flex-start", "reservation"]
K8S_VERSION = re.compile(r"^1\.(\d+)(\.\d+(-gke\.\d+)?)?$")

AcceleratorType = Literal[tuple(ACCELERATORS)]  # type: ignore[valid-type]
GpuMode = Literal["dra", "device-plugin"]
Sharing = Literal["exclusive", "time-sliced", "mps", "mig"]


def _routable(cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """A range traffic can come from or go to: not link-local (169.254/16: metadata), loopback,
    multicast or the reserved 240/4, which GCP refuses in subnets and no client has."""
    for kind in ("link_local", "loopback", "multicast", "reserved"):
        if cidr.prefixlen > 0 and getattr(cidr, f"is_{kind}"):
            raise ValueError(f"{cidr} is a {kind.replace('_', '-')} range")
    return cidr


Cidr = Annotated[ipaddress.IPv4Network, AfterValidator(_routable)]


class AuthorizedNetwork(Model):
    name: str = Field(description="a label for the network, shown in the GKE console")
    cidr: Cidr = Field(description="an IPv4 range allowed to reach the control plane")


class ControlPlane(Model):
    """Private nodes always. The control plane's DNS endpoint (IAM-authorized: CI and the stacks'
    kubeconfig use it) always; its IP endpoint private, public only when asked for, and only for
    these CIDRs (people's kubectl from an office or VPN)."""

    authorized_networks: list[AuthorizedNetwork] = Field(
        [], description="who may reach the control plane's IP endpoint"
    )
    public_endpoint: bool = Field(
        False, description="give the IP endpoint a public IP (needs authorizedNetworks); else private only"
    )
    open_to_internet: bool = Field(
        False,
        description="allow an authorized network of 0.0.0.0/0: anyone may reach the Kubernetes API (it still"
        " authenticates); the deploy prints a warning",
    )

    @field_validator("public_endpoint")
    @classmethod
    def _needs_networks(cls, public: bool, info: ValidationInfo) -> bool:
        if public and info.data.get("authorized_networks") == []:  # absent: its own error is reported
            raise ValueError("a public endpoint needs at least one entry in authorizedNetworks")
        return public

    @model_validator(mode="after")
    def _world_needs_opt_in(self) -> "ControlPlane":
        if self.open_to_internet:
            return self
        for i, network in enumerate(self.authorized_networks):
            if network.cidr.prefixlen == 0:
                raise ValueError(
                    f"authorizedNetworks[{i}] is {network.cidr}, the whole internet; set"
                    " cluster.controlPlane.openToInternet: true if that is meant"
                )
        if self.world_open:
            raise ValueError(
                "authorizedNetworks together cover 0.0.0.0/0, the whole internet; set"
                " cluster.controlPlane.openToInternet: true if that is meant"
            )
        return self

    @property
    def world_open(self) -> bool:
        """Whether the authorized networks, together, are the whole internet."""
        union = ipaddress.collapse_addresses(network.cidr for network in self.authorized_networks)
        return any(cidr.prefixlen == 0 for cidr in union)


class Network(Model):
    nodes_cidr: Cidr = Field(ipaddress.IPv4Network("10.0.0.0/20"), description="the nodes' subnet")
    pods_cidr: Cidr = Field(ipaddress.IPv4Network("10.16.0.0/14"), description="the subnet's secondary range for pods")
    services_cidr: Cidr = Field(
        ipaddress.IPv4Network("10.20.0.0/20"), description="the subnet's secondary range for services"
    )
    proxy_only_cidr: Cidr = Field(
        ipaddress.IPv4Network("10.24.0.0/23"),
        description="with cluster.gatewayApi: the region's proxy-only subnet for the internal Gateway (/26 or larger)",
    )

    @field_validator("pods_cidr", "services_cidr", "proxy_only_cidr")
    @classmethod
    def _no_overlap(cls, cidr: ipaddress.IPv4Network, info: ValidationInfo) -> ipaddress.IPv4Network:
        for other in ("nodes_cidr", "pods_cidr", "services_cidr"):
            if other != info.field_name and other in info.data and cidr.overlaps(info.data[other]):
                raise ValueError(f"{cidr} overlaps {to_camel(other)} {info.data[other]}")
        return cidr

    @field_validator("nodes_cidr")
    @classmethod
    def _subnet_size(cls, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 8 <= cidr.prefixlen <= 29:  # a VPC subnet's primary IPv4 range: /8 to /29
            raise ValueError(f"{cidr} is not a subnet size GCP accepts (/8 to /29)")
        return cidr

    @field_validator("proxy_only_cidr")
    @classmethod
    def _proxy_only_size(cls, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if cidr.prefixlen > 26:  # GCP's minimum for a proxy-only subnet
            raise ValueError(f"{cidr} is smaller than a /26, the smallest proxy-only subnet")
        return cidr


class Autoscaling(Model):
    """Node counts are totals across the pool's zones; 0 lets an idle GPU pool scale away."""

    min_nodes: int = Field(0, ge=0, description="fewest nodes, across all the pool's zones")
    max_nodes: int = Field(1, ge=1, description="most nodes, across all the pool's zones")

    _max_not_below_min = at_least("min_nodes", "max_nodes")


class SystemPool(Model):
    """The small CPU pool for system pods, the KubeRay operator and Ray heads."""

    machine_type: str = Field("e2-standard-4", pattern=MACHINE_TYPE, description="machine type of the system pool")
    autoscaling: Autoscaling = Field(Autoscaling(minNodes=1, maxNodes=3), description="node counts of the system pool")


class Cluster(Model):
    location: str = Field(description="a region (regional cluster) or a zone (zonal cluster)")
    kubernetes_version: str = Field(
        "1.34", description="minimum control-plane version; the release channel upgrades (DRA needs >= 1.34)"
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field("REGULAR", description="GKE release channel")
    deletion_protection: bool = Field(True, description="refuse to delete the cluster")
    control_plane: ControlPlane = Field(ControlPlane(), description="who reaches the Kubernetes API")
    system_pool: SystemPool = Field(SystemPool(), description="the CPU pool for system pods and Ray heads")
    gateway_api: bool = Field(
        False,
        description="Gateway API on the cluster, a proxy-only subnet for its internal Gateway and KubeRay's"
        " RayServiceIncrementalUpgrade gate: what RayService incremental upgrades need",
    )
    rbac_security_group: str | None = Field(
        None,
        pattern=r"^gke-security-groups@[\w.-]+$",
        description="`gke-security-groups@<domain>`, so that team Google groups can be bound in RBAC",
    )

    @field_validator("location")
    @classmethod
    def _location(cls, location: str) -> str:
        if not (REGION.fullmatch(location) or ZONE.fullmatch(location)):
            raise ValueError(f"{location!r} is neither a region (e.g. us-central1) nor a zone (e.g. us-central1-a)")
        if error := location_error(location):
            raise ValueError(error)
        return location

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, version: str) -> str:
        if not K8S_VERSION.fullmatch(version):
            raise ValueError(f"{version!r} is not a GKE version (e.g. 1.34 or 1.34.1-gke.1829001)")
        return version

    @property
    def region(self) -> str:
        zone = ZONE.fullmatch(self.location)
        return zone.group(1) if zone else self.location

    @property
    def minor(self) -> tuple[int, int]:
        return (1, int(K8S_VERSION.fullmatch(self.kubernetes_version).group(1)))


class GpuNodePool(Model):
    name: Name(30) = Field(description="the pool's name; team stacks and GPU profiles refer to it")
    machine_type: str = Field(
        pattern=MACHINE_TYPE, description="a machine type that carries the accelerator (e.g. g2-standard-8)"
    )
    accelerator: AcceleratorType = Field(description="GKE accelerator type")
    accelerator_count: int | None = Field(
        None, validate_default=True, description="GPUs per node (default: what the machine type carries)"
    )
    gpu_mode: GpuMode = Field(
        "dra", description="`dra`: the NVIDIA DRA driver hands out GPUs; `device-plugin`: `nvidia.com/gpu` limits"
    )
    provisioning: Provisioning = Field(
        "on-demand",
        description="how its VMs are obtained: `on-demand`; `spot` (Spot VMs: cheaper, preemptible); `flex-start`"
        " (Dynamic Workload Scheduler: a VM when capacity frees up, for at most seven days; minNodes 0);"
        " `reservation` (the Compute Engine reservation `reservation` names)",
    )
    reservation: str | None = Field(
        None, pattern=RESERVATION, description="provisioning reservation: the specific reservation its VMs consume"
    )
    queued: bool = Field(
        False,
        description="flex-start with queued provisioning (Dynamic Workload Scheduler): nodes come only for jobs"
        " that Kueue admits, all of a job's at once, through a ProvisioningRequest; device-plugin pools (Kueue asks"
        " for the `nvidia.com/gpu` a pod requests, which a DRA claim is not), for queued jobs only",
    )
    autoscaling: Autoscaling = Field(Autoscaling(), description="node counts")
    spare_nodes: int = Field(
        0,
        ge=0,
        description="nodes kept up and idle, their driver installed, for the next replicas: each holds a"
        " placeholder pod of the lowest priority that the next Ray worker preempts, and the autoscaler then adds"
        " another (GKE's documented way to provision spare capacity); they count against maxNodes and cost"
        " their price all the time",
    )
    image_cache_disk: str | None = Field(
        None,
        description="a Compute Engine disk image (`global/images/NAME`, the platform's project) holding the Ray"
        " image the platform runs, made with GKE's gke-disk-image-builder and named with the hash that ends the"
        " image's tag (a new build needs a new disk): every new node gets it as a secondary boot disk and starts"
        " the image from it instead of streaming it (for pools that scale from zero; a new disk image replaces"
        " the pool)",
    )
    zones: list[Zone] = Field([], description="zones of the pool's nodes (default: the cluster's)")
    disk_size_gb: int = Field(
        200, ge=50, le=65536, description="boot disk (pd-ssd, at most 64 TiB): the Ray image and model weights"
    )

    @field_validator("image_cache_disk")
    @classmethod
    def _disk_image(cls, image: str | None) -> str | None:
        if image is not None and not re.fullmatch(r"global/images/[a-z]([-a-z0-9]{0,61}[a-z0-9])?", image):
            raise ValueError(f"{image!r} is not a disk image of the platform's project: global/images/NAME")
        return image

    @field_validator("accelerator")
    @classmethod
    def _fits_machine(cls, accelerator: str, info: ValidationInfo) -> str:
        if "machine_type" in info.data and (err := machine_type_error(accelerator, info.data["machine_type"])):
            raise ValueError(err)
        return accelerator

    @field_validator("accelerator_count")
    @classmethod
    def _count(cls, count: int | None, info: ValidationInfo) -> int | None:
        if not {"accelerator", "machine_type"} <= info.data.keys():
            return count  # the accelerator or machine type is already reported
        accelerator, machine_type = info.data["accelerator"], info.data["machine_type"]
        if count is None:
            return default_gpu_count(accelerator, machine_type)
        if err := gpu_count_error(accelerator, machine_type, count):
            raise ValueError(err)
        return count

    @model_validator(mode="after")
    def _provisioning(self) -> "GpuNodePool":
        if (self.provisioning == "reservation") != (self.reservation is not None):
            raise ValueError("reservation: set it exactly when provisioning is reservation")
        if self.provisioning == "flex-start" and self.autoscaling.min_nodes:
            # A flex-start VM runs for at most seven days (cloud.google.com/compute/docs/instances/
            # about-flex-start-vms).
            raise ValueError(
                "autoscaling.minNodes: a flex-start pool holds no nodes (each lasts at most seven days): 0"
            )
        if self.queued and (self.provisioning, self.gpu_mode) != ("flex-start", "device-plugin"):
            raise ValueError(
                "queued: queued provisioning is flex-start's, and Kueue asks it for the `nvidia.com/gpu` a pod"
                " requests (a DRA claim is none): set provisioning flex-start and gpuMode device-plugin"
            )
        if self.queued and self.spare_nodes:
            raise ValueError("spareNodes: a queued pool's nodes come only for admitted jobs, none for a placeholder")
        if self.spare_nodes and machine_shape(self.machine_type) is None:
            raise ValueError(f"spareNodes: the size of {self.machine_type} is unknown, so what a placeholder holds is")
        if self.spare_nodes >= self.autoscaling.max_nodes:
            raise ValueError(
                f"spareNodes: {self.spare_nodes} spare node(s) leave no room for workloads below"
                f" autoscaling.maxNodes {self.autoscaling.max_nodes}"
            )
        return self


class Ladder(Model):
    """A capacity ladder: GPU pools tried in priority order when a node is added, and moved back to
    the first that has capacity (a GKE custom ComputeClass over the pools, with active migration)."""

    name: Name(30) = Field(description="its name: the ComputeClass the pools and the pods that may use them carry")
    pools: list[str] = Field(
        min_length=2, description="GPU pools, most preferred first, of one accelerator and GPU mode"
    )


REFUSED_SHARING = {
    "mig": f"mig is not supported: the NVIDIA DRA driver {NVIDIA_DRA_DRIVER} hands out only MIG devices that already"
    " exist (its dynamic MIG is an alpha gate) and GKE's own MIG partitioning cannot be combined with DRA, so a MIG"
    " claim would stay pending forever; use exclusive or time-sliced",
    # templates/mps-control-daemon.tmpl.yaml@v25.12.0:26 runs `chroot /driver-root sh`; GKE's COS driver
    # root has no shell (NVIDIA/k8s-dra-driver-gpu#469, fixed after this release by #889).
    "mps": f"mps is not supported: the NVIDIA DRA driver {NVIDIA_DRA_DRIVER} starts each MPS control daemon with a"
    " shell inside the NVIDIA driver root, which on GKE's COS nodes has none, so an MPS claim's pods would never"
    " start; use exclusive or time-sliced",
}


class GpuClaim(Model):
    """What one claim of a GPU profile asks for, and how its GPUs are shared (the part of a profile
    that team stacks read back from the platform's exports).

    A profile becomes a ResourceClaimTemplate: every pod gets a claim of its own, so every Ray
    worker pod gets whole GPUs, never a GPU another pod holds. `sharing` governs the processes
    inside one pod (the Ray replicas with fractional `num_gpus` that share its GPUs)."""

    name: Name(63) = Field(description="the profile's name; each profile becomes a ResourceClaimTemplate of it")
    sharing: Sharing = Field(
        "exclusive",
        description="how the processes inside one pod (Ray replicas with fractional GPUs) share the pod's GPUs;"
        " pods never share a GPU",
    )
    count: int = Field(1, ge=1, description="GPUs per claim, that is per worker pod (e.g. 2 for TP=2)")
    interval: Literal["Default", "Short", "Medium", "Long"] | None = Field(
        None, description="time-sliced: the time slice (the driver's `Default` when not set)"
    )

    @field_validator("sharing")
    @classmethod
    def _supported(cls, sharing: str) -> str:
        if sharing in REFUSED_SHARING:
            raise ValueError(REFUSED_SHARING[sharing])
        return sharing

    @model_validator(mode="after")
    def _options_fit_sharing(self) -> "GpuClaim":
        if self.interval is not None and self.sharing != "time-sliced":
            raise ValueError("interval only applies to sharing: time-sliced")
        return self

    def unfit(self, pool: GpuNodePool) -> str | None:
        """Why `pool` cannot satisfy this profile, or None if it can."""
        if pool.gpu_mode != "dra":
            return f"{pool.name} runs gpuMode {pool.gpu_mode}; GPU profiles need gpuMode dra"
        if self.count > pool.accelerator_count:
            return f"{pool.name} has {pool.accelerator_count} GPU(s) per node, the profile needs {self.count}"
        return None


class GpuProfile(GpuClaim):
    """How a pod gets GPUs through DRA: a ResourceClaimTemplate in every team namespace that uses it."""

    pools: list[str] = Field([], description="only these pools (default: every dra pool that can satisfy it)")


# The KubeRay operator's feature gates at the pinned version (upstream/kuberay/features.go.txt).
KUBERAY_FEATURE_GATES = (
    "RayClusterStatusConditions",
    "RayJobDeletionPolicy",
    "RayMultiHostIndexing",
    "RayServiceIncrementalUpgrade",
    "RayCronJob",
    "SidecarSubmitterRestart",
    "RayClusterNetworkPolicy",
    "GCSFaultToleranceEmbeddedStorage",
    "RayClusterMTLS",
    "RayClusterHistoryServer",
    "KubernetesWAS",
)
INCREMENTAL_UPGRADE_GATE = "RayServiceIncrementalUpgrade"  # follows cluster.gatewayApi


class KubeRay(Model):
    """Values of the kuberay-operator chart that a platform team chooses."""

    feature_gates: dict[str, bool] = Field(
        {"RayClusterStatusConditions": True, "RayJobDeletionPolicy": True},
        description=f"the operator's feature gates ({INCREMENTAL_UPGRADE_GATE} follows cluster.gatewayApi)",
    )
    batch_scheduler: Literal["", "volcano", "yunikorn", "kai-scheduler", "scheduler-plugins"] = Field(
        "", description="a gang scheduler for Ray pods (Kueue needs none)"
    )
    metrics: bool = Field(True, description="the operator's metrics endpoint")

    @field_validator("feature_gates")
    @classmethod
    def _known_gates(cls, gates: dict[str, bool]) -> dict[str, bool]:
        errors = []
        for gate in gates:
            if gate == INCREMENTAL_UPGRADE_GATE:
                errors.append(f"{gate}: set by rayplane from cluster.gatewayApi; leave it out")
            elif gate not in KUBERAY_FEATURE_GATES:
                errors.append(
                    f"{gate}: KubeRay {KUBERAY} has no such feature gate ({', '.join(KUBERAY_FEATURE_GATES)})"
                )
        if errors:
            raise ValueError("\n".join(errors))
        return gates


class KueueQueue(Model):
    """Quota of one GPU pool's ClusterQueue; defaults: the pool's full size at maxNodes."""

    gpus: int | None = Field(None, ge=0, description="GPUs (default: the pool's at maxNodes)")
    cpu: int | None = Field(None, ge=0, description="vCPUs (default: the pool's at maxNodes)")
    memory_gib: int | None = Field(None, ge=0, description="memory in GiB (default: the pool's at maxNodes)")


class Kueue(Model):
    enabled: bool = Field(True, description="install Kueue, with a ClusterQueue per GPU pool")
    queues: dict[str, KueueQueue] = Field({}, description="quota overrides, by GPU pool name")


class NodePrice(Model):
    """USD per hour of a machine type (with the GPUs it carries) or of one attached GPU (N1's T4s)."""

    on_demand: float | None = Field(None, ge=0, description="on-demand USD per hour")
    spot: float | None = Field(None, ge=0, description="Spot USD per hour")
    flex_start: float | None = Field(
        None, ge=0, description="flex-start USD per hour (default: the on-demand price, an upper bound)"
    )


class Addons(Model):
    kuberay: KubeRay = Field(KubeRay(), description="the KubeRay operator")
    kueue: Kueue = Field(Kueue(), description="Kueue job queueing")
    monitoring: bool = Field(True, description="Managed Prometheus scraping of Ray heads, workers and the operator")
    gpu_driver_version: str = Field(
        "latest",
        pattern=r"^(default|latest|[0-9]+\.[0-9]+(\.[0-9]+)?)$",
        description="NVIDIA driver that GKE's installer puts on dra pools: default, latest or x.y.z (must suit the"
        " rayImage's CUDA; device-plugin pools get GKE's latest)",
    )


# The oldest NVIDIA driver branch each CUDA major version runs on (NVIDIA's CUDA release notes:
# CUDA 12.x with minor version compatibility from 525, CUDA 13.0 from 580).
CUDA_MIN_DRIVER = {12: 525, 13: 580}
ARTIFACT_REGISTRY_DOCKER = "docker.pkg.dev"  # Artifact Registry's Docker hosts: <location>-docker.pkg.dev
# rayproject/ray-llm tags: <ray version>-py<python>-cu<cuda>, optionally pinned by digest.
RAY_IMAGE_TAG = re.compile(
    r"^(?P<repository>[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9._-]+)*)"
    r":(?P<ray>\d+\.\d+\.\d+)-py(?P<python>\d+)-cu(?P<cuda>\d{3,4})(?P<digest>@sha256:[0-9a-f]{64})?$"
)


class RayImage(str):
    """A Ray image reference whose tag says its Ray and CUDA versions."""

    @property
    def parts(self) -> re.Match:
        return RAY_IMAGE_TAG.fullmatch(self)

    @property
    def ray_version(self) -> str:
        return self.parts["ray"]

    @property
    def cuda(self) -> tuple[int, int]:
        digits = self.parts["cuda"]
        return int(digits[:-1]), int(digits[-1])


def _ray_image(image: str) -> RayImage:
    match = RAY_IMAGE_TAG.fullmatch(image)
    if not match:
        raise ValueError(
            f"{image!r} is not a Ray image tagged <ray version>-py<python>-cu<cuda> (e.g. {RAY_IMAGE}), optionally"
            " pinned with @sha256:<digest>"
        )
    if match["ray"] != RAY:
        raise ValueError(f"{image} runs Ray {match['ray']}; the payloads are built and tested with Ray {RAY}")
    if int(match["cuda"][:-1]) not in CUDA_MIN_DRIVER:
        raise ValueError(f"{image}: CUDA {match['cuda']} is not one of the CUDA versions rayplane knows")
    return RayImage(image)


class PlatformStack(Model):
    """A platform stack per environment: network, cluster, GPU node pools, add-ons."""

    kind: Literal["platform"] = Field(description="`platform`: this stack builds a cluster")
    project: str = Field(alias="gcp:project", pattern=PROJECT, description="the GCP project (the provider's key)")
    prefix: Name(24) = Field(
        # The node service account id is "<prefix>-nodes" and GCP caps those at 30 characters.
        description="prefix of every logical and explicit physical name (the cluster is named after it)"
    )
    cluster: Cluster = Field(description="the GKE cluster")
    network: Network = Field(Network(), description="the VPC's ranges")
    node_pools: list[GpuNodePool] = Field([], description="GPU node pools")
    gpu_profiles: list[GpuProfile] = Field([], description="GPU profiles that team stacks claim GPUs with (dra pools)")
    ladders: list[Ladder] = Field(
        [], description="capacity ladders: pools tried in order, e.g. reservation, on-demand, flex-start, Spot"
    )
    addons: Addons = Field(Addons(), description="cluster add-ons")
    tenants: list[Tenant] = Field(
        [], description="the teams this platform serves, and what each team stack may use (its grant)"
    )
    pricing: dict[str, NodePrice] = Field(
        {},
        description="machine type or attached accelerator -> USD per hour, over the built-in estimates (e.g."
        " your negotiated rates); only for the render's cost summary",
    )
    image_mirror: bool = Field(
        True,
        description="pull a Docker Hub rayImage through an Artifact Registry remote repository in the cluster's region"
        " (`<prefix>-dockerhub`): cached in the region, clear of Docker Hub's pull limits, and eligible for GKE's"
        " image streaming (docs/capacity.md, Cold start)",
    )
    alerting: Alerts = Field(
        Alerts(),
        description="the platform team's receivers: cluster-wide alerts, and those of tenants that name none",
    )
    secrets: dict[str, str] = Field(
        {},
        description="Pulumi secrets only (`pulumi config set --secret --path 'secrets.<name>'`): the receivers' URLs"
        " and keys",
    )
    ray_image: Annotated[str, AfterValidator(_ray_image)] = Field(
        RAY_IMAGE,
        description="the image of every Ray head and worker: `<repository>:<ray>-py<python>-cu<cuda>[@sha256:...]`;"
        " its Ray version must be the payloads' and its CUDA must suit addons.gpuDriverVersion",
    )

    @property
    def workload_bucket(self) -> str:
        return f"{self.project}-{self.prefix}-workloads"

    @property
    def mirror_repository(self) -> str:
        return f"{self.prefix}-dockerhub"

    @property
    def pulled_ray_image(self) -> str:
        """rayImage as the nodes pull it: through the mirror if it is Docker Hub's and mirrored."""
        image = self.ray_image.removeprefix("docker.io/").removeprefix("index.docker.io/")
        repository = RayImage(image).parts["repository"]
        host = repository.split("/")[0]
        registry = "/" in repository and ("." in host or ":" in host or host == "localhost")  # Docker's own rule
        if not self.image_mirror or registry:
            return self.ray_image
        image = image if "/" in repository else f"library/{image}"
        return f"{self.cluster.region}-{ARTIFACT_REGISTRY_DOCKER}/{self.project}/{self.mirror_repository}/{image}"

    @property
    def dra_pools(self) -> list[GpuNodePool]:
        return [pool for pool in self.node_pools if pool.gpu_mode == "dra"]

    def profile_pools(self, profile: GpuProfile) -> list[GpuNodePool]:
        """The pools that can satisfy `profile` (restricted to profile.pools when given), a ladder's in its order."""
        candidates = [p for p in self.node_pools if not profile.pools or p.name in profile.pools]
        fit = [pool for pool in candidates if profile.unfit(pool) is None]

        def rank(pool: GpuNodePool) -> int:
            ladder = self.ladder_of(pool.name)
            return ladder.pools.index(pool.name) if ladder else 0

        return sorted(fit, key=rank)

    @model_validator(mode="after")
    def _cross_checks(self) -> "PlatformStack":
        errors = []
        if len(self.workload_bucket) > 63:
            errors.append(f"prefix: bucket name {self.workload_bucket!r} is longer than 63 characters")
        seen = set()
        for i, pool in enumerate(self.node_pools):
            path = f"nodePools[{i}]"
            if pool.name in seen or pool.name == SYSTEM_POOL:
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
                elif error := location_error(zone):
                    errors.append(f"{path}.zones[{j}]: {error}")
            zones = len(pool.zones or zones_of(self.cluster.location))
            if pool.autoscaling.max_nodes > GKE_MAX_NODES_PER_ZONE * zones:
                errors.append(
                    f"{path}.autoscaling.maxNodes: {pool.autoscaling.max_nodes} is above GKE's"
                    f" {GKE_MAX_NODES_PER_ZONE} nodes per zone for the pool's {zones} zone(s)"
                )
            if pool.gpu_mode == "dra" and self.cluster.minor < MIN_DRA_VERSION:
                errors.append(
                    f"cluster.kubernetesVersion: {path} uses gpuMode dra, which needs Kubernetes >= "
                    f"{'.'.join(map(str, MIN_DRA_VERSION))}, got {self.cluster.kubernetes_version}"
                )
        errors += self._profile_errors() + self._ladder_errors() + self._kueue_errors() + self._driver_errors()
        device_plugin = {pool.name for pool in self.node_pools if pool.gpu_mode == "device-plugin"}
        errors += registry_errors(self.tenants, self.prefix, {p.name for p in self.gpu_profiles}, device_plugin)
        errors += alerts_errors(self.alerting, "alerting", self.secrets)
        if not self.addons.monitoring and (
            self.alerting.receivers() or any(t.alerts.receivers() for t in self.tenants)
        ):
            errors.append("alerting: receivers are set but addons.monitoring is off: no rule would reach them")
        for i, tenant in enumerate(self.tenants):
            errors += alerts_errors(tenant.alerts, f"tenants[{i}].alerts", self.secrets)
        priced = {pool.machine_type for pool in self.node_pools} | {pool.accelerator for pool in self.node_pools}
        errors += [f"pricing.{key}: no GPU node pool uses it" for key in self.pricing if key not in priced]
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

    def ladder_of(self, pool: str) -> Ladder | None:
        return next((ladder for ladder in self.ladders if pool in ladder.pools), None)

    def _ladder_errors(self) -> list[str]:
        """Pools of one ladder each, alike in what a pod asks of them; profiles inside one ladder or none
        (a pod selects one ComputeClass; GKE associates a node pool with one)."""
        errors, pools, seen = [], {pool.name: pool for pool in self.node_pools}, {}
        for i, ladder in enumerate(self.ladders):
            path = f"ladders[{i}]"
            if ladder.name in {other.name for other in self.ladders[:i]}:
                errors.append(f"{path}.name: {ladder.name!r} is already used by another ladder")
            for j, name in enumerate(ladder.pools):
                if name not in pools:
                    errors.append(f"{path}.pools[{j}]: no node pool named {name!r}")
                elif name in seen:
                    errors.append(f"{path}.pools[{j}]: {name} is already in ladder {seen[name]} (a pool has one class)")
                seen.setdefault(name, ladder.name)
            kinds = {(pools[n].accelerator, pools[n].gpu_mode) for n in ladder.pools if n in pools}
            if len(kinds) > 1:
                found = ", ".join(
                    f"{n}: {pools[n].accelerator} {pools[n].gpu_mode}" for n in ladder.pools if n in pools
                )
                errors.append(f"{path}.pools: a ladder's pools offer one GPU the same way; got {found}")
        for i, profile in enumerate(self.gpu_profiles):
            classes = {seen.get(pool.name) for pool in self.profile_pools(profile)}
            if len(classes) > 1:
                errors.append(
                    f"gpuProfiles[{i}]: its pools are in ladders {sorted(c or '(none)' for c in classes)}; a pod can"
                    " select one ComputeClass: set gpuProfiles[].pools within one ladder, or outside all"
                )
        return errors

    def _driver_errors(self) -> list[str]:
        """The Ray image's CUDA must run on the NVIDIA driver the dra pools get."""
        if not self.dra_pools:
            return []
        image, driver = RayImage(self.ray_image), self.addons.gpu_driver_version
        major, minor = image.cuda
        needed = CUDA_MIN_DRIVER[major]
        problem = None
        if driver == "default" and needed > min(CUDA_MIN_DRIVER.values()):
            problem = "'default' installs GKE's default driver branch, which can be older: set latest or a version"
        elif driver not in ("default", "latest") and int(driver.split(".")[0]) < needed:
            problem = f"got {driver}"
        if problem is None:
            return []
        return [
            f"addons.gpuDriverVersion: rayImage {image} is built for CUDA {major}.{minor}, which needs NVIDIA driver"
            f" >= {needed}; {problem}"
        ]

    def _kueue_errors(self) -> list[str]:
        kueue, pools = self.addons.kueue, {pool.name: pool for pool in self.node_pools}
        queued = [(i, pool) for i, pool in enumerate(self.node_pools) if pool.queued]
        if not kueue.enabled:
            return [
                f"nodePools[{i}].queued: its nodes come only through Kueue: turn on addons.kueue" for i, _ in queued
            ]
        errors = [
            f"nodePools[{i}].queued: GKE adds a queued pool's nodes only for ProvisioningRequests, never for a"
            f" ComputeClass: take it out of ladder {ladder.name}"
            for i, pool in queued
            if (ladder := self.ladder_of(pool.name))
        ]
        errors += [
            f"addons.kueue.queues.{name}: no GPU node pool named {name!r}" for name in kueue.queues if name not in pools
        ]
        for i, pool in enumerate(self.node_pools):
            given = kueue.queues.get(pool.name, KueueQueue())
            if machine_shape(pool.machine_type) is None and (given.cpu is None or given.memory_gib is None):
                errors.append(
                    f"nodePools[{i}].machineType: the size of {pool.machine_type} is unknown; set"
                    f" addons.kueue.queues.{pool.name}.cpu and memoryGib"
                )
        if machine_shape(self.cluster.system_pool.machine_type) is None:
            errors.append(
                f"cluster.systemPool.machineType: the size of {self.cluster.system_pool.machine_type} is unknown"
            )
        return errors
