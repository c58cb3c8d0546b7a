"""Which stacks a change touches, and in which GitHub environment CI previews and deploys each:

    python -m tools.changed --base <git rev>                  # a JSON list of stacks, platforms first
    python -m tools.changed --base <git rev> --github-output  # the workflows' matrices, as step outputs

A stack is touched when its stack file changes; every platform stack when the program changes
(__main__.py, components/, the Pulumi program's dependencies, the Ray image's images/: a new tag to
build and export) or the policy pack does (policies/:
its rules judge every stack's preview); every team stack when those or its payloads (workloads/)
change; and a team stack when its platform stack is touched (the team reads the platform's exports).
A base git cannot find (a force-push, a first push) touches every stack.

A stack's environment is the bootstrap stack's environment whose project is its gcp:project
(components/ci.py); the bootstrap stack itself is run by an administrator, never by CI. The
matrices leave out stacks not created yet (no `encryptedkey:` in their stack file), with a warning.
"""

import argparse
import json
import os
import subprocess
import sys

import yaml

from components.config import NAMESPACE, ConfigError, parse
from components.config.bootstrap import BootstrapStack
from components.config.loading import stack_file
from tools import render
from tools.render import ROOT, stack_config, stack_names

PROGRAM = ("__main__.py", "components/", "images/", "policies/", "Pulumi.yaml", "pyproject.toml", "requirements.txt")
PAYLOADS = ("workloads/",)
EVERYTHING = ["__main__.py"]  # what an unknown base counts as
REFERENCE, KIND = f"{NAMESPACE}:platformStack", f"{NAMESPACE}:kind"


def changed_files(base: str) -> list[str]:
    known = subprocess.run(["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=ROOT, capture_output=True)
    if known.returncode != 0:
        print(f"{base} is no commit of this checkout: every stack counts as changed", file=sys.stderr)
        return EVERYTHING
    done = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    untracked = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return done.stdout.split() + [line[3:] for line in untracked]


def configs() -> dict[str, dict | None]:
    """Each stack's raw config; None for a broken stack file (its preview says what is wrong)."""
    configs = {}
    for stack in stack_names():
        try:
            configs[stack] = stack_config(stack)[0]
        except ConfigError:
            configs[stack] = None
    return configs


def bootstrap_stack() -> str:
    """The repository's one bootstrap stack."""
    found = [s for s, c in configs().items() if c and c.get(KIND) == "bootstrap"]
    if len(found) != 1:
        raise ConfigError([f"stacks/: one bootstrap stack expected (kind: bootstrap), found {found or 'none'}"])
    return found[0]


def bootstrap() -> BootstrapStack:
    """The bootstrap stack's config: its environments say where CI runs each stack."""
    config = stack_file(bootstrap_stack(), render.STACKS)
    return parse({key.removeprefix(f"{NAMESPACE}:"): value for key, value in config.items()})


def environments() -> dict[str, str]:
    """Every stack CI runs -> the name of its environment (in the bootstrap stack's deploy order)."""
    by_project = {env.project: env.name for env in bootstrap().environments}
    found, errors = {}, []
    for stack, config in configs().items():
        if config is None or config.get(KIND) == "bootstrap":
            continue
        project = config.get("gcp:project")
        if project not in by_project:
            errors.append(f"stacks/Pulumi.{stack}.yaml: gcp:project {project} is no environment's project")
        found[stack] = by_project.get(project)
    # An environment's stacks share its state bucket: a team reads its platform's outputs there.
    errors += [
        f"stacks/Pulumi.{team}.yaml: its platform stack {platform} is in environment {found.get(platform)},"
        f" it is in {found[team]}: a team stack reads its platform in its own environment's state"
        for team, platform in platforms_of().items()
        if team in found and found[team] and found.get(platform) != found[team]
    ]
    if errors:
        raise ConfigError(errors)
    return found


def platforms_of() -> dict[str, str]:
    """Each team stack's platform stack."""
    return {s: c[REFERENCE].rsplit("/", 1)[-1] for s, c in configs().items() if c and REFERENCE in c}


def touched(files: list[str]) -> list[str]:
    """The stacks CI runs whose render `files` can change, platform stacks first."""
    ci_stacks = {s: c for s, c in configs().items() if not (c and c.get(KIND) == "bootstrap")}
    kinds = {s: (c or {}).get(KIND, "broken") for s, c in ci_stacks.items()}
    platform_of = platforms_of()
    program = any(f.startswith(PROGRAM) for f in files)
    payloads = any(f.startswith(PAYLOADS) for f in files)
    own = {stack for stack in kinds if f"stacks/Pulumi.{stack}.yaml" in files}
    platforms = {s for s in kinds if kinds[s] in ("platform", "broken") and (program or s in own)}
    teams = {
        s for s in kinds if kinds[s] == "team" and (program or payloads or s in own or platform_of.get(s) in platforms)
    }
    return sorted(platforms) + sorted(teams)


def created(stacks: list[str], base: str | None = None) -> tuple[list[str], list[str]]:
    """(those of `stacks` that exist, those that do not yet): `pulumi stack init` writes a stack's
    data key into its stack file (`encryptedkey:`); until that is committed CI can neither preview
    nor deploy it (docs/operations.md "Deploying for real"). A stack whose file had one at `base`
    and has none now is an error, not a stack to skip."""
    made = {s for s in stacks if (_yaml(_read(s)) or {}).get("encryptedkey")}
    if lost := [s for s in stacks if s not in made and base and (_yaml(_read(s, base)) or {}).get("encryptedkey")]:
        raise ConfigError(
            [f"stacks/Pulumi.{s}.yaml: its encryptedkey: is gone (it had one at {base}); put it back" for s in lost]
        )
    return [s for s in stacks if s in made], [s for s in stacks if s not in made]


def _read(stack: str, base: str | None = None) -> str | None:
    """A stack file's text, in this tree or at git revision `base`."""
    if base is None:
        path = render.STACKS / f"Pulumi.{stack}.yaml"
        return path.read_text() if path.is_file() else None
    done = subprocess.run(
        ["git", "show", f"{base}:stacks/Pulumi.{stack}.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def _yaml(text: str | None) -> dict | None:
    try:
        return yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return None


def matrices(stacks: list[str]) -> dict[str, list[dict]]:
    """The workflows' matrices, each a list of {stack, environment}: `stacks` (every touched stack:
    pull requests, the nightly drift check), and per environment its platform stacks and its team
    stacks (`dev-platforms`, `dev-teams`), deployed in turn, and what is previewed before its
    reviewers approve: `dev-gate`, every stack but the teams whose platform deploys first in the same
    run (their preview would read the platform's outputs from before it), and `dev-team-gate`, those
    teams, previewed once their platform is up."""
    envs, platform_of = environments(), platforms_of()
    kinds = {s: (c or {}).get(KIND) for s, c in configs().items()}
    entry = lambda s: {"stack": s, "environment": envs[s]}  # noqa: E731
    out = {"stacks": [entry(s) for s in stacks if s in envs]}
    for env in bootstrap().environments:
        mine = [s for s in stacks if envs.get(s) == env.name]
        platforms = [s for s in mine if kinds[s] != "team"]
        teams = [s for s in mine if kinds[s] == "team"]
        out[f"{env.name}-gate"] = [entry(s) for s in platforms + teams if platform_of.get(s) not in platforms]
        out[f"{env.name}-team-gate"] = [entry(s) for s in teams if platform_of.get(s) in platforms]
        out[f"{env.name}-platforms"] = [entry(s) for s in platforms]
        out[f"{env.name}-teams"] = [entry(s) for s in teams]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="the git revision the change is compared with (default: every stack)")
    parser.add_argument(
        "--github-output", action="store_true", help="print the matrices, and write them to $GITHUB_OUTPUT if set"
    )
    args = parser.parse_args(argv)
    try:
        stacks = touched(changed_files(args.base) if args.base else EVERYTHING)
        if not args.github_output:
            print(json.dumps(stacks))
            return 0
        stacks, missing = created(stacks, args.base)
        for stack in missing:
            print(f"::warning::{stack}: not created yet (no encryptedkey: in its stack file): CI skips it")
        lines = [f"{name}={json.dumps(value)}" for name, value in matrices(stacks).items()]
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if "GITHUB_OUTPUT" in os.environ:
        with open(os.environ["GITHUB_OUTPUT"], "a") as output:
            output.write("".join(f"{line}\n" for line in lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
