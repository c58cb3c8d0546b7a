"""VPC for a private GKE cluster: subnet with pod/service ranges, Cloud NAT, one firewall rule."""

import pulumi
import pulumi_gcp as gcp

from components.config.platform import Network as NetworkConfig

HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
PODS_RANGE = "pods"
SERVICES_RANGE = "services"


class Network(pulumi.ComponentResource):
    def __init__(
        self,
        prefix: str,
        region: str,
        config: NetworkConfig,
        gateway_api: bool,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rayplane:platform:Network", prefix, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.vpc = gcp.compute.Network(
            f"{prefix}-vpc", name=prefix, auto_create_subnetworks=False, routing_mode="REGIONAL", opts=child
        )
        self.subnet = gcp.compute.Subnetwork(
            f"{prefix}-nodes",
            name=f"{prefix}-nodes",
            network=self.vpc.id,
            region=region,
            ip_cidr_range=str(config.nodes_cidr),
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": str(config.pods_cidr)},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": str(config.services_cidr)},
            ],
            # Private nodes reach Google APIs (GCS, Artifact Registry) without NAT.
            private_ip_google_access=True,
            opts=child,
        )
        # Private nodes have no external IPs: NAT gives them egress (image pulls, model hubs).
        self.router = gcp.compute.Router(
            f"{prefix}-router", name=prefix, network=self.vpc.id, region=region, opts=child
        )
        self.nat = gcp.compute.RouterNat(
            f"{prefix}-nat",
            name=prefix,
            router=self.router.name,
            region=region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=child,
        )
        internal = [str(config.nodes_cidr), str(config.pods_cidr)]
        self.gateway_source_ranges: list[str] = []
        if gateway_api:
            # The internal Application Load Balancer of GKE's gke-l7-rilb GatewayClass runs its proxies
            # in the region's proxy-only subnet; there must be exactly one, and its proxies reach pods.
            self.proxy_only = gcp.compute.Subnetwork(
                f"{prefix}-proxy-only",
                name=f"{prefix}-proxy-only",
                network=self.vpc.id,
                region=region,
                ip_cidr_range=str(config.proxy_only_cidr),
                purpose="REGIONAL_MANAGED_PROXY",
                role="ACTIVE",
                opts=child,
            )
            internal.append(str(config.proxy_only_cidr))
            # Envoy-based load balancers send traffic from the proxy-only subnet; Google's health
            # checkers probe from these ranges (Cloud Load Balancing "Health checks overview").
            self.gateway_source_ranges = [str(config.proxy_only_cidr), *HEALTH_CHECK_RANGES]
        # Node-to-node and pod-to-pod traffic inside the VPC (Ray GCS, object transfer, NCCL), and
        # the Gateway's proxies to the pods.
        self.allow_internal = gcp.compute.Firewall(
            f"{prefix}-allow-internal",
            name=f"{prefix}-allow-internal",
            network=self.vpc.id,
            direction="INGRESS",
            source_ranges=internal,
            allows=[{"protocol": "tcp"}, {"protocol": "udp"}, {"protocol": "icmp"}],
            opts=child,
        )
        self.register_outputs({"vpc": self.vpc.id, "subnet": self.subnet.id})
