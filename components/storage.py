"""The platform's workload bucket: payload archives (by content hash), models and batch data."""

import pulumi
import pulumi_gcp as gcp


class WorkloadBucket(pulumi.ComponentResource):
    def __init__(self, prefix: str, name: str, location: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:platform:WorkloadBucket", prefix, None, opts)
        self.bucket = gcp.storage.Bucket(
            f"{prefix}-workloads",
            name=name,  # explicit: people and RayService specs refer to it
            location=location.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            # Every team's payloads live here: `pulumi destroy` must not take the bucket with it.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.register_outputs({"name": self.bucket.name})
