"""KubeRay's and Kueue's admission rules, in our own words, over rendered objects: the one copy of
each (the policy pack runs Kueue's, rules.py `queued-jobs-kueue-admits`; the tests run them all).

Read from upstream/ (vendored): kuberay/validation.go.txt (ValidateRayClusterSpec,
ValidateRayServiceMetadata/Spec, ValidateRayJobMetadata/Spec, ValidateClusterUpgradeOptions) and
kueue/rayjob_webhook.go.txt + raycluster_common.go.txt (a queued RayJob). Each function returns the
violations it finds; an empty list means the webhook admits the object. Rules about fields the
stack never renders (history server, TLS, deletion strategies, cluster selectors' modes) are left
out; their fields are refused by the CRD check if they ever appear unexpectedly.
"""

import re
from collections.abc import Mapping

import yaml

from components.conventions import QUEUE_LABEL

MAX_NAME = 47  # MaxRayServiceNameLength and MaxRayJobNameLength: MaxRayClusterNameLength (53) - 6
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
ELASTIC_ANNOTATION = "kueue.x-k8s.io/elastic-job"
MAX_POD_SETS = 8  # Kueue's jobframework.MaxPodSets: the head and at most 7 worker groups


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _name_errors(kind: str, name: str) -> list[str]:
    errors = []
    if len(name) > MAX_NAME:
        errors.append(f"{kind} name should be no more than {MAX_NAME} characters")
    if not DNS_1035.fullmatch(name):
        errors.append(f"{kind} name should be a valid DNS1035 label")
    return errors


def cluster_spec_errors(spec: dict) -> list[str]:
    """ValidateRayClusterSpec."""
    errors = []
    head = spec["headGroupSpec"]
    head_containers = head["template"]["spec"].get("containers", [])
    if not head_containers:
        return ["headGroupSpec should have at least one container"]
    head_env = _env(head_containers[0])
    autoscaling = spec.get("enableInTreeAutoscaling", False)
    v2 = autoscaling and (spec.get("autoscalerOptions") or {}).get("version") == "v2"
    groups = [("Head", head)] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    for name, group in groups:
        params = group.get("rayStartParams") or {}
        if any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")) and group.get("resources"):
            errors.append(f"resource fields should not be set in both rayStartParams and Resources for {name} group")
        if "labels" in params:
            errors.append(f"rayStartParams['labels'] is not supported for {name} group")
        restart = group["template"]["spec"].get("restartPolicy", "")
        if v2 and restart not in ("", "Never"):
            errors.append(f"restartPolicy for {name} should be Never or unset when using autoscaler V2")
    for group in spec.get("workerGroupSpecs", []):
        name, low, high = group["groupName"], group.get("minReplicas"), group.get("maxReplicas")
        if not group["template"]["spec"].get("containers"):
            errors.append("workerGroupSpec should have at least one container")
        if not autoscaling and (low is None or high is None):
            errors.append(f"worker group {name} must set both minReplicas and maxReplicas when autoscaling is disabled")
        if (low is not None and low < 0) or (high is not None and high < 0):
            errors.append(f"worker group {name} has negative replicas")
        if low is not None and high is not None and low > high:
            errors.append(f"worker group {name} has minReplicas {low} greater than maxReplicas {high}")
        if group.get("idleTimeoutSeconds") is not None and not v2:
            errors.append(f"worker group {name}: idleTimeoutSeconds is set, but autoscaler v2 is not enabled")
        if autoscaling and group.get("suspend"):
            errors.append(f"worker group {name} cannot be suspended with Autoscaler enabled")
    if spec.get("gcsFaultToleranceOptions"):
        if head.get("rayStartParams", {}).get("redis-password"):
            errors.append("cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled")
        errors += [
            f"cannot set `{var}` env var in head Pod when GcsFaultToleranceOptions is enabled"
            for var in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS")
            if var in head_env
        ]
    elif "RAY_REDIS_ADDRESS" in head_env:
        errors.append("RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance")
    if head.get("rayStartParams", {}).get("redis-username") or "REDIS_USERNAME" in head_env:
        errors.append("cannot set redis username in rayStartParams or environment variables")
    if not autoscaling and head_env.get("RAY_enable_autoscaler_v2") in ("1", "true"):
        errors.append("RAY_enable_autoscaler_v2 cannot be set when enableInTreeAutoscaling is false")
    if autoscaling and (spec.get("autoscalerOptions") or {}).get("version") and "RAY_enable_autoscaler_v2" in head_env:
        errors.append("both .spec.autoscalerOptions.version and head Pod env var RAY_enable_autoscaler_v2 are set")
    if (spec.get("autoscalerOptions") or {}).get("idleTimeoutSeconds", 0) < 0:
        errors.append("autoscalerOptions.idleTimeoutSeconds must be non-negative")
    if (spec.get("authOptions") or {}).get("mode") == "token":
        version = tuple(int(p) for p in spec.get("rayVersion", "0.0.0").split("."))
        if version < (2, 52, 0):
            errors.append("authOptions.mode is 'token' but minimum Ray version is 2.52.0")
    if spec.get("networkPolicy") is not None:  # RayClusterNetworkPolicy is alpha, off by default
        errors.append("spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled")
    if spec.get("tlsOptions") is not None:  # RayClusterMTLS is alpha, off by default
        errors.append("spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled")
    return errors


def rayservice_errors(service: dict) -> list[str]:
    """ValidateRayServiceMetadata + ValidateRayServiceSpec (+ ValidateClusterUpgradeOptions)."""
    spec = service["spec"]
    cluster = spec["rayClusterConfig"]
    errors = _name_errors("RayService", service["metadata"]["name"]) + cluster_spec_errors(cluster)
    if (cluster["headGroupSpec"].get("headService") or {}).get("metadata", {}).get("name"):
        errors.append("spec.rayClusterConfig.headGroupSpec.headService.metadata.name should not be set")
    upgrade = spec.get("upgradeStrategy") or {}
    if upgrade.get("type", "NewCluster") not in ("NewCluster", "NewClusterWithIncrementalUpgrade", "None"):
        errors.append(f"Spec.UpgradeStrategy.Type value {upgrade['type']} is invalid")
    if spec.get("rayClusterDeletionDelaySeconds", 0) < 0:
        errors.append("Spec.RayClusterDeletionDelaySeconds should be a non-negative integer")
    if upgrade.get("type") == "NewClusterWithIncrementalUpgrade":
        options = upgrade.get("clusterUpgradeOptions")
        if not cluster.get("enableInTreeAutoscaling"):
            errors.append("Ray Autoscaler is required for NewClusterWithIncrementalUpgrade")
        if options is None:
            return [*errors, "ClusterUpgradeOptions are required for NewClusterWithIncrementalUpgrade"]
        surge, step = options.get("maxSurgePercent", 100), options.get("stepSizePercent")
        interval = options.get("intervalSeconds")
        if not 0 <= surge <= 100:
            errors.append("maxSurgePercent must be between 0 and 100")
        if step is None or not 0 <= step <= 100:
            errors.append("stepSizePercent must be between 0 and 100")
        elif step > surge:
            errors.append("stepSizePercent must be less than or equal to maxSurgePercent")
        if interval is None or interval <= 0:
            errors.append("intervalSeconds must be greater than 0")
        if not options.get("gatewayClassName"):
            errors.append("gatewayClassName is required for NewClusterWithIncrementalUpgrade")
    return errors


def rayjob_errors(job: dict) -> list[str]:
    """ValidateRayJobMetadata + ValidateRayJobSpec."""
    spec = job["spec"]
    errors = _name_errors("RayJob", job["metadata"]["name"])
    shutdown, ttl = spec.get("shutdownAfterJobFinishes", False), spec.get("ttlSecondsAfterFinished", 0)
    if spec.get("suspend") and not shutdown:
        errors.append("a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended")
    if ttl < 0:
        errors.append("TTLSecondsAfterFinished must be a non-negative integer")
    if not shutdown and ttl > 0:
        errors.append("a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished")
    if "rayClusterSpec" not in spec and not spec.get("clusterSelector"):
        errors.append("one of RayClusterSpec or ClusterSelector must be set")
    if spec.get("submissionMode") == "InteractiveMode" and spec.get("backoffLimit", 0) > 0:
        errors.append("BackoffLimit is incompatible with InteractiveMode")
    if "rayClusterSpec" in spec:
        errors += cluster_spec_errors(spec["rayClusterSpec"])
    try:
        yaml.safe_load(spec.get("runtimeEnvYAML", ""))
    except yaml.YAMLError:
        errors.append("runtimeEnvYAML is not valid YAML")
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        errors.append("activeDeadlineSeconds must be a positive integer")
    if spec.get("backoffLimit", 0) < 0:
        errors.append("backoffLimit must be a positive integer")
    return errors


def kueue_rayjob_errors(job: Mapping) -> list[str]:
    """Kueue's RayJob webhook (rayjob_webhook.go validateCreate, raycluster common.go) for a job in a
    queue: a job without the queue label is not Kueue's (manageJobsWithoutQueueName is off)."""
    metadata = job.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if QUEUE_LABEL not in labels:
        return []
    spec, errors = job.get("spec") or {}, []
    if spec.get("clusterSelector"):
        return ["a kueue managed job should not use an existing cluster"]
    if "rayClusterSpec" not in spec:
        return ["rayClusterSpec is required for Kueue-managed jobs that don't use clusterSelector"]
    if not spec.get("shutdownAfterJobFinishes"):
        errors.append("a kueue managed job should delete the cluster after finishing")
    cluster = spec["rayClusterSpec"] or {}
    elastic = (metadata.get("annotations") or {}).get(ELASTIC_ANNOTATION) == "true"
    if cluster.get("enableInTreeAutoscaling") and not elastic:
        errors.append("a kueue managed job should only use autoscaling when workload slicing is enabled")
    groups = cluster.get("workerGroupSpecs") or []
    if len(groups) + 1 > MAX_POD_SETS:
        errors.append(f"at most {MAX_POD_SETS} PodSets (the head and {MAX_POD_SETS - 1} worker groups)")
    errors += ['"head" is reserved for the head group' for g in groups if g.get("groupName") == "head"]
    if not DNS_1035.fullmatch(str(labels[QUEUE_LABEL])):
        errors.append(f"{QUEUE_LABEL} {labels[QUEUE_LABEL]!r} is not a valid queue name")
    return errors


# Fragments of the upstream messages (or names) each encoded rule comes from: a test checks they
# are still in the pinned source, so that a rule we encode is a rule upstream has.
SOURCES = {
    "kuberay/validation.go.txt": [
        "resource fields should not be set in both rayStartParams and Resources",
        "must set both minReplicas and maxReplicas when autoscaling is disabled",
        "has minReplicas %d greater than maxReplicas %d",
        "restartPolicy for worker group %s should be Never or unset when using autoscaler V2",
        "cannot be suspended with Autoscaler enabled",
        "GcsFaultToleranceOptions is enabled - use GcsFaultToleranceOptions.RedisPassword instead",
        "Ray Autoscaler is required for NewClusterWithIncrementalUpgrade",
        "gatewayClassName is required for NewClusterWithIncrementalUpgrade",
        "is not allowed to be suspended",
        "cannot have TTLSecondsAfterFinished",
        "activeDeadlineSeconds must be a positive integer",
        "MaxRayJobNameLength",
        "MaxRayServiceNameLength",
    ],
    "kueue/rayjob_webhook.go.txt": [
        "a kueue managed job should not use an existing cluster",
        "a kueue managed job should delete the cluster after finishing",
    ],
    "kueue/raycluster_common.go.txt": [
        "a kueue managed job should only use autoscaling when workload slicing is enabled",
        "jobframework.MaxPodSets",
        "is reserved for the head group",
    ],
}
