"""A team's slice of a platform: its namespace and the ResourceClaimTemplates of the GPU profiles
it uses (claims are namespaced); later its quotas, identity and workloads."""

import pulumi
import pulumi_kubernetes as k8s

from components.config import ConfigError, GpuProfile, TeamStack
from components.gpu_profiles import claim_template_spec


def platform_profile(exported: list[dict], name: str, index: int) -> GpuProfile:
    """A GPU profile exported by the platform stack, typed again on this side."""
    by_name = {profile["name"]: profile for profile in exported}
    if name not in by_name:
        known = ", ".join(by_name) or "none"
        raise ConfigError([f"team.gpuProfiles[{index}]: the platform stack has no GPU profile {name!r} ({known})"])
    return GpuProfile.model_validate(by_name[name])


class Team(pulumi.ComponentResource):
    def __init__(self, config: TeamStack, platform: pulumi.StackReference, opts: pulumi.ResourceOptions | None = None):
        team = config.team
        super().__init__("rayplane:team:Team", team.name, None, opts)
        # The platform stack's kubeconfig (a secret output) drives everything in-cluster.
        self.provider = k8s.Provider(
            f"{team.name}-k8s",
            kubeconfig=platform.require_output("kubeconfig"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.namespace = k8s.core.v1.Namespace(
            f"{team.name}-namespace",
            metadata={
                "name": team.namespace,
                "labels": {
                    "rayplane.dev/team": team.name,
                    "app.kubernetes.io/managed-by": "pulumi",
                    # Ray pods need no privileges; refuse pods that ask for them.
                    "pod-security.kubernetes.io/enforce": "baseline",
                },
            },
            opts=in_cluster,
        )
        profiles = platform.require_output("gpuProfiles")
        self.claim_templates = [
            k8s.resource.v1.ResourceClaimTemplate(
                f"{team.name}-{name}",
                metadata={"name": name, "namespace": self.namespace.metadata["name"]},
                spec=profiles.apply(
                    lambda exported, i=i, name=name: claim_template_spec(platform_profile(exported, name, i))
                ),
                opts=in_cluster,
            )
            for i, name in enumerate(team.gpu_profiles)
        ]
        self.register_outputs({"namespace": self.namespace.metadata["name"]})
