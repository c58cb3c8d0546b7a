"""A team's identity: a Kubernetes service account that is, through Workload Identity, a GCP
service account that reads its own payload archives, its model and data buckets, and writes its
write buckets (no keys anywhere)."""

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.config import TeamStack
from components.conventions import TEAM_SERVICE_ACCOUNT, team_prefix


class TeamIdentity(pulumi.ComponentResource):
    def __init__(
        self,
        config: TeamStack,
        namespace: pulumi.Input[str],
        workload_bucket: str,
        pool_project: str,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        team = config.team
        super().__init__("rayplane:team:TeamIdentity", f"{team.name}-identity", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.gsa = gcp.serviceaccount.Account(
            f"{team.name}-ray",
            account_id=f"{team.name}-ray",
            display_name=f"Ray workloads of team {team.name}",
            opts=child,
        )
        member = self.gsa.email.apply(lambda email: f"serviceAccount:{email}")
        gcp.serviceaccount.IAMMember(
            f"{team.name}-workload-identity",
            service_account_id=self.gsa.name,
            role="roles/iam.workloadIdentityUser",
            # The cluster's project holds the Workload Identity pool, whichever project the team runs in.
            member=pulumi.Output.concat(
                "serviceAccount:", pool_project, ".svc.id.goog[", namespace, f"/{TEAM_SERVICE_ACCOUNT}]"
            ),
            opts=child,
        )
        # The workload bucket holds every team's code: this team reads its own prefix only (an IAM
        # condition; the bucket has uniform bucket-level access, so no object ACL widens it).
        own_payloads = f"projects/_/buckets/{workload_bucket}/objects/{team_prefix(team.name)}"
        grants = [
            ("workloads", workload_bucket, "roles/storage.objectViewer", own_payloads),
            *((b, b, "roles/storage.objectViewer", None) for b in team.read_buckets),
            *((b, b, "roles/storage.objectUser", None) for b in team.write_buckets),  # read, write, delete
        ]
        for label, bucket, role, prefix in grants:
            gcp.storage.BucketIAMMember(
                f"{team.name}-{label}-{role.rsplit('.', 1)[-1].lower()}",
                bucket=bucket,
                role=role,
                member=member,
                condition=prefix
                and {
                    "title": f"{team.name} payloads",
                    "description": f"objects under {team_prefix(team.name)} only",
                    "expression": f'resource.name.startsWith("{prefix}")',
                },
                opts=child,
            )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{team.name}-ksa",
            metadata={
                "name": TEAM_SERVICE_ACCOUNT,
                "namespace": namespace,
                "annotations": {"iam.gke.io/gcp-service-account": self.gsa.email},
            },
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({"gcpServiceAccount": self.gsa.email})
