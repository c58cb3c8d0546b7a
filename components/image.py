"""The image every Ray head and worker runs: the platform's `rayImage` with the payloads' packages
installed (images/ray/Dockerfile). Why a built image rather than runtime_env pip: a pod that starts
installs nothing (no download over Cloud NAT, no resolver, the same packages on every node), and the
packages ride in an Artifact Registry image that GKE streams (docs/capacity.md, "Cold start").

The platform owns a repository for it (`<prefix>-images`, tags immutable) and a builder service
account that may push there only (components/registry.py). Its tag is the hash of what goes into
it, so a tag is built once: `python -m tools.image <stack> --build` (pulumi.yml, before a platform's
`up` exports the tag, and after a first one) submits it to Cloud Build unless it is there. Teams run
it by digest (registry.by_digest)."""

import hashlib
from pathlib import Path

from components.config.platform import ARTIFACT_REGISTRY_DOCKER, PlatformStack, RayImage
from components.versions import pinned
from workloads.catalog import JOBS, SERVICES

SOURCE = Path(__file__).resolve().parent.parent / "images" / "ray"  # the build's context
NAME = "ray"
# Ray Serve LLM streams gs:// weights into vLLM with Run:ai's streamer (workloads/serving/llm.py);
# vLLM imports it only for that load format, and ray-llm images are not documented to carry it.
STREAMER = ("runai-model-streamer", "runai-model-streamer-gcs")
# The builder's project roles: Cloud Build writes its log as it (cloudbuild.yaml's logging choice) and
# pulls the base through the mirror. Pushing: its own repository's writer (components/registry.py).
BUILDER_ROLES = ("roles/logging.logWriter", "roles/artifactregistry.reader")
STAGING = "cloudbuild"  # the workload bucket's prefix that `gcloud builds submit` uploads the context to


def requirements() -> str:
    """images/ray/requirements.txt: every payload's packages and the streamer, pinned."""
    packages = {p for payload in (*SERVICES.values(), *JOBS.values()) for p in payload.packages} | set(STREAMER)
    return "".join(f"{pinned(package)}\n" for package in sorted(packages))


def tag(base: str) -> str:
    """`<base's tag>-<hash of the base, the Dockerfile and the requirements>`: a new tag whenever
    what goes into the image changes; its Ray and CUDA stay readable (RayImage)."""
    digest = hashlib.sha256(base.encode())
    for part in ("Dockerfile", "requirements.txt"):
        digest.update((SOURCE / part).read_bytes())
    parts = RayImage(base).parts
    return f"{parts['ray']}-py{parts['python']}-cu{parts['cuda']}-{digest.hexdigest()[:12]}"


def repository(cfg: PlatformStack) -> str:
    return f"{cfg.prefix}-images"


def builder_account(cfg: PlatformStack) -> str:
    return f"{cfg.prefix}-build"  # GCP caps account ids at 30 characters, prefixes at 24


def builder_email(cfg: PlatformStack) -> str:
    return f"{builder_account(cfg)}@{cfg.project}.iam.gserviceaccount.com"


def reference(cfg: PlatformStack) -> str:
    """What the platform exports as `rayImage`: the built image, by its tag."""
    path = f"{cfg.cluster.region}-{ARTIFACT_REGISTRY_DOCKER}/{cfg.project}/{repository(cfg)}/{NAME}"
    return f"{path}:{tag(cfg.pulled_ray_image)}"
