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


def test_a_deploy_identity_grants_only_the_platforms_project_roles():
    """Project IAM admin is what `up` needs to grant the nodes' and the image builder's service accounts
    their roles; its condition (IAM's modifiedGrantsByRole) keeps it from granting anything else, itself
    owner included."""
    granted = sorted(
        {g["inputs"]["role"] for s in PLATFORM_STACKS for g in rendered(s).of_type("gcp:projects/iAMMember:IAMMember")}
    )
    assert granted == [
        "roles/artifactregistry.reader",
        "roles/container.defaultNodeServiceAccount",
        "roles/logging.logWriter",
        "roles/serviceusage.serviceUsageConsumer",
    ]
    for identity in ci.identities(changed.bootstrap()):
        for grant in _grants(identity.account_id)["gcp:projects/iAMMember:IAMMember"]:
            if grant["role"] == "roles/resourcemanager.projectIamAdmin":
                assert grant["condition"]["expression"] == (
                    "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
                    f".hasOnly([{', '.join(repr(role) for role in granted)}])"
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


def test_each_environment_has_its_own_state_and_key_and_the_bootstraps_are_adopted():
    buckets = {r["inputs"]["name"]: r for r in boot().of_type("gcp:storage/bucket:Bucket")}
    keys = {r["inputs"]["name"]: r for r in boot().of_type("gcp:kms/cryptoKey:CryptoKey")}
    assert set(buckets) == {"rayplane-pulumi-state", "rayplane-pulumi-state-dev", "rayplane-pulumi-state-prod"}
    assert set(keys) == {"pulumi-secrets", "pulumi-secrets-dev", "pulumi-secrets-prod"}
    for r in [*buckets.values(), *keys.values()]:
        assert r["protect"] is True
    for bucket in buckets.values():
        assert bucket["inputs"]["versioning"] == {"enabled": True}
        assert bucket["inputs"]["publicAccessPrevention"] == "enforced"
        assert bucket["inputs"]["uniformBucketLevelAccess"] is True
    # the bootstrap stack's own pair exists before it (gcloud made them): adopted, declared as made
    ring = boot().one("gcp:kms/keyRing:KeyRing")
    assert ring["importId"] == "projects/rayplane-ci/locations/global/keyRings/rayplane" and ring["protect"]
    assert buckets["rayplane-pulumi-state"]["importId"] == "rayplane-ci/rayplane-pulumi-state"
    assert keys["pulumi-secrets"]["importId"] == f"{ring['importId']}/cryptoKeys/pulumi-secrets"
    assert "rotationPeriod" not in keys["pulumi-secrets"]["inputs"]  # gcloud's key has none: the import matches
    for name in ("rayplane-pulumi-state-dev", "rayplane-pulumi-state-prod"):
        assert "importId" not in buckets[name]
    assert keys["pulumi-secrets-prod"]["inputs"]["rotationPeriod"] == "7776000s"
    assert boot().outputs["secretsProviders"] == {
        env: f"gcpkms://{ring['importId']}/cryptoKeys/pulumi-secrets-{env}" for env in ("dev", "prod")
    }
    assert boot().outputs["backendUrls"] == {env: f"gs://rayplane-pulumi-state-{env}" for env in ("dev", "prod")}


def test_no_identity_reaches_another_environments_state_or_key():
    buckets = {r["name"]: r["inputs"]["name"] for r in boot().of_type("gcp:storage/bucket:Bucket")}
    keys = {f"{r['name']}-id": r["inputs"]["name"] for r in boot().of_type("gcp:kms/cryptoKey:CryptoKey")}
    for identity in ci.identities(changed.bootstrap()):
        grants = _grants(identity.account_id)
        [state] = grants["gcp:storage/bucketIAMMember:BucketIAMMember"]
        [key] = grants["gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"]
        assert state["bucket"] == f"rayplane-pulumi-state-{identity.of}" in buckets.values()
        assert keys[key["cryptoKeyId"]] == f"pulumi-secrets-{identity.of}"


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


def test_every_stack_file_names_its_environments_key():
    config, envs = changed.bootstrap(), changed.environments()
    for path in sorted(render_tool.STACKS.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        wanted = ci.secrets_provider(config, envs.get(stack))  # the bootstrap stack: its own key
        assert yaml.safe_load(path.read_text())["secretsprovider"] == wanted, path.name


def test_ci_refuses_a_stack_file_it_could_not_decrypt(stacks):
    path = stacks / "Pulumi.dev.yaml"
    [error] = bootstrap_tool.check("dev")  # as shipped: `pulumi stack init` has not written its data key
    assert error.startswith(
        "stacks/Pulumi.dev.yaml: no encryptedkey: run `pulumi login gs://rayplane-pulumi-state-dev`"
    )
    path.write_text(path.read_text().replace("config:\n", "encryptedkey: CiQAbc=\nconfig:\n", 1))
    assert bootstrap_tool.check("dev") == []
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "secretsprovider" not in line))
    [error] = bootstrap_tool.check("dev")
    assert "secretsprovider: must be gcpkms://projects/rayplane-ci/" in error and "got None" in error
    # another environment's key is refused too: its identities could not decrypt it
    path.write_text(f"secretsprovider: {ci.secrets_provider(changed.bootstrap(), 'prod')}\n" + path.read_text())
    [error] = bootstrap_tool.check("dev")
    assert "(environment dev's key), got 'gcpkms://" in error and error.endswith("CI cannot decrypt any other")


def test_the_repository_has_an_environment_per_identity_and_one_required_check():
    environments = {
        r["inputs"]["environment"]: r["inputs"]
        for r in boot().of_type("github:index/repositoryEnvironment:RepositoryEnvironment")
    }
    variables = {
        (r["inputs"]["environment"], r["inputs"]["variableName"]): r["inputs"]["value"]
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
        assert (
            variables[identity.environment, ci.ACCOUNT_VARIABLE]
            == f"{identity.account_id}@rayplane-ci.iam.gserviceaccount.com"
        )
        assert variables[identity.environment, ci.BACKEND_VARIABLE] == f"gs://rayplane-pulumi-state-{identity.of}"
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
    assert repo_variables == {ci.PROVIDER_VARIABLE}


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
    config, envs = changed.bootstrap(), changed.environments()
    first = lambda prefix: next(i for i, line in enumerate(lines) if line.startswith(prefix))  # noqa: E731
    # bucket and key before any login; the bootstrap stack before the stacks CI runs; platforms before teams
    assert (
        first("gcloud kms keys create")
        < first("pulumi login")
        < at["GITHUB_TOKEN=$(gh auth token) pulumi up --stack bootstrap"]
    )
    inits = [line.split()[3] for line in lines if line.startswith("pulumi stack init")]
    assert inits == ["bootstrap", *PLATFORM_STACKS, *TEAM_STACKS]
    # each in its environment's state bucket (the last login before it), with its environment's key
    for i, line in enumerate(lines):
        if line.startswith("pulumi stack init"):
            stack, env = line.split()[3], envs.get(line.split()[3])
            assert line.endswith(f"--secrets-provider {ci.secrets_provider(config, env)}")
            login = next(earlier for earlier in reversed(lines[:i]) if earlier.startswith("pulumi login"))
            assert login == f"pulumi login {ci.backend_url(config, env)}", stack
    # docs/operations.md shows the same commands for the shipped files (continuation lines joined)
    runbook = re.sub(r" \\\n\s+", " ", (render_tool.ROOT / "docs" / "operations.md").read_text())
    for line in lines:
        if line.startswith(("gcloud", "pulumi", "GITHUB_TOKEN", "make")) and not any(t in line for t in TEAM_STACKS):
            assert line in runbook, line
