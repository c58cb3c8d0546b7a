"""Where every stack keeps its state and its secrets' key: a versioned GCS bucket and a Cloud KMS
key. Both must exist before the first `pulumi login` (the runbook creates them with gcloud), so this
stack adopts them (`import`: a no-op once they are in its state) and protects them."""

import pulumi
import pulumi_gcp as gcp

from components.config.bootstrap import BootstrapStack

KEY_ROTATION = "7776000s"  # 90 days; Pulumi's data keys stay readable, old key versions remain


class StateBackend(pulumi.ComponentResource):
    def __init__(self, config: BootstrapStack, apis: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:bootstrap:StateBackend", "state", None, opts)
        project, state, key = config.project, config.state, config.secrets_key

        def adopted(import_id: str) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, protect=True, import_=import_id, depends_on=apis)

        self.bucket = gcp.storage.Bucket(
            "state",
            name=state.bucket,
            project=project,
            location=state.location.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},  # an earlier checkpoint survives a bad write or a delete
            opts=adopted(f"{project}/{state.bucket}"),
        )
        ring = f"projects/{project}/locations/{key.location}/keyRings/{key.key_ring}"
        self.key_ring = gcp.kms.KeyRing(
            "secrets", name=key.key_ring, project=project, location=key.location, opts=adopted(ring)
        )
        self.key = gcp.kms.CryptoKey(
            "secrets",
            name=key.key,
            key_ring=self.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KEY_ROTATION,
            opts=adopted(f"{ring}/cryptoKeys/{key.key}"),
        )
        self.register_outputs({"bucket": self.bucket.name, "key": self.key.id})
