"""Ray payloads (Serve apps, Ray Data jobs): runnable on a laptop Ray and as KubeRay workloads.

The Pulumi program never imports this package; it only ships it to the cluster.
"""
