"""rayplane: one program for bootstrap, platform and team stacks; the stack config's `kind` says which.
config -> plan -> build: the validated config is resolved once into a plan (components/plan.py),
and the components render the plan."""

import pulumi

from components import addons, ci, config, contract, plan
from components.bootstrap_apis import ProjectApis
from components.bootstrap_github import GitHubRepository, connect
from components.bootstrap_identity import CiIdentity
from components.bootstrap_state import StateBackend
from components.cluster import Cluster
from components.dashboard import TeamDashboard
from components.ladders import CapacityLadder
from components.network import Network
from components.node_pools import GpuNodePool
from components.payload import PayloadArchive
from components.ray_workloads import RayWorkloads
from components.registry import ImageMirror, RayImages, by_digest
from components.spare import SpareNodes
from components.storage import WorkloadBucket
from components.team import Team
from components.team_identity import TeamIdentity
from components.team_monitoring import TeamMonitoring
from components.team_network import TeamNetwork


def bootstrap(cfg: config.BootstrapStack) -> None:
    apis = ProjectApis(cfg).services
    state = StateBackend(cfg, apis)
    github_provider, repository_id = connect(cfg)
    identity = CiIdentity(cfg, repository_id, state, apis)
    GitHubRepository(cfg, github_provider, identity.emails, identity.provider.name)
    environments = [env.name for env in cfg.environments]
    pulumi.export("backendUrls", {env: ci.backend_url(cfg, env) for env in environments})
    pulumi.export("secretsProviders", {env: ci.secrets_provider(cfg, env) for env in environments})
    pulumi.export("workloadIdentityProvider", identity.provider.name)
    pulumi.export("serviceAccounts", identity.emails)


def platform(cfg: config.PlatformStack) -> None:
    platform_plan = plan.platform(cfg)
    network = Network(cfg.prefix, cfg.cluster.region, cfg.network, cfg.cluster.gateway_api)
    cluster = Cluster(cfg.prefix, cfg.project, cfg.cluster, network)
    pools = [GpuNodePool(cfg.prefix, pool.config, pool.compute_class, cluster) for pool in platform_plan.pools]
    by_name = {pool.config.name: pool.node_pool.name for pool in pools}
    for ladder in cfg.ladders:
        ladder_pools = [by_name[name] for name in ladder.pools]
        CapacityLadder(cfg.prefix, ladder, ladder_pools, pulumi.ResourceOptions(provider=cluster.provider))
    if any(pool.spare_nodes for pool in cfg.node_pools):
        SpareNodes(platform_plan, pulumi.ResourceOptions(provider=cluster.provider))
    bucket = WorkloadBucket(cfg.prefix, cfg.workload_bucket, cfg.cluster.region)
    RayImages(cfg, bucket.bucket)
    if cfg.pulled_ray_image != cfg.ray_image:  # a Docker Hub base, mirrored for the image's build
        ImageMirror(cfg.prefix, cfg.mirror_repository, cfg.cluster.region)
    addons.install(platform_plan, pulumi.ResourceOptions(provider=cluster.provider))
    cloud = pulumi.Output.all(
        clusterName=cluster.cluster.name,
        clusterLocation=cluster.cluster.location,
        nodeServiceAccount=cluster.node_service_account.email,
        workloadBucket=bucket.bucket.name,
        nodePoolNames=[pool.node_pool.name for pool in pools],
        gatewaySourceRanges=network.gateway_source_ranges,
    )
    contract.export(cloud.apply(platform_plan.exports), cluster.kubeconfig)
    pulumi.export("capacity", capacity_values(platform_plan.capacity))


def team(cfg: config.TeamStack) -> None:
    contract.check_reference(cfg.platform_stack)
    platform_stack = pulumi.StackReference(cfg.platform_stack)
    # The team's resources are built once the platform's exports are read and the team's plan is
    # made against them: an invalid config stops before anything of the team is registered.
    exports = contract.read(platform_stack, cfg.platform_stack)
    built = exports.apply(
        lambda platform: team_resources(
            plan.team(cfg, by_digest(platform), pulumi.get_stack()), platform_stack.require_output(contract.KUBECONFIG)
        )
    )
    for name in ("namespace", "gcpServiceAccount", "payloadUri", "capacity"):
        pulumi.export(name, built[name])


def capacity_values(report) -> dict:
    """The stack output `capacity`; what the report warns about goes to `pulumi up`'s diagnostics."""
    for warning in report.warnings:
        pulumi.log.warn(warning)
    return report.model_dump(by_alias=True, mode="json")


def team_resources(team_plan: plan.TeamPlan, kubeconfig: pulumi.Output[str]) -> pulumi.Output[dict]:
    cfg = team_plan.config
    slice_ = Team(team_plan, kubeconfig)
    namespace = slice_.namespace.metadata["name"]
    identity = TeamIdentity(cfg, namespace, team_plan.workload_bucket, team_plan.platform_project, slice_.provider)
    TeamNetwork(team_plan, namespace, pulumi.ResourceOptions(provider=slice_.provider))
    TeamMonitoring(cfg, namespace, pulumi.ResourceOptions(provider=slice_.provider))
    TeamDashboard(
        cfg.team.name, cfg.team.namespace, team_plan.cluster_name, team_plan.platform_project, team_plan.capacity
    )
    payload = PayloadArchive(cfg.team.name, team_plan.workload_bucket)
    RayWorkloads(
        team_plan,
        namespace,
        payload.uri,
        slice_.secret_name,
        pulumi.ResourceOptions(provider=slice_.provider, depends_on=[identity.service_account]),
    )
    return pulumi.Output.all(
        namespace=namespace,
        gcpServiceAccount=identity.gsa.email,
        payloadUri=payload.uri,
        capacity=capacity_values(team_plan.capacity),
    )


cfg = config.load()
if isinstance(cfg, config.BootstrapStack):
    bootstrap(cfg)
elif isinstance(cfg, config.PlatformStack):
    platform(cfg)
else:
    team(cfg)
