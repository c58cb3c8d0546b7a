"""rayplane: one program for platform and team stacks; the stack config's `kind` says which."""

import pulumi

from components import addons, config, contract
from components.addons.kuberay import VERSION as KUBERAY_VERSION
from components.addons.kueue import Kueue
from components.cluster import GATEWAY_CLASS, Cluster
from components.network import Network
from components.node_pools import GpuNodePool
from components.payload import PayloadArchive
from components.ray_workloads import RayWorkloads
from components.storage import WorkloadBucket
from components.team import Team
from components.team_identity import KSA, TeamIdentity


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
        kuberay_version=KUBERAY_VERSION,
        gateway_class_name=GATEWAY_CLASS if cfg.cluster.gateway_api else None,
        kueue_cluster_queues=installed[Kueue].queues if Kueue in installed else {},
    )


def team(cfg: config.TeamStack) -> None:
    platform_stack = pulumi.StackReference(cfg.platform_stack)
    exports = contract.read(platform_stack, cfg.platform_stack)
    checked = exports.apply(lambda e: contract.check(cfg, e) or e)
    slice_ = Team(cfg, platform_stack.require_output(contract.KUBECONFIG), checked)
    namespace = slice_.namespace.metadata["name"]
    bucket = exports.apply(lambda e: e.workload_bucket)
    identity = TeamIdentity(cfg, namespace, bucket, slice_.provider)
    payload = PayloadArchive(f"{cfg.team.name}-payload", bucket)
    RayWorkloads(
        cfg,
        checked,
        namespace,
        payload.uri,
        KSA,
        slice_.secret_name,
        pulumi.ResourceOptions(provider=slice_.provider, depends_on=[identity.service_account]),
    )
    pulumi.export("namespace", namespace)
    pulumi.export("gcpServiceAccount", identity.gsa.email)
    pulumi.export("payloadUri", payload.uri)


cfg = config.load()
if isinstance(cfg, config.PlatformStack):
    platform(cfg)
else:
    team(cfg)
