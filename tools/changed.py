"""Which stacks a change touches, for the pull-request preview matrix:

    python -m tools.changed --base <git rev>     # prints a JSON list, platform stacks first

A stack is touched when its stack file changes; every platform stack when the program changes
(__main__.py, components/, the Pulumi program's dependencies); every team stack when the program
or its payloads (workloads/) change; and a team stack when its platform stack is touched (the
team reads the platform's exports).
"""

import argparse
import json
import subprocess
import sys

from components.config import ConfigError
from tools.render import ROOT, stack_config, stack_names

PROGRAM = ("__main__.py", "components/", "Pulumi.yaml", "pyproject.toml", "requirements.txt")
PAYLOADS = ("workloads/",)


def changed_files(base: str) -> list[str]:
    done = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    untracked = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return done.stdout.split() + [line[3:] for line in untracked]


def touched(files: list[str]) -> list[str]:
    """The stacks whose render `files` can change, platform stacks first."""
    kinds, platform_of = {}, {}
    for stack in stack_names():
        try:
            config, _ = stack_config(stack)
        except ConfigError:  # a broken stack file: its preview says what is wrong
            kinds[stack] = "broken"
            continue
        kinds[stack] = config.get("rayplane:kind")
        if ref := config.get("rayplane:platformStack"):
            platform_of[stack] = ref.rsplit("/", 1)[-1]
    program = any(f.startswith(PROGRAM) for f in files)
    payloads = any(f.startswith(PAYLOADS) for f in files)
    own = {stack for stack in kinds if f"stacks/Pulumi.{stack}.yaml" in files}
    platforms = {s for s in kinds if kinds[s] in ("platform", "broken") and (program or s in own)}
    teams = {
        s for s in kinds if kinds[s] == "team" and (program or payloads or s in own or platform_of.get(s) in platforms)
    }
    return sorted(platforms) + sorted(teams)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision the change is compared with")
    print(json.dumps(touched(changed_files(parser.parse_args(argv).base))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
