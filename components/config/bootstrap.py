"""`kind: bootstrap`: what every other stack and CI stand on, run by an administrator: the state
buckets and the keys that encrypt stack secrets (its own and one of each per environment), the
Workload Identity pool CI signs in through, its Google identities, and the GitHub repository's
environments and branch rules."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import PROJECT, Model, Name

BUCKET = r"^[a-z0-9][-_a-z0-9]{1,61}[a-z0-9]$"
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
MAX_REVIEWERS = 6  # GitHub's limit for an environment's required reviewers


class State(Model):
    bucket: str = Field(
        pattern=BUCKET,
        max_length=43,  # `<bucket>-<environment>` is a bucket name too: at most 63 characters
        description="the bootstrap stack's state bucket; each environment's stacks keep theirs in"
        " `<bucket>-<environment>`, which the bootstrap stack creates",
    )
    location: str = Field("US", description="their location (a multi-region keeps state through a regional outage)")


class SecretsKey(Model):
    location: str = Field("global", description="the Cloud KMS location of its key ring")
    key_ring: Name(63) = Field(description="the key ring (key rings cannot be deleted: pick the name once)")
    key: Name(43) = Field(
        description="the bootstrap stack's key; each environment's stacks use `<key>-<environment>` (their stack"
        " files' `secretsprovider:`), which the bootstrap stack creates"
    )


class GitHub(Model):
    repository: str = Field(description="`owner/name` of the repository these stacks live in")
    branch: str = Field("main", description="the branch deploys run from; pull requests merge into it")
    required_approvals: int = Field(1, ge=0, le=10, description="approving reviews a pull request needs")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY.fullmatch(value):
            raise ValueError(f"{value!r} is not a GitHub repository (`owner/name`)")
        return value


class Reviewers(Model):
    users: list[str] = Field([], description="GitHub logins who may approve a deploy")
    teams: list[str] = Field([], description="team slugs of the repository's organization who may approve one")


class Environment(Model):
    name: Name(19) = Field(description="the GitHub environment deploys run in; `<name>-preview` runs its previews")
    project: str = Field(pattern=PROJECT, description="the Google project its stacks deploy into (their gcp:project)")
    reviewers: Reviewers = Field(Reviewers(), description="who approves its deploys (none: it deploys on merge)")

    @model_validator(mode="after")
    def _few_reviewers(self):
        if len(self.reviewers.users) + len(self.reviewers.teams) > MAX_REVIEWERS:
            raise ValueError(f"reviewers: GitHub takes at most {MAX_REVIEWERS} users and teams per environment")
        return self


class BootstrapStack(Model):
    """Once per repository, by an administrator: state, secrets key, CI identities, GitHub rules."""

    kind: Literal["bootstrap"] = Field(description="`bootstrap`: this stack sets up state, secrets and CI")
    project: str = Field(
        alias="gcp:project", pattern=PROJECT, description="the project holding the state, the keys and the identities"
    )
    state: State = Field(description="the Pulumi state buckets: its own and, named from it, each environment's")
    secrets_key: SecretsKey = Field(description="the Cloud KMS keys of the stacks' secrets providers, in one ring")
    github: GitHub = Field(description="the repository CI runs in")
    environments: list[Environment] = Field(
        min_length=1, description="in deploy order: each a GitHub environment and the Google project it deploys"
    )

    @field_validator("environments")
    @classmethod
    def _distinct(cls, environments: list[Environment]) -> list[Environment]:
        for field in ("name", "project"):
            seen = [getattr(env, field) for env in environments]
            if dupes := sorted({v for v in seen if seen.count(v) > 1}):
                raise ValueError(f"two environments have the {field} {', '.join(dupes)}")
        return environments
