"""The platform's Artifact Registry repositories, both in the cluster's region: the Ray image's own
(components/image.py) and a Docker Hub mirror, a remote repository its base is pulled through.
Images in Artifact Registry are eligible for GKE's image streaming
(cloud.google.com/kubernetes-engine/docs/how-to/image-streaming); the mirror caches an image in the
region after the first pull (it fetches from Docker Hub, without credentials, only on a miss)."""

import pulumi
import pulumi_gcp as gcp

from components import image
from components.config import PlatformStack
from components.config.platform import ARTIFACT_REGISTRY_DOCKER
from components.contract import PlatformExports


class ImageMirror(pulumi.ComponentResource):
    def __init__(self, prefix: str, repository_id: str, region: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:platform:ImageMirror", prefix, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            repository_id,
            repository_id=repository_id,  # explicit: the exported rayImage names it
            location=region,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            description="Docker Hub, pulled through by the Ray image's build (rayplane)",
            remote_repository_config={
                "description": "Docker Hub",
                "docker_repository": {"public_repository": "DOCKER_HUB"},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.repository.name})


class RayImages(pulumi.ComponentResource):
    """The image's repository and the service account Cloud Build builds it as."""

    def __init__(self, cfg: PlatformStack, bucket: gcp.storage.Bucket, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:platform:RayImages", cfg.prefix, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            image.repository(cfg),
            repository_id=image.repository(cfg),  # explicit: the exported rayImage names it
            location=cfg.cluster.region,
            format="DOCKER",
            description="the Ray image of every head and worker (rayplane, images/ray)",
            # A tag names one build forever: a team's digest lookup and a node's pull agree.
            docker_config={"immutable_tags": True},
            opts=child,
        )
        self.builder = gcp.serviceaccount.Account(
            image.builder_account(cfg),
            account_id=image.builder_account(cfg),
            display_name="Cloud Build of the Ray image (rayplane)",
            opts=child,
        )
        member = self.builder.email.apply(lambda email: f"serviceAccount:{email}")
        gcp.artifactregistry.RepositoryIamMember(
            f"{image.repository(cfg)}-builder",
            project=self.repository.project,
            location=self.repository.location,
            repository=self.repository.name,
            role="roles/artifactregistry.writer",
            member=member,
            opts=child,
        )
        gcp.storage.BucketIAMMember(
            f"{image.builder_account(cfg)}-source",
            bucket=bucket.name,
            role="roles/storage.objectViewer",
            member=member,
            # The build's context only: the rest of the bucket is the teams' payload archives.
            condition={
                "title": "the build's context",
                "expression": bucket.name.apply(
                    lambda name: f"resource.name.startsWith('projects/_/buckets/{name}/objects/{image.STAGING}/')"
                ),
            },
            opts=child,
        )
        for role in image.BUILDER_ROLES:
            name = f"{image.builder_account(cfg)}-{role.split('/')[1]}"
            gcp.projects.IAMMember(name, project=cfg.project, role=role, member=member, opts=child)
        self.register_outputs({"repository": self.repository.name, "builder": self.builder.email})


def by_digest(platform: PlatformExports) -> PlatformExports:
    """The platform's exports with its Ray image pinned by digest, as Artifact Registry has the tag
    now: every pod of a deploy runs the same bytes, and a rollout shows when they change."""
    try:
        parts = platform.ray_image.split("/")
        if len(parts) != 4 or not parts[0].endswith(f"-{ARTIFACT_REGISTRY_DOCKER}") or ":" not in parts[3]:
            raise ValueError("not <region>-docker.pkg.dev/<project>/<repository>/ray:<tag>: deploy the platform first")
        host, project, repository_id, name_tag = parts
        found = gcp.artifactregistry.get_docker_image(
            location=host.removesuffix(f"-{ARTIFACT_REGISTRY_DOCKER}"),
            project=project,
            repository_id=repository_id,
            image_name=name_tag,
        )
    except Exception as exc:  # the provider's error says why (not built yet, no access)
        raise pulumi.RunError(
            f"the platform's rayImage {platform.ray_image} cannot be read from Artifact Registry ({exc}). Its"
            " platform's deploy builds it (pulumi.yml; by hand: python -m tools.image <platform stack> --build)"
        ) from None
    return platform.model_copy(update={"ray_image": found.self_link})
