"""rayplane: one program for platform and team stacks; the stack config's `kind` says which."""

import pulumi

from components import addons, capacity, config, contract
from components.addons.kueue import Kueue
from components.cluster import Cluster
from components.conventions import GATEWAY_CLASS, TEAM_SERVICE_ACCOUNT
from components.network import Network
from components.node_pools import GpuNodePool
from components.payload import PayloadArchive
from components.ray_workloads import RayWorkloads
from components.storage import WorkloadBucket
from components.team import Team
from components.team_identity import TeamIdentity
from components.team_network import TeamNetwork
from components.versions import KUBERAY


def platform(cfg: config.PlatformStack) -> None:
    network = Network(cfg.prefix, cfg.cluster.region, cfg.network, cfg.cluster.gateway_api)
    cluster = Cluster(cfg.prefix, cfg.project, cfg.cluster, network)
    pools = [GpuNodePool(cfg.prefix, pool, cluster) for pool in cfg.node_pools]
    bucket = WorkloadBucket(cfg.prefix, cfg.workload_bucket, cfg.cluster.region)
    installed = addons.install(cfg, pulumi.ResourceOptions(provider=cluster.provider))
    contract.export(
        cfg,
        cluster.kubeconfig,
        cluster_name=cluster.cluster.name,
        cluster_location=cluster.cluster.location,
        node_service_account=cluster.node_service_account.email,
        workload_bucket=bucket.bucket.name,
        node_pool_names=[pool.node_pool.name for pool in pools],
        kuberay_version=KUBERAY,
        gateway_class_name=GATEWAY_CLASS if cfg.cluster.gateway_api else None,
        gateway_source_ranges=network.gateway_source_ranges,
        kueue_cluster_queues=installed[Kueue].queues if Kueue in installed else {},
    )
    pulumi.export("capacity", capacity_values(capacity.platform(cfg)))


def team(cfg: config.TeamStack) -> None:
    platform_stack = pulumi.StackReference(cfg.platform_stack)
    # The team's resources are built once the platform's exports are read and the team's config is
    # checked against them: an invalid config stops before anything of the team is registered.
    exports = contract.read(platform_stack, cfg.platform_stack)
    built = exports.apply(
        lambda platform: team_resources(cfg, platform, platform_stack.require_output(contract.KUBECONFIG))
    )
    for name in ("namespace", "gcpServiceAccount", "payloadUri", "capacity"):
        pulumi.export(name, built[name])


def capacity_values(report: capacity.PlatformCapacity | capacity.TeamCapacity) -> dict:
    """The stack output `capacity`; what the report warns about goes to `pulumi up`'s diagnostics."""
    for warning in report.warnings:
        pulumi.log.warn(warning)
    return report.model_dump(by_alias=True, mode="json")


def team_resources(
    cfg: config.TeamStack, platform: contract.PlatformExports, kubeconfig: pulumi.Output[str]
) -> pulumi.Output[dict]:
    contract.check(cfg, platform)
    report = capacity.team(cfg, platform)
    slice_ = Team(cfg, kubeconfig, platform)
    namespace = slice_.namespace.metadata["name"]
    identity = TeamIdentity(cfg, namespace, platform.workload_bucket, slice_.provider)
    TeamNetwork(cfg, platform, namespace, pulumi.ResourceOptions(provider=slice_.provider))
    payload = PayloadArchive(cfg.team.name, platform.workload_bucket)
    RayWorkloads(
        cfg,
        platform,
        namespace,
        payload.uri,
        TEAM_SERVICE_ACCOUNT,
        slice_.secret_name,
        pulumi.ResourceOptions(provider=slice_.provider, depends_on=[identity.service_account]),
    )
    return pulumi.Output.all(
        namespace=namespace,
        gcpServiceAccount=identity.gsa.email,
        payloadUri=payload.uri,
        capacity=capacity_values(report),
    )


cfg = config.load()
if isinstance(cfg, config.PlatformStack):
    platform(cfg)
else:
    team(cfg)
