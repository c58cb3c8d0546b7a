"""rayplane: one program for platform and team stacks; the stack config's `kind` says which."""

import pulumi

from components import config
from components.cluster import Cluster
from components.network import Network
from components.node_pools import GpuNodePool
from components.storage import WorkloadBucket
from components.team import Team


def platform(cfg: config.PlatformStack) -> None:
    network = Network(cfg.prefix, cfg.cluster.region, cfg.network)
    cluster = Cluster(cfg.prefix, cfg.project, cfg.cluster, network)
    pools = [GpuNodePool(cfg.prefix, pool, cluster) for pool in cfg.node_pools]
    bucket = WorkloadBucket(cfg.prefix, cfg.workload_bucket, cfg.cluster.region)

    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("project", cfg.project)
    pulumi.export("clusterName", cluster.cluster.name)
    pulumi.export("clusterLocation", cluster.cluster.location)
    pulumi.export("kubernetesVersion", cfg.cluster.kubernetes_version)
    pulumi.export("nodeServiceAccount", cluster.node_service_account.email)
    pulumi.export("gpuNodePools", pulumi.Output.all(*[pool.export() for pool in pools]))
    pulumi.export("workloadBucket", bucket.bucket.name)


def team(cfg: config.TeamStack) -> None:
    platform_stack = pulumi.StackReference(cfg.platform_stack)
    ns = Team(cfg, platform_stack)
    pulumi.export("namespace", ns.namespace.metadata["name"])


cfg = config.load()
if isinstance(cfg, config.PlatformStack):
    platform(cfg)
else:
    team(cfg)
