"""First contact, from the bootstrap stack file (stacks/Pulumi.<bootstrap>.yaml):

    python -m tools.bootstrap commands      # the commands that set up state, secrets and CI, in order
    python -m tools.bootstrap check STACK   # CI's first step: the stack file can be decrypted in CI

Pulumi keeps a stack's secrets provider in its stack file: `secretsprovider:` (its environment's
Cloud KMS key) and `encryptedkey:` (the stack's data key, which that key wraps; `pulumi stack init`
writes it).
Without the first the CLI asks for a passphrase CI does not have; without the second it silently
makes a new data key on every run, and no secret set before can be read.
"""

import argparse
import os
import shlex
import sys

import yaml

from components import ci
from components.config import ConfigError
from tools import changed, render


def check(stack: str) -> list[str]:
    """What keeps CI from reading `stack`'s secrets, with the command that fixes it."""
    config = changed.bootstrap()
    path = render.STACKS / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return [f"stacks/Pulumi.{stack}.yaml: no such stack file"]
    env = changed.environments().get(stack)
    if env is None:
        return [f"stacks/Pulumi.{stack}.yaml: not a stack CI runs (the bootstrap stack is an administrator's)"]
    provider = ci.secrets_provider(config, env)
    data = yaml.safe_load(path.read_text()) or {}
    if data.get("secretsprovider") != provider:
        return [
            f"stacks/Pulumi.{stack}.yaml: secretsprovider: must be {provider} (environment {env}'s key),"
            f" got {data.get('secretsprovider')!r}; CI cannot decrypt any other"
        ]
    if not data.get("encryptedkey"):
        return [
            f"stacks/Pulumi.{stack}.yaml: no encryptedkey: run `pulumi login {ci.backend_url(config, env)}` and"
            f" `pulumi stack init {stack} --secrets-provider {provider}` once, and commit the line it adds"
        ]
    return []


def _inits(config, stacks: list[str]) -> list[str]:
    """`pulumi stack init` of `stacks`, each in its environment's state bucket with its key."""
    envs, lines = changed.environments(), []
    for env in config.environments:
        mine = [s for s in stacks if envs[s] == env.name]
        if mine:
            lines.append(f"pulumi login {ci.backend_url(config, env.name)}")
            provider = shlex.quote(ci.secrets_provider(config, env.name))
            lines += [f"pulumi stack init {s} --secrets-provider {provider}" for s in mine]
    return lines


def commands() -> str:
    config = changed.bootstrap()
    project, state, key = config.project, config.state, config.secrets_key
    stack = changed.bootstrap_stack()
    backend = ci.backend_url(config)
    lines = [
        "# The bootstrap project serves what the next steps need (Owner of every project listed in",
        f"#  stacks/Pulumi.{stack}.yaml, admin of {config.github.repository}).",
        "gcloud auth login && gcloud auth application-default login",
        f"gcloud auth application-default set-quota-project {project}",
        f"gcloud services enable {' '.join(ci.BOOTSTRAP_APIS)} --project {project}",
        "# The bootstrap stack's own state bucket and secrets key: they exist before its first",
        "#  `pulumi login`; it adopts (imports) and protects them, and creates each environment's pair.",
        f"gcloud storage buckets create {backend} --project {project} --location {state.location}"
        " --uniform-bucket-level-access --public-access-prevention",
        f"gcloud storage buckets update {backend} --versioning",
        f"gcloud kms keyrings create {key.key_ring} --project {project} --location {key.location}",
        f"gcloud kms keys create {key.key} --project {project} --location {key.location}"
        f" --keyring {key.key_ring} --purpose encryption",
        "# The bootstrap stack: APIs, each environment's state bucket and key, CI's identity pool and",
        "#  service accounts, the repository's environments, variables and rules (GITHUB_TOKEN: a token",
        "#  that administers the repository).",
        "make .venv/.infra-installed",
        f"pulumi login {backend}",
        f"pulumi stack init {stack} --secrets-provider {shlex.quote(ci.secrets_provider(config))}",
        f"GITHUB_TOKEN=$(gh auth token) pulumi up --stack {stack}",
    ]
    kinds = {s: (c or {}).get(changed.KIND) for s, c in changed.configs().items()}
    ci_stacks = list(changed.environments())
    lines += [
        "# The platform stacks: created once here, which writes each one's data key (`encryptedkey:`)",
        "#  into its stack file. The pull request previews them; merging it deploys each environment in",
        "#  turn, each one with reviewers once they approve.",
        *_inits(config, [s for s in ci_stacks if kinds[s] == "platform"]),
        "git switch -c platform-stacks && git add stacks/ && git commit -m 'The platform stacks'"
        " && git push -u origin platform-stacks  # then open the pull request and merge it",
        "# Once every platform is deployed, prod's approved too (a team's preview reads its platform's",
        "#  outputs), the team stacks the same way.",
        "git switch main && git pull",
        *_inits(config, [s for s in ci_stacks if kinds[s] == "team"]),
        "git switch -c team-stacks && git add stacks/ && git commit -m 'The team stacks'"
        " && git push -u origin team-stacks  # then open the pull request and merge it",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("commands", help="print the first-contact commands")
    sub.add_parser("check", help="check a stack file's secrets provider").add_argument("stack")
    args = parser.parse_args(argv)
    try:
        if args.command == "commands":
            print(commands())
            return 0
        errors = check(args.stack)
    except ConfigError as exc:
        errors = exc.errors
    for error in errors:  # GitHub shows `::error::` lines as annotations on the run
        print(f"::error::{error}" if os.environ.get("GITHUB_ACTIONS") else error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
