"""rayplane: one program for platform and team stacks; the stack config's `kind` says which."""

import pulumi

from components import config, kuberay
from components.cluster import GATEWAY_CLASS, Cluster
from components.dra import NvidiaDra
from components.gpu_profiles import driver_feature_gates
from components.kueue import Kueue
from components.monitoring import RayMonitoring
from components.network import Network
from components.node_pools import GpuNodePool
from components.payload import PayloadArchive
from components.ray_workloads import RayWorkloads
from components.storage import WorkloadBucket
from components.team import Team, platform_view
from components.team_identity import KSA, TeamIdentity


def platform(cfg: config.PlatformStack) -> None:
    network = Network(cfg.prefix, cfg.cluster.region, cfg.network)
    cluster = Cluster(cfg.prefix, cfg.project, cfg.cluster, network)
    pools = [GpuNodePool(cfg.prefix, pool, cluster) for pool in cfg.node_pools]
    bucket = WorkloadBucket(cfg.prefix, cfg.workload_bucket, cfg.cluster.region)

    # Cluster add-ons, all through the cluster's own provider. Order: the NVIDIA drivers and the
    # KubeRay operator need only the cluster; Kueue comes after the operator (its Ray integration
    # looks for the Ray CRDs) and its queues after its webhooks; monitoring after the operator.
    in_cluster = pulumi.ResourceOptions(provider=cluster.provider)
    if cfg.dra_pools:
        NvidiaDra(cfg.prefix, cfg.addons.gpu_driver_version, driver_feature_gates(cfg.gpu_profiles), in_cluster)
    operator = kuberay.KubeRayOperator(cfg.prefix, cfg.addons.kuberay, in_cluster)
    queues = Kueue(cfg, [operator.release], in_cluster).queues if cfg.addons.kueue.enabled else {}
    if cfg.addons.monitoring:
        RayMonitoring(cfg.prefix, operator, in_cluster)

    profiles = [
        {**p.model_dump(by_alias=True, exclude_none=True), "pools": [pool.name for pool in cfg.profile_pools(p)]}
        for p in cfg.gpu_profiles
    ]
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("project", cfg.project)
    pulumi.export("clusterName", cluster.cluster.name)
    pulumi.export("clusterLocation", cluster.cluster.location)
    pulumi.export("kubernetesVersion", cfg.cluster.kubernetes_version)
    pulumi.export("nodeServiceAccount", cluster.node_service_account.email)
    pulumi.export("gpuNodePools", pulumi.Output.all(*[pool.export() for pool in pools]))
    pulumi.export("gpuProfiles", profiles)
    pulumi.export("kuberayVersion", kuberay.VERSION)
    pulumi.export("gatewayClassName", GATEWAY_CLASS if cfg.cluster.gateway_api else None)
    pulumi.export("rbacSecurityGroup", cfg.cluster.rbac_security_group)
    pulumi.export("kueueClusterQueues", queues)
    pulumi.export("workloadBucket", bucket.bucket.name)


def team(cfg: config.TeamStack) -> None:
    platform_stack = pulumi.StackReference(cfg.platform_stack)
    view = platform_view(cfg, platform_stack)
    slice_ = Team(cfg, platform_stack, view)
    namespace = slice_.namespace.metadata["name"]
    bucket = platform_stack.require_output("workloadBucket")
    identity = TeamIdentity(cfg, namespace, bucket, slice_.provider)
    payload = PayloadArchive(f"{cfg.team.name}-payload", bucket)
    RayWorkloads(
        cfg,
        view,
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
