"""A team's slice of a platform: namespace, quota, default limits, RBAC for its group, its secrets,
the ResourceClaimTemplates of the GPU profiles it uses and, under Kueue, its LocalQueues."""

import pulumi
import pulumi_kubernetes as k8s

from components.conventions import DEVICE_PLUGIN_GPU, DRA_QUOTA_GPU, KUEUE_API, TEAM_LABEL
from components.gpu_profiles import claim_template_spec
from components.plan import TeamPlan

READ = ["get", "list", "watch"]
# What the team's group may do in its own namespace, and nothing more. The built-in `edit` role is
# not it: KubeRay's chart roles do not aggregate into it, and Kueue's give it only read rights on
# ray.io objects, so `edit` cannot even list rayservices.
MEMBER_RULES = [
    # its RayServices, RayJobs and their RayClusters
    {
        "apiGroups": ["ray.io"],
        "resources": ["rayservices", "rayjobs", "rayclusters"],
        "verbs": [*READ, "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["ray.io"],
        "resources": ["rayservices/status", "rayjobs/status", "rayclusters/status"],
        "verbs": ["get"],
    },
    # their pods, logs and Services; the dashboard through `kubectl port-forward`
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "events"], "verbs": READ},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    # a RayJob's submitter Job (the driver's logs), and why a queued job waits
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": READ},
    {"apiGroups": ["kueue.x-k8s.io"], "resources": ["workloads", "localqueues"], "verbs": READ},
    # a Ray cluster's auth token: KubeRay's Secret named after the RayCluster (a generated name, so
    # no resourceNames); `get` by name only, no list
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
]


class Team(pulumi.ComponentResource):
    def __init__(self, plan: TeamPlan, kubeconfig: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        config = plan.config
        team = config.team
        super().__init__("rayplane:team:Team", team.name, None, opts)
        # The platform stack's kubeconfig (a secret output) drives everything in-cluster.
        self.provider = k8s.Provider(
            f"{team.name}-k8s", kubeconfig=kubeconfig, opts=pulumi.ResourceOptions(parent=self)
        )
        in_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.namespace = k8s.core.v1.Namespace(
            f"{team.name}-namespace",
            metadata={
                "name": team.namespace,
                "labels": {
                    TEAM_LABEL: team.name,
                    "app.kubernetes.io/managed-by": "pulumi",
                    # Ray pods need no privileges; refuse pods that ask for them.
                    "pod-security.kubernetes.io/enforce": "baseline",
                },
            },
            opts=in_cluster,
        )
        ns = self.namespace.metadata["name"]
        quota = team.quota
        k8s.core.v1.ResourceQuota(
            f"{team.name}-quota",
            metadata={"name": "team-quota", "namespace": ns},
            spec={
                "hard": {
                    "requests.cpu": str(quota.cpu),
                    "requests.memory": f"{quota.memory_gib}Gi",
                    f"requests.{DEVICE_PLUGIN_GPU}": str(quota.gpus),
                    DRA_QUOTA_GPU: str(quota.gpus),
                }
            },
            opts=in_cluster,
        )
        # Defaults for containers that state no resources (Ray pods always do).
        k8s.core.v1.LimitRange(
            f"{team.name}-limits",
            metadata={"name": "container-defaults", "namespace": ns},
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                        "default": {"memory": "2Gi"},
                    }
                ]
            },
            opts=in_cluster,
        )
        if team.group:
            role = k8s.rbac.v1.Role(
                f"{team.name}-member-role",
                metadata={"name": "team-member", "namespace": ns},
                rules=MEMBER_RULES,
                opts=in_cluster,
            )
            k8s.rbac.v1.RoleBinding(
                f"{team.name}-members",
                metadata={"name": "team-member", "namespace": ns},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata["name"]},
                subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team.group}],
                opts=in_cluster,
            )
        self.secret_name = f"{team.name}-secrets"
        if config.secrets:
            k8s.core.v1.Secret(
                f"{team.name}-secrets",
                metadata={"name": self.secret_name, "namespace": ns},
                string_data={key: pulumi.Output.secret(value) for key, value in config.secrets.items()},
                opts=in_cluster,
            )
        for name, profile in plan.claim_templates.items():
            k8s.resource.v1.ResourceClaimTemplate(
                f"{team.name}-{name}",
                metadata={"name": name, "namespace": ns},
                spec=claim_template_spec(profile),
                opts=in_cluster,
            )
        # One LocalQueue per GPU profile or pool that the team's queued jobs use, named after it.
        for name, cluster_queue in sorted(plan.local_queues.items()):
            k8s.apiextensions.CustomResource(
                f"{team.name}-{name}-queue",
                api_version=KUEUE_API,
                kind="LocalQueue",
                metadata={"name": name, "namespace": ns},
                spec={"clusterQueue": cluster_queue},
                opts=in_cluster,
            )
        self.register_outputs({"namespace": ns})
