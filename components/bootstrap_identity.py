"""How CI signs in to Google: a Workload Identity pool with a GitHub provider that admits only this
repository's tokens, and per environment a preview and a deploy service account, each usable only
from its GitHub environment (components/ci.py says which, and why each role)."""

import pulumi
import pulumi_gcp as gcp

from components import ci
from components.bootstrap_state import StateBackend
from components.config.bootstrap import BootstrapStack

# Kubernetes Secrets: not in any read-only predefined role, and a refresh of a team stack reads its
# Secret. A preview identity decrypts the stacks' secrets anyway, so it reads no more than it can.
SECRET_READER = ("container.secrets.get", "container.secrets.list")


class CiIdentity(pulumi.ComponentResource):
    def __init__(
        self,
        config: BootstrapStack,
        repository_id: pulumi.Input[int],
        state: StateBackend,
        apis: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:bootstrap:CiIdentity", "ci", None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=apis)
        self.pool = gcp.iam.WorkloadIdentityPool(
            ci.POOL,
            workload_identity_pool_id=ci.POOL,
            project=config.project,
            display_name="GitHub Actions",
            opts=child,
        )
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            ci.POOL,
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=ci.POOL,
            project=config.project,
            display_name=config.github.repository[:32],
            attribute_mapping=ci.ATTRIBUTE_MAPPING,
            attribute_condition=pulumi.Output.from_input(repository_id).apply(
                lambda repo_id: ci.attribute_condition(config, repo_id)
            ),
            oidc={"issuer_uri": ci.ISSUER},
            opts=child,
        )
        secret_readers = {
            env.project: gcp.projects.IAMCustomRole(
                f"{env.name}-secret-reader",
                project=env.project,
                role_id="rayplaneCiSecretReader",
                title="rayplane CI: read Kubernetes Secrets",
                permissions=list(SECRET_READER),
                opts=child,
            )
            for env in config.environments
        }
        self.emails: dict[str, pulumi.Output[str]] = {}
        for identity in ci.identities(config):
            name = identity.account_id
            account = gcp.serviceaccount.Account(
                name,
                account_id=name,
                project=config.project,
                display_name=f"CI {identity.role} of {identity.project} (GitHub environment {identity.environment})",
                opts=child,
            )
            member = account.email.apply(lambda email: f"serviceAccount:{email}")
            gcp.serviceaccount.IAMMember(
                f"{name}-github",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=self.pool.name.apply(lambda pool, env=identity.environment: ci.principal_set(pool, env)),
                opts=child,
            )
            for role in identity.project_roles:
                gcp.projects.IAMMember(
                    f"{name}-{role.removeprefix('roles/')}",
                    project=identity.project,
                    role=role,
                    member=member,
                    condition=ci.GRANTS_ONLY_PLATFORM if role == "roles/resourcemanager.projectIamAdmin" else None,
                    opts=child,
                )
            if identity.role == ci.PREVIEW:
                gcp.projects.IAMMember(
                    f"{name}-secret-reader",
                    project=identity.project,
                    role=secret_readers[identity.project].name,
                    member=member,
                    opts=child,
                )
            gcp.storage.BucketIAMMember(
                f"{name}-state",
                bucket=state.buckets[identity.of].name,
                role=identity.state_role,
                member=member,
                opts=child,
            )
            gcp.kms.CryptoKeyIAMMember(
                f"{name}-secrets",
                crypto_key_id=state.keys[identity.of].id,
                role=identity.key_role,
                member=member,
                opts=child,
            )
            self.emails[identity.environment] = account.email
        self.register_outputs({"provider": self.provider.name, "serviceAccounts": self.emails})
