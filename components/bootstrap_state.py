"""Where the stacks keep their state and their secrets' keys: versioned GCS buckets and Cloud KMS
keys, the bootstrap stack's own and one of each per environment (so that one environment's
identities can neither read nor write another's). The bootstrap stack's pair must exist before the
first `pulumi login` (the runbook creates them with gcloud): this stack adopts them (`import`: a
no-op once they are in its state). All of them are protected."""

import pulumi
import pulumi_gcp as gcp

from components import ci
from components.config.bootstrap import BootstrapStack

KEY_ROTATION = "7776000s"  # 90 days; Pulumi's data keys stay readable (old versions still decrypt)


class StateBackend(pulumi.ComponentResource):
    def __init__(self, config: BootstrapStack, apis: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:bootstrap:StateBackend", "state", None, opts)
        project, key = config.project, config.secrets_key

        def options(import_id: str | None) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, protect=True, import_=import_id, depends_on=apis)

        def bucket(env: str | None) -> gcp.storage.Bucket:
            name = ci.state_bucket(config, env)
            return gcp.storage.Bucket(
                f"state-{env}" if env else "state",
                name=name,
                project=project,
                location=config.state.location.upper(),
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning={"enabled": True},  # an earlier checkpoint survives a bad write or a delete
                opts=options(None if env else f"{project}/{name}"),
            )

        ring = ci.key_ring_id(config)
        self.key_ring = gcp.kms.KeyRing(
            "secrets", name=key.key_ring, project=project, location=key.location, opts=options(ring)
        )

        def crypto_key(env: str | None) -> gcp.kms.CryptoKey:
            name = ci.key_name(config, env)
            return gcp.kms.CryptoKey(
                f"secrets-{env}" if env else "secrets",
                name=name,
                key_ring=self.key_ring.id,
                purpose="ENCRYPT_DECRYPT",
                # The adopted key is declared as gcloud made it: an import must match what exists.
                rotation_period=KEY_ROTATION if env else None,
                opts=options(None if env else f"{ring}/cryptoKeys/{name}"),
            )

        self.bucket, self.key = bucket(None), crypto_key(None)
        self.buckets = {env.name: bucket(env.name) for env in config.environments}
        self.keys = {env.name: crypto_key(env.name) for env in config.environments}
        self.register_outputs({"bucket": self.bucket.name, "key": self.key.id})
