"""NVIDIA DRA driver for GPUs on GKE: the NVIDIA kernel driver on dra pools, then the DRA driver.

GKE installs no NVIDIA driver on pools created with gpu_driver_version INSTALLATION_DISABLED, so
its driver-installer DaemonSet runs here, restricted to dra pools; then the DRA driver's Helm chart
publishes the GPUs as ResourceSlices and creates the gpu.nvidia.com DeviceClass.
"""

import pulumi
import pulumi_kubernetes as k8s

from components.addons.kit import AddOn, Chart
from components.config import Model, PlatformStack
from components.conventions import (
    COMPUTE_CLASS_TOLERATION,
    DRA_DRIVER_NAMESPACE,
    DRA_LABELS,
    GPU_MODE_LABEL,
    GPU_TOLERATION,
    SYSTEM_NAMESPACE,
    node_affinity,
)
from components.gpu_profiles import driver_feature_gates
from components.plan import PlatformPlan
from components.versions import NVIDIA_DRA_DRIVER, NVIDIA_INSTALLER_IMAGE, PAUSE_IMAGE

CHART = Chart(
    release="nvidia-dra-driver-gpu",
    chart="nvidia-dra-driver-gpu",
    version=NVIDIA_DRA_DRIVER,
    repo="https://helm.ngc.nvidia.com/nvidia",
    namespace=DRA_DRIVER_NAMESPACE,
)
DRIVER_ROOT = "/home/kubernetes/bin/nvidia"  # where GKE's installer puts the driver on COS

# Node affinity that matches dra pools only (device-plugin pools get GKE's own driver and plugin).
DRA_NODES = node_affinity({GPU_MODE_LABEL: ["dra"]})


class KubeletPluginValues(Model):
    # GKE admits system-node-critical pods only in kube-system (a ResourceQuota elsewhere).
    priority_class_name: str = ""
    tolerations: list[dict] = [GPU_TOLERATION, COMPUTE_CLASS_TOLERATION]  # a ladder's pools: claims need it there
    affinity: dict = DRA_NODES


class DraDriverValues(Model):
    """The chart values GKE needs (GKE "Prepare GKE infrastructure for DRA workloads")."""

    nvidia_driver_root: str = DRIVER_ROOT
    gpu_resources_enabled_override: bool = True  # GPU allocation is off by default in the chart
    resources: dict = {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}}  # no MNNVL here
    feature_gates: dict[str, bool] = {}
    kubelet_plugin: KubeletPluginValues = KubeletPluginValues()


def driver_installer(driver_version: str) -> dict:
    """GKE's COS driver installer, adapted from GoogleCloudPlatform/container-engine-accelerators
    nvidia-driver-installer/cos/daemonset-preloaded.yaml: scheduled on dra pools only (the
    device-plugin pools get GKE's managed driver) and with the driver version pinned by config."""
    host_paths = {
        "dev": "/dev",
        "vulkan-icd-mount": f"{DRIVER_ROOT}/vulkan/icd.d",
        "nvidia-install-dir-host": DRIVER_ROOT,
        "root-mount": "/",
        "cos-tools": "/var/lib/cos-tools",
    }
    mounts = {
        "nvidia-install-dir-host": "/usr/local/nvidia",
        "vulkan-icd-mount": "/etc/vulkan/icd.d",
        "dev": "/dev",
        "root-mount": "/root",
        "cos-tools": "/build/cos-tools",
    }
    env = {
        "NVIDIA_INSTALL_DIR_HOST": DRIVER_ROOT,
        "NVIDIA_INSTALL_DIR_CONTAINER": "/usr/local/nvidia",
        "VULKAN_ICD_DIR_HOST": f"{DRIVER_ROOT}/vulkan/icd.d",
        "VULKAN_ICD_DIR_CONTAINER": "/etc/vulkan/icd.d",
        "ROOT_MOUNT_DIR": "/root",
        "COS_TOOLS_DIR_HOST": "/var/lib/cos-tools",
        "COS_TOOLS_DIR_CONTAINER": "/build/cos-tools",
    }
    install = (
        "if lsmod | grep -q nvidia; then echo 'NVIDIA driver already loaded'; exit 0; fi\n"
        f"/cos-gpu-installer install --version={driver_version}\n"
        f"chmod 755 /root{DRIVER_ROOT}\n"
    )
    labels = {"k8s-app": "nvidia-driver-installer"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-driver-installer", "namespace": SYSTEM_NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": node_affinity({key: [value] for key, value in DRA_LABELS.items()}),
                    "tolerations": [{"operator": "Exists"}],
                    "hostNetwork": True,
                    "hostPID": True,
                    "volumes": [{"name": name, "hostPath": {"path": path}} for name, path in host_paths.items()],
                    "initContainers": [
                        {
                            "name": "nvidia-driver-installer",
                            "image": NVIDIA_INSTALLER_IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["bash", "-c", install],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "resources": {"requests": {"cpu": "150m", "memory": "256Mi"}},
                            "securityContext": {"privileged": True},
                            "volumeMounts": [{"name": name, "mountPath": path} for name, path in mounts.items()],
                        }
                    ],
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


class NvidiaDra(AddOn):
    @staticmethod
    def wanted(config: PlatformStack) -> bool:
        return bool(config.dra_pools)

    def __init__(self, plan: PlatformPlan, after: list[pulumi.Resource], opts: pulumi.ResourceOptions):
        config = plan.config
        prefix = config.prefix
        super().__init__("rayplane:platform:NvidiaDra", f"{prefix}-nvidia-dra", None, opts)
        manifest = driver_installer(config.addons.gpu_driver_version)
        self.driver_installer = k8s.apps.v1.DaemonSet(
            f"{prefix}-nvidia-driver-installer",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        gates = driver_feature_gates(config.gpu_profiles)
        values = DraDriverValues(featureGates={gate: on for gate, on in gates.items() if on})
        # The kubelet plugin needs the kernel driver: install it first.
        self.release = CHART.install(
            f"{prefix}-nvidia-dra-driver",
            values,
            pulumi.ResourceOptions(parent=self, depends_on=[self.driver_installer]),
        )
        self.register_outputs({"release": self.release.status})
