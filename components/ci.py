"""Who CI acts as: per environment a preview identity (reads) and a deploy identity (changes), each
usable only from its GitHub environment, deploys only from the main branch; the roles each holds
and why. Each environment keeps its stacks' state in a bucket of its own and encrypts their secrets
with a key of its own, so no identity of one environment reads or writes another's. The bootstrap
stack builds them (components/bootstrap_*.py); the workflows, tools.changed and the runbook read the
same facts here."""

from dataclasses import dataclass

from components.cluster import NODE_ROLES
from components.config.bootstrap import BootstrapStack, Environment
from components.image import BUILDER_ROLES

POOL = "github"  # the Workload Identity pool, and its provider, CI signs in through
ISSUER = "https://token.actions.githubusercontent.com"
PREVIEW, DEPLOY = "preview", "deploy"

# The repository variable every workflow reads, and those each GitHub environment sets.
PROVIDER_VARIABLE = "GCP_WORKLOAD_IDENTITY_PROVIDER"
BACKEND_VARIABLE = "PULUMI_BACKEND_URL"
ACCOUNT_VARIABLE = "GCP_SERVICE_ACCOUNT"
REQUIRED_CHECK = "required"  # ci.yml's aggregate job: the one status check branch rules require

# APIs the bootstrap project serves: state, the secrets key, token exchange and impersonation.
BOOTSTRAP_APIS = (
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
)
# APIs every environment's stacks call (GKE needs logging and monitoring for its system components,
# and Workload Identity the credentials API to hand a team's pods its service account's tokens).
ENVIRONMENT_APIS = (
    "artifactregistry.googleapis.com",  # the Ray image's repository and the Docker Hub mirror
    "cloudbuild.googleapis.com",  # the Ray image's build (tools/image.py)
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "containerfilesystem.googleapis.com",  # GKE's image streaming
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
)

# What a deploy registers, and the predefined role that may manage it in the environment's project
# (tests/infra/test_bootstrap.py: every type an environment's stacks render is listed).
DEPLOY_ROLES = {
    "gcp:compute/network:Network": "roles/compute.networkAdmin",
    "gcp:compute/subnetwork:Subnetwork": "roles/compute.networkAdmin",
    "gcp:compute/router:Router": "roles/compute.networkAdmin",
    "gcp:compute/routerNat:RouterNat": "roles/compute.networkAdmin",
    "gcp:compute/firewall:Firewall": "roles/compute.securityAdmin",
    # Cluster and node pools; also every Kubernetes object, through the DNS endpoint.
    "gcp:container/cluster:Cluster": "roles/container.admin",
    "gcp:container/nodePool:NodePool": "roles/container.admin",
    "kubernetes": "roles/container.admin",
    "gcp:serviceaccount/account:Account": "roles/iam.serviceAccountAdmin",
    "gcp:serviceaccount/iAMMember:IAMMember": "roles/iam.serviceAccountAdmin",
    "gcp:storage/bucket:Bucket": "roles/storage.admin",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "roles/storage.admin",
    "gcp:storage/bucketObject:BucketObject": "roles/storage.admin",
    "gcp:monitoring/dashboard:Dashboard": "roles/monitoring.dashboardEditor",
    "gcp:artifactregistry/repository:Repository": "roles/artifactregistry.admin",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "roles/artifactregistry.admin",
    # The Ray image's build for a platform's `up` (tools/image.py), run as the platform's builder:
    # submitting it, gcloud's use of the project's APIs, and the build's log streamed into CI's.
    "image build": "roles/cloudbuild.builds.editor",
    "image build's API use": "roles/serviceusage.serviceUsageConsumer",
    "image build's log": "roles/logging.viewer",
    # Node pools run as the nodes' service account, the image's build as the builder: acting as them.
    "nodes": "roles/iam.serviceAccountUser",
    # The nodes' and the builder's project roles; conditioned below so that it can grant those only.
    "gcp:projects/iAMMember:IAMMember": "roles/resourcemanager.projectIamAdmin",
}
GRANTABLE_ROLES = tuple(sorted({*NODE_ROLES, *BUILDER_ROLES}))
GRANTS_ONLY_PLATFORM = {
    "title": "grants only the nodes' and the builder's roles",
    "expression": "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
    f".hasOnly([{', '.join(repr(role) for role in GRANTABLE_ROLES)}])",
}
# A preview reads everything a refresh reads: the resources (viewer, with the Kubernetes objects
# through the DNS endpoint), every IAM policy the stacks add to (security reviewer: buckets' and
# service accounts' too) and the payload archives' objects (not in viewer).
PREVIEW_ROLES = (
    "roles/viewer",
    "roles/container.viewer",
    "roles/iam.securityReviewer",
    "roles/storage.objectViewer",
)
# A preview takes no lock on DIY state and writes nothing there; an `up` locks, checkpoints, and
# encrypts new secrets. Reading secrets needs decryption only (the stack file's data key).
STATE_ROLES = {PREVIEW: "roles/storage.objectViewer", DEPLOY: "roles/storage.objectUser"}
KEY_ROLES = {PREVIEW: "roles/cloudkms.cryptoKeyDecrypter", DEPLOY: "roles/cloudkms.cryptoKeyEncrypterDecrypter"}


@dataclass(frozen=True)
class Identity:
    environment: str  # the GitHub environment a job names to act as this identity
    role: str  # PREVIEW or DEPLOY
    of: str  # the environment (bootstrap config) whose project, state and key it reads or changes
    project: str
    account_id: str  # its service account, in the bootstrap project
    project_roles: tuple[str, ...]
    state_role: str  # on its environment's state bucket
    key_role: str  # on its environment's secrets key

    @property
    def from_main_only(self) -> bool:
        return self.role == DEPLOY


def github_environment(env: Environment, role: str) -> str:
    return env.name if role == DEPLOY else f"{env.name}-{PREVIEW}"


def identities(config: BootstrapStack) -> list[Identity]:
    return [
        Identity(
            environment=github_environment(env, role),
            role=role,
            of=env.name,
            project=env.project,
            account_id=f"ci-{env.name}-{role}",
            project_roles=tuple(sorted(set(DEPLOY_ROLES.values()))) if role == DEPLOY else PREVIEW_ROLES,
            state_role=STATE_ROLES[role],
            key_role=KEY_ROLES[role],
        )
        for env in config.environments
        for role in (PREVIEW, DEPLOY)
    ]


def _cel_list(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def attribute_condition(config: BootstrapStack, repository_id: int | str) -> str:
    """The provider admits a token only from this repository (by its numeric id: a deleted and
    recreated repository of the same name is another one), from a job in one of CI's environments,
    and from the main branch when that environment deploys."""
    envs = identities(config)
    known = _cel_list(i.environment for i in envs)
    deploys = _cel_list(i.environment for i in envs if i.from_main_only)
    return (
        f"assertion.repository_id == '{repository_id}' && 'environment' in assertion"
        f" && assertion.environment in {known}"
        f" && (!(assertion.environment in {deploys}) || assertion.ref == 'refs/heads/{config.github.branch}')"
    )


# Tokens of jobs without an environment fail the condition; the mapping must not fail before it.
ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository_id": "assertion.repository_id",
    "attribute.environment": "'environment' in assertion ? assertion.environment : ''",
    "attribute.ref": "assertion.ref",
}


def principal_set(pool_name: str, environment: str) -> str:
    """Every token of one GitHub environment that the provider admitted (pool_name: the pool's
    `projects/<number>/locations/global/workloadIdentityPools/<id>`)."""
    return f"principalSet://iam.googleapis.com/{pool_name}/attribute.environment/{environment}"


def state_bucket(config: BootstrapStack, env: str | None = None) -> str:
    """The bootstrap stack's state bucket, or an environment's (`<bucket>-<environment>`)."""
    return config.state.bucket if env is None else f"{config.state.bucket}-{env}"


def key_name(config: BootstrapStack, env: str | None = None) -> str:
    """The bootstrap stack's secrets key, or an environment's (`<key>-<environment>`, same ring)."""
    return config.secrets_key.key if env is None else f"{config.secrets_key.key}-{env}"


def key_ring_id(config: BootstrapStack) -> str:
    key = config.secrets_key
    return f"projects/{config.project}/locations/{key.location}/keyRings/{key.key_ring}"


def secrets_provider(config: BootstrapStack, env: str | None = None) -> str:
    """What a stack file's `secretsprovider:` says: its environment's key (the bootstrap's own, None)."""
    return f"gcpkms://{key_ring_id(config)}/cryptoKeys/{key_name(config, env)}"


def backend_url(config: BootstrapStack, env: str | None = None) -> str:
    """Where `pulumi login` points for a stack of `env` (the bootstrap stack: None)."""
    return f"gs://{state_bucket(config, env)}"
