"""GKE Standard cluster: private nodes, Workload Identity, Dataplane V2, a small system pool,
a least-privilege node service account, and the Kubernetes provider for everything in-cluster."""

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from components.config.platform import Cluster as ClusterConfig
from components.conventions import on_system_pool
from components.network import PODS_RANGE, SERVICES_RANGE, Network

# GKE's documented minimum for node service accounts, plus image pulls from Artifact Registry.
# Image streaming also needs Service Usage Consumer on the images' project for a node service account
# of our own (cloud.google.com/kubernetes-engine/docs/how-to/image-streaming, Requirements).
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/artifactregistry.reader",
    "roles/serviceusage.serviceUsageConsumer",
)


def node_config(service_account: pulumi.Input[str], machine_type: str, **extra) -> dict:
    """Settings every node pool shares: its own service account, GKE metadata server, shielded VMs,
    image streaming."""
    return {
        "machine_type": machine_type,
        "service_account": service_account,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],  # IAM decides, not scopes
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "image_type": "COS_CONTAINERD",  # image streaming needs it
        # Streams images in Artifact Registry (the platform's Ray image) instead of pulling them whole;
        # others are pulled as without it (cloud.google.com/kubernetes-engine/docs/how-to/image-streaming).
        "gcfs_config": {"enabled": True},
        "metadata": {"disable-legacy-endpoints": "true"},
        **extra,
    }


def autoscaling(min_nodes: int, max_nodes: int, location_policy: str = "BALANCED") -> dict:
    # Totals across the pool's zones, so the config reads the same for zonal and regional pools.
    return {"total_min_node_count": min_nodes, "total_max_node_count": max_nodes, "location_policy": location_policy}


def kubeconfig(name: str, dns_endpoint: str) -> str:
    """A kubeconfig for the control plane's DNS endpoint that authenticates with
    gke-gcloud-auth-plugin (no static credentials). The DNS endpoint serves a publicly trusted
    certificate: the cluster's own CA would fail to verify it."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": f"https://{dns_endpoint}"}}],
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "gke-gcloud-auth-plugin",
                            "provideClusterInfo": True,
                            "installHint": "gcloud components install gke-gcloud-auth-plugin",
                        }
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        },
        sort_keys=False,
    )


class Cluster(pulumi.ComponentResource):
    def __init__(
        self,
        prefix: str,
        project: str,
        config: ClusterConfig,
        network: Network,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:platform:Cluster", prefix, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Nodes get their own identity with only what nodes need; pods use Workload Identity.
        self.node_service_account = gcp.serviceaccount.Account(
            f"{prefix}-nodes", account_id=f"{prefix}-nodes", display_name=f"GKE nodes of {prefix}", opts=child
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{prefix}-nodes-{role.split('/')[1]}",
                project=project,
                role=role,
                member=self.node_service_account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )

        plane = config.control_plane
        if plane.world_open:
            pulumi.log.warn(
                "cluster.controlPlane.openToInternet: the Kubernetes API endpoint accepts connections from any"
                " address (0.0.0.0/0); only its authentication stands between it and the internet",
                resource=self,
            )
        self.cluster = gcp.container.Cluster(
            prefix,
            name=prefix,
            project=project,
            location=config.location,
            network=network.vpc.id,
            subnetwork=network.subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": PODS_RANGE,
                "services_secondary_range_name": SERVICES_RANGE,
            },
            # Node pools are separate resources; the default pool only exists during creation.
            remove_default_node_pool=True,
            initial_node_count=1,
            min_master_version=config.kubernetes_version,
            release_channel={"channel": config.release_channel},
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"},
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": not plane.public_endpoint,
                "master_global_access_config": {"enabled": True},
            },
            # CI (GitHub-hosted runners) and the stacks' kubeconfig reach the control plane by its DNS
            # name: every request is authorized by IAM (container.clusters.connect) before RBAC, so
            # it needs no open network path; the IP endpoint keeps the authorized networks below.
            control_plane_endpoints_config={"dns_endpoint_config": {"allow_external_traffic": True}},
            master_authorized_networks_config={
                "cidr_blocks": [{"cidr_block": str(n.cidr), "display_name": n.name} for n in plane.authorized_networks],
                "gcp_public_cidrs_access_enabled": False,
            },
            enable_shielded_nodes=True,
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2
            monitoring_config={"enable_components": ["SYSTEM_COMPONENTS"], "managed_prometheus": {"enabled": True}},
            addons_config={"gcs_fuse_csi_driver_config": {"enabled": True}},
            gateway_api_config={"channel": "CHANNEL_STANDARD"} if config.gateway_api else None,
            # Google groups in RoleBindings (team editors) need the cluster's security group.
            authenticator_groups_config=(
                {"security_group": config.rbac_security_group} if config.rbac_security_group else None
            ),
            deletion_protection=config.deletion_protection,
            resource_labels={"managed-by": "pulumi", "rayplane-stack": prefix},
            opts=child,
        )
        self.system_pool = gcp.container.NodePool(
            f"{prefix}-system",
            cluster=self.cluster.name,
            location=self.cluster.location,
            autoscaling=autoscaling(config.system_pool.autoscaling.min_nodes, config.system_pool.autoscaling.max_nodes),
            management={"auto_repair": True, "auto_upgrade": True},
            node_config=node_config(
                self.node_service_account.email,
                config.system_pool.machine_type,
                labels=on_system_pool(),
            ),
            opts=child,
        )

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                self.cluster.name, self.cluster.control_plane_endpoints_config.dns_endpoint_config.endpoint
            ).apply(lambda args: kubeconfig(f"{project}_{args[0]}", args[1]))
        )
        # Everything in-cluster waits for the system pool: the API server accepts objects earlier,
        # but nothing could be scheduled.
        self.provider = k8s.Provider(
            f"{prefix}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_pool]),
        )
        self.register_outputs({"name": self.cluster.name, "kubeconfig": self.kubeconfig})
