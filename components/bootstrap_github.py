"""The repository's side of CI, with the GitHub provider: per environment a deploy environment
(the main branch only; prod's reviewers) and a preview environment, each telling its jobs which
service account to act as and where their state is; the identity provider every workflow signs in
through; and the main branch's rules: pull
requests with approvals, one required status check, up to date with main before merging."""

import pulumi
import pulumi_github as github

from components import ci
from components.config.bootstrap import BootstrapStack


def connect(config: BootstrapStack) -> tuple[github.Provider, pulumi.Output[int]]:
    """The GitHub provider for the repository's owner (its token: GITHUB_TOKEN), and the
    repository's numeric id, which the identity provider admits tokens by."""
    provider = github.Provider("github", owner=config.github.repository.split("/")[0])
    found = github.get_repository_output(
        full_name=config.github.repository, opts=pulumi.InvokeOptions(provider=provider)
    )
    return provider, found.repo_id


class GitHubRepository(pulumi.ComponentResource):
    def __init__(
        self,
        config: BootstrapStack,
        provider: github.Provider,
        emails: dict[str, pulumi.Output[str]],
        identity_provider: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:bootstrap:GitHubRepository", "github", None, opts)
        repository = config.github.repository.split("/")[1]
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        invoke = pulumi.InvokeOptions(provider=provider)

        for env in config.environments:
            users = [github.get_user_output(username=u, opts=invoke).id.apply(int) for u in env.reviewers.users]
            teams = [
                github.get_team_output(slug=t, summary_only=True, opts=invoke).id.apply(int)
                for t in env.reviewers.teams
            ]
            for role in (ci.PREVIEW, ci.DEPLOY):
                name = ci.github_environment(env, role)
                deploys = role == ci.DEPLOY
                environment = github.RepositoryEnvironment(
                    name,
                    repository=repository,
                    environment=name,
                    # Deploys run from the main branch only (the identity provider checks it too).
                    deployment_branch_policy={"protected_branches": False, "custom_branch_policies": True}
                    if deploys
                    else None,
                    reviewers=[{"users": users, "teams": teams}] if deploys and (users or teams) else None,
                    prevent_self_review=deploys and bool(users or teams),
                    can_admins_bypass=False,
                    opts=child,
                )
                if deploys:
                    github.RepositoryEnvironmentDeploymentPolicy(
                        name,
                        repository=repository,
                        environment=environment.environment,
                        branch_pattern=config.github.branch,
                        opts=child,
                    )
                # The identity its jobs act as, and the state they read or write.
                for variable, value in (
                    (ci.ACCOUNT_VARIABLE, emails[name]),
                    (ci.BACKEND_VARIABLE, ci.backend_url(config, env.name)),
                ):
                    github.ActionsEnvironmentVariable(
                        f"{name}-{variable}",
                        repository=repository,
                        environment=environment.environment,
                        variable_name=variable,
                        value=value,
                        opts=child,
                    )
        github.ActionsVariable(
            ci.PROVIDER_VARIABLE,
            repository=repository,
            variable_name=ci.PROVIDER_VARIABLE,
            value=identity_provider,
            opts=child,
        )

        github.RepositoryRuleset(
            "main",
            repository=repository,
            name=f"{config.github.branch}: reviewed, checked, up to date",
            target="branch",
            enforcement="active",
            conditions={"ref_name": {"includes": [f"refs/heads/{config.github.branch}"], "excludes": []}},
            rules={
                "deletion": True,
                "non_fast_forward": True,
                "pull_request": {
                    "required_approving_review_count": config.github.required_approvals,
                    "dismiss_stale_reviews_on_push": True,
                    "require_last_push_approval": config.github.required_approvals > 0,
                },
                # Strict: a pull request is previewed and tested on top of the main it merges into,
                # so two green pull requests cannot merge into an untested combination.
                "required_status_checks": {
                    "required_checks": [{"context": ci.REQUIRED_CHECK}],
                    "strict_required_status_checks_policy": True,
                },
            },
            opts=child,
        )
        self.register_outputs({})
