"""First contact, from the bootstrap stack file (stacks/Pulumi.<bootstrap>.yaml):

    python -m tools.bootstrap commands      # the commands that set up state, secrets and CI, in order
    python -m tools.bootstrap check STACK   # CI's first step: the stack file can be decrypted in CI

Pulumi keeps a stack's secrets provider in its stack file: `secretsprovider:` (the Cloud KMS key)
and `encryptedkey:` (the stack's data key, which that key wraps; `pulumi stack init` writes it).
Without the first the CLI asks for a passphrase CI does not have; without the second it silently
makes a new data key on every run, and no secret set before can be read.
"""

import argparse
import shlex
import sys

import yaml

from components import ci
from components.config import ConfigError
from tools import changed, render


def check(stack: str) -> list[str]:
    """What keeps CI from reading `stack`'s secrets, with the command that fixes it."""
    config = changed.bootstrap()
    provider = ci.secrets_provider(config)
    path = render.STACKS / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return [f"stacks/Pulumi.{stack}.yaml: no such stack file"]
    data = yaml.safe_load(path.read_text()) or {}
    init = f"pulumi stack init {stack} --secrets-provider {shlex.quote(provider)}"
    if data.get("secretsprovider") != provider:
        return [
            f"stacks/Pulumi.{stack}.yaml: secretsprovider: must be {provider} (the bootstrap stack's key),"
            f" got {data.get('secretsprovider')!r}; CI cannot decrypt any other"
        ]
    if not data.get("encryptedkey"):
        return [
            f"stacks/Pulumi.{stack}.yaml: no encryptedkey: run `pulumi login {ci.backend_url(config)}` and"
            f" `{init}` once, and commit the line it adds"
        ]
    return []


def commands() -> str:
    config = changed.bootstrap()
    project, state, key = config.project, config.state, config.secrets_key
    stack = changed.bootstrap_stack()
    provider, backend = shlex.quote(ci.secrets_provider(config)), ci.backend_url(config)
    envs = changed.environments()
    lines = [
        "# 1. The bootstrap project serves what the next steps need (Owner of every project listed in",
        f"#    stacks/Pulumi.{stack}.yaml, admin of {config.github.repository}).",
        "gcloud auth login && gcloud auth application-default login",
        f"gcloud services enable {' '.join(ci.BOOTSTRAP_APIS)} --project {project}",
        "# 2. State bucket and secrets key: every stack's state and secrets depend on them, so they exist",
        "#    before the first `pulumi login`; the bootstrap stack adopts (imports) and protects them.",
        f"gcloud storage buckets create {backend} --project {project} --location {state.location}"
        " --uniform-bucket-level-access --public-access-prevention",
        f"gcloud storage buckets update {backend} --versioning",
        f"gcloud kms keyrings create {key.key_ring} --project {project} --location {key.location}",
        f"gcloud kms keys create {key.key} --project {project} --location {key.location}"
        f" --keyring {key.key_ring} --purpose encryption",
        "# 3. The bootstrap stack: APIs, CI's identity pool and service accounts, the repository's",
        "#    environments, variables and branch rules (a token that administers the repository).",
        "make .venv/.infra-installed",
        f"pulumi login {backend}",
        f"pulumi stack init {stack} --secrets-provider {provider}",
        f"GITHUB_TOKEN=$(gh auth token) pulumi up --stack {stack}",
    ]
    kinds = {s: (c or {}).get(changed.KIND) for s, c in changed.configs().items()}
    # Teams after their platforms: a team's preview reads its deployed platform's outputs.
    for step, kind in enumerate(("platform", "team"), start=4):
        stacks = [s for s in envs if kinds[s] == kind]
        lines += [
            f"# {step}. The {kind} stacks: created once here, which writes each one's data key (`encryptedkey:`)",
            "#    into its stack file. The pull request previews them; merging it deploys each environment",
            "#    in turn, each one whose GitHub environment has reviewers once they approve.",
            *(f"pulumi stack init {name} --secrets-provider {provider}" for name in stacks),
            f"git switch -c {kind}-stacks && git add stacks/ && git commit -m 'The {kind} stacks' "
            f"&& git push -u origin {kind}-stacks  # then open the pull request, merge it",
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
    for error in errors:
        print(f"::error::{error}" if args.command == "check" else error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
