"""A team's slice of a platform: its namespace (and, later, its quotas, identity and workloads)."""

import pulumi
import pulumi_kubernetes as k8s

from components.config import TeamStack


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
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.register_outputs({"namespace": self.namespace.metadata["name"]})
