"""The platform's Docker Hub mirror: an Artifact Registry remote repository in the cluster's region
that the nodes pull the Ray image through. Images there are eligible for GKE's image streaming
(cloud.google.com/kubernetes-engine/docs/how-to/image-streaming: images in Artifact Registry), are
cached in the region after the first pull (Artifact Registry fetches an image from Docker Hub, without
credentials, only when it has not cached it)."""

import pulumi
import pulumi_gcp as gcp


class ImageMirror(pulumi.ComponentResource):
    def __init__(self, prefix: str, repository_id: str, region: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:platform:ImageMirror", prefix, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            repository_id,
            repository_id=repository_id,  # explicit: the exported rayImage names it
            location=region,
            format="DOCKER",
            mode="REMOTE_REPOSITORY",
            description="Docker Hub, pulled through by the cluster's nodes (rayplane)",
            remote_repository_config={
                "description": "Docker Hub",
                "docker_repository": {"public_repository": "DOCKER_HUB"},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.repository.name})
