"""The Ray image of a platform stack (components/image.py):

    python -m tools.image STACK            # its reference: <region>-docker.pkg.dev/<project>/<prefix>-images/ray:<tag>
    python -m tools.image STACK --build    # build it with Cloud Build unless its tag is there

pulumi.yml runs --build before a platform's `up`, so that the tag it exports is already there when
its teams read it, and again after (a first `up` makes the repository). Until the repository exists
--build says so and does nothing; a team stack has no image of its own (it runs its platform's).
"""

import argparse
import shlex
import subprocess
import sys

from components import image
from components.config import ConfigError, PlatformStack
from components.config.loading import NAMESPACE, parse, stack_file


def parse_platform(config: dict) -> PlatformStack | None:
    """A stack file's `config:` if it is a platform's (its secrets left out: ciphertext here, and unneeded)."""
    raw = {key.removeprefix(f"{NAMESPACE}:"): value for key, value in config.items() if key != f"{NAMESPACE}:secrets"}
    cfg = parse(raw)
    return cfg if isinstance(cfg, PlatformStack) else None


def commands(cfg: PlatformStack) -> tuple[list[str], list[str], list[str]]:
    """(the check that the repository is there, that the tag is, the build that pushes it) as gcloud commands."""
    reference = image.reference(cfg)
    repository = [
        "gcloud",
        "artifacts",
        "repositories",
        "describe",
        image.repository(cfg),
        f"--project={cfg.project}",
        f"--location={cfg.cluster.region}",
        "--format=value(name)",
    ]
    exists = ["gcloud", "artifacts", "docker", "images", "describe", reference, "--format=value(image_summary.digest)"]
    build = [
        "gcloud",
        "builds",
        "submit",
        str(image.SOURCE),
        f"--project={cfg.project}",
        f"--region={cfg.cluster.region}",
        f"--config={image.SOURCE / 'cloudbuild.yaml'}",
        f"--substitutions=_BASE={cfg.pulled_ray_image},_IMAGE={reference}",
        f"--service-account=projects/{cfg.project}/serviceAccounts/{image.builder_email(cfg)}",
        f"--gcs-source-staging-dir=gs://{cfg.workload_bucket}/{image.STAGING}/source",
    ]
    return repository, exists, build


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, text=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack")
    parser.add_argument("--build", action="store_true", help="build and push it unless its tag is there")
    args = parser.parse_args(argv)
    try:
        cfg = parse_platform(stack_file(args.stack))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if cfg is None:
        print(f"{args.stack}: a team stack runs its platform's image; nothing to build", file=sys.stderr)
        return 0 if args.build else 2
    print(image.reference(cfg))
    if not args.build:
        return 0
    repository, exists, build = commands(cfg)
    if not _succeeds(repository):
        print(f"no repository {image.repository(cfg)} yet: the platform's `pulumi up` makes it", file=sys.stderr)
        return 0
    if _succeeds(exists):
        print("already built (tags are immutable: the same tag is the same image)", file=sys.stderr)
        return 0
    print(f"+ {shlex.join(build)}", file=sys.stderr)
    return subprocess.run(build).returncode


if __name__ == "__main__":
    sys.exit(main())
