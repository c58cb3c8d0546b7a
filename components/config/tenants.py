"""The platform's tenant registry: every team the platform serves and what it grants it. A team
stack may use only what its grant holds (components/checks.py `grant_errors`); the policy pack
checks the same in previews (policies/rules.py)."""

from pydantic import Field, field_validator

from components.config.alerting import Alerts
from components.config.base import PROJECT, Model, Name, Namespace
from components.config.team import Bucket, TeamQuota, team_namespace


class Tenant(Model):
    name: Name(24) = Field(description="the team: its team stack's team.name")
    stacks: list[str] = Field(
        min_length=1,
        description="the team stacks (Pulumi stack names) that act as this tenant: no other stack may use its grant",
    )
    namespace: str | None = Field(None, description="its namespace (default: the name); its team stack's must match")
    project: str | None = Field(
        None, pattern=PROJECT, description="the Google project its team stack runs in (default: the platform's)"
    )
    own_buckets: list[Bucket] = Field(
        [], description="its buckets (named <prefix>-*): its team stack may read, write and delete there"
    )
    read_buckets: list[Bucket] = Field(
        [], description="other buckets of this platform (<prefix>-*) its team stack may read, e.g. models"
    )
    gpu_profiles: list[str] = Field([], description="the platform's GPU profiles it may claim GPUs with")
    gpu_pools: list[str] = Field([], description="the platform's device-plugin GPU pools it may run workers on")
    quota: TeamQuota = Field(TeamQuota(), description="the most its namespace's ResourceQuota may hold")
    serve_clients: list[Namespace] = Field([], description="the namespaces it may let call its Serve apps")
    alerts: Alerts = Field(
        Alerts(), description="who hears the alerts of its namespace (default: the platform's receivers)"
    )

    @property
    def home(self) -> str:
        """Its namespace: `namespace`, or its name."""
        return self.namespace or self.name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str | None) -> str | None:
        return None if namespace is None else team_namespace(namespace)


def registry_errors(tenants: list[Tenant], prefix: str, profiles: set[str], pools: set[str]) -> list[str]:
    """A registry's errors: one name, namespace and owner per tenant, buckets of this platform
    only (so a dev platform cannot grant a prod bucket), profiles and device-plugin pools it has."""
    errors, names, namespaces, owners, stacks = [], {}, {}, {}, {}
    for i, tenant in enumerate(tenants):
        path, namespace = f"tenants[{i}]", tenant.home
        for j, stack in enumerate(tenant.stacks):
            if stack in stacks and stacks[stack] != i:
                errors.append(f"{path}.stacks[{j}]: {stack} already acts as tenants[{stacks[stack]}]")
            stacks.setdefault(stack, i)
        if tenant.name in names:
            errors.append(f"{path}.name: {tenant.name!r} is already tenants[{names[tenant.name]}]")
        names.setdefault(tenant.name, i)
        if namespace in namespaces:
            errors.append(f"{path}.namespace: {namespace!r} is already tenants[{namespaces[namespace]}]'s")
        namespaces.setdefault(namespace, i)
        for field, buckets in (("ownBuckets", tenant.own_buckets), ("readBuckets", tenant.read_buckets)):
            for j, bucket in enumerate(buckets):
                if not bucket.startswith(f"{prefix}-"):
                    errors.append(
                        f"{path}.{field}[{j}]: {bucket} is not this platform's (its buckets are named {prefix}-*)"
                    )
        for j, bucket in enumerate(tenant.own_buckets):
            if bucket in owners and owners[bucket] != i:
                errors.append(f"{path}.ownBuckets[{j}]: {bucket} is already tenants[{owners[bucket]}]'s")
            owners.setdefault(bucket, i)
        errors += [
            f"{path}.gpuProfiles[{j}]: no GPU profile {name!r} in gpuProfiles"
            for j, name in enumerate(tenant.gpu_profiles)
            if name not in profiles
        ]
        errors += [
            f"{path}.gpuPools[{j}]: no device-plugin GPU pool {name!r} in nodePools"
            for j, name in enumerate(tenant.gpu_pools)
            if name not in pools
        ]
    return errors
