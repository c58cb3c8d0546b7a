"""The platform -> team contract: what a platform stack exports and its team stacks read.

A platform stack exports `PlatformExports`, one stack output per field (camelCase), plus its
`kubeconfig` as a secret output of its own. A team stack reads them back through its
StackReference into the same model (`read`); its plan (components/plan.py) checks the team's
config against them (components/checks.py): a GPU profile or pool that the platform lacks is a
config error with the team's key path.
"""

import pulumi
from pydantic import ConfigDict, Field, ValidationError

from components.config import ConfigError, GpuClaim
from components.config.alerting import Alerts
from components.config.base import Model, key_path
from components.config.platform import AcceleratorType, GpuMode, Provisioning
from components.config.tenants import Tenant

KUBECONFIG = "kubeconfig"  # secret: team stacks build their Kubernetes provider from it


class Export(Model):
    # A platform may export more than this version of rayplane knows: team stacks ignore the rest.
    model_config = ConfigDict(extra="ignore")


class GpuPoolExport(Export):
    name: str = Field(description="the pool's name in the platform config")
    node_pool_name: str = Field(description="GKE's name of the node pool")
    accelerator: AcceleratorType = Field(description="GKE accelerator type")
    gpus_per_node: int = Field(description="GPUs per node")
    machine_type: str = Field(description="machine type")
    gpu_mode: GpuMode = Field(description="dra or device-plugin")
    provisioning: Provisioning = Field(description="how its VMs are obtained: on-demand, spot, flex-start, reservation")
    compute_class: str | None = Field(None, description="the ladder (GKE ComputeClass) it is in, if any")
    queued: bool = Field(False, description="queued provisioning: nodes only for jobs Kueue admits")
    image_cached: bool = Field(False, description="its nodes start the Ray image from a secondary boot disk")
    zones: list[str] = Field(description="zones of its nodes ([]: the cluster's)")
    min_nodes: int = Field(description="fewest nodes (autoscaling, all zones)")
    max_nodes: int = Field(description="most nodes (autoscaling, all zones)")
    spare_nodes: int = Field(0, description="nodes kept up and idle for the next replicas")
    node_price: float | None = Field(None, description="estimated USD per hour of a node, as the pool is provisioned")

    @property
    def gpu_hour_price(self) -> float | None:
        return None if self.node_price is None else self.node_price / self.gpus_per_node


class GpuProfileExport(GpuClaim):
    """A GPU profile as team stacks see it: the claim, and the pools it resolved to."""

    model_config = ConfigDict(extra="ignore")

    eligible_pools: list[str] = Field(description="the GPU pools whose nodes can satisfy a claim of the profile")


class TenantExport(Tenant):
    """A tenant as team stacks see it: its grant, with namespace and project resolved."""

    model_config = ConfigDict(extra="ignore")

    namespace: str = Field(description="its namespace")
    project: str = Field(description="the Google project its team stack runs in")
    alerts: Alerts = Field(Alerts(), exclude=True, description="the platform's alert routing: not exported")


class PlatformExports(Export):
    project: str = Field(description="the GCP project")
    cluster_name: str = Field(description="the GKE cluster")
    cluster_location: str = Field(description="its region or zone")
    kubernetes_version: str = Field(description="the minimum Kubernetes version of its control plane")
    node_service_account: str = Field(description="the nodes' GCP service account")
    system_machine_type: str = Field(description="the machine type of the system pool, where Ray heads run")
    gpu_node_pools: list[GpuPoolExport] = Field(description="the GPU node pools")
    gpu_profiles: list[GpuProfileExport] = Field(description="the GPU profiles teams can claim GPUs with")
    kuberay_version: str = Field(description="the KubeRay operator's version")
    gateway_class_name: str | None = Field(None, description="the GatewayClass for incremental upgrades, if any")
    gateway_source_ranges: list[str] = Field(
        [], description="where the Gateway's proxies and health checks reach pods from (with the Gateway API)"
    )
    rbac_security_group: str | None = Field(None, description="the Google Groups RBAC security group, if any")
    kueue_cluster_queues: dict[str, str] = Field({}, description="GPU pool -> its Kueue ClusterQueue")
    workload_bucket: str = Field(description="the bucket of payload archives")
    ray_image: str = Field(
        description="the image of every Ray head and worker, by its tag in the platform's repository (teams run it"
        " by digest)"
    )
    tenants: list[TenantExport] = Field(description="the teams this platform serves, each with its grant")

    def pool(self, name: str) -> GpuPoolExport | None:
        return next((pool for pool in self.gpu_node_pools if pool.name == name), None)

    def profile(self, name: str) -> GpuProfileExport | None:
        return next((profile for profile in self.gpu_profiles if profile.name == name), None)

    def tenant(self, name: str) -> tuple[int, TenantExport] | None:
        """The tenant named `name` and its index in the platform's rayplane:tenants."""
        return next(((i, tenant) for i, tenant in enumerate(self.tenants) if tenant.name == name), None)


# -- the platform's side


def export(exports: pulumi.Output[PlatformExports], kubeconfig: pulumi.Output[str]) -> None:
    """Export the contract from a platform stack (its plan builds it: PlatformPlan.exports)."""
    values = exports.apply(lambda e: e.model_dump(by_alias=True, mode="json", exclude_none=True))
    pulumi.export(KUBECONFIG, kubeconfig)
    for field in PlatformExports.model_fields.values():
        pulumi.export(field.alias, values.apply(lambda v, key=field.alias: v.get(key)))


# -- the team's side


def check_reference(platform_stack: str) -> None:
    """A team stack must not read itself (`<organization>/<project>/<stack>` of this very stack)."""
    _, project, stack = platform_stack.split("/")
    if (project, stack) == (pulumi.get_project(), pulumi.get_stack()):
        raise ConfigError(
            [f"platformStack: {platform_stack} is this stack itself; name the platform stack this team runs on"]
        )


def parse(outputs: dict, platform_stack: str) -> PlatformExports:
    """A platform stack's outputs (by export name), typed; a missing or malformed one is a config error."""
    required = {f.alias for f in PlatformExports.model_fields.values() if f.is_required()}
    if not required & {name for name, v in outputs.items() if v is not None}:
        raise ConfigError(
            [
                f"platformStack: {platform_stack} exports none of a platform stack's outputs: it is a team stack or"
                " was never deployed; name the platform stack this team runs on"
            ]
        )
    try:
        return PlatformExports.model_validate({name: v for name, v in outputs.items() if v is not None})
    except ValidationError as exc:
        errors = [
            f"platformStack: {platform_stack} has no output {key_path(e['loc'])}"
            if e["type"] == "missing"
            else f"platformStack: {platform_stack} output {key_path(e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        errors.append(f"platformStack: run `pulumi up` on {platform_stack} with this version of rayplane first")
        raise ConfigError(errors) from None


def read(platform: pulumi.StackReference, platform_stack: str) -> pulumi.Output[PlatformExports]:
    """The platform stack's exports through its StackReference, typed."""
    names = [field.alias for field in PlatformExports.model_fields.values()]
    values = pulumi.Output.all(*[platform.get_output(name) for name in names])
    return values.apply(lambda v: parse(dict(zip(names, v, strict=True)), platform_stack))
