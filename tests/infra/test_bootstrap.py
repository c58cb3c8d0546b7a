"""The bootstrap stack: state and secrets key adopted and protected; CI's identities, each usable
only from its GitHub environment (deploys from main only), holding only its roles; every stack file
naming the key; the repository's environments and branch rules."""

import re

import celpy
import pytest
import yaml
from celpy import celtypes

from components import ci
from tests.infra.catalogue import Case, refused_with
from tests.infra.conftest import PLATFORM_STACKS, TEAM_STACKS, rendered
from tools import bootstrap as bootstrap_tool
from tools import changed
from tools import render as render_tool

BOOTSTRAP = "bootstrap"
REPOSITORY = "example-org/rayplane"
CEL = celpy.Environment()


def boot():
    return rendered(BOOTSTRAP)


def _evaluate(expression: str, activation: dict):
    try:
        return CEL.program(CEL.compile(expression)).evaluate(activation)
    except celpy.CELEvalError:
        return None


def impersonable(claims: dict) -> set[str]:
    """The service accounts a GitHub OIDC token with `claims` may act as, as Google's STS decides:
    the provider's attribute mapping, then its condition (an error rejects the token), then the
    principal and principal sets the mapped attributes name, against each account's bindings."""
    provider = boot().one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")["inputs"]
    pool = boot().one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
    pool_name = f"projects/{render_tool.PROJECT_NUMBER}/locations/global/workloadIdentityPools/{ci.POOL}"
    assert pool["inputs"]["workloadIdentityPoolId"] == ci.POOL
    assertion = celpy.json_to_cel(claims)
    attributes = {key: _evaluate(expr, {"assertion": assertion}) for key, expr in provider["attributeMapping"].items()}
    if any(value is None for value in attributes.values()):
        return set()
    if _evaluate(provider["attributeCondition"], {"assertion": assertion}) != celtypes.BoolType(True):
        return set()
    principals = {f"principal://iam.googleapis.com/{pool_name}/subject/{attributes['google.subject']}"}
    principals |= {
        f"principalSet://iam.googleapis.com/{pool_name}/{key}/{value}"
        for key, value in attributes.items()
        if key.startswith("attribute.")
    }
    return {
        r["inputs"]["serviceAccountId"].rsplit("/", 1)[1].split("@")[0]
        for r in boot().of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r["inputs"]["role"] == "roles/iam.workloadIdentityUser" and r["inputs"]["member"] in principals
    }


def token(environment: str | None, ref: str = "refs/heads/main", repository_id: int = render_tool.REPOSITORY_ID):
    """A GitHub Actions OIDC token's claims (docs.github.com: OpenID Connect reference)."""
    claims = {
        "repository": REPOSITORY,
        "repository_id": str(repository_id),
        "repository_owner_id": "1234",
        "ref": ref,
        "event_name": "pull_request" if ref.startswith("refs/pull/") else "push",
        "sub": f"repo:{REPOSITORY}:" + (f"environment:{environment}" if environment else f"ref:{ref}"),
    }
    return claims | ({"environment": environment} if environment else {})


PR = "refs/pull/7/merge"


@pytest.mark.parametrize(
    ("claims", "accounts"),
    [
        (token("dev"), {"ci-dev-deploy"}),
        (token("prod"), {"ci-prod-deploy"}),
        (token("dev-preview", PR), {"ci-dev-preview"}),
        (token("prod-preview", PR), {"ci-prod-preview"}),
        (token("prod-preview"), {"ci-prod-preview"}),  # the pre-gate preview and the drift check, on main
        # a pull request, or a branch that edits a workflow, naming a deploy environment
        (token("prod", PR), set()),
        (token("dev", PR), set()),
        (token("prod", "refs/heads/edit-the-workflow"), set()),
        (token("prod", "refs/tags/v1"), set()),
        # a job without an environment, an environment CI does not know, another repository
        (token(None), set()),
        (token(None, PR), set()),
        (token("staging"), set()),
        (token("prod", repository_id=render_tool.REPOSITORY_ID + 1), set()),
    ],
    ids=lambda v: v.get("environment", "none") + "@" + v["ref"] if isinstance(v, dict) else None,
)
def test_a_token_acts_only_as_its_environments_identity(claims, accounts):
    assert impersonable(claims) == accounts


def test_every_identity_is_reachable_from_its_environment_and_only_from_there():
    for identity in ci.identities(changed.bootstrap()):
        ref = "refs/heads/main" if identity.from_main_only else PR
        assert impersonable(token(identity.environment, ref)) == {identity.account_id}


def _grants(account: str) -> dict[str, list[dict]]:
    """Every IAM grant to `account`, by resource type."""
    member = f"serviceAccount:{account}@rayplane-ci.iam.gserviceaccount.com"
    found = {}
    for r in boot().resources:
        if r["type"].endswith("IAMMember") and r["inputs"].get("member") == member:
            found.setdefault(r["type"], []).append(r["inputs"])
    return found


def test_preview_identities_only_read():
    secret_reader = {r["inputs"]["project"]: r for r in boot().of_type("gcp:projects/iAMCustomRole:IAMCustomRole")}
    for identity in ci.identities(changed.bootstrap()):
        grants = _grants(identity.account_id)
        projects = grants["gcp:projects/iAMMember:IAMMember"]
        assert {g["project"] for g in projects} == {identity.project}  # its environment's project only
        [state] = grants["gcp:storage/bucketIAMMember:BucketIAMMember"]
        [key] = grants["gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"]
        if identity.role == ci.PREVIEW:
            custom = secret_reader[identity.project]["inputs"]
            assert all(p.rsplit(".", 1)[1] in ("get", "list") for p in custom["permissions"])
            assert sorted(g["role"] for g in projects) == sorted(
                [*ci.PREVIEW_ROLES, f"projects/{identity.project}/roles/{custom['roleId']}"]
            )
            assert (state["role"], key["role"]) == ("roles/storage.objectViewer", "roles/cloudkms.cryptoKeyDecrypter")
        else:
            assert sorted(g["role"] for g in projects) == sorted(set(ci.DEPLOY_ROLES.values()))
            assert (state["role"], key["role"]) == (
                "roles/storage.objectUser",
                "roles/cloudkms.cryptoKeyEncrypterDecrypter",
            )


def test_a_deploy_identity_grants_only_the_nodes_roles():
    """Project IAM admin is what `up` needs to grant the nodes' service account its two roles; its
    condition (IAM's modifiedGrantsByRole) keeps it from granting anything else, itself owner included."""
    for identity in ci.identities(changed.bootstrap()):
        for grant in _grants(identity.account_id)["gcp:projects/iAMMember:IAMMember"]:
            if grant["role"] == "roles/resourcemanager.projectIamAdmin":
                assert grant["condition"]["expression"] == (
                    "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
                    ".hasOnly(['roles/container.defaultNodeServiceAccount', 'roles/artifactregistry.reader'])"
                )
            else:
                assert "condition" not in grant


@pytest.mark.parametrize("stack", PLATFORM_STACKS + TEAM_STACKS)
def test_every_resource_a_deploy_registers_has_a_role_that_may_manage_it(stack):
    for r in rendered(stack).resources:
        if r["type"].startswith("gcp:"):
            assert r["type"] in ci.DEPLOY_ROLES, f"{r['type']}: which role of the deploy identity manages it?"
        elif r["type"].startswith("kubernetes:"):
            assert "kubernetes" in ci.DEPLOY_ROLES
    if stack in PLATFORM_STACKS:  # node pools run as the nodes' service account: `up` acts as it
        assert ci.DEPLOY_ROLES["nodes"] == "roles/iam.serviceAccountUser"


def test_state_and_secrets_key_are_adopted_and_protected():
    bucket = boot().one("gcp:storage/bucket:Bucket")
    assert bucket["importId"] == "rayplane-ci/rayplane-pulumi-state" and bucket["protect"] is True
    assert bucket["inputs"]["versioning"] == {"enabled": True}
    assert bucket["inputs"]["publicAccessPrevention"] == "enforced"
    ring, key = boot().one("gcp:kms/keyRing:KeyRing"), boot().one("gcp:kms/cryptoKey:CryptoKey")
    assert ring["importId"] == "projects/rayplane-ci/locations/global/keyRings/rayplane" and ring["protect"]
    assert key["importId"] == f"{ring['importId']}/cryptoKeys/pulumi-secrets" and key["protect"]
    assert boot().outputs["secretsProvider"] == f"gcpkms://{key['importId']}"
    assert boot().outputs["backendUrl"] == "gs://rayplane-pulumi-state"


def test_every_project_serves_the_apis_its_stacks_call():
    enabled = {(r["inputs"]["project"], r["inputs"]["service"]) for r in boot().of_type("gcp:projects/service:Service")}
    assert {api for project, api in enabled if project == "rayplane-ci"} >= {
        "sts.googleapis.com",
        "iamcredentials.googleapis.com",
        "cloudkms.googleapis.com",
    }
    for project in ("rayplane-dev", "rayplane-prod"):
        assert {api for p, api in enabled if p == project} >= {"container.googleapis.com", "compute.googleapis.com"}
    assert all(r["inputs"]["disableOnDestroy"] is False for r in boot().of_type("gcp:projects/service:Service"))


def test_every_stack_file_names_the_bootstrap_key():
    provider = ci.secrets_provider(changed.bootstrap())
    for path in sorted(render_tool.STACKS.glob("Pulumi.*.yaml")):
        assert yaml.safe_load(path.read_text())["secretsprovider"] == provider, path.name


def test_ci_refuses_a_stack_file_it_could_not_decrypt(stacks):
    path = stacks / "Pulumi.dev.yaml"
    [error] = bootstrap_tool.check("dev")  # as shipped: `pulumi stack init` has not written its data key
    assert error.startswith("stacks/Pulumi.dev.yaml: no encryptedkey: run `pulumi login gs://rayplane-pulumi-state`")
    path.write_text(path.read_text().replace("config:\n", "encryptedkey: CiQAbc=\nconfig:\n", 1))
    assert bootstrap_tool.check("dev") == []
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "secretsprovider" not in line))
    [error] = bootstrap_tool.check("dev")
    assert "secretsprovider: must be gcpkms://projects/rayplane-ci/" in error and "got None" in error


def test_the_repository_has_an_environment_per_identity_and_one_required_check():
    environments = {
        r["inputs"]["environment"]: r["inputs"]
        for r in boot().of_type("github:index/repositoryEnvironment:RepositoryEnvironment")
    }
    variables = {
        r["inputs"]["environment"]: r["inputs"]
        for r in boot().of_type("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
    }
    policies = {
        r["inputs"]["environment"]: r["inputs"]
        for r in boot().of_type(
            "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy"
        )
    }
    for identity in ci.identities(changed.bootstrap()):
        env = environments[identity.environment]
        assert variables[identity.environment]["value"] == f"{identity.account_id}@rayplane-ci.iam.gserviceaccount.com"
        if identity.from_main_only:
            assert env["deploymentBranchPolicy"] == {"customBranchPolicies": True, "protectedBranches": False}
            assert policies[identity.environment]["branchPattern"] == "main"
        else:
            assert "deploymentBranchPolicy" not in env and "reviewers" not in env
    assert environments["prod"]["reviewers"] and environments["prod"]["preventSelfReview"] is True
    assert "reviewers" not in environments["dev"]
    [ruleset] = boot().of_type("github:index/repositoryRuleset:RepositoryRuleset")
    checks = ruleset["inputs"]["rules"]["requiredStatusChecks"]
    assert checks == {"requiredChecks": [{"context": ci.REQUIRED_CHECK}], "strictRequiredStatusChecksPolicy": True}
    repo_variables = {
        r["inputs"]["variableName"] for r in boot().of_type("github:index/actionsVariable:ActionsVariable")
    }
    assert repo_variables == {ci.BACKEND_VARIABLE, ci.PROVIDER_VARIABLE}


BOOTSTRAP_CASES = [
    Case(
        "environment-twice",
        BOOTSTRAP,
        {"environments.1.project": "rayplane-dev"},
        ["environments: two environments have the project rayplane-dev"],
    ),
    Case(
        "too-many-reviewers",
        BOOTSTRAP,
        {"environments.1.reviewers": {"users": [f"u{i}" for i in range(7)]}},
        ["environments[1]: reviewers: GitHub takes at most 6 users and teams per environment"],
    ),
    Case(
        "repository-not-owner-name",
        BOOTSTRAP,
        {"github.repository": "rayplane"},
        ["github.repository: 'rayplane' is not a GitHub repository (`owner/name`)"],
    ),
    Case(
        "environment-name-too-long",  # its service account id, ci-<name>-preview, would pass 30 characters
        BOOTSTRAP,
        {"environments.0.name": "development-cluster"[:19] + "x"},
        [
            "environments[0].name: 'development-clusterx' is not a valid name: lowercase letters, digits and '-',"
            " starting with a letter, not ending with '-', at most 19 characters"
        ],
    ),
]


@pytest.mark.parametrize("case", BOOTSTRAP_CASES, ids=lambda c: c.id)
def test_an_invalid_bootstrap_config_is_refused(case, stacks):
    refused_with(stacks, case)


def test_the_first_contact_commands_come_in_order_and_the_runbook_shows_them():
    lines = [line for line in bootstrap_tool.commands().splitlines() if not line.startswith("#")]
    at = {line: i for i, line in enumerate(lines)}
    key = ci.secrets_provider(changed.bootstrap())
    first = lambda prefix: next(i for i, line in enumerate(lines) if line.startswith(prefix))  # noqa: E731
    # bucket and key before any login; the bootstrap stack before the stacks CI runs; platforms before teams
    assert (
        first("gcloud kms keys create")
        < first("pulumi login")
        < at["GITHUB_TOKEN=$(gh auth token) pulumi up --stack bootstrap"]
    )
    inits = [line.split()[3] for line in lines if line.startswith("pulumi stack init")]
    assert inits == ["bootstrap", *PLATFORM_STACKS, *TEAM_STACKS]
    assert all(line.endswith(f"--secrets-provider {key}") for line in lines if line.startswith("pulumi stack init"))
    # docs/operations.md shows the same commands for the shipped files (continuation lines joined)
    runbook = re.sub(r" \\\n\s+", " ", (render_tool.ROOT / "docs" / "operations.md").read_text())
    for line in lines:
        if line.startswith(("gcloud", "pulumi", "GITHUB_TOKEN", "make")) and not any(t in line for t in TEAM_STACKS):
            assert line in runbook, line
