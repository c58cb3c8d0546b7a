"""GPU node pools: one GKE node pool per config entry, in DRA or device-plugin mode."""

import pulumi
import pulumi_gcp as gcp

from components.cluster import Cluster, autoscaling, node_config
from components.config import GpuNodePool as GpuNodePoolConfig
from components.conventions import COMPUTE_CLASS_LABEL, DRA_LABELS, GPU_MODE_LABEL, GPU_TAINT, POOL_LABEL


def provisioning(pool: GpuNodePoolConfig) -> tuple[dict, dict]:
    """(node_config settings, management) of the pool's provisioning model."""
    if pool.provisioning == "spot":
        return {"spot": True}, {}
    if pool.provisioning == "flex-start":
        # As GKE's documented flex-start pools are made (`--flex-start --reservation-affinity=none
        # --no-enable-autorepair`, cloud.google.com/kubernetes-engine/docs/concepts/dws).
        return {"flex_start": True, "reservation_affinity": {"consume_reservation_type": "NO_RESERVATION"}}, {
            "auto_repair": False
        }
    if pool.provisioning == "reservation":
        affinity = {
            "consume_reservation_type": "SPECIFIC_RESERVATION",
            "key": "compute.googleapis.com/reservation-name",
            "values": [pool.reservation],
        }
        return {"reservation_affinity": affinity}, {}
    return {}, {}


class GpuNodePool(pulumi.ComponentResource):
    def __init__(
        self,
        prefix: str,
        pool: GpuNodePoolConfig,
        compute_class: str | None,
        cluster: Cluster,
        opts: pulumi.ResourceOptions | None = None,
    ):
        name = f"{prefix}-{pool.name}"
        super().__init__("rayplane:platform:GpuNodePool", name, None, opts)
        dra = pool.gpu_mode == "dra"
        self.config = pool
        settings, management = provisioning(pool)
        # A ladder's pool carries its ComputeClass's label and taint (GKE's requirement for manually created pools).
        in_class = {COMPUTE_CLASS_LABEL: compute_class} if compute_class else {}
        class_taint = (
            [{"key": COMPUTE_CLASS_LABEL, "value": compute_class, "effect": "NO_SCHEDULE"}] if compute_class else []
        )

        # No explicit name: Pulumi's auto-name lets a replacement pool come up before the old one goes.
        self.node_pool = gcp.container.NodePool(
            name,
            cluster=cluster.cluster.name,
            location=cluster.cluster.location,
            node_locations=pool.zones or None,
            # GPUs are scarce: "ANY" takes capacity in whichever zone has it.
            autoscaling=autoscaling(pool.autoscaling.min_nodes, pool.autoscaling.max_nodes, location_policy="ANY"),
            management={"auto_repair": True, "auto_upgrade": True, **management},
            # Flex-start with queued provisioning (`--flex-start --enable-queued-provisioning`, GKE's
            # docs/how-to/provisioningrequest): nodes only for ProvisioningRequests (Kueue's, addons/kueue.py).
            queued_provisioning={"enabled": True} if pool.queued else None,
            node_config=node_config(
                cluster.node_service_account.email,
                pool.machine_type,
                **settings,
                disk_size_gb=pool.disk_size_gb,
                disk_type="pd-ssd",  # image and model weights load from the boot disk
                # The Ray image preloaded (GKE's docs/how-to/data-container-image-preloading; needs gcfs_config,
                # on in node_config): containerd reads its layers from this disk.
                secondary_boot_disks=(
                    [{"disk_image": pool.image_cache_disk, "mode": "CONTAINER_IMAGE_CACHE"}]
                    if pool.image_cache_disk
                    else None
                ),
                guest_accelerators=[
                    {
                        "type": pool.accelerator,
                        "count": pool.accelerator_count,
                        # DRA: GKE's driver-installer DaemonSet (an add-on) installs the driver instead.
                        "gpu_driver_installation_config": {
                            "gpu_driver_version": "INSTALLATION_DISABLED" if dra else "LATEST"
                        },
                    }
                ],
                labels={
                    POOL_LABEL: pool.name,
                    GPU_MODE_LABEL: pool.gpu_mode,
                    **(DRA_LABELS if dra else {}),
                    **in_class,
                },
                taints=[GPU_TAINT, *class_taint],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": self.node_pool.name})
